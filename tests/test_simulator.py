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


# ---------------------------------------------------------------------------- the graph may change
def test_an_edge_added_after_building_is_used_by_the_next_run():
    g, x = recurrent_graph(), spikes()
    sim = ns.Simulator(g)
    before = sim.run(x).output
    g.connect("x", "fc")                      # a second edge on fc's port: fc now sees 2 x
    after = sim.run(x)
    assert not torch.equal(after.output, before), "the new edge must change the result"
    assert torch.equal(after.output, ns.Simulator(g).run(x).output)


def test_a_node_added_after_building_is_run_and_old_states_are_rejected_by_name():
    g, x = recurrent_graph(), spikes()
    sim = ns.Simulator(g)
    old_state = sim.run(x).state
    g.add("skip", ns.Dense(10, 3, weight=torch.rand(3, 10)))
    g.connect("fc", "skip").connect("skip", "out")
    fresh = ns.Simulator(g)
    for schedule in ("layer", "step"):
        sim.schedule = schedule
        result = sim.run(x)
        assert "skip" in result.state.nodes and sim.order == fresh.order
        assert torch.equal(result.output, fresh.run(x).output)
    with pytest.raises(ValueError, match=r"state has no entry for \['skip'\].*before nodes were added"):
        sim.run(x, state=old_state)


def test_an_invalid_edge_added_after_building_is_reported_at_the_next_run():
    g = recurrent_graph()
    sim = ns.Simulator(g)
    g.connect("readout", "pop")               # readout gives 3 values, pop expects 10
    with pytest.raises(ns.GraphError, match=r"edge readout -> pop.input: shape mismatch"):
        sim.run(spikes())


# ---------------------------------------------------------------------------- dtypes
def test_an_input_of_another_dtype_than_the_parameters_is_named():
    sim = ns.Simulator(recurrent_graph())
    with pytest.raises(TypeError) as err:
        sim.run(spikes().double())
    assert str(err.value) == ("input 'x' is torch.float64 but it feeds node 'fc', whose parameter 'weight' "
                              "is torch.float32; convert the input (.to(torch.float32)) or the graph "
                              "(.to(torch.float64))")
    g = recurrent_graph().double()
    with pytest.raises(TypeError, match=r"^input 'x' is torch.float32 but it feeds node 'fc', whose "
                                        r"parameter 'weight' is torch.float64"):
        ns.Simulator(g).run(spikes())


def test_the_dtype_check_looks_through_nodes_without_parameters():
    """x -> flat (no parameters) -> fc: the input must match fc's weight."""
    g = ns.Graph().add_input("x", (3, 4))
    g.add("flat", ns.Flatten((3, 4))).add("fc", ns.Dense(12, 2)).add("pop", ns.Population("lif", 2))
    g.chain("x", "flat", "fc", "pop")
    with pytest.raises(TypeError, match=r"^input 'x' is torch.float64 but it feeds node 'fc', whose parameter 'weight'"):
        ns.Simulator(g).run(torch.zeros(5, 1, 3, 4, dtype=torch.float64))


def test_a_state_of_another_dtype_is_named():
    g = recurrent_graph()
    sim = ns.Simulator(g)
    with pytest.raises(TypeError) as err:
        sim.run(spikes(), state=sim.initial_state(3, dtype=torch.float64))
    assert str(err.value) == ("state of 'pop' field 'v' is torch.float64 but the inputs are torch.float32 "
                              "(node 'pop' has no floating parameters); make the state with "
                              "initial_state(batch, dtype=torch.float32)")
    trained = ns.Graph.sequential(12, ("fc", ns.Dense(12, 10)), ("pop", ns.Population(
        "lif", 10, ns.LIFParams(tau_mem=torch.full((10,), 5e-3)))))
    sim = ns.Simulator(trained)
    with pytest.raises(TypeError) as err:
        sim.run(spikes(), state=sim.initial_state(3, dtype=torch.float64))
    assert str(err.value) == ("state of 'pop' field 'v' is torch.float64 but node 'pop' has parameter "
                              "'tau_mem' of torch.float32; make the state with "
                              "initial_state(batch, dtype=torch.float32)")


# ---------------------------------------------------------------------------- back-edges into a loop
def loop_with_outside_back_edge(seed=0):
    """x -> fc -> pop <-> rec, and fc -> skip ~> pop: a back-edge from outside the pop/rec loop."""
    g = recurrent_graph(seed=seed)
    g.add("skip", ns.Dense(10, 10, weight=torch.rand(10, 10) * 0.5))
    g.connect("fc", "skip").connect("skip", "pop", back=True)
    return g


def test_back_edge_from_outside_a_loop_is_bit_identical_in_both_schedules():
    g, x = loop_with_outside_back_edge(), spikes(t=40)
    layer_sim = ns.Simulator(g, schedule="layer")
    assert ["skip"] in [names for names, _ in layer_sim.blocks], "skip must run outside the loop"
    g.add_output("pop", "out")
    state = ns.Simulator(g).run(x[:7]).state          # non-zero previous outputs, skip's included
    layer = layer_sim.run(x, state=state)
    step = ns.Simulator(g, schedule="step").run(x, state=state)
    assert layer.outputs["pop"].sum() > 0
    for name in ("pop", "out"):
        assert torch.equal(layer.outputs[name], step.outputs[name])
    for name in ("pop", "out"):
        for a, b in zip(layer.state.nodes[name], step.state.nodes[name]):
            assert torch.equal(a, b)
    assert layer.state.previous.keys() == {"pop", "skip"} == step.state.previous.keys()
    assert torch.equal(layer.state.previous["pop"], step.state.previous["pop"])
    # skip is one matmul over T * batch rows in "layer", T matmuls over batch rows in "step":
    # BLAS may round those differently in the last bit
    torch.testing.assert_close(layer.state.previous["skip"], step.state.previous["skip"], rtol=1e-6, atol=1e-6)


def test_no_stack_of_outputs_without_autograd():
    """Without autograd a stepped block writes its outputs into one [T, batch, ...] tensor
    (one copy in memory): no list of T steps to stack."""
    g, x = recurrent_graph(), spikes()
    for node in g.nodes.values():
        if isinstance(node, ns.Dense):
            node.event_driven = False         # the same arithmetic with and without autograd
    sim = ns.Simulator(g)
    g.add_output("pop", "out")
    with torch.no_grad(), torch.profiler.profile() as prof:
        result = sim.run(x)
    assert not [e for e in prof.events() if e.name == "aten::stack"]
    assert torch.equal(result.outputs["pop"], sim.run(x).outputs["pop"])
