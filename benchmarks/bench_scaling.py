"""Simulation scaling: workload 2 (Bernoulli input [T, 1, N] -> Dense N x N -> forward-Euler LIF)
over a grid of input densities p and sizes N, time against synaptic events, in several libraries.

Grid: p in {0.1, 0.3, 1, 3, 10, 20} %, N in {1024, 4096, 16384}, T = 200 steps, batch 1, float32
(``--quick``: p in {0.1, 1, 10} %, N in {1024, 4096}, T = 100). The LIF is workload 2's
(:mod:`benchmarks.bench_simulation`), a = 1 - dt/tau_mem, reset to zero, input in the same step::

    v[t] = a v[t-1] + (1 - a) I[t],   I[t] = W x[t],   s[t] = H(v[t] - v_th),   v[t] <- v[t] (1 - s[t])

Weights: workload 2's recipe N(w_mean, w_std), rescaled for k = p N active inputs a step so that
the current I keeps workload 2's mean mu = 0.82 and spread sigma = 1.92 (its 41 active inputs x
N(0.02, 0.3)): w_mean = mu / k, w_std = sigma / sqrt(k); the output then spikes at a few %. The
weights are rounded to a grid of 2^-14, so every current is an exact float32 sum in any order
(dense matmul or event gather); the libraries differ only in how they write the LIF update.

Synaptic events = input spikes x N (fan-out of each input spike), counted from the input itself.

Libraries (each (library, N, p) point in a fresh subprocess, libraries interleaved within a round,
their order reversed from point to point; ``--threads`` 1 by default, as Brian2's one thread):

* ``neurosim``: ``Simulator`` with the default backend ("auto"): under ``torch.no_grad()`` the LIF
  runs on the compiled (numba) time loop, the Dense before it on the compiled event gather (one call
  over all T); ``neurosim_torch``: ``backend="torch"``;
* ``spikingjelly`` (the fastest peer of workload 2), ``snntorch``, ``norse``: the set-ups of
  :mod:`benchmarks.bench_training` (a dense ``Linear`` on all T, then the neuron over T);
* ``brian2``: ``cpp_standalone`` device, one thread. ``SpikeGeneratorGroup`` with the same input
  spikes -> ``Synapses`` all-to-all, ``w = (1 - a) W[j, i]``, ``on_pre="v += w"`` -> ``NeuronGroup``
  ``dv/dt = -v / tau_mem`` (Euler), ``v > v_th``, reset ``v = 0``. The generator runs at
  ``before_groups`` and the synapses at ``after_groups``, so each step is: decay, add this step's
  input, threshold, reset -- neurosim's order. float64 (Brian2's only type), so its counts may
  differ from the float32 libraries by near-threshold rounding. Only N <= 4096: at N = 16384 its
  2.7e8 explicit synapses need ~5 GB and minutes of build time. Its time is the simulation time
  the binary measures (``device._last_run_time``); code generation + compilation is
  ``compile_s``.

The fit of neurosim's points, ``time = fixed_per_step * T + cost_per_event * events``, and the plot
are in :mod:`benchmarks.plot_scaling`.
Run: ``python -m benchmarks.bench_scaling [--quick] [--out benchmarks/scaling.json]
[--plot benchmarks/scaling.png] [--libs a,b] [--rounds R] [--repeats K]``.
"""
from __future__ import annotations

import argparse
import atexit
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks.bench_training import (decay, make_inputs, make_neurosim, make_norse, make_snntorch,
                                       make_spikingjelly)
from benchmarks.common import (Case, Prepared, bench_main, environment, merge_rounds, run_case,
                               write_json_atomic)

WORKLOAD = "scaling"
TARGET = None
MODULE = "benchmarks.bench_scaling"
DENSITIES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2)
SIZES = (1024, 4096, 16384)
BRIAN2_MAX_N = 4096      # explicit all-to-all synapses: N^2 of them (16.7e6 at 4096, 2.7e8 at 16384)
GRID_BITS = 14           # weights on a grid of 2^-14: exact float32 currents in any summation order
CURRENT_MEAN, CURRENT_STD = 0.82, 1.92   # workload 2: 41 active inputs x N(0.02, 0.3)


