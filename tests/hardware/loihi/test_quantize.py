"""quantize(sim): spike agreement with the float network, a report that recomputes, an unchanged
user network, one error for every unmappable node, delays, and the straight-through quantiser."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.loihi import LoihiDense, fake_quantize_weight, quantize
from neurosim.hardware.registry import UnsupportedNodesError


def trained_like(integration="exact", delay=0):
    """input 20 -> Dense -> lif 40 (recurrent) -> Dense -> cuba_lif 10, weights of trained scale."""
    torch.manual_seed(0)
    g = ns.Graph.sequential(
        20, ("fc1", ns.Dense(20, 40, weight=torch.randn(40, 20) * 0.9 + 0.3, delay=delay)),
        ("lif", ns.Population("lif", 40, ns.LIFParams(tau_mem=20e-3, reset="zero", integration=integration,
                                                       refractory_steps=1))),
        ("fc2", ns.Dense(40, 10, weight=torch.randn(10, 40) * 0.8 + 0.2)),
        ("out", ns.Population("cuba_lif", 10, ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="zero",
                                                                integration=integration))))
    g.add("rec", ns.Dense(40, 40, weight=torch.randn(40, 40) * 0.1)).connect("lif", "rec", back=True)
    g.connect("rec", "lif")
    return ns.Simulator(g, dt=1e-3)


def spikes_in(steps=300, batch=4):
    torch.manual_seed(1)
    return (torch.rand(steps, batch, 20) < 0.15).float()


def records(sim, x, names=("lif", "out")):
    with torch.no_grad():
        rec = sim.run(x, monitors=[ns.Monitor(n, "spikes") for n in names]).records
    return {n: rec[n]["spikes"].float() for n in names}


def aligned(a, b, lags):
    """Float records ``a`` and quantised records ``b`` with ``b`` moved back by each lag."""
    return ({n: a[n][: a[n].shape[0] - lags[n]] for n in a}, {n: b[n][lags[n]:] for n in b})


@pytest.mark.parametrize("integration,timing", [("exact", "loihi"), ("euler", "loihi"), ("exact", "engine")])
def test_quantized_network_spikes_like_the_float_one(integration, timing):
    sim, x = trained_like(integration), spikes_in()
    qsim, report = quantize(sim, inputs=x, timing=timing)
    # Loihi timing: each Dense on the forward path adds a step; the recurrent one (back-edge) none
    expected_lags = {"lif": 1, "out": 2} if timing == "loihi" else {"lif": 0, "out": 0}
    assert report.latency_steps == expected_lags
    assert [qsim.graph.nodes[n].latency for n in ("fc1", "rec", "fc2")] == (
        [1, 0, 1] if timing == "loihi" else [0, 0, 0])
    a, b = aligned(records(sim, x), records(qsim, x), expected_lags)
    for n in ("lif", "out"):
        rate = float(a[n].mean())
        assert 0.02 < rate < 0.5, (n, rate)                 # an active network, not a silent one
        # 8-bit weights move a near-threshold crossing by a step now and then (measured: lif 0.994,
        # out 0.951 of all entries equal); each neuron's spike count stays within 2 of the float one
        count_float, count_fixed = a[n].sum(0), b[n].sum(0)
        assert float((count_float - count_fixed).abs().max()) <= 2, n
        # within 1.5 % in total (measured: at most 6 of 591, 1.0 %)
        assert abs(float(count_float.sum() - count_fixed.sum())) <= 0.015 * float(count_float.sum()), n
    # measured 0.985 (exact) and 0.986 (euler)
    assert report.spike_agreement >= 0.97 and report.warnings == ()
    if timing == "loihi":  # the two timings differ by the lags exactly, and the lags are real
        loihi, engine = records(qsim, x), records(quantize(sim, timing="engine")[0], x)
        for n, lag in expected_lags.items():
            assert torch.equal(loihi[n][lag:], engine[n][: engine[n].shape[0] - lag]), n
        assert not torch.equal(loihi["out"], engine["out"])


@pytest.mark.parametrize("timing", ["loihi", "engine"])
def test_report_numbers_recompute_from_the_quantized_network(timing):
    sim, x = trained_like(), spikes_in(100, 2)
    qsim, report = quantize(sim, inputs=x, timing=timing)
    for name, layer in report.layers.items():
        node, w = qsim.graph.nodes[name], sim.graph.nodes[name].weight.detach().double()
        assert isinstance(node, LoihiDense) and node.weight_exp == layer.weight_exp
        w_hat = node.weight_mant.double() * 2.0 ** (node.weight_exp + 6) * layer.weight_scale
        assert layer.max_rel_error == pytest.approx(float((w_hat - w).abs().max() / w.abs().max()), rel=1e-12)
        assert layer.rms_rel_error == pytest.approx(float((w_hat - w).norm() / w.norm()), rel=1e-12)
        assert 0 < layer.max_rel_error < 0.01 and int(node.weight_mant.abs().max()) >= 64
        # QAT's quantiser gives the same W_hat
        assert torch.equal(fake_quantize_weight(w, layer.weight_exp + 6, layer.weight_scale), w_hat)
    for name, pop in report.populations.items():
        float_pop, params = sim.graph.nodes[name].params, qsim.graph.nodes[name].params
        assert params == pop.params
        assert pop.threshold_rel_error == pytest.approx(64 * params.v_th_mant * pop.volts_per_unit - 1.0, rel=1e-9)
        a_mem = torch.exp(torch.tensor(-1e-3 / float_pop.tau_mem, dtype=torch.float64))
        assert params.v_decay == round(4096 * (1 - float(a_mem)))
    assert report.populations["lif"].params.i_decay == 4096
    assert report.populations["out"].params.i_decay == round(4096 * (1 - torch.exp(torch.tensor(-0.2)).item()))
    a, b = aligned(records(sim, x), records(qsim, x), report.latency_steps)
    equal = sum(int((a[n] == b[n]).sum()) for n in a)
    assert report.spike_agreement == equal / sum(a[n].numel() for n in a)
    assert report.spike_counts == {n: (int(a[n].sum()), int(b[n].sum())) for n in a}


def test_quantize_never_changes_the_users_network():
    sim = trained_like(delay=2)
    before = {k: v.clone() for k, v in sim.state_dict().items()}
    edges, outputs, nodes = list(sim.graph.edges), list(sim.graph.outputs), dict(sim.graph.nodes)
    qsim, _ = quantize(sim, inputs=spikes_in(50, 2))
    after = sim.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert sim.graph.edges == edges and sim.graph.outputs == outputs and dict(sim.graph.nodes) == nodes
    assert all(qsim.graph.nodes[n] is not nodes[n] for n in nodes)
    assert qsim.graph.edges == edges and qsim.dt == sim.dt


def test_delays_map_to_per_output_axonal_delays():
    sim = trained_like(delay=3)
    qsim, report = quantize(sim, inputs=spikes_in(200, 2))
    assert qsim.graph.nodes["fc1"].max_delay == 3 and qsim.graph.nodes["fc2"].max_delay == 0
    assert report.spike_agreement >= 0.97                       # measured 0.987
    g = ns.Graph.sequential(3, ("fc", ns.Dense(3, 2, delay=torch.tensor([[1, 1, 1], [4, 4, 4]]))),
                            ("pop", ns.Population("lif", 2, ns.LIFParams(reset="zero"))))
    fc = quantize(ns.Simulator(g))[0].graph.nodes["fc"]
    x = torch.zeros(6, 1, 2)
    x[0] = 1.0
    out, _ = fc.delay_line.step_sequence(x.long(), fc.delay_line.initial_state(1), 0.0)
    # axonal delays 1 and 4, after the one step of Loihi's latency
    assert fc.latency == 1 and fc.delays().tolist() == [1, 4]
    assert out[:, 0].tolist() == [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0], [0, 1]]
    with pytest.raises(ValueError, match="timing must be 'loihi' or 'engine'"):
        quantize(ns.Simulator(g), timing="lava")


def test_every_unmappable_node_is_listed_in_one_error():
    g = ns.Graph().add_input("x", 4).add_input("y", 2)
    g.add("fc", ns.Dense(4, 3, bias=True)).add("sub", ns.Population("lif", 3))          # subtract reset
    g.add("fc2", ns.Dense(3, 2, delay=torch.tensor([[0, 1, 0], [2, 2, 2]])))
    g.add("ad", ns.Population("adex", 2))
    g.add("fc3", ns.Dense(2, 2, delay=70)).add("ok", ns.Population("lif", 2, ns.LIFParams(reset="zero")))
    g.chain("x", "fc", "sub", "fc2", "ad", "fc3", "ok")
    g.add("dangling", ns.Dense(2, 2)).connect("y", "ok").connect("ok", "dangling")
    with pytest.raises(UnsupportedNodesError) as err:
        quantize(ns.Simulator(g))
    assert [(n, k) for n, k, _ in err.value.problems] == [
        ("fc", "Dense"), ("sub", "Population"), ("fc2", "Dense"), ("ad", "Population"), ("fc3", "Dense"),
        ("ok", "Population"), ("dangling", "Dense")]
    reasons = dict((n, r) for n, _, r in err.value.problems[:5])
    assert reasons["fc"].startswith("has a bias") and "reset='subtract'" in reasons["sub"]
    assert "differ between the synapses onto one neuron" in reasons["fc2"]
    assert "no Loihi CUBA counterpart" in reasons["ad"] and "delay of 70 steps" in reasons["fc3"]
    assert "reads ['y'] directly" in err.value.problems[5][2]
    assert "feeds nothing" in err.value.problems[6][2]
    with pytest.raises(TypeError, match="takes a neurosim Simulator"):
        quantize(g)


def test_fake_quantize_weight_forward_is_the_grid_and_gradient_is_identity():
    w = torch.tensor([0.013, -0.5, 0.26, 9.0, -9.0], requires_grad=True)
    q = fake_quantize_weight(w, exponent=2, scale=0.01)            # grid 0.04, mantissa in [-128, 127]
    assert torch.allclose(q, torch.tensor([0.0, -0.48, 0.24, 5.08, -5.12]), atol=1e-6, rtol=0)   # half to even
    (q * torch.arange(1.0, 6.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(1.0, 6.0))
