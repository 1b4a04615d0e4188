"""to_norse: the exported module, run by Norse's own cells, gives neurosim's spike trains.

The leaky models agree in their equations but not in the order of their float operations
(see hardware/norse.py), so their spike trains are compared in float64, where a threshold
crossing within rounding error does not happen in these runs; IF is the same arithmetic and is
compared in float32. Every comparison also checks that the run has many spikes and silences.
"""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.norse import NorseNetworkState, to_norse
from neurosim.hardware.registry import UnsupportedNodesError

T, BATCH, N_IN, N = 150, 4, 20, 30


pytestmark = pytest.mark.usefixtures("one_thread")


def spikes(shape, p=0.3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).to(dtype)


def weight(out, inp, scale, seed=1):
    """Gaussian weights with a positive mean (0.5 scale), so that the neurons fire."""
    g = torch.Generator().manual_seed(seed)
    return scale * (torch.randn(out, inp, generator=g, dtype=torch.float64) + 0.5)


def dense(inp=N_IN, out=N, scale=0.6, bias=True, **kwargs):
    fc = ns.Dense(inp, out, bias=bias, weight=weight(out, inp, scale), **kwargs)
    if bias:
        with torch.no_grad():
            fc.bias.copy_(torch.linspace(-0.1, 0.2, out, dtype=torch.float64))
    return fc


def run_both(graph, x, dt=1e-3):
    sim = ns.Simulator(graph, dt=dt)
    with torch.no_grad():
        want = sim.run(x).outputs
        got, _ = to_norse(sim).to(x.dtype)(x)
    assert list(got) == list(want)
    return want, got


def assert_same_spikes(want, got):
    """Spike for spike, with between 3% and 70% of the neuron-steps spiking."""
    assert torch.equal(got, want), f"{int((got != want).sum())} of {want.numel()} spike entries differ"
    rate = float(want.detach().mean())
    assert 0.03 < rate < 0.7, f"spike rate {rate:.3f}: the comparison would be trivial"


def feed_forward(model, params, out=N, scale=0.6):
    return ns.Graph.sequential(N_IN, ("fc", dense(out=out, scale=scale)),
                               ("pop", ns.Population(model, out, params)))


LIF_CASES = {
    "exact-zero": ns.LIFParams(tau_mem=20e-3, reset="zero"),
    "exact-subtract": ns.LIFParams(tau_mem=20e-3, reset="subtract"),
    "exact-value": ns.LIFParams(tau_mem=20e-3, reset="value", v_reset=0.2),
    "euler-zero": ns.LIFParams(tau_mem=20e-3, integration="euler", reset="zero"),
    "euler-subtract": ns.LIFParams(tau_mem=20e-3, integration="euler", reset="subtract"),
    "euler-value": ns.LIFParams(tau_mem=20e-3, integration="euler", reset="value", v_reset=-0.1),
    "subtract-nonzero-v_reset-leak": ns.LIFParams(tau_mem=15e-3, v_leak=0.1, v_reset=0.3, r=2.0),
    "input-next-step": ns.LIFParams(tau_mem=20e-3, input_same_step=False),
    "per-neuron-tensors": ns.LIFParams(tau_mem=torch.linspace(5e-3, 40e-3, N, dtype=torch.float64),
                                       v_threshold=torch.linspace(0.8, 1.2, N, dtype=torch.float64)),
}


@pytest.mark.parametrize("case", sorted(LIF_CASES))
def test_lif_spike_trains_equal_neurosim(case):
    want, got = run_both(feed_forward("lif", LIF_CASES[case]), spikes((T, BATCH, N_IN)))
    assert_same_spikes(want["pop"], got["pop"])


CUBA_CASES = {
    "exact-zero": ns.CubaLIFParams(reset="zero"),
    "exact-value": ns.CubaLIFParams(reset="value", v_reset=0.1, v_leak=0.05),
    "euler-zero": ns.CubaLIFParams(integration="euler", reset="zero"),
    "tau-syn-equals-tau-mem": ns.CubaLIFParams(tau_syn=10e-3, tau_mem=10e-3, reset="zero"),
    "w_in-r-refractory": ns.CubaLIFParams(reset="zero", w_in=0.5, r=2.0, refractory_steps=3),
    "input-next-step-refractory": ns.CubaLIFParams(reset="value", v_reset=-0.2, refractory_steps=2,
                                                   input_same_step=False, integration="euler"),
}


