"""Integrator without leak or threshold, a non-spiking accumulator (NIR ``I``).

Continuous dynamics, NIR's convention taken literally::

    dv/dt = r I

Units: with I in amperes and v in volts, ``r`` is in V/(A s) (an inverse capacitance; NIR calls
it R), as for :mod:`neurosim.neurons.if_neuron`. The output of a step is v itself (the registered
model has ``spiking=False``); it is the IF neuron without threshold and reset.

Discretisation (exact for an input held over the step, so there is no ``integration`` choice)::

    v[t] = v[t-1] + dt r I_eff[t]          v[-1] = 0

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t shows at step t), else
``I[t-1]`` (one step of latency). So v[t] is the running sum ``dt r sum_{k <= t} I_eff[k]``.

Shapes: input, output and every state field ``[batch, *shape]``; ``r`` a float or a tensor that
broadcasts against ``shape``.

Example::

    >>> acc = Population("integrator", 10, IntegratorParams(r=1e3))
    >>> v, state = acc.step(currents, acc.initial_state(8), dt=1e-3)    # v = currents after one step
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import NeuronModel, default_spike_fn, register_neuron_model

Scalar = Union[float, torch.Tensor]

__all__ = ["IntegratorParams", "IntegratorState", "integrator_step", "integrator_initial_state",
           "Integrator"]


@dataclass(frozen=True)
class IntegratorParams:
    """Integrator parameters. ``r`` [V/(A s)]."""

    r: Scalar = 1.0
    input_same_step: bool = True


class IntegratorState(NamedTuple):
    """v: the integral [V]; i: the input held for the next step [A]."""

    v: torch.Tensor
    i: torch.Tensor


def integrator_initial_state(params: IntegratorParams, shape, batch_size: int, device=None,
                             dtype=torch.float32) -> IntegratorState:
    """v = 0, no held input."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return IntegratorState(v=z, i=z)


def integrator_step(x: torch.Tensor, state: IntegratorState, p: IntegratorParams, dt: float,
                    spike_fn=default_spike_fn):
    """One integrator step ``v += dt r I_eff``. Returns (v, new_state); ``spike_fn`` is unused."""
    current = x if p.input_same_step else state.i
    v = state.v + (dt * p.r) * current
    return v, IntegratorState(v=v, i=x)


Integrator = register_neuron_model(NeuronModel(
    name="integrator", params_type=IntegratorParams, state_type=IntegratorState, step=integrator_step,
    initial_state=integrator_initial_state, spiking=False))
