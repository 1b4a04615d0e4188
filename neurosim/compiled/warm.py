"""Compile the machine ahead of time: ``python -m neurosim.compiled.warm`` (run by ``make install``).

numba compiles the machine (:mod:`neurosim.compiled.machine`) once per element type, float32 and
float64, the first time a run needs it, and caches the result on disk
(:mod:`neurosim.compiled.cache`). Doing it at install time moves those tens of seconds out of
the first simulation; every later process loads the cached code in well under a second.
"""
from __future__ import annotations

import sys
import time

import torch

__all__ = ["warm"]


def warm(dtypes=(torch.float32, torch.float64)) -> dict:
    """Run a two-step network (an input Dense outside the loop, a recurrent LIF) compiled in each
    dtype, which compiles the machine and the whole-sequence kernels, then one training pass of the
    fused LIF kernel (its compiled forward and backward); returns dtype -> seconds."""
    import neurosim as ns
    from neurosim.neurons import LIFParams
    seconds = {}
    for dtype in dtypes:
        g = ns.Graph().add_input("x", 2)
        g.add("fc", ns.Dense(2, 2, weight=torch.eye(2, dtype=dtype), event_driven=True))
        g.add("pop", ns.Population("lif", 2, LIFParams()).to(dtype))
        g.add("rec", ns.Dense(2, 2, weight=torch.eye(2, dtype=dtype), event_driven=True))
        g.connect("x", "fc").connect("fc", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
        g.add_output("pop")
        sim = ns.Simulator(g, backend="compiled")
        start = time.perf_counter()
        with torch.no_grad():
            sim.run(torch.ones(2, 1, 2, dtype=dtype))
        for node in ("fc", "pop"):
            if sim.placement[node][0] != "compiled":
                raise RuntimeError(f"the compiled machine did not run {node!r}: {sim.placement[node][1]}")
        _warm_training(dtype)
        seconds[str(dtype).replace("torch.", "")] = time.perf_counter() - start
    return seconds


def _warm_training(dtype) -> None:
    """One forward and backward of the fused LIF training kernel on compiled code
    (:mod:`neurosim.compiled.training`), which compiles both for ``dtype``."""
    from neurosim.compiled import training
    from neurosim.neurons import LIFParams
    from neurosim.surrogate import get_surrogate
    p = LIFParams()
    x, zero = torch.ones(2, 1, 2, dtype=dtype), torch.zeros(1, 2, dtype=dtype)
    done = training.forward_compiled(x, zero, zero, zero, 0.9, p.v_threshold, p.v_leak, p.v_reset, p.r, p, keep=True)
    if done is None:
        raise RuntimeError(f"the compiled LIF training kernel does not run here ({dtype})")
    H, S, F, _, _ = done
    training.backward_compiled(H, F, torch.ones_like(S), None, p.v_threshold, 0.9, 0.1, p.v_threshold - p.v_reset,
                               p.v_reset, p, get_surrogate("fast_sigmoid"), torch.empty_like(H))


if __name__ == "__main__":
    times = warm()
    print("neurosim compiled machine ready: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    sys.exit(0)