@pytest.mark.parametrize("case", sorted(CUBA_CASES))
def test_cuba_lif_spike_trains_equal_neurosim(case):
    want, got = run_both(feed_forward("cuba_lif", CUBA_CASES[case], scale=0.2), spikes((T, BATCH, N_IN)))
    assert_same_spikes(want["pop"], got["pop"])


@pytest.mark.parametrize("params", [ns.IFParams(r=1000.0, reset="zero"),
                                    ns.IFParams(r=800.0, reset="value", v_reset=-0.3),
                                    ns.IFParams(r=1200.0, reset="zero", input_same_step=False)],
                         ids=["zero", "value", "input-next-step"])
def test_if_is_exact_in_float32(params):
    """IF does neurosim's arithmetic (v + (dt r) I): graded float32 input, identical spikes."""
    graph = ns.Graph.sequential(N, ("pop", ns.Population("if", N, params)))
    x = torch.rand((T, BATCH, N), generator=torch.Generator().manual_seed(3)) * 0.6 - 0.1
    want, got = run_both(graph, x)
    assert got["pop"].dtype == torch.float32
    assert_same_spikes(want["pop"], got["pop"])


def test_li_readout_follows_the_spiking_layer():
    graph = feed_forward("lif", ns.LIFParams(tau_mem=20e-3))
    graph.add("readout", dense(N, 5, scale=0.5))
    graph.add("li", ns.Population("li", 5, ns.LIParams(tau_mem=30e-3, v_leak=0.1)))
    graph.chain("pop", "readout", "li").add_output("pop", "li")
    want, got = run_both(graph, spikes((T, BATCH, N_IN)))
    assert_same_spikes(want["pop"], got["pop"])
    assert want["li"].abs().max() > 0.5
    torch.testing.assert_close(got["li"], want["li"], rtol=1e-12, atol=1e-12)


