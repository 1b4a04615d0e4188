"""Adaptive exponential integrate-and-fire neuron (AdEx; Brette & Gerstner 2005), SI units.

Continuous dynamics (V in volts, I and w in amperes, C in farads, g_L and a in siemens)::

    C dV/dt     = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w + I
    tau_w dw/dt = a (V - E_L) - w
    spike when V > V_peak (the numerical cut-off of the exponential upswing), then
    V <- V_reset, w <- w + b, then ``refractory_steps`` steps during which V is held at
    V_reset and not integrated (w keeps evolving).

Discretisation: forward Euler, both variables updated from the values at the start of the step
(Brian2's ``method="euler"``); the exponential term has no exact solution. The membrane time
constant C / g_L is exposed as the property ``tau_mem`` and, with ``tau_w``, checked against dt
(dt >= tau warns). Because V < V_peak at the start of every step, the exponential is at most
exp((V_peak - V_T) / Delta_T); keep V_peak a few Delta_T above V_T (the default is
V_T + 5 Delta_T, as in Brian2's AdEx examples) so that one Euler step past the cut-off stays finite.

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency).

Defaults: the values of Brette & Gerstner (2005) for a cortical pyramidal cell.

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("adex", 10, AdExParams(b=0.0805e-9))
    >>> spikes, state = pop.step(torch.full((1, 10), 1e-9), pop.initial_state(1), dt=1e-4)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import NeuronModel, check_fields_positive, check_steps, default_spike_fn, register_neuron_model
from .lif import integrate_and_fire

Scalar = Union[float, torch.Tensor]

__all__ = ["AdExParams", "AdExState", "adex_step", "adex_initial_state", "AdEx"]


@dataclass(frozen=True)
class AdExParams:
    """AdEx parameters (SI units): ``C`` [F], ``g_L``, ``a`` [S], ``E_L``, ``V_T``, ``Delta_T``,
    ``V_reset``, ``V_peak`` [V], ``tau_w`` [s], ``b`` [A]."""

    C: Scalar = 281e-12
    g_L: Scalar = 30e-9
    E_L: Scalar = -70.6e-3
    V_T: Scalar = -50.4e-3
    Delta_T: Scalar = 2e-3
    tau_w: Scalar = 144e-3
    a: Scalar = 4e-9
    b: Scalar = 0.0805e-9
    V_reset: Scalar = -70.6e-3
    V_peak: Scalar = -40.4e-3
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("C", "g_L", "Delta_T", "tau_w"))
        check_steps(self.refractory_steps, "AdExParams.refractory_steps")

    @property
    def tau_mem(self):
        """Membrane time constant C / g_L [s]."""
        return self.C / self.g_L


class AdExState(NamedTuple):
    """v: membrane [V]; w: adaptation current [A]; i: the input held for the next step [A];
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    w: torch.Tensor
    i: torch.Tensor
    refractory: torch.Tensor


def adex_initial_state(params: AdExParams, shape, batch_size: int, device=None, dtype=torch.float32) -> AdExState:
    """Resting state: V = E_L, w = 0, no held input, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return AdExState(v=z + params.E_L, w=z, i=z, refractory=z)


def adex_step(x: torch.Tensor, state: AdExState, p: AdExParams, dt: float, spike_fn=default_spike_fn):
    """One Euler step (see the module docstring). Returns (spikes, new_state)."""
    v, w = state.v, state.w
    current = x if p.input_same_step else state.i
    leak = v - p.E_L
    upswing = p.Delta_T * torch.exp((v - p.V_T) / p.Delta_T)
    v_new = v + (dt / p.C) * (p.g_L * (upswing - leak) - w + current)
    w_new = w + (dt / p.tau_w) * (p.a * leak - w)
    s, v_new, refractory = integrate_and_fire(v_new, v, state.refractory, p, spike_fn,
                                              v_threshold=p.V_peak, reset="value", v_reset=p.V_reset)
    return s, AdExState(v=v_new, w=w_new + p.b * s, i=x, refractory=refractory)


AdEx = register_neuron_model(NeuronModel(
    name="adex", params_type=AdExParams, state_type=AdExState, step=adex_step,
    initial_state=adex_initial_state, time_constants=("tau_mem", "tau_w")))
