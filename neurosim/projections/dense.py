"""Dense (all-to-all) projection with an event-driven inference path.

    y[b, j] = sum_i W[j, i] x[b, i] (+ bias[j])              W: [out_features, in_features]

Training (autograd on) uses one dense ``F.linear``. At inference, when the event path is the
cheaper one (a cost model of input rows, active inputs and fan-out,
:mod:`neurosim.projections.event_cost`; or below a user's ``event_threshold`` density), only
the rows of the active presynaptic neurons are gathered and accumulated: cost O(active x
fan-out) instead of O(in x out). Both paths give the same result up to float summation order
(tested).

Nothing derived from the weight's values is cached, so every way of changing the weight
(``weight.data`` writes, in-place ops under ``no_grad``, ``load_state_dict``, an optimizer step,
``.to()``) reaches the next call. The ``[out, in]`` Parameter is stored column-major (strides
``(1, out)``), which those all preserve, so the event path's ``[in, out]`` row table
``weight.t()`` is a free contiguous view; ``F.linear`` takes either layout. A weight replaced by
a row-major tensor still works (one ``[in, out]`` copy per event-path call).

Shapes: ``step`` takes ``[batch, in_features]``; ``forward_sequence`` takes ``[T, batch, in]``
and does one matmul (or one event-driven gather) for the whole sequence.

Delays (``delay=``, whole time steps, see :mod:`neurosim.projections.delay`): an int for every
synapse or an integer tensor ``[out, in]`` (one per synapse). A spike at step ``t`` through a
synapse of delay ``d`` arrives in the output at step ``t + d``; the bias is not delayed. With a
delay > 0 the projection is stateful (a :class:`DelayState` of the contributions in flight) and
offers ``step_sequence`` (one matmul for all T, then a shift per distinct delay value). With
per-synapse delays the dense path builds the ``[G * out, in]`` grouped weight from the weight at
each call; the event path adds the active inputs' weight rows into the columns
``group[j, i] * out + j`` (one ``index_add``; that ``[in, out]`` int32 column table is
structure, fixed at construction).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..node import Node
from .delay import DelayedProjection

__all__ = ["Dense", "event_driven_linear", "transposed_layout"]


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


def transposed_layout(weight: torch.Tensor) -> torch.Tensor:
    """A copy of ``weight [out, in]`` stored column-major (strides ``(1, out)``), so that
    ``weight.t()`` is a contiguous ``[in, out]`` view (the event path's row table) at no cost."""
    return weight.detach().t().contiguous().t()


class Dense(DelayedProjection, Node):
    """All-to-all projection ``in_features -> out_features`` (NIR ``Linear``/``Affine``).

    ``event_driven``: ``"auto"`` (event path at inference when it is cheaper, see
    :mod:`neurosim.projections.event_cost`; ``event_threshold``, a density, overrides that
    choice), ``True`` (always at inference) or ``False`` (always dense). ``weight`` may be given
    ``[out, in]`` (a floating weight keeps its dtype, any other becomes the default dtype); by
    default it is drawn like ``nn.Linear`` (uniform in +-1/sqrt(in)) in the default dtype.
    ``delay``: int steps >= 0 or an integer tensor ``[out, in]`` (see the module docstring);
    0 keeps the node stateless.

    The ``weight`` Parameter (``[out, in]``) is stored column-major (see
    :func:`transposed_layout`); nothing derived from its values is cached."""

    stateless = True
    _event_kind = "dense"

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 weight: Optional[torch.Tensor] = None, event_driven="auto",
                 event_threshold: Optional[float] = None, delay=0):
        super().__init__({"input": (in_features,)}, (out_features,))
        self._set_event_options(event_driven, event_threshold, "Dense")
        self.in_features, self.out_features = in_features, out_features
        if weight is not None:
            weight = torch.as_tensor(weight)
            if weight.shape != (out_features, in_features):
                raise ValueError(f"Dense weight must have shape (out, in) = {(out_features, in_features)}, "
                                 f"got {tuple(weight.shape)}")
        self.weight = nn.Parameter(torch.empty(in_features, out_features).t())
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()          # also when a weight is given: the same random stream after it
        if weight is not None:
            dtype = weight.dtype if weight.is_floating_point() else torch.get_default_dtype()
            self.weight = nn.Parameter(transposed_layout(weight.to(dtype)))   # keeps float64 exact
            if self.bias is not None:
                self.bias = nn.Parameter(self.bias.detach().to(dtype))
        self._setup_delays(delay, (out_features, in_features), "Dense.delay")
        if self.delays is not None and not self.delays.uniform:
            # column of each synapse in the [G * out] grouped output, group * out + j, as [in, out]
            # int32: the event path reads the rows of the active inputs (structure, fixed here)
            column = self.delays.group * out_features + torch.arange(out_features).unsqueeze(1)
            index_dtype = torch.int32 if column.numel() and int(column.max()) < 2 ** 31 else torch.long
            self.register_buffer("_delay_column_t", column.t().contiguous().to(index_dtype),
                                 persistent=False)

    def reset_parameters(self):
        """Weight uniform in +-1/sqrt(in), drawn in row-major order (the same values for the same
        seed as a row-major ``[out, in]`` draw) and written into the column-major Parameter."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.copy_(torch.empty(self.weight.shape, dtype=self.weight.dtype,
                                          device=self.weight.device).uniform_(-bound, bound))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def weight_t(self) -> torch.Tensor:
        """The ``[in, out]`` weight, contiguous and detached: a free view of the column-major
        Parameter; a copy (every call) only if the user replaced it with a row-major tensor."""
        w = self.weight.detach().t()
        return w if w.is_contiguous() else w.contiguous()

    def propagate(self, x2d: torch.Tensor) -> torch.Tensor:
        return self._linear(x2d, self.bias)

    def _linear(self, x2d: torch.Tensor, bias) -> torch.Tensor:
        if self.use_event_path(x2d):
            y = event_driven_linear(x2d, self.weight_t())
            return y if bias is None else y + bias
        return F.linear(x2d, self.weight, bias)

    def _event_fan_out(self) -> int:
        return self.out_features

    def _dense_synapses(self) -> int:
        groups = 1 if self.delays is None else self.delays.groups
        return groups * self.in_features * self.out_features

    # ------------------------------------------------------------------ delays
    def grouped_weight(self) -> torch.Tensor:
        """``[G * out, in]``: row ``g * out + j`` holds the synapses of delay group ``g`` onto ``j``
        (zeros elsewhere); differentiable in the weight, built from it at each call."""
        if self.delays is None or self.delays.uniform:
            return self.weight
        w = self.weight.new_zeros(self.delays.groups, self.out_features, self.in_features)
        w = w.scatter(0, self.delays.group.unsqueeze(0), self.weight.unsqueeze(0))
        return w.reshape(-1, self.in_features)

    def _event_grouped(self, x2d: torch.Tensor) -> torch.Tensor:
        """Event path with per-synapse delays, ``[N, in] -> [N, G * out]``: the weight rows of the
        active inputs go to columns ``group[j, i] * out + j`` of their row (one ``index_add``)."""
        n, out, groups = x2d.shape[0], self.out_features, self.delays.groups
        rows, cols = x2d.nonzero(as_tuple=True)
        values = x2d[rows, cols].to(self.weight.dtype).unsqueeze(1)
        contrib = self.weight_t().index_select(0, cols) * values                      # [A, out]
        column = self._delay_column_t.index_select(0, cols)                           # [A, out]
        if n * groups * out > torch.iinfo(column.dtype).max:
            column = column.long()
        target = column + (rows * (groups * out)).to(column.dtype).unsqueeze(1)
        y = contrib.new_zeros(n * groups * out)
        return y.index_add_(0, target.view(-1), contrib.view(-1)).view(n, groups * out)

    def _grouped(self, x2d: torch.Tensor) -> torch.Tensor:
        """Per-delay-group contributions ``[N, G, out]`` (no bias), event-driven when allowed."""
        groups = 1 if self.delays is None else self.delays.groups
        if groups == 1:
            z = self._linear(x2d, None)
        elif self.use_event_path(x2d):
            z = self._event_grouped(x2d)
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
