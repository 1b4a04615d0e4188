"""Compiled event-driven propagation of a whole sequence at once (a ``Dense`` outside any loop).

A stateless ``Dense`` between layers needs no time loop: all ``R = T x batch`` rows of its input
are known before it runs. The torch path sums, row by row, the weight rows of the active inputs
(``F.embedding_bag``); every active row of the ``[in, out]`` table is then read from memory once
per use (1 % of 4096 inputs over 1000 steps: 41,000 reads of 16 KB rows, 670 MB, for a 64 MB
table). Here the loops are turned round so that each weight row is read once, while the output
stays in cache::

    by_input:  for each input i, the rows r where x[r, i] != 0 (increasing r), and x[r, i]
    for each tile of TILE output columns (the tile of z, R x TILE, ~4 MB, stays in cache):
        z[:, tile] = 0
        for i in increasing order:                     weight_t[i, tile] is read once
            for each (r, value) of input i:   z[r, tile] += weight_t[i, tile] value

Every ``z[r, j]`` still receives its terms in increasing ``i``, the order of the torch event
path's sum, so the result is that path's bit for bit for spike inputs (value 1: ``w x = w``), and
equal to float rounding for graded values (the torch kernel may fuse the multiply-add). The
input scan skips empty blocks of inputs with one test (``synapse_kernels.next_active``).
Tiles are independent, so they are shared among torch's intra-op thread count of Python threads
(the kernel releases the GIL): no threading layer, and the sums do not depend on the threads.
Workload 2's gather (``[1000, 4096]`` at 1 %, 4096 outputs): 42 ms for the torch event path on
2 threads, 41 ms here on one, 22-24 ms on two (quiet machine).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .synapse_kernels import next_active
from .threads import run_blocks

__all__ = ["inputs_by_input", "scatter_rows", "tile_columns", "event_sequence"]

#: bytes of output (rows x tile columns) kept in cache while the weight rows stream past
TILE_BYTES = 4 << 20


def tile_columns(rows: int, n_out: int, element_bytes: int, threads: int = 1) -> int:
    """Output columns per tile: ``TILE_BYTES / (rows x element)``, a multiple of 64 between 64
    and ``n_out``, and small enough that every thread gets a tile."""
    tile = TILE_BYTES // max(1, rows * element_bytes)
    share = -(-n_out // max(1, threads))
    return int(max(64, min(tile, share, n_out) // 64 * 64)) if n_out >= 64 else n_out


@njit(cache=True, error_model="numpy")
def inputs_by_input(x, starts, times, values, rows_of, inputs_of, values_of):
    """For each input ``i``: ``times[starts[i]:starts[i + 1]]`` the rows where ``x[r, i] != 0`` in
    increasing order and ``values`` those ``x[r, i]``. x ``[R, in]``; starts int64 ``[in + 1]``;
    times, values, and the scratch rows_of / inputs_of / values_of: ``[active]`` (the number of
    non-zeros). One pass over x (row order), then a stable counting sort by input."""
    rows, n_in = x.shape
    k = 0
    for r in range(rows):
        x_r = x[r]
        i = next_active(x_r, 0, n_in)
        while i < n_in:
            rows_of[k], inputs_of[k], values_of[k] = r, i, x_r[i]
            k += 1
            i = next_active(x_r, i + 1, n_in)
    for i in range(n_in + 1):
        starts[i] = 0
    for e in range(k):
        starts[inputs_of[e] + 1] += 1
    for i in range(n_in):
        starts[i + 1] += starts[i]
    for e in range(k):                        # starts[i] moves to the end of input i's run, ...
        i = inputs_of[e]
        times[starts[i]] = rows_of[e]
        values[starts[i]] = values_of[e]
        starts[i] += 1
    for i in range(n_in, 0, -1):              # ... so shift it back by one input
        starts[i] = starts[i - 1]
    starts[0] = 0


@njit(cache=True, error_model="numpy", nogil=True)
def scatter_rows(starts, times, values, weight_t, z, tile, first_tile, stop_tile):
    """Tiles ``first_tile .. stop_tile - 1`` of ``z = x @ weight_t`` from the by-input lists (see
    the module docstring); weight_t ``[in, out]``, z ``[R, out]`` (those columns overwritten).
    Releases the GIL: threads fill disjoint tiles."""
    rows, n_out = z.shape
    n_in = weight_t.shape[0]
    for q in range(first_tile, stop_tile):
        first = q * tile
        width = min(first + tile, n_out) - first
        for r in range(rows):
            z_tile = z[r][first:first + width]
            for j in range(width):
                z_tile[j] = 0
        for i in range(n_in):
            if starts[i + 1] == starts[i]:
                continue
            w_tile = weight_t[i][first:first + width]
            for k in range(starts[i], starts[i + 1]):
                z_tile = z[times[k]][first:first + width]
                value = values[k]
                if value == 1:
                    for j in range(width):
                        z_tile[j] += w_tile[j]
                else:
                    for j in range(width):
                        z_tile[j] += w_tile[j] * value


def event_sequence(x: np.ndarray, weight_t: np.ndarray, active: int, threads: int = 1) -> np.ndarray:
    """``x @ weight_t`` over the ``active`` non-zero inputs, for ``x [R, in]`` and ``weight_t
    [in, out]`` (C-contiguous, the same float dtype); returns a new ``[R, out]`` array. With
    ``threads > 1`` the column tiles are shared among that many threads (the GIL is released;
    every tile is one thread's, so the result does not depend on the thread count)."""
    rows, n_in = x.shape
    n_out = weight_t.shape[1]
    starts = np.empty(n_in + 1, dtype=np.int64)
    times, rows_of, inputs_of = (np.empty(active, dtype=np.int64) for _ in range(3))
    values, values_of = np.empty(active, dtype=x.dtype), np.empty(active, dtype=x.dtype)
    inputs_by_input(x, starts, times, values, rows_of, inputs_of, values_of)
    z = np.empty((rows, n_out), dtype=weight_t.dtype)
    tile = tile_columns(rows, n_out, z.itemsize, threads)
    tiles = -(-n_out // tile)
    workers = max(1, min(threads, tiles))
    bounds = [tiles * w // workers for w in range(workers + 1)]
    run_blocks(scatter_rows, [(bounds[w], bounds[w + 1]) for w in range(workers)], starts, times, values, weight_t, z,
               tile)
    return z
