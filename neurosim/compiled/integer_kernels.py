"""Compiled fixed-point kernels: Loihi 2's integer CUBA neuron and its integer synapse.

The arithmetic is :func:`neurosim.hardware.loihi.fixed_point.loihi_cuba_step` and
``LoihiDense.synaptic_input`` (the reference; the conformance tests in ``tests/compiled``
compare every value), written out per element in int64. Every array here is int64 except the
spikes (0/1 in the block's float dtype)::

    u' = wrap24(trunc(u (4096 - i_decay) / 4096) + x)         then stored as int32 (wrap32)
    v' = clip(trunc(v (4096 - v_decay) / 4096) + u' + bias, -(2^23 - 1), 2^23 - 1)
    v' = v                where refractory (r > 0), when refractory_delay > 0
    s  = v' > threshold   and r <= 0
    v' = 0 where s;   r' = refractory_delay where s, else max(r - 1, 0)

``trunc(p / 4096)`` is ``(p + ((p >> 63) & 4095)) >> 12`` (an arithmetic shift rounds toward
-inf; adding 4095 to a negative ``p`` first makes it round toward zero, as
``torch.div(..., rounding_mode="trunc")``). ``bias = bias_mant << bias_exp`` and
``threshold = v_th_mant << 6`` are per-neuron tables made by the lowering
(:mod:`neurosim.hardware.loihi.compiled`).

The synapse sums ``z[b, j] = sum_i w[i, j] x[b, i]`` over the non-zero inputs in increasing
``i`` with ``w = m << (e + 6)`` (int64 ``[in, out]``). The torch path computes the same sum as a
float64 matmul rounded to int64, which is exact for integer inputs (spikes); an input that is not
a whole number is counted in ``status[0]`` and the block is then run again on the torch path
(:class:`neurosim.compiled.program.CompiledBlock`), so the compiled result is only ever the exact
one.
"""
from __future__ import annotations

from numba import njit

from .synapse_kernels import next_active

__all__ = ["loihi_cuba_kernel", "loihi_events"]

_UV = 1 << 23                 # 24-bit signed u and v
_WORD = 1 << 32               # int32 storage of the torch state


@njit(cache=True, inline="always", error_model="numpy")
def _trunc_4096(p):
    """``p / 4096`` rounded toward zero (int64)."""
    return (p + ((p >> 63) & 4095)) >> 12


@njit(cache=True, inline="always", error_model="numpy")
def _int32(value):
    """``value`` as torch's ``.to(torch.int32)`` keeps it: the low 32 bits, signed."""
    return ((value + (1 << 31)) & (_WORD - 1)) - (1 << 31)


@njit(cache=True, error_model="numpy")
def loihi_cuba_kernel(x, u, v, r, out, i_factor, v_factor, bias, threshold, refractory_delay):
    """One step of ``loihi_cuba`` for ``[B, n]`` int64 ``x, u, v, r`` (advanced in place) and spikes
    ``out`` ``[B, n]`` (float). ``i_factor = 4096 - i_decay``, ``v_factor = 4096 - v_decay``,
    ``bias``, ``threshold``: int64 ``[n]``; ``refractory_delay``: steps (0: none)."""
    batch, n = x.shape
    for b in range(batch):
        x_b, u_b, v_b, r_b, out_b = x[b], u[b], v[b], r[b], out[b]
        for j in range(n):
            current = _trunc_4096(u_b[j] * i_factor[j]) + x_b[j]
            current = current - 2 * _UV if current > _UV else current
            current = current + 2 * _UV if current <= -_UV else current
            u_b[j] = _int32(current)
            v_old = v_b[j]
            voltage = _trunc_4096(v_old * v_factor[j]) + current + bias[j]
            voltage = min(max(voltage, -(_UV - 1)), _UV - 1)
            free = r_b[j] <= 0
            if refractory_delay > 0 and not free:
                voltage = v_old
            fired = free and voltage > threshold[j]
            v_b[j] = 0 if fired else voltage
            r_b[j] = refractory_delay if fired else max(r_b[j] - 1, 0)
            out_b[j] = 1 if fired else 0


@njit(cache=True, error_model="numpy")
def loihi_events(x, weight_t, z, status):
    """``z = x @ weight_t`` in int64 over the non-zero inputs; x ``[B, in]`` (float, whole numbers),
    weight_t int64 ``[in, out]``, z int64 ``[B, out]``; an input that is not a whole number adds
    one to ``status[0]`` (the result is then not the torch path's, and is discarded)."""
    batch, n_in = x.shape
    n_out = weight_t.shape[1]
    for b in range(batch):
        z_b, x_b = z[b], x[b]
        z_b[:] = 0
        i = next_active(x_b, 0, n_in)
        while i < n_in:
            value, row = x_b[i], weight_t[i]
            if value == 1:
                for j in range(n_out):
                    z_b[j] += row[j]
            else:
                whole = int(value)
                if whole != value or abs(value) > 2.0 ** 31:
                    status[0] += 1
                for j in range(n_out):
                    z_b[j] += row[j] * whole
            i = next_active(x_b, i + 1, n_in)
