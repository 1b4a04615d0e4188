"""Running a compiled kernel on disjoint blocks in parallel Python threads.

The kernels that take a block (``nogil=True``) release the GIL, so plain Python threads run them
in parallel: no numba threading layer (nothing to configure, nothing that changes how the
process may fork), and the thread count is torch's intra-op count (``torch.get_num_threads()``),
the one a user already sets. Every block is one thread's, so results do not depend on the split.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Tuple

__all__ = ["thread_pool", "split", "row_blocks", "run_blocks"]

_POOL: Optional[ThreadPoolExecutor] = None


def thread_pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of at least ``threads`` worker threads (made larger when asked)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="neurosim-compiled")
    return _POOL


def split(count: int, parts: int, multiple: int = 1) -> List[Tuple[int, int]]:
    """``count`` items as at most ``parts`` contiguous ``(start, stop)`` ranges of near-equal size,
    inner bounds on multiples of ``multiple`` (whole vector lanes); no empty range."""
    parts = max(1, min(parts, -(-count // max(1, multiple))))
    bounds = [0] + [min(count, (count * w // parts) // multiple * multiple) for w in range(1, parts)] + [count]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def row_blocks(rows: int, columns: int, threads: int) -> List[Tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` blocks of a ``[rows, columns]`` grid for ``threads`` threads: whole rows
    when there are at least as many rows as threads, else each row's columns split (multiples of 16)."""
    if rows >= threads or columns < 32:
        return [(r0, r1, 0, columns) for r0, r1 in split(rows, threads)]
    per_row = max(1, threads // max(1, rows))
    return [(r, r + 1, c0, c1) for r in range(rows) for c0, c1 in split(columns, per_row, 16)]


def run_blocks(kernel: Callable, blocks, *args) -> None:
    """``kernel(*args, *block)`` for every block: the first in this thread, each other one in a
    pool thread (the kernel must release the GIL and write disjoint data per block); an error of
    any block is raised here after all have finished."""
    blocks = list(blocks)
    jobs = [thread_pool(len(blocks) - 1).submit(kernel, *args, *block) for block in blocks[1:]]
    try:
        kernel(*args, *blocks[0])
    finally:
        errors = [job.exception() for job in jobs]
    for error in errors:
        if error is not None:
            raise error