def test_li_with_euler_and_next_step_input():
    graph = ns.Graph.sequential(N_IN, ("li", ns.Population("li", N_IN, ns.LIParams(integration="euler", r=3.0,
                                                                                 input_same_step=False))))
    x = spikes((T, BATCH, N_IN))
    want, got = run_both(graph, x)
    assert not torch.equal(want["li"][1:], want["li"][:-1])
    torch.testing.assert_close(got["li"], want["li"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("delay", [0, 3])
def test_sparse_maps_to_its_dense_matrix_with_repeated_synapses_and_uniform_delay(delay):
    g = torch.Generator().manual_seed(5)
    pre = torch.randint(0, N_IN, (200,), generator=g)
    post = torch.randint(0, N, (200,), generator=g)
    pre[1], post[1] = pre[0], post[0]                       # a repeated pair: its weights add
    w = (torch.randn(200, generator=g, dtype=torch.float64) + 1.0) * 0.8
    proj = ns.Sparse(N_IN, N, pre=pre, post=post, weight=w, delay=delay, bias=True)
    with torch.no_grad():
        proj.bias.fill_(0.05)
    graph = ns.Graph.sequential(N_IN, ("fc", proj), ("pop", ns.Population("lif", N, ns.LIFParams(tau_mem=20e-3))))
    want, got = run_both(graph, spikes((T, BATCH, N_IN)))
    assert_same_spikes(want["pop"], got["pop"])


def test_dense_with_uniform_delay_and_delay_node():
    graph = ns.Graph.sequential(N_IN, ("late", ns.Delay(N_IN, 2)), ("fc", dense(delay=4)),
                                ("pop", ns.Population("lif", N, ns.LIFParams(tau_mem=20e-3))))
    want, got = run_both(graph, spikes((T, BATCH, N_IN)))
    assert_same_spikes(want["pop"], got["pop"])
    assert not want["pop"][:6].any()            # nothing arrives before 2 + 4 steps, the bias neither spikes


def test_conv_pooling_flatten_network():
    conv = ns.Conv2d((2, 12, 12), 4, kernel_size=3, padding=1, bias=True,
                     weight=(torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(7)) + 0.5) * 0.8)
    graph = ns.Graph.sequential(
        (2, 12, 12), ("conv", conv), ("lif1", ns.Population("lif", (4, 12, 12), ns.LIFParams(tau_mem=20e-3))),
        ("max", ns.MaxPool2d((4, 12, 12), 2)), ("avg", ns.AvgPool2d((4, 6, 6), 2, stride=1, padding=1)),
        ("flat", ns.Flatten((4, 7, 7))), ("fc", dense(196, 10, scale=0.4)),
        ("lif2", ns.Population("lif", 10, ns.LIFParams(tau_mem=20e-3, reset="zero"))))
    graph = graph.double().add_output("lif1", "lif2")
    want, got = run_both(graph, spikes((60, 2, 2, 12, 12)))
    assert_same_spikes(want["lif1"], got["lif1"])
    assert_same_spikes(want["lif2"], got["lif2"])


def recurrent_graph():
    """x -> fc -> lif, lif ~> rec -> lif (a back-edge through a Dense), lif ~> lif (identity), and
    lif -> mix plus lif ~> mix (this step's and the last step's spikes summed) -> pop2."""
    g = ns.Graph().add_input("x", N_IN)
    g.add("fc", dense(scale=0.5)).add("lif", ns.Population("lif", N, ns.LIFParams(tau_mem=20e-3)))
    g.add("rec", dense(N, N, scale=0.4, bias=False))
    g.chain("x", "fc", "lif").connect("lif", "rec", back=True).connect("rec", "lif")
    g.connect("lif", "lif", back=True)
    g.add("mix", dense(N, N, scale=0.8)).add("pop2", ns.Population("lif", N, ns.LIFParams(tau_mem=10e-3)))
    g.chain("lif", "mix", "pop2").connect("lif", "mix", back=True)
    return g.add_output("lif", "pop2")


def test_recurrent_network_and_state_continuation():
    graph, x = recurrent_graph(), spikes((T, BATCH, N_IN))
    sim = ns.Simulator(graph, dt=1e-3)
    want = sim.run(x).outputs
    net = to_norse(sim)
    got, _ = net(x)
    assert_same_spikes(want["lif"], got["lif"])
    assert_same_spikes(want["pop2"], got["pop2"])
    first, state = net({"x": x[:70]})
    assert isinstance(state, NorseNetworkState) and set(state.previous) == {"lif"}
    second, _ = net({"x": x[70:]}, state)
    assert torch.equal(torch.cat([first["pop2"], second["pop2"]]), want["pop2"])
    free = ns.Simulator(ns.Graph.sequential(N_IN, ("fc", graph.nodes["fc"]), ("lif", graph.nodes["lif"])), dt=1e-3)
    assert not torch.equal(free.run(x).output, want["lif"])     # the back-edges do change the spikes


def test_exported_module_converts_dtype_and_device_of_norse_parameters():
    graph = feed_forward("cuba_lif", ns.CubaLIFParams(reset="zero", refractory_steps=2), scale=0.3).float()
    net = to_norse(ns.Simulator(graph, dt=1e-3)).double()
    assert net.steps["pop"].cell.p.lif.tau_mem_inv.dtype == torch.float64
    x = spikes((T, BATCH, N_IN))
    want = ns.Simulator(graph.double(), dt=1e-3).run(x).outputs["pop"]
    assert_same_spikes(want, net(x)[0]["pop"])


def test_export_never_changes_the_network_even_after_training_the_export():
    graph = feed_forward("lif", ns.LIFParams(tau_mem=20e-3))
    sim = ns.Simulator(graph, dt=1e-3)
    before = {k: v.clone() for k, v in sim.state_dict().items()}
    x = spikes((50, BATCH, N_IN))
    reference = sim.run(x).outputs["pop"]
    net = to_norse(sim)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    for _ in range(3):
        optimizer.zero_grad()
        out, _ = net(x)
        out["pop"].sum().backward()
        optimizer.step()
    assert not torch.equal(net.steps["fc"].layer.weight, graph.nodes["fc"].weight)
    after = sim.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert torch.equal(sim.run(x).outputs["pop"], reference)


def test_every_unmappable_node_is_listed_with_its_reason():
    g = ns.Graph().add_input("x", 4)
    g.add("fc", ns.Dense(4, 3, delay=torch.tensor([[0, 1, 2, 0]] * 3)))
    g.add("refr", ns.Population("lif", 3, ns.LIFParams(refractory_steps=2)))
    g.add("cuba", ns.Population("cuba_lif", 3, ns.CubaLIFParams(reset="subtract")))
    g.add("iaf", ns.Population("if", 3, ns.IFParams(reset="subtract", refractory_steps=1)))
    g.add("adex", ns.Population("adex", 3))
    g.chain("x", "fc", "refr", "cuba", "iaf", "adex")
    with pytest.raises(UnsupportedNodesError) as err:
        to_norse(ns.Simulator(g, dt=1e-4))
    problems = err.value.problems
    assert [(name, kind) for name, kind, _ in problems] == [
        ("fc", "Dense"), ("refr", "Population"), ("cuba", "Population"), ("iaf", "Population"),
        ("adex", "Population")]
    reasons = [why for _, _, why in problems]
    assert reasons[0].startswith("per-synapse delays (values [0, 1, 2])")
    assert reasons[1].startswith("refractory_steps=2: Norse's refractory cell")
    assert reasons[2].startswith("reset='subtract': Norse's LIFCell only resets to a value")
    assert reasons[3].startswith("reset='subtract': Norse's IAFCell") and "; refractory_steps=1: " in reasons[3]
    assert reasons[4].startswith("neuron model 'adex' has no exact Norse counterpart")


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="to_norse takes a neurosim Simulator"):
        to_norse(recurrent_graph())
    net = to_norse(ns.Simulator(recurrent_graph(), dt=1e-3))
    with pytest.raises(ValueError, match=r"^NorseNetwork: input 'x': expected a \[T, batch, 20\] tensor \(time first\), got \(5, 2, 19\)$"):
        net(torch.zeros(5, 2, 19))
    with pytest.raises(ValueError, match=r"^NorseNetwork: inputs: missing \['x'\], unknown \['y'\]"):
        net({"y": torch.zeros(5, 2, 20)})
    with pytest.raises(TypeError, match="input 'x' is torch.float32 but the exported network is torch.float64"):
        net(torch.zeros(5, 2, 20))
    _, state = net(torch.zeros(5, 2, 20, dtype=torch.float64))
    with pytest.raises(ValueError, match="previous output of 'lif' has batch size 2, the inputs 3"):
        net(torch.zeros(5, 3, 20, dtype=torch.float64), state)


