"""Conformance: one input through neurosim and every backend that can take the network, compared
spike for spike (``neurosim conform``).

:func:`conform` ``(sim, inputs, backends=None) -> ConformanceReport`` runs the reference (the
engine's own run, with a Monitor on every spiking population) and each registered runner on the
same time-first inputs ``{input name: [T, batch, *shape]}``, then compares, per backend and
population, the spike trains ``s_ref, s_b in {0, 1}^[T, batch, *shape]``:

* **exact**: ``sum s_ref * s_b``, spikes at the same step of the same neuron and sample;
* **within one step**: of the unmatched spikes (``s_ref & ~s_b`` and ``s_b & ~s_ref``), pairs of a
  reference spike at ``t`` and a backend spike at ``t - 1`` or ``t + 1`` of the same neuron and
  sample; each pair counts once. Pairs are formed left to right in time (one unmatched spike per
  neuron and step, so the unmatched spikes of one neuron form a path and the greedy matching is
  a maximum one);
* **differing**: every remaining unmatched spike, of either side;
* **first difference**: the earliest ``(t, batch, flat neuron index)`` where ``s_ref != s_b``
  (any disagreement, shifted spikes included), ties broken by sample, then neuron;
* **membrane max err**: ``max |v_ref - v_b|`` over all populations where both report a membrane
  ``v`` (in the reference's units: volts, or integer units for the Loihi model);
* **wall s**: the runner's wall-clock time (export, file round trip and simulation).

A backend agrees exactly when ``within one step = differing = 0`` for every population.

Runners live in a registry, name -> runner (:func:`register_conformance_runner`), like the
exporters of :mod:`neurosim.hardware.registry`. A runner is ``runner(sim, inputs) ->
BackendRun`` and may raise :class:`~neurosim.hardware.registry.UnsupportedNodesError` (the network
has nodes it cannot map: the row shows how many it could and the reasons) or
:class:`BackendUnavailable` (its library or environment is missing). Registered here:
``neurosim`` (the reference), ``saved`` (save -> load -> run), ``nir`` (to_nir -> write_nir ->
read_nir -> run), ``norse`` (:func:`~neurosim.hardware.norse.to_norse` on the CPU),
``norse-cuda`` (the same on CUDA, when a GPU is present) and ``brian2``
(:func:`~neurosim.hardware.brian2.run_brian2`). Modules listed in :data:`PLUGIN_MODULES` (the netx
and Lava backends) register their own runners when they exist; :func:`conform` imports them on
first use. Every backend module is imported inside its runner, never by this module's import.

Report: :meth:`ConformanceReport.table` (plain text), :meth:`~ConformanceReport.to_markdown`
(with a PNG raster of each backend's first disagreement beside the file) and
:meth:`~ConformanceReport.to_html` (the PNGs embedded as base64); all written atomically.

Example::

    >>> report = conform(sim, {"x": spikes})           # spikes: [T, batch, 20]
    >>> print(report.table())
    >>> report.all_exact, report.rows["nir"].exact
"""
from __future__ import annotations

import base64
import contextlib
import copy
import html
import importlib
import importlib.util
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from neurosim.atomic import atomic_path
from neurosim.monitor import Monitor
from neurosim.simulator import Simulator
from neurosim.validation import check_time_first_inputs

from .registry import UnsupportedNodesError

__all__ = ["conform", "ConformanceReport", "BackendRun", "BackendResult", "SpikeComparison",
           "BackendUnavailable", "register_conformance_runner", "conformance_runners", "compare_spikes",
           "spiking_populations", "network_dtype", "REFERENCE", "PLUGIN_MODULES"]

REFERENCE = "neurosim"
#: modules that register conformance runners of their own when imported (optional: a module that
#: does not exist is skipped; one that fails to import makes its backend a row with the error)
PLUGIN_MODULES = ("neurosim.hardware.loihi.conformance",)


class BackendUnavailable(RuntimeError):
    """The backend's library or environment is missing (e.g. the Lava env cannot be built)."""


