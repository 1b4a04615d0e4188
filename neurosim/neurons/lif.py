"""Leaky integrate-and-fire neuron (NIR ``LIF``).

Continuous dynamics, with the input current I in amperes and r in ohms (so r*I is in volts)::

    tau_mem dv/dt = (v_leak - v) + r I
    spike when v > v_threshold, then reset (zero | subtract | value), then ``refractory_steps``
    steps during which v is held and no input is integrated.

Discretisation with a = exp(-dt/tau_mem) (``integration="exact"``, exact for I constant over the
step) or a = 1 - dt/tau_mem (``"euler"``)::

    v[t] = v_leak + (v[t-1] - v_leak) a + (1 - a) r I_eff[t]
    s[t] = H(v[t] - v_threshold);   v[t] <- reset(v[t], s[t])

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency, as on hardware that integrates after thresholding).

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("lif", 100, LIFParams(tau_mem=20e-3, v_threshold=1.0, reset="zero"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import (NeuronModel, apply_reset, check_choice, decay_factor, default_spike_fn,
                   INTEGRATIONS, RESETS, register_neuron_model)

Scalar = Union[float, torch.Tensor]

__all__ = ["LIFParams", "LIFState", "lif_step", "lif_initial_state", "LIF"]


@dataclass(frozen=True)
class LIFParams:
    """LIF parameters (SI units). ``tau_mem`` [s], ``v_*`` [V], ``r`` [Ohm]."""

    tau_mem: Scalar = 10e-3
    v_threshold: Scalar = 1.0
    v_leak: Scalar = 0.0
    v_reset: Scalar = 0.0
    r: Scalar = 1.0
    integration: str = "exact"
    reset: str = "subtract"
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_choice(self.integration, INTEGRATIONS, "LIFParams.integration")
        check_choice(self.reset, RESETS, "LIFParams.reset")
        if int(self.refractory_steps) != self.refractory_steps or self.refractory_steps < 0:
            raise ValueError(f"LIFParams.refractory_steps must be an integer >= 0, got {self.refractory_steps!r}")


class LIFState(NamedTuple):
    """v: membrane [V]; i: the input current held for the next step [A];
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    i: torch.Tensor
    refractory: torch.Tensor


def lif_initial_state(params: LIFParams, shape, batch_size: int, device=None, dtype=torch.float32) -> LIFState:
    """Resting state: v = v_leak, no held input, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return LIFState(v=z + params.v_leak, i=z, refractory=z)


def integrate_and_fire(v_integrated, state_v, refractory, p, spike_fn):
    """Shared tail of LIF-like models: refractory hold, threshold, reset, refractory count.

    Returns (s, v_after_reset, refractory_new)."""
    if p.refractory_steps > 0:
        free = refractory <= 0
        v_integrated = torch.where(free, v_integrated, state_v)
        s = spike_fn(v_integrated - p.v_threshold) * free
        refractory = torch.where(s > 0, torch.full_like(refractory, float(p.refractory_steps)),
                                 (refractory - 1).clamp_(min=0))
    else:
        s = spike_fn(v_integrated - p.v_threshold)
    return s, apply_reset(v_integrated, s, p.reset, p.v_threshold, p.v_reset), refractory


def lif_step(x: torch.Tensor, state: LIFState, p: LIFParams, dt: float,
             spike_fn=default_spike_fn):
    """One LIF step (see the module docstring for the equations). Returns (spikes, new_state)."""
    a = decay_factor(p.tau_mem, dt, p.integration)
    current = x if p.input_same_step else state.i
    v = p.v_leak + (state.v - p.v_leak) * a + (1.0 - a) * (p.r * current)
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn)
    return s, LIFState(v=v, i=x, refractory=refractory)


LIF = register_neuron_model(NeuronModel(
    name="lif", params_type=LIFParams, state_type=LIFState, step=lif_step,
    initial_state=lif_initial_state, time_constants=("tau_mem",)))
