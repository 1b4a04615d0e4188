"""Where the compiled time loop starts to pay: ``backend="torch"`` against ``"compiled"``.

Not a peer workload: it measures, for neurosim alone, the no-grad run time of the two backends
over network size N and run length T, so that ``backend="auto"`` can be set from measurements.
Two graphs, both under ``torch.no_grad()``, float32, batch 1, Bernoulli(0.05) input:

* ``feedforward``: input -> Dense N x N -> LIF (the population is a block with its own loop);
* ``recurrent``: the same plus a Dense N x N back-edge onto the population (a stepped block).

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


def make_graph(n: int, recurrent: bool, seed: int = 0):
    import neurosim as ns
    from neurosim.neurons import LIFParams
    torch.manual_seed(seed)
    g = ns.Graph().add_input("x", n)
    g.add("fc", ns.Dense(n, n, weight=torch.randn(n, n) * (2.0 / n ** 0.5)))
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
    return {"graph": "recurrent" if recurrent else "feedforward", "n": n, "steps": steps,
            "torch_s": med["torch"], "compiled_s": med["compiled"], "speedup": med["torch"] / med["compiled"],
            "spikes_torch": spikes["torch"], "spikes_compiled": spikes["compiled"],
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small points (smoke run)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the points as JSON (atomically)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes, lengths = ((16, 256), (1, 10, 100)) if args.quick else ((16, 256, 4096), (1, 10, 100, 1000))
    repeats = args.repeats or (2 if args.quick else 5)
    points = [time_point(n, t, rec, repeats) for rec in (False, True) for n in sizes for t in lengths]
    print(f"{'graph':12} {'N':>6} {'T':>6} {'torch':>10} {'compiled':>10} {'speedup':>8} {'load':>5}")
    for p in points:
        print(f"{p['graph']:12} {p['n']:6d} {p['steps']:6d} {p['torch_s'] * 1e3:8.2f}ms {p['compiled_s'] * 1e3:8.2f}ms "
              f"{p['speedup']:7.1f}x {p['load']:5.1f}")
    if args.out:
        from neurosim.atomic import atomic_path
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(json.dumps(points, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