@pytest.mark.parametrize("model, params", [("lif", ns.LIFParams(tau_mem=20e-3)),
                                           ("cuba_lif", ns.CubaLIFParams(reset="zero"))], ids=["lif", "cuba_lif"])
def test_feed_forward_float32_spike_trains_equal_too(model, params):
    """float32: the membranes differ in the last bits (operation order), so a spike could flip when
    v lands within rounding of v_th; in these runs (and 1000 steps x 16 sequences measured) none does."""
    graph = feed_forward(model, params, scale=0.6 if model == "lif" else 0.2).float()
    want, got = run_both(graph, spikes((T, BATCH, N_IN), dtype=torch.float32))
    assert got["pop"].dtype == torch.float32
    assert_same_spikes(want["pop"], got["pop"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_spike_trains_on_cuda():
    x = spikes((T, BATCH, N_IN))
    with torch.no_grad():
        want = ns.Simulator(recurrent_graph(), dt=1e-3).run(x).outputs["pop2"]
        sim = ns.Simulator(recurrent_graph().cuda(), dt=1e-3)
        on_cuda = sim.run(x.cuda()).outputs["pop2"]
        exported, _ = to_norse(sim)(x.cuda())                                       # exported from a CUDA graph
        moved, _ = to_norse(ns.Simulator(recurrent_graph(), dt=1e-3)).cuda()(x.cuda())   # moved after export
    assert exported["pop2"].device.type == moved["pop2"].device.type == "cuda"
    assert_same_spikes(on_cuda, exported["pop2"])
    assert torch.equal(moved["pop2"], exported["pop2"])
    assert torch.equal(exported["pop2"].cpu(), want)
