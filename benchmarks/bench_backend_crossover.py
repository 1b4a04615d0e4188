"""Where the compiled time loop starts to pay: ``backend="torch"`` against ``"compiled"``.

Not a peer workload: it measures, for neurosim alone, the no-grad run time of the two backends
over network size N and run length T, so that ``backend="auto"`` can be set from measurements.
Two graphs, both under ``torch.no_grad()``, float32, batch 1, Bernoulli(0.05) input:

* ``feedforward``: input -> Dense N x N -> LIF (the population is a block with its own loop);
* ``recurrent``: the same plus a Dense N x N back-edge onto the population (a stepped block);
* ``loihi``: the fixed-point Loihi model, input -> LoihiDense (latency 1, axonal delays 0..3)
  -> loihi_cuba, with a LoihiDense N x N (latency 0) back-edge: integer arithmetic throughout.

Each point: both backends in the same process, interleaved, ``repeats`` runs each after one
warm-up (the compiled machine is loaded from numba's cache before any timing); the figure is the
median, and ``speedup`` = torch / compiled. The fixed cost of a compiled call (lowering the block,
the array tables) is what small T x N pays; the torch path pays PyTorch's dispatch per operation
per step.

Run: ``python -m benchmarks.bench_backend_crossover [--quick] [--out file.json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


GRAPHS = ("feedforward", "recurrent", "loihi")


def make_loihi_graph(n: int, seed: int = 0):
    import neurosim as ns
    from neurosim.hardware.loihi import LoihiCubaParams, LoihiDense
    g = torch.Generator().manual_seed(seed)
    graph = ns.Graph().add_input("x", n)
    graph.add("fc", LoihiDense(torch.randint(-40, 100, (n, n), generator=g), weight_exp=max(0, 6 - n.bit_length() // 2),
                               delay=torch.randint(0, 4, (n,), generator=g)))
    graph.add("pop", ns.Population("loihi_cuba", n, LoihiCubaParams(i_decay=1024, v_decay=256, v_th_mant=400)))
    graph.add("rec", LoihiDense(torch.randint(-100, 60, (n, n), generator=g), weight_exp=max(0, 5 - n.bit_length() // 2),
                                latency=0))
    graph.connect("x", "fc").connect("fc", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
    graph.add_output("pop")
    return graph


def make_graph(n: int, recurrent, seed: int = 0):
    """The graph of one kind (:data:`GRAPHS`; ``recurrent`` may be a bool, as before)."""
    import neurosim as ns
    from neurosim.neurons import LIFParams
    kind = recurrent if isinstance(recurrent, str) else ("recurrent" if recurrent else "feedforward")
    if kind == "loihi":
        return make_loihi_graph(n, seed)
    recurrent = kind == "recurrent"
    torch.manual_seed(seed)
    g = ns.Graph().add_input("x", n)
    # 15 / sqrt(N): about 2.5 % of the neurons spike per step at every N (a silent network would
    # leave the event propagation nothing to do)
    g.add("fc", ns.Dense(n, n, weight=torch.randn(n, n) * (15.0 / n ** 0.5)))
    g.add("pop", ns.Population("lif", n, LIFParams(tau_mem=10e-3, integration="euler", reset="zero")))
    g.connect("x", "fc").connect("fc", "pop")
    if recurrent:
        g.add("rec", ns.Dense(n, n, weight=torch.randn(n, n) * (0.5 / n ** 0.5)))
        g.connect("pop", "rec", back=True).connect("rec", "pop")
    g.add_output("pop")
    return g


def time_point(n: int, steps: int, recurrent: bool, repeats: int) -> dict:
    """Median seconds of each backend on one (N, T, graph) point; spikes must agree."""
    import neurosim as ns
    g = make_graph(n, recurrent)
    x = (torch.rand(steps, 1, n, generator=torch.Generator().manual_seed(1)) < 0.05).float()
    sims = {b: ns.Simulator(g, 1e-3, backend=b) for b in ("torch", "compiled")}
    times = {b: [] for b in sims}
    spikes = {}
    with torch.no_grad():
        for b, sim in sims.items():
            spikes[b] = float(sim.run(x).output.sum())          # warm-up (and cache load)
        for _ in range(repeats):
            for b, sim in sims.items():
                t0 = time.perf_counter()
                sim.run(x)
                times[b].append(time.perf_counter() - t0)
    med = {b: statistics.median(t) for b, t in times.items()}
    kind = recurrent if isinstance(recurrent, str) else ("recurrent" if recurrent else "feedforward")
    return {"graph": kind, "n": n, "steps": steps,
            "torch_s": med["torch"], "compiled_s": med["compiled"], "speedup": med["torch"] / med["compiled"],
            "spikes_torch": spikes["torch"], "spikes_compiled": spikes["compiled"],
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small points (smoke run)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--graphs", default=",".join(GRAPHS), help=f"comma-separated subset of {GRAPHS}")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 16,256,4096)")
    parser.add_argument("--lengths", default=None, help="comma-separated T (default 1,10,100,1000)")
    parser.add_argument("--out", default=None, help="write the points as JSON (atomically)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes, lengths = ((16, 256), (1, 10, 100)) if args.quick else ((16, 256, 4096), (1, 10, 100, 1000))
    try:
        sizes = tuple(int(v) for v in args.sizes.split(",")) if args.sizes else sizes
        lengths = tuple(int(v) for v in args.lengths.split(",")) if args.lengths else lengths
    except ValueError:
        parser.error(f"--sizes / --lengths must be comma-separated integers, got {args.sizes!r} / {args.lengths!r}")
    repeats = args.repeats or (2 if args.quick else 5)
    graphs = [k.strip() for k in args.graphs.split(",") if k.strip()]
    unknown = sorted(set(graphs) - set(GRAPHS))
    if unknown:
        parser.error(f"--graphs: unknown {unknown}; choose from {GRAPHS}")
    points = [time_point(n, t, kind, repeats) for kind in graphs for n in sizes for t in lengths]
    print(f"{'graph':12} {'N':>6} {'T':>6} {'torch':>10} {'compiled':>10} {'speedup':>8} {'spikes':>9} {'load':>5}")
    for p in points:
        print(f"{p['graph']:12} {p['n']:6d} {p['steps']:6d} {p['torch_s'] * 1e3:8.2f}ms {p['compiled_s'] * 1e3:8.2f}ms "
              f"{p['speedup']:7.1f}x {p['spikes_torch']:9.0f} {p['load']:5.1f}")
    if args.out:
        from neurosim.atomic import atomic_path
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(json.dumps(points, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
