"""Lowerings of the Izhikevich and AdEx models: parameters combined exactly as their torch steps do.

Each derived constant is the step's own expression on the same values (``h = dt * 1e3``,
``h * p.a``, ``dt / p.C``, ``dt / p.tau_w``): a Python float stays a Python float (rounded to the
state's dtype once, by :func:`~neurosim.compiled.lowering.per_neuron`, as torch rounds a scalar
operand) and a tensor stays a tensor (``dt / C`` of a tensor is torch's ``C.reciprocal() * dt``,
so it is computed by torch here too). The polynomial's literals 0.04, 5.0 and 140.0 become
arrays of the state's dtype. The list order is the kernel's argument order
(:mod:`neurosim.compiled.neuron_kernels_more`, dispatched by :mod:`neurosim.compiled.machine`).

Flags: ``(reset, refractory_steps, input_same_step)`` as for the LIF family (Izhikevich has no
refractory period and always resets to a value; its first two flags are unused).
"""
from __future__ import annotations

from . import kinds as K
from .lowering import per_neuron, register_neuron_lowering

__all__ = ["lower_izhikevich", "lower_adex"]


def _arrays(values, shape, dtype, model):
    """Each ``(name, value)`` as an ``[n]`` array of ``dtype`` (raises NotLowerable naming it)."""
    return [per_neuron(v, shape, dtype, f"{model}.{name}") for name, v in values]


@register_neuron_lowering("izhikevich")
def lower_izhikevich(p, dt, shape, dtype):
    """``[0.04, 5.0, 140.0, h, h a, b, c, d, v_peak]`` with ``h = dt * 1e3`` (ms per step)."""
    h = dt * 1e3
    values = [("0.04", 0.04), ("5.0", 5.0), ("140.0", 140.0), ("h", h), ("h*a", h * p.a), ("b", p.b),
              ("c", p.c), ("d", p.d), ("v_peak", p.v_peak)]
    return (K.IZHIKEVICH, _arrays(values, shape, dtype, "izhikevich"),
            (K.RESET_VALUE, 0, int(bool(p.input_same_step))))


@register_neuron_lowering("adex")
def lower_adex(p, dt, shape, dtype):
    """``[E_L, V_T, Delta_T, dt / C, g_L, dt / tau_w, a, V_peak, V_reset, b]``."""
    values = [("E_L", p.E_L), ("V_T", p.V_T), ("Delta_T", p.Delta_T), ("dt/C", dt / p.C), ("g_L", p.g_L),
              ("dt/tau_w", dt / p.tau_w), ("a", p.a), ("V_peak", p.V_peak), ("V_reset", p.V_reset), ("b", p.b)]
    return (K.ADEX, _arrays(values, shape, dtype, "adex"),
            (K.RESET_VALUE, int(p.refractory_steps), int(bool(p.input_same_step))))
