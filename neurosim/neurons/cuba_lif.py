"""Current-based LIF neuron with an exponential synaptic current (NIR ``CubaLIF``).

Continuous dynamics (NIR's equations; i in amperes, r in ohms, so r*i is in volts)::

    tau_syn di/dt = -i + w_in S          S: the input, a train of pulses (see below)
    tau_mem dv/dt = (v_leak - v) + r i
    spike when v > v_threshold, then reset (zero | subtract | value | subtract_delayed), then
    ``refractory_steps`` steps during which v is held and not integrated (i keeps decaying and
    receiving input). ``subtract_delayed`` (snnTorch's default ``Synaptic``) subtracts
    ``v_threshold - v_reset`` one step late and undecayed, after integrating:
    ``v[t] = ... - H(v[t-1] - v_threshold) (v_threshold - v_reset)`` (see ``neurosim.neurons.lif``).

Input convention: the input ``x[t]`` of a step is a *current increment* in amperes, added to i at
once (``i += w_in x``), as a spike of weight w does in Norse, snnTorch, Lava and in Brian2's
``on_pre: I += w``. In NIR's equation this is S = sum_t x[t] tau_syn delta(t - t_t).

Discretisation with a_syn = exp(-dt/tau_syn) (``integration="exact"``) or 1 - dt/tau_syn
(``"euler"``)::

    i[t] = a_syn i[t-1] + w_in x[t]
    v[t] = v_leak + (v[t-1] - v_leak) a_mem + c r i_drive
    s[t] = H(v[t] - v_threshold);   v[t] <- reset(v[t], s[t])

``"exact"`` integrates the linear pair (v, i) exactly between input pulses (the exact
integration of Rotter & Diesmann 1999, as in NEST's ``iaf_psc_exp`` or Brian2's ``method="exact"``):
a_mem = exp(-dt/tau_mem) and c = (dt/tau_mem) a_mem phi(k) with k = dt (1/tau_mem - 1/tau_syn)
and phi(k) = (e^k - 1)/k (phi(0) = 1, the tau_syn = tau_mem case), i.e.
c = tau_syn (a_syn - a_mem) / (tau_syn - tau_mem). ``"euler"`` is forward Euler:
a_mem = 1 - dt/tau_mem, c = dt/tau_mem.

``input_same_step=True``: ``i_drive = i[t]``, the current *after* this step's input, so the
input of step t moves v at step t (the pulse arrives at the start of the step).
``input_same_step=False``: ``i_drive = i[t-1]``, v integrates the current before this step's
input, which then acts from step t+1 on (the pulse arrives at the end of the step; one step of
latency, the order of Brian2's update-then-propagate schedule). Both are exact, shifted by a step.

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("cuba_lif", 100, CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3))
    >>> spikes, state = pop.step(torch.rand(8, 100), pop.initial_state(8), dt=1e-3)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import (INTEGRATIONS, RESETS, NeuronModel, check_choice, check_fields_positive,
                   check_steps, decay_factor, default_spike_fn, register_neuron_model)
from .lif import integrate_and_fire

Scalar = Union[float, torch.Tensor]

__all__ = ["CubaLIFParams", "CubaLIFState", "cuba_lif_step", "cuba_lif_initial_state", "CubaLIF",
           "exact_current_coefficient"]


@dataclass(frozen=True)
class CubaLIFParams:
    """CubaLIF parameters (SI units). ``tau_*`` [s], ``v_*`` [V], ``r`` [Ohm], ``w_in`` [1]."""

    tau_syn: Scalar = 5e-3
    tau_mem: Scalar = 10e-3
    r: Scalar = 1.0
    v_leak: Scalar = 0.0
    v_threshold: Scalar = 1.0
    v_reset: Scalar = 0.0
    w_in: Scalar = 1.0
    integration: str = "exact"
    reset: str = "subtract"
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("tau_syn", "tau_mem"))
        check_choice(self.integration, INTEGRATIONS, "CubaLIFParams.integration")
        check_choice(self.reset, RESETS, "CubaLIFParams.reset")
        check_steps(self.refractory_steps, "CubaLIFParams.refractory_steps")


class CubaLIFState(NamedTuple):
    """v: membrane [V]; i: synaptic current [A] (after the last step's input);
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    i: torch.Tensor
    refractory: torch.Tensor


def cuba_lif_initial_state(params: CubaLIFParams, shape, batch_size: int, device=None,
                           dtype=torch.float32) -> CubaLIFState:
    """Resting state: v = v_leak, no synaptic current, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return CubaLIFState(v=z + params.v_leak, i=z, refractory=z)


def exact_current_coefficient(tau_mem, tau_syn, dt: float):
    """c in v[t] = v_leak + (v[t-1] - v_leak) exp(-dt/tau_mem) + c r i0 for a current
    i0 exp(-t/tau_syn): c = (dt/tau_mem) exp(-dt/tau_mem) phi(k), k = dt (1/tau_mem - 1/tau_syn),
    phi(k) = expm1(k)/k, written so that tau_syn = tau_mem (k = 0) is neither singular nor
    inaccurate. Float in, float out; tensors in, a differentiable tensor out."""
    if not isinstance(tau_mem, torch.Tensor) and not isinstance(tau_syn, torch.Tensor):
        k = dt * (1.0 / tau_mem - 1.0 / tau_syn)
        phi = 1.0 + 0.5 * k if abs(k) < 1e-8 else math.expm1(k) / k
        return dt / tau_mem * math.exp(-dt / tau_mem) * phi
    ref = tau_mem if isinstance(tau_mem, torch.Tensor) else tau_syn
    tau_mem = torch.as_tensor(tau_mem, dtype=ref.dtype, device=ref.device)
    tau_syn = torch.as_tensor(tau_syn, dtype=ref.dtype, device=ref.device)
    k = dt * (1.0 / tau_mem - 1.0 / tau_syn)
    small = k.abs() < 1e-6
    k_safe = torch.where(small, torch.ones_like(k), k)
    phi = torch.where(small, 1.0 + 0.5 * k, torch.expm1(k_safe) / k_safe)
    return dt / tau_mem * torch.exp(-dt / tau_mem) * phi


def _membrane_coefficients(p: CubaLIFParams, dt: float):
    """(a_mem, c) of the module docstring for ``p.integration``."""
    if p.integration == "exact":
        return decay_factor(p.tau_mem, dt, "exact"), exact_current_coefficient(p.tau_mem, p.tau_syn, dt)
    return decay_factor(p.tau_mem, dt, "euler"), dt / p.tau_mem


def current_and_membrane(x: torch.Tensor, v_prev: torch.Tensor, i_prev: torch.Tensor, p, dt: float):
    """The subthreshold CUBA update shared by ``cuba_lif`` and ``cuba_li`` (module docstring):
    ``i = a_syn i_prev + w_in x``, then ``v = v_leak + (v_prev - v_leak) a_mem + c r drive`` with
    ``drive = i`` (input in the same step) or ``i_prev``. Returns ``(i, v)``, shapes of ``x``."""
    a_syn = decay_factor(p.tau_syn, dt, p.integration)
    a_mem, c = _membrane_coefficients(p, dt)
    i = i_prev * a_syn + p.w_in * x
    drive = i if p.input_same_step else i_prev
    return i, p.v_leak + (v_prev - p.v_leak) * a_mem + c * (p.r * drive)


def cuba_lif_step(x: torch.Tensor, state: CubaLIFState, p: CubaLIFParams, dt: float,
                  spike_fn=default_spike_fn):
    """One CubaLIF step (see the module docstring). Returns (spikes, new_state)."""
    i, v = current_and_membrane(x, state.v, state.i, p, dt)
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn)
    return s, CubaLIFState(v=v, i=i, refractory=refractory)


CubaLIF = register_neuron_model(NeuronModel(
    name="cuba_lif", params_type=CubaLIFParams, state_type=CubaLIFState, step=cuba_lif_step,
    initial_state=cuba_lif_initial_state, time_constants=("tau_syn", "tau_mem")))
