"""Where the event-driven path pays: event path vs dense path vs the ``"auto"`` choice.

For ``Dense`` and ``Sparse`` (connection probability ``p_sparse``) of ``n x n`` neurons, over a
grid of input densities (fraction of non-zero inputs), input rows (the batch of one step, or
T x batch when a whole sequence is propagated at once) and sizes, this times one
``propagate(x)`` under ``torch.no_grad()`` with ``event_driven=True`` (event path), ``False``
(dense path) and ``"auto"`` (the cost model of :mod:`neurosim.projections.event_cost`). Each
grid point reports ``ratio = auto / min(event, dense)`` (the cost of the choice, measured, so
also the ``count_nonzero`` of the decision) and ``choice_ratio = chosen path / min`` (the same
without the decision's overhead and timing noise of a third measurement).

Method: ``torch.set_num_threads(threads)`` (default 2), binary inputs with exactly
``round(density x rows x n)`` non-zeros at random positions (seeded), ``warmup`` untimed calls
then ``repeats`` timed calls, in one block per mode (a layer's calls follow each other from
step to step; interleaved modes would let the dense path evict the event path's rows from
cache); the median of the calls is reported. Points whose event path would gather more than ``max_event_work``
synapses are skipped (they take seconds and sit far on the dense side).

``--fit`` also prints the cost-model constants that the measured grid suggests: per kind, a
least-squares fit (relative errors, on the fastest of the repeats, which is least disturbed by
other processes) of ``t_event = a + e x active x fan_out`` and ``t_dense = b + synapses x (s +
m x rows)``, giving ``per_synapse = s / e``, ``per_mac = m / e`` and ``event_overhead = a / e``.
One unit is not the same time at every size (cache levels), so treat the fit as a starting point
and check the ratios it gives on the grid.

Run: ``python -m benchmarks.bench_event_threshold [--quick] [--fit] [--out results.json]``
(about 3 minutes on 2 cores in full, a few seconds with ``--quick``).
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

GRID = dict(kinds=("dense", "sparse"), sizes=(1024, 4096), rows=(1, 16, 64, 1000),
            densities=(0.005, 0.01, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3),
            p_sparse=0.02, warmup=3, repeats=5, max_event_work=2e9)
QUICK = dict(kinds=("dense", "sparse"), sizes=(256,), rows=(1, 16), densities=(0.01, 0.3),
             p_sparse=0.05, warmup=1, repeats=3, max_event_work=2e9)
MODES = {"event": True, "dense": False, "auto": "auto"}


def make_projection(kind: str, n: int, p_sparse: float, seed: int):
    """An ``n x n`` Dense (weights N(0, 1/n)) or Sparse (connection probability ``p_sparse``)."""
    from neurosim import Dense, Sparse
    gen = torch.Generator().manual_seed(seed)
    if kind == "dense":
        return Dense(n, n, weight=torch.randn(n, n, generator=gen) / n ** 0.5)
    if kind == "sparse":
        return Sparse.random(n, n, p=p_sparse, weight=lambda k, g: torch.randn(k, generator=g) * 0.1,
                             generator=gen)
    raise ValueError(f"bench_event_threshold: kind must be 'dense' or 'sparse', got {kind!r}")


def make_input(rows: int, n: int, density: float, seed: int) -> torch.Tensor:
    """Binary ``[rows, n]`` with exactly ``round(density x rows x n)`` ones at random positions."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(rows * n)
    x[torch.randperm(rows * n, generator=gen)[:round(density * rows * n)]] = 1.0
    return x.view(rows, n)


def event_work(node, x) -> float:
    """Synapses the event path gathers: active inputs x fan-out."""
    return float(torch.count_nonzero(x)) * node._event_fan_out()


def time_point(node, x, warmup: int, repeats: int) -> dict:
    """Median seconds of ``node.propagate(x)`` per mode (one block each), and the auto choice."""
    times = {mode: [] for mode in MODES}
    with torch.no_grad():
        # one block per mode: a mode's calls follow each other, as a layer's do from step to
        # step (interleaving the modes would let the dense path, which streams the whole table,
        # evict the rows the event path reads, and bias whichever mode runs after it)
        for mode, setting in MODES.items():
            node.event_driven = setting
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                node.propagate(x)
                elapsed = time.perf_counter() - t0
                if i >= warmup:
                    times[mode].append(elapsed)
        node.event_driven = "auto"
        chose_event = node.use_event_path(x)
    med = {mode: statistics.median(ts) for mode, ts in times.items()}
    fastest = {f"{mode}_min_s": min(ts) for mode, ts in times.items()}
    best = min(med["event"], med["dense"])
    chosen = med["event"] if chose_event else med["dense"]
    return {**{f"{m}_s": v for m, v in med.items()}, **fastest, "auto_path": "event" if chose_event else "dense",
            "ratio": med["auto"] / best, "choice_ratio": chosen / best,
            "faster": "event" if med["event"] < med["dense"] else "dense"}


