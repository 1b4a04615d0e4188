"""Timing harness shared by the benchmark scripts.

Method (details in ``benchmarks/README.md``):

* every (workload, library) pair runs in its **own fresh subprocess** (``python -m
  benchmarks.bench_x --worker LIB``), so peak memories do not mix and no library's imports,
  caches or thread pools affect another's numbers;
* in that subprocess: ``torch.set_num_threads(threads)`` (same for all), seeds, import the library,
  build the shared inputs (same tensors for every library, drawn from the same seed), then reset the
  kernel's peak-RSS counter, build the model, run ``warmup`` untimed iterations and ``repeats``
  timed ones (``time.perf_counter``); the median is the reported figure;
* peak memory = ``ru_maxrss`` after the timed runs minus the resident size just before the model
  was built (``/proc/self/clear_refs`` resets the high-water mark there, so the imports' own peak
  is not counted). torch's CPU allocations go through malloc, so ``tracemalloc`` cannot see them;
  RSS can.

A bench module defines ``WORKLOAD`` (name), ``CASES`` (library -> :class:`Case`), ``defaults(quick)``
(its sizes) and optionally ``TARGET`` (minimum speed-up of neurosim over the fastest peer), and
calls :func:`bench_main` from its ``__main__``.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_TAG = "BENCH_RESULT "

#: kinds of cases: the simulator under test, peer libraries, plain-PyTorch references, lower bounds
KINDS = ("neurosim", "peer", "reference", "floor")


def default_threads() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------- cases
@dataclass
class Prepared:
    """What a case's ``build`` returns: ``run()`` is one timed iteration; ``info()`` (called once
    after timing) returns extra values for the report (spike rates, ...); ``warm()``, when given,
    replaces ``run()`` in the warm-up iterations (e.g. a shorter simulation that fills the same
    caches); ``timed`` lets a case time itself (e.g. Brian2 reports its compile time apart) and
    return ``{"times": [...], ...}``."""

    run: Callable[[], Any]
    info: Optional[Callable[[], Dict[str, Any]]] = None
    timed: Optional[Callable[[int, int], Dict[str, Any]]] = None
    warm: Optional[Callable[[], Any]] = None


@dataclass
class Case:
    """One library's implementation of a workload.

    ``build(cfg, meter) -> Prepared``: import the library, make the shared inputs, call
    ``meter.start()``, build the model. ``kind`` is one of :data:`KINDS`."""

    kind: str
    build: Callable[[Dict[str, Any], "MemoryMeter"], Prepared]
    label: str = ""
    note: str = ""


# ---------------------------------------------------------------------------- process setup
def configure(threads: int, seed: int) -> None:
    """Same thread count and seeds for every library (call before any torch work)."""
    import numpy as np
    import torch

    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(int(threads))
    except RuntimeError:  # already set (only possible once per process)
        pass
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_default_dtype(torch.float32)


def thread_env(threads: int) -> Dict[str, str]:
    """Environment for a worker: the same BLAS/OpenMP thread count for every library."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


