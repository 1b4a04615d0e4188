"""A block of the run plan as a compiled program, and its run.

:func:`build_block` lowers the nodes of one block (:mod:`neurosim.compiled.lowering`) and lays
out the tables and typed lists of :mod:`neurosim.compiled.machine`; :meth:`CompiledBlock.run`
runs the machine over all ``T`` steps in one call and hands back, as torch tensors, what
``schedule.Run`` needs: the kept output sequences, the last outputs of the other nodes, the new
node states and the recorded monitor variables. Every array is a CPU tensor shared with numpy
without a copy, so the outputs and states come back without copies either.

Shapes: sequences from outside the block ``[T, batch, *shape]``; every node is stored flat
(``[batch, n]``) and reshaped back at the end.
"""
from __future__ import annotations

import mmap
import warnings
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np
import torch

from . import kinds as K
from .lowering import LoweredNode, NotLowerable, lower_node

__all__ = ["CompiledBlock", "build_block", "NotExact"]


class NotExact(NotLowerable):
    """Raised by :meth:`CompiledBlock.run` when a node met a value its kernel does not reproduce
    exactly (e.g. a non-integer input to a fixed-point synapse); the states given to the block
    are untouched, so the caller runs the block again on the torch path."""

Edge = Tuple[str, bool]


#: sequences at least this large are allocated on transparent huge pages where the OS offers them
HUGE_PAGE_BYTES = 8 << 20


