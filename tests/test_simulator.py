"""The Simulator: schedules agree, states continue, inputs are checked, gradients flow."""
import pytest
import torch

import neurosim as ns


def recurrent_graph(n_in=12, n=10, seed=0):
    torch.manual_seed(seed)
    g = ns.Graph().add_input("x", n_in)
    g.add("fc", ns.Dense(n_in, n, weight=torch.rand(n, n_in) * 0.8))
    g.add("pop", ns.Population("lif", n, ns.LIFParams(tau_mem=5e-3, reset="zero")))
    g.add("rec", ns.Dense(n, n, weight=torch.randn(n, n) * 0.5))
    g.add("readout", ns.Dense(n, 3, weight=torch.rand(3, n)))
    g.add("out", ns.Population("lif", 3, ns.LIFParams(tau_mem=8e-3)))
    g.chain("x", "fc", "pop", "readout", "out")
    g.connect("pop", "rec", back=True).connect("rec", "pop")
    return g


def spikes(t=60, b=3, n=12, p=0.3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, n, generator=gen) < p).float()


def test_layer_and_step_schedules_are_identical():
    g, x = recurrent_graph(), spikes()
    layer = ns.Simulator(g, schedule="layer").run(x)
    step = ns.Simulator(g, schedule="step").run(x)
    assert layer.output.sum() > 0, "the test network must spike to be meaningful"
    assert torch.equal(layer.output, step.output)
    for name in ("pop", "out"):
        for a, b in zip(layer.state.nodes[name], step.state.nodes[name]):
            assert torch.equal(a, b)


def test_feedback_loop_through_several_nodes_is_one_stepped_block():
    """out ~> fb -> pop closes a loop over pop, readout, out, fb and rec."""
    g = recurrent_graph()
    g.add("fb", ns.Dense(3, 10, weight=torch.ones(10, 3) * 2.0))
    g.connect("out", "fb", back=True).connect("fb", "pop")
    x = spikes()
    layer = ns.Simulator(g, schedule="layer").run(x)
    step = ns.Simulator(g, schedule="step").run(x)
    assert torch.equal(layer.output, step.output)
    assert [(len(names), loop) for names, loop in ns.Simulator(g).blocks] == [(1, False), (5, True)]


def test_back_edge_from_an_earlier_block_is_the_shifted_sequence():
    """fc ~> skip -> out: skip's input at step t is fc's output at t - 1 (zero at t = 0)."""
    g = recurrent_graph()
    g.add("skip", ns.Dense(10, 3, weight=torch.rand(3, 10)))
    g.connect("fc", "skip", back=True).connect("skip", "out")
    x = spikes()
    sim = ns.Simulator(g, schedule="layer")
    assert not any(loop and "skip" in names for names, loop in sim.blocks)
    layer = sim.run(x, monitors=())
    step = ns.Simulator(g, schedule="step").run(x)
    assert torch.equal(layer.output, step.output)
    fc_out = torch.nn.functional.linear(x, g.nodes["fc"].weight)
    expected_skip = torch.nn.functional.linear(torch.cat([torch.zeros_like(fc_out[:1]), fc_out[:-1]]),
                                               g.nodes["skip"].weight)
    g.add_output("skip")
    assert torch.allclose(sim.run(x).outputs["skip"], expected_skip, atol=1e-6)


def test_continuing_from_state_equals_one_long_run():
    g, x = recurrent_graph(), spikes(t=80)
    sim = ns.Simulator(g)
    whole = sim.run(x)
    first = sim.run(x[:35])
    second = sim.run(x[35:], state=first.state)
    assert torch.equal(torch.cat([first.output, second.output]), whole.output)


def test_event_driven_inference_equals_dense_training_path():
    g, x = recurrent_graph(), spikes(p=0.02, t=100)
    sim = ns.Simulator(g)
    with torch.no_grad():
        event = sim.run(x)
    for node in g.nodes.values():
        if isinstance(node, ns.Dense):
            node.event_driven = False
    with torch.no_grad():
        dense = sim.run(x)
    assert torch.equal(event.output, dense.output)
    assert torch.allclose(event.state.nodes["pop"].v, dense.state.nodes["pop"].v, atol=1e-5)


