"""Compiled (numba) steps of the neuron models: the arithmetic of each model's torch step, in order.

Each kernel advances one population by one step, in place, over ``[batch, n]`` arrays:
``x`` the input of the step, the model's state fields (updated), the parameter arrays ``[n]``
(every parameter expanded to the population), and ``out`` (spikes, or the membrane of the
non-spiking models). The parameters arrive already combined the way the torch step combines
them (``a = exp(-dt / tau)``, ``1 - a``, ``v_threshold - v_reset`` ...), computed by the
lowering with the same Python or tensor expressions as the step
(:mod:`neurosim.compiled.lower_neurons`), so that every floating operation left here is one
the torch step also does, on the same operands, in the same order, in the same dtype. That is
what makes the compiled path give the torch path's spikes bit for bit (tested per model over a
grid of parameters, ``tests/compiled``); the exponential of the COBA ``"exact"`` scheme is
the one place where two libraries' ``exp`` may differ in the last bit.

Every kernel is compiled with ``error_model="numpy"``: a division by zero gives inf or nan, as
in torch, instead of numba's default Python semantics, whose test before every division kept
LLVM from vectorising the COBA loop (5x slower).

Floating literals are never mixed into the arithmetic (numba would promote float32 to float64):
constants come as arrays of the state's dtype, or through :func:`one_like`.

Speed: the loops work on one row (``x[b]``, 1D) at a time and use selects, not branches, so
LLVM vectorises them (8 float32 lanes with AVX2): a branchy LIF loop cost 4 ns per neuron and
step, this one 0.5 ns. Each kernel is a thin dispatcher over copies of its loop (``_..._loop``, inlined) in
which the settings that change the loop's shape (a refractory period; COBA's integration scheme
and conductance scaling) are compile-time constants: a run-time test of them inside the loop
made the COBA loop three times slower. The reset mode and ``input_same_step`` become
numbers (:func:`reset_coefficients`, :func:`input_coefficients`) that multiply exactly by 0 or 1,
and COBA always divides by ``g_leak`` (a division by 1 is exact), so no run-time setting is
tested inside a loop.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .kinds import RESET_DELAYED, RESET_SUBTRACT, RESET_VALUE, RESET_ZERO

__all__ = ["fire", "fire_held", "lif_kernel", "if_kernel", "li_kernel", "integrator_kernel", "cuba_lif_kernel",
           "cuba_li_kernel", "alif_kernel", "coba_lif_kernel", "one_like"]


def as_type_of(sample, value):  # pragma: no cover - replaced by the overload inside compiled code
    """``value`` converted to the type of ``sample``, a scalar or the element type of an array
    (compiled code only)."""
    raise NotImplementedError


@overload(as_type_of)
def _as_type_of(sample, value):
    kind = as_dtype(getattr(sample, "dtype", sample)).type

    def implementation(sample, value):
        return kind(value)
    return implementation


@njit(cache=True, inline="always", error_model="numpy")
def one_like(array):
    """1 in the element type of ``array``."""
    return as_type_of(array, 1)


@njit(cache=True, inline="always", error_model="numpy")
def reset_coefficients(reset, one):
    """The reset mode as four numbers of the state's dtype (``one`` is 1 in it), so that the
    loops hold no test of it (a run-time test in a loop keeps LLVM from vectorising it)::

        after = (h keep - jump minus_jump) + v_reset to_value      (the membrane after a spike)
        h <- h - jump (delayed H(v_previous - threshold))          (the late reset)

    zero (0, 0, 0, 0): 0; subtract (1, 1, 0, 0): h - jump; value (0, 0, 1, 0): v_reset;
    subtract_delayed (1, 0, 0, 1): h. Every product is by 0 or 1 and every sum adds a zero, so
    each value is exactly the one the torch step computes (up to the sign of a zero)."""
    zero = one - one
    keep = one if (reset == RESET_SUBTRACT) | (reset == RESET_DELAYED) else zero
    minus_jump = one if reset == RESET_SUBTRACT else zero
    to_value = one if reset == RESET_VALUE else zero
    delayed = one if reset == RESET_DELAYED else zero
    return keep, minus_jump, to_value, delayed


@njit(cache=True, inline="always", error_model="numpy")
def input_coefficients(same_step, one):
    """``(now, held)``: the input of a step is ``x now + i held`` (x or the held input i, exactly)."""
    zero = one - one
    return (one, zero) if same_step else (zero, one)


@njit(cache=True, inline="always", error_model="numpy")
def fire_held(h, v_previous, refractory, threshold, jump, v_reset, coefficients, refractory_steps, refractory_on):
    """Threshold, reset and refractory count of one neuron, as ``lif.integrate_and_fire``::

        subtract_delayed: h <- h - H(v_previous - threshold) jump        (jump = v_th - v_reset)
        refractory_steps > 0: held (h <- v_previous, no spike) while refractory > 0
        s = H(h - threshold);  h <- reset(h, s);  refractory <- R if s else max(refractory - 1, 0)

    ``coefficients``: :func:`reset_coefficients` of the reset mode. Written with selects and
    arithmetic only (no data-dependent branch), so that the loops calling it vectorise; every
    value is the one the torch step computes. ``refractory_on`` (``refractory_steps > 0``) is a
    compile-time constant at each call site. Returns ``(spiked, h after the reset, refractory,
    h before the reset)``; the last is the h' that training keeps (:mod:`.training_kernels`)."""
    keep, minus_jump, to_value, delayed = coefficients
    zero = keep - keep
    h = h - jump * (delayed if v_previous > threshold else zero)
    if refractory_on:            # counts stay in the state's dtype (mixing in int64 would widen them)
        one = as_type_of(refractory, 1)
        free = refractory <= 0
        h = h if free else v_previous
        spiked = (h - threshold > 0) & free
        counted = refractory - one if refractory > one else refractory - refractory
        refractory = as_type_of(refractory, refractory_steps) if spiked else counted
    else:
        spiked = h - threshold > 0
    after = (h * keep - jump * minus_jump) + v_reset * to_value
    return spiked, (after if spiked else h), refractory, h


