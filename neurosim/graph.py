"""The network graph: named input ports, named nodes and edges between them.

Edges are feed-forward (this step's output of the source) or back-edges (``back=True``: the
source's output of the *previous* step, zero at t = 0 unless a state is given). The inputs on one
port of a node are summed. Everything is checked by :meth:`Graph.validate` before any step runs:
unknown node or port names, shape mismatches, ports without an input, and cycles made only of
feed-forward edges (a recurrent loop needs one back-edge) each produce one line of a single
:class:`GraphError`.

Example::

    >>> g = Graph()
    >>> g.add_input("x", 100)
    >>> g.add("fc", Dense(100, 50))
    >>> g.add("lif", Population("lif", 50))
    >>> g.connect("x", "fc"); g.connect("fc", "lif")
    >>> g.add("rec", Dense(50, 50)); g.connect("lif", "rec", back=True); g.connect("rec", "lif")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from torch import nn

from .node import Node, Shape, as_shape

__all__ = ["Graph", "Edge", "GraphError"]


class GraphError(ValueError):
    """A graph that cannot run; ``problems`` lists every reason, one per line of the message."""

    def __init__(self, problems: List[str]):
        self.problems = list(problems)
        super().__init__("invalid graph:\n  - " + "\n  - ".join(self.problems))


@dataclass(frozen=True)
class Edge:
    """``source`` -> ``target``'s ``port``; ``back`` edges read the previous step's output."""

    source: str
    target: str
    port: str = "input"
    back: bool = False

    def __str__(self):
        arrow = "~>" if self.back else "->"
        return f"{self.source} {arrow} {self.target}.{self.port}"


class _NodeDict(nn.ModuleDict):
    """A ModuleDict that accepts any identifier as a key, also names of dict methods such as
    ``pop`` or ``items`` (nodes are only reached by key, never as attributes)."""

    def __setitem__(self, key: str, module: nn.Module) -> None:
        self._modules[key] = module


class Graph(nn.Module):
    """Named input ports, named nodes (``nn.Module`` children) and edges."""

    def __init__(self):
        super().__init__()
        self.inputs: Dict[str, Shape] = {}
        self.nodes = _NodeDict()
        self.edges: List[Edge] = []
        self.outputs: List[str] = []

    # ------------------------------------------------------------------ building
    def add_input(self, name: str, shape) -> "Graph":
        """Declare an external input port with per-sample ``shape``."""
        self._check_new_name(name)
        self.inputs[name] = as_shape(shape)
        return self

    def add(self, name: str, node: Node) -> "Graph":
        """Add ``node`` under ``name`` (a plain identifier without dots)."""
        self._check_new_name(name)
        if not isinstance(node, Node):
            raise TypeError(f"Graph.add({name!r}): expected a neurosim Node, got {type(node).__name__}")
        self.nodes[name] = node
        return self

    def connect(self, source: str, target: str, port: str = "input", back: bool = False) -> "Graph":
        """Edge from ``source`` (input or node) to ``target``'s ``port``; checked by validate()."""
        self.edges.append(Edge(source, target, port, back))
        return self

    def chain(self, *names: str) -> "Graph":
        """Feed-forward edges ``names[0] -> names[1] -> ...`` on the default port."""
        for a, b in zip(names[:-1], names[1:]):
            self.connect(a, b)
        return self

    def add_output(self, *names: str) -> "Graph":
        """Mark nodes whose output sequences :meth:`Simulator.run` returns (default: the sinks)."""
        self.outputs.extend(names)
        return self

    @classmethod
    def sequential(cls, input_shape, *layers: Tuple[str, Node], input_name: str = "input") -> "Graph":
        """A feed-forward chain ``input -> layers[0] -> ...``; layers are ``(name, node)`` pairs."""
        g = cls().add_input(input_name, input_shape)
        for name, node in layers:
            g.add(name, node)
        return g.chain(input_name, *[name for name, _ in layers])

    def _check_new_name(self, name: str):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"node and input names must be identifiers, got {name!r}")
        if name in self.inputs or name in self.nodes:
            raise ValueError(f"the graph already has a node or input named {name!r}")

    # ------------------------------------------------------------------ queries
    def shape_of(self, name: str) -> Shape:
        return self.inputs[name] if name in self.inputs else self.nodes[name].out_shape

    def in_edges(self, name: str) -> List[Edge]:
        """The edges into node ``name``, in the order they were added (the order of a port's sum)."""
        return [e for e in self.edges if e.target == name]

    def output_names(self) -> List[str]:
        """The nodes whose sequences :meth:`Simulator.run` returns: the ones marked with
        :meth:`add_output`, else the sinks of the network.

        A node is a sink when it has no feed-forward out-edge and each of its back-edges stays
        inside its own loop (strongly connected component, back-edges included). So in
        ``x -> fc -> lif``, ``lif ~> rec -> lif`` the output is ``lif``; a node read through a
        back-edge by a later part of the network (``pop ~> readout``) is not an output. Every valid
        graph has at least one sink. Mark outputs explicitly to choose others."""
        if self.outputs:
            return list(self.outputs)
        loop_of = {}
        node_edges = [(e.source, e.target) for e in self.edges if e.source in self.nodes]
        for i, comp in enumerate(strongly_connected_components(self.nodes.keys(), node_edges)):
            loop_of.update(dict.fromkeys(comp, i))
        feeds_on = {e.source for e in self.edges
                    if e.source in self.nodes and (not e.back or loop_of.get(e.target) != loop_of[e.source])}
        return [n for n in self.nodes if n not in feeds_on]

    def signature(self) -> tuple:
        """A snapshot of the structure (inputs, nodes, edges, outputs), equal between two calls
        exactly when nothing was added, removed or replaced in between. O(nodes + edges)."""
        return (tuple(self.inputs.items()), tuple((n, id(node)) for n, node in self.nodes.items()),
                tuple(self.edges), tuple(self.outputs))

    def topological_order(self) -> List[str]:
        """Node names ordered along feed-forward edges (back-edges ignored). Raises on a cycle."""
        order, problems = self._toposort()
        if problems:
            raise GraphError(problems)
        return order

    def _toposort(self):
        deps = {n: {e.source for e in self.edges if e.target == n and not e.back and e.source in self.nodes}
                for n in self.nodes}
        order, done = [], set()
        remaining = dict(deps)
        while remaining:
            ready = [n for n, d in remaining.items() if d <= done]
            if not ready:
                return order, [f"cycle without a back-edge: {self._find_cycle(remaining)} "
                               "(mark one edge of the loop with back=True)"]
            for n in ready:
                order.append(n)
                done.add(n)
                del remaining[n]
        return order, []

    def _find_cycle(self, remaining) -> str:
        start = next(iter(remaining))
        path, seen = [start], {start}
        node = start
        while True:
            nxt = next(s for s in sorted(remaining[node]) if s in remaining)
            if nxt in seen:
                cyc = path[path.index(nxt):] + [nxt]
                return " -> ".join(reversed(cyc))
            path.append(nxt)
            seen.add(nxt)
            node = nxt

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`GraphError` listing every problem; return None when the graph can run."""
        problems: List[str] = []
        if not self.nodes:
            problems.append("the graph has no nodes")
        known = set(self.inputs) | set(self.nodes)
        for e in self.edges:
            if e.source not in known:
                problems.append(f"edge {e}: unknown source {e.source!r} (known: {sorted(known)})")
                continue
            if e.target not in self.nodes:
                what = "an input port cannot be an edge target" if e.target in self.inputs else "unknown target"
                problems.append(f"edge {e}: {what} {e.target!r}")
                continue
            node = self.nodes[e.target]
            if e.port not in node.input_ports:
                problems.append(f"edge {e}: node {e.target!r} has no port {e.port!r} "
                                f"(ports: {list(node.input_ports)})")
                continue
            if e.back and e.source in self.inputs:
                problems.append(f"edge {e}: a back-edge must start at a node, not at input {e.source!r}")
            want, got = node.in_shapes[e.port], self.shape_of(e.source)
            if want != got:
                problems.append(f"edge {e}: shape mismatch, {e.source!r} gives {got} but "
                                f"{e.target}.{e.port} expects {want}")
        for name, node in self.nodes.items():
            for port in node.input_ports:
                if not any(e.target == name and e.port == port for e in self.edges):
                    problems.append(f"node {name!r}: port {port!r} has no incoming edge (dangling port)")
        for out in self.outputs:
            if out not in self.nodes:
                problems.append(f"output {out!r} is not a node")
        _, cycle = self._toposort()
        problems.extend(cycle)
        if problems:
            raise GraphError(problems)

    def extra_repr(self) -> str:
        return "inputs={}, edges=[{}]".format(self.inputs, ", ".join(map(str, self.edges)))


def strongly_connected_components(names: Iterable[str], edges: Iterable[Tuple[str, str]]) -> List[List[str]]:
    """Tarjan's algorithm over ``edges`` (pairs); components come out in reverse topological
    order of the condensation (a component before every component that points to it)."""
    names = list(names)
    succ: Dict[str, List[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in succ and b in succ:
            succ[a].append(b)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack = set()
    comps: List[List[str]] = []
    counter = [0]

    def visit(v):
        # iterative DFS to avoid recursion limits on long chains
        work = [(v, iter(succ[v]))]
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop(); on_stack.discard(w); comp.append(w)
                    if w == node:
                        break
                comps.append(comp)

    for n in names:
        if n not in index:
            visit(n)
    return comps


def plan_components(graph: Graph, order: Optional[List[str]] = None) -> List[Tuple[List[str], bool]]:
    """Split the nodes into blocks the simulator runs one after the other.

    Each block is ``(names in feed-forward order, needs_stepping)``: a block is a strongly
    connected component of the graph with back-edges included; it needs stepping (all its nodes
    advanced together, one step at a time) when it holds a loop, and otherwise is a single node
    that can run over the whole sequence at once."""
    order = order or graph.topological_order()
    pos = {n: i for i, n in enumerate(order)}
    node_edges = [(e.source, e.target) for e in graph.edges if e.source in graph.nodes]
    comps = strongly_connected_components(order, node_edges)[::-1]
    blocks = []
    for comp in comps:
        comp = sorted(comp, key=pos.__getitem__)
        loop = len(comp) > 1 or any(e.source == e.target == comp[0] for e in graph.edges)
        blocks.append((comp, loop))
    return blocks