def test_batch_elements_are_independent():
    g, x = recurrent_graph(), spikes(b=4)
    sim = ns.Simulator(g)
    full = sim.run(x).output
    for b in range(4):
        assert torch.equal(sim.run(x[:, b:b + 1]).output[:, 0], full[:, b])


def test_float64_inputs_run_in_float64():
    g = recurrent_graph().double()
    out = ns.Simulator(g).run(spikes().double())
    assert out.output.dtype == torch.float64
    assert out.state.nodes["pop"].v.dtype == torch.float64


def test_gradients_reach_weights_through_time():
    g, x = recurrent_graph(), spikes()
    result = ns.Simulator(g).run(x)
    result.output.sum().backward()
    for name in ("fc", "rec", "readout"):
        grad = g.nodes[name].weight.grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(10, 2, 11), r"input 'x': expected a \[T, batch, 12\]"),
    (torch.zeros(2, 12), r"input 'x': expected"),
    ({"y": torch.zeros(5, 1, 12)}, r"missing \['x'\], unknown \['y'\]"),
    ([1, 2], "inputs must be a tensor or a dict"),
])
def test_bad_inputs_are_rejected_before_running(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ns.Simulator(recurrent_graph()).run(bad)


def test_bad_simulator_arguments():
    with pytest.raises(ValueError, match="schedule"):
        ns.Simulator(recurrent_graph(), schedule="fast")
    with pytest.raises(ValueError, match="dt"):
        ns.Simulator(recurrent_graph(), dt=0)
    with pytest.raises(ValueError, match="LIFParams.tau_mem must be finite and > 0"):
        ns.LIFParams(tau_mem=-1.0)
    g = ns.Graph.sequential(3, ("p", ns.Population("lif", 3, ns.LIFParams(tau_mem=torch.tensor([0.01, -1.0, 0.01])))))
    with pytest.raises(ValueError, match="node 'p'.tau_mem must be finite and > 0"):
        ns.Simulator(g)
    g = ns.Graph.sequential(3, ("p", ns.Population("lif", 3, ns.LIFParams(tau_mem=1e-3))))
    with pytest.warns(RuntimeWarning, match="tau_mem"):
        ns.Simulator(g, dt=1e-3)


def test_op_counts_are_spikes_times_fan_out():
    g, x = recurrent_graph(), spikes()
    result = ns.Simulator(g).run(x, count_ops=True)
    assert result.ops["fc"]["synops"] == x.sum().item() * 10
    pop_spikes = result.outputs["out"]  # output node
    assert result.ops["out"]["spikes"] == pop_spikes.sum().item()
    assert result.ops["readout"]["macs"] == x.shape[0] * x.shape[1] * 10 * 3
    for schedule in ("step", "layer"):
        again = ns.Simulator(g, schedule=schedule).run(x, count_ops=True)
        assert again.ops == result.ops


def test_state_must_match_the_inputs_batch_and_graph():
    g = recurrent_graph()
    sim = ns.Simulator(g)
    with pytest.raises(ValueError, match="state of 'pop' has batch size 1 but the inputs have batch size 3"):
        sim.run(spikes(b=3), state=sim.initial_state(1))
    other = ns.Simulator(ns.Graph.sequential(12, ("q", ns.Population("lif", 12))))
    with pytest.raises(ValueError, match="state has no entry for"):
        sim.run(spikes(), state=other.initial_state(3))


def test_integer_spike_inputs_are_cast_to_the_parameter_dtype():
    g, x = recurrent_graph(), spikes()
    sim = ns.Simulator(g)
    assert torch.equal(sim.run(x.to(torch.uint8)).output, sim.run(x).output)


def test_output_marked_after_building_is_returned_from_a_recurrent_block():
    """rec lives inside the pop/rec loop and is read by nothing outside it; marking it as an
    output after the Simulator exists must still return its whole sequence."""
    g, x = recurrent_graph(), spikes()
    sim = ns.Simulator(g)
    assert "rec" not in sim.run(x).outputs
    g.add_output("out", "rec")
    result = sim.run(x)
    assert result.outputs["rec"].shape == (x.shape[0], x.shape[1], 10)
    assert torch.equal(result.outputs["rec"], ns.Simulator(g, schedule="step").run(x).outputs["rec"])
