"""Run every benchmark workload (training, recurrent training, simulation, COBA) and print one table.

    python -m benchmarks.run_all                  # full run (about 10 minutes on 2 cores)
    python -m benchmarks.run_all --quick          # small sizes, 1-2 repeats: a smoke run
    python -m benchmarks.run_all --repeats 5 --out results/bench.json
    python -m benchmarks.run_all --only training,simulation --libs neurosim,norse,torch

Every (workload, library) pair runs in its own subprocess (see ``benchmarks/common.py``); the
ratios are computed from medians measured in this same run. Method: ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

MODULES = {
    "training": "benchmarks.bench_training",
    "recurrent": "benchmarks.bench_recurrent",
    "simulation": "benchmarks.bench_simulation",
    "coba": "benchmarks.bench_coba",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n")[0])
    common.add_common_args(parser)
    parser.add_argument("--only", default="", help=f"comma-separated workloads (default: all of {list(MODULES)})")
    args = parser.parse_args(argv)
    only = [w for w in args.only.split(",") if w] or list(MODULES)
    unknown = set(only) - set(MODULES)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {list(MODULES)}")
    libs = [s for s in args.libs.split(",") if s]

    import importlib
    t0 = time.perf_counter()
    env = common.environment()
    results, configs, targets = [], {}, {}
    for workload in only:
        module = importlib.import_module(MODULES[workload])
        cfg = common.make_config(module, args)
        configs[workload] = cfg
        if getattr(module, "TARGET", None):
            targets[workload] = module.TARGET
        results += common.run_workload(MODULES[workload], cfg, libs, timeout=args.timeout)
    total = time.perf_counter() - t0

    print()
    print(common.format_table(results))
    print()
    for line in common.target_lines(results, targets):
        print(line)
    load = os.getloadavg()
    print(f"\nthreads={args.threads}, total {total:.0f} s, load average at start {env['loadavg'][0]:.2f}, "
          f"at end {load[0]:.2f} (on {env['usable_cores']} usable cores; other processes' load adds noise)")
    if args.out:
        common.write_json_atomic(args.out, {"environment": env, "config": configs, "total_s": total,
                                            "loadavg_end": load, "targets": targets, "results": results})
        print(f"results written to {args.out}")
    return results


if __name__ == "__main__":
    main()
