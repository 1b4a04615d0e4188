"""Training-specific input checks over :mod:`neurosim.validation` (class targets, reductions).

The generic checks (integers, numbers, choices, tensors, time-first sequences) live in
:mod:`neurosim.validation`; what is here knows about classification targets and loss reductions.
"""
from __future__ import annotations

import torch

from ..validation import check_choice

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str, where: str) -> str:
    """``reduction`` must be one of :data:`REDUCTIONS` (``ValueError`` naming ``where`` otherwise)."""
    return check_choice(reduction, REDUCTIONS, f"{where}: reduction")


def check_class_targets(targets, batch: int, num_classes: int, where: str) -> torch.Tensor:
    """Integer labels ``[B]`` in ``[0, C)`` (returned as int64), or class probabilities ``[B, C]`` (float).

    Raises ``TypeError`` for a non-tensor, bool or complex targets and ``ValueError`` for a wrong
    shape or a label outside ``[0, C)`` (naming the range of the labels got)."""
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"{where}: targets must be a tensor of class labels [B] or probabilities [B, C], "
                        f"got {type(targets).__name__}")
    if targets.is_floating_point():
        if tuple(targets.shape) != (batch, num_classes):
            raise ValueError(f"{where}: probability targets must have shape [B, C] = {(batch, num_classes)}, "
                             f"got {tuple(targets.shape)}")
        return targets
    if targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"{where}: targets must be integer class labels or float probabilities, got {targets.dtype}")
    if tuple(targets.shape) != (batch,):
        raise ValueError(f"{where}: label targets must have shape [B] = ({batch},), got {tuple(targets.shape)}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"{where}: labels must lie in [0, {num_classes}), got values in "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    return targets.long()


def reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """``x.mean()``, ``x.sum()`` or ``x`` itself for ``reduction`` "mean", "sum", "none"."""
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x