class MemoryMeter:
    """Peak resident memory of this process from :meth:`start` on, in MiB."""

    def __init__(self):
        self.base_mib: Optional[float] = None
        self.reset_ok = False

    @staticmethod
    def current_rss_mib() -> float:
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:  # pragma: no cover - not Linux
            return float("nan")

    @staticmethod
    def peak_rss_mib() -> float:
        """``ru_maxrss`` (KiB on Linux) in MiB."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def start(self) -> None:
        import gc
        gc.collect()
        try:  # reset the kernel's high-water mark to the current RSS (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False
        self.base_mib = self.current_rss_mib()

    def report(self) -> Dict[str, float]:
        peak = self.peak_rss_mib()
        base = self.base_mib if self.base_mib is not None else float("nan")
        return {"peak_rss_mib": peak, "base_rss_mib": base, "peak_rss_increase_mib": peak - base,
                "peak_reset": self.reset_ok}


# ---------------------------------------------------------------------------- timing
def time_repeats(fn: Callable[[], Any], warmup: int, repeats: int,
                 warm: Optional[Callable[[], Any]] = None) -> List[float]:
    """``warmup`` untimed calls (of ``warm`` if given), then the wall time of each of ``repeats``
    calls of ``fn`` (seconds)."""
    for _ in range(warmup):
        (warm or fn)()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summarize(times: List[float]) -> Dict[str, float]:
    """Median (the reported figure), min, max and interquartile range of repeat times."""
    if not times:
        return {}
    ts = sorted(times)
    if len(ts) >= 4:
        q = statistics.quantiles(ts, n=4)
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = ts[0], ts[-1]
    return {"median_s": statistics.median(ts), "min_s": ts[0], "max_s": ts[-1],
            "q1_s": q1, "q3_s": q3, "n": len(ts)}


# ---------------------------------------------------------------------------- worker side
def worker_main(module, lib: str, cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Run one case in this (fresh) process and return its result dict."""
    configure(cfg["threads"], cfg["seed"])
    case: Case = module.CASES[lib]
    meter = MemoryMeter()
    load0 = os.getloadavg()[0]
    t_build = time.perf_counter()
    prepared = case.build(cfg, meter)
    build_s = time.perf_counter() - t_build
    if meter.base_mib is None:
        meter.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prepared.timed is not None:
        extra = prepared.timed(cfg["warmup"], cfg["repeats"])
        times = extra.pop("times")
    else:
        extra = {}
        times = time_repeats(prepared.run, cfg["warmup"], cfg["repeats"], prepared.warm)
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    info = prepared.info() if prepared.info is not None else {}
    info.update(extra)
    import torch
    return {
        "workload": module.WORKLOAD, "library": lib, "label": case.label or lib, "kind": case.kind,
        "note": case.note, "times_s": times, **summarize(times), **meter.report(),
        "build_s": build_s, "cpu_util": cpu_s / wall_s if wall_s > 0 else float("nan"),
        "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(), "info": info, "error": None,
    }