@dataclass
class BackendRun:
    """What a runner returns. ``spikes``: population -> ``[T, batch, *shape]`` (0/1, any dtype);
    ``voltages``: population -> membrane ``v`` ``[T, batch, *shape]`` after each step, where the
    backend gives it; ``nodes_mapped`` / ``nodes_total``: graph nodes the backend took / all;
    ``wall_s``: seconds (filled in by :func:`conform` when None)."""

    spikes: Dict[str, torch.Tensor]
    voltages: Dict[str, torch.Tensor] = field(default_factory=dict)
    nodes_mapped: int = 0
    nodes_total: int = 0
    wall_s: Optional[float] = None


@dataclass(frozen=True)
class SpikeComparison:
    """Counts of one population (see the module docstring); ``first`` is ``(t, batch, flat
    index)`` of the first disagreement, or None."""

    exact: int
    within_one: int
    differing: int
    first: Optional[Tuple[int, int, int]]
    reference_spikes: int
    backend_spikes: int

    @property
    def agrees(self) -> bool:
        return self.within_one == 0 and self.differing == 0


@dataclass
class BackendResult:
    """One row of the report. ``status``: ``"ok"``, ``"unsupported"`` (nodes it cannot map),
    ``"unavailable"`` (library missing) or ``"error"`` (the runner failed); ``reason`` says why
    for the last three. ``populations``: population -> :class:`SpikeComparison`."""

    name: str
    status: str
    reason: str = ""
    nodes_mapped: int = 0
    nodes_total: int = 0
    populations: Dict[str, SpikeComparison] = field(default_factory=dict)
    membrane_error: Optional[float] = None
    wall_s: Optional[float] = None
    run: Optional[BackendRun] = None

    def _sum(self, key: str) -> int:
        return sum(getattr(c, key) for c in self.populations.values())

    @property
    def exact(self) -> int:
        return self._sum("exact")

    @property
    def within_one(self) -> int:
        return self._sum("within_one")

    @property
    def differing(self) -> int:
        return self._sum("differing")

    @property
    def agrees(self) -> bool:
        """Ran and agreed spike for spike with the reference in every population."""
        return self.status == "ok" and all(c.agrees for c in self.populations.values())

    @property
    def first_difference(self) -> Optional[Tuple[str, int, int, int]]:
        """``(population, t, batch, flat index)`` of the earliest disagreement over populations."""
        firsts = [(c.first[0], name, c.first[1], c.first[2]) for name, c in self.populations.items()
                  if c.first is not None]
        if not firsts:
            return None
        t, name, b, i = min(firsts, key=lambda f: f[0])
        return name, t, b, i


# ---------------------------------------------------------------------- the runner registry
Runner = Callable[[Simulator, Dict[str, torch.Tensor]], BackendRun]
#: ``available() -> None`` when the backend can run here, else the reason it cannot
AvailableFn = Callable[[], Optional[str]]
_RUNNERS: Dict[str, Tuple[Runner, Optional[AvailableFn]]] = {}


def register_conformance_runner(name: str, runner: Runner, available: Optional[AvailableFn] = None) -> Runner:
    """Register ``runner(sim, inputs) -> BackendRun`` under ``name`` (replacing an earlier one).
    ``available()`` returns None when the backend can run here, else the reason it cannot (then
    the backend is a row with that reason). Returns ``runner``, so it works as a decorator's body."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_conformance_runner: name must be a non-empty string, got {name!r}")
    if not callable(runner):
        raise TypeError(f"register_conformance_runner({name!r}): runner must be callable, got {runner!r}")
    _RUNNERS[name] = (runner, available)
    return runner


def _load_plugins() -> Dict[str, str]:
    """Import :data:`PLUGIN_MODULES` that exist; ``{module: error}`` for those that fail."""
    failures = {}
    for module in PLUGIN_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                continue
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):      # the module itself (or its package) is absent
                continue
            failures[module] = f"{type(e).__name__}: {e}"
        except Exception as e:  # an optional plug-in may fail in many ways; report it, never crash
            failures[module] = f"{type(e).__name__}: {e}"
    return failures


def conformance_runners() -> List[str]:
    """The registered runner names (after importing the plug-in modules), the reference first."""
    _load_plugins()
    return [REFERENCE] + [n for n in _RUNNERS if n != REFERENCE]


# ---------------------------------------------------------------------- helpers shared by runners
def spiking_populations(sim: Simulator) -> List[str]:
    """The names of the graph's nodes that emit spikes, in graph order."""
    return [n for n, node in sim.graph.nodes.items() if getattr(node, "emits_spikes", False)]


