"""Lowerings of the neuron models: each model's parameters combined exactly as its torch step does.

For every model the constants the step derives (``a = decay_factor(tau, dt, integration)``,
``1 - a``, ``v_threshold - v_reset``, ``dt r``, ...) are computed here by the same expression on
the same values, a Python float staying a float (rounded to the state's dtype once, as torch
rounds a scalar operand) and a tensor staying a tensor (combined in its dtype, as the step
combines it). The kernels of :mod:`neurosim.compiled.neuron_kernels` then only do the
operations the step does on tensors. The parameter order of each list is the kernel's argument
order (:mod:`neurosim.compiled.machine`).
"""
from __future__ import annotations

import torch

from ..neurons.base import decay_factor
from ..population import Population
from . import kinds as K
from .lowering import (NEURON_LOWERINGS, LoweredNode, NotLowerable, per_neuron, register_neuron_lowering,
                       register_node_lowering, state_arrays)

__all__ = ["lower_population"]


@register_node_lowering(Population)
def lower_population(node: Population, state, dt: float, batch: int, dtype: torch.dtype) -> LoweredNode:
    """A population of a model in :data:`NEURON_LOWERINGS`; its state fields in the State's order.
    A fixed-point model's lowering (kind >= ``kinds.INTEGER_KINDS``) returns int64 parameter
    tables; its state is copied as int64 and given back in its own integer dtypes."""
    name = node.model.name.lower()
    if name not in NEURON_LOWERINGS:
        raise NotLowerable(f"neuron model {node.model.name!r} has no compiled kernel")
    where = f"{name} population"
    kind, params, flags = NEURON_LOWERINGS[name](node.params, dt, node.out_shape, dtype)
    integer = kind >= K.INTEGER_KINDS
    arrays = state_arrays(state, batch, dtype, where, integer=integer)
    shape, state_type = node.out_shape, type(state)
    dtypes = [value.dtype for value in state]

    def finish():
        return state_type(*(a.reshape(batch, *shape).to(d) for a, d in zip(arrays, dtypes)))
    if integer:       # a fixed-point model: int64 state (I2), int64 parameters (IX), int input
        return LoweredNode(kind=kind, state=arrays, ints=params, flags=flags, finish=finish,
                           port_lanes=(K.LANE_INT,))
    return LoweredNode(kind=kind, state=arrays, params=params, flags=flags, finish=finish)


def _arrays(values, shape, dtype, model):
    return [per_neuron(v, shape, dtype, f"{model}.{name}") for name, v in values]


def _fire_flags(p):
    return (K.RESET_CODES[p.reset], int(p.refractory_steps), int(bool(p.input_same_step)))


def _leaky(p, dt):
    """``(v_leak, a, 1 - a, r)`` of ``leaky_integrate``."""
    a = decay_factor(p.tau_mem, dt, p.integration)
    return [("v_leak", p.v_leak), ("a", a), ("1-a", 1.0 - a), ("r", p.r)]


def _threshold(p):
    return [("v_threshold", p.v_threshold), ("v_threshold-v_reset", p.v_threshold - p.v_reset),
            ("v_reset", p.v_reset)]


@register_neuron_lowering("lif")
def lower_lif(p, dt, shape, dtype):
    return K.LIF, _arrays(_leaky(p, dt) + _threshold(p), shape, dtype, "lif"), _fire_flags(p)


@register_neuron_lowering("if")
def lower_if(p, dt, shape, dtype):
    return K.IF, _arrays([("dt*r", dt * p.r)] + _threshold(p), shape, dtype, "if"), _fire_flags(p)


@register_neuron_lowering("li")
def lower_li(p, dt, shape, dtype):
    return K.LI, _arrays(_leaky(p, dt), shape, dtype, "li"), (0, 0, int(bool(p.input_same_step)))


@register_neuron_lowering("integrator")
def lower_integrator(p, dt, shape, dtype):
    return K.INTEGRATOR, _arrays([("dt*r", dt * p.r)], shape, dtype, "integrator"), (0, 0, int(bool(p.input_same_step)))


def _cuba(p, dt):
    """``(a_syn, w_in, v_leak, a_mem, c, r)`` of ``cuba_lif.current_and_membrane``."""
    from ..neurons.cuba_lif import _membrane_coefficients
    a_syn = decay_factor(p.tau_syn, dt, p.integration)
    a_mem, c = _membrane_coefficients(p, dt)
    return [("a_syn", a_syn), ("w_in", p.w_in), ("v_leak", p.v_leak), ("a_mem", a_mem), ("c", c), ("r", p.r)]


@register_neuron_lowering("cuba_lif")
def lower_cuba_lif(p, dt, shape, dtype):
    return K.CUBA_LIF, _arrays(_cuba(p, dt) + _threshold(p), shape, dtype, "cuba_lif"), _fire_flags(p)


@register_neuron_lowering("cuba_li")
def lower_cuba_li(p, dt, shape, dtype):
    return K.CUBA_LI, _arrays(_cuba(p, dt), shape, dtype, "cuba_li"), (0, 0, int(bool(p.input_same_step)))


@register_neuron_lowering("alif")
def lower_alif(p, dt, shape, dtype):
    values = _leaky(p, dt) + [("a_adapt", decay_factor(p.tau_adapt, dt, p.integration)),
                              ("v_threshold", p.v_threshold), ("beta", p.beta), ("v_reset", p.v_reset)]
    return K.ALIF, _arrays(values, shape, dtype, "alif"), _fire_flags(p)


@register_neuron_lowering("coba_lif")
def lower_coba_lif(p, dt, shape, dtype):
    exact = p.integration == "exact"
    values = [("a_exc", decay_factor(p.tau_syn_exc, dt, p.integration)),
              ("a_inh", decay_factor(p.tau_syn_inh, dt, p.integration)), ("g_leak", p.g_leak),
              ("v_leak", p.v_leak), ("e_exc", p.e_exc), ("e_inh", p.e_inh),
              ("k", (-dt / p.tau_mem) if exact else (dt / p.tau_mem))] + _threshold(p)
    reset, refractory, same_step = _fire_flags(p)
    return K.COBA_LIF, _arrays(values, shape, dtype, "coba_lif"), (reset, refractory, same_step, int(exact))
