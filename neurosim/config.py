"""Networks and runs described in YAML or TOML files (no code is executed from a config).

A config has these top-level keys (``network`` required, the rest optional)::

    dt: 1.0e-3                 # seconds
    steps: 500                 # time steps to simulate
    batch: 1
    seed: 0
    network:
      inputs:  {x: {shape: [100]}}
      nodes:
        fc:  {type: dense, in_features: 100, out_features: 50, weight_scale: 0.5}
        lif: {type: population, model: lif, shape: 50, params: {tau_mem: 0.02}}
      edges: [[x, fc], [fc, lif], {source: lif, target: rec, back: true}]
      outputs: [lif]
    input:                      # how the input spike trains are made
      x: {encoder: poisson, rate: 20.0}            # Hz, same rate on every channel
    monitors: [{node: lif, variables: [output, v], every: 1}]
    output: {dir: out, recording: recording.h5, plots: true}
    train: {...}                # used by `neurosim train` (see neurosim.cli)

Node types are looked up in :data:`NODE_TYPES` (dense, sparse, conv2d, maxpool2d, avgpool2d,
flatten, population); every other key of a node is passed to that node's constructor. Errors
name the file and the key path, e.g. ``net.yaml: network.nodes.lif.params.tau_mem: ...``.
"""
from __future__ import annotations

import os
import tomllib
from typing import Any, Callable, Dict

import torch
import yaml

from .graph import Graph, GraphError
from .neurons.base import get_neuron_model
from .population import Population

__all__ = ["ConfigError", "load_config", "build_graph", "NODE_TYPES", "register_node_type"]


class ConfigError(ValueError):
    """A config problem; the message names the file and the key path."""

    def __init__(self, path, key: str, message: str):
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


