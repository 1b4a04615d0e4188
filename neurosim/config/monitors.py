"""The ``monitors`` section of a config: which variables of which nodes are recorded."""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple

from ..graph import Graph
from ..monitor import Monitor, MonitorError
from .schema import ConfigError, check_keys, mapping

MONITOR_KEYS = ("node", "variables", "every")


class MonitorSpec(NamedTuple):
    """A checked ``monitors`` entry: the arguments of a :class:`neurosim.Monitor`."""

    node: str
    variables: tuple
    every: int


def monitor_specs(config: Dict[str, Any], graph: Graph, path) -> List[MonitorSpec]:
    """The checked ``monitors`` list (default: the ``output`` of each graph output node).

    Each entry is checked by the :class:`neurosim.Monitor` it describes (arguments, then the node
    and its variables against ``graph``), so the rules are the Monitor's own; one node may be
    watched by one entry only (its recording file is named after the node)."""
    entries = config.get("monitors")
    if entries is None:
        return [MonitorSpec(n, ("output",), 1) for n in graph.output_names()]
    if not isinstance(entries, list):
        raise ConfigError(path, "monitors", f"must be a list of {{node, variables, every}}, got {entries!r}")
    specs, watched = [], {}
    for i, entry in enumerate(entries):
        where = f"monitors[{i}]"
        entry = mapping(entry, path, where)
        check_keys(entry, MONITOR_KEYS, path, where)
        if "node" not in entry:
            raise ConfigError(path, where, "missing required key 'node'")
        try:
            monitor = Monitor(entry["node"], entry.get("variables", ("output",)), entry.get("every", 1))
            monitor.check(graph)
        except MonitorError as e:
            raise ConfigError(path, f"{where}.{e.argument}", e.reason) from None
        if monitor.node in watched:
            raise ConfigError(path, f"{where}.node", f"node {monitor.node!r} is already watched by "
                                                     f"monitors[{watched[monitor.node]}]; list all its variables there")
        watched[monitor.node] = i
        specs.append(MonitorSpec(monitor.node, monitor.variables, monitor.every))
    return specs
