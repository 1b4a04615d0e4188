"""The ``network`` section of a config: its inputs, nodes, edges and outputs, built into a
validated :class:`neurosim.Graph`."""
from __future__ import annotations

import warnings
from typing import Any, Dict

from ..graph import Graph, GraphError
from .nodes import NODE_TYPES, make_node
from .schema import FLAG, ConfigError, check_keys, field, is_name, mapping, name, section
from .settings import config_dt

NETWORK_KEYS = ("inputs", "nodes", "edges", "outputs")
EDGE_KEYS = ("source", "target", "port", "back")


def _add_inputs(graph: Graph, net: Dict[str, Any], path) -> None:
    for input_name, spec in section(net, "inputs", path, "network", required=True).items():
        where = f"network.inputs.{input_name}"
        spec = mapping(spec, path, where)
        check_keys(spec, ["shape"], path, where)
        if "shape" not in spec:
            raise ConfigError(path, where, "missing required key 'shape'")
        try:
            graph.add_input(input_name, spec["shape"])
        except (ValueError, TypeError) as e:
            raise ConfigError(path, where, str(e)) from None


def _add_nodes(graph: Graph, net: Dict[str, Any], path) -> None:
    for node_name, spec in section(net, "nodes", path, "network", required=True).items():
        where = f"network.nodes.{node_name}"
        spec = mapping(spec, path, where)
        if "type" not in spec:
            raise ConfigError(path, where, f"needs a 'type' (one of {sorted(NODE_TYPES)})")
        kind = spec["type"]
        if kind not in NODE_TYPES:
            raise ConfigError(path, f"{where}.type", f"unknown node type {kind!r} (known: {sorted(NODE_TYPES)})")
        node = make_node(kind, {k: v for k, v in spec.items() if k != "type"}, path, where)
        try:
            graph.add(node_name, node)
        except (ValueError, TypeError) as e:
            raise ConfigError(path, where, str(e)) from None


def _connect(graph: Graph, net: Dict[str, Any], path) -> None:
    edges = net.get("edges", [])
    if not isinstance(edges, list):
        raise ConfigError(path, "network.edges", f"must be a list of edges, got {edges!r}")
    for i, edge in enumerate(edges):
        where = f"network.edges[{i}]"
        if isinstance(edge, list) and len(edge) == 2 and all(map(is_name, edge)):
            graph.connect(*edge)
        elif isinstance(edge, dict):
            check_keys(edge, EDGE_KEYS, path, where)
            for key in ("source", "target"):
                field(edge, key, None, path, where, name("a node or input name"))
            port = field(edge, "port", "input", path, where, name("a port name"))
            back = field(edge, "back", False, path, where, FLAG)
            graph.connect(edge["source"], edge["target"], port, back)
        else:
            raise ConfigError(path, where, f"an edge is [source, target] or {{source, target, port?, back?}}, "
                                           f"got {edge!r}")


def build_graph(config: Dict[str, Any], path: str = "<config>") -> Graph:
    """Build and validate the :class:`Graph` described by ``config["network"]``, including each
    node's parameters against the config's ``dt``.

    Raises :class:`ConfigError` for any problem (unknown keys, bad types, bad node arguments, an
    invalid graph). Warnings about the discretisation (``dt`` not smaller than a time constant)
    are left to the :class:`neurosim.Simulator` that runs the graph: it validates every node again
    and warns once, naming the node. Random initial weights come from torch's global RNG; seed it
    first (:func:`load_run_config` does, with the config's ``seed``)."""
    net = section(config, "network", path, required=True)
    check_keys(net, NETWORK_KEYS, path, "network")
    graph = Graph()
    _add_inputs(graph, net, path)
    _add_nodes(graph, net, path)
    _connect(graph, net, path)
    outputs = net.get("outputs", [])
    if not (isinstance(outputs, list) and all(map(is_name, outputs))):
        raise ConfigError(path, "network.outputs", f"must be a list of node names, got {outputs!r}")
    graph.add_output(*outputs)
    try:
        graph.validate()
    except GraphError as e:
        raise ConfigError(path, "network", str(e)) from None
    dt = config_dt(config, path)
    for node_name, node in graph.nodes.items():
        try:
            with warnings.catch_warnings():    # the Simulator warns, naming the node (see above)
                warnings.simplefilter("ignore")
                node.validate(dt, "params")
        except (ValueError, TypeError) as e:
            raise ConfigError(path, f"network.nodes.{node_name}", str(e)) from None
    return graph
