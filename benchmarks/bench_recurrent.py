"""Workload 4, recurrent training: Bernoulli input [T, batch, n] -> Dense n x n (no bias) -> LIF,
with a recurrent Dense n x n read through a back-edge (the LIF's spikes of the previous step);
forward + backward (loss = sum of output spikes) per iteration, in every library.

The dynamics (forward-Euler LIF as in ``bench_training.py``; ``s[-1] = 0``)::

    I[t] = W_in x[t] + W_rec s[t-1]
    v[t] = a v[t-1] + (1 - a) I[t];   s[t] = H(v[t] - v_th);   v[t] <- v[t] (1 - s[t])

* neurosim: ``x -> fc -> lif``, ``lif ~> rec -> lif`` (a back-edge), run by ``Simulator``: fc runs
  once over all T, the lif/rec loop step by step;
* norse: ``norse.torch.LIFRecurrent`` (its own recurrent layer: input and recurrent weights,
  ``autapses=True``) with tau_syn = dt, which empties the current within the step it arrives
  (norse adds ``W_in x[t] + W_rec z[t-1]`` to i, integrates v with it, then decays i by
  dt/tau_syn = 1): the same current-free LIF;
* snnTorch: ``nn.Linear`` on all T, then ``snn.RLeaky(beta=a, linear_features=n,
  reset_mechanism="zero", reset_delay=False)`` looped over T (with the default delayed reset, the
  input of the step after a spike would be lost, as ``Leaky`` does in ``bench_training.py``);
  snnTorch adds its inputs unscaled
  (mem = beta mem + I + V(spk)), so both Linear layers hold (1 - a) W and the recurrent bias is 0;
* SpikingJelly: ``layer.LinearRecurrentContainer(LIFNode, n, n, bias=False)`` in multi-step mode
  (its own recurrent wrapper: ``i[t] = [x[t], y[t-1]] [W_in, W_rec]^T``, one matmul per step), with
  ``functional.reset_net`` before each iteration;
* plain PyTorch: ``F.linear`` on all T, then a Python loop with the recurrent ``F.linear`` and the
  fast-sigmoid surrogate of ``bench_training.py``.

Every library gets the same input and weights (one seed) and reports its spike count (notes
column): they compute the same network (the smoke test checks spike for spike against the plain
loop at a small size). Target: neurosim no slower than the fastest peer.
Run: ``python -m benchmarks.bench_recurrent [--quick] [--repeats N] [--out file.json]``.
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

from benchmarks.bench_training import FastSigmoidSpike, decay, training_case
from benchmarks.common import Case, bench_main

WORKLOAD = "recurrent"
TARGET = 1.0  # neurosim at least as fast as the fastest peer
INTERLEAVE = True


def defaults(quick: bool = False) -> dict:
    cfg = dict(T=500, batch=16, n=512, p_in=0.2,
               # about 1.5 % spikes per neuron and step (63,147 spikes in all at the full size)
               w_mean=0.005, w_std=0.1, w_rec_std=0.05, tau_mem=10e-3, dt=1e-3, v_th=1.0,
               surrogate_scale=10.0, warmup=2, repeats=10, rounds=2)
    if quick:
        cfg.update(T=30, batch=4, n=128, w_mean=0.02, w_std=0.2, w_rec_std=0.1, warmup=1, repeats=2, rounds=1)
    return cfg


def make_inputs(cfg):
    """Shared input spikes [T, batch, n], input weight [n, n] and recurrent weight [n, n]."""
    g = torch.Generator().manual_seed(cfg["seed"])
    n = cfg["n"]
    x = (torch.rand(cfg["T"], cfg["batch"], n, generator=g) < cfg["p_in"]).float()
    w_in = torch.randn(n, n, generator=g) * cfg["w_std"] + cfg["w_mean"]
    w_rec = torch.randn(n, n, generator=g) * cfg["w_rec_std"]
    return x, w_in, w_rec


def _linear(w, scale=1.0, bias=False):
    fc = nn.Linear(w.shape[1], w.shape[0], bias=bias)
    with torch.no_grad():
        fc.weight.copy_(w * scale)
        if bias:
            fc.bias.zero_()
    return fc


# ---------------------------------------------------------------------------- the models
# Each make_* returns (forward(x) -> spikes [T, batch, n], module holding the parameters).

def make_neurosim(w_in, w_rec, cfg):
    import neurosim as ns
    n = w_in.shape[0]
    params = ns.LIFParams(tau_mem=cfg["tau_mem"], v_threshold=cfg["v_th"], v_leak=0.0, v_reset=0.0,
                          integration="euler", reset="zero")
    g = ns.Graph().add_input("x", n)
    g.add("fc", ns.Dense(n, n, weight=w_in))
    g.add("lif", ns.Population("lif", n, params, surrogate="fast_sigmoid", surrogate_scale=cfg["surrogate_scale"]))
    g.add("rec", ns.Dense(n, n, weight=w_rec))
    g.chain("x", "fc", "lif")
    g.connect("lif", "rec", back=True).connect("rec", "lif")
    sim = ns.Simulator(g, dt=cfg["dt"])
    return (lambda x: sim.run(x).output), sim


def make_torch(w_in, w_rec, cfg):
    fc, rec = _linear(w_in), _linear(w_rec)
    a = decay(cfg)
    b, v_th, k = 1.0 - a, cfg["v_th"], cfg["surrogate_scale"]

    def forward(x):
        current = F.linear(x, fc.weight)
        grad = torch.is_grad_enabled()
        v = torch.zeros_like(current[0])
        s = torch.zeros_like(v)
        out = []
        for i_t in current.unbind(0):
            v = v * a + b * (i_t + F.linear(s, rec.weight))
            s = FastSigmoidSpike.apply(v - v_th, k) if grad else (v - v_th > 0).to(v.dtype)
            v = v * (1.0 - s)
            out.append(s)
        return torch.stack(out)
    return forward, nn.ModuleList([fc, rec])


def make_norse(w_in, w_rec, cfg):
    import norse.torch as norse
    p = norse.LIFParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg["dt"]),
                            tau_mem_inv=torch.as_tensor(1.0 / cfg["tau_mem"]),
                            v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(cfg["v_th"]),
                            v_reset=torch.as_tensor(0.0), method="super",
                            alpha=torch.as_tensor(cfg["surrogate_scale"]))
    n = w_in.shape[0]
    layer = norse.LIFRecurrent(n, n, p, dt=cfg["dt"], autapses=True,
                               input_weights=nn.Parameter(w_in.clone()),
                               recurrent_weights=nn.Parameter(w_rec.clone()))

    def forward(x):
        z, _ = layer(x)
        return z
    return forward, layer


def make_snntorch(w_in, w_rec, cfg):
    import snntorch as snn
    from snntorch import surrogate
    a = decay(cfg)
    fc = _linear(w_in, 1.0 - a)  # snnTorch: mem = beta mem + I + V(spk), inputs not scaled by 1 - beta
    lif = snn.RLeaky(beta=a, threshold=cfg["v_th"], reset_mechanism="zero", reset_delay=False,
                     all_to_all=True,
                     linear_features=w_in.shape[0],
                     spike_grad=surrogate.fast_sigmoid(slope=cfg["surrogate_scale"]))
    with torch.no_grad():
        lif.recurrent.weight.copy_(w_rec * (1.0 - a))
        lif.recurrent.bias.zero_()
    model = nn.ModuleList([fc, lif])

    def forward(x):
        current = fc(x)
        spk, mem = lif.reset_mem()
        out = []
        for i_t in current.unbind(0):
            spk, mem = lif(i_t, spk, mem)
            out.append(spk)
        return torch.stack(out)
    return forward, model


def make_spikingjelly(w_in, w_rec, cfg):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    kwargs = dict(tau=float(cfg["tau_mem"] / cfg["dt"]), decay_input=True, v_threshold=cfg["v_th"],
                  v_reset=0.0, surrogate_function=surrogate.SoftSign(alpha=cfg["surrogate_scale"]),
                  step_mode="s")
    if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:  # older SpikingJelly
        kwargs["backend"] = "torch"
    n = w_in.shape[0]
    model = layer.LinearRecurrentContainer(neuron.LIFNode(**kwargs), n, n, bias=False, step_mode="m")
    with torch.no_grad():
        model.rc.weight.copy_(torch.cat([w_in, w_rec], 1))   # i[t] = [x[t], y[t-1]] W^T

    def forward(x):
        functional.reset_net(model)
        return model(x)
    return forward, model


# ---------------------------------------------------------------------------- cases
CASES = {
    "neurosim": Case("neurosim", training_case(make_neurosim, make_inputs), "neurosim"),
    "norse": Case("peer", training_case(make_norse, make_inputs), "norse LIFRecurrent"),
    "snntorch": Case("peer", training_case(make_snntorch, make_inputs), "snnTorch RLeaky"),
    "spikingjelly": Case("peer", training_case(make_spikingjelly, make_inputs), "SpikingJelly LinearRecurrentContainer"),
    "torch": Case("reference", training_case(make_torch, make_inputs), "plain PyTorch loop"),
}


if __name__ == "__main__":
    bench_main("benchmarks.bench_recurrent")
