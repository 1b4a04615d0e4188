"""The exporter registry: lookup by type (most specific first), one error listing every node."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.registry import Backend, UnsupportedNodesError


class SpecialDense(ns.Dense):
    pass


def graph():
    g = ns.Graph.sequential(4, ("fc", ns.Dense(4, 3)), ("lif", ns.Population("lif", 3)),
                            ("fc2", SpecialDense(3, 2, delay=2)), ("pool", ns.Population("adex", 2)))
    return g


def test_most_specific_entry_wins_and_nodes_map_in_graph_order():
    backend = Backend("toy")
    backend.register(ns.Dense)(lambda name, node, ctx: ("dense", name, ctx))
    backend.register(SpecialDense)(lambda name, node, ctx: ("special", name, ctx))
    backend.register(ns.Population)(lambda name, node, ctx: (node.model.name, name, ctx))
    mapped = backend.map_nodes(ns.Simulator(graph()), context=7)
    assert mapped == {"fc": ("dense", "fc", 7), "lif": ("lif", "lif", 7),
                      "fc2": ("special", "fc2", 7), "pool": ("adex", "pool", 7)}


def test_every_unmappable_node_is_listed_once_before_anything_is_mapped():
    backend, calls = Backend("toy"), []
    backend.register(ns.Dense, supports=lambda n: "delays are not supported" if n.max_delay else None)(
        lambda name, node, ctx: calls.append(name))
    with pytest.raises(UnsupportedNodesError) as err:
        backend.map_nodes(graph())
    assert calls == []
    assert err.value.problems == [
        ("lif", "Population", "no toy mapping for node type Population (supported: Dense)"),
        ("fc2", "SpecialDense", "delays are not supported"),
        ("pool", "Population", "no toy mapping for node type Population (supported: Dense)")]
    assert str(err.value).startswith("the toy backend cannot map 3 node(s):\n  - node 'lif' (Population)")


def test_register_takes_a_class():
    with pytest.raises(TypeError, match="register\\(\\) takes a node class"):
        Backend("toy").register("Dense")
