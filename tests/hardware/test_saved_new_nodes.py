"""neurosim.save / neurosim.load round-trip the cuba_li and integrator models, Threshold and
Conv1d with identical outputs, states and parameters (dtypes included)."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.saved import SavedNetworkError


def same_network(a: ns.Simulator, b: ns.Simulator):
    assert (a.dt, a.graph.edges, a.graph.inputs, list(a.graph.nodes)) == (b.dt, b.graph.edges, b.graph.inputs,
                                                                          list(b.graph.nodes))
    for name, node in a.graph.nodes.items():
        other = b.graph.nodes[name]
        assert type(other) is type(node) and other.extra_repr() == node.extra_repr(), name
        sa, sb = node.state_dict(), other.state_dict()
        assert list(sa) == list(sb), name
        for key in sa:
            assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), (name, key)
        assert [(n, p.requires_grad) for n, p in node.named_parameters()] == \
               [(n, p.requires_grad) for n, p in other.named_parameters()], name


def same_run(a: ns.Simulator, b: ns.Simulator, x):
    ra, rb = a.run(x), b.run(x)
    for name in ra.outputs:
        assert ra.outputs[name].dtype == rb.outputs[name].dtype and torch.equal(ra.outputs[name], rb.outputs[name])
    assert list(ra.state.nodes) == list(rb.state.nodes)
    for name, state in ra.state.nodes.items():
        other = rb.state.nodes[name]
        assert (state is None) == (other is None), name
        for u, v in zip(state or (), other or ()):
            assert u.dtype == v.dtype and torch.equal(u, v), name
    return ra


def network(dtype=torch.float32):
    """Conv1d (dilation, groups, bias) -> integrator -> Threshold -> Dense -> cuba_li readout,
    with per-element parameters, a trainable threshold and a back-edge."""
    gen = torch.Generator().manual_seed(5)
    g = ns.Graph().add_input("x", (4, 16))
    g.add("conv", ns.Conv1d((4, 16), 6, 3, stride=1, padding=2, dilation=2, groups=2, bias=True,
                            weight=torch.rand(6, 2, 3, generator=gen) * 2))
    g.add("acc", ns.Population("integrator", (6, 16), ns.IntegratorParams(r=torch.linspace(200, 400, 16),
                                                                          input_same_step=False),
                               trainable=("r",)))
    g.add("th", ns.Threshold((6, 16), v_threshold=torch.linspace(0.5, 1.5, 16), surrogate="arctan",
                             surrogate_scale=3.0, trainable=True))
    g.add("flat", ns.Flatten((6, 16)))
    g.add("fc", ns.Dense(96, 5, weight=torch.randn(5, 96, generator=gen)))
    g.add("readout", ns.Population("cuba_li", 5, ns.CubaLIParams(tau_syn=torch.linspace(2e-3, 6e-3, 5),
                                                                 tau_mem=8e-3, integration="euler"),
                                   trainable=("tau_mem",)))
    g.add("rec", ns.Dense(5, 6 * 16, weight=0.1 * torch.randn(96, 5, generator=gen)))
    g.chain("x", "conv", "acc", "th", "flat", "fc", "readout")
    g.add("unflat_rec", ns.Population("integrator", 96, ns.IntegratorParams(r=1.0)))
    g.connect("readout", "rec", back=True).connect("rec", "unflat_rec")
    g.add_output("th", "readout", "unflat_rec")
    g = g.to(dtype)
    with torch.no_grad():
        g.nodes["conv"].bias.fill_(0.05)
    g.nodes["fc"].weight.requires_grad_(False)
    x = (torch.rand(30, 2, 4, 16, generator=gen) < 0.4).to(dtype)
    return ns.Simulator(g, dt=1e-3), x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_new_nodes_round_trip_with_identical_outputs(tmp_path, dtype):
    sim, x = network(dtype)
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    same_network(sim, loaded)
    result = same_run(sim, loaded, x)
    assert result.outputs["th"].sum() >= 10 and result.outputs["readout"].abs().sum() > 0
    th = loaded.graph.nodes["th"]
    assert th.trainable and th.v_threshold.requires_grad and th.surrogate == ns.get_surrogate("arctan", 3.0)
    conv = loaded.graph.nodes["conv"]
    assert (conv.dilation, conv.groups, conv.weight.dtype) == (2, 2, dtype)
    assert loaded.graph.nodes["readout"].params.integration == "euler"
    assert not loaded.graph.nodes["acc"].params.input_same_step


def test_scalar_threshold_and_default_conv1d(tmp_path):
    g = ns.Graph.sequential((2, 9), ("conv", ns.Conv1d((2, 9), 3, 2)), ("th", ns.Threshold((3, 8), 0.1)))
    sim = ns.Simulator(g)
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    same_network(sim, loaded)
    same_run(sim, loaded, torch.rand(5, 2, 2, 9))


def test_a_damaged_conv1d_config_is_named(tmp_path):
    """A config that does not describe the saved tensors is refused, naming node and key."""
    import json

    import h5py
    import numpy as np
    from neurosim.hardware import saved

    g = ns.Graph.sequential((2, 9), ("conv", ns.Conv1d((2, 9), 3, 2, groups=1)))
    path = ns.save(ns.Simulator(g), tmp_path / "net.h5")
    with h5py.File(path, "r+") as f:
        doc = json.loads(bytes(f["network"][()]).decode())
        doc["nodes"][0]["config"]["kernel_size"] = 3
        text = np.frombuffer(json.dumps(doc, sort_keys=True).encode(), dtype=np.uint8)
        del f["network"]
        f.create_dataset("network", data=text)
        f["network"].attrs["sha256"] = saved._sha256(text)
    with pytest.raises(SavedNetworkError, match=r"node 'conv'.*weight"):
        ns.load(path)
