"""The node types of a config (``type: dense`` ...): a registry from name to node factory.

A factory takes the node's keys (all but ``type``) as keyword arguments and returns a Node. It
raises ``ConfigError(None, key, message)`` for a problem at one of its keys; :func:`make_node`
puts the file and the node's key path in front of it.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, Optional

import torch

from ..neurons.base import get_neuron_model
from ..population import Population
from .schema import INTEGER, NUMBER, ConfigError, check_keys, checked, choice, field, join, mapping


def _population(model: str, shape, params: Optional[Dict[str, Any]] = None, **kwargs) -> Population:
    """A Population of the registered neuron ``model``; ``params`` are its Params' fields."""
    try:
        neuron = get_neuron_model(model)
    except KeyError as e:
        raise ConfigError(None, "model", str(e).strip('"')) from None
    params = {} if params is None else mapping(params, None, "params")
    check_keys(params, [f.name for f in dataclasses.fields(neuron.params_type)], None, "params")
    try:
        params = neuron.params_type(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(None, "params", str(e)) from None
    return Population(neuron, shape, params, **kwargs)


#: weight distributions of a dense node: name -> {key: default}
WEIGHT_DISTRIBUTIONS = {"uniform": {"low": 0.0, "high": 1.0}, "normal": {"mean": 0.0, "std": 1.0},
                        "constant": {"value": 1.0}}


def _draw(weight: torch.Tensor, kind: str, args: Dict[str, float], generator) -> None:
    """Fill ``weight`` in place from the distribution ``kind`` with its ``args``."""
    if kind == "uniform":
        weight.copy_(torch.rand(weight.shape, generator=generator) * (args["high"] - args["low"]) + args["low"])
    elif kind == "normal":
        weight.copy_(torch.randn(weight.shape, generator=generator) * args["std"] + args["mean"])
    else:
        weight.fill_(args["value"])


def _dense(in_features: int, out_features: int, weight: Dict[str, Any] | None = None,
           weight_scale: float | None = None, seed: int | None = None, **kwargs):
    """A Dense node; ``weight`` draws the matrix: ``{distribution: uniform, low, high}``,
    ``{distribution: normal, mean, std}`` or ``{distribution: constant, value}`` (else nn.Linear's
    default), then ``weight_scale`` multiplies it; ``seed`` seeds the draw."""
    from ..projections import Dense
    if seed is not None:
        checked(seed, None, "seed", INTEGER)
    if weight_scale is not None:
        weight_scale = checked(weight_scale, None, "weight_scale", NUMBER)
    draw = None
    if weight is not None:
        spec = mapping(weight, None, "weight")
        kind = field(spec, "distribution", "uniform", None, "weight", choice(WEIGHT_DISTRIBUTIONS))
        check_keys(spec, ["distribution", *WEIGHT_DISTRIBUTIONS[kind]], None, "weight")
        draw = kind, {key: field(spec, key, default, None, "weight", NUMBER)
                      for key, default in WEIGHT_DISTRIBUTIONS[kind].items()}
    node = Dense(in_features, out_features, **kwargs)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    with torch.no_grad():
        if draw is not None:
            _draw(node.weight, *draw, generator)
        if weight_scale is not None:
            node.weight.mul_(weight_scale)
    return node


def _lazy(module: str, name: str) -> Callable:
    """A factory that imports ``name`` from ``module`` (relative to this package) when used."""
    def make(**kwargs):
        cls = getattr(importlib.import_module(module, __package__), name)
        return cls(**kwargs)
    make.__name__ = name
    return make


#: node types usable in configs: ``type`` -> factory(**keys) returning a Node
NODE_TYPES: Dict[str, Callable] = {
    "population": _population,
    "dense": _dense,
    "sparse": _lazy("..projections", "Sparse"),
    "conv2d": _lazy("..projections", "Conv2d"),
    "maxpool2d": _lazy("..projections", "MaxPool2d"),
    "avgpool2d": _lazy("..projections", "AvgPool2d"),
    "flatten": _lazy("..projections", "Flatten"),
}


def register_node_type(name: str, factory: Callable) -> None:
    """Make ``type: name`` usable in configs; ``factory(**keys)`` returns a Node. A factory
    rejects bad arguments with ``TypeError``/``ValueError``/``LookupError`` (reported at the
    node's key path) or ``ConfigError(None, key, message)`` (reported at ``node.key``)."""
    NODE_TYPES[name] = factory


def make_node(kind: str, args: Dict[str, Any], path, where: str):
    """The node ``NODE_TYPES[kind](**args)``; any problem is a ConfigError at ``where``."""
    try:
        return NODE_TYPES[kind](**args)
    except ConfigError as e:
        raise ConfigError(path, join(where, e.key), e.message) from None
    except TypeError as e:
        raise ConfigError(path, where, f"bad arguments for {kind!r}: {e}") from None
    except (ValueError, LookupError) as e:     # LookupError: IndexError (a Sparse index), KeyError
        raise ConfigError(path, where, str(e).strip('"')) from None
