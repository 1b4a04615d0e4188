"""Dense (all-to-all) projection with an event-driven inference path.

    y[b, j] = sum_i W[j, i] x[b, i] (+ bias[j])              W: [out_features, in_features]

Training (autograd on) uses one dense ``F.linear``. At inference, when the input is sparse
(fraction of non-zeros below ``event_threshold``), only the rows of the active presynaptic
neurons are gathered and accumulated: cost O(active x fan-out) instead of O(in x out). Both paths
give the same result up to float summation order (tested).

Shapes: ``step`` takes ``[batch, in_features]``; ``forward_sequence`` takes ``[T, batch, in]``
and does one matmul (or one event-driven gather) for the whole sequence.

Delays (``delay=``, whole time steps, see :mod:`neurosim.projections.delay`): an int for every
synapse or an integer tensor ``[out, in]`` (one per synapse). A spike at step ``t`` through a
synapse of delay ``d`` arrives in the output at step ``t + d``; the bias is not delayed. With a
delay > 0 the projection is stateful (a :class:`DelayState` of the contributions in flight) and
offers ``step_sequence`` (one matmul for all T, then a shift per distinct delay value).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..node import Node
from .delay import DelayedProjection

__all__ = ["Dense", "event_driven_linear"]


def event_driven_linear(x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x @ weight_t`` accumulating only the rows of ``weight_t`` picked by non-zeros of ``x``.

    x: ``[N, in]`` (binary spikes or graded values); weight_t: ``[in, out]`` contiguous.
    Returns ``[N, out]``. Cost: nnz(x) x out multiply-adds (``F.embedding_bag`` with sum)."""
    n = x.shape[0]
    rows, cols = x.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=n)
    offsets = counts.cumsum(0) - counts
    values = x[rows, cols]
    weights = None if bool((values == 1).all()) else values.to(weight_t.dtype)
    return F.embedding_bag(cols, weight_t, offsets, mode="sum", per_sample_weights=weights)


class Dense(DelayedProjection, Node):
    """All-to-all projection ``in_features -> out_features`` (NIR ``Linear``/``Affine``).

    ``event_driven``: ``"auto"`` (event path at inference when the input is sparse), ``True``
    (always at inference) or ``False`` (always dense). ``weight`` may be given ``[out, in]``; by
    default it is drawn like ``nn.Linear`` (uniform in +-1/sqrt(in)). ``delay``: int steps >= 0
    or an integer tensor ``[out, in]`` (see the module docstring); 0 keeps the node stateless."""

    stateless = True

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 weight: Optional[torch.Tensor] = None, event_driven="auto", event_threshold: float = 0.05, delay=0):
        super().__init__({"input": (in_features,)}, (out_features,))
        if event_driven not in ("auto", True, False):
            raise ValueError(f"Dense.event_driven must be 'auto', True or False, got {event_driven!r}")
        self.in_features, self.out_features = in_features, out_features
        self.event_driven, self.event_threshold = event_driven, event_threshold
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()
        if weight is not None:
            weight = torch.as_tensor(weight)
            if weight.shape != (out_features, in_features):
                raise ValueError(f"Dense weight must have shape (out, in) = {(out_features, in_features)}, "
                                 f"got {tuple(weight.shape)}")
            dtype = weight.dtype if weight.is_floating_point() else torch.get_default_dtype()
            self.weight = nn.Parameter(weight.detach().to(dtype).clone())   # keeps float64 exact
        self._transposed_cache = {}
        self._setup_delays(delay, (out_features, in_features), "Dense.delay")
        if self.delays is not None and not self.delays.uniform:
            masks = self.delays.group.unsqueeze(0) == torch.arange(self.delays.groups).view(-1, 1, 1)
            self.register_buffer("_delay_masks", masks, persistent=False)   # [G, out, in]

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _transposed(self, slot: str, matrix) -> torch.Tensor:
        """Contiguous transpose of ``matrix()`` (a function of the weight), cached per ``slot``
        until the weight changes (data pointer, in-place version or device)."""
        key = (self.weight.data_ptr(), self.weight._version, self.weight.device)
        cached = self._transposed_cache.get(slot)
        if cached is None or cached[0] != key:
            cached = self._transposed_cache[slot] = (key, matrix().detach().t().contiguous())
        return cached[1]

    def weight_t(self) -> torch.Tensor:
        """Contiguous ``[in, out]`` copy of the weight, cached until the weight changes."""
        return self._transposed("weight", lambda: self.weight)

    def propagate(self, x2d: torch.Tensor) -> torch.Tensor:
        return self._linear(x2d, self.bias)

    def _linear(self, x2d: torch.Tensor, bias) -> torch.Tensor:
        if self.use_event_path(x2d):
            y = event_driven_linear(x2d, self.weight_t())
            return y if bias is None else y + bias
        return F.linear(x2d, self.weight, bias)

    # ------------------------------------------------------------------ delays
    def grouped_weight(self) -> torch.Tensor:
        """``[G * out, in]``: row ``g * out + j`` holds the synapses of delay group ``g`` onto ``j``."""
        if self.delays is None or self.delays.uniform:
            return self.weight
        w = self.weight.unsqueeze(0) * self._delay_masks.to(self.weight.dtype)
        return w.reshape(-1, self.in_features)

    def _grouped(self, x2d: torch.Tensor) -> torch.Tensor:
        """Per-delay-group contributions ``[N, G, out]`` (no bias), event-driven when allowed."""
        groups = 1 if self.delays is None else self.delays.groups
        if groups == 1:
            z = self._linear(x2d, None)
        elif self.use_event_path(x2d):
            z = event_driven_linear(x2d, self._transposed("grouped", self.grouped_weight))
        else:
            z = F.linear(x2d, self.grouped_weight())
        return z.reshape(x2d.shape[0], groups, self.out_features)

    def count_ops(self, x, output):
        """synops = active inputs x fan-out; macs = dense multiply-adds of the same call."""
        rows = x.numel() // self.in_features
        return {"synops": torch.count_nonzero(x.detach()) * self.out_features,
                "macs": torch.tensor(rows * self.in_features * self.out_features)}

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, bias={self.bias is not None}, event_driven={self.event_driven}"
