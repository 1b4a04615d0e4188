"""Integrate-and-fire neuron without leak (NIR ``IF``).

Continuous dynamics, NIR's convention taken literally::

    dv/dt = r I
    spike when v > v_threshold, then reset (zero | subtract | value), then ``refractory_steps``
    steps during which v is held and no input is integrated.

Units: with I in amperes and v in volts, ``r`` is in V/(A s), i.e. an inverse capacitance 1/C
(NIR calls it R). With r = 1/dt the neuron adds x to v each step, the ``v += x`` of ANN-to-SNN
conversion.

Discretisation (exact for an input held constant over the step, so there is no
``integration`` choice: forward Euler and the exact solution coincide)::

    v[t] = v[t-1] + dt r I_eff[t]
    s[t] = H(v[t] - v_threshold);   v[t] <- reset(v[t], s[t])

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency).

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("if", 10, IFParams(r=1e3, v_threshold=1.0, reset="subtract"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import RESETS, NeuronModel, check_choice, check_steps, default_spike_fn, register_neuron_model
from .lif import integrate_and_fire

Scalar = Union[float, torch.Tensor]

__all__ = ["IFParams", "IFState", "if_step", "if_initial_state", "IF"]


@dataclass(frozen=True)
class IFParams:
    """IF parameters. ``r`` [V/(A s)], ``v_*`` [V]."""

    r: Scalar = 1.0
    v_threshold: Scalar = 1.0
    v_reset: Scalar = 0.0
    reset: str = "subtract"
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_choice(self.reset, RESETS, "IFParams.reset")
        check_steps(self.refractory_steps, "IFParams.refractory_steps")


class IFState(NamedTuple):
    """v: membrane [V]; i: the input held for the next step [A];
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    i: torch.Tensor
    refractory: torch.Tensor


def if_initial_state(params: IFParams, shape, batch_size: int, device=None, dtype=torch.float32) -> IFState:
    """v = 0, no held input, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return IFState(v=z, i=z, refractory=z)


def if_step(x: torch.Tensor, state: IFState, p: IFParams, dt: float, spike_fn=default_spike_fn):
    """One IF step (see the module docstring). Returns (spikes, new_state)."""
    current = x if p.input_same_step else state.i
    v = state.v + (dt * p.r) * current
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn)
    return s, IFState(v=v, i=x, refractory=refractory)


IF = register_neuron_model(NeuronModel(
    name="if", params_type=IFParams, state_type=IFState, step=if_step, initial_state=if_initial_state))
