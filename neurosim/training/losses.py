"""Task losses on simulator outputs (pure functions, time-first ``[T, B, ...]`` inputs).

Every loss takes the output sequence of one node as :meth:`neurosim.Simulator.run` returns it
(``result.outputs[name]``, time first) and targets for the batch. Spike trains are the 0/1
outputs of spiking populations (their gradient is the surrogate gradient); membrane sequences
are the outputs of a non-spiking leaky-integrator (LI) readout, in volts.

==============================  ===========================================================
loss                            logits / prediction
==============================  ===========================================================
spike_count_cross_entropy       z_c = scale * sum_t s[t, c]
membrane_cross_entropy          z_c = max_t v[t, c]  |  mean_t v[t, c]  |  v[T-1, c]
spike_count_mse                 (sum_t s[t, c] - n_c)^2  or the same on rates in Hz
first_spike_cross_entropy       z_c = -t_c / tau, t_c the (differentiable) first-spike time
==============================  ===========================================================

Example::

    >>> out = sim.run(x).output                           # [T, B, C] spikes
    >>> loss = spike_count_cross_entropy(out, labels, scale=0.5)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..validation import check_choice, check_int, check_number, check_sequence
from ._checks import check_class_targets, check_reduction, reduce

__all__ = ["spike_counts", "spike_count_cross_entropy", "membrane_cross_entropy", "spike_count_mse",
           "one_hot_counts", "first_spike_times", "first_spike_cross_entropy", "classification_accuracy"]

MEMBRANE_MODES = ("max", "mean", "last")


def spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Number of spikes of each neuron in each sample: ``n[b, ...] = sum_t s[t, b, ...]``.

    Shapes: ``[T, B, ...]`` -> ``[B, ...]``. Units: spikes (a count).

    Example::

        >>> spike_counts(torch.ones(5, 2, 3))[0, 0]
        tensor(5.)
    """
    return check_sequence(spikes, "spike_counts: spikes").sum(0)


