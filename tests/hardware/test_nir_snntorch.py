"""NIR files written by snnTorch 1.0.0 (``snntorch.export_to_nir``) import with
``convention="snntorch"`` and reproduce snnTorch's own spikes, spike for spike: Leaky (its default
delayed subtract reset and reset_mechanism="zero"), Synaptic, RLeaky, and a conv network; from
the graph in memory and from the file read back with ``nir.read``."""

import nir
import pytest
import torch

snn = pytest.importorskip("snntorch")
from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402

import neurosim as ns  # noqa: E402
from neurosim.hardware.nir import from_nir  # noqa: E402

STEPS, BATCH = 80, 3


def run_snntorch(net, x):
    """snnTorch's own time loop over ``x [T, batch, ...]``: the last layer's spikes ``[T, batch, ...]``."""
    snn_utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(x[t]) for t in range(x.shape[0])])


def export(net, sample, tmp_path):
    """The graph as exported, and the same graph written to disk and read back."""
    graph = export_to_nir(net, sample, ignore_dims=[0])
    path = tmp_path / "snntorch.nir"
    nir.write(str(path), graph)
    return graph, nir.read(str(path))


def vec(n, value):
    return torch.full((n,), float(value))


def check(net, x, tmp_path, reset=None, min_spikes=20):
    expected = run_snntorch(net, x)
    assert int(expected.sum()) >= min_spikes                 # a non-trivial number of spikes
    assert int(expected.sum()) < expected.numel() // 2
    for graph in export(net, x[0], tmp_path):
        with pytest.warns(UserWarning, match="snntorch"):
            sim = from_nir(graph, convention="snntorch", reset=reset)
        assert sim.dt == 1e-4
        got = sim.run(x).output
        assert torch.equal(got, expected)


def current_input(n_in, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, BATCH, n_in, generator=g) < 0.3).float()


def test_leaky_default_delayed_subtract_reset(tmp_path):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(10, 16), snn.Leaky(beta=vec(16, 0.9), threshold=vec(16, 1.0), init_hidden=True),
                              torch.nn.Linear(16, 6), snn.Leaky(beta=vec(6, 0.8), threshold=vec(6, 0.5), init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    check(net, current_input(10, 0), tmp_path)


def test_leaky_zero_reset_with_reset_override(tmp_path):
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12), snn.Leaky(beta=vec(12, 0.85), threshold=vec(12, 1.0),
                                                                 reset_mechanism="zero", init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    check(net, current_input(10, 1), tmp_path, reset="zero")


def test_synaptic(tmp_path):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12),
                              snn.Synaptic(alpha=vec(12, 0.6), beta=vec(12, 0.9), threshold=vec(12, 1.0), init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(1.5)
    check(net, current_input(10, 2), tmp_path)


def test_rleaky_recurrent_affine_with_bias_from_the_first_step(tmp_path):
    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12),
                              snn.RLeaky(beta=vec(12, 0.9), threshold=vec(12, 1.0), linear_features=12, init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(1.5)
        net[1].recurrent.bias.fill_(0.2)          # the bias acts from t = 0 on
    check(net, current_input(10, 3), tmp_path)
    with pytest.warns(UserWarning):
        sim = from_nir(export_to_nir(net, current_input(10, 3)[0], ignore_dims=[0]), convention="snntorch")
    back = [e for e in sim.graph.edges if e.back]
    assert len(back) == 1 and isinstance(sim.graph.nodes[back[0].target], ns.Dense)   # lif ~> w_rec -> lif
    assert sim.graph.nodes[back[0].target].bias is not None


def test_conv_leaky_flatten_linear(tmp_path):
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=torch.full((4, 6, 6), 0.9),
                                                                            threshold=torch.ones(4, 6, 6), init_hidden=True),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 5),
                              snn.Leaky(beta=vec(5, 0.9), threshold=vec(5, 0.5), init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[4].weight.mul_(4.0)
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(STEPS, BATCH, 2, 6, 6, generator=g) < 0.3).float()
    check(net, x, tmp_path)
