"""neurosim -> NIR -> neurosim gives identical spikes for every supported node type, in memory
and through a file; unsupported nodes are listed in one error; the user's network is unchanged;
metadata-free files warn with what was assumed."""
import dataclasses

import nir

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.hardware.nir import from_nir, read_nir, to_nir, write_nir
from neurosim.hardware.registry import UnsupportedNodesError

STEPS, BATCH = 60, 2


def spikes(shape, seed, p=0.3, gain=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, BATCH, *shape, generator=g) < p).float() * gain


def roundtrip(sim, x, tmp_path, min_spikes=10):
    expected = sim.run(x).outputs
    assert sum(int((y != 0).sum()) for y in expected.values()) >= min_spikes
    assert to_nir(sim).check_types()                     # nir's own type check accepts the export
    path = write_nir(tmp_path / "net.nir", sim)
    for back in (from_nir(to_nir(sim)), read_nir(path)):
        assert back.dt == sim.dt
        got = back.run(x).outputs
        assert list(got) == list(expected)
        for name in expected:
            assert torch.equal(got[name], expected[name]), name


def mlp(model, params, seed=0):
    torch.manual_seed(seed)
    g = ns.Graph.sequential(6, ("fc", ns.Dense(6, 8, bias=True)), ("pop", ns.Population(model, 8, params)))
    with torch.no_grad():
        g.nodes["fc"].weight.mul_(15.0)
    return g


@pytest.mark.parametrize("reset", ["zero", "subtract", "value", "subtract_delayed"])
@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_lif_every_reset_and_integration(tmp_path, reset, integration):
    p = ns.LIFParams(tau_mem=5e-3, v_reset=-0.1, reset=reset, integration=integration)
    roundtrip(ns.Simulator(mlp("lif", p), dt=1e-3), spikes((6,), 1), tmp_path)


def test_lif_refractory_latency_and_per_neuron_parameters(tmp_path):
    p = ns.LIFParams(tau_mem=torch.linspace(3e-3, 8e-3, 8), v_threshold=torch.linspace(0.5, 1.5, 8),
                     refractory_steps=2, input_same_step=False)
    roundtrip(ns.Simulator(mlp("lif", p), dt=1e-3), spikes((6,), 2), tmp_path)


@pytest.mark.parametrize("model, params", [
    ("cuba_lif", ns.CubaLIFParams(tau_syn=3e-3, tau_mem=6e-3, w_in=2.0, reset="value", v_reset=0.1)),
    ("cuba_lif", ns.CubaLIFParams(integration="euler", reset="subtract_delayed")),
    ("if", ns.IFParams(r=300.0, reset="zero")),
    ("li", ns.LIParams(tau_mem=4e-3))])
def test_other_neuron_models(tmp_path, model, params):
    roundtrip(ns.Simulator(mlp(model, params), dt=1e-3), spikes((6,), 3), tmp_path)


def test_recurrent_sparse_delay_conv_pool_flatten(tmp_path):
    torch.manual_seed(4)
    g = ns.Graph()
    g.add_input("img", (2, 6, 6))
    g.add("conv", ns.Conv2d((2, 6, 6), 3, 3, padding=1, bias=True))
    g.add("lif1", ns.Population("lif", (3, 6, 6), ns.LIFParams(tau_mem=5e-3)))
    g.add("pool", ns.AvgPool2d((3, 6, 6), 2))
    g.add("flat", ns.Flatten((3, 3, 3)))
    g.add("line", ns.Delay(27, 2))
    g.add("fc", ns.Sparse.random(27, 10, p=0.5, weight=1.5, seed=1))
    g.add("lif2", ns.Population("lif", 10, ns.LIFParams(tau_mem=5e-3, reset="zero")))
    g.add("rec", ns.Dense(10, 10, bias=True))
    g.chain("img", "conv", "lif1", "pool", "flat", "line", "fc", "lif2")
    g.connect("lif2", "rec", back=True).connect("rec", "lif2")
    with torch.no_grad():
        g.nodes["conv"].weight.mul_(4.0)
        g.nodes["rec"].bias.fill_(0.05)
    roundtrip(ns.Simulator(g, dt=1e-3), spikes((2, 6, 6), 5), tmp_path)


def test_back_edge_into_the_neuron_is_kept():
    """rec ~> lif (the back-edge on the other edge of the loop) has other timing; the graph
    metadata restores it."""
    torch.manual_seed(6)
    g = mlp("lif", ns.LIFParams(tau_mem=5e-3))
    g.add("rec", ns.Dense(8, 8, bias=True)).connect("pop", "rec").connect("rec", "pop", back=True)
    sim = from_nir(to_nir(ns.Simulator(g, dt=1e-3)))
    assert [str(e) for e in sim.graph.edges if e.back] == ["rec ~> pop.input"]


