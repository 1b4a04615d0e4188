"""Izhikevich (2003) neuron, in the model's conventional units.

Continuous dynamics, with v and u in millivolts, time in milliseconds and the input I in the
paper's units (mV/ms, a dimensionless current: I = 10 drives a regular-spiking cell)::

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    spike when v > v_peak (30 mV), then v <- c, u <- u + d

Units: unlike the other models, v, u, c, d and v_peak are in mV and a in 1/ms, because the
polynomial's coefficients are fixed in those units. The step still takes ``dt`` in *seconds*
like every model, and converts it (h = 1000 dt ms). A surrogate's scale acts per mV here.

Discretisation: forward Euler with both variables updated from the values at the start of the
step (Brian2's ``method="euler"``); there is no exact solution. Izhikevich's own code takes
two half steps for v; at dt = 0.1 ms (the default-scale step to use) plain Euler is accurate
and the difference is below the spike-time resolution for the regular patterns. No refractory
period (the reset to c and the recovery variable shape the after-spike dynamics).

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency).

Presets (Izhikevich 2003, Fig. 2): regular spiking a=0.02, b=0.2, c=-65, d=8 (the defaults);
fast spiking a=0.1, d=2; chattering c=-50, d=2; intrinsically bursting c=-55, d=4.

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("izhikevich", 10, IzhikevichParams(a=0.1, d=2.0))   # fast spiking
    >>> spikes, state = pop.step(torch.full((1, 10), 10.0), pop.initial_state(1), dt=1e-4)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import NeuronModel, apply_reset, check_fields_positive, default_spike_fn, register_neuron_model

Scalar = Union[float, torch.Tensor]

__all__ = ["IzhikevichParams", "IzhikevichState", "izhikevich_step", "izhikevich_initial_state", "Izhikevich"]


@dataclass(frozen=True)
class IzhikevichParams:
    """Izhikevich parameters in the model's units: ``a`` [1/ms], ``b`` [1], ``c``, ``d``,
    ``v_peak`` [mV]."""

    a: Scalar = 0.02
    b: Scalar = 0.2
    c: Scalar = -65.0
    d: Scalar = 8.0
    v_peak: Scalar = 30.0
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("a",))


class IzhikevichState(NamedTuple):
    """v: membrane [mV]; u: recovery variable [mV]; i: the input held for the next step."""

    v: torch.Tensor
    u: torch.Tensor
    i: torch.Tensor


def izhikevich_initial_state(params: IzhikevichParams, shape, batch_size: int, device=None,
                             dtype=torch.float32) -> IzhikevichState:
    """v = c, u = b c (the usual start of the 2003 paper's simulations), no held input."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    v = z + params.c
    return IzhikevichState(v=v, u=v * params.b, i=z)


def izhikevich_step(x: torch.Tensor, state: IzhikevichState, p: IzhikevichParams, dt: float,
                    spike_fn=default_spike_fn):
    """One Euler step of ``dt`` seconds (see the module docstring). Returns (spikes, new_state)."""
    h = dt * 1e3
    v, u = state.v, state.u
    current = x if p.input_same_step else state.i
    v_new = v + h * ((0.04 * v + 5.0) * v + 140.0 - u + current)
    u_new = u + (h * p.a) * (p.b * v - u)
    s = spike_fn(v_new - p.v_peak)
    v_new = apply_reset(v_new, s, "value", p.v_peak, p.c)
    return s, IzhikevichState(v=v_new, u=u_new + p.d * s, i=x)


Izhikevich = register_neuron_model(NeuronModel(
    name="izhikevich", params_type=IzhikevichParams, state_type=IzhikevichState, step=izhikevich_step,
    initial_state=izhikevich_initial_state))
