"""Adaptive LIF neuron with a spike-triggered threshold (Bellec et al. 2018, LSNN).

Continuous dynamics (I in amperes, r in ohms, b dimensionless, beta in volts)::

    tau_mem dv/dt   = (v_leak - v) + r I
    tau_adapt db/dt = -b + sum_k delta(t - t_k)   (b jumps by 1 at every spike t_k)
    theta = v_threshold + beta b                  (the effective, adaptive threshold)
    spike when v > theta, then reset (zero | subtract | value; ``subtract`` removes
    theta - v_reset, the threshold in force), then ``refractory_steps`` steps during which v is
    held and no input is integrated (b keeps decaying).

Discretisation with a = exp(-dt/tau_mem), rho = exp(-dt/tau_adapt) (``integration="exact"``)
or a = 1 - dt/tau_mem, rho = 1 - dt/tau_adapt (``"euler"``)::

    v[t] = v_leak + (v[t-1] - v_leak) a + (1 - a) r I_eff[t]       (as LIF)
    b'   = rho b[t-1];  theta[t] = v_threshold + beta b'
    s[t] = H(v[t] - theta[t]);  v[t] <- reset(v[t], s[t]);  b[t] = b' + s[t]

so a spike raises the threshold from the next step on by beta, decaying with tau_adapt.
Bellec et al. write b[t+1] = rho b[t] + (1 - rho) s[t]; that is this model with their beta
equal to ours / (1 - rho). The jump of 1 used here keeps beta independent of dt.

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency).

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("alif", 100, ALIFParams(tau_mem=20e-3, tau_adapt=200e-3, beta=0.2),
    ...                  trainable=("tau_adapt",))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import (INTEGRATIONS, RESETS, NeuronModel, check_choice, check_fields_positive,
                   check_steps, decay_factor, default_spike_fn, register_neuron_model)
from .lif import integrate_and_fire, leaky_integrate

Scalar = Union[float, torch.Tensor]

__all__ = ["ALIFParams", "ALIFState", "alif_step", "alif_initial_state", "ALIF"]


@dataclass(frozen=True)
class ALIFParams:
    """ALIF parameters (SI units). ``tau_*`` [s], ``v_*`` and ``beta`` [V], ``r`` [Ohm]."""

    tau_mem: Scalar = 20e-3
    tau_adapt: Scalar = 200e-3
    beta: Scalar = 0.2
    v_threshold: Scalar = 1.0
    v_leak: Scalar = 0.0
    v_reset: Scalar = 0.0
    r: Scalar = 1.0
    integration: str = "exact"
    reset: str = "subtract"
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("tau_mem", "tau_adapt"))
        check_choice(self.integration, INTEGRATIONS, "ALIFParams.integration")
        check_choice(self.reset, RESETS, "ALIFParams.reset")
        check_steps(self.refractory_steps, "ALIFParams.refractory_steps")


class ALIFState(NamedTuple):
    """v: membrane [V]; i: the input held for the next step [A]; b: threshold adaptation [1];
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor
    refractory: torch.Tensor


def alif_initial_state(params: ALIFParams, shape, batch_size: int, device=None, dtype=torch.float32) -> ALIFState:
    """Resting state: v = v_leak, no adaptation, no held input, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return ALIFState(v=z + params.v_leak, i=z, b=z, refractory=z)


def alif_step(x: torch.Tensor, state: ALIFState, p: ALIFParams, dt: float, spike_fn=default_spike_fn):
    """One ALIF step (see the module docstring). Returns (spikes, new_state)."""
    current = x if p.input_same_step else state.i
    v = leaky_integrate(state.v, current, p.tau_mem, p.v_leak, p.r, dt, p.integration)
    b = state.b * decay_factor(p.tau_adapt, dt, p.integration)
    theta = p.v_threshold + p.beta * b
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn, v_threshold=theta)
    return s, ALIFState(v=v, i=x, b=b + s, refractory=refractory)


ALIF = register_neuron_model(NeuronModel(
    name="alif", params_type=ALIFParams, state_type=ALIFState, step=alif_step,
    initial_state=alif_initial_state, time_constants=("tau_mem", "tau_adapt")))
