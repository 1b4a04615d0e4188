"""Reproducible, shardable batching: a seeded batch sampler and the loader built on it.

The order of the samples is drawn from a ``torch.Generator`` the caller owns (the
:class:`~neurosim.training.Trainer` saves its state in every checkpoint), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would have seen. With ``world_size``
processes (DDP) every process draws the same permutation from an identically seeded generator,
cuts it into the same *global* batches, and takes its own contiguous slice of each: rank ``r``
of ``W`` gets samples ``[r B/W, (r+1) B/W)`` of every global batch of ``B``. Averaging the
per-rank mean losses' gradients (what DDP does) then gives the gradient of the mean loss over
the global batch, the single-process gradient.

Samples are ``(x, y)`` pairs with ``x`` shaped ``[T, ...]`` (time first within a sample) or a
dict of such tensors. The loader's collate stacks them into time-first batches ``[T, B, ...]``
(the layout :meth:`neurosim.Simulator.run` takes) or, with ``time_first=False``, ``[B, T, ...]``.

Example::

    >>> g = torch.Generator().manual_seed(0)
    >>> loader = make_loader(TensorDataset(x, y), batch_size=32, generator=g)   # x: [N, T, F]
    >>> inputs, labels = next(iter(loader))                                    # [T, 32, F], [32]
"""
from __future__ import annotations

from typing import Iterator, List, Optional

import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data._utils.collate import default_collate

from ..validation import check_int

__all__ = ["ShardedBatchSampler", "make_loader", "time_first_collate"]


class ShardedBatchSampler(Sampler[List[int]]):
    """Yields this rank's share of each global batch of a (seeded) permutation.

    Per epoch (one ``iter()``): ``order = randperm(N, generator)`` (or ``0..N-1`` without
    ``shuffle``); global batches ``order[kB : (k+1)B]``; this rank's batch is its slice of each.

    * ``even_shards=True`` (training): every rank gets exactly ``B / W`` samples, so ``B`` must be
      divisible by ``W``; a final partial global batch whose size is not divisible by ``W`` is
      dropped (never with ``W = 1``), as is any partial batch when ``drop_last``.
    * ``even_shards=False`` (evaluation): the global batch is split into ``W`` nearly equal parts
      (``torch.tensor_split``); nothing is dropped, empty parts are skipped.

    Shapes: yields lists of sample indices. Example::

        >>> s = ShardedBatchSampler(10, 4, torch.Generator().manual_seed(0), rank=1, world_size=2)
        >>> [len(b) for b in s]      # global batches of 4, 4 and 2 samples
        [2, 2, 1]
    """

    def __init__(self, num_samples: int, batch_size: int, generator: Optional[torch.Generator] = None,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 even_shards: bool = True):
        self.num_samples = check_int(num_samples, "ShardedBatchSampler: num_samples", minimum=1)
        self.batch_size = check_int(batch_size, "ShardedBatchSampler: batch_size (global)", minimum=1)
        self.world_size = check_int(world_size, "ShardedBatchSampler: world_size", minimum=1)
        self.rank = check_int(rank, "ShardedBatchSampler: rank", minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(f"ShardedBatchSampler: rank {rank} is not below world_size {world_size}")
        if shuffle and not isinstance(generator, torch.Generator):
            raise ValueError("ShardedBatchSampler: shuffle=True needs a torch.Generator (for reproducible order)")
        if even_shards and batch_size % world_size:
            raise ValueError(f"ShardedBatchSampler: the global batch size {batch_size} must be divisible by "
                             f"world_size {world_size} (every rank takes an equal share)")
        self.generator, self.shuffle = generator, bool(shuffle)
        self.drop_last, self.even_shards = bool(drop_last), bool(even_shards)

    def _global_batches(self, order: torch.Tensor):
        for start in range(0, self.num_samples, self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) < self.batch_size and (self.drop_last or
                                                 (self.even_shards and len(batch) % self.world_size)):
                continue
            yield batch

    def __iter__(self) -> Iterator[List[int]]:
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator)
        else:
            order = torch.arange(self.num_samples)
        for batch in self._global_batches(order):
            part = torch.tensor_split(batch, self.world_size)[self.rank]
            if len(part):
                yield part.tolist()

    def __len__(self) -> int:
        return sum(1 for b in self._global_batches(torch.arange(self.num_samples))
                   if len(torch.tensor_split(b, self.world_size)[self.rank]))


def _to_time_first(x):
    if isinstance(x, torch.Tensor):
        if x.dim() < 2:
            raise ValueError(f"time_first_collate: a batched input needs [B, T, ...], got shape {tuple(x.shape)}")
        return x.transpose(0, 1)
    if isinstance(x, dict):
        return {k: _to_time_first(v) for k, v in x.items()}
    raise TypeError(f"time_first_collate: inputs must be tensors or dicts of tensors, got {type(x).__name__}")


def time_first_collate(samples):
    """Collate ``(x [T, ...], y)`` samples into ``(inputs [T, B, ...], targets [B, ...])``.

    ``default_collate`` stacks along a new leading batch axis (``[B, T, ...]``); the inputs are
    then transposed to time first (a view, no copy). Dict inputs are transposed entry by entry.

    Shapes: B samples ``([T, ...], y)`` -> ``([T, B, ...], [B, ...])``.

    Example::

        >>> x, y = time_first_collate([(torch.zeros(5, 3), 0), (torch.ones(5, 3), 1)])
        >>> x.shape
        torch.Size([5, 2, 3])
    """
    batch = default_collate(samples)
    if not isinstance(batch, (list, tuple)) or len(batch) != 2:
        raise ValueError("time_first_collate: samples must be (inputs, target) pairs")
    return _to_time_first(batch[0]), batch[1]


def make_loader(dataset, batch_size: int, generator: Optional[torch.Generator] = None, shuffle: bool = True,
                rank: int = 0, world_size: int = 1, time_first: bool = True, drop_last: bool = False,
                even_shards: Optional[bool] = None) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` whose order depends only on ``generator``'s state.

    ``batch_size`` is the *global* batch; each of ``world_size`` ranks gets ``batch_size /
    world_size`` samples per step (see :class:`ShardedBatchSampler`; ``even_shards`` defaults to
    ``shuffle``, i.e. equal shards for training and complete coverage for evaluation). Batches are
    ``(inputs, targets)``, inputs time first ``[T, b, ...]`` (``[b, T, ...]`` with
    ``time_first=False``). Loading runs in the calling process (``num_workers=0``).

    Shapes: items ``(x [T, ...], y)`` -> batches ``(inputs [T, B/W, ...], targets [B/W, ...])``.

    Example::

        >>> loader = make_loader(ds, 64, torch.Generator().manual_seed(1), rank=r, world_size=2)
    """
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"make_loader: dataset must be a map-style dataset (__len__ and __getitem__), "
                        f"got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError("make_loader: the dataset is empty")
    even = shuffle if even_shards is None else even_shards
    sampler = ShardedBatchSampler(len(dataset), batch_size, generator, shuffle, rank, world_size,
                                  drop_last, even)
    collate = time_first_collate if time_first else default_collate
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=0,
                      generator=generator if generator is not None else torch.Generator().manual_seed(0))