def network_dtype(sim: Simulator) -> torch.dtype:
    """The floating dtype of the network's first floating parameter or buffer (float32 if none)."""
    for t in list(sim.graph.parameters()) + list(sim.graph.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _has_v(node) -> bool:
    state = getattr(getattr(node, "model", None), "state_type", None)
    return state is not None and "v" in getattr(state, "_fields", ())


def _engine_run(sim: Simulator, inputs) -> BackendRun:
    """The engine's own run with a Monitor (spikes, and v where the state has it) per population."""
    pops = spiking_populations(sim)
    monitors = [Monitor(p, ("spikes", "v") if _has_v(sim.graph.nodes[p]) else ("spikes",)) for p in pops]
    with torch.no_grad():
        records = sim.run(inputs, monitors=monitors).records
    n = len(sim.graph.nodes)
    return BackendRun({p: records[p]["spikes"] for p in pops},
                      {p: records[p]["v"] for p in pops if "v" in records[p]}, n, n)


def _run_neurosim(sim, inputs) -> BackendRun:
    start = time.perf_counter()
    return _timed(_engine_run(sim, inputs), start)


def _run_saved(sim, inputs) -> BackendRun:
    from .saved import load, save
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neurosim-conform-") as tmp:
        path = os.path.join(tmp, "network.h5")
        save(sim, path)
        loaded = load(path)
    return _timed(_engine_run(loaded, inputs), start)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    """Set torch's default dtype inside the block (restored after)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _run_nir(sim, inputs) -> BackendRun:
    """to_nir -> write_nir -> read_nir -> run. A NIR file has no dtype (to_nir writes float64
    arrays) and ``from_nir`` builds in torch's default dtype, so the file is read with the default
    dtype set to the network's: a float64 network comes back float64, a float32 one float32."""
    from .nir import read_nir, to_nir, write_nir
    start = time.perf_counter()
    graph = to_nir(sim)
    with tempfile.TemporaryDirectory(prefix="neurosim-conform-") as tmp:
        path = os.path.join(tmp, "network.nir")
        write_nir(path, graph)
        with _default_dtype(network_dtype(sim)):
            loaded = read_nir(path)
    return _timed(_engine_run(loaded, inputs), start)


def _timed(run: BackendRun, start: float) -> BackendRun:
    """``run`` with ``wall_s`` the seconds since ``start`` (after the backend's imports)."""
    run.wall_s = time.perf_counter() - start
    return run


def _norse_run(sim, inputs, device: str) -> BackendRun:
    try:
        from .norse import to_norse
    except ImportError as e:
        raise BackendUnavailable(f"norse does not import: {e}") from None
    start = time.perf_counter()
    pops = spiking_populations(sim)
    graph = copy.deepcopy(sim.graph)     # a copy whose outputs are every population; sim is untouched
    graph.outputs = list(pops)
    net = to_norse(Simulator(graph, dt=sim.dt, schedule=sim.schedule)).to(device)
    xs = {k: v.to(device) for k, v in inputs.items()}
    steps = next(iter(xs.values())).shape[0]
    spikes, voltages = {p: [] for p in pops}, {p: [] for p in pops}
    state = None
    with torch.no_grad():
        for t in range(steps):          # one step at a time, to read each cell's membrane
            out, state = net({k: v[t:t + 1] for k, v in xs.items()}, state)
            for p in pops:
                spikes[p].append(out[p][0].cpu())
                v = _norse_membrane(graph.nodes[p], state.nodes[p])
                if v is not None:
                    voltages[p].append(v.cpu())
    n = len(sim.graph.nodes)
    return BackendRun({p: torch.stack(s) for p, s in spikes.items()},
                      {p: torch.stack(v) for p, v in voltages.items() if len(v) == steps}, n, n,
                      time.perf_counter() - start)


def _norse_membrane(node, node_state) -> Optional[torch.Tensor]:
    """A Norse cell's ``v`` in neurosim's units: ``hardware/norse.py`` shifts a LIF with
    ``reset="subtract"`` by ``v_reset`` (``v' = v - v_reset``), so that is added back."""
    cell = node_state[0] if isinstance(node_state, tuple) and not hasattr(node_state, "_fields") else node_state
    v = getattr(cell, "v", None)
    if v is None:
        v = getattr(getattr(cell, "lif", None), "v", None)
    if v is None:
        return None
    p = node.params
    if node.model.name == "lif" and p.reset == "subtract":
        offset = p.v_reset
        v = v + (offset.to(v) if isinstance(offset, torch.Tensor) else offset)
    return v


def _run_norse(sim, inputs) -> BackendRun:
    return _norse_run(sim, inputs, "cpu")


def _run_norse_cuda(sim, inputs) -> BackendRun:
    return _norse_run(sim, inputs, "cuda")


def _run_brian2(sim, inputs) -> BackendRun:
    try:
        import brian2  # noqa: F401  (imported before the clock starts)
        from .brian2 import run_brian2
    except ImportError as e:
        raise BackendUnavailable(f"brian2 does not import: {e}") from None
    start = time.perf_counter()
    pops = spiking_populations(sim)
    monitors = {p: ("v",) for p in pops if _has_v(sim.graph.nodes[p])}
    with _quiet_logger("brian2.groups.neurongroup"):
        result = run_brian2(sim, inputs, monitors=monitors)
    n = len(sim.graph.nodes)
    return BackendRun({p: result.outputs[p] for p in pops}, {p: r["v"] for p, r in result.records.items()}, n, n,
                      time.perf_counter() - start)


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Only errors from the logger ``name`` inside the block (Brian2 warns that the backend's
    equations use ``unless refractory`` without a refractory period, which is harmless here)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _importable(module: str) -> AvailableFn:
    def available() -> Optional[str]:
        return None if importlib.util.find_spec(module) is not None else f"{module} is not installed"
    return available


def _cuda_available() -> Optional[str]:
    return None if torch.cuda.is_available() else "no CUDA device on this machine"


register_conformance_runner(REFERENCE, _run_neurosim)
register_conformance_runner("saved", _run_saved, _importable("h5py"))
register_conformance_runner("nir", _run_nir, _importable("nir"))
register_conformance_runner("norse", _run_norse, _importable("norse"))
register_conformance_runner("norse-cuda", _run_norse_cuda,
                            lambda: _importable("norse")() or _cuda_available())
register_conformance_runner("brian2", _run_brian2, _importable("brian2"))


# ---------------------------------------------------------------------- the comparison
def compare_spikes(reference: torch.Tensor, backend: torch.Tensor, where: str = "") -> SpikeComparison:
    """Compare two spike trains ``[T, batch, *shape]`` (non-zero = spike); see the module docstring
    for the counts. Raises ``ValueError`` (naming ``where``) when the shapes differ."""
    if tuple(reference.shape) != tuple(backend.shape):
        raise ValueError(f"{where}: spike trains have shapes {tuple(reference.shape)} (reference) and "
                         f"{tuple(backend.shape)} (backend)")
    if reference.dim() < 2:
        raise ValueError(f"{where}: spike trains must be [T, batch, ...], got shape {tuple(reference.shape)}")
    steps, batch = reference.shape[:2]
    r = (reference.detach().cpu() != 0).reshape(steps, batch, -1)
    b = (backend.detach().cpu() != 0).reshape(steps, batch, -1)
    exact = int((r & b).sum())
    only_r, only_b = r & ~b, b & ~r
    free = only_r | only_b                 # at most one unmatched spike per neuron and step
    paired = torch.zeros_like(free)
    for t in range(steps - 1):             # greedy left to right: maximum on each neuron's path
        pair = free[t] & free[t + 1] & ~paired[t] & (only_r[t] != only_r[t + 1])
        paired[t] |= pair
        paired[t + 1] |= pair
    within = int(paired.sum()) // 2
    differing = int(free.sum()) - 2 * within
    first = None
    where_diff = free.nonzero()
    if len(where_diff):
        t, bb, i = where_diff[0].tolist()   # nonzero() is in row-major order: t, then batch, then index
        first = (t, bb, i)
    return SpikeComparison(exact, within, differing, first, int(r.sum()), int(b.sum()))


def _membrane_error(reference: BackendRun, run: BackendRun) -> Optional[float]:
    errors = []
    for p, v_ref in reference.voltages.items():
        v = run.voltages.get(p)
        if v is not None and tuple(v.shape) == tuple(v_ref.shape):
            diff = (v.detach().cpu().to(torch.float64) - v_ref.detach().cpu().to(torch.float64)).abs()
            errors.append(float(diff.max()) if diff.numel() else 0.0)
    return max(errors) if errors else None


def _result(name: str, reference: BackendRun, run: BackendRun, wall: float) -> BackendResult:
    populations = {}
    for p, s_ref in reference.spikes.items():
        if p not in run.spikes:
            return BackendResult(name, "error", f"the runner returned no spikes for population {p!r}",
                                 run.nodes_mapped, run.nodes_total, wall_s=wall, run=run)
        try:
            populations[p] = compare_spikes(s_ref, run.spikes[p], f"{name}: population {p!r}")
        except ValueError as e:
            return BackendResult(name, "error", str(e), run.nodes_mapped, run.nodes_total, wall_s=wall, run=run)
    return BackendResult(name, "ok", "", run.nodes_mapped, run.nodes_total, populations,
                         _membrane_error(reference, run), run.wall_s if run.wall_s is not None else wall, run)


def _unsupported_count(sim: Simulator, error: UnsupportedNodesError) -> int:
    return len({name for name, _, _ in error.problems if name in sim.graph.nodes})


def _call(name: str, runner: Runner, sim: Simulator, inputs) -> Tuple[Optional[BackendRun], BackendResult, float]:
    n = len(sim.graph.nodes)
    start = time.perf_counter()
    try:
        run = runner(sim, {k: v.clone() for k, v in inputs.items()})
    except UnsupportedNodesError as e:
        return None, BackendResult(name, "unsupported", str(e), n - _unsupported_count(sim, e), n,
                                   wall_s=time.perf_counter() - start), 0.0
    except BackendUnavailable as e:
        return None, BackendResult(name, "unavailable", str(e), 0, n, wall_s=time.perf_counter() - start), 0.0
    except Exception as e:  # a backend's own failure is a row of the report, not a crash
        return None, BackendResult(name, "error", f"{type(e).__name__}: {e}", 0, n,
                                   wall_s=time.perf_counter() - start), 0.0
    return run, None, time.perf_counter() - start


def conform(sim: Simulator, inputs, backends: Optional[Sequence[str]] = None) -> "ConformanceReport":
    """Run ``inputs`` (``[T, batch, *shape]`` or ``{input name: [T, batch, *shape]}``, time first)
    through the reference and each of ``backends`` (default: every registered runner) and compare
    their spikes population by population. Floating inputs are cast to the network's dtype.

    Raises ``TypeError``/``ValueError`` for inputs that do not fit the graph, ``KeyError`` naming
    the registered runners for an unknown backend name, and the reference's own error when the
    engine cannot run the network; every backend problem becomes a row of the report."""
    if not isinstance(sim, Simulator):
        raise TypeError(f"conform takes a neurosim Simulator (a graph plus its dt), got {type(sim).__name__}")
    xs, _, _ = check_time_first_inputs(inputs, sim.graph.inputs, "conform")
    dtype = network_dtype(sim)
    xs = {k: v.to(dtype) if v.is_floating_point() or v.dtype == torch.bool else v for k, v in xs.items()}
    plugin_failures = _load_plugins()
    names = [n for n in _RUNNERS if n != REFERENCE] if backends is None else list(backends)
    unknown = [n for n in names if n not in _RUNNERS]
    if unknown:
        raise KeyError(f"unknown backend(s) {unknown} (registered: {', '.join(conformance_runners())})")
    start = time.perf_counter()
    reference = _RUNNERS[REFERENCE][0](sim, {k: v.clone() for k, v in xs.items()})
    ref_wall = time.perf_counter() - start
    ref_row = _result(REFERENCE, reference, reference, ref_wall)
    ref_row.membrane_error = None
    rows = {REFERENCE: ref_row}
    for name in names:
        if name == REFERENCE:
            continue
        runner, available = _RUNNERS[name]
        reason = available() if available is not None else None
        if reason:
            rows[name] = BackendResult(name, "unavailable", reason, 0, len(sim.graph.nodes))
            continue
        run, failed, wall = _call(name, runner, sim, xs)
        rows[name] = failed if failed is not None else _result(name, reference, run, wall)
    steps, batch = next(iter(xs.values())).shape[:2]
    return ConformanceReport(rows, reference, int(steps), int(batch), sim.dt, plugin_failures)


# ---------------------------------------------------------------------- the report
_COLUMNS = ("backend", "nodes mapped", "exact", "within 1 step", "differing", "first difference",
            "membrane max err", "wall s")


@dataclass
class ConformanceReport:
    """The rows of one conformance run: ``rows`` backend -> :class:`BackendResult` (the reference
    first), the ``reference`` run, the input's ``steps`` and ``batch``, ``dt`` [s], and
    ``plugin_failures`` (backend modules that failed to import, with the error)."""

    rows: Dict[str, BackendResult]
    reference: BackendRun
    steps: int
    batch: int
    dt: float
    plugin_failures: Dict[str, str] = field(default_factory=dict)

    @property
    def all_exact(self) -> bool:
        """Every backend that ran agreed spike for spike (unsupported/unavailable ones do not count;
        a runner that failed does)."""
        return all(r.agrees for r in self.rows.values() if r.status in ("ok", "error"))

    def _cells(self, row: BackendResult) -> List[str]:
        mapped = f"{row.nodes_mapped}/{row.nodes_total}"
        wall = f"{row.wall_s:.3f}" if row.wall_s is not None else "-"
        if row.status != "ok":
            return [row.name, mapped, "-", "-", "-", f"{row.status} (see below)", "-", wall]
        if row.name == REFERENCE:
            return [row.name + " (ref)", mapped, str(row.exact), "-", "-", "-", "-", wall]
        first = row.first_difference
        first_text = "none" if first is None else f"{first[0]} t={first[1]} b={first[2]} n={first[3]}"
        err = "-" if row.membrane_error is None else f"{row.membrane_error:.3g}"
        return [row.name, mapped, str(row.exact), str(row.within_one), str(row.differing), first_text, err, wall]

    def _notes(self) -> List[str]:
        notes = [f"{r.name}: {r.status}: {r.reason}" for r in self.rows.values() if r.status != "ok"]
        notes += [f"{module}: failed to import: {e}" for module, e in self.plugin_failures.items()]
        return notes

    def _summary(self) -> str:
        spikes = sum(int((s != 0).sum()) for s in self.reference.spikes.values())
        return (f"{self.steps} steps of {self.dt * 1e3:g} ms, batch {self.batch}; reference: {spikes} spikes in "
                f"{len(self.reference.spikes)} population(s)")

    def table(self) -> str:
        """The report as a plain-text table, then one line per backend that did not run, with why."""
        rows = [list(_COLUMNS)] + [self._cells(r) for r in self.rows.values()]
        widths = [max(len(r[k]) for r in rows) for k in range(len(_COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = self._notes()
        return "\n".join([self._summary(), ""] + lines + ([""] + notes if notes else []))

    def _disagreements(self) -> List[Tuple[BackendResult, bytes]]:
        return [(r, _raster_png(self.reference, r)) for r in self.rows.values()
                if r.status == "ok" and r.first_difference is not None]

    def _markdown_table(self) -> str:
        rows = [self._cells(r) for r in self.rows.values()]
        head = "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS)
        return head + "\n" + "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)

    def to_markdown(self, path) -> str:
        """Write the report as Markdown to ``path``, with ``<stem>_<backend>.png`` beside it for each
        backend that disagreed (raster overlay of its first disagreement). Returns ``path``."""
        path = os.fspath(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        parts = ["# neurosim conformance report", "", self._summary(), "", self._markdown_table(), ""]
        parts += [f"- {note}" for note in self._notes()]
        for row, png in self._disagreements():
            name = f"{stem}_{_safe(row.name)}.png"
            with atomic_path(os.path.join(os.path.dirname(os.path.abspath(path)), name), fsync=False) as tmp:
                with open(tmp, "wb") as f:
                    f.write(png)
            pop, t, b, i = row.first_difference
            parts += ["", f"## {row.name}: first disagreement", "",
                      f"Population `{pop}`, step {t}, sample {b}, neuron {i}.", "", f"![{row.name} raster]({name})"]
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("\n".join(parts) + "\n")
        return path

    def to_html(self, path) -> str:
        """Write the report as one HTML file with the raster overlays embedded (base64 PNG)."""
        path = os.fspath(path)
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in _COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in self._cells(r)) + "</tr>"
                       for r in self.rows.values())
        parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>neurosim conformance</title></head><body>",
                 "<h1>neurosim conformance report</h1>", f"<p>{esc(self._summary())}</p>",
                 f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>"]
        parts += ["<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self._notes()) + "</ul>"] if self._notes() else []
        for row, png in self._disagreements():
            pop, t, b, i = row.first_difference
            data = base64.b64encode(png).decode("ascii")
            parts += [f"<h2>{esc(row.name)}: first disagreement</h2>",
                      f"<p>Population {esc(pop)}, step {t}, sample {b}, neuron {i}.</p>",
                      f"<img alt='{esc(row.name)} raster' src='data:image/png;base64,{data}'/>"]
        parts.append("</body></html>")
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("\n".join(parts) + "\n")
        return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _raster_png(reference: BackendRun, row: BackendResult, half_window: int = 15, max_neurons: int = 40) -> bytes:
    """PNG bytes: reference (circles) and backend (crosses) spikes of the population of the first
    disagreement, sample ``b``, steps ``t +- half_window``, at most ``max_neurons`` neurons around it."""
    from matplotlib.figure import Figure

    pop, t0, b, i0 = row.first_difference
    ref = (reference.spikes[pop].detach().cpu() != 0)
    got = (row.run.spikes[pop].detach().cpu() != 0)
    steps = ref.shape[0]
    ref, got = ref.reshape(steps, ref.shape[1], -1)[:, b], got.reshape(steps, got.shape[1], -1)[:, b]
    n = ref.shape[1]
    lo_n = max(0, min(i0 - max_neurons // 2, n - max_neurons))
    hi_n = min(n, lo_n + max_neurons)
    lo_t, hi_t = max(0, t0 - half_window), min(steps, t0 + half_window + 1)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for spikes, style in ((ref, dict(marker="o", facecolors="none", edgecolors="tab:blue", s=36, label="neurosim")),
                          (got, dict(marker="x", color="tab:red", s=20, label=row.name))):
        window = spikes[lo_t:hi_t, lo_n:hi_n].nonzero()
        ax.scatter((window[:, 0] + lo_t).numpy(), (window[:, 1] + lo_n).numpy(), **style)
    ax.axvline(t0, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlim(lo_t - 0.5, hi_t - 0.5)
    ax.set_ylim(lo_n - 0.5, hi_n - 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{pop} neuron (flat index)")
    ax.set_title(f"{row.name} vs neurosim: {pop}, sample {b}, first difference at step {t0}, neuron {i0}")
    ax.legend(loc="upper right", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