def load_config(path) -> Dict[str, Any]:
    """Read a ``.yaml``/``.yml`` or ``.toml`` file into a dict (errors name the file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(path, "", "no such config file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".yaml", ".yml"):
            with open(path) as f:
                data = yaml.safe_load(f)
        elif ext == ".toml":
            with open(path, "rb") as f:
                data = tomllib.load(f)
        else:
            raise ConfigError(path, "", f"unknown config extension {ext!r} (use .yaml, .yml or .toml)")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(path, "", f"cannot parse: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", "the top level must be a mapping")
    return data


def _population(model: str, shape, params: Dict[str, Any] | None = None, **kwargs) -> Population:
    neuron = get_neuron_model(model)
    params = neuron.params_type(**(params or {}))
    return Population(neuron, shape, params, **kwargs)


def _dense(in_features: int, out_features: int, weight: Dict[str, Any] | None = None,
           weight_scale: float | None = None, seed: int | None = None, **kwargs):
    """A Dense node; ``weight`` draws the matrix: ``{distribution: uniform, low, high}``,
    ``{distribution: normal, mean, std}`` or ``{distribution: constant, value}`` (else nn.Linear's
    default), then ``weight_scale`` multiplies it."""
    from .projections import Dense
    node = Dense(in_features, out_features, **kwargs)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    with torch.no_grad():
        if weight is not None:
            spec = dict(weight)
            kind = spec.pop("distribution", "uniform")
            shape = node.weight.shape
            if kind == "uniform" and set(spec) <= {"low", "high"}:
                low, high = spec.get("low", 0.0), spec.get("high", 1.0)
                node.weight.copy_(torch.rand(shape, generator=gen) * (high - low) + low)
            elif kind == "normal" and set(spec) <= {"mean", "std"}:
                node.weight.copy_(torch.randn(shape, generator=gen) * spec.get("std", 1.0) + spec.get("mean", 0.0))
            elif kind == "constant" and set(spec) <= {"value"}:
                node.weight.fill_(spec.get("value", 1.0))
            else:
                raise ValueError(f"weight: expected {{distribution: uniform, low, high}}, {{distribution: normal, "
                                 f"mean, std}} or {{distribution: constant, value}}, got {weight!r}")
        if weight_scale is not None:
            node.weight.mul_(weight_scale)
    return node


def _lazy(module: str, name: str) -> Callable:
    def make(**kwargs):
        import importlib
        cls = getattr(importlib.import_module(module, __package__), name)
        return cls(**kwargs)
    make.__name__ = name
    return make


NODE_TYPES: Dict[str, Callable] = {
    "population": _population,
    "dense": _dense,
    "sparse": _lazy(".projections", "Sparse"),
    "conv2d": _lazy(".projections", "Conv2d"),
    "maxpool2d": _lazy(".projections", "MaxPool2d"),
    "avgpool2d": _lazy(".projections", "AvgPool2d"),
    "flatten": _lazy(".projections", "Flatten"),
}


def register_node_type(name: str, factory: Callable) -> None:
    """Make ``type: name`` usable in configs; ``factory(**keys)`` returns a Node."""
    NODE_TYPES[name] = factory


def _require(mapping, key, path, where, kind=dict):
    if key not in mapping:
        raise ConfigError(path, where, f"missing required key {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ConfigError(path, f"{where}.{key}" if where else key,
                          f"expected a {kind.__name__ if isinstance(kind, type) else kind}, got {type(value).__name__}")
    return value


def build_graph(config: Dict[str, Any], path: str = "<config>") -> Graph:
    """Build and validate the :class:`Graph` described by ``config["network"]``, including each
    node's parameters against the config's ``dt``."""
    net = _require(config, "network", path, "")
    graph = Graph()
    for name, spec in _require(net, "inputs", path, "network").items():
        if not isinstance(spec, dict) or "shape" not in spec:
            raise ConfigError(path, f"network.inputs.{name}", "needs a 'shape'")
        try:
            graph.add_input(name, spec["shape"])
        except ValueError as e:
            raise ConfigError(path, f"network.inputs.{name}", str(e)) from None
    for name, spec in _require(net, "nodes", path, "network").items():
        where = f"network.nodes.{name}"
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(path, where, "needs a 'type' " f"(one of {sorted(NODE_TYPES)})")
        kind = spec["type"]
        if kind not in NODE_TYPES:
            raise ConfigError(path, f"{where}.type", f"unknown node type {kind!r} (known: {sorted(NODE_TYPES)})")
        args = {k: v for k, v in spec.items() if k != "type"}
        try:
            graph.add(name, NODE_TYPES[kind](**args))
        except TypeError as e:
            raise ConfigError(path, where, f"bad arguments for {kind!r}: {e}") from None
        except (ValueError, KeyError) as e:
            raise ConfigError(path, where, str(e).strip('"')) from None
    for i, edge in enumerate(net.get("edges", [])):
        where = f"network.edges[{i}]"
        if isinstance(edge, (list, tuple)) and len(edge) == 2:
            graph.connect(*edge)
        elif isinstance(edge, dict) and {"source", "target"} <= set(edge) and set(edge) <= {"source", "target", "port", "back"}:
            graph.connect(edge["source"], edge["target"], edge.get("port", "input"), bool(edge.get("back", False)))
        else:
            raise ConfigError(path, where, "an edge is [source, target] or {source, target, port?, back?}")
    if "outputs" in net:
        graph.add_output(*net["outputs"])
    try:
        graph.validate()
    except GraphError as e:
        raise ConfigError(path, "network", str(e)) from None
    dt = config.get("dt", 1e-3)
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ConfigError(path, "dt", f"must be a positive number of seconds, got {dt!r}")
    for name, node in graph.nodes.items():
        try:
            node.validate(float(dt), "params")
        except (ValueError, TypeError) as e:
            raise ConfigError(path, f"network.nodes.{name}", str(e)) from None
    return graph


def check_keys(section: Dict[str, Any], allowed, path: str, where: str) -> None:
    """Raise naming the first unknown key of ``section``."""
    for key in section:
        if key not in allowed:
            raise ConfigError(path, f"{where}.{key}" if where else key, f"unknown key (allowed: {sorted(allowed)})")

