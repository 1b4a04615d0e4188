"""The exporter registry shared by every backend (ARCHITECTURE.md rules 4 and 12).

A backend is a :class:`Backend`: a dict from node type to a mapping function. Mapping a network
looks every node up by its type (the most specific registered class of its MRO wins); a node
that no entry covers, or whose entry refuses this particular instance (``supports`` returns a
reason), is collected, and one :class:`UnsupportedNodesError` lists every such node and why,
before anything is built. A mapping function reads the node and never changes it.

Example::

    >>> NORSE = Backend("norse")
    >>> @NORSE.register(Dense, supports=lambda node: "delays" if node.max_delay else None)
    ... def _dense(name, node, context):
    ...     return torch.nn.Linear(node.in_features, node.out_features, bias=False)
    >>> modules = NORSE.map_nodes(sim)           # {node name: what the function returned}
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

__all__ = ["Backend", "UnsupportedNodesError"]

#: ``fn(name, node, context) -> anything``: the node's counterpart in the backend
MapFn = Callable[[str, nn.Module, Any], Any]
#: ``supports(node) -> None`` when the entry can map this node, else the reason it cannot
SupportsFn = Callable[[nn.Module], Optional[str]]


class UnsupportedNodesError(ValueError):
    """Nodes a backend cannot map; ``problems`` holds ``(node name, type name, reason)``."""

    def __init__(self, backend: str, problems: List[Tuple[str, str, str]]):
        self.backend, self.problems = backend, list(problems)
        lines = "\n  - ".join(f"node {name!r} ({kind}): {why}" for name, kind, why in self.problems)
        super().__init__(f"the {backend} backend cannot map {len(self.problems)} node(s):\n  - {lines}")


class Backend:
    """A registry from node type to mapping function for one backend named ``name``."""

    def __init__(self, name: str):
        self.name = name
        self._entries: Dict[type, Tuple[MapFn, Optional[SupportsFn]]] = {}

    def register(self, node_type: type, supports: Optional[SupportsFn] = None) -> Callable[[MapFn], MapFn]:
        """Decorator: ``fn`` maps nodes of ``node_type`` (and subclasses without their own entry)."""
        if not isinstance(node_type, type):
            raise TypeError(f"{self.name} backend: register() takes a node class, got {node_type!r}")

        def decorate(fn: MapFn) -> MapFn:
            self._entries[node_type] = (fn, supports)
            return fn
        return decorate

    def entry(self, node: nn.Module) -> Tuple[Optional[MapFn], Optional[str]]:
        """``(fn, None)`` when ``node`` can be mapped, else ``(None, reason)``."""
        for cls in type(node).__mro__:
            if cls in self._entries:
                fn, supports = self._entries[cls]
                reason = supports(node) if supports is not None else None
                return (None, reason) if reason else (fn, None)
        known = ", ".join(sorted(c.__name__ for c in self._entries)) or "none"
        return None, f"no {self.name} mapping for node type {type(node).__name__} (supported: {known})"

    def check(self, graph) -> None:
        """Raise :class:`UnsupportedNodesError` listing every node of ``graph`` that cannot be mapped."""
        problems = []
        for name, node in graph.nodes.items():
            fn, reason = self.entry(node)
            if fn is None:
                problems.append((name, type(node).__name__, reason))
        if problems:
            raise UnsupportedNodesError(self.name, problems)

    def map_nodes(self, graph, context: Any = None) -> Dict[str, Any]:
        """Check every node first, then map each: ``{node name: fn(name, node, context)}`` in the
        graph's insertion order. ``graph`` may be a :class:`~neurosim.Graph` or a Simulator."""
        graph = getattr(graph, "graph", graph)
        self.check(graph)
        return {name: self.entry(node)[0](name, node, context) for name, node in graph.nodes.items()}

    def supported_types(self) -> List[type]:
        """The node classes with an entry."""
        return list(self._entries)