def worker_interleaved(module, libs: List[str], cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Time several cases in this one process, round-robin iteration by iteration (the order
    reversed every other pass), so that load from other processes hits all of them alike.
    Returns library -> {"times_s": [...], "info": {...}} or {"error": ...}; no memory figures."""
    configure(cfg["threads"], cfg["seed"])
    prepared, out = {}, {}
    for lib in libs:
        try:
            prep = module.CASES[lib].build(cfg, MemoryMeter())
            if prep.timed is not None:
                raise RuntimeError("this case times itself and cannot be interleaved")
            for _ in range(cfg["warmup"]):
                (prep.warm or prep.run)()
            prepared[lib] = prep
        except Exception as exc:  # one failing library must not stop the others
            out[lib] = {"error": f"{type(exc).__name__}: {exc}"}
    times = {lib: [] for lib in prepared}
    names = list(prepared)
    for r in range(cfg["repeats"]):
        for lib in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            prepared[lib].run()
            times[lib].append(time.perf_counter() - t0)
    for lib in names:
        info = prepared[lib].info() if prepared[lib].info is not None else {}
        out[lib] = {"times_s": times[lib], "info": info}
    return out


# ---------------------------------------------------------------------------- parent side
def run_case(module_name: str, lib: str, cfg: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """One case in a fresh subprocess; a failed or timed-out case becomes a result with ``error``."""
    cmd = [sys.executable, "-m", module_name, "--worker", lib, "--config", json.dumps(cfg)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=thread_env(cfg["threads"]),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return _failed(module_name, lib, f"timed out after {timeout:.0f} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["subprocess_s"] = time.perf_counter() - t0
            return result
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
    return _failed(module_name, lib, f"exit code {proc.returncode}: " + " | ".join(tail))


def _failed(module_name, lib, error):
    module = importlib.import_module(module_name)
    case = module.CASES[lib]
    return {"workload": module.WORKLOAD, "library": lib, "label": case.label or lib, "kind": case.kind,
            "note": case.note, "error": error, "times_s": [], "info": {}}


def run_workload(module_name: str, cfg: Dict[str, Any], libs: Optional[Iterable[str]] = None,
                 timeout: float = 900.0, log=sys.stderr) -> List[Dict[str, Any]]:
    """All (selected) cases of one bench module, each in its own subprocess.

    With ``cfg["rounds"] = R > 1`` every case runs R times (a fresh subprocess each time,
    ``ceil(repeats / R)`` timed iterations each), the cases interleaved and their order reversed on
    every other round, so a burst of load from other processes is spread over all libraries
    instead of landing on one; the rounds' times are pooled before the median is taken.

    With ``cfg["interleave"]`` (and a module that allows it, ``INTERLEAVE = True``) the per-case
    subprocesses run one iteration each (memory, spike counts) and the times come from one more
    subprocess that times all cases round-robin, iteration by iteration (paired under the same
    load: the most robust ratios on a shared machine)."""
    module = importlib.import_module(module_name)
    names = list(module.CASES) if not libs else [n for n in module.CASES if n in set(libs)]
    interleave = bool(cfg.get("interleave")) and getattr(module, "INTERLEAVE", False)
    rounds = 1 if interleave else max(1, int(cfg.get("rounds", 1)))
    per_round = dict(cfg, repeats=1 if interleave else max(1, math.ceil(cfg["repeats"] / rounds)))
    runs: Dict[str, List[Dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        for lib in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            tag = f" (round {r + 1}/{rounds})" if rounds > 1 else (" (memory)" if interleave else "")
            print(f"[{module.WORKLOAD}] {lib}{tag} ...", end="", file=log, flush=True)
            res = run_case(module_name, lib, per_round, timeout)
            runs[lib].append(res)
            status = (f"median {res['median_s'] * 1e3:.1f} ms" if not res.get("error")
                      else f"FAILED: {res['error'][:300]}")
            print(f" {status} ({time.perf_counter() - t0:.0f} s)", file=log, flush=True)
    results = [merge_rounds(runs[n]) for n in names]
    if interleave:
        ok = [r["library"] for r in results if not r.get("error")]
        t0 = time.perf_counter()
        print(f"[{module.WORKLOAD}] interleaved timing of {', '.join(ok)} ...", end="", file=log, flush=True)
        timing = run_interleaved(module_name, ok, cfg, timeout * max(1, len(ok)))
        print(f" ({time.perf_counter() - t0:.0f} s)", file=log, flush=True)
        for r in results:
            if r.get("error"):
                continue
            t = timing.get(r["library"], {"error": timing.get("error", "missing from the interleaved run")})
            if t.get("error"):
                r["error"] = "interleaved timing: " + t["error"]
                continue
            r["times_s"] = t["times_s"]
            r.update(summarize(t["times_s"]))
            r["info"] = t["info"] or r.get("info", {})
            r["timing"] = "interleaved"
            r.pop("cpu_util", None)
    add_ratios(results)
    return results


def run_interleaved(module_name: str, libs: List[str], cfg: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """:func:`worker_interleaved` in a fresh subprocess; ``{"error": ...}`` when it fails."""
    cmd = [sys.executable, "-m", module_name, "--worker-all", ",".join(libs), "--config", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=thread_env(cfg["threads"]),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def merge_rounds(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Pool the timed iterations of several rounds of one case (peak memory: the largest)."""
    ok = [r for r in rounds if not r.get("error")]
    if not ok:
        return rounds[-1]
    merged = dict(ok[-1])
    times = [t for r in ok for t in r["times_s"]]
    merged.update(summarize(times))
    merged["times_s"] = times
    merged["rounds"] = len(ok)
    merged["round_medians_s"] = [r["median_s"] for r in ok]
    for key in ("peak_rss_mib", "peak_rss_increase_mib"):
        merged[key] = max(r[key] for r in ok)
    merged["cpu_util"] = statistics.mean(r["cpu_util"] for r in ok)
    merged["loadavg"] = [(r["loadavg_start"], r["loadavg_end"]) for r in ok]
    if len(ok) < len(rounds):
        merged["failed_rounds"] = [r["error"] for r in rounds if r.get("error")]
    return merged


def add_ratios(results: List[Dict[str, Any]]) -> None:
    """Per workload: time / neurosim time, and time / fastest peer-library time (>1: slower)."""
    by_workload: Dict[str, List[Dict[str, Any]]] = {}
    for r in results:
        by_workload.setdefault(r["workload"], []).append(r)
    for rs in by_workload.values():
        ok = [r for r in rs if not r.get("error") and r.get("median_s")]
        ns = next((r["median_s"] for r in ok if r["kind"] == "neurosim"), None)
        peers = [r for r in ok if r["kind"] == "peer"]
        best = min(peers, key=lambda r: r["median_s"]) if peers else None
        for r in rs:
            m = r.get("median_s")
            r["ratio_to_neurosim"] = m / ns if (m and ns) else None
            r["ratio_to_fastest_peer"] = m / best["median_s"] if (m and best) else None
            r["fastest_peer"] = best["label"] if best else None


def target_lines(results: List[Dict[str, Any]], targets: Dict[str, float]) -> List[str]:
    """One line per workload with a target: speed-up of neurosim over the fastest peer library."""
    lines = []
    for workload, need in targets.items():
        rs = [r for r in results if r["workload"] == workload and not r.get("error")]
        ns = next((r for r in rs if r["kind"] == "neurosim"), None)
        peers = [r for r in rs if r["kind"] == "peer"]
        if ns is None or not peers:
            lines.append(f"{workload}: target not checked (neurosim or peers missing)")
            continue
        best = min(peers, key=lambda r: r["median_s"])
        speedup = best["median_s"] / ns["median_s"]
        verdict = "MET" if speedup >= need else "NOT MET"
        lines.append(f"{workload}: neurosim is {speedup:.2f}x the speed of the fastest peer "
                     f"({best['label']}); target >= {need:g}x: {verdict}")
    return lines


# ---------------------------------------------------------------------------- output
def _fmt_time(s: Optional[float]) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"


def _fmt_ratio(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_table(results: List[Dict[str, Any]]) -> str:
    """A plain-text table, one block per workload. Ratios are of medians: ``x neurosim`` > 1 means
    slower than neurosim; ``x fastest peer`` is relative to the fastest peer library."""
    header = ["workload", "library", "kind", "median", "min", "IQR", "x neurosim", "x fastest peer",
              "peak RSS +MiB", "cpu util", "notes"]
    rows = []
    for r in results:
        if r.get("error"):
            rows.append([r["workload"], r["label"], r["kind"], "FAILED", "", "", "", "", "", "",
                         r["error"][:160]])
            continue
        iqr = f"{(r['q3_s'] - r['q1_s']) / r['median_s'] * 100:.0f}%" if r.get("median_s") else "-"
        util = r.get("cpu_util")
        rows.append([r["workload"], r["label"], r["kind"], _fmt_time(r.get("median_s")), _fmt_time(r.get("min_s")),
                     iqr, _fmt_ratio(r.get("ratio_to_neurosim")), _fmt_ratio(r.get("ratio_to_fastest_peer")),
                     f"{r.get('peak_rss_increase_mib', float('nan')):.0f}",
                     "-" if util is None else f"{util:.2f}", _info_note(r)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    out, last = [], None
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()
    out += [line, "-" * len(line)]
    for row in rows:
        if last is not None and row[0] != last:
            out.append("")
        last = row[0]
        out.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return "\n".join(out)


def _info_note(r: Dict[str, Any]) -> str:
    info = r.get("info") or {}
    parts = []
    for key, fmt in (("rate_hz", "{:.1f} Hz"), ("spike_prob", "p(spike)={:.4f}"), ("spikes", "{:.0f} spikes"),
                     ("compile_s", "compile+1st run {:.1f} s"), ("rate_exc_hz", "exc {:.1f} Hz"),
                     ("rate_inh_hz", "inh {:.1f} Hz")):
        if info.get(key) is not None:
            parts.append(fmt.format(info[key]))
    if info.get("note"):
        parts.append(str(info["note"]))
    return ", ".join(parts)


def environment() -> Dict[str, Any]:
    """Versions, cores and load, stored with the results."""
    from importlib import metadata
    versions = {}
    for dist in ("torch", "numpy", "neurosim", "norse", "snntorch", "spikingjelly", "brian2", "Cython"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "usable_cores": default_threads(),
            "loadavg": os.getloadavg(), "versions": versions,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_json_atomic(path, data) -> None:
    """Write ``data`` as strict JSON to ``path`` atomically (neurosim.atomic.atomic_path)."""
    from neurosim.atomic import atomic_path
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(_finite(data), f, indent=2, default=_json_default, allow_nan=False)
        f.write("\n")


def _finite(o):
    """NaN and infinities -> None (strict JSON), recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def _json_default(o):
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------- command line
def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 repeats: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per case (median reported)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations before timing")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per case, each a fresh subprocess (spreads load bursts)")
    parser.add_argument("--interleave", action="store_true",
                        help="time all cases of a workload in one process, round-robin per iteration "
                             "(memory still from one subprocess per case); not for COBA")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="torch.set_num_threads for every library (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--libs", default="", help="comma-separated subset of the cases to run")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case before it is killed")
    parser.add_argument("--out", default=None, help="write the results as JSON to this file (atomically)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a workload size, e.g. --set T=50 (value parsed as JSON)")


def make_config(module, args) -> Dict[str, Any]:
    """The workload's sizes (quick or full) plus the run settings from the command line."""
    cfg = dict(module.defaults(args.quick))
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            cfg[key] = json.loads(value)
        except json.JSONDecodeError:
            cfg[key] = value
    cfg["threads"] = args.threads
    cfg["seed"] = args.seed
    cfg["quick"] = bool(args.quick)
    if args.repeats is not None:
        cfg["repeats"] = args.repeats
    if args.warmup is not None:
        cfg["warmup"] = args.warmup
    if args.rounds is not None:
        cfg["rounds"] = args.rounds
    cfg["interleave"] = bool(args.interleave)
    cfg.setdefault("rounds", 1)
    return cfg


def bench_main(module_name: str, argv=None) -> List[Dict[str, Any]]:
    """Command line of one bench module: parent mode (all cases, table, JSON) or ``--worker LIB``."""
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m {module_name}", description=module.__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-all", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_all:
        result = worker_interleaved(module, args.worker_all.split(","), json.loads(args.config))
        sys.stdout.write(RESULT_TAG + json.dumps(result, default=_json_default) + "\n")
        sys.stdout.flush()
        return [result]
    if args.worker:
        result = worker_main(module, args.worker, json.loads(args.config))
        sys.stdout.write(RESULT_TAG + json.dumps(result, default=_json_default) + "\n")
        sys.stdout.flush()
        return [result]
    cfg = make_config(module, args)
    libs = [s for s in args.libs.split(",") if s]
    t0 = time.perf_counter()
    env = environment()
    results = run_workload(module_name, cfg, libs, timeout=args.timeout)
    print(format_table(results))
    targets = {module.WORKLOAD: module.TARGET} if getattr(module, "TARGET", None) else {}
    for line in target_lines(results, targets):
        print(line)
    if args.out:
        write_json_atomic(args.out, {"environment": env, "config": {module.WORKLOAD: cfg},
                                     "total_s": time.perf_counter() - t0,
                                     "loadavg_end": os.getloadavg(), "results": results})
    return results