def empty_sequence(shape, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor for a recorded sequence (``[T, batch, n]``).

    A large one (>= :data:`HUGE_PAGE_BYTES`) is an anonymous memory map advised to use
    transparent huge pages (``MADV_HUGEPAGE``, Linux): the run writes it once, step by step, and
    with 4 KB pages every 4 KB written costs a page fault (160 MB of COBA spikes: ~0.12 s of the
    kernel zeroing pages one by one; ~0.05 s with 2 MB pages). Elsewhere, or when the map or the
    advice is refused, a plain ``torch.empty``."""
    numel = int(np.prod(shape))
    size = numel * torch.empty(0, dtype=dtype).element_size()
    advise = getattr(mmap, "MADV_HUGEPAGE", None)
    if size < HUGE_PAGE_BYTES or advise is None:
        return torch.empty(shape, dtype=dtype)
    try:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(advise)
    except (OSError, ValueError, AttributeError):
        return torch.empty(shape, dtype=dtype)
    with warnings.catch_warnings():       # "The given buffer is not writable": it is (MAP_PRIVATE)
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(region, dtype=dtype).view(shape)


def _table(arrays) -> np.ndarray:
    """``(address, d0, d1, d2)`` per array; row 0 is a placeholder (index 0 means "none")."""
    rows = np.zeros((len(arrays) + 1, 4), dtype=np.int64)
    for k, a in enumerate(arrays, start=1):
        rows[k, 0] = a.data_ptr()
        rows[k, 1:1 + a.dim()] = a.shape
    return rows


class _Layout:
    """Collects the arrays of a program; each ``add_*`` returns the array's index."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.f2: List[torch.Tensor] = []
        self.f3: List[torch.Tensor] = []
        self.p: List[torch.Tensor] = []
        self.ix: List[torch.Tensor] = []
        self.i2: List[torch.Tensor] = []
        self.i3: List[torch.Tensor] = []

    @staticmethod
    def _add(store, arrays) -> int:
        first = len(store) + 1          # + 1: the typed dummy at index 0
        for a in arrays:
            if not a.is_contiguous() or a.device.type != "cpu":
                raise NotLowerable("an array of the program is not a contiguous CPU tensor")
            store.append(a)
        return first

    def f2_(self, *arrays):
        return self._add(self.f2, arrays)

    def f3_(self, *arrays):
        return self._add(self.f3, arrays)

    def p_(self, *arrays):
        return self._add(self.p, arrays)

    def ix_(self, *arrays):
        return self._add(self.ix, arrays)

    def two(self, lane, *arrays):
        """2D arrays of ``lane``: F2 (the float dtype) or I2 (int64)."""
        return self._add(self.i2 if lane == K.LANE_INT else self.f2, arrays)

    def three(self, lane, *arrays):
        """3D arrays of ``lane``: F3 or I3."""
        return self._add(self.i3 if lane == K.LANE_INT else self.f3, arrays)

    def lane_dtype(self, lane):
        return torch.int64 if lane == K.LANE_INT else self.dtype

    def tables(self):
        """The six array tables, then empty arrays of the float and int element types."""
        like = np.zeros(0, dtype=torch.empty(0, dtype=self.dtype).numpy().dtype)
        return (_table(self.f2), _table(self.f3), _table(self.p), _table(self.ix), _table(self.i2),
                _table(self.i3), like, np.zeros(0, dtype=np.int64))


class CompiledBlock:
    """One block ready to run: call :meth:`run` once (see the module docstring)."""

    def __init__(self, names, lowered, tables, layout, outputs, lasts, records, monitored, monitor_dtypes, shapes,
                 steps, batch):
        self.names, self.lowered, self.tables, self.layout = names, lowered, tables, layout
        self.outputs, self.lasts, self.records, self.monitored = outputs, lasts, records, monitored
        #: (node, state variable) -> the field's dtype (an integer state is recorded as int64)
        self.monitor_dtypes = monitor_dtypes
        self.shapes, self.steps, self.batch = shapes, steps, batch

    def run(self):
        """Run all steps; returns ``(sequences, last outputs, states, monitored)``: kept node ->
        ``[T, batch, *out]``; other node -> its output at the last step; node -> new state;
        (node, variable) -> ``[T, batch, ...]``."""
        from .machine import run_program
        nodes, edges, monitors = self.tables
        run_program(self.steps, nodes, edges, monitors, *self.layout.tables())
        for name, low in zip(self.names, self.lowered):
            why = low.inexact()
            if why is not None:
                raise NotExact(f"node {name!r}: {why}")
        b = self.batch
        seqs = {n: r.reshape(self.steps, b, *self.shapes[n]) for n, r in self.records.items()}
        last = {n: out.reshape(b, *self.shapes[n]) for n, out in self.outputs.items() if n not in seqs}
        states = {n: low.finish() for n, low in zip(self.names, self.lowered)}
        monitored = {key: t.to(self.monitor_dtypes.get(key, t.dtype)) for key, t in self.monitored.items()}
        return seqs, last, states, monitored


def build_block(names: Sequence[str], nodes: Dict, ports: Dict[str, List[List[Edge]]], dt: float,
                outside: Dict[Edge, torch.Tensor], previous: Dict[str, torch.Tensor], states: Dict,
                keep: Set[str], monitored: Dict[str, Sequence[str]], steps: int, batch: int,
                dtype: torch.dtype) -> CompiledBlock:
    """Lower the block ``names`` (feed-forward order) into a :class:`CompiledBlock`.

    ports: node -> per port the in-edges ``(source, back)`` in order (``RunPlan.ports``);
    outside: ``(source, back)`` -> ``[T, batch, ...]`` for sources outside the block; previous:
    the last outputs of in-block back-edge sources; keep: nodes whose output sequence is
    returned; monitored: node -> state fields (or ``"output"``) recorded every step. Raises
    :class:`NotLowerable` when a node cannot run compiled."""
    if dtype not in (torch.float32, torch.float64):
        raise NotLowerable(f"the compiled path runs float32 and float64, not {dtype}")
    lay = _Layout(dtype)
    lowered = [lower_node(nodes[n], states[n], dt, batch, dtype) for n in names]
    inside = set(names)
    flat = {n: int(torch.Size(nodes[n].out_shape).numel()) for n in names}
    lane = {n: low.out_lane for n, low in zip(names, lowered)}
    out_index, outputs = {}, {}
    for n in names:
        outputs[n] = torch.zeros(batch, flat[n], dtype=lay.lane_dtype(lane[n]))
        out_index[n] = lay.two(lane[n], outputs[n])
    back_read = {s for n in names for port in ports[n] for s, back in port if back and s in inside}
    last_index = {}
    for n in sorted(back_read):
        start = previous[n].detach().reshape(batch, flat[n]).to(lay.lane_dtype(lane[n])).clone()
        last_index[n] = lay.two(lane[n], start)
    seq_index = {}

    def outside_sequence(edge, port_lane, where):
        """The F3 / I3 index of an outside sequence as the port's lane reads it."""
        if (edge, port_lane) not in seq_index:
            seq = outside[edge].detach().reshape(steps, batch, -1)
            if port_lane == K.LANE_INT and seq.is_floating_point():
                if not bool((seq == seq.round()).all()):
                    raise NotLowerable(f"{where}: an integer input port receives non-integer values")
                if bool((seq.abs() > 2.0 ** 62).any()):
                    raise NotLowerable(f"{where}: an integer input port receives values beyond int64")
            seq_index[edge, port_lane] = lay.three(port_lane, seq.to(lay.lane_dtype(port_lane)).contiguous())
        return seq_index[edge, port_lane]
    records = {n: empty_sequence((steps, batch, flat[n]), lay.lane_dtype(lane[n])) for n in names if n in keep}
    record_index = {n: lay.three(lane[n], r) for n, r in records.items()}
    table = np.full((len(names), K.COLUMNS), -1, dtype=np.int64)
    edge_rows, monitor_rows, recorded, wanted = [], [], {}, {}
    for q, (n, low) in enumerate(zip(names, lowered)):
        row = table[q]
        row[K.KIND], row[K.OUT], row[K.LAST] = low.kind, out_index[n], last_index.get(n, -1)
        row[K.RECORD] = record_index.get(n, -1)
        row[K.OUT_LANE] = lane[n]
        integer = low.kind >= K.INTEGER_KINDS
        node_ports = ports[n]
        if len(node_ports) > 2:
            raise NotLowerable(f"node {n!r} has {len(node_ports)} input ports (the machine takes two)")
        for p, (start_col, end_col, scratch_col, lane_col) in enumerate(
                ((K.PORT0, K.PORT0_END, K.SCRATCH0, K.PORT0_LANE), (K.PORT1, K.PORT1_END, K.SCRATCH1, K.PORT1_LANE))):
            row[start_col] = row[end_col] = len(edge_rows)
            port_lane = low.port_lanes[p] if p < len(low.port_lanes) else K.LANE_FLOAT
            row[lane_col] = port_lane
            if p >= len(node_ports):
                continue
            width = int(torch.Size(nodes[n].in_shapes[nodes[n].input_ports[p]]).numel())
            port_edges = node_ports[p] or [None]
            for edge in port_edges:
                if edge is not None and edge[0] in inside and lane[edge[0]] != port_lane:
                    raise NotLowerable(f"node {n!r} port {p} reads {edge[0]!r} in the other lane "
                                       "(integer and float values mixed)")
                if edge is None:                                   # an unconnected port reads zeros
                    zeros = torch.zeros(batch, width, dtype=lay.lane_dtype(port_lane))
                    edge_rows.append((K.SOURCE_CURRENT, lay.two(port_lane, zeros), -1))
                elif edge[0] not in inside:
                    edge_rows.append((K.SOURCE_SEQUENCE, outside_sequence(edge, port_lane, f"node {n!r}"), -1))
                elif edge[1]:
                    edge_rows.append((K.SOURCE_LAST, last_index[edge[0]], record_index.get(edge[0], -1)))
                else:
                    edge_rows.append((K.SOURCE_CURRENT, out_index[edge[0]], record_index.get(edge[0], -1)))
            row[end_col] = len(edge_rows)
            if len(port_edges) > 1:
                row[scratch_col] = lay.two(port_lane, torch.zeros(batch, width, dtype=lay.lane_dtype(port_lane)))
        state_lane = K.LANE_INT if integer else K.LANE_FLOAT
        row[K.STATE] = lay.two(state_lane, *low.state) if low.state else 0
        row[K.PARAM] = lay.p_(*low.params) if low.params else 0
        row[K.INT] = lay.ix_(*low.ints) if low.ints else 0
        row[K.EXTRA] = lay.two(state_lane, *low.extra2) if low.extra2 else 0
        row[K.SEQ] = lay.three(state_lane, *low.extra3) if low.extra3 else 0
        flags = tuple(low.flags) + (0,) * (4 - len(low.flags))
        row[K.FLAG0], row[K.FLAG1], row[K.FLAG2], row[K.FLAG3] = flags
        row[K.MONITOR] = len(monitor_rows)
        fields = getattr(states[n], "_fields", ())
        for var in monitored.get(n, ()):
            if var == "output" and n in records:
                recorded[n, var] = records[n]
                continue
            if var == "output":
                source, like, var_lane = out_index[n], outputs[n], lane[n]
            elif var in fields:
                k = fields.index(var)
                source, like, var_lane = row[K.STATE] + k, low.state[k], state_lane
            else:
                raise NotLowerable(f"node {n!r}: monitored variable {var!r} is not kept by the compiled kernel")
            target = empty_sequence((steps, *like.shape), lay.lane_dtype(var_lane))
            monitor_rows.append((source, lay.three(var_lane, target), var_lane))
            recorded[n, var] = target
            if var != "output":                  # given back in the state field's own dtype
                wanted[n, var] = getattr(states[n], var).dtype
        row[K.MONITOR_END] = len(monitor_rows)
    edges = np.array(edge_rows, dtype=np.int64).reshape(-1, 3)
    monitors = np.array(monitor_rows, dtype=np.int64).reshape(-1, 3)
    shapes = {n: tuple(nodes[n].out_shape) for n in names}
    state_shapes = {n: {f: tuple(getattr(states[n], f).shape[1:]) for f in getattr(states[n], "_fields", ())}
                    for n in names}
    monitored_out = {key: t.reshape(steps, batch, *(shapes[key[0]] if key[1] == "output"
                                                    else state_shapes[key[0]][key[1]]))
                     for key, t in recorded.items()}
    return CompiledBlock(list(names), lowered, (table, edges, monitors), lay, outputs, last_index, records,
                         monitored_out, wanted, shapes, steps, batch)
