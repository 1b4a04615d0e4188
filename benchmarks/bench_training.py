"""Workload 1, training: Bernoulli input [T, batch, n_in] -> Dense n_in x n_out (no bias) -> LIF,
forward + backward (loss = sum of output spikes) per iteration, in every library.

The same dynamics in every library (each in its own state convention), forward-Euler LIF with
a = 1 - dt/tau_mem, threshold v_th, reset to zero, input reaching the membrane in the same step::

    v[t] = a v[t-1] + (1 - a) I[t];   s[t] = H(v[t] - v_th);   v[t] <- v[t] (1 - s[t])

* neurosim: ``Graph.sequential(n_in, ("fc", Dense), ("lif", Population("lif", LIFParams(
  integration="euler", reset="zero"))))`` run by ``Simulator``;
* norse: ``torch.nn.Linear`` on all T at once, then ``norse.torch.LIF`` with tau_syn = dt, which
  empties the synaptic current within the step it arrives (norse adds the input to i, integrates
  v with it, then decays i by dt/tau_syn = 1), so it is the same current-free LIF; a second norse
  entry loops ``LIFBoxCell`` (norse's current-free LIF) over T;
* snnTorch: ``nn.Linear`` on all T, then ``snn.Leaky(beta=a, reset_mechanism="zero")`` looped over T;
  snnTorch adds the input unscaled (mem = beta mem + I), so its Linear holds (1 - a) W;
* SpikingJelly: ``layer.Linear`` + ``neuron.LIFNode(tau=tau_mem/dt, decay_input=True, v_reset=0)``,
  multi-step mode, ``functional.reset_net`` before each iteration;
* plain PyTorch: ``F.linear`` on all T, then a Python loop with a fast-sigmoid surrogate
  ``autograd.Function`` (the reference the smoke test compares neurosim with, spike for spike);
* floor: the forward matmul on [T*batch, n_in] plus the weight-gradient matmul, nothing else.

Surrogates are fast-sigmoid (SuperSpike) shaped in every library (the scale does not change the
cost). Run: ``python -m benchmarks.bench_training [--quick] [--repeats N] [--out file.json]``.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Case, Prepared, bench_main

WORKLOAD = "training"
TARGET = 1.0  # neurosim at least as fast as the fastest peer
INTERLEAVE = True  # --interleave allowed (all cases can share one process)


def defaults(quick: bool = False) -> dict:
    cfg = dict(T=100, batch=16, n_in=1024, n_out=1024, p_in=0.2,
               # weights N(w_mean, w_std): ~5 % spikes per step (50 Hz at dt = 1 ms), ~80 % of neurons active
               w_mean=0.005, w_std=0.1, tau_mem=10e-3, dt=1e-3, v_th=1.0, surrogate_scale=10.0,
               warmup=3, repeats=30, rounds=2)
    if quick:
        cfg.update(T=20, batch=4, n_in=256, n_out=256, w_mean=0.02, w_std=0.2, warmup=1, repeats=2, rounds=1)
    return cfg


def make_inputs(cfg):
    """The shared input spikes [T, batch, n_in] and weight [n_out, n_in] (same seed -> same tensors)."""
    g = torch.Generator().manual_seed(cfg["seed"])
    x = (torch.rand(cfg["T"], cfg["batch"], cfg["n_in"], generator=g) < cfg["p_in"]).float()
    w = torch.randn(cfg["n_out"], cfg["n_in"], generator=g) * cfg["w_std"] + cfg["w_mean"]
    return x, w


def decay(cfg):
    """Forward-Euler decay per step, a = 1 - dt/tau_mem, computed as neurosim does."""
    return 1.0 - cfg["dt"] / cfg["tau_mem"]


# ---------------------------------------------------------------------------- the models
# Each make_* returns (forward(x) -> spikes [T, batch, n_out], module holding the parameters).

def make_neurosim(w, cfg):
    import neurosim as ns
    params = ns.LIFParams(tau_mem=cfg["tau_mem"], v_threshold=cfg["v_th"], v_leak=0.0, v_reset=0.0,
                          integration="euler", reset="zero")
    graph = ns.Graph.sequential(w.shape[1], ("fc", ns.Dense(w.shape[1], w.shape[0], weight=w)),
                                ("lif", ns.Population("lif", w.shape[0], params, surrogate="fast_sigmoid",
                                                      surrogate_scale=cfg["surrogate_scale"])))
    sim = ns.Simulator(graph, dt=cfg["dt"])
    return (lambda x: sim.run(x).output), sim


class FastSigmoidSpike(torch.autograd.Function):
    """H(x) forward; k / (2 (1 + k|x|)^2) backward."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        k = ctx.k
        return grad * (0.5 * k / (1.0 + k * x.abs()) ** 2), None


def lif_loop(current, cfg, spike=None):
    """The plain-PyTorch LIF over a precomputed current [T, batch, n]; same operations as neurosim."""
    a = decay(cfg)
    b = 1.0 - a
    v_th, k = cfg["v_th"], cfg["surrogate_scale"]
    grad = torch.is_grad_enabled() and current.requires_grad
    v = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        v = v * a + b * current[t]
        s = FastSigmoidSpike.apply(v - v_th, k) if grad else (v - v_th > 0).to(v.dtype)
        v = v * (1.0 - s)
        out.append(s)
    return torch.stack(out)


