"""Leaky integrator, a non-spiking readout (NIR ``LI``).

Continuous dynamics, with the input current I in amperes and r in ohms::

    tau_mem dv/dt = (v_leak - v) + r I          (NIR names the time constant ``tau``)

No threshold, no reset: the output of a step is the membrane potential v itself (the
registered model has ``spiking=False``), the usual readout of a trained SNN.

Discretisation with a = exp(-dt/tau_mem) (``integration="exact"``, exact for I constant over the
step) or a = 1 - dt/tau_mem (``"euler"``), shared with LIF::

    v[t] = v_leak + (v[t-1] - v_leak) a + (1 - a) r I_eff[t]

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t shows in the output of step t),
else ``I[t-1]`` (one step of latency).

Shapes: input, output and every state field ``[batch, *shape]``; parameters are floats or tensors
that broadcast against ``shape``.

Example::

    >>> readout = Population("li", 10, LIParams(tau_mem=20e-3))
    >>> v, state = readout.step(currents, readout.initial_state(8), dt=1e-3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import INTEGRATIONS, NeuronModel, check_choice, check_fields_positive, default_spike_fn, register_neuron_model
from .lif import leaky_integrate

Scalar = Union[float, torch.Tensor]

__all__ = ["LIParams", "LIState", "li_step", "li_initial_state", "LI"]


@dataclass(frozen=True)
class LIParams:
    """LI parameters (SI units). ``tau_mem`` [s], ``v_leak`` [V], ``r`` [Ohm]."""

    tau_mem: Scalar = 10e-3
    v_leak: Scalar = 0.0
    r: Scalar = 1.0
    integration: str = "exact"
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("tau_mem",))
        check_choice(self.integration, INTEGRATIONS, "LIParams.integration")


class LIState(NamedTuple):
    """v: membrane [V]; i: the input held for the next step [A]."""

    v: torch.Tensor
    i: torch.Tensor


def li_initial_state(params: LIParams, shape, batch_size: int, device=None, dtype=torch.float32) -> LIState:
    """Resting state: v = v_leak, no held input."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return LIState(v=z + params.v_leak, i=z)


def li_step(x: torch.Tensor, state: LIState, p: LIParams, dt: float, spike_fn=default_spike_fn):
    """One LI step. Returns (v, new_state); ``spike_fn`` is accepted and unused (no spikes)."""
    current = x if p.input_same_step else state.i
    v = leaky_integrate(state.v, current, p.tau_mem, p.v_leak, p.r, dt, p.integration)
    return v, LIState(v=v, i=x)


LI = register_neuron_model(NeuronModel(
    name="li", params_type=LIParams, state_type=LIState, step=li_step, initial_state=li_initial_state,
    spiking=False, time_constants=("tau_mem",)))
