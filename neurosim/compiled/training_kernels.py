"""Compiled (numba) forward and backward of the fused LIF training kernel: T steps in one pass.

:mod:`neurosim.neurons.lif_fused` runs T LIF steps as one autograd node. On torch, its forward is
a few ops per step and its backward about a dozen passes over ``[T, batch, n]`` plus one op per
step, each paying torch's dispatch (workload 1, ``[100, 16, 1024]``: ~17 ms of LIF against
~55 ms for the two matmuls around it). These kernels do the same work in one pass each, every
neuron's steps in a row of registers, columns shared among threads.

Forward, per neuron and step, with the simulation kernel's own arithmetic
(:func:`neurosim.compiled.neuron_kernels.fire_held`, the operations of ``lif_step`` in order, so
that spikes and membranes equal the torch step's bit for bit)::

    h_t  = v_leak + (v_{t-1} - v_leak) a + (1 - a) (r I_t)         I_t = x_t, or x_{t-1} (i0 at t = 0)
    h'_t = fire_held(h_t, ...): the late reset, the refractory hold    H[t] = h'_t, F[t] = free_t
    s_t  = H(h'_t - v_th) free_t;   v_t = reset(h'_t, s_t)             S[t] = s_t

Backward (the equations of :mod:`neurosim.neurons.lif_fused`), from the last step, with
``carry = dL/dv_t`` per neuron (``grad_v`` at T - 1)::

    g_t   = surrogate'(h'_t - v_th) free_t
    G_t   = dL/ds_t g_t + carry D_t       D_t = 1 - J g_t | 1 - (s_t + h'_t g_t) | 1 - (s_t + (h'_t - v_reset) g_t) | 1
    carry = G_t m_t                        m_t = a where free_t, else 1      (dL/dv_{t-1})
    dest[t] = free_t G_t (1 - a) r                                       (dL/dI_t)

The products are grouped as written (``carry D_t``, not the torch backward's ``G (D m)``), so the
gradients equal the torch kernel's to float rounding, not bit for bit. The surrogate's derivative
is computed here for :class:`~neurosim.surrogate.FastSigmoid` and
:class:`~neurosim.surrogate.Triangle` (their ``grad``'s operations in order); for any other
surrogate the caller passes ``g`` computed by torch, chunk by chunk of steps.

Arrays are C-contiguous: x, H, S, dest ``[T or T + 1, batch, n]``, F bool ``[T, batch, n]`` (a
``[1, 1, 1]`` stand-in without refractory), states ``[batch, n]``, parameters ``[n]`` (the
lowering's ``per_neuron`` arrays). Every kernel works on rows ``b0 <= b < b1`` and neurons
``j0 <= j < j1`` and releases the GIL, so disjoint blocks run in parallel threads
(:func:`neurosim.compiled.threads.run_blocks`); the results do not depend on the split.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from .kinds import RESET_SUBTRACT, RESET_VALUE, RESET_ZERO
from .neuron_kernels import fire_held, one_like, reset_coefficients

__all__ = ["SURROGATE_GIVEN", "SURROGATE_FAST_SIGMOID", "SURROGATE_TRIANGLE", "lif_train_forward",
           "lif_train_backward"]

#: how the backward gets the surrogate's derivative: from an array the caller filled, or computed
SURROGATE_GIVEN, SURROGATE_FAST_SIGMOID, SURROGATE_TRIANGLE = 0, 1, 2


def at(values, j):  # pragma: no cover - replaced by the overload inside compiled code
    """``values[j]`` for a parameter array, ``values`` itself for one number (compiled code only)."""
    raise NotImplementedError


@overload(at)
def _at(values, j):
    if isinstance(values, types.Array):
        return lambda values, j: values[j]
    return lambda values, j: values


def part(values, j0, j1):  # pragma: no cover - replaced by the overload inside compiled code
    """``values[j0:j1]`` for a parameter array, ``values`` itself for one number (compiled code only)."""
    raise NotImplementedError


@overload(part)
def _part(values, j0, j1):
    if isinstance(values, types.Array):
        return lambda values, j0, j1: values[j0:j1]
    return lambda values, j0, j1: values


# ---------------------------------------------------------------- forward
@njit(cache=True, inline="always", error_model="numpy")
def _forward_loop(x, i0, v, refractory, H, S, F, leak, a, c, r, threshold, jump, v_reset, reset,
                  refractory_steps, same_step, keep, b0, b1, j0, j1, refractory_on):
    steps = x.shape[0]
    one = one_like(v)
    zero = one - one
    resets = reset_coefficients(reset, one)
    # rows are sliced to the block's neurons and the loops start at 0: numba then knows every
    # index is non-negative and drops its wraparound test, which kept LLVM from vectorising (3x)
    width = j1 - j0
    leak, a, c, r = part(leak, j0, j1), part(a, j0, j1), part(c, j0, j1), part(r, j0, j1)
    threshold, jump, v_reset = part(threshold, j0, j1), part(jump, j0, j1), part(v_reset, j0, j1)
    for t in range(steps):
        kept = t if keep else 0                      # without keep, H is one scratch step
        for b in range(b0, b1):
            if same_step:
                x_b = x[t, b, j0:j1]
            elif t > 0:
                x_b = x[t - 1, b, j0:j1]
            else:
                x_b = i0[b, j0:j1]
            v_b, ref_b = v[b, j0:j1], refractory[b, j0:j1]
            h_b, s_b = H[kept, b, j0:j1], S[t, b, j0:j1]
            f_b = F[kept, b, j0:j1] if refractory_on else F[0, 0]
            for j in range(width):
                vp = v_b[j]
                h = at(leak, j) + (vp - at(leak, j)) * at(a, j) + at(c, j) * (at(r, j) * x_b[j])
                if refractory_on:
                    f_b[j] = ref_b[j] <= 0
                spiked, after, rest, held = fire_held(h, vp, ref_b[j], at(threshold, j), at(jump, j), at(v_reset, j), resets,
                                                      refractory_steps, refractory_on)
                h_b[j] = held
                s_b[j] = one if spiked else zero
                v_b[j] = after
                ref_b[j] = rest


@njit(cache=True, nogil=True, error_model="numpy")
def lif_train_forward(x, i0, v, refractory, H, S, F, leak, a, c, r, threshold, jump, v_reset, reset,
                      refractory_steps, same_step, keep, uniform, b0, b1, j0, j1):
    """T LIF steps from ``(v, i0, refractory)`` (v and refractory ``[batch, n]`` advanced in place to
    the last step's): spikes into ``S [T, batch, n]``; with ``keep``, h' into ``H [T, batch, n]``
    and the free masks into ``F`` (bool, with refractory), else ``H`` and ``F`` are ``[1, batch, n]``
    scratch (``F`` is ``[1, 1, 1]`` without refractory). Parameters as
    :func:`~neurosim.compiled.neuron_kernels.lif_kernel` takes them (``c = 1 - a``,
    ``jump = v_threshold - v_reset``); ``reset``: a ``kinds.RESET_*`` code. ``uniform``: every
    parameter array holds one value (plain-number parameters), which the loop then reads once
    (twice as fast: fewer arrays for LLVM's run-time overlap tests)."""
    if uniform:
        if refractory_steps > 0:
            _forward_loop(x, i0, v, refractory, H, S, F, leak[0], a[0], c[0], r[0], threshold[0], jump[0], v_reset[0],
                          reset, refractory_steps, same_step, keep, b0, b1, j0, j1, True)
        else:
            _forward_loop(x, i0, v, refractory, H, S, F, leak[0], a[0], c[0], r[0], threshold[0], jump[0], v_reset[0],
                          reset, refractory_steps, same_step, keep, b0, b1, j0, j1, False)
    elif refractory_steps > 0:
        _forward_loop(x, i0, v, refractory, H, S, F, leak, a, c, r, threshold, jump, v_reset, reset,
                      refractory_steps, same_step, keep, b0, b1, j0, j1, True)
    else:
        _forward_loop(x, i0, v, refractory, H, S, F, leak, a, c, r, threshold, jump, v_reset, reset,
                      refractory_steps, same_step, keep, b0, b1, j0, j1, False)


# ---------------------------------------------------------------- backward
@njit(cache=True, inline="always", error_model="numpy")
def _surrogate_grad(z, code, scale, half_scale, one):
    """``FastSigmoid.grad``: d = |z| k + 1, then (1 / (d d)) (k / 2); ``Triangle.grad``:
    max(k (1 - k |z|), 0) (a nan stays nan, as in torch's clamp)."""
    if code == SURROGATE_FAST_SIGMOID:
        d = abs(z) * scale + one
        return (one / (d * d)) * half_scale
    y = scale * (one - scale * abs(z))
    return y - y if y < 0 else y


@njit(cache=True, inline="always", error_model="numpy")
def _backward_loop(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                   code, scale, half_scale, t0, t1, b0, b1, j0, j1, refractory_on):
    one = one_like(carry)
    zero = one - one
    subtract, zero_reset, value = reset == RESET_SUBTRACT, reset == RESET_ZERO, reset == RESET_VALUE
    width = j1 - j0                                  # sliced rows, loops from 0: see _forward_loop
    threshold, a, in_scale = part(threshold, j0, j1), part(a, j0, j1), part(in_scale, j0, j1)
    jump, v_reset = part(jump, j0, j1), part(v_reset, j0, j1)
    # dL/dI goes to a row of its own first, then into dest: dest may be H itself, and a loop that
    # writes the array it reads fails LLVM's run-time overlap test and runs unvectorised (3x slower)
    row = np.empty(width, dtype=carry.dtype)
    for t in range(t1 - 1, t0 - 1, -1):
        for b in range(b0, b1):
            h_b, c_b, d_b = H[t, b, j0:j1], carry[b, j0:j1], dest[t, b, j0:j1]
            gs_b = gs[t if gs_full else 0, b, j0:j1]
            f_b = F[t, b, j0:j1] if refractory_on else F[0, 0]
            given_b = g_given[t - t0, b, j0:j1] if code == SURROGATE_GIVEN else g_given[0, 0]
            for j in range(width):
                h = h_b[j]
                spiked = h - at(threshold, j) > 0                # s_t, as the forward decided it (not re-read)
                if refractory_on:
                    spiked = spiked & f_b[j]
                s = one if spiked else zero
                if code == SURROGATE_GIVEN:
                    g = given_b[j]
                else:
                    g = _surrogate_grad(h - at(threshold, j), code, scale, half_scale, one)
                if refractory_on:
                    g = g * (one if f_b[j] else zero)
                if subtract:
                    slope = one - at(jump, j) * g
                elif zero_reset:
                    slope = one - (s + h * g)
                elif value:
                    slope = one - (s + (h - at(v_reset, j)) * g)
                else:                                # subtract_delayed: the late reset carries no gradient
                    slope = one
                grad_h = g * gs_b[j] + c_b[j] * slope
                if refractory_on:
                    free = f_b[j]
                    c_b[j] = grad_h * (at(a, j) if free else one)
                    grad_h = grad_h * (one if free else zero)
                else:
                    c_b[j] = grad_h * at(a, j)
                row[j] = grad_h * at(in_scale, j)
            for j in range(width):
                d_b[j] = row[j]


@njit(cache=True, inline="always", error_model="numpy")
def _backward_codes(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                    code, scale, half_scale, t0, t1, b0, b1, j0, j1, refractory_on):
    if code == SURROGATE_FAST_SIGMOID:
        _backward_loop(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                       SURROGATE_FAST_SIGMOID, scale, half_scale, t0, t1, b0, b1, j0, j1, refractory_on)
    elif code == SURROGATE_TRIANGLE:
        _backward_loop(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                       SURROGATE_TRIANGLE, scale, half_scale, t0, t1, b0, b1, j0, j1, refractory_on)
    else:
        _backward_loop(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                       SURROGATE_GIVEN, scale, half_scale, t0, t1, b0, b1, j0, j1, refractory_on)


@njit(cache=True, nogil=True, error_model="numpy")
def lif_train_backward(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                       code, scale, half_scale, refractory, uniform, t0, t1, b0, b1, j0, j1):
    """Steps ``t1 - 1`` down to ``t0`` of the backward (module docstring): ``carry [batch, n]``
    holds dL/dv of step ``t1 - 1`` and is left holding dL/dv of step ``t0 - 1``; ``dest[t]`` gets
    dL/dI_t (it may be H itself: each h' is read before its slot is written). ``gs``: dL/ds
    ``[T, batch, n]`` (``gs_full``) or ``[1, batch, n]`` for every step (a gradient broadcast
    along time). ``code``: a ``SURROGATE_*`` number; with ``SURROGATE_GIVEN``, ``g_given[t - t0]``
    holds g_t. The spikes are not read: s_t = H(h'_t - v_th) free_t, as the forward decided them
    (one stream fewer from memory). ``scale``, ``half_scale``: the surrogate's k and k / 2 in the arrays' dtype.
    ``refractory``: whether the population has a refractory period (F then holds the free masks
    ``[T, batch, n]``; else it is a ``[1, 1, 1]`` stand-in). ``uniform``: as in
    :func:`lif_train_forward`."""
    if uniform:
        if refractory:
            _backward_codes(H, F, gs, gs_full, g_given, carry, dest, threshold[0], a[0], in_scale[0], jump[0],
                            v_reset[0], reset, code, scale, half_scale, t0, t1, b0, b1, j0, j1, True)
        else:
            _backward_codes(H, F, gs, gs_full, g_given, carry, dest, threshold[0], a[0], in_scale[0], jump[0],
                            v_reset[0], reset, code, scale, half_scale, t0, t1, b0, b1, j0, j1, False)
    elif refractory:
        _backward_codes(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                        code, scale, half_scale, t0, t1, b0, b1, j0, j1, True)
    else:
        _backward_codes(H, F, gs, gs_full, g_given, carry, dest, threshold, a, in_scale, jump, v_reset, reset,
                        code, scale, half_scale, t0, t1, b0, b1, j0, j1, False)
