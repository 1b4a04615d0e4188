"""Monitors: record what a node does during :meth:`neurosim.Simulator.run`, in memory or to HDF5.

A :class:`Monitor` watches one node. For every step ``t`` of a run the simulator hands it the
node's output and every field of its state NamedTuple (``"v"``, ``"i"``, ``"refractory"`` for a
LIF population; only ``"output"`` for a stateless node such as ``Dense``). The monitor keeps
the steps ``k`` with ``k mod every == 0``, ``time = k * dt`` [s], where the step index ``k``
depends on ``time_axis``:

* ``"per_run"`` (default): ``k = t``. Every run starts at step 0, so a monitor reused across
  runs that each start from rest (e.g. the batches of a :class:`neurosim.training.Trainer`)
  records the same time indices in every run.
* ``"continued"``: ``k = (steps of the earlier finished runs seen by this monitor) + t``, for a
  chain of runs where each continues from the previous one's state (``sim.run(x2, state=...)``),
  so the time axis carries on. :meth:`Monitor.reset` restarts it at 0.

In memory (``path=None``) the run's record is ``{var: [n_recorded, batch, *shape], "t": k
(int64), "time": k * dt (float64, seconds)}``, holding only that run's steps; with
``detach=False`` the tensors keep their autograd graph (for firing-rate penalties).

Streamed (``path="run.h5"``) the values are buffered ``chunk_steps`` records at a time and then
written with one h5py call per variable into chunked, compressed, resizable datasets shaped
``[time, batch, *shape]`` (plus ``"t"``). The file is written under a temporary name in the same
directory, fsynced and renamed to ``path`` by :meth:`Monitor.close` (or at the end of a ``with``
block; see :mod:`neurosim.atomic`), so a crash never leaves a half-written file under the final
name. Consecutive runs append to the same file until it is closed (with ``time_axis="per_run"``
the file's ``t`` restarts at 0 where each run begins). :meth:`Monitor.abort` deletes the
temporary file instead; :func:`closing_monitors` closes a group of monitors when a block
succeeds and aborts all of them when it raises. :func:`load_recording` reads a file back.

Example::

    >>> mon = Monitor("hidden", variables=("spikes", "v"), every=2)
    >>> result = sim.run(x, monitors=[mon])
    >>> result.records["hidden"]["spikes"].shape        # [ceil(T / 2), batch, 128]
    >>> with Monitor("hidden", ("spikes",), path="hidden.h5", time_axis="continued") as m:
    ...     r = sim.run(x1, monitors=[m]); sim.run(x2, state=r.state, monitors=[m])
    >>> rec = load_recording("hidden.h5"); rec.variables["spikes"].shape   # [T1 + T2, batch, 128]
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from .atomic import commit, discard, temp_name

__all__ = ["Monitor", "MonitorError", "closing_monitors", "Recording", "load_recording", "spike_times",
           "TIME_AXES"]

#: variable aliases accepted by :class:`Monitor` (requested name -> key the simulator hands over)
ALIASES = {"spikes": "output"}
#: keys of an in-memory record that are not variables
_RESERVED = ("t", "time")
FORMAT_NAME = "neurosim-recording"
FORMAT_VERSION = 1
#: target size of one HDF5 chunk in bytes (chunks much larger than ~1 MiB defeat the chunk cache)
_CHUNK_BYTES = 1 << 20
#: how the step index k of a recorded step is counted (see the module docstring)
TIME_AXES = ("per_run", "continued")


class MonitorError(ValueError):
    """A bad monitor argument, found before any step runs.

    ``argument`` names the :class:`Monitor` argument at fault (``"node"``, ``"variables"``,
    ``"every"``, ...) and ``reason`` says what is wrong with it, so a caller such as the config
    loader can report it under its own key (``monitors[0].every: must be ...``)."""

    def __init__(self, argument: str, reason: str, message: str):
        self.argument, self.reason = argument, reason
        super().__init__(message)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("neurosim")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


class Monitor:
    """Record ``variables`` of node ``node`` every ``every`` steps, in memory or to an HDF5 file.

    Recorded steps (``k = t`` per run, or counted on across runs, see ``time_axis``)::

        keep step k  <=>  k mod every == 0;        time[k] = k * dt  (seconds)

    Shapes: each variable ``[n_recorded, batch, *shape]`` where ``shape`` is the node's
    ``out_shape`` (``"output"``/``"spikes"``) or the state field's per-sample shape.

    Args:
        node: name of the watched node in the graph.
        variables: ``"output"``, its alias ``"spikes"`` (spiking nodes only) and/or state fields
            of the node (e.g. ``"v"``). Checked at :meth:`start`, before any step runs.
        every: keep one step in ``every`` (>= 1).
        path: HDF5 file to stream to (``None``: keep in memory). An existing file at ``path`` is
            replaced when the monitor is closed.
        name: key in ``result.records`` (default: ``node``); give distinct names to two
            monitors on the same node.
        detach: drop the autograd graph (in-memory only; a file is always detached).
        compression: HDF5 filter, ``"gzip"``, ``"lzf"`` or ``None``. gzip shrinks spike trains
            ~1000x at little cost but compresses float states (``v``) only ~10% at ~30 MB/s;
            use ``"lzf"`` or ``None`` for long float recordings.
        chunk_steps: records buffered before one write (and the longest chunk along time).
        time_axis: ``"per_run"`` (default): every run starts at step 0; ``"continued"``: the
            step index carries on over consecutive runs (for runs continued with ``state=``).

    Bad arguments raise :class:`MonitorError` (a ``ValueError``) naming the argument.

    Example::

        >>> mon = Monitor("lif", ("spikes", "v"), detach=False)
        >>> rec = sim.run(x, monitors=[mon]).records["lif"]
        >>> penalty = (rec["spikes"].mean() - 0.02).pow(2)     # differentiable firing-rate penalty
    """

    def __init__(self, node: str, variables: Union[str, Sequence[str]] = ("output",), every: int = 1,
                 path: Optional[Union[str, os.PathLike]] = None, name: Optional[str] = None,
                 detach: bool = True, compression: Optional[str] = "gzip", chunk_steps: int = 64,
                 time_axis: str = "per_run"):
        if not isinstance(node, str) or not node:
            raise MonitorError("node", f"must be a node name (non-empty str), got {node!r}",
                               f"Monitor node must be a node name (non-empty str), got {node!r}")

        def bad(argument, reason):
            return MonitorError(argument, reason, f"Monitor({node!r}) {argument} {reason}")

        if isinstance(variables, str):
            variables = (variables,)
        if not isinstance(variables, (list, tuple)):
            raise bad("variables", f"must be a non-empty sequence of names, got {variables!r}")
        variables = tuple(variables)
        if not variables or not all(isinstance(v, str) and v for v in variables):
            raise bad("variables", f"must be a non-empty sequence of names, got {list(variables)!r}")
        if len(set(variables)) != len(variables):
            raise bad("variables", f"must not contain duplicates, got {list(variables)!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise bad("every", f"must be an integer >= 1, got {every!r}")
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1:
            raise bad("chunk_steps", f"must be an integer >= 1, got {chunk_steps!r}")
        if compression not in ("gzip", "lzf", None):
            raise bad("compression", f"must be 'gzip', 'lzf' or None, got {compression!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise bad("name", f"must be a non-empty str, got {name!r}")
        if time_axis not in TIME_AXES:
            raise bad("time_axis", f"must be one of {list(TIME_AXES)}, got {time_axis!r}")
        if path is not None:
            path = os.path.abspath(os.fspath(path))
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                raise bad("path", f"{path!r}: directory {directory!r} does not exist")
            if os.path.isdir(path):
                raise bad("path", f"{path!r} is a directory, expected a file name")
            if not detach:
                raise bad("detach", "must be True with a path: detach=False keeps the autograd graph, which "
                                    "a file cannot hold; use path=None to keep the graph")
        self.node, self.variables, self.every = node, variables, every
        self.name = name or node
        self.path, self.detach = path, bool(detach)
        self.compression, self.chunk_steps = compression, chunk_steps
        self.time_axis = time_axis
        self._step = 0                     # steps of the finished runs since creation or reset()
        self._run_start = 0                # step index k of the current run's step 0
        self._run_steps = 0
        self._running = False
        self._closed = False
        self._dt: Optional[float] = None
        self._batch: Optional[int] = None
        self._sources: Dict[str, str] = {}           # requested name -> key handed over by the simulator
        self._shapes: Dict[str, Tuple[int, ...]] = {}
        self._dtypes: Dict[str, torch.dtype] = {}
        self._buf: Dict[str, List[torch.Tensor]] = {}
        self._buf_t: List[int] = []
        # streaming
        self._file = None
        self._tmp: Optional[str] = None
        self._rows = 0                     # rows in the file after the last finished run

    # ------------------------------------------------------------------ properties
    @property
    def streaming(self) -> bool:
        """True when the monitor writes to an HDF5 file."""
        return self.path is not None

    @property
    def needs_state(self) -> bool:
        """True when a requested variable is a state field (not only the node's output)."""
        return any(ALIASES.get(v, v) != "output" for v in self.variables)

    @property
    def sources(self) -> tuple:
        """What the monitor reads from its node each step: ``"output"`` and/or state field names
        (``"spikes"`` is the output)."""
        return tuple(sorted({ALIASES.get(v, v) for v in self.variables}))

    @property
    def steps_seen(self) -> int:
        """Steps of all finished runs since creation or :meth:`reset` (with
        ``time_axis="continued"``, the step index ``k`` the next run starts at)."""
        return self._step

    @property
    def temp_path(self) -> Optional[str]:
        """The temporary file being written (``None`` when not streaming or not yet opened)."""
        return self._tmp

    def __repr__(self):
        where = f", path={self.path!r}" if self.path else ""
        axis = "" if self.time_axis == "per_run" else f", time_axis={self.time_axis!r}"
        return f"Monitor({self.node!r}, variables={self.variables}, every={self.every}{where}{axis})"

    # ------------------------------------------------------------------ checks
    def check(self, graph) -> None:
        """Raise :class:`MonitorError` unless ``graph`` has the watched node and the node has every
        requested variable; runs nothing (cheap: one ``initial_state(1)`` of the node)."""
        self._resolve(graph.nodes)

    def _resolve(self, nodes):
        """Requested variable -> (key the simulator hands over, per-sample shape, dtype)."""
        if self.node not in nodes:
            raise MonitorError("node", f"unknown node {self.node!r} (nodes: {list(nodes)})",
                               f"monitor {self.name!r} watches unknown node {self.node!r} (nodes: {list(nodes)})")
        node = nodes[self.node]
        shapes, dtypes = _available_variables(node)
        spiking = bool(getattr(node, "emits_spikes", False))
        available = sorted(shapes) + (sorted(ALIASES) if spiking else [])
        resolved = {}
        for var in self.variables:
            src = ALIASES.get(var, var)
            if var in ALIASES and not spiking:
                reason = (f"node {self.node!r} does not emit spikes, so it has no variable {var!r}; "
                          "record 'output' instead")
            elif src not in shapes or var in _RESERVED:
                reason = (f"node {self.node!r} has no variable {var!r}; available: {available}"
                          + (" ('t' and 'time' are reserved)" if var in _RESERVED else ""))
            else:
                resolved[var] = (src, shapes[src], dtypes[src])
                continue
            raise MonitorError("variables", reason, f"monitor {self.name!r}: {reason}")
        return resolved

    # ------------------------------------------------------------------ protocol used by the Simulator
    def start(self, sim, steps: int, batch: int) -> None:
        """Check the variables against the node and prepare for ``steps`` steps of ``batch``.

        Raises (before any step runs) :class:`MonitorError` for an unknown node or variable or
        ``"spikes"`` on a non-spiking node, and ``ValueError`` for a streamed run whose batch,
        shapes or ``dt`` differ from the file's. A run that started but never finished (an
        exception in the simulation) is discarded: its steps do not count and its rows are
        removed from the file. The run's step 0 gets index ``k = 0`` (``time_axis="per_run"``)
        or ``k = steps_seen`` (``"continued"``)."""
        if self._closed:
            raise RuntimeError(f"monitor {self.name!r} is closed ({self.path}); create a new Monitor")
        if self._running:
            self._rollback()
        resolved = self._resolve(sim.graph.nodes)
        dt = float(sim.dt)
        if self.streaming and self._file is not None:
            problems = []
            if batch != self._batch:
                problems.append(f"batch {batch} != {self._batch}")
            if not math.isclose(dt, self._dt, rel_tol=1e-12):
                problems.append(f"dt {dt} != {self._dt}")
            for var, (_, shape, _) in resolved.items():
                if shape != self._shapes[var]:
                    problems.append(f"{var!r} shape {shape} != {self._shapes[var]}")
            if problems:
                raise ValueError(f"monitor {self.name!r}: this run cannot be appended to {self.path}: "
                                 + "; ".join(problems))
        self._sources = {var: src for var, (src, _, _) in resolved.items()}
        self._shapes = {var: shape for var, (_, shape, _) in resolved.items()}
        self._dtypes = {var: dtype for var, (_, _, dtype) in resolved.items()}
        self._dt, self._batch = dt, int(batch)
        if self.streaming and self._file is None:
            self._open()
        self._buf = {var: [] for var in resolved}
        self._buf_t = []
        self._run_start = self._step if self.time_axis == "continued" else 0
        self._run_steps, self._running = int(steps), True

    def record(self, t: int, values: Dict[str, torch.Tensor]) -> None:
        """Keep step ``t`` of the current run when its index ``k`` is a multiple of ``every``.

        ``values``: ``{"output": [batch, *shape], <state field>: [batch, ...]}``."""
        if not self._running:
            raise RuntimeError(f"monitor {self.name!r}: record() called before start()")
        k = self._run_start + int(t)
        if k % self.every:
            return
        for var, src in self._sources.items():
            if src not in values:
                raise ValueError(f"monitor {self.name!r}: node {self.node!r} provided no {src!r} at step {t} "
                                 f"(got {sorted(values)})")
            v = values[src]
            self._buf[var].append(v.detach() if self.detach else v)
        self._buf_t.append(k)
        if self.streaming and len(self._buf_t) >= self.chunk_steps:
            self._flush()

    def finish(self) -> Dict[str, Any]:
        """End the run: the in-memory record of this run, or ``{"path": final path}`` when streaming
        (buffered records are written; the file keeps its temporary name until :meth:`close`)."""
        if not self._running:
            raise RuntimeError(f"monitor {self.name!r}: finish() called without a running start()")
        if self.streaming:
            self._flush()
            self._file.flush()
            self._rows = self._file["t"].shape[0]
            out: Dict[str, Any] = {"path": self.path}
        else:
            out = {}
            for var, items in self._buf.items():
                if items:
                    out[var] = torch.stack(items)
                else:
                    out[var] = torch.empty((0, self._batch, *self._shapes[var]), dtype=self._dtypes[var])
            t = torch.tensor(self._buf_t, dtype=torch.int64)
            out["t"] = t
            out["time"] = t.to(torch.float64) * self._dt
        self._buf = {var: [] for var in self._sources}
        self._buf_t = []
        self._step += self._run_steps
        self._running = False
        return out

    # ------------------------------------------------------------------ lifetime
    def reset(self) -> None:
        """Restart the step count at 0 (``steps_seen``; with ``time_axis="continued"`` the next run
        starts at step 0). A ``"continued"`` file that is open cannot go back in time."""
        if self.streaming and self._file is not None and self.time_axis == "continued":
            raise RuntimeError(f"monitor {self.name!r}: cannot reset the time axis of an open file; close it "
                               "and create a new Monitor")
        self._step, self._running = 0, False
        self._buf, self._buf_t = {}, []

    def close(self) -> Optional[str]:
        """Write what finished runs recorded, fsync the file and rename it to its final ``path``
        (:func:`neurosim.atomic.commit`).

        Steps of a run that never finished are dropped. Returns the final path (``None`` for an
        in-memory monitor, for which this does nothing). Idempotent. If writing fails, the
        temporary file is deleted and the error propagates."""
        if not self.streaming or self._closed:
            return self.path
        self._closed = True
        if self._file is None:          # never ran: nothing to write
            return self.path
        try:
            if self._running:
                self._rollback()
            self._file.close()
            self._file = None
            commit(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Give the recording up: close and delete the temporary file without creating ``path``.

        For an in-memory monitor only the unfinished run (if any) is forgotten. Never raises for
        the file it deletes; a monitor already closed keeps its final file. Idempotent."""
        if not self.streaming:
            if self._running:
                self._rollback()
            return
        self._closed = True
        file, tmp = self._file, self._tmp
        self._file = self._tmp = None
        try:
            if file is not None:
                file.close()
        finally:
            if tmp is not None:
                discard(tmp)

    def __del__(self):
        try:
            if self._file is not None and not self._closed:
                warnings.warn(f"streaming monitor {self.name!r} was never closed; its data stays in the "
                              f"temporary file {self._tmp}", ResourceWarning, stacklevel=2)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """:meth:`close` normally; :meth:`abort` on an exception (no final file appears)."""
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ------------------------------------------------------------------ HDF5 internals
    def _open(self):
        import h5py
        tmp = temp_name(self.path)
        f = h5py.File(tmp, "x")            # exclusive create, with the usual permissions
        self._tmp = tmp
        f.attrs.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "dt": self._dt,
                        "node": self.node, "monitor": self.name, "variables": list(self.variables),
                        "every": self.every, "time_axis": self.time_axis, "batch": self._batch,
                        "neurosim_version": _version()})
        self._file, self._rows = f, 0

    def _create_datasets(self):
        import numpy as np
        f = self._file
        f.create_dataset("t", shape=(0,), maxshape=(None,), dtype="int64", chunks=(max(self.chunk_steps, 1024),))
        for var in self.variables:
            items = self._buf.get(var)
            dtype = _numpy_dtype(items[0].dtype if items else self._dtypes[var])
            shape = (self._batch, *self._shapes[var])
            per_step = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
            ct = max(1, min(self.chunk_steps, _CHUNK_BYTES // per_step))
            ds = f.create_dataset(var, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                  chunks=(ct, *shape), compression=self.compression)
            ds.attrs["source"] = self._sources[var]

    def _flush(self):
        if "t" not in self._file:
            self._create_datasets()
        n = len(self._buf_t)
        if n == 0:
            return
        f = self._file
        start = f["t"].shape[0]
        for var, items in self._buf.items():
            data = torch.stack(items).detach()
            if data.dtype == torch.bfloat16:
                data = data.float()
            arr = data.cpu().numpy()
            ds = f[var]
            ds.resize(start + n, axis=0)
            ds[start:start + n] = arr.astype(ds.dtype, copy=False)
            items.clear()
        f["t"].resize(start + n, axis=0)
        f["t"][start:start + n] = self._buf_t
        self._buf_t = []

    def _rollback(self):
        """Forget the unfinished run: its buffered records, its steps and its rows in the file."""
        self._buf = {var: [] for var in self._sources}
        self._buf_t = []
        self._running = False
        if self._file is not None and "t" in self._file:
            for key in ("t", *self.variables):
                if key in self._file:
                    self._file[key].resize(self._rows, axis=0)


@contextlib.contextmanager
def closing_monitors(monitors: Iterable[Monitor]) -> Iterator[List[Monitor]]:
    """Own a group of monitors for one block: close them all when the block succeeds, abort them
    all (delete every temporary file, create no final file) when it raises.

    Use it wherever a caller creates streaming monitors for a run, so that no failure (a bad
    monitor found by :meth:`Monitor.start`, an error in a node, Ctrl-C) leaves a hidden
    ``.name.h5.<random>.tmp`` file behind. If closing one monitor fails, the others are aborted
    and the error propagates.

    Example::

        >>> with closing_monitors([Monitor("a", path="a.h5"), Monitor("b", path="b.h5")]) as mons:
        ...     sim.run(x, monitors=mons)
    """
    monitors = list(monitors)
    try:
        yield monitors
        for m in monitors:
            m.close()
    except BaseException:
        for m in monitors:
            m.abort()
        raise


def _available_variables(node):
    """Per-sample shapes and dtypes of what the simulator hands a monitor of ``node``."""
    shapes = {"output": tuple(node.out_shape)}
    dtypes = {"output": torch.get_default_dtype()}
    state = node.initial_state(1)
    if state is not None and hasattr(state, "_asdict"):
        for key, value in state._asdict().items():
            if isinstance(value, torch.Tensor):
                shapes[key] = tuple(value.shape[1:])
                dtypes[key] = value.dtype
    return shapes, dtypes


def _numpy_dtype(dtype: torch.dtype):
    if dtype == torch.bfloat16:
        dtype = torch.float32
    return torch.empty((), dtype=dtype).numpy().dtype


# ---------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class Recording:
    """A recording read by :func:`load_recording`.

    variables: name -> ``[n_recorded, batch, *shape]`` tensor; t: recorded global steps
    (int64 ``[n_recorded]``); dt: time step [s]; node: watched node; attrs: all file attributes.
    ``time`` gives ``t * dt`` in seconds; ``rec["v"]`` is ``rec.variables["v"]``."""

    variables: Dict[str, torch.Tensor]
    t: torch.Tensor
    dt: float
    node: str
    attrs: Dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> torch.Tensor:
        """Recorded times in seconds (float64)."""
        return self.t.to(torch.float64) * self.dt

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.variables:
            raise KeyError(f"recording of node {self.node!r} has no variable {name!r}; it has {sorted(self.variables)}")
        return self.variables[name]


def load_recording(path: Union[str, os.PathLike], variables: Optional[Sequence[str]] = None) -> Recording:
    """Read a file written by a streaming :class:`Monitor` into memory.

    Shapes: each variable ``[n_recorded, batch, *shape]``; ``t`` ``[n_recorded]`` (steps; times
    are ``t * dt`` seconds).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not an
    HDF5 neurosim recording or lacks a requested variable.

    Example::

        >>> rec = load_recording("hidden.h5", variables=["spikes"])
        >>> rec["spikes"].shape, rec.dt, rec.node
    """
    import h5py
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no recording at {path!r}")
    if os.path.isdir(path) or not h5py.is_hdf5(path):
        raise ValueError(f"{path!r} is not a neurosim recording (not an HDF5 file)")
    with h5py.File(path, "r") as f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT_NAME:
            raise ValueError(f"{path!r} is not a neurosim recording (attribute 'format' is "
                             f"{attrs.get('format')!r}, expected {FORMAT_NAME!r})")
        stored = list(attrs.get("variables", []))
        names = stored if variables is None else list(variables)
        missing = [v for v in names if v not in stored]
        if missing:
            raise ValueError(f"recording {path!r} has no variable(s) {missing}; it has {stored}")
        if "t" in f:
            data = {v: torch.from_numpy(f[v][()]) for v in names}
            t = torch.from_numpy(f["t"][()].astype("int64"))
        else:                                  # closed before anything was recorded
            data = {v: torch.empty(0) for v in names}
            t = torch.empty(0, dtype=torch.int64)
    return Recording(variables=data, t=t, dt=float(attrs["dt"]), node=str(attrs["node"]), attrs=attrs)


def _plain(value):
    """HDF5 attribute -> plain Python value (numpy scalars and string arrays converted)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, list):
        value = [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


# ---------------------------------------------------------------------- helpers
def spike_times(spikes, dt: float, batch: Optional[int] = None, times=None):
    """Event list of a spike raster: ``(time [s], neuron index)`` of every non-zero entry.

    time of row k = ``times[k]`` if given, else ``k * dt``; neuron = index into the flattened
    per-sample shape. Events are sorted by time, then neuron; a value > 1 (several spikes in one
    step) is one event.

    Shapes: ``spikes`` ``[T, N]`` -> one tuple ``(times [E], neurons [E])``;
    ``[T, B, *shape]`` -> a list of B tuples, or one tuple for sample ``batch``.

    Example::

        >>> t, n = spike_times(rec["spikes"], dt=1e-3, batch=0)
    """
    s = torch.as_tensor(spikes)
    if s.dim() < 2:
        raise ValueError(f"spike_times: spikes must be [T, N] or [T, B, *shape], got shape {tuple(s.shape)}")
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ValueError(f"spike_times: dt must be a positive number of seconds, got {dt!r}")
    steps = s.shape[0]
    if times is None:
        row_time = torch.arange(steps, dtype=torch.float64) * float(dt)
    else:
        row_time = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
        if row_time.numel() != steps:
            raise ValueError(f"spike_times: times has {row_time.numel()} entries for {steps} rows")

    def events(x):                      # x: [T, N]
        k, n = (x.detach() != 0).nonzero(as_tuple=True)
        return row_time[k.cpu()], n.cpu()

    if s.dim() == 2:
        if batch not in (None, 0):
            raise ValueError(f"spike_times: batch={batch} given for a [T, N] raster")
        return events(s)
    flat = s.reshape(steps, s.shape[1], -1)
    if batch is not None:
        if not (isinstance(batch, int) and -flat.shape[1] <= batch < flat.shape[1]):
            raise ValueError(f"spike_times: batch index {batch!r} out of range for batch size {flat.shape[1]}")
        return events(flat[:, batch])
    return [events(flat[:, b]) for b in range(flat.shape[1])]
