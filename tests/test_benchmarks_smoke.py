"""The benchmarks compare the same computation: at tiny sizes, each workload's neurosim model gives
exactly the spikes of the hand-written PyTorch reference, its event-driven and dense paths agree,
and the peer libraries give exactly the same spike trains.

Spike trains are compared exactly, in configurations where equality is provable (the first
three) or the same equations run in float64 (the last):

* neurosim and the plain-PyTorch references do the same float32 operations in the same order
  (the benchmark's own configuration);
* dense and event-driven propagation sum the same weights in another order, so the weights are
  put on a grid of 2^-6 (every current is then an exact float32 sum, in any order);
* peer libraries write the LIF update in other algebraic forms (snnTorch ``beta mem + I`` with
  (1 - a) W, SpikingJelly ``v + (x - v) / tau``). :func:`exact_peer_config` makes all of their
  arithmetic exact: float64, tau_mem = 2 dt (a = 1/2), weights on a grid of 2^-2 and T = 20, so
  every v is a multiple of 2^-22 below 2^8 (30 bits) and equal in every library; the threshold
  fl32(0.7) has its lowest bit at 2^-24, so no v ever equals it (SpikingJelly fires on v >= v_th,
  neurosim and snnTorch on v > v_th);
* Brian2 (COBA) runs in float64, and so does neurosim for that comparison: the same Euler
  equations, rounded in another order (~1e-16 relative; the trains are measured equal, which a
  v within that distance of threshold, grown by the network's chaos, could in principle break).

Every comparison also asserts that the trains are neither empty nor saturated.
Nothing is timed here and nothing runs in a subprocess."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_coba, bench_simulation, bench_training  # noqa: E402
from benchmarks.common import add_ratios, format_table, summarize, write_json_atomic  # noqa: E402

F64 = torch.float64


def tiny(module, **overrides):
    cfg = module.defaults(quick=True)
    cfg.update(seed=0, **overrides)
    return cfg


def on_grid(w, bits):
    """``w`` rounded to the nearest multiple of 2^-bits."""
    return torch.round(w * 2.0 ** bits) / 2.0 ** bits


def exact_peer_config(**overrides):
    """A training-benchmark configuration in which every library's LIF arithmetic is exact (see
    the module docstring): 64 inputs, 20 steps, tau_mem = 2 dt, threshold fl32(0.7)."""
    settings = dict(T=20, batch=2, n_in=64, n_out=48, p_in=0.3, w_mean=0.0, w_std=0.5,
                    tau_mem=2e-3, dt=1e-3, v_th=float(np.float32(0.7)))
    cfg = tiny(bench_training, **{**settings, **overrides})
    assert bench_training.decay(cfg) == 0.5
    return cfg


def exact_peer_inputs(cfg):
    """Input spikes and weights (on a grid of 2^-2, |w| <= 2) as float64."""
    x, w = bench_training.make_inputs(cfg)
    w = on_grid(w, 2).clamp(-2.0, 2.0)
    assert x.sum(-1).max() * 2.0 < 2.0 ** 8              # |current| <= active inputs x max|w| < 2^8
    return x.to(F64), w


def run_double(make, w, x, cfg):
    """Build with ``make(w, cfg)``, convert the module to float64 and run on ``x`` (float64)."""
    forward, module = make(w, cfg)
    module.double()
    with torch.no_grad():
        return forward(x)


def assert_meaningful(spikes):
    """The trains must have spikes (> 5 % of the entries) without saturating (< 50 %)."""
    rate = float(spikes.mean())
    assert 0.05 < rate < 0.5, f"spike fraction {rate:.3f}: too few or too many for the comparison to mean something"


def weight_grad(module):
    return next(p for p in module.parameters() if p.requires_grad).grad


def test_training_neurosim_equals_plain_torch():
    cfg = tiny(bench_training, T=20, batch=2, n_in=64, n_out=48, p_in=0.3, w_mean=0.1, w_std=0.3)
    x, w = bench_training.make_inputs(cfg)
    out, grad = {}, {}
    for name in ("neurosim", "torch"):
        forward, module = getattr(bench_training, f"make_{name}")(w, cfg)
        y = forward(x)
        y.sum().backward()
        out[name], grad[name] = y.detach(), weight_grad(module)
    assert_meaningful(out["neurosim"])
    assert torch.equal(out["neurosim"], out["torch"])
    torch.testing.assert_close(grad["neurosim"], grad["torch"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("peer", ["snntorch", "spikingjelly"])
def test_peer_libraries_give_exactly_the_same_spikes(peer):
    pytest.importorskip(peer)
    cfg = exact_peer_config()
    x, w = exact_peer_inputs(cfg)
    spikes = run_double(bench_training.make_neurosim, w, x, cfg)
    assert spikes.dtype == F64
    assert_meaningful(spikes)
    assert torch.equal(spikes, run_double(bench_training.make_torch, w, x, cfg))
    assert torch.equal(run_double(getattr(bench_training, f"make_{peer}"), w, x, cfg), spikes)


def test_simulation_benchmark_takes_the_event_path():
    """At the benchmark's (quick) size, neurosim's Dense picks the event-driven path by itself."""
    cfg = tiny(bench_simulation)
    x, w = bench_training.make_inputs(cfg)
    _, sim = bench_training.make_neurosim(w, cfg)
    with torch.no_grad():
        assert sim.graph.nodes["fc"].use_event_path(x.reshape(-1, cfg["n_in"])), \
            "the simulation benchmark must exercise neurosim's event-driven path"


def test_simulation_event_path_equals_dense_path_and_plain_torch():
    """A tiny network (where the automatic choice may differ), both paths forced."""
    cfg = tiny(bench_simulation, T=30, batch=1, n_in=128, n_out=64, p_in=0.03, w_mean=0.3, w_std=0.5)
    x, w = bench_training.make_inputs(cfg)
    w = on_grid(w, 6)                     # currents exact in float32 in any summation order
    out = {}
    for event_driven in (True, False):
        forward, sim = bench_training.make_neurosim(w, cfg)
        fc = sim.graph.nodes["fc"]
        fc.event_driven = event_driven
        with torch.no_grad():
            assert fc.use_event_path(x.reshape(-1, cfg["n_in"])) is event_driven
            out[event_driven] = forward(x)
    with torch.no_grad():
        event = bench_simulation.make_torch_event(w, cfg)[0](x)
        dense = bench_training.make_torch(w, cfg)[0](x)
    spikes = out[True]
    assert_meaningful(spikes)
    assert torch.equal(spikes, out[False])
    assert torch.equal(spikes, event)
    assert torch.equal(spikes, dense)


def coba_float64_neurosim(cfg, net):
    """The COBA simulator of the benchmark in float64, from the float64 initial values of ``net``
    (``make_neurosim`` stores them in float32)."""
    sim, state, ext = bench_coba.make_neurosim(cfg, net)
    sim.double()
    ge, gi = bench_coba.initial_conductances(cfg, net)
    rows = {k: torch.from_numpy(a).reshape(1, -1) for k, a in (("v", net["v"]), ("g_exc", ge), ("g_inh", gi))}
    nodes = dict(state.nodes)
    neurons = type(nodes["neurons"])(*(f.to(F64) for f in nodes["neurons"]))
    nodes["neurons"] = neurons._replace(**rows)
    previous = {k: v.to(F64) for k, v in state.previous.items()}
    return sim, type(state)(nodes, previous), ext.to(F64)


def test_coba_neurosim_equals_plain_torch_and_brian2():
    """80 neurons for 100 ms; dyadic weights, so that sums of synaptic increments are exact in any
    order (we = 1 keeps the activity self-sustained over the whole run)."""
    cfg = tiny(bench_coba, n_exc=64, n_inh=16, p_connect=0.1, duration=0.1, we=1.0, wi=4.0)
    n = cfg["n_exc"] + cfg["n_inh"]
    net = bench_coba.make_network(cfg)
    sim, state, ext = bench_coba.make_neurosim(cfg, net)
    spikes = torch.cat(bench_coba.run_neurosim(sim, state, ext, cfg["n_exc"]), 1)
    ref = bench_coba.torch_reference_loop(cfg, *bench_coba.make_torch_reference(cfg, net))
    # the rate is capped by the 5 ms refractory period (2 % of the steps), so count spikes instead
    assert spikes.sum() >= 200 and (spikes.sum(0) > 0).float().mean() > 0.5, \
        "the tiny COBA network must stay active, in most of its neurons"
    assert spikes[-100:].sum() > 0, "the activity must last to the end of the run"
    assert torch.equal(spikes, ref)

    b2 = pytest.importorskip("brian2")
    saved = b2.prefs.codegen.target, b2.defaultclock.dt    # make_brian2 sets both globally
    try:
        network, mon = bench_coba.make_brian2(cfg, net, "numpy")
        network.run(cfg["duration"] * b2.second)
    finally:
        b2.prefs.codegen.target, b2.defaultclock.dt = saved
    steps = torch.as_tensor((mon.t / b2.second / cfg["dt"]).round().astype("int64"))
    brian = torch.zeros(spikes.shape, dtype=F64)
    brian[steps, torch.as_tensor(mon.i[:].astype("int64"))] = 1.0
    spikes64 = torch.cat(bench_coba.run_neurosim(*coba_float64_neurosim(cfg, net), cfg["n_exc"]), 1)
    assert spikes64.dtype == F64 and spikes64.shape == (bench_coba.steps(cfg), n)
    assert torch.equal(spikes64, brian)                    # same equations, both in float64


def test_harness_ratios_table_and_atomic_json(tmp_path):
    rows = [dict(workload="w", library=n, label=n, kind=k, note="", error=None, info={},
                 times_s=t, **summarize(t), peak_rss_increase_mib=1.0, cpu_util=1.0)
            for n, k, t in (("neurosim", "neurosim", [1.0, 1.0]), ("a", "peer", [2.0, 2.0]),
                            ("b", "peer", [4.0, 4.0]))]
    add_ratios(rows)
    assert [r["ratio_to_neurosim"] for r in rows] == [1.0, 2.0, 4.0]
    assert [r["ratio_to_fastest_peer"] for r in rows] == [0.5, 1.0, 2.0]
    assert "neurosim" in format_table(rows)
    path = tmp_path / "out.json"
    write_json_atomic(path, {"results": rows})
    assert path.read_text().startswith("{") and not list(tmp_path.glob(".*.tmp"))