def defaults(quick: bool = False) -> dict:
    """The grid and the run settings (``quick``: a smoke run of the same code)."""
    cfg = dict(T=200, batch=1, densities=list(DENSITIES), sizes=list(SIZES), tau_mem=10e-3, dt=1e-3,
               v_th=1.0, surrogate_scale=10.0, current_mean=CURRENT_MEAN, current_std=CURRENT_STD,
               grid_bits=GRID_BITS, warmup=1, repeats=5, rounds=1)
    if quick:
        cfg.update(T=100, densities=[0.001, 0.01, 0.1], sizes=[1024, 4096], repeats=2)
    return cfg


def check_config(cfg: Dict[str, Any]) -> None:
    """Raise ValueError naming the first bad setting (before any work starts)."""
    for key in ("T", "batch", "repeats"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise ValueError(f"bench_scaling: {key} must be a positive int, got {cfg.get(key)!r}")
    if not isinstance(cfg.get("warmup"), int) or cfg["warmup"] < 0:
        raise ValueError(f"bench_scaling: warmup must be an int >= 0, got {cfg.get('warmup')!r}")
    dens = cfg.get("densities")
    if not dens or any(not isinstance(p, (int, float)) or not 0.0 < p <= 1.0 for p in dens):
        raise ValueError(f"bench_scaling: densities must be a non-empty list in (0, 1], got {dens!r}")
    sizes = cfg.get("sizes")
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"bench_scaling: sizes must be a non-empty list of positive ints, got {sizes!r}")
    for key in ("tau_mem", "dt"):
        if not cfg.get(key, 0) > 0:
            raise ValueError(f"bench_scaling: {key} must be > 0 seconds, got {cfg.get(key)!r}")


def point_config(cfg: Dict[str, Any], n: int, p: float) -> Dict[str, Any]:
    """The worker configuration of point (N = ``n``, density ``p``): workload 2's keys with the
    weight spread for k = max(p n, 1) active inputs: w_mean = mu / k, w_std = sigma / sqrt(k)."""
    k = max(p * n, 1.0)
    point = {key: v for key, v in cfg.items() if key not in ("densities", "sizes")}
    point.update(n_in=n, n_out=n, p_in=p, w_mean=cfg["current_mean"] / k,
                 w_std=cfg["current_std"] / math.sqrt(k))
    return point


def point_inputs(cfg: Dict[str, Any]):
    """Input spikes ``x [T, batch, N]`` (float32, 0/1) and weight ``w [N, N]`` (float32, on the grid
    of 2^-grid_bits), the same tensors for every library (seeded)."""
    x, w = make_inputs(cfg)
    scale = 2.0 ** cfg["grid_bits"]
    return x, w.mul_(scale).round_().div_(scale)       # in place: 1 GiB at N = 16384


def events_of(x: torch.Tensor, n_out: int) -> int:
    """Synaptic events: input spikes x fan-out (every input reaches all ``n_out`` neurons)."""
    return int(x.sum().item()) * int(n_out)


# ---------------------------------------------------------------------------- torch-based cases
def dense_path(fc, x: torch.Tensor, where: str = "torch") -> str:
    """``"event"`` when neurosim's Dense ``fc`` propagates ``x [T, batch, N]`` (all T in one call)
    by an event gather under no_grad, ``"dense"`` when it takes the matmul. ``where`` is the
    Dense's placement: ``"compiled"`` is the compiled event gather
    (``neurosim.compiled.sequence``); on torch, its cost model decides."""
    if where == "compiled":
        return "event"
    return "event" if fc.use_event_path(x.reshape(-1, x.shape[-1])) else "dense"


def _neurosim_backend(backend):
    def make(w, cfg):
        forward, sim = make_neurosim(w, cfg)
        sim.backend = backend
        return forward, sim
    return make


