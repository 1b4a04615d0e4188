"""Graph building and validation: every problem is reported, naming nodes and ports."""
import pytest
import torch

import neurosim as ns
from neurosim.graph import plan_components, strongly_connected_components


def lif(n):
    return ns.Population("lif", n)


def test_valid_recurrent_graph_orders_nodes_and_ignores_back_edges():
    g = ns.Graph().add_input("x", 4)
    g.add("fc", ns.Dense(4, 3)).add("pop", lif(3)).add("rec", ns.Dense(3, 3))
    g.chain("x", "fc", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
    g.validate()
    order = g.topological_order()
    assert order.index("fc") < order.index("pop") and order.index("rec") < order.index("pop")
    assert g.output_names() == ["pop"]


def test_all_problems_are_listed_in_one_error():
    g = ns.Graph().add_input("x", 4)
    g.add("fc", ns.Dense(5, 3)).add("pop", lif(3)).add("lonely", lif(2))
    g.connect("x", "fc").connect("fc", "pop").connect("ghost", "pop").connect("fc", "pop", port="exc")
    g.connect("pop", "x")
    with pytest.raises(ns.GraphError) as err:
        g.validate()
    text = str(err.value)
    assert "shape mismatch, 'x' gives (4,) but fc.input expects (5,)" in text
    assert "unknown source 'ghost'" in text
    assert "node 'pop' has no port 'exc'" in text
    assert "node 'lonely': port 'input' has no incoming edge (dangling port)" in text
    assert "input port cannot be an edge target 'x'" in text
    assert len(err.value.problems) == 5


def test_cycle_without_back_edge_is_named():
    g = ns.Graph().add_input("x", 3)
    g.add("a", ns.Dense(3, 3)).add("b", lif(3)).add("c", ns.Dense(3, 3))
    g.chain("x", "a", "b", "c").connect("c", "a")
    with pytest.raises(ns.GraphError, match=r"cycle without a back-edge: .*a -> b -> c|cycle without a back-edge: .*c -> a"):
        g.validate()
    g.edges[-1] = ns.Edge("c", "a", back=True)
    g.validate()


def test_back_edge_from_an_input_is_rejected():
    g = ns.Graph().add_input("x", 3).add("p", lif(3)).connect("x", "p", back=True)
    with pytest.raises(ns.GraphError, match="back-edge must start at a node"):
        g.validate()


@pytest.mark.parametrize("bad", ["", "a.b", "1x", None])
def test_bad_names_are_rejected(bad):
    with pytest.raises(ValueError):
        ns.Graph().add_input(bad, 3)


def test_duplicate_names_and_non_nodes_are_rejected():
    g = ns.Graph().add_input("x", 3)
    with pytest.raises(ValueError, match="already has"):
        g.add("x", lif(3))
    with pytest.raises(TypeError, match="expected a neurosim Node"):
        g.add("m", torch.nn.Linear(3, 3))


def test_unknown_output_is_reported():
    g = ns.Graph.sequential(3, ("p", lif(3))).add_output("q")
    with pytest.raises(ns.GraphError, match="output 'q' is not a node"):
        g.validate()


def test_strongly_connected_components_in_topological_order():
    comps = strongly_connected_components("abcde", [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d"), ("e", "a")])
    order = [sorted(c) for c in comps[::-1]]
    assert order == [["e"], ["a"], ["b", "c"], ["d"]]


def test_plan_marks_only_loops_for_stepping():
    g = ns.Graph().add_input("x", 4)
    g.add("fc", ns.Dense(4, 3)).add("pop", lif(3)).add("rec", ns.Dense(3, 3)).add("out", ns.Dense(3, 2))
    g.chain("x", "fc", "pop", "out").connect("pop", "rec", back=True).connect("rec", "pop")
    blocks = plan_components(g)
    assert blocks == [(["fc"], False), (["rec", "pop"], True), (["out"], False)]


def readme_graph():
    """The README's first network: x -> fc -> lif, lif ~> rec -> lif."""
    g = ns.Graph().add_input("x", 6)
    g.add("fc", ns.Dense(6, 5)).add("lif", lif(5)).add("rec", ns.Dense(5, 5))
    g.chain("x", "fc", "lif").connect("lif", "rec", back=True).connect("rec", "lif")
    return g


def test_default_output_of_a_recurrent_layer_is_the_population():
    g = readme_graph()
    assert g.output_names() == ["lif"]
    result = ns.Simulator(g).run(torch.ones(4, 2, 6))
    assert result.output.shape == (4, 2, 5)


def test_a_node_read_through_a_back_edge_by_a_later_layer_is_not_an_output():
    """lif ~> readout -> out: readout reads lif one step late, but lif still feeds the network."""
    g = readme_graph()
    g.add("readout", ns.Dense(5, 2)).add("out", lif(2))
    g.connect("lif", "readout", back=True).connect("readout", "out")
    assert g.output_names() == ["out"]
    assert ns.Simulator(g).run(torch.ones(4, 2, 6)).output.shape == (4, 2, 2)


def test_self_loop_and_marked_outputs():
    g = ns.Graph().add_input("x", 3)
    g.add("fc", ns.Dense(3, 3)).add("pop", lif(3))
    g.chain("x", "fc", "pop").connect("pop", "pop", back=True)
    assert g.output_names() == ["pop"]
    g.add_output("fc", "pop")
    assert g.output_names() == ["fc", "pop"]


def test_signature_changes_exactly_when_the_structure_does():
    g = readme_graph()
    same = g.signature()
    assert g.signature() == same
    for change in (lambda: g.add_output("lif"), lambda: g.connect("x", "fc"),
                   lambda: g.add("extra", lif(5)), lambda: g.add_input("y", 2)):
        before = g.signature()
        change()
        assert g.signature() != before
