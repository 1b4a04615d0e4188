"""The run plan: what the :class:`neurosim.Simulator` derives once from a graph's structure.

A plan holds the topological order, the blocks of the schedule, the back-edge sources, the
in-edges of every port and the default outputs. It is made from (and stamped with)
:meth:`Graph.signature`; the Simulator checks that stamp at the start of every run and makes a
new plan when the graph has changed since (a node, an input, an edge or an output was added).

Example::

    >>> plan = make_plan(graph, dt=1e-3, schedule="layer")
    >>> plan.blocks            # [(["fc"], False), (["rec", "pop"], True), ...]
    >>> plan.ports["pop"]      # [[("fc", False), ("rec", False)]]: one list of (source, back) per port
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from .graph import Graph, plan_components

__all__ = ["RunPlan", "make_plan"]

#: (source name, is a back-edge) for one in-edge of a port
PortEdge = Tuple[str, bool]


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs to know about the graph's structure.

    signature: the :meth:`Graph.signature` the plan was made from;
    order: node names in topological order (feed-forward edges);
    blocks: ``(names in order, needs_stepping)`` per block, in the order they run;
    back_sources: names of nodes that are the source of a back-edge (their last output is state);
    ports: node -> one list of in-edges ``(source, back)`` per input port, in ``input_ports`` order
    and, within a port, in the order the edges were added (the order of the sum);
    read_outside: block index -> nodes of that block whose output sequence another block reads;
    outputs: the output nodes (:meth:`Graph.output_names`);
    input_readers: graph input -> the first nodes downstream that hold floating parameters or
    buffers (nodes without any, such as ``Flatten``, are looked through), whose dtype the input
    must have."""

    signature: tuple
    order: List[str]
    blocks: List[Tuple[List[str], bool]]
    back_sources: List[str]
    ports: Dict[str, List[List[PortEdge]]]
    read_outside: List[Set[str]]
    outputs: List[str]
    input_readers: Dict[str, List[str]]


def make_plan(graph: Graph, dt: float, schedule: str) -> RunPlan:
    """Validate ``graph`` and every node's parameters for ``dt`` (seconds), then plan its run.

    ``schedule``: ``"step"`` (the whole graph is one stepped block) or ``"layer"``/``"auto"``
    (one block per strongly connected component). Raises :class:`GraphError` or the node's own
    ``ValueError`` before anything is planned."""
    graph.validate()
    order = graph.topological_order()
    for name in order:
        graph.nodes[name].validate(dt, f"node {name!r}")
    blocks = [(list(order), True)] if schedule == "step" else plan_components(graph, order)
    read_outside = []
    for names, _ in blocks:
        inside = set(names)
        read_outside.append({n for n in names if any(e.target not in inside for e in graph.edges if e.source == n)})
    ports = {n: [[(e.source, e.back) for e in graph.in_edges(n) if e.port == port]
                 for port in graph.nodes[n].input_ports] for n in order}
    return RunPlan(signature=graph.signature(), order=order, blocks=blocks,
                   back_sources=sorted({e.source for e in graph.edges if e.back}),
                   ports=ports, read_outside=read_outside, outputs=graph.output_names(),
                   input_readers={name: _readers(graph, name) for name in graph.inputs})


def float_parameter(node) -> Optional[Tuple[str, "torch.dtype"]]:
    """``(name, dtype)`` of the node's first floating parameter or buffer; None when it has none."""
    for name, t in list(node.named_parameters()) + list(node.named_buffers()):
        if t.is_floating_point():
            return name, t.dtype
    return None


def _readers(graph: Graph, source: str) -> List[str]:
    """The first nodes downstream of ``source`` (breadth first, along every edge) that hold
    floating parameters, looking through the nodes that hold none."""
    targets: Dict[str, List[str]] = {}
    for e in graph.edges:
        targets.setdefault(e.source, []).append(e.target)
    readers, frontier, seen = [], [source], set()
    while frontier:
        for target in targets.get(frontier.pop(0), ()):
            if target in seen:
                continue
            seen.add(target)
            if float_parameter(graph.nodes[target]) is None:
                frontier.append(target)
            else:
                readers.append(target)
    return readers