def _torch_case(make):
    """A case running ``make(w, cfg)``'s forward under no_grad on the point's inputs; the first run
    (numba cache load, library warm-up) is timed apart as ``first_s``."""
    def build(cfg, meter):
        x, w = point_inputs(cfg)
        meter.start()
        forward, module = make(w, cfg)
        last = {}

        def run():
            with torch.no_grad():
                last["out"] = forward(x)

        def timed(warmup, repeats):
            t0 = time.perf_counter()
            run()
            first = time.perf_counter() - t0
            for _ in range(max(0, warmup - 1)):
                run()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            return {"times": times, "first_s": first}

        def info():
            d = {"spikes": int(last["out"].sum().item()), "input_spikes": int(x.sum().item()),
                 "events": events_of(x, w.shape[0])}
            placement = getattr(module, "placement", None)
            if placement:
                d["placement"] = {n: where for n, (where, _) in placement.items()}
            graph = getattr(module, "graph", None)
            if graph is not None:                 # neurosim: did its Dense take the event path?
                with torch.no_grad():
                    d["dense_path"] = dense_path(graph.nodes["fc"], x, d.get("placement", {}).get("fc", "torch"))
            return d
        return Prepared(run=run, info=info, timed=timed)
    return build


# ---------------------------------------------------------------------------- Brian2
def make_brian2(x: torch.Tensor, w: torch.Tensor, cfg: Dict[str, Any]):
    """The Brian2 network of one point on the current device: ``(network, spike monitor)``.

    ``x [T, 1, N]`` becomes a SpikeGeneratorGroup (input i spikes at step t -> time t dt),
    ``w [N_out, N_in]`` all-to-all Synapses with ``w_syn = (1 - a) w[j, i]`` and ``on_pre="v += w_syn"``;
    batch must be 1."""
    import brian2 as b2
    if x.dim() != 3 or x.shape[1] != 1:
        raise ValueError(f"make_brian2: input must be [T, 1, N], got {tuple(x.shape)}")
    n_out, n_in = w.shape
    steps, idx = np.nonzero(x[:, 0].numpy() > 0)
    dt = cfg["dt"] * b2.second
    b2.defaultclock.dt = dt
    ns = {"tau_mem": cfg["tau_mem"] * b2.second, "v_th": float(cfg["v_th"])}
    gen = b2.SpikeGeneratorGroup(n_in, idx.astype(np.int32), steps * dt, when="before_groups",
                                 name="inputs")
    neurons = b2.NeuronGroup(n_out, "dv/dt = -v / tau_mem : 1", threshold="v > v_th", reset="v = 0",
                             method="euler", namespace=ns, name="neurons")
    syn = b2.Synapses(gen, neurons, "w_syn : 1", on_pre="v += w_syn", name="synapses")
    pre, post = np.meshgrid(np.arange(n_in, dtype=np.int32), np.arange(n_out, dtype=np.int32), indexing="ij")
    syn.connect(i=pre.ravel(), j=post.ravel())
    b = 1.0 - decay(cfg)
    syn.w_syn = b * w.double().numpy().T.ravel()          # synapse (i, j) carries (1 - a) w[j, i]
    syn.pre.when = "after_groups"                          # decay, add input, threshold, reset
    mon = b2.SpikeMonitor(neurons, record=False, name="spikes")
    return b2.Network(gen, neurons, syn, mon), mon


