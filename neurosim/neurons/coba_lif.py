"""Conductance-based LIF neuron with excitatory and inhibitory synapses (COBA; Vogels & Abbott 2005).

Continuous dynamics, the equations of Brian2's COBA benchmark (Brette et al. 2007)::

    tau_mem dv/dt = (v_leak - v) + (g_exc (e_exc - v) + g_inh (e_inh - v)) / g_leak
    dg_exc/dt = -g_exc / tau_syn_exc          dg_inh/dt = -g_inh / tau_syn_inh
    spike when v > v_threshold, then reset (default: v <- v_reset), then ``refractory_steps``
    steps during which v is held and not integrated (the conductances keep decaying and
    receiving input).

Two input ports, ``("exc", "inh")``: ``x = (x_exc, x_inh)``, conductance increments (>= 0, not
checked) added at once to g_exc and g_inh. Conductances are in siemens with ``g_leak`` the leak
conductance in siemens, or, with the default ``g_leak = 1``, in units of the leak conductance
(dimensionless), as in the Brian2 example (``we = 6 nS / 10 nS = 0.6``).

Discretisation. Conductances: g[t] = g[t-1] a + x[t], a = exp(-dt/tau_syn) (``"exact"``) or
1 - dt/tau_syn (``"euler"``). Membrane, with G = 1 + (g_exc + g_inh)/g_leak and
v_inf = (v_leak + (g_exc e_exc + g_inh e_inh)/g_leak) / G, both conductances held over the step:

* ``integration="exact"``: v[t] = v_inf + (v[t-1] - v_inf) exp(-G dt / tau_mem), exact for
  conductances frozen over the step (Brian2's ``method="exponential_euler"``); stable for any
  conductance.
* ``integration="euler"``: v[t] = v[t-1] + (dt / tau_mem) G (v_inf - v[t-1]) (forward Euler,
  Brian2's ``method="euler"``); needs G dt << tau_mem.

``input_same_step=True``: v integrates the conductances *after* this step's input (input of
step t moves v at step t). ``input_same_step=False``: v integrates the conductances before
this step's input, which acts from step t+1 on: Brian2's schedule exactly (state update, then
spikes propagated into g), so ``x[t]`` = the synaptic increments Brian2 delivers at step t.

Defaults: Brian2's COBA benchmark: tau_mem = 20 ms, tau_syn_exc = 5 ms, tau_syn_inh = 10 ms,
v_threshold = -50 mV, v_reset = v_leak = -60 mV, e_exc = 0 mV, e_inh = -80 mV, and its 5 ms
refractory period at dt = 0.1 ms. Brian2 counts ``refractory = 5*ms`` from the spike, so the
neuron can fire again 50 steps later; neurosim counts the silent steps after the spike, hence
``refractory_steps = 49`` (Brian2 ``refractory = (n + 1) dt`` <-> neurosim ``n``).

Shapes: each input and every state field ``[batch, *shape]``; parameters are floats or tensors
that broadcast against ``shape``.

Example::

    >>> pop = Population("coba_lif", 4000, CobaLIFParams())
    >>> g.connect("exc_proj", "pop", port="exc"); g.connect("inh_proj", "pop", port="inh")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Tuple, Union

import torch

from .base import (INTEGRATIONS, RESETS, NeuronModel, check_choice, check_fields_positive,
                   check_steps, decay_factor, default_spike_fn, register_neuron_model)
from .lif import integrate_and_fire

Scalar = Union[float, torch.Tensor]

__all__ = ["CobaLIFParams", "CobaLIFState", "coba_lif_step", "coba_lif_initial_state", "CobaLIF"]


@dataclass(frozen=True)
class CobaLIFParams:
    """COBA LIF parameters (SI units): ``tau_*`` [s], ``v_*`` and ``e_*`` [V], ``g_leak`` [S]
    (or 1: conductances in units of g_L)."""

    tau_mem: Scalar = 20e-3
    tau_syn_exc: Scalar = 5e-3
    tau_syn_inh: Scalar = 10e-3
    v_leak: Scalar = -60e-3
    v_threshold: Scalar = -50e-3
    v_reset: Scalar = -60e-3
    e_exc: Scalar = 0.0
    e_inh: Scalar = -80e-3
    g_leak: Scalar = 1.0
    integration: str = "exact"
    reset: str = "value"
    refractory_steps: int = 49
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("tau_mem", "tau_syn_exc", "tau_syn_inh", "g_leak"))
        check_choice(self.integration, INTEGRATIONS, "CobaLIFParams.integration")
        check_choice(self.reset, RESETS, "CobaLIFParams.reset")
        check_steps(self.refractory_steps, "CobaLIFParams.refractory_steps")


class CobaLIFState(NamedTuple):
    """v: membrane [V]; g_exc, g_inh: conductances [S or units of g_L] (after the last step's
    input); refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    g_exc: torch.Tensor
    g_inh: torch.Tensor
    refractory: torch.Tensor


def coba_lif_initial_state(params: CobaLIFParams, shape, batch_size: int, device=None,
                           dtype=torch.float32) -> CobaLIFState:
    """Resting state: v = v_leak, closed synapses, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return CobaLIFState(v=z + params.v_leak, g_exc=z, g_inh=z, refractory=z)


def coba_lif_step(x: Tuple[torch.Tensor, torch.Tensor], state: CobaLIFState, p: CobaLIFParams,
                  dt: float, spike_fn=default_spike_fn):
    """One COBA step; ``x = (x_exc, x_inh)``. Returns (spikes, new_state)."""
    x_exc, x_inh = x
    g_exc = state.g_exc * decay_factor(p.tau_syn_exc, dt, p.integration) + x_exc
    g_inh = state.g_inh * decay_factor(p.tau_syn_inh, dt, p.integration) + x_inh
    ge, gi = (g_exc, g_inh) if p.input_same_step else (state.g_exc, state.g_inh)
    if not (isinstance(p.g_leak, (int, float)) and p.g_leak == 1):
        ge, gi = ge / p.g_leak, gi / p.g_leak
    total = 1.0 + ge + gi                                   # G, in units of g_leak
    drive = p.v_leak + ge * p.e_exc + gi * p.e_inh          # G v_inf
    v = state.v
    if p.integration == "exact":
        v_inf = drive / total
        v_new = v_inf + (v - v_inf) * torch.exp(total * (-dt / p.tau_mem))
    else:
        v_new = v + (drive - total * v) * (dt / p.tau_mem)
    s, v_new, refractory = integrate_and_fire(v_new, v, state.refractory, p, spike_fn)
    return s, CobaLIFState(v=v_new, g_exc=g_exc, g_inh=g_inh, refractory=refractory)


CobaLIF = register_neuron_model(NeuronModel(
    name="coba_lif", params_type=CobaLIFParams, state_type=CobaLIFState, step=coba_lif_step,
    initial_state=coba_lif_initial_state, input_ports=("exc", "inh"),
    time_constants=("tau_mem", "tau_syn_exc", "tau_syn_inh")))
