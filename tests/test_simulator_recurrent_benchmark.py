"""The recurrent-training benchmark compares the same network in every library: at a small size,
neurosim gives exactly the spikes of the plain-PyTorch loop and the same weight gradients, and
norse, snnTorch and SpikingJelly give the same spikes. Nothing is timed."""
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_recurrent  # noqa: E402


def small_config():
    cfg = bench_recurrent.defaults(quick=True)
    cfg.update(seed=0, T=25, batch=2, n=64, w_mean=0.05, w_std=0.3, w_rec_std=0.2)
    return cfg


def run(name, cfg):
    x, w_in, w_rec = bench_recurrent.make_inputs(cfg)
    forward, module = getattr(bench_recurrent, f"make_{name}")(w_in, w_rec, cfg)
    y = forward(x)
    y.sum().backward()
    return y.detach(), [p.grad for p in module.parameters() if p.requires_grad]


def test_neurosim_equals_the_plain_loop_spike_for_spike_with_the_same_gradients():
    cfg = small_config()
    spikes, grads = run("neurosim", cfg)
    ref, ref_grads = run("torch", cfg)
    assert 0 < spikes.sum() < 0.5 * spikes.numel(), "the network must spike, but not saturate"
    assert torch.equal(spikes, ref)
    assert len(grads) == len(ref_grads) == 2          # input and recurrent weights
    for g, r in zip(grads, ref_grads):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("peer", ["norse", "snntorch", "spikingjelly"])
def test_peer_libraries_compute_the_same_spikes(peer):
    pytest.importorskip(peer)
    cfg = small_config()
    spikes, _ = run("neurosim", cfg)
    theirs, grads = run(peer, cfg)
    assert theirs.shape == spikes.shape
    assert (theirs == spikes).float().mean() >= 0.99   # their sums may round in another order
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