def _brian2_build(cfg, meter):
    """Brian2 ``cpp_standalone``, one thread, built into a fresh folder; the timed runs re-execute the
    binary and report its own simulation time (``device._last_run_time``)."""
    import brian2 as b2
    if cfg["n_out"] > BRIAN2_MAX_N:
        raise ValueError(f"Brian2 runs only N <= {BRIAN2_MAX_N} (N^2 explicit synapses), got {cfg['n_out']}")
    x, w = point_inputs(cfg)
    directory = tempfile.mkdtemp(prefix="bench_scaling_standalone_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    b2.set_device("cpp_standalone", directory=directory, build_on_run=True)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    meter.start()
    network, mon = make_brian2(x, w, cfg)
    duration = cfg["T"] * cfg["dt"] * b2.second
    last = {}

    def run():
        b2.device.run(directory=directory, with_output=False)
        last["spikes"] = int(mon.num_spikes)

    def timed(warmup, repeats):
        t0 = time.perf_counter()
        network.run(duration)                       # code generation, compilation, one run
        first = time.perf_counter() - t0
        last["spikes"] = int(mon.num_spikes)
        for _ in range(max(0, warmup - 1)):
            run()
        times, walls = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            walls.append(time.perf_counter() - t0)
            times.append(float(b2.device._last_run_time))
        return {"times": times, "compile_s": first, "process_s": statistics.median(walls)}

    def info():
        return {"spikes": last["spikes"], "input_spikes": int(x.sum().item()),
                "events": events_of(x, w.shape[0]), "target": "cpp_standalone", "dtype": "float64"}
    return Prepared(run=run, info=info, timed=timed)


CASES = {
    "neurosim": Case("neurosim", _torch_case(_neurosim_backend("auto")), "neurosim (compiled LIF)"),
    "neurosim_torch": Case("reference", _torch_case(_neurosim_backend("torch")), "neurosim, backend='torch'"),
    "spikingjelly": Case("peer", _torch_case(make_spikingjelly), "SpikingJelly LIFNode (m)"),
    "snntorch": Case("peer", _torch_case(make_snntorch), "snnTorch Leaky"),
    "norse": Case("peer", _torch_case(make_norse), "norse LIF"),
    "brian2": Case("peer", _brian2_build, "Brian2 cpp_standalone (1 thread, N <= 4096)"),
}


def applies(lib: str, n: int) -> bool:
    """Whether library ``lib`` runs at size ``n`` (Brian2 only up to :data:`BRIAN2_MAX_N`)."""
    return lib != "brian2" or n <= BRIAN2_MAX_N


# ---------------------------------------------------------------------------- the grid
def run_grid(cfg: Dict[str, Any], libs: List[str], timeout: float = 1800.0, log=sys.stderr) -> List[Dict[str, Any]]:
    """Every (library, N, p) point of the grid in a fresh subprocess (:func:`benchmarks.common.run_case`),
    ``cfg["rounds"]`` rounds; within a round the libraries of a point run back to back, their order
    reversed from one point (and round) to the next. ``os.getloadavg()`` is recorded before each run.
    Returns one merged result per (library, N, p), rounds pooled before the median."""
    check_config(cfg)
    unknown = [lib for lib in libs if lib not in CASES]
    if unknown:
        raise ValueError(f"bench_scaling: unknown libraries {unknown}; known: {list(CASES)}")
    rounds = max(1, int(cfg.get("rounds", 1)))
    per_round = dict(cfg, repeats=max(1, math.ceil(cfg["repeats"] / rounds)))
    points = [(n, p) for n in cfg["sizes"] for p in cfg["densities"]]
    runs: Dict[tuple, List[Dict[str, Any]]] = {}
    turn = 0
    for r in range(rounds):
        for n, p in points:
            here = [lib for lib in libs if applies(lib, n)]
            for lib in (here if turn % 2 == 0 else here[::-1]):
                load = os.getloadavg()
                print(f"[scaling] N={n} p={p:g} {lib} (round {r + 1}/{rounds}, load {load[0]:.1f}) ...",
                      end="", file=log, flush=True)
                t0 = time.perf_counter()
                res = run_case(MODULE, lib, point_config(per_round, n, p), timeout)
                res["loadavg_before"] = list(load)
                runs.setdefault((lib, n, p), []).append(res)
                status = (f"median {res['median_s'] * 1e3:.2f} ms, {res['info'].get('spikes')} spikes"
                          if not res.get("error") else f"FAILED: {res['error'][:300]}")
                print(f" {status} ({time.perf_counter() - t0:.0f} s)", file=log, flush=True)
            turn += 1
    results = []
    for (lib, n, p), rs in runs.items():
        merged = merge_rounds(rs)
        merged.update(n=n, p_in=p, T=cfg["T"], loadavg_rounds=[x["loadavg_before"] for x in rs])
        results.append(merged)
    return results


def spike_agreement(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per (N, p): the output spike count of every library and whether the float32 libraries agree
    (Brian2, float64, is listed but not required to agree)."""
    table: Dict[tuple, Dict[str, Any]] = {}
    for r in results:
        if r.get("error"):
            continue
        table.setdefault((r["n"], r["p_in"]), {})[r["library"]] = r["info"]["spikes"]
    rows = []
    for (n, p), counts in sorted(table.items()):
        f32 = {v for lib, v in counts.items() if lib != "brian2"}
        rows.append({"n": n, "p_in": p, "spikes": counts, "float32_agree": len(f32) <= 1})
    return rows


def format_grid(results: List[Dict[str, Any]]) -> str:
    """A plain-text table: one row per (N, p), one column of median time per library."""
    libs = [lib for lib in CASES if any(r["library"] == lib for r in results)]
    cells: Dict[tuple, Dict[str, str]] = {}
    meta: Dict[tuple, Dict[str, Any]] = {}
    for r in results:
        key = (r["n"], r["p_in"])
        cells.setdefault(key, {})[r["library"]] = "FAILED" if r.get("error") else f"{r['median_s'] * 1e3:.2f}"
        if not r.get("error"):
            meta.setdefault(key, {"events": r["info"]["events"], "loads": []})
            meta[key]["loads"] += [x[0] for x in r["loadavg_rounds"]]
    agree = {(a["n"], a["p_in"]): a for a in spike_agreement(results)}
    header = ["N", "p", "events"] + [f"{lib} ms" for lib in libs] + ["spikes", "agree", "load"]
    rows = []
    for key in sorted(cells):
        m = meta.get(key, {"events": 0, "loads": [float("nan")]})
        a = agree.get(key, {"spikes": {}, "float32_agree": False})
        counts = sorted(set(a["spikes"].values()))
        rows.append([str(key[0]), f"{key[1] * 100:g}%", f"{m['events']:.3g}"]
                    + [cells[key].get(lib, "-") for lib in libs]
                    + ["/".join(str(c) for c in counts), "yes" if a["float32_agree"] else "NO",
                       f"{max(m['loads']):.1f}"])
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(h.ljust(wd) for h, wd in zip(header, widths))]
    lines += ["  ".join(x.ljust(wd) for x, wd in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main(argv=None) -> List[Dict[str, Any]]:
    """Command line: the grid (parent) or, with ``--worker``, one point (:func:`benchmarks.common.bench_main`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--worker" in argv:
        return bench_main(MODULE, argv)
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, T = 100, 2 repeats")
    parser.add_argument("--out", default=None, help="results JSON (written atomically)")
    parser.add_argument("--plot", default=None, help="PNG plot of time against synaptic events")
    parser.add_argument("--libs", default="", help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every library (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per point before it is killed")
    args = parser.parse_args(argv)
    from benchmarks.plot_scaling import check_plot_path, fit_cost, plot_scaling
    if args.plot:
        check_plot_path(args.plot)
    cfg = defaults(args.quick)
    for key in ("repeats", "warmup", "rounds"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg.update(threads=args.threads, seed=args.seed, quick=bool(args.quick))
    libs = [s for s in args.libs.split(",") if s] or list(CASES)
    env = environment()
    t0 = time.perf_counter()
    results = run_grid(cfg, libs, timeout=args.timeout)
    print(format_grid(results))
    ours = [r for r in results if r["library"] == "neurosim" and not r.get("error")]
    try:
        fit = fit_cost(ours)
    except ValueError as error:            # fewer than 2 event-path points
        print(f"neurosim fit: not possible ({error})")
        fit = None
    if fit:
        print(f"neurosim fit: time = {fit['fixed_per_step_ns']:.0f} ns/step x T + "
              f"{fit['cost_per_event_ns']:.3f} ns/event x events (relative rms residual "
              f"{fit['rel_rms_residual'] * 100:.0f} %, {fit['points']} points)")
        for n, f in fit["per_n"].items():
            print(f"  N = {n}: {f['fixed_per_step_ns']:.0f} ns/step, {f['cost_per_event_ns']:.3f} ns/event "
                  f"(residual {f['rel_rms_residual'] * 100:.0f} %)")
    agreement = spike_agreement(results)
    bad = [a for a in agreement if not a["float32_agree"]]
    print("spike counts: float32 libraries agree at every point" if not bad else
          f"spike counts DIFFER at {len(bad)} point(s): " + "; ".join(
              f"N={a['n']} p={a['p_in']:g} {a['spikes']}" for a in bad))
    data = {"environment": env, "config": cfg, "libraries": libs, "total_s": time.perf_counter() - t0,
            "loadavg_end": os.getloadavg(), "fit_neurosim": fit, "spike_agreement": agreement,
            "results": results}
    if args.out:
        write_json_atomic(args.out, data)
    if args.plot:
        plot_scaling(data, args.plot)
    return results


if __name__ == "__main__":
    main()
