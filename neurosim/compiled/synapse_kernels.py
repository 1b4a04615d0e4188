"""Compiled (numba) event-driven propagation and delay lines.

Propagation accumulates, for every input row ``b`` and every non-zero input ``x[b, i]`` in
increasing ``i``, the synapses of ``i`` in their stored order into ``z[b, :]`` (zeroed first)::

    z[b, target(i, k)] += w(i, k) x[b, i]

the order in which the torch event paths add them (``F.embedding_bag`` for ``Dense``,
``index_add_`` for ``Sparse`` and for per-synapse delay groups), so the sums agree bit for bit
with those paths for spike inputs (x = 1: ``w x = w`` exactly). Against the dense paths (a BLAS
matmul, a CSR product) they agree to float rounding. Cost: active inputs x fan-out,
plus a vectorised test of the inputs in blocks of :data:`BLOCK` (an empty block costs about as
much as one input read one by one).

Delays (:mod:`neurosim.projections.delay`): ``z`` holds ``G`` groups of ``n_out`` columns
(group ``g`` has delay ``values[g]``). The torch state is the buffer ``[D, batch, out]`` of
contributions arriving 1..D steps after the last completed step; here the same buffer is a ring
with a moving head (``ring[(head + k) % D]`` is the torch ``buffer[k]``), so a step costs
``G x batch x out`` adds instead of shifting the whole buffer. Each arrival slot still receives
its contributions in emission order, as ``delay_step`` adds them.
"""
from __future__ import annotations

from numba import njit

#: inputs tested together for a non-zero before they are visited one by one
BLOCK = 32

__all__ = ["dense_events", "dense_events_grouped", "sparse_events", "delay_line", "add_bias", "group_elements",
           "next_active"]


@njit(cache=True, inline="always", error_model="numpy")
def _any_active(x_b, start, stop):
    """True when ``x_b[start:stop]`` holds a non-zero (a vectorised count: most blocks of a
    sparse spike vector are empty, and are skipped without a branch per input)."""
    count = 0
    for i in range(start, stop):
        count += x_b[i] != 0
    return count > 0


@njit(cache=True, inline="always", error_model="numpy")
def next_active(x_b, i, n):
    """The first index ``>= i`` where ``x_b`` is non-zero, or ``n`` when there is none; a block of
    :data:`BLOCK` inputs that starts at a multiple of BLOCK and holds no non-zero is skipped with
    one vectorised test. Visit the non-zeros with
    ``i = next_active(x_b, 0, n)`` / ``while i < n: ...; i = next_active(x_b, i + 1, n)``."""
    while i < n:
        if (i & (BLOCK - 1)) == 0:
            stop = min(i + BLOCK, n)
            if not _any_active(x_b, i, stop):
                i = stop
                continue
        if x_b[i] != 0:
            return i
        i += 1
    return n


@njit(cache=True, error_model="numpy")
def dense_events(x, weight_t, z):
    """``z = x @ weight_t`` over the non-zero inputs only. x ``[B, in]``, weight_t ``[in, out]``,
    z ``[B, out]``."""
    batch, n_in = x.shape
    n_out = weight_t.shape[1]
    for b in range(batch):
        z_b = z[b]
        for j in range(n_out):
            z_b[j] = 0
        x_b = x[b]
        i = next_active(x_b, 0, n_in)
        while i < n_in:
            value, row = x_b[i], weight_t[i]
            for j in range(n_out):
                z_b[j] += row[j] * value
            i = next_active(x_b, i + 1, n_in)


@njit(cache=True, error_model="numpy")
def dense_events_grouped(x, weight_t, column, z):
    """Per-synapse delay groups of a Dense: ``z[b, column[i * out + j]] += weight_t[i, j] x[b, i]``
    (``column = group * out + j``). z ``[B, G * out]``."""
    batch, n_in = x.shape
    n_out = weight_t.shape[1]
    width = z.shape[1]
    for b in range(batch):
        z_b = z[b]
        for j in range(width):
            z_b[j] = 0
        x_b = x[b]
        i = next_active(x_b, 0, n_in)
        while i < n_in:
            value, row, base = x_b[i], weight_t[i], i * n_out
            for j in range(n_out):
                z_b[column[base + j]] += row[j] * value
            i = next_active(x_b, i + 1, n_in)


@njit(cache=True, error_model="numpy")
def sparse_events(x, row_ptr, rows, weight, z):
    """Sparse: ``z[b, rows[k]] += weight[k] x[b, i]`` for ``k`` in ``row_ptr[i]:row_ptr[i + 1]``
    (synapses stored by presynaptic neuron). z ``[B, R]`` (R = G * out)."""
    batch, n_in = x.shape
    width = z.shape[1]
    for b in range(batch):
        z_b = z[b]
        for j in range(width):
            z_b[j] = 0
        x_b = x[b]
        i = next_active(x_b, 0, n_in)
        while i < n_in:
            value = x_b[i]
            for k in range(row_ptr[i], row_ptr[i + 1]):
                z_b[rows[k]] += weight[k] * value
            i = next_active(x_b, i + 1, n_in)


@njit(cache=True, error_model="numpy")
def group_elements(x, group, groups, z):
    """A ``Delay`` node's per-element groups: ``z[b, g * n + j] = x[b, j]`` where ``group[j] = g``,
    0 elsewhere (``x * onehot``)."""
    batch, n = x.shape
    for b in range(batch):
        x_b = x[b]
        for g in range(groups):
            for j in range(n):
                z[b, g * n + j] = x_b[j] if group[j] == g else 0


@njit(cache=True, error_model="numpy")
def delay_line(z, values, ring, head, out):
    """One step of the delay buffer: ``out = buffer[0] + z_{d=0}``; ``buffer[d - 1] += z_d``
    for d > 0 (arriving d steps from now); the buffer moves on by one step.

    z ``[B, G * n]``; values ``[G]`` (sorted delays); ring ``[D, B, n]``; head ``[1]`` (int64,
    updated); out ``[B, n]``."""
    depth, batch, n = ring.shape
    h = head[0]
    for b in range(batch):
        out_b = out[b]
        for j in range(n):
            out_b[j] = ring[h, b, j]
            ring[h, b, j] = 0
    for g in range(values.shape[0]):
        d = values[g]
        if d == 0:
            for b in range(batch):
                out_b = out[b]
                for j in range(n):
                    out_b[j] += z[b, g * n + j]
        else:
            slot = (h + d) % depth
            for b in range(batch):
                for j in range(n):
                    ring[slot, b, j] += z[b, g * n + j]
    head[0] = (h + 1) % depth


@njit(cache=True, error_model="numpy")
def add_bias(y, bias):
    """``y += bias`` per row. y ``[B, n]``, bias ``[n]``."""
    batch, n = y.shape
    for b in range(batch):
        y_b = y[b]
        for j in range(n):
            y_b[j] += bias[j]