def spike_count_cross_entropy(spikes: torch.Tensor, targets: torch.Tensor, scale: float = 1.0,
                              reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy with the (scaled) spike counts as logits.

    ``z[b, c] = scale * sum_t s[t, b, c]``;  ``L_b = -log softmax(z_b)[y_b]`` (or
    ``-sum_c p[b, c] log softmax(z_b)[c]`` for probability targets). ``scale`` (1/spike) sets how
    many spikes of difference make a confident prediction; counts grow with T, so a scale of
    about ``1 / T`` keeps the logits of order one. The gradient reaches the spikes through the
    surrogate of the output population.

    Shapes: spikes ``[T, B, C]``; targets ``[B]`` int labels or ``[B, C]`` probabilities;
    result a scalar (``reduction`` "mean" or "sum") or ``[B]`` ("none").

    Example::

        >>> s = (torch.rand(20, 4, 3) < 0.2).float()
        >>> spike_count_cross_entropy(s, torch.tensor([0, 1, 2, 0]), scale=0.5)
    """
    check_sequence(spikes, "spike_count_cross_entropy: spikes", extra_dims=1)
    check_number(scale, "spike_count_cross_entropy: scale", positive=True)
    check_reduction(reduction, "spike_count_cross_entropy")
    targets = check_class_targets(targets, spikes.shape[1], spikes.shape[2], "spike_count_cross_entropy")
    return F.cross_entropy(scale * spikes.sum(0), targets, reduction=reduction)


def membrane_cross_entropy(v: torch.Tensor, targets: torch.Tensor, mode: str = "max",
                           reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on the membrane potential of a leaky-integrator readout.

    ``z[b, c] = max_t v[t, b, c]`` (``mode="max"``), ``(1/T) sum_t v[t, b, c]`` (``"mean"``) or
    ``v[T-1, b, c]`` (``"last"``); ``L_b = -log softmax(z_b)[y_b]``. ``v`` is in volts, so the
    logits are in volts: the readout's weights set the confidence.

    Shapes: v ``[T, B, C]``; targets ``[B]`` int labels or ``[B, C]`` probabilities; result a
    scalar or ``[B]`` (``reduction="none"``).

    Example::

        >>> v = sim.run(x).output                          # LI readout, [T, B, C]
        >>> loss = membrane_cross_entropy(v, labels, mode="max")
    """
    check_sequence(v, "membrane_cross_entropy: v", extra_dims=1)
    check_choice(mode, MEMBRANE_MODES, "membrane_cross_entropy: mode")
    check_reduction(reduction, "membrane_cross_entropy")
    targets = check_class_targets(targets, v.shape[1], v.shape[2], "membrane_cross_entropy")
    if mode == "max":
        logits = v.max(0).values
    elif mode == "mean":
        logits = v.mean(0)
    else:
        logits = v[-1]
    return F.cross_entropy(logits, targets, reduction=reduction)


def one_hot_counts(labels: torch.Tensor, num_classes: int, on: float, off: float = 0.0) -> torch.Tensor:
    """Target counts (or rates) for classification: ``on`` for the labelled class, ``off`` elsewhere.

    ``n[b, c] = on if c == y_b else off``, in the unit the caller uses (spikes per sample, or Hz
    with :func:`spike_count_mse`'s ``dt``).

    Shapes: labels ``[B]`` int -> ``[B, num_classes]`` float.

    Example::

        >>> one_hot_counts(torch.tensor([1, 0]), 3, on=8.0, off=1.0)
        tensor([[1., 8., 1.], [8., 1., 1.]])
    """
    check_int(num_classes, "one_hot_counts: num_classes", minimum=1)
    check_number(on, "one_hot_counts: on", nonnegative=True)
    check_number(off, "one_hot_counts: off", nonnegative=True)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError("one_hot_counts: labels must be a 1-d tensor [B] of class indices")
    labels = check_class_targets(labels, labels.shape[0], num_classes, "one_hot_counts")
    out = torch.full((labels.shape[0], num_classes), float(off), device=labels.device)
    return out.scatter_(1, labels.unsqueeze(1), float(on))


def spike_count_mse(spikes: torch.Tensor, target: torch.Tensor, dt: Optional[float] = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Mean squared error between spike counts (or firing rates) and targets.

    Without ``dt``: ``L = mean_{b, i} (n[b, i] - target[b, i])^2`` with ``n = sum_t s[t]`` in
    spikes. With ``dt`` (seconds): rates ``r = n / (T dt)`` in Hz are compared with ``target`` in
    Hz. Use :func:`one_hot_counts` to build targets from class labels.

    Shapes: spikes ``[T, B, ...]``; target ``[B, ...]`` (or broadcastable to it); result a scalar
    or ``[B, ...]`` (``reduction="none"``).

    Example::

        >>> target = one_hot_counts(labels, 10, on=15.0, off=2.0)
        >>> loss = spike_count_mse(out_spikes, target)
    """
    check_sequence(spikes, "spike_count_mse: spikes")
    check_reduction(reduction, "spike_count_mse")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"spike_count_mse: target must be a tensor, got {type(target).__name__}")
    try:
        torch.broadcast_shapes(target.shape, spikes.shape[1:])
    except RuntimeError:
        raise ValueError(f"spike_count_mse: target shape {tuple(target.shape)} does not broadcast to the "
                         f"counts' shape [B, ...] = {tuple(spikes.shape[1:])}") from None
    value = spikes.sum(0)
    if dt is not None:
        dt = check_number(dt, "spike_count_mse: dt", positive=True)
        value = value / (spikes.shape[0] * dt)
    return reduce((value - target.to(value.dtype)) ** 2, reduction)


def first_spike_times(spikes: torch.Tensor, dt: Optional[float] = None) -> torch.Tensor:
    """First-spike time of every neuron, exact in the forward pass and differentiable in the spikes.

    With ``q[t] = prod_{t' < t} (1 - s[t'])`` (1 while the neuron has not fired before step t)::

        t_first = sum_{t=0}^{T-1} t * s[t] * q[t]  +  T * q[T]

    For a binary train this is exactly the 0-based index of the first spike, and ``T`` (one step
    past the end) for a neuron that never fires. Its derivative with respect to ``s[k]`` is
    ``k - t_next`` for steps ``k`` up to the first spike (``t_next``: the first spike after k, or
    T), zero after it: more drive before the first spike makes it earlier. Through the surrogate
    gradient of the spikes this trains spike times (Mostafa 2017; Comsa et al. 2020 compute the
    same quantity analytically for their neuron model).

    Units: steps, or seconds (``t_first * dt``) when ``dt`` is given.
    Shapes: ``[T, B, ...]`` -> ``[B, ...]``.

    Example::

        >>> s = torch.zeros(5, 1, 2); s[2, 0, 0] = 1
        >>> first_spike_times(s)
        tensor([[2., 5.]])
    """
    check_sequence(spikes, "first_spike_times: spikes")
    steps = spikes.shape[0]
    not_yet = torch.cumprod(1.0 - spikes, 0)                            # q[t + 1]
    before = torch.cat([torch.ones_like(not_yet[:1]), not_yet[:-1]], 0)  # q[t]
    shape = (steps,) + (1,) * (spikes.dim() - 1)
    t = torch.arange(steps, dtype=spikes.dtype, device=spikes.device).reshape(shape)
    times = (t * spikes * before).sum(0) + steps * not_yet[-1]
    if dt is not None:
        times = times * check_number(dt, "first_spike_times: dt", positive=True)
    return times


def first_spike_cross_entropy(spikes: torch.Tensor, targets: torch.Tensor, tau: float = 1.0,
                              dt: Optional[float] = None, reduction: str = "mean") -> torch.Tensor:
    """Time-to-first-spike classification loss: the earliest output neuron should be the label.

    ``z[b, c] = -t_first[b, c] / tau`` with :func:`first_spike_times`, and
    ``L_b = -log softmax(z_b)[y_b] = t_{y_b} / tau + log sum_c exp(-t_c / tau)`` (Mostafa 2017).
    ``tau`` is in steps, or seconds when ``dt`` is given; smaller ``tau`` asks for a wider margin
    between the target neuron's first spike and the others'.

    Shapes: spikes ``[T, B, C]``; targets ``[B]`` int labels (or ``[B, C]`` probabilities);
    result a scalar or ``[B]`` (``reduction="none"``).

    Example::

        >>> loss = first_spike_cross_entropy(out_spikes, labels, tau=2.0)
        >>> predicted = first_spike_times(out_spikes).argmin(1)
    """
    check_sequence(spikes, "first_spike_cross_entropy: spikes", extra_dims=1)
    tau = check_number(tau, "first_spike_cross_entropy: tau", positive=True)
    check_reduction(reduction, "first_spike_cross_entropy")
    targets = check_class_targets(targets, spikes.shape[1], spikes.shape[2], "first_spike_cross_entropy")
    return F.cross_entropy(-first_spike_times(spikes, dt) / tau, targets, reduction=reduction)


def classification_accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose highest score is the label: ``mean_b [argmax_c z[b, c] == y_b]``.

    Shapes: scores ``[B, C]`` (e.g. spike counts, max membrane, or ``-t_first``); targets ``[B]``.

    Example::

        >>> classification_accuracy(spike_counts(out), labels)
        0.75
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        raise ValueError(f"classification_accuracy: scores must be a [B, C] tensor, got "
                         f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or tuple(targets.shape) != scores.shape[:1]:
        raise ValueError(f"classification_accuracy: targets must be integer labels of shape [B] = "
                         f"{tuple(scores.shape[:1])}")
    return float((scores.argmax(1) == targets).float().mean()) if targets.numel() else 0.0


#: Classification losses by name, each ``loss(output [T, B, C], labels [B]) -> scalar``; used by
#: configs (``train.loss``). Count losses take spike outputs, membrane losses an LI readout.
LOSSES = {
    "count_cross_entropy": spike_count_cross_entropy,
    "membrane_max_cross_entropy": lambda v, y: membrane_cross_entropy(v, y, mode="max"),
    "membrane_mean_cross_entropy": lambda v, y: membrane_cross_entropy(v, y, mode="mean"),
    "membrane_last_cross_entropy": lambda v, y: membrane_cross_entropy(v, y, mode="last"),
    "first_spike_cross_entropy": first_spike_cross_entropy,
}


def get_loss(name: str):
    """The classification loss registered as ``name`` in :data:`LOSSES`."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
    return LOSSES[name]