def run_grid(cfg: dict, seed: int = 0, log=print) -> list:
    """Time every grid point of ``cfg`` (see :data:`GRID`); returns one dict per point."""
    results = []
    for kind, n in itertools.product(cfg["kinds"], cfg["sizes"]):
        node = make_projection(kind, n, cfg["p_sparse"], seed)
        for rows, density in itertools.product(cfg["rows"], cfg["densities"]):
            x = make_input(rows, n, density, seed + 1)
            work = event_work(node, x)
            point = {"kind": kind, "n": n, "rows": rows, "density": density, "active": int(x.sum()),
                     "event_work": work, "fan_out": float(node._event_fan_out()),
                     "synapses": int(node._dense_synapses())}
            if work > cfg["max_event_work"]:
                point["skipped"] = "event path too slow to time"
            else:
                point.update(time_point(node, x, cfg["warmup"], cfg["repeats"]))
            results.append(point)
            log(format_row(point))
    return results


def format_row(p: dict) -> str:
    head = f"{p['kind']:6s} {p['n']:5d} rows={p['rows']:4d} density={p['density']:6.3f}"
    if "skipped" in p:
        return f"{head}   (skipped: {p['skipped']})"
    return (f"{head}  event {p['event_s'] * 1e3:9.3f} ms  dense {p['dense_s'] * 1e3:9.3f} ms  "
            f"auto {p['auto_s'] * 1e3:9.3f} ms ({p['auto_path']:5s})  ratio {p['ratio']:5.2f}  "
            f"choice {p['choice_ratio']:5.2f}")


def fit_constants(results: list) -> dict:
    """Least-squares cost-model constants per kind (see the module docstring)."""
    fitted = {}
    for kind in sorted({p["kind"] for p in results}):
        pts = [p for p in results if p["kind"] == kind and "skipped" not in p]
        if len(pts) < 3:
            continue
        ev = torch.tensor([[1.0, p["event_work"]] for p in pts], dtype=torch.float64)
        te = torch.tensor([[p["event_min_s"]] for p in pts], dtype=torch.float64)
        de = torch.tensor([[1.0, p["synapses"], p["synapses"] * p["rows"]] for p in pts], dtype=torch.float64)
        td = torch.tensor([[p["dense_min_s"]] for p in pts], dtype=torch.float64)
        # relative least squares: each point weighted by 1 / its time
        a, e = torch.linalg.lstsq(ev / te, te / te).solution.view(-1).tolist()
        b, s, m = torch.linalg.lstsq(de / td, td / td).solution.view(-1).tolist()
        fitted[kind] = {"event_overhead_s": a, "event_s_per_synapse": e, "dense_overhead_s": b,
                        "dense_s_per_synapse": s, "dense_s_per_mac": m,
                        "per_synapse": s / e if e > 0 else None, "per_mac": m / e if e > 0 else None,
                        "event_overhead": a / e if e > 0 else None}
    return fitted


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_event_threshold",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few small points: a smoke run of seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per point (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true", help="also print least-squares cost-model constants")
    parser.add_argument("--out", default=None, help="write the results as JSON to this file (atomically)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    cfg = dict(QUICK if args.quick else GRID)
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error(f"--repeats must be >= 1, got {args.repeats}")
        cfg["repeats"] = args.repeats
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    results = run_grid(cfg, args.seed)
    timed = [p for p in results if "skipped" not in p]
    worst = max(timed, key=lambda p: p["ratio"])
    worst_choice = max(timed, key=lambda p: p["choice_ratio"])
    summary = {"max_ratio": worst["ratio"], "max_ratio_at": format_row(worst),
               "max_choice_ratio": worst_choice["choice_ratio"], "max_choice_ratio_at": format_row(worst_choice),
               "points": len(timed), "skipped": len(results) - len(timed),
               "total_s": time.perf_counter() - t0}
    print(f"\nworst auto / min(event, dense): {summary['max_ratio']:.2f} at\n  {summary['max_ratio_at']}")
    print(f"worst chosen path / min: {summary['max_choice_ratio']:.2f} at\n  {summary['max_choice_ratio_at']}")
    fitted = fit_constants(results) if args.fit else None
    if fitted:
        for kind, f in fitted.items():
            if f["per_synapse"] is None:
                print(f"fit {kind}: no positive event cost fitted (too few or too noisy points)")
                continue
            print(f"fit {kind}: per_synapse={f['per_synapse']:.3g} per_mac={f['per_mac']:.3g} "
                  f"event_overhead={f['event_overhead']:.3g} "
                  f"(event {f['event_s_per_synapse'] * 1e9:.3g} ns/synapse + {f['event_overhead_s'] * 1e6:.3g} us, "
                  f"dense {f['dense_s_per_synapse'] * 1e9:.3g} ns/synapse + {f['dense_s_per_mac'] * 1e9:.3g} ns/MAC "
                  f"+ {f['dense_overhead_s'] * 1e6:.3g} us)")
    try:
        import os
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    print(f"threads={args.threads}, {summary['points']} points in {summary['total_s']:.0f} s, load average {load}")
    if args.out:
        from benchmarks.common import write_json_atomic
        write_json_atomic(args.out, {"config": cfg, "threads": args.threads, "seed": args.seed,
                                     "torch": torch.__version__, "loadavg": load, "summary": summary,
                                     "fit": fitted, "results": results})
        print(f"results written to {args.out}")
    return results, summary


if __name__ == "__main__":
    main()