@njit(cache=True, inline="always", error_model="numpy")
def fire(h, v_previous, refractory, threshold, jump, v_reset, coefficients, refractory_steps, refractory_on):
    """:func:`fire_held` without the h before the reset: ``(spiked, h, refractory)``."""
    spiked, after, refractory, _ = fire_held(h, v_previous, refractory, threshold, jump, v_reset, coefficients,
                                             refractory_steps, refractory_on)
    return spiked, after, refractory


# ---------------------------------------------------------------- LIF
@njit(cache=True, inline="always", error_model="numpy")
def _lif_loop(x, v, i, refractory, out, leak, a, c, r, threshold, jump, v_reset, reset, refractory_steps,
              same_step, refractory_on):
    batch, n = v.shape
    one = one_like(v)
    resets = reset_coefficients(reset, one)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        refractory_b = refractory[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            current = x_b[j] * now + i_b[j] * held
            vp = v_b[j]
            h = leak[j] + (vp - leak[j]) * a[j] + c[j] * (r[j] * current)
            spiked, h, rest = fire(h, vp, refractory_b[j], threshold[j], jump[j], v_reset[j],
                                   resets, refractory_steps, refractory_on)
            v_b[j] = h
            i_b[j] = x_b[j]
            refractory_b[j] = rest
            out_b[j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def lif_kernel(x, v, i, refractory, out, leak, a, c, r, threshold, jump, v_reset,
               reset, refractory_steps, same_step):
    """LIF: ``h = v_leak + (v - v_leak) a + c (r I)``, ``c = 1 - a``, I = x (same step) or the
    held input; then :func:`fire`. State (v, i, refractory); out: spikes."""
    if refractory_steps > 0:
        _lif_loop(x, v, i, refractory, out, leak, a, c, r, threshold, jump, v_reset, reset, refractory_steps,
                  same_step, True)
    else:
        _lif_loop(x, v, i, refractory, out, leak, a, c, r, threshold, jump, v_reset, reset, refractory_steps,
                  same_step, False)


# ---------------------------------------------------------------- IF
@njit(cache=True, inline="always", error_model="numpy")
def _if_loop(x, v, i, refractory, out, k, threshold, jump, v_reset, reset, refractory_steps, same_step,
             refractory_on):
    batch, n = v.shape
    one = one_like(v)
    resets = reset_coefficients(reset, one)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        refractory_b = refractory[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            current = x_b[j] * now + i_b[j] * held
            vp = v_b[j]
            h = vp + k[j] * current
            spiked, h, rest = fire(h, vp, refractory_b[j], threshold[j], jump[j], v_reset[j],
                                   resets, refractory_steps, refractory_on)
            v_b[j] = h
            i_b[j] = x_b[j]
            refractory_b[j] = rest
            out_b[j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def if_kernel(x, v, i, refractory, out, k, threshold, jump, v_reset, reset, refractory_steps, same_step):
    """IF: ``h = v + (dt r) I`` (``k = dt r``); then :func:`fire`. State (v, i, refractory)."""
    if refractory_steps > 0:
        _if_loop(x, v, i, refractory, out, k, threshold, jump, v_reset, reset, refractory_steps, same_step, True)
    else:
        _if_loop(x, v, i, refractory, out, k, threshold, jump, v_reset, reset, refractory_steps, same_step, False)


# ---------------------------------------------------------------- LI, integrator
@njit(cache=True, error_model="numpy")
def li_kernel(x, v, i, out, leak, a, c, r, same_step):
    """LI: ``v = v_leak + (v - v_leak) a + c (r I)``; out: v. State (v, i)."""
    batch, n = v.shape
    one = one_like(v)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            current = x_b[j] * now + i_b[j] * held
            h = leak[j] + (v_b[j] - leak[j]) * a[j] + c[j] * (r[j] * current)
            v_b[j] = h
            i_b[j] = x_b[j]
            out_b[j] = h


@njit(cache=True, error_model="numpy")
def integrator_kernel(x, v, i, out, k, same_step):
    """Integrator: ``v = v + (dt r) I``; out: v. State (v, i)."""
    batch, n = v.shape
    one = one_like(v)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            current = x_b[j] * now + i_b[j] * held
            h = v_b[j] + k[j] * current
            v_b[j] = h
            i_b[j] = x_b[j]
            out_b[j] = h


# ---------------------------------------------------------------- CubaLIF, CubaLI
@njit(cache=True, inline="always", error_model="numpy")
def _cuba_lif_loop(x, v, i, refractory, out, a_syn, w_in, leak, a_mem, c, r, threshold, jump, v_reset,
                   reset, refractory_steps, same_step, refractory_on):
    batch, n = v.shape
    one = one_like(v)
    resets = reset_coefficients(reset, one)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        refractory_b = refractory[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            ip = i_b[j]
            inew = ip * a_syn[j] + w_in[j] * x_b[j]
            drive = inew * now + ip * held
            vp = v_b[j]
            h = leak[j] + (vp - leak[j]) * a_mem[j] + c[j] * (r[j] * drive)
            spiked, h, rest = fire(h, vp, refractory_b[j], threshold[j], jump[j], v_reset[j],
                                   resets, refractory_steps, refractory_on)
            v_b[j] = h
            i_b[j] = inew
            refractory_b[j] = rest
            out_b[j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def cuba_lif_kernel(x, v, i, refractory, out, a_syn, w_in, leak, a_mem, c, r, threshold, jump, v_reset,
                    reset, refractory_steps, same_step):
    """CubaLIF: ``i' = i a_syn + w_in x``; ``h = v_leak + (v - v_leak) a_mem + c (r drive)``,
    drive = i' (same step) or i; then :func:`fire`. State (v, i, refractory)."""
    if refractory_steps > 0:
        _cuba_lif_loop(x, v, i, refractory, out, a_syn, w_in, leak, a_mem, c, r, threshold, jump, v_reset,
                       reset, refractory_steps, same_step, True)
    else:
        _cuba_lif_loop(x, v, i, refractory, out, a_syn, w_in, leak, a_mem, c, r, threshold, jump, v_reset,
                       reset, refractory_steps, same_step, False)


@njit(cache=True, error_model="numpy")
def cuba_li_kernel(x, v, i, out, a_syn, w_in, leak, a_mem, c, r, same_step):
    """CubaLI: the CubaLIF update without threshold; out: v. State (v, i)."""
    batch, n = v.shape
    one = one_like(v)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        i_b = i[b]
        out_b = out[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            ip = i_b[j]
            inew = ip * a_syn[j] + w_in[j] * x_b[j]
            drive = inew * now + ip * held
            h = leak[j] + (v_b[j] - leak[j]) * a_mem[j] + c[j] * (r[j] * drive)
            v_b[j] = h
            i_b[j] = inew
            out_b[j] = h


# ---------------------------------------------------------------- ALIF
@njit(cache=True, inline="always", error_model="numpy")
def _alif_loop(x, v, i, adaptation, refractory, out, leak, a, c, r, a_adapt, threshold, beta, v_reset,
               reset, refractory_steps, same_step, refractory_on):
    batch, n = v.shape
    one = one_like(v)
    resets = reset_coefficients(reset, one)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        adaptation_b = adaptation[b]
        i_b = i[b]
        out_b = out[b]
        refractory_b = refractory[b]
        v_b = v[b]
        x_b = x[b]
        for j in range(n):
            current = x_b[j] * now + i_b[j] * held
            vp = v_b[j]
            h = leak[j] + (vp - leak[j]) * a[j] + c[j] * (r[j] * current)
            adapted = adaptation_b[j] * a_adapt[j]
            theta = threshold[j] + beta[j] * adapted
            spiked, h, rest = fire(h, vp, refractory_b[j], theta, theta - v_reset[j], v_reset[j],
                                   resets, refractory_steps, refractory_on)
            v_b[j] = h
            i_b[j] = x_b[j]
            adaptation_b[j] = adapted + one if spiked else adapted
            refractory_b[j] = rest
            out_b[j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def alif_kernel(x, v, i, adaptation, refractory, out, leak, a, c, r, a_adapt, threshold, beta, v_reset,
                reset, refractory_steps, same_step):
    """ALIF: the LIF membrane; ``b' = b a_adapt``, ``theta = v_th + beta b'``; :func:`fire` with
    theta (jump ``theta - v_reset``); ``b <- b' + s``. State (v, i, b, refractory)."""
    if refractory_steps > 0:
        _alif_loop(x, v, i, adaptation, refractory, out, leak, a, c, r, a_adapt, threshold, beta, v_reset,
                   reset, refractory_steps, same_step, True)
    else:
        _alif_loop(x, v, i, adaptation, refractory, out, leak, a, c, r, a_adapt, threshold, beta, v_reset,
                   reset, refractory_steps, same_step, False)


# ---------------------------------------------------------------- COBA LIF
@njit(cache=True, inline="always", error_model="numpy")
def _coba_loop(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh,
               k, threshold, jump, v_reset, reset, refractory_steps, same_step, refractory_on, exact):
    batch, n = v.shape
    one = one_like(v)
    resets = reset_coefficients(reset, one)
    now, held = input_coefficients(same_step, one)
    for b in range(batch):
        g_exc_b = g_exc[b]
        g_inh_b = g_inh[b]
        out_b = out[b]
        refractory_b = refractory[b]
        v_b = v[b]
        x_exc_b = x_exc[b]
        x_inh_b = x_inh[b]
        for j in range(n):
            ge_old = g_exc_b[j]
            gi_old = g_inh_b[j]
            ge_new = ge_old * a_exc[j] + x_exc_b[j]
            gi_new = gi_old * a_inh[j] + x_inh_b[j]
            ge = ge_new * now + ge_old * held
            gi = gi_new * now + gi_old * held
            ge = ge / g_leak[j]
            gi = gi / g_leak[j]
            total = one + ge + gi
            drive = leak[j] + ge * e_exc[j] + gi * e_inh[j]
            vp = v_b[j]
            if exact:
                v_inf = drive / total
                h = v_inf + (vp - v_inf) * np.exp(total * k[j])
            else:
                h = vp + (drive - total * vp) * k[j]
            spiked, h, rest = fire(h, vp, refractory_b[j], threshold[j], jump[j], v_reset[j],
                                   resets, refractory_steps, refractory_on)
            v_b[j] = h
            g_exc_b[j] = ge_new
            g_inh_b[j] = gi_new
            refractory_b[j] = rest
            out_b[j] = 1 if spiked else 0


@njit(cache=True, error_model="numpy")
def coba_lif_kernel(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh,
                    k, threshold, jump, v_reset, reset, refractory_steps, same_step, exact):
    """COBA LIF (:mod:`neurosim.neurons.coba_lif`)::

        g_e' = g_e a_exc + x_exc;  g_i' = g_i a_inh + x_inh;  (ge, gi) = (g_e', g_i') or (g_e, g_i)
        ge /= g_leak, gi /= g_leak;  G = 1 + ge + gi;  D = v_leak + ge e_exc + gi e_inh
        exact: v_inf = D / G;  h = v_inf + (v - v_inf) exp(G k)      (k = -dt / tau_mem)
        euler: h = v + (D - G v) k                                   (k = dt / tau_mem)

    then :func:`fire`. State (v, g_exc, g_inh, refractory)."""
    if refractory_steps > 0:
        if exact:
            _coba_loop(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh, k,
                       threshold, jump, v_reset, reset, refractory_steps, same_step, True, True)
        else:
            _coba_loop(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh, k,
                       threshold, jump, v_reset, reset, refractory_steps, same_step, True, False)
    elif exact:
        _coba_loop(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh, k,
                   threshold, jump, v_reset, reset, refractory_steps, same_step, False, True)
    else:
        _coba_loop(x_exc, x_inh, v, g_exc, g_inh, refractory, out, a_exc, a_inh, g_leak, leak, e_exc, e_inh, k,
                   threshold, jump, v_reset, reset, refractory_steps, same_step, False, False)
