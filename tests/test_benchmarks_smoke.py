"""The benchmarks compare the same computation: at tiny sizes, each workload's neurosim model gives
exactly the spikes of the hand-written PyTorch reference, and one peer library agrees.

Nothing is timed here; the whole file runs in a few seconds (no subprocesses)."""
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_coba, bench_simulation, bench_training  # noqa: E402
from benchmarks.common import add_ratios, format_table, summarize, write_json_atomic  # noqa: E402


def tiny(module, **overrides):
    cfg = module.defaults(quick=True)
    cfg.update(seed=0, **overrides)
    return cfg


def weight_grad(module):
    return next(p for p in module.parameters() if p.requires_grad).grad


def test_training_neurosim_equals_plain_torch_and_snntorch_agrees():
    pytest.importorskip("snntorch")
    cfg = tiny(bench_training, T=20, batch=2, n_in=64, n_out=48, p_in=0.3, w_mean=0.05, w_std=0.3)
    x, w = bench_training.make_inputs(cfg)
    out, grad = {}, {}
    for name in ("neurosim", "torch", "snntorch"):
        forward, module = getattr(bench_training, f"make_{name}")(w, cfg)
        y = forward(x)
        y.sum().backward()
        out[name], grad[name] = y.detach(), weight_grad(module)
    spikes = out["neurosim"]
    assert 0 < spikes.sum() < 0.5 * spikes.numel(), "the tiny network must spike, but not saturate"
    assert torch.equal(spikes, out["torch"])
    torch.testing.assert_close(grad["neurosim"], grad["torch"], rtol=1e-4, atol=1e-5)
    assert (out["snntorch"] == spikes).float().mean() >= 0.99


def test_simulation_neurosim_event_path_equals_plain_torch_and_spikingjelly_agrees():
    pytest.importorskip("spikingjelly")
    cfg = tiny(bench_simulation, T=30, batch=1, n_in=128, n_out=64, p_in=0.03, w_mean=0.3, w_std=0.5)
    x, w = bench_training.make_inputs(cfg)
    forward, sim = bench_training.make_neurosim(w, cfg)
    with torch.no_grad():
        assert sim.graph.nodes["fc"].use_event_path(x.reshape(-1, cfg["n_in"])), \
            "the simulation benchmark must exercise neurosim's event-driven path"
        spikes = forward(x)
        event = bench_simulation.make_torch_event(w, cfg)[0](x)
        dense = bench_training.make_torch(w, cfg)[0](x)
        peer = bench_training.make_spikingjelly(w, cfg)[0](x)
    assert 0 < spikes.sum() < 0.5 * spikes.numel()
    assert torch.equal(spikes, event)
    assert (dense == spikes).float().mean() >= 0.99     # dense sums in another order
    assert (peer == spikes).float().mean() >= 0.99


def test_coba_neurosim_equals_plain_torch_and_brian2_agrees():
    # dyadic weights: sums of synaptic increments are exact in any order
    cfg = tiny(bench_coba, n_exc=64, n_inh=16, p_connect=0.1, duration=0.03, we=0.5, wi=4.0)
    net = bench_coba.make_network(cfg)
    sim, state, ext = bench_coba.make_neurosim(cfg, net)
    exc, inh = bench_coba.run_neurosim(sim, state, ext, cfg["n_exc"])
    spikes = torch.cat([exc, inh], 1)
    ref = bench_coba.torch_reference_loop(cfg, *bench_coba.make_torch_reference(cfg, net))
    assert spikes.sum() >= 10, "the tiny COBA network must spike"
    assert torch.equal(spikes, ref)

    b2 = pytest.importorskip("brian2")
    saved = b2.prefs.codegen.target, b2.defaultclock.dt    # make_brian2 sets both globally
    try:
        network, mon = bench_coba.make_brian2(cfg, net, "numpy")
        network.run(cfg["duration"] * b2.second)
    finally:
        b2.prefs.codegen.target, b2.defaultclock.dt = saved
    steps = torch.as_tensor((mon.t / b2.second / cfg["dt"]).round().astype("int64"))
    brian = torch.zeros_like(spikes)
    brian[steps, torch.as_tensor(mon.i[:].astype("int64"))] = 1.0
    # same spikes up to float32 (neurosim) vs float64 (Brian2) rounding
    assert (brian * spikes).sum() >= 0.9 * max(spikes.sum(), brian.sum())


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