def make_torch(w, cfg):
    fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        fc.weight.copy_(w)
    return (lambda x: lif_loop(F.linear(x, fc.weight), cfg)), fc


def make_norse(w, cfg):
    import norse.torch as norse
    fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        fc.weight.copy_(w)
    p = norse.LIFParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg["dt"]),
                            tau_mem_inv=torch.as_tensor(1.0 / cfg["tau_mem"]),
                            v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(cfg["v_th"]),
                            v_reset=torch.as_tensor(0.0), method="super",
                            alpha=torch.as_tensor(cfg["surrogate_scale"]))
    lif = norse.LIF(p, dt=cfg["dt"])
    model = nn.Sequential(fc, lif)

    def forward(x):
        z, _ = lif(fc(x))
        return z
    return forward, model


def make_norse_box(w, cfg):
    import norse.torch as norse
    fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        fc.weight.copy_(w)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / cfg["tau_mem"]), v_leak=torch.as_tensor(0.0),
                               v_th=torch.as_tensor(cfg["v_th"]), v_reset=torch.as_tensor(0.0),
                               method="super", alpha=torch.as_tensor(cfg["surrogate_scale"]))
    cell = norse.LIFBoxCell(p, dt=cfg["dt"])
    model = nn.Sequential(fc, cell)

    def forward(x):
        current = fc(x)
        state, out = None, []
        for t in range(current.shape[0]):
            z, state = cell(current[t], state)
            out.append(z)
        return torch.stack(out)
    return forward, model


def make_snntorch(w, cfg):
    import snntorch as snn
    from snntorch import surrogate
    a = decay(cfg)
    fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        fc.weight.copy_(w * (1.0 - a))  # snnTorch: mem = beta mem + I (input not scaled by 1 - beta)
    lif = snn.Leaky(beta=a, threshold=cfg["v_th"], reset_mechanism="zero",
                    spike_grad=surrogate.fast_sigmoid(slope=cfg["surrogate_scale"]))
    model = nn.Sequential(fc, lif)

    def forward(x):
        current = fc(x)
        mem = lif.reset_mem()
        out = []
        for t in range(current.shape[0]):
            spk, mem = lif(current[t], mem)
            out.append(spk)
        return torch.stack(out)
    return forward, model


def make_spikingjelly(w, cfg):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    kwargs = dict(tau=float(cfg["tau_mem"] / cfg["dt"]), decay_input=True, v_threshold=cfg["v_th"],
                  v_reset=0.0, surrogate_function=surrogate.SoftSign(alpha=cfg["surrogate_scale"]),
                  step_mode="m")
    if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:  # older SpikingJelly
        kwargs["backend"] = "torch"
    model = nn.Sequential(layer.Linear(w.shape[1], w.shape[0], bias=False, step_mode="m"),
                          neuron.LIFNode(**kwargs))
    with torch.no_grad():
        model[0].weight.copy_(w)

    def forward(x):
        functional.reset_net(model)
        return model(x)
    return forward, model


# ---------------------------------------------------------------------------- cases
def training_case(make, inputs=None):
    """A timed case: forward + backward of the sum of output spikes of ``make(*weights, cfg)``,
    on ``inputs(cfg) -> (x, *weights)`` (this workload's :func:`make_inputs` by default)."""
    def build(cfg, meter):
        x, *weights = (inputs or make_inputs)(cfg)
        meter.start()
        forward, module = make(*weights, cfg)
        params = [p for p in module.parameters() if p.requires_grad]
        last = {}

        def run():
            for p in params:
                p.grad = None
            out = forward(x)
            out.sum().backward()
            last["out"] = out

        def info():
            out = last["out"].detach()
            return {"spike_prob": float(out.mean()), "spikes": float(out.sum()),
                    "rate_hz": float(out.mean()) / cfg["dt"]}
        return Prepared(run=run, info=info)
    return build


def _floor_build(cfg, meter):
    x, w = make_inputs(cfg)
    x2d = x.reshape(-1, x.shape[-1])
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    grad_out = torch.randn(x2d.shape[0], w.shape[0], generator=g)
    meter.start()

    def run():
        y = F.linear(x2d, w)                 # forward [T*batch, n_in] x [n_in, n_out]
        gw = torch.mm(grad_out.t(), x2d)     # weight gradient [n_out, T*batch] x [T*batch, n_in]
        return y, gw
    return Prepared(run=run, info=lambda: {"note": "2 matmuls only"})


CASES = {
    "neurosim": Case("neurosim", training_case(make_neurosim), "neurosim"),
    "norse": Case("peer", training_case(make_norse), "norse LIF", "nn.Linear on all T + norse.torch.LIF"),
    "norse_box": Case("peer", training_case(make_norse_box), "norse LIFBoxCell loop"),
    "snntorch": Case("peer", training_case(make_snntorch), "snnTorch Leaky"),
    "spikingjelly": Case("peer", training_case(make_spikingjelly), "SpikingJelly LIFNode (m)"),
    "torch": Case("reference", training_case(make_torch), "plain PyTorch loop"),
    "floor": Case("floor", _floor_build, "matmul floor"),
}


if __name__ == "__main__":
    bench_main("benchmarks.bench_training")
