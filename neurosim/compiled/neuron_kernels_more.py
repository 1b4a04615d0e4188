"""Compiled (numba) steps of the Izhikevich and AdEx models: their torch steps' arithmetic, in order.

Same contract as :mod:`neurosim.compiled.neuron_kernels`: each kernel advances one population by
one step, in place, over ``[batch, n]`` arrays (``x`` the input, the State fields, ``out`` the
spikes), with every parameter an ``[n]`` array of the state's dtype, already combined the way
the torch step combines it (``h = 1e3 dt``, ``h a``, ``dt / C``, ``dt / tau_w``: computed by
:mod:`neurosim.compiled.lower_neurons_more` with the step's own expressions). The polynomial's
literal constants (0.04, 5, 140) arrive as arrays too: a Python float literal in the arithmetic
would make numba promote float32 to float64, where torch rounds the literal to float32 once.

Every floating operation left here is one of the torch step, on the same operands, in the same
order (Python's left-to-right evaluation, which numba keeps: no fast-math, no contraction), so
spikes and states are the torch path's bit for bit; AdEx's ``exp`` is numba's (libm) where
torch's is SLEEF's, the one place where the two may differ in the last bit.

The value reset is an assignment (``v <- c``), which is what torch's ``v (1 - s) + s c`` gives
for every finite ``v`` (as :func:`~neurosim.compiled.neuron_kernels.fire` does for the LIF family).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .kinds import RESET_VALUE
from .neuron_kernels import fire, one_like, reset_coefficients

__all__ = ["izhikevich_kernel", "adex_kernel"]


# ---------------------------------------------------------------- Izhikevich
@njit(cache=True, error_model="numpy")
def izhikevich_kernel(x, v, u, i, out, c004, c5, c140, h, ha, b_, c_, d_, v_peak, same_step):
    """Izhikevich (:mod:`neurosim.neurons.izhikevich`), one Euler step of ``h`` ms::

        I  = x (same step) or the held input i
        v' = v + h (((0.04 v + 5) v + 140) - u + I)          (each operation in this order)
        u' = u + (h a) (b v - u)
        s  = H(v' - v_peak);  v' <- c where s;  u' <- u' + d where s;  i <- x

    Shapes: x, v, u, i, out ``[batch, n]`` (v, u in mV, h in ms); every parameter ``[n]``:
    c004, c5, c140 the constants 0.04, 5, 140, h = 1e3 dt, ha = h a, then b, c, d, v_peak.
    ``same_step``: 1 when the input of step t acts at step t. out: spikes (0 / 1)."""
    batch, n = v.shape
    for bb in range(batch):
        for j in range(n):
            current = x[bb, j] if same_step else i[bb, j]
            vp = v[bb, j]
            up = u[bb, j]
            vn = vp + h[j] * ((((c004[j] * vp) + c5[j]) * vp + c140[j]) - up + current)
            un = up + ha[j] * (b_[j] * vp - up)
            spiked = vn - v_peak[j] > 0
            v[bb, j] = c_[j] if spiked else vn
            u[bb, j] = un + d_[j] if spiked else un
            i[bb, j] = x[bb, j]
            out[bb, j] = 1 if spiked else 0


# ---------------------------------------------------------------- AdEx
@njit(cache=True, inline="always", error_model="numpy")
def _adex_loop(x, v, w, i, refractory, out, e_l, v_t, delta_t, k_v, g_l, k_w, a, v_peak, v_reset, b_,
               refractory_steps, same_step, refractory_on):
    batch, n = v.shape
    resets = reset_coefficients(RESET_VALUE, one_like(v))
    for bb in range(batch):
        for j in range(n):
            current = x[bb, j] if same_step else i[bb, j]
            vp = v[bb, j]
            wp = w[bb, j]
            leak = vp - e_l[j]
            upswing = delta_t[j] * np.exp((vp - v_t[j]) / delta_t[j])
            vn = vp + k_v[j] * (g_l[j] * (upswing - leak) - wp + current)
            wn = wp + k_w[j] * (a[j] * leak - wp)
            spiked, vn, rest = fire(vn, vp, refractory[bb, j], v_peak[j], v_peak[j] - v_reset[j], v_reset[j],
                                    resets, refractory_steps, refractory_on)
            v[bb, j] = vn
            w[bb, j] = wn + b_[j] if spiked else wn
            i[bb, j] = x[bb, j]
            refractory[bb, j] = rest
            out[bb, j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def adex_kernel(x, v, w, i, refractory, out, e_l, v_t, delta_t, k_v, g_l, k_w, a, v_peak, v_reset, b_,
                refractory_steps, same_step):
    """AdEx (:mod:`neurosim.neurons.adex`), one Euler step (SI units)::

        I  = x (same step) or the held input i;  L = v - E_L
        v' = v + (dt / C) (g_L (Delta_T exp((v - V_T) / Delta_T) - L) - w + I)
        w' = w + (dt / tau_w) (a L - w)
        :func:`~neurosim.compiled.neuron_kernels.fire` with threshold V_peak, reset to V_reset,
        refractory hold of ``refractory_steps``;  w' <- w' + b where s;  i <- x

    Shapes: x, v, w, i, refractory, out ``[batch, n]``; every parameter ``[n]``: E_L, V_T,
    Delta_T, k_v = dt / C, g_L, k_w = dt / tau_w, a, V_peak, V_reset, b. The refractory period
    selects a copy of the loop with it as a compile-time constant. out: spikes (0 / 1)."""
    if refractory_steps > 0:
        _adex_loop(x, v, w, i, refractory, out, e_l, v_t, delta_t, k_v, g_l, k_w, a, v_peak, v_reset, b_,
                   refractory_steps, same_step, True)
    else:
        _adex_loop(x, v, w, i, refractory, out, e_l, v_t, delta_t, k_v, g_l, k_w, a, v_peak, v_reset, b_,
                   refractory_steps, same_step, False)
