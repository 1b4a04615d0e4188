"""Workload 2, simulation (inference, no gradients): sparse Bernoulli input [T, batch, n_in]
(p_in = 0.01) -> Dense n_in x n_out -> LIF, under ``torch.no_grad()`` in every library.

Same LIF dynamics and library set-ups as :mod:`benchmarks.bench_training` (forward-Euler LIF,
reset to zero, input in the same step), without the backward pass:

* neurosim: ``Simulator.run`` with the default ``backend="auto"``: the LIF population (a block
  with its own time loop) runs on the compiled loop (``neurosim/compiled``), and its ``Dense``
  (no loop) on the compiled whole-sequence gather (``neurosim/compiled/sequence_kernels.py``):
  the Dense's cost model picks the event-driven path by itself at inference (here 1 % density
  over T x batch = 1000 rows, far below its ~10 % crossover), and only the weight rows of active
  inputs are summed, each read once per column tile;
* norse (``LIF`` and a ``LIFBoxCell`` loop), snnTorch, SpikingJelly: ``Linear`` on all T at once
  (their idiomatic path: one dense matmul), then the neuron over T;
* plain PyTorch, dense: ``F.linear`` on all T, then the LIF loop;
* plain PyTorch, event-driven: per step the indices of the active inputs, the sum of those rows
  of the transposed weight (``index_select`` + ``index_add_``), then the LIF step;
* floor: the event-driven propagation of the whole sequence alone (``F.embedding_bag`` over the
  active inputs of all T), no neuron.

Brian2 is not run here (the brief leaves it optional for this workload; it is the COBA peer).
Run: ``python -m benchmarks.bench_simulation [--quick] [--repeats N] [--out file.json]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.bench_training import (decay, make_inputs, make_neurosim, make_norse, make_norse_box,
                                       make_snntorch, make_spikingjelly, make_torch)
from benchmarks.common import Case, Prepared, bench_main

WORKLOAD = "simulation"
TARGET = 8.0  # neurosim at least 8x the speed of the fastest peer (issue 9; 3x before it)
INTERLEAVE = True


def defaults(quick: bool = False) -> dict:
    cfg = dict(T=1000, batch=1, n_in=4096, n_out=4096, p_in=0.01,
               # ~41 active inputs per step; N(0.02, 0.3) weights give ~4 % spikes per step (40 Hz)
               w_mean=0.02, w_std=0.3, tau_mem=10e-3, dt=1e-3, v_th=1.0, surrogate_scale=10.0,
               warmup=2, repeats=16, rounds=2)
    if quick:
        cfg.update(T=100, n_in=1024, n_out=1024, p_in=0.02, warmup=1, repeats=2, rounds=1)
    return cfg


def event_loop(x, w_t, cfg):
    """Plain-PyTorch event-driven simulation: per step, the rows of ``w_t [n_in, n_out]`` of the
    active inputs are summed into the current, then one LIF step (same arithmetic as lif_loop)."""
    a = decay(cfg)
    b = 1.0 - a
    v_th = cfg["v_th"]
    steps, batch = x.shape[:2]
    v = torch.zeros(batch, w_t.shape[1])
    out = torch.empty(steps, batch, w_t.shape[1])
    for t in range(steps):
        rows, cols = x[t].nonzero(as_tuple=True)
        current = torch.zeros(batch, w_t.shape[1]).index_add_(0, rows, w_t.index_select(0, cols))
        v = v * a + b * current
        s = (v - v_th > 0).to(v.dtype)
        v = v * (1.0 - s)
        out[t] = s
    return out


def make_torch_event(w, cfg):
    w_t = w.t().contiguous()
    return (lambda x: event_loop(x, w_t, cfg)), None


def _simulation_case(make):
    def build(cfg, meter):
        x, w = make_inputs(cfg)
        meter.start()
        forward, _ = make(w, cfg)
        last = {}

        def run():
            with torch.no_grad():
                last["out"] = forward(x)

        def info():
            out = last["out"]
            return {"spike_prob": float(out.float().mean()), "spikes": float(out.sum()),
                    "rate_hz": float(out.float().mean()) / cfg["dt"]}
        return Prepared(run=run, info=info)
    return build


def _floor_build(cfg, meter):
    from neurosim.projections.dense import event_driven_linear
    x, w = make_inputs(cfg)
    x2d = x.reshape(-1, x.shape[-1])
    meter.start()
    w_t = w.t().contiguous()

    def run():
        with torch.no_grad():
            return event_driven_linear(x2d, w_t)
    return Prepared(run=run, info=lambda: {"note": "event gather of all T, no neuron"})


CASES = {
    "neurosim": Case("neurosim", _simulation_case(make_neurosim), "neurosim"),
    "norse": Case("peer", _simulation_case(make_norse), "norse LIF"),
    "norse_box": Case("peer", _simulation_case(make_norse_box), "norse LIFBoxCell loop"),
    "snntorch": Case("peer", _simulation_case(make_snntorch), "snnTorch Leaky"),
    "spikingjelly": Case("peer", _simulation_case(make_spikingjelly), "SpikingJelly LIFNode (m)"),
    "torch": Case("reference", _simulation_case(make_torch), "plain PyTorch dense"),
    "torch_event": Case("reference", _simulation_case(make_torch_event), "plain PyTorch event loop"),
    "floor": Case("floor", _floor_build, "event gather floor"),
}


if __name__ == "__main__":
    bench_main("benchmarks.bench_simulation")