def test_export_lists_every_unsupported_node_and_leaves_the_network_unchanged():
    g = ns.Graph.sequential(4, ("fc", ns.Dense(4, 3, delay=2)), ("ad", ns.Population("adex", 3)),
                            ("fc2", ns.Dense(3, 3)), ("lif", ns.Population("lif", 3)))
    with pytest.raises(UnsupportedNodesError) as err:
        to_nir(ns.Simulator(g))
    assert [p[0] for p in err.value.problems] == ["fc", "ad"]
    assert "delays" in err.value.problems[0][2] and "adex" in err.value.problems[1][2]
    g2 = mlp("lif", ns.LIFParams())
    before = {k: v.clone() for k, v in g2.state_dict().items()}
    to_nir(ns.Simulator(g2))
    assert all(torch.equal(before[k], v) for k, v in g2.state_dict().items())


def lif_nir(n):
    return nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                   v_reset=np.zeros(n))


@dataclasses.dataclass(eq=False)
class Mystery(nir.NIRNode):
    """A NIR node type no library knows (neurosim has no builder for it)."""
    x: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.x.shape)}
        self.output_type = {"output": np.array(self.x.shape)}


def test_import_lists_every_unsupported_nir_node():
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "s": nir.Scale(np.ones(3)),
                                "m1": Mystery(np.ones(3)), "t": nir.Threshold(np.ones(3)), "m2": Mystery(np.ones(3)),
                                "output": nir.Output(np.array([3]))},
                         edges=[("input", "s"), ("s", "m1"), ("m1", "t"), ("t", "m2"), ("m2", "output")],
                         type_check=False)
    with pytest.raises(UnsupportedNodesError) as err:
        from_nir(graph)
    assert [(p[0], p[1]) for p in err.value.problems] == [("m1", "Mystery"), ("m2", "Mystery")]
    assert all("no neurosim builder for NIR Mystery" in p[2] for p in err.value.problems)


def test_scale_and_sum_pool_import_exactly():
    """Scale -> diagonal Sparse, SumPool2d -> channel-identity Conv2d: the same numbers as numpy."""
    scale = np.array([0.5, -2.0, 3.0, 1.25])
    graph = nir.NIRGraph(nodes={"x": nir.Input(np.array([2, 4, 4])),
                                "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                                "flat": nir.Flatten({"input": np.array([2, 2, 2])}, start_dim=0),
                                "fc": nir.Linear(np.eye(4, 8)), "s": nir.Scale(scale),
                                "output": nir.Output(np.array([4]))},
                         edges=[("x", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "s"), ("s", "output")],
                         type_check=False)
    with pytest.warns(UserWarning, match="no time step"):
        sim = from_nir(graph)
    x = spikes((2, 4, 4), 7)
    sums = x.reshape(STEPS, BATCH, 2, 2, 2, 2, 2).sum(dim=(4, 6)).reshape(STEPS, BATCH, 8)
    assert torch.equal(sim.run(x).output, sums[..., :4] * torch.tensor(scale, dtype=torch.float32))


def test_metadata_free_nested_graph_warns_and_follows_nir_literally():
    inner = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "lif": lif_nir(3),
                                "output": nir.Output(np.array([3]))},
                         edges=[("input", "lif"), ("lif", "output")], type_check=False)
    graph = nir.NIRGraph(nodes={"x": nir.Input(np.array([2])), "fc": nir.Linear(np.full((3, 2), 400.0)),
                                "sub": inner, "output": nir.Output(np.array([3]))},
                         edges=[("x", "fc"), ("fc", "sub"), ("sub", "output")], type_check=False)
    with pytest.warns(UserWarning, match="assumed dt = 1e-3.*reset='value'"):
        sim = from_nir(graph)
    pop = sim.graph.nodes["sub_lif"]
    assert pop.params.reset == "value" and pop.params.integration == "exact"
    x = torch.ones(5, 1, 2)
    # exact LIF: v1 = (1 - e^{-0.2}) 800 > 1 -> a spike every step (reset to 0)
    assert torch.equal(sim.run(x).output, torch.ones(5, 1, 3))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="convention must be one of"):
        from_nir(nir.NIRGraph(nodes={}, edges=[], type_check=False), convention="brian")
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        read_nir("/nonexistent/net.nir")


def test_a_dt_other_than_the_exported_one_warns():
    sim = ns.Simulator(mlp("lif", ns.LIFParams()), dt=1e-3)
    with pytest.warns(UserWarning, match="exported with dt = 0.001 s; simulating with dt = 0.002 s"):
        assert from_nir(to_nir(sim), dt=2e-3).dt == 2e-3
