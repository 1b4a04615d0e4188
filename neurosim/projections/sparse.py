"""Sparse projection: an explicit list of synapses, propagated event by event at inference.

    y[b, j] = sum_{k : post[k] = j} w[k] x[b, pre[k]]   (+ bias[j])

Synapse ``k`` connects presynaptic neuron ``pre[k]`` to postsynaptic neuron ``post[k]`` with
weight ``w[k]`` (an ``nn.Parameter`` over the ``nnz`` synapses only, in the units of the
projection's output per unit of input). Repeated ``(pre, post)`` pairs are separate synapses
whose effects add. The synapses are stored sorted by presynaptic neuron (CSR rows ``row_ptr``),
so the synapses of neuron ``i`` are ``row_ptr[i] : row_ptr[i + 1]``.

Two propagation paths give the same result up to float summation order (tested):

* dense path (training, autograd on, or dense input): a CSR sparse-matrix product
  ``y = x A^T`` with ``A`` the ``[out, in]`` matrix; its backward gives ``dL/dx = g A`` and
  ``dL/dw[k] = sum_b g[b, post[k]] x[b, pre[k]]`` (a sampled dense-dense product), so the weight
  gradient exists only on existing synapses and costs O(batch x nnz).
* event path (inference, sparse input): only the synapses of the active presynaptic neurons are
  gathered (a window of K = max fan-out consecutive weights per neuron, or CSR segments when
  fan-outs are very uneven) and scattered into the output with one ``index_add``: cost
  O(active inputs x fan-out).

Which path runs: autograd on -> dense; otherwise the cost model of
:mod:`neurosim.projections.event_cost` (input rows, active inputs, K, nnz), or a user's
``event_threshold`` density. A float weight keeps its dtype (float64 stays float64, as in Dense).

Caching rule: only index tables derived from ``pre``/``post`` (which never change after
construction) are kept, as non-persistent buffers (they follow ``.to()``); the weight values
are read from the Parameter at each call (the output-row order by one ``index_select`` in the
dense path; the event path reads windows of the Parameter in place). So every way of changing
the weight (``.data`` writes, in-place ops under ``no_grad``, ``load_state_dict``, an optimizer
step, ``.to()``) reaches the next call; ``load_state_dict`` refuses other connectivity.

Construction: from COO lists ``Sparse(in, out, pre, post, weight)``, from a boolean ``mask``
``[out, in]``, from a dense matrix (:meth:`Sparse.from_dense`) or at random with connection
probability ``p`` (:meth:`Sparse.random`, reproducible with ``seed`` or a ``torch.Generator``).
Optional integer ``delay`` (steps, one value or one per synapse): see
:mod:`neurosim.projections.delay`.

Shapes: ``step`` takes ``[batch, in_features]`` and returns ``[batch, out_features]``;
``forward_sequence`` takes ``[T, batch, in]`` in one propagation.

Example::

    >>> fc = Sparse.random(4000, 4000, p=0.02, weight=0.6, seed=1, allow_autapses=False)
    >>> fc = Sparse(3, 2, pre=[0, 2, 1], post=[1, 1, 0], weight=[0.5, -1.0, 2.0], delay=[0, 2, 1])
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple, Optional, Union

import torch
from torch import nn

from ..node import Node
from ..validation import check_index_list, check_index_range, check_int, check_number, is_plain_number
from .delay import DelayedProjection

__all__ = ["Sparse", "sparse_linear"]

#: the padded per-neuron tables are used when they hold at most this many times nnz entries
_ELL_MAX_PADDING = 2.0
_ELL_ALWAYS_BELOW = 1 << 21   # padded tables up to 2M slots (16 MB of int64 targets) are always fine


class _Structure(NamedTuple):
    """Index tensors of a synapse set with ``R`` output rows (``R = G * out`` with G delay groups)."""

    in_features: int
    rows_total: int
    row_ptr: torch.Tensor      # [in + 1] CSR by presynaptic neuron (the stored order)
    rows: torch.Tensor         # [nnz] output row of each synapse
    crow_by_row: torch.Tensor  # [R + 1] CSR by output row
    col_by_row: torch.Tensor   # [nnz] presynaptic neuron, in output-row order
    perm_by_row: torch.Tensor  # [nnz] stored index of the synapses in output-row order


def _csr(crow, col, values, shape):
    with warnings.catch_warnings():     # "Sparse CSR tensor support is in beta" (once per process)
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _SparseLinearFn(torch.autograd.Function):
    """``y = x A^T`` for the sparse ``A [R, in]`` with values ``w``; differentiable in x and w."""

    @staticmethod
    def forward(ctx, x, w, s: _Structure):
        w_by_row = w.index_select(0, s.perm_by_row)      # values in output-row order, gathered per call
        a = _csr(s.crow_by_row, s.col_by_row, w_by_row, (s.rows_total, s.in_features))
        ctx.save_for_backward(x, w)
        ctx.structure = s
        return (a @ x.t()).t().contiguous()

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        s = ctx.structure
        g = g.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:     # dL/dx = g A = (A^T g^T)^T, A^T in the stored (pre) order
            at = _csr(s.row_ptr, s.rows, w, (s.in_features, s.rows_total))
            grad_x = (at @ g.t()).t()
        if ctx.needs_input_grad[1]:     # dL/dw[k] = sum_b x[b, pre[k]] g[b, row[k]]
            pattern = _csr(s.row_ptr, s.rows, torch.zeros_like(w), (s.in_features, s.rows_total))
            grad_w = torch.sparse.sampled_addmm(pattern, x.t(), g, beta=0.0).values()
        return grad_x, grad_w, None


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, structure: _Structure) -> torch.Tensor:
    """``y[n, r] = sum_{k: row[k] = r} weight[k] x[n, pre[k]]`` (autograd in x and weight).

    Shapes: x ``[N, in]``, weight ``[nnz]`` (stored order) -> ``[N, R]``."""
    return _SparseLinearFn.apply(x, weight, structure)


def _per_synapse(value, nnz: int, dense_at, name: str, where: str):
    """None, a scalar, a ``[nnz]`` tensor, or (``dense_at = (post, pre, shape)`` from a mask) a
    dense ``[out, in]`` tensor read at the synapses."""
    if value is None or is_plain_number(value):
        return value
    t = torch.as_tensor(value)
    if t.dim() == 0:
        return t.item()
    if dense_at is not None and t.dim() == 2:
        post, pre, shape = dense_at
        if tuple(t.shape) != shape:
            raise ValueError(f"{where}: a dense {name} must have shape (out, in) = {shape}, got {tuple(t.shape)}")
        return t.detach().cpu()[post, pre]
    if tuple(t.shape) != (nnz,):
        raise ValueError(f"{where}: {name} must be a scalar or have one value per synapse ({nnz},), "
                         f"got shape {tuple(t.shape)}")
    return t.detach().cpu()


def _ell_tables(row_ptr: torch.Tensor, rows: torch.Tensor, k: int, rows_total: int):
    """Index tables of the padded event path (structure only, no weight values).

    The synapses of presynaptic neuron ``i`` are the stored indices ``row_ptr[i] : row_ptr[i+1]``
    (at most ``k``). Neuron ``i`` reads the window ``start[i] : start[i] + k`` of the weight
    vector, ``start[i] = min(row_ptr[i], nnz - k)`` (so the window stays inside it); ``target[i, s]``
    is the output row of window entry ``s`` when it is one of ``i``'s synapses, else the trash
    column ``rows_total + s`` (a window entry of a neighbouring neuron, discarded).
    Shapes: ``start [in]``, ``target [in, k]``."""
    nnz = rows.numel()
    start = row_ptr[:-1].clamp(max=max(nnz - k, 0))
    index = start.unsqueeze(1) + torch.arange(k)                          # [in, k] stored index
    valid = (index >= row_ptr[:-1].unsqueeze(1)) & (index < row_ptr[1:].unsqueeze(1))
    trash = rows_total + torch.arange(k).expand_as(index)
    target = torch.where(valid, rows[index.clamp(max=max(nnz - 1, 0))] if nnz else trash, trash)
    return start, target


class Sparse(DelayedProjection, Node):
    """Sparse projection ``in_features -> out_features`` over explicit synapses (see module doc).

    Args: ``pre``, ``post``: COO lists (same length nnz) of pre- and postsynaptic indices, or
    ``mask``: a boolean ``[out, in]`` matrix (synapses where True, in row-major order).
    ``weight``: None (uniform in +-1/sqrt(mean fan-in)), a scalar, one value per synapse in the
    order given, or (with ``mask``) a dense ``[out, in]`` matrix read at the mask. ``delay``:
    int steps, or one per synapse (or ``[out, in]`` with ``mask``). ``event_driven`` and
    ``event_threshold`` as in :class:`Dense`. A floating ``weight`` tensor keeps its dtype
    (others, scalars and None give the default dtype). The synapses are reordered by presynaptic neuron:
    ``pre``, ``post`` and ``weight`` attributes give the stored order; ``to_dense()`` the matrix.

    count_ops: ``synops`` = sum over active (non-zero) inputs of their fan-out (the synapses the
    event path touches), ``macs`` = rows x nnz (the multiply-adds of the sparse matrix product that
    ignores input activity; the dense equivalent would be rows x in x out).

    Equation: ``y[b, j] = sum_{k: post[k] = j} w[k] x[b, pre[k]] (+ bias[j])``, arriving
    ``delay[k]`` steps later when delays are set. Units: output = weight x input.
    Shapes: ``[batch, in] -> [batch, out]`` per step, ``[T, batch, in] -> [T, batch, out]``."""

    stateless = True
    _event_kind = "sparse"

    def __init__(self, in_features: int, out_features: int, pre=None, post=None, weight=None, *,
                 mask=None, delay=0, bias: bool = False, event_driven="auto",
                 event_threshold: Optional[float] = None):
        where = "Sparse"
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            check_int(n, f"{where}: {name}", minimum=1)
        super().__init__({"input": (in_features,)}, (out_features,))
        self._set_event_options(event_driven, event_threshold, where)
        self.in_features, self.out_features = in_features, out_features

        dense_at = None
        if mask is not None:
            if pre is not None or post is not None:
                raise ValueError(f"{where}: give either pre/post lists or a mask, not both")
            mask = torch.as_tensor(mask)
            if tuple(mask.shape) != (out_features, in_features):
                raise ValueError(f"{where}: mask must have shape (out, in) = {(out_features, in_features)}, "
                                 f"got {tuple(mask.shape)}")
            post_i, pre_i = (mask != 0).detach().cpu().nonzero(as_tuple=True)
            dense_at = (post_i, pre_i, (out_features, in_features))
        else:
            if pre is None or post is None:
                raise ValueError(f"{where}: give the synapses as pre=..., post=... (COO) or mask=[out, in]")
            pre_i, post_i = check_index_list(pre, f"{where}: pre"), check_index_list(post, f"{where}: post")
            if pre_i.numel() != post_i.numel():
                raise ValueError(f"{where}: pre and post must have the same length, got {pre_i.numel()} "
                                 f"and {post_i.numel()}")
        check_index_range(pre_i, in_features, f"{where}: pre", "neurons")
        check_index_range(post_i, out_features, f"{where}: post", "neurons")
        nnz = pre_i.numel()
        weight = _per_synapse(weight, nnz, dense_at, "weight", where)
        delay = _per_synapse(delay, nnz, dense_at, "delay", where)

        # stored order: by presynaptic neuron, then postsynaptic (stable for repeated pairs)
        order = torch.argsort(pre_i * out_features + post_i, stable=True)
        pre_i, post_i = pre_i[order], post_i[order]
        if isinstance(delay, torch.Tensor):
            delay = delay[order]
        self._setup_delays(delay, (nnz,), f"{where}.delay")
        groups = 1 if self.delays is None else self.delays.groups
        rows = post_i if groups == 1 else self.delays.group * out_features + post_i
        fan_out = torch.bincount(pre_i, minlength=in_features)
        row_ptr = torch.zeros(in_features + 1, dtype=torch.long)
        row_ptr[1:] = fan_out.cumsum(0)
        self.register_buffer("pre", pre_i)
        self.register_buffer("post", post_i)
        self.register_buffer("row_ptr", row_ptr, persistent=False)
        self.register_buffer("fan_out", fan_out, persistent=False)
        self.register_buffer("_rows", rows, persistent=False)
        by_row = torch.argsort(rows * in_features + pre_i, stable=True)
        crow = torch.zeros(groups * out_features + 1, dtype=torch.long)
        crow[1:] = torch.bincount(rows, minlength=groups * out_features).cumsum(0)
        self.register_buffer("_perm_by_row", by_row, persistent=False)
        self.register_buffer("_crow_by_row", crow, persistent=False)
        self.register_buffer("_col_by_row", pre_i[by_row], persistent=False)
        self._rows_total = groups * out_features
        self._max_fan_out = int(fan_out.max()) if nnz else 0
        padded = in_features * self._max_fan_out
        self._use_ell = padded <= _ELL_MAX_PADDING * nnz + 1024 or padded <= _ELL_ALWAYS_BELOW
        if self._use_ell and nnz:
            start, target = _ell_tables(row_ptr, rows, self._max_fan_out, self._rows_total)
            self.register_buffer("_ell_start", start, persistent=False)     # [in] weight window start
            self.register_buffer("_ell_target", target, persistent=False)   # [in, K] output row or trash

        if isinstance(weight, torch.Tensor) and weight.is_floating_point():
            dtype = weight.dtype                          # a floating weight keeps its precision
        else:
            dtype = torch.get_default_dtype()
        self.weight = nn.Parameter(torch.empty(nnz, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()
        if weight is not None:
            with torch.no_grad():
                if isinstance(weight, torch.Tensor):
                    weight = weight.to(dtype)
                    if not bool(torch.isfinite(weight).all()):
                        raise ValueError(f"{where}: weights must be finite")
                    self.weight.copy_(weight[order])
                else:
                    if not math.isfinite(weight):
                        raise ValueError(f"{where}: weight must be finite, got {weight!r}")
                    self.weight.fill_(float(weight))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # the index structures derive from pre/post: a checkpoint must have the same synapses
        for name in ("pre", "post"):
            saved = state_dict.get(prefix + name)
            if saved is not None and not torch.equal(saved.to(getattr(self, name).device), getattr(self, name)):
                error_msgs.append(f"Sparse ({prefix or 'root'}): the checkpoint's {name!r} indices differ from "
                                  "this projection's synapses; build the Sparse with the same connectivity first")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_dense(cls, weight: torch.Tensor, mask=None, **kwargs) -> "Sparse":
        """Synapses at the non-zeros of ``weight [out, in]`` (or where ``mask`` is True), with
        their values from ``weight``."""
        weight = torch.as_tensor(weight)
        if weight.dim() != 2:
            raise ValueError(f"Sparse.from_dense: weight must be [out, in], got shape {tuple(weight.shape)}")
        out_f, in_f = weight.shape
        return cls(in_f, out_f, mask=(weight != 0) if mask is None else mask, weight=weight, **kwargs)

    @classmethod
    def random(cls, in_features: int, out_features: int, p: float,
               weight: Union[None, float, Callable] = None, delay: Union[int, Callable] = 0,
               seed: Optional[int] = None, generator: Optional[torch.Generator] = None,
               allow_autapses: bool = True, **kwargs) -> "Sparse":
        """Each of the ``in x out`` possible synapses exists independently with probability ``p``.

        ``weight``/``delay``: a scalar, or a callable ``f(nnz, generator) -> [nnz] tensor`` (e.g.
        ``lambda n, g: 0.1 * torch.rand(n, generator=g)``). ``seed`` or ``generator`` make the
        draw reproducible (``seed`` creates a fresh generator). ``allow_autapses=False`` removes
        the synapses ``i -> i`` (only meaningful when ``in_features == out_features``).
        Expected nnz = p x in x out."""
        check_number(p, "Sparse.random: connection probability p", nonnegative=True, what="probability")
        if p > 1:
            raise ValueError(f"Sparse.random: connection probability p must be in [0, 1], got {p!r}")
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            check_int(n, f"Sparse.random: {name}", minimum=1)
        if not allow_autapses and in_features != out_features:
            raise ValueError("Sparse.random: allow_autapses=False needs in_features == out_features "
                             f"(a population onto itself), got {in_features} -> {out_features}")
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(int(seed))
            else:
                generator.seed()
        elif seed is not None:
            raise ValueError("Sparse.random: give seed or generator, not both")
        chunk = max(1, (1 << 22) // in_features)     # rows drawn per call (bounded memory)
        posts, pres = [], []
        for start in range(0, out_features, chunk):
            rows = min(chunk, out_features - start)
            m = torch.rand(rows, in_features, generator=generator) < p
            if not allow_autapses:
                idx = torch.arange(start, start + rows)
                m[idx - start, idx] = False
            j, i = m.nonzero(as_tuple=True)
            posts.append(j + start)
            pres.append(i)
        post, pre = torch.cat(posts), torch.cat(pres)
        nnz = pre.numel()
        if callable(weight):
            weight = weight(nnz, generator)
        if callable(delay):
            delay = delay(nnz, generator)
        return cls(in_features, out_features, pre=pre, post=post, weight=weight, delay=delay, **kwargs)

    def reset_parameters(self):
        """Weights uniform in +-1/sqrt(mean fan-in) (mean fan-in = nnz / out); bias zero."""
        fan_in = max(1.0, self.weight.numel() / self.out_features)
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # ------------------------------------------------------------------ queries
    @property
    def nnz(self) -> int:
        """Number of synapses."""
        return self.weight.numel()

    def to_dense(self) -> torch.Tensor:
        """The ``[out, in]`` weight matrix (repeated pairs summed; delays ignored), differentiable."""
        dense = self.weight.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.post, self.pre), self.weight, accumulate=True)

    def mask(self) -> torch.Tensor:
        """Boolean ``[out, in]``: True where at least one synapse exists."""
        m = torch.zeros(self.out_features, self.in_features, dtype=torch.bool, device=self.pre.device)
        m[self.post, self.pre] = True
        return m

    def structure(self) -> _Structure:
        return _Structure(self.in_features, self._rows_total, self.row_ptr, self._rows,
                          self._crow_by_row, self._col_by_row, self._perm_by_row)

    # ------------------------------------------------------------------ propagation

    def _event_targets(self, x2d: torch.Tensor, stride: int):
        """Flat ``(targets, values)`` of the synapses of the non-zero inputs: for input ``(b, i)``
        and each synapse ``k`` of ``i``, ``target = b * stride + row[k]``, ``value = x[b, i] w[k]``.
        The padded path also yields padding entries with targets ``b * stride + R + s``
        (``s < K``; ``stride >= R + K``), to be discarded. The weights are read from the
        Parameter at each call: only index tables, derived from ``pre``/``post``, are kept."""
        if x2d.shape[0] == 1:
            flat = x2d.reshape(-1)
            cols = torch.nonzero(flat).view(-1)
            vals, batch_idx = flat.index_select(0, cols), None
        else:
            batch_idx, cols = x2d.nonzero(as_tuple=True)
            vals = x2d[batch_idx, cols]
        weight = self.weight.detach()
        if vals.dtype != weight.dtype:
            vals = vals.to(weight.dtype)
        if self._use_ell and self.nnz:
            k = self._max_fan_out
            window = weight.contiguous().as_strided((self.nnz - k + 1, k), (1, 1))   # row s: w[s : s + k]
            w = window.index_select(0, self._ell_start.index_select(0, cols)) * vals.unsqueeze(1)
            target = self._ell_target.index_select(0, cols)
            if batch_idx is not None:
                target = target + (batch_idx * stride).unsqueeze(1)
        else:                                   # CSR segments row_ptr[i] : row_ptr[i + 1]
            counts = self.fan_out.index_select(0, cols)
            seg = torch.repeat_interleave(counts)                  # active input of each synapse
            starts = self.row_ptr.index_select(0, cols) - (counts.cumsum(0) - counts)
            pos = torch.arange(seg.numel(), device=x2d.device) + starts.index_select(0, seg)
            w = weight.index_select(0, pos) * vals.index_select(0, seg)
            target = self._rows.index_select(0, pos)
            if batch_idx is not None:
                target = target + batch_idx.index_select(0, seg) * stride
        return target.reshape(-1), w.reshape(-1)

    def event_propagate(self, x2d: torch.Tensor) -> torch.Tensor:
        """``[N, in] -> [N, R]`` gathering only the synapses of non-zero inputs (no autograd;
        ``R = G * out`` with G delay groups). Cost: nnz(x) x max fan-out (padded table) or
        nnz(x) x fan-out (CSR segments, used when fan-outs are very uneven)."""
        n, r = x2d.shape[0], self._rows_total
        stride = r + self._max_fan_out                  # R output rows, then K trash columns
        target, w = self._event_targets(x2d, stride)
        y = torch.zeros(n * stride, dtype=w.dtype, device=x2d.device).index_add_(0, target, w)
        return y.view(n, stride)[:, :r].contiguous()

    def _rows_out(self, x2d: torch.Tensor) -> torch.Tensor:
        if self.use_event_path(x2d):
            return self.event_propagate(x2d)
        return sparse_linear(x2d, self.weight, self.structure())

    def _event_fan_out(self) -> float:
        """Synapses gathered per active input: K (padded table) or the mean fan-out (CSR)."""
        return self._max_fan_out if self._use_ell else self.nnz / self.in_features

    def _dense_synapses(self) -> int:
        return self.nnz

    def propagate(self, x2d: torch.Tensor) -> torch.Tensor:
        """Undelayed ``[N, in] -> [N, out]`` (with bias)."""
        y = self._rows_out(x2d)
        return y if self.bias is None else y + self.bias

    def _grouped(self, x2d: torch.Tensor) -> torch.Tensor:
        groups = 1 if self.delays is None else self.delays.groups
        return self._rows_out(x2d).view(x2d.shape[0], groups, self.out_features)

    def count_ops(self, x, output):
        """synops = sum over non-zero inputs of their fan-out; macs = rows x nnz."""
        x2 = x.detach().reshape(-1, self.in_features)
        active = torch.count_nonzero(x2, dim=0)
        return {"synops": (active * self.fan_out).sum(),
                "macs": torch.tensor(x2.shape[0] * self.nnz)}

    def extra_repr(self) -> str:
        return (f"{self.in_features} -> {self.out_features}, nnz={self.nnz}, bias={self.bias is not None}, "
                f"event_driven={self.event_driven}")
