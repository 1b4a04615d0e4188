"""Input checks shared by the training modules (raise before any work, naming what is wrong)."""
from __future__ import annotations

import math

import torch

REDUCTIONS = ("mean", "sum", "none")


def check_tensor(x, where: str, min_dim: int = 1, max_dim: int | None = None) -> torch.Tensor:
    """``x`` must be a floating-point tensor with ``min_dim <= x.dim() <= max_dim``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{where} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        want = f"{min_dim}" if max_dim == min_dim else f">= {min_dim}" if max_dim is None else f"{min_dim}..{max_dim}"
        raise ValueError(f"{where} must have {want} dimensions, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{where} is empty (shape {tuple(x.shape)})")
    return x


def check_sequence(x, where: str, extra_dims: int | None = None) -> torch.Tensor:
    """A time-first sequence ``[T, B, ...]`` (at least 2 dims, ``2 + extra_dims`` when given)."""
    check_tensor(x, where, 2 if extra_dims is None else 2 + extra_dims,
                 None if extra_dims is None else 2 + extra_dims)
    if x.shape[1] == 0:
        raise ValueError(f"{where} has an empty batch axis (shape {tuple(x.shape)}; expected [T, B, ...])")
    return x


def check_reduction(reduction: str, where: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_positive_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} must be a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_class_targets(targets, batch: int, num_classes: int, where: str) -> torch.Tensor:
    """Integer labels ``[B]`` in ``[0, C)``, or class probabilities ``[B, C]`` (float)."""
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
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x
