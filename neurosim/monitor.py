"""Monitors: record what a node does during :meth:`neurosim.Simulator.run`, in memory or to HDF5.

A :class:`Monitor` watches one node. For every step ``t`` of a run the simulator hands it the
node's output and every field of its state NamedTuple (``"v"``, ``"i"``, ``"refractory"`` for a
LIF population; only ``"output"`` for a stateless node such as ``Dense``). The monitor keeps
the steps ``k`` with ``k mod every == 0``, where ``k`` is a *global* step counter that carries
on across consecutive runs, so a run that continues from a state continues the time axis::

    k = (steps of the earlier runs seen by this monitor) + t,      time = k * dt  [s]

In memory (``path=None``) the run's record is ``{var: [n_recorded, batch, *shape], "t": k
(int64), "time": k * dt (float64, seconds)}``, holding only that run's steps; with
``detach=False`` the tensors keep their autograd graph (for firing-rate penalties).

Streamed (``path="run.h5"``) the values are buffered ``chunk_steps`` records at a time and then
written with one h5py call per variable into chunked, compressed, resizable datasets shaped
``[time, batch, *shape]`` (plus ``"t"``). The file is written under a temporary name in the same
directory and renamed to ``path`` by :meth:`Monitor.close` (or at the end of a ``with`` block),
so a crash never leaves a half-written file under the final name. Consecutive runs append to the
same file until it is closed. :func:`load_recording` reads it back.

Example::

    >>> mon = Monitor("hidden", variables=("spikes", "v"), every=2)
    >>> result = sim.run(x, monitors=[mon])
    >>> result.records["hidden"]["spikes"].shape        # [ceil(T / 2), batch, 128]
    >>> with Monitor("hidden", ("spikes",), path="hidden.h5") as m:
    ...     r = sim.run(x1, monitors=[m]); sim.run(x2, state=r.state, monitors=[m])
    >>> rec = load_recording("hidden.h5"); rec.variables["spikes"].shape   # [T1 + T2, batch, 128]
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .atomic import temp_name

__all__ = ["Monitor", "Recording", "load_recording", "spike_times"]

#: variable aliases accepted by :class:`Monitor` (requested name -> key the simulator hands over)
ALIASES = {"spikes": "output"}
#: keys of an in-memory record that are not variables
_RESERVED = ("t", "time")
FORMAT_NAME = "neurosim-recording"
FORMAT_VERSION = 1
#: target size of one HDF5 chunk in bytes (chunks much larger than ~1 MiB defeat the chunk cache)
_CHUNK_BYTES = 1 << 20


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("neurosim")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


class Monitor:
    """Record ``variables`` of node ``node`` every ``every`` steps, in memory or to an HDF5 file.

    Recorded steps (global counter ``k`` over consecutive runs, see the module docstring)::

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

    Example::

        >>> mon = Monitor("lif", ("spikes", "v"), detach=False)
        >>> rec = sim.run(x, monitors=[mon]).records["lif"]
        >>> penalty = (rec["spikes"].mean() - 0.02).pow(2)     # differentiable firing-rate penalty
    """

    def __init__(self, node: str, variables: Union[str, Sequence[str]] = ("output",), every: int = 1,
                 path: Optional[Union[str, os.PathLike]] = None, name: Optional[str] = None,
                 detach: bool = True, compression: Optional[str] = "gzip", chunk_steps: int = 64):
        if not isinstance(node, str) or not node:
            raise ValueError(f"Monitor node must be a node name (non-empty str), got {node!r}")
        if isinstance(variables, str):
            variables = (variables,)
        variables = tuple(variables)
        if not variables or not all(isinstance(v, str) and v for v in variables):
            raise ValueError(f"Monitor({node!r}) variables must be a non-empty sequence of names, got {variables!r}")
        if len(set(variables)) != len(variables):
            raise ValueError(f"Monitor({node!r}) variables contain duplicates: {variables!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Monitor({node!r}) every must be an integer >= 1, got {every!r}")
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1:
            raise ValueError(f"Monitor({node!r}) chunk_steps must be an integer >= 1, got {chunk_steps!r}")
        if compression not in ("gzip", "lzf", None):
            raise ValueError(f"Monitor({node!r}) compression must be 'gzip', 'lzf' or None, got {compression!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Monitor({node!r}) name must be a non-empty str, got {name!r}")
        if path is not None:
            path = os.path.abspath(os.fspath(path))
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                raise ValueError(f"Monitor({node!r}) path {path!r}: directory {directory!r} does not exist")
            if os.path.isdir(path):
                raise ValueError(f"Monitor({node!r}) path {path!r} is a directory, expected a file name")
            if not detach:
                raise ValueError(f"Monitor({node!r}): detach=False keeps the autograd graph, which a file "
                                 "cannot hold; use path=None to keep the graph")
        self.node, self.variables, self.every = node, variables, every
        self.name = name or node
        self.path, self.detach = path, bool(detach)
        self.compression, self.chunk_steps = compression, chunk_steps
        self._step = 0                     # global steps seen by finished runs
        self._run_start = 0                # global index of the current run's step 0
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
    def steps_seen(self) -> int:
        """Global step counter: steps of all finished runs since creation or :meth:`reset`."""
        return self._step

    @property
    def temp_path(self) -> Optional[str]:
        """The temporary file being written (``None`` when not streaming or not yet opened)."""
        return self._tmp

    def __repr__(self):
        where = f", path={self.path!r}" if self.path else ""
        return f"Monitor({self.node!r}, variables={self.variables}, every={self.every}{where})"

    # ------------------------------------------------------------------ protocol used by the Simulator
    def start(self, sim, steps: int, batch: int) -> None:
        """Check the variables against the node and prepare for ``steps`` steps of ``batch``.

        Raises ``ValueError`` (before any step runs) for an unknown node or variable, ``"spikes"``
        on a non-spiking node, or a streamed run whose batch, shapes or ``dt`` differ from the
        file's. A run that started but never finished (an exception in the simulation) is
        discarded: its steps do not count and its rows are removed from the file."""
        if self._closed:
            raise RuntimeError(f"monitor {self.name!r} is closed ({self.path}); create a new Monitor")
        if self._running:
            self._rollback()
        nodes = sim.graph.nodes
        if self.node not in nodes:
            raise ValueError(f"monitor {self.name!r} watches unknown node {self.node!r} (nodes: {list(nodes)})")
        node = nodes[self.node]
        dt = float(sim.dt)
        shapes, dtypes = _available_variables(node)
        spiking = bool(getattr(node, "emits_spikes", False))
        available = sorted(shapes) + (sorted(ALIASES) if spiking else [])
        sources = {}
        for var in self.variables:
            src = ALIASES.get(var, var)
            if var in ALIASES and not spiking:
                raise ValueError(f"monitor {self.name!r}: node {self.node!r} does not emit spikes, so it has "
                                 f"no variable {var!r}; record 'output' instead")
            if src not in shapes or var in _RESERVED:
                raise ValueError(f"monitor {self.name!r}: node {self.node!r} has no variable {var!r}; "
                                 f"available: {available}"
                                 + (" ('t' and 'time' are reserved)" if var in _RESERVED else ""))
            sources[var] = src
        if self.streaming and self._file is not None:
            problems = []
            if batch != self._batch:
                problems.append(f"batch {batch} != {self._batch}")
            if not math.isclose(dt, self._dt, rel_tol=1e-12):
                problems.append(f"dt {dt} != {self._dt}")
            for var, src in sources.items():
                if shapes[src] != self._shapes[var]:
                    problems.append(f"{var!r} shape {shapes[src]} != {self._shapes[var]}")
            if problems:
                raise ValueError(f"monitor {self.name!r}: this run cannot be appended to {self.path}: "
                                 + "; ".join(problems))
        self._sources = sources
        self._shapes = {var: shapes[src] for var, src in sources.items()}
        self._dtypes = {var: dtypes[src] for var, src in sources.items()}
        self._dt, self._batch = dt, int(batch)
        if self.streaming and self._file is None:
            self._open()
        self._buf = {var: [] for var in sources}
        self._buf_t = []
        self._run_start, self._run_steps, self._running = self._step, int(steps), True

    def record(self, t: int, values: Dict[str, torch.Tensor]) -> None:
        """Keep step ``t`` of the current run when its global index is a multiple of ``every``.

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
        self._step = self._run_start + self._run_steps
        self._running = False
        return out

    # ------------------------------------------------------------------ lifetime
    def reset(self) -> None:
        """Restart the time axis at step 0 (in memory; a streamed file cannot go back in time)."""
        if self.streaming and self._file is not None:
            raise RuntimeError(f"monitor {self.name!r}: cannot reset the time axis of an open file; close it "
                               "and create a new Monitor")
        self._step, self._running = 0, False
        self._buf, self._buf_t = {}, []

    def close(self) -> Optional[str]:
        """Write what finished runs recorded and rename the file to its final ``path``.

        Steps of a run that never finished are dropped. Returns the final path (``None`` for an
        in-memory monitor, for which this does nothing). Idempotent."""
        if not self.streaming or self._closed:
            return self.path
        self._closed = True
        if self._file is None:          # never ran: nothing to write
            return self.path
        if self._running:
            self._rollback()
        self._file.close()
        self._file = None
        os.replace(self._tmp, self.path)
        self._tmp = None
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file without creating ``path``."""
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None and os.path.exists(self._tmp):
            os.remove(self._tmp)
        self._tmp = None

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
        """Close normally; on an exception delete the temporary file (no final file appears)."""
        if exc_type is None:
            self.close()
        elif self.streaming:
            self.abort()

    # ------------------------------------------------------------------ HDF5 internals
    def _open(self):
        import h5py
        tmp = temp_name(self.path)
        f = h5py.File(tmp, "x")            # exclusive create, with the usual permissions
        self._tmp = tmp
        f.attrs.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "dt": self._dt,
                        "node": self.node, "monitor": self.name, "variables": list(self.variables),
                        "every": self.every, "batch": self._batch, "neurosim_version": _version()})
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
        self._step = self._run_start
        self._running = False
        if self._file is not None and "t" in self._file:
            for key in ("t", *self.variables):
                if key in self._file:
                    self._file[key].resize(self._rows, axis=0)


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
