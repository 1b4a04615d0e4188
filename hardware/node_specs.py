"""Node specs: each engine node type written down as a config and tensors, and built back.

A spec is a pair of functions registered for one node class:

* ``describe(node) -> (config, extra_tensors)``: ``config`` a JSON-able dict of the constructor's
  arguments (ints, floats, strings, bools, None, lists, dicts); ``extra_tensors`` the tensors the
  constructor needs that are not in ``node.state_dict()`` (per-synapse delays);
* ``build(config, tensors) -> node``: a new node with the same structure (values may be drawn at
  random; the generic layer loads the saved ones).

:func:`describe_nodes` adds every node's ``state_dict()`` (weights, biases, per-neuron and
trainable parameters, Sparse ``pre``/``post``, with their dtypes) to the extra tensors, and the
names of frozen parameters (``requires_grad`` False), giving one :class:`NodeRecord` per node. It
uses a :class:`~neurosim.hardware.registry.Backend`, so a network with nodes no spec covers
raises one :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing each such node and
why. A spec covers its class exactly: a subclass may behave differently and is reported.

:func:`build_node` inverts it: build, give each saved tensor its saved dtype (``float64`` stays
``float64``, the memory layout of the built tensor is kept), load the values
(``load_state_dict(strict=True)``), freeze, and finally describe the new node again and require
the result to equal the record exactly (config, tensor keys, dtypes, shapes, values): a record
that does not describe a real node raises :class:`NodeSpecError` naming the key, never loads
with other values. The global torch RNG is left as it was (constructors draw initial weights).

Example::

    >>> records = describe_nodes(graph)              # {name: NodeRecord}
    >>> copy = build_node(records["fc"])             # an equal, independent Dense
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import torch
from torch import nn

from neurosim.neurons.base import get_neuron_model
from neurosim.population import Population
from neurosim.projections import AvgPool2d, Conv1d, Conv2d, Delay, Dense, Flatten, MaxPool2d, Sparse
from neurosim.surrogate import available_surrogates, get_surrogate
from neurosim.threshold import Threshold

from .registry import Backend

__all__ = ["NodeRecord", "NodeSpecError", "register_node_spec", "describe_nodes", "describe_node",
           "build_node", "node_type_names", "SPECS"]

DescribeFn = Callable[[nn.Module], Tuple[Dict[str, Any], Dict[str, torch.Tensor]]]
BuildFn = Callable[[Dict[str, Any], Dict[str, torch.Tensor]], nn.Module]

#: the describe side, shared with the other backends' way of reporting unsupported nodes
SPECS = Backend("saved-network")
_BUILDERS: Dict[str, Tuple[DescribeFn, BuildFn]] = {}
_TYPES: Dict[str, type] = {}


class NodeSpecError(ValueError):
    """A config or tensor that does not describe a node; ``key`` names the config key or tensor."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"key {key!r}: {message}")


class NodeRecord(NamedTuple):
    """One node written down: ``type`` (class name), JSON-able ``config``, ``tensors`` (state dict
    plus the spec's extra tensors, detached, on the node's device) and ``frozen`` parameter names."""

    type: str
    config: Dict[str, Any]
    tensors: Dict[str, torch.Tensor]
    frozen: Tuple[str, ...]


def register_node_spec(node_type: type, describe: DescribeFn, build: BuildFn,
                       supports: Optional[Callable[[nn.Module], Optional[str]]] = None) -> None:
    """Register ``describe``/``build`` for exactly ``node_type`` (its ``__name__`` is the saved type).

    ``supports(node)`` returns None when this instance can be described, else the reason."""
    def exact(node):
        if type(node) is not node_type:
            return (f"{type(node).__name__} is a subclass of {node_type.__name__}; only the engine's own "
                    "node types are saved (a subclass may behave differently)")
        return supports(node) if supports is not None else None

    held = _TYPES.get(node_type.__name__)
    if held is not None and held is not node_type:
        raise ValueError(f"register_node_spec: the saved type name {node_type.__name__!r} already belongs to "
                         f"{held.__module__}.{held.__qualname__}")
    SPECS.register(node_type, supports=exact)(lambda name, node, context: describe_node(node))
    _BUILDERS[node_type.__name__] = (describe, build)
    _TYPES[node_type.__name__] = node_type


def node_type_names() -> list:
    """The saved type names that :func:`build_node` knows, sorted."""
    return sorted(_BUILDERS)


def describe_node(node: nn.Module) -> NodeRecord:
    """The record of one node (its type must have a spec; see :func:`describe_nodes`)."""
    describe, _ = _BUILDERS[type(node).__name__]
    config, extras = describe(node)
    state = {key: value.detach() for key, value in node.state_dict().items()}
    clash = sorted(set(extras) & set(state))
    if clash:   # a spec bug, not bad input
        raise RuntimeError(f"node spec of {type(node).__name__}: extra tensors {clash} clash with its state_dict")
    frozen = tuple(name for name, p in node.named_parameters() if not p.requires_grad)
    return NodeRecord(type(node).__name__, config, {**state, **extras}, frozen)


def describe_nodes(graph) -> Dict[str, NodeRecord]:
    """``{node name: NodeRecord}`` for every node of ``graph`` (a Graph or a Simulator), in order.

    Raises :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every node that
    no spec covers before describing any."""
    return SPECS.map_nodes(graph)


def build_node(record: NodeRecord) -> nn.Module:
    """A new node equal to the one ``record`` describes (see the module docstring).

    Raises :class:`NodeSpecError` naming the key for an unknown type, a missing, mistyped or
    invalid config key, a missing, unexpected or misshapen tensor, or a frozen name that is not a
    parameter."""
    if record.type not in _BUILDERS:
        raise NodeSpecError("type", f"unknown node type {record.type!r} (known: {node_type_names()})")
    describe, build = _BUILDERS[record.type]
    with torch.random.fork_rng(devices=[]):
        try:
            node = build(record.config, record.tensors)
        except NodeSpecError:
            raise
        except (TypeError, ValueError, KeyError, RuntimeError) as e:
            raise NodeSpecError("config", f"cannot build a {record.type}: {e}") from None
    _load_tensors(node, record.tensors)
    parameters = dict(node.named_parameters())
    for name in record.frozen:
        if name not in parameters:
            raise NodeSpecError("frozen", f"{name!r} is not a parameter of this {record.type} "
                                          f"(parameters: {sorted(parameters)})")
        parameters[name].requires_grad_(False)
    _check_same(record, describe_node(node))
    return node


def _load_tensors(node: nn.Module, tensors: Dict[str, torch.Tensor]) -> None:
    """Give each state entry of ``node`` the saved dtype (layout kept), then load the values."""
    held = node.state_dict(keep_vars=True)
    missing = sorted(set(held) - set(tensors))
    if missing:
        raise NodeSpecError(missing[0], f"missing tensor (this node needs {sorted(held)})")
    for key, target in held.items():
        saved = tensors[key]
        if tuple(saved.shape) != tuple(target.shape):
            raise NodeSpecError(key, f"tensor has shape {tuple(saved.shape)}, the node needs {tuple(target.shape)}")
        if saved.dtype != target.dtype:
            if not (saved.is_floating_point() and target.is_floating_point()):
                raise NodeSpecError(key, f"tensor has dtype {saved.dtype}, the node needs {target.dtype}")
            target.data = target.data.to(saved.dtype)       # preserve_format keeps the strides
    try:
        node.load_state_dict({key: tensors[key] for key in held}, strict=True)
    except RuntimeError as e:
        raise NodeSpecError("tensors", f"cannot load the tensors: {e}") from None


def _check_same(saved: NodeRecord, rebuilt: NodeRecord) -> None:
    if _canonical(saved.config) != _canonical(rebuilt.config):
        differ = sorted(k for k in set(saved.config) | set(rebuilt.config)
                        if _canonical(saved.config.get(k)) != _canonical(rebuilt.config.get(k)))
        raise NodeSpecError(differ[0] if differ else "config",
                            "the config does not describe a node (building it gives another value here)")
    unexpected = sorted(set(saved.tensors) - set(rebuilt.tensors))
    if unexpected:
        raise NodeSpecError(unexpected[0], f"unexpected tensor (this node has {sorted(rebuilt.tensors)})")
    for key, want in rebuilt.tensors.items():
        got = saved.tensors.get(key)
        if got is None:
            raise NodeSpecError(key, "missing tensor")
        if got.dtype != want.dtype or got.shape != want.shape or not _same_values(got, want.to(got.device)):
            raise NodeSpecError(key, f"the tensor ({got.dtype}, shape {tuple(got.shape)}) differs from the one "
                                     f"the rebuilt node holds ({want.dtype}, shape {tuple(want.shape)})")
    if tuple(saved.frozen) != rebuilt.frozen:
        raise NodeSpecError("frozen", f"{list(saved.frozen)} is not the list of this node's frozen parameters")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when ``a`` and ``b`` hold the same values, NaN equal to NaN (same dtype and shape)."""
    if torch.equal(a, b):
        return True
    return a.is_floating_point() and bool(((a == b) | (a.isnan() & b.isnan())).all())


# ---------------------------------------------------------------------- config access
def need(config: Dict[str, Any], key: str, kind, what: str):
    """``config[key]``, which must be an instance of ``kind`` (bools are not ints here)."""
    if not isinstance(config, dict):
        raise NodeSpecError("config", f"must be a mapping, got {type(config).__name__}")
    if key not in config:
        raise NodeSpecError(key, f"missing (expected {what})")
    value = config[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise NodeSpecError(key, f"expected {what}, got {value!r}")
    return value


def need_ints(config: Dict[str, Any], key: str, length: Optional[int] = None) -> Tuple[int, ...]:
    """``config[key]`` as a tuple of ints (of ``length`` when given)."""
    value = need(config, key, list, "a list of ints")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value) or \
            (length is not None and len(value) != length):
        raise NodeSpecError(key, f"expected a list of {length or 'some'} ints, got {value!r}")
    return tuple(value)


def need_tensor(tensors: Dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in tensors:
        raise NodeSpecError(key, "missing tensor")
    return tensors[key]


_NUMBER = (int, float)
_EVENT_MODES = ("auto", True, False)


# ---------------------------------------------------------------------- delays
def _delay_record(delays) -> Tuple[Optional[int], Dict[str, torch.Tensor]]:
    """A SynapticDelay (or None) as ``(int delay or None, {"delay": per-synapse tensor})``."""
    if delays is None:
        return 0, {}
    if delays.uniform:
        return delays.values[0], {}
    return None, {"delay": delays.steps(delays.group.shape)}


def _delay_argument(config, tensors):
    value = need(config, "delay", (int, type(None)), "an int number of steps or null (per-synapse tensor)")
    return need_tensor(tensors, "delay") if value is None else value


def _event_options(node) -> Dict[str, Any]:
    return {"event_driven": node.event_driven, "event_threshold": node.event_threshold}


def _event_arguments(config) -> Dict[str, Any]:
    mode = need(config, "event_driven", (str, bool), "'auto', true or false")
    if mode not in _EVENT_MODES:
        raise NodeSpecError("event_driven", f"expected 'auto', true or false, got {mode!r}")
    return {"event_driven": mode,
            "event_threshold": need(config, "event_threshold", (float, int, type(None)), "a density or null")}


# ---------------------------------------------------------------------- Population
_JSON_SCALARS = (bool, int, float, str, type(None))


def _surrogate_name(surrogate) -> Optional[str]:
    return next((n for n in available_surrogates() if type(get_surrogate(n)) is type(surrogate)), None)


def _surrogate_supports(surrogate) -> Optional[str]:
    if _surrogate_name(surrogate) is None:
        return f"its surrogate {type(surrogate).__name__} is not registered (register_surrogate)"
    for f in dataclasses.fields(surrogate):
        if not isinstance(getattr(surrogate, f.name), _JSON_SCALARS):
            return f"surrogate field {f.name!r} holds a {type(getattr(surrogate, f.name)).__name__}"
    return None


def _surrogate_config(surrogate) -> Dict[str, Any]:
    return {"name": _surrogate_name(surrogate), "fields": dataclasses.asdict(surrogate)}


def _surrogate_argument(config):
    surrogate = need(config, "surrogate", dict, "a mapping with name and fields")
    kind = need(surrogate, "name", str, "a registered surrogate name")
    if kind not in available_surrogates():
        raise NodeSpecError("surrogate", f"unknown surrogate {kind!r}; registered: {available_surrogates()}")
    fields = need(surrogate, "fields", dict, "a mapping of the surrogate's fields")
    try:
        return type(get_surrogate(kind))(**fields)
    except (TypeError, ValueError) as e:
        raise NodeSpecError("surrogate", str(e)) from None


def _population_supports(node: Population) -> Optional[str]:
    try:
        registered = get_neuron_model(node.model.name)
    except KeyError:
        registered = None
    if registered is not node.model:
        return f"its neuron model {node.model.name!r} is not the one registered under that name"
    reason = _surrogate_supports(node.surrogate)
    if reason:
        return reason
    for f in dataclasses.fields(node.params):
        value = getattr(node.params, f.name)
        if not isinstance(value, (torch.Tensor, *_JSON_SCALARS)):
            return f"parameter {f.name!r} holds a {type(value).__name__}, neither a tensor nor a number or string"
    return None


def _describe_population(node: Population):
    params = node.params
    values = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    surrogate = node.surrogate
    return {"model": node.model.name, "shape": list(node.out_shape),
            "params": {k: v for k, v in values.items() if not isinstance(v, torch.Tensor)},
            "tensor_params": [k for k, v in values.items() if isinstance(v, torch.Tensor)],
            "trainable": list(node.trainable), "surrogate": _surrogate_config(surrogate)}, {}


def _build_population(config, tensors) -> Population:
    name = need(config, "model", str, "a registered neuron model name")
    try:
        model = get_neuron_model(name)
    except KeyError as e:
        raise NodeSpecError("model", str(e).strip('"')) from None
    params = need(config, "params", dict, "a mapping of parameter values")
    tensor_params = need(config, "tensor_params", list, "a list of parameter names")
    surrogate = _surrogate_argument(config)
    try:
        values = {**params, **{n: need_tensor(tensors, n) for n in tensor_params}}
        params = model.params_type(**values)
    except (TypeError, ValueError) as e:
        raise NodeSpecError("params", str(e)) from None
    return Population(model, need_ints(config, "shape"), params, trainable=need(config, "trainable", list, "a list"),
                      surrogate=surrogate)


# ---------------------------------------------------------------------- projections
def _describe_projection(node):
    """Config of a Dense or Sparse: sizes, bias, delays and event options (weights are tensors)."""
    delay, extras = _delay_record(node.delays)
    return {"in_features": node.in_features, "out_features": node.out_features, "bias": node.bias is not None,
            "delay": delay, **_event_options(node)}, extras


def _build_dense(config, tensors) -> Dense:
    return Dense(need(config, "in_features", int, "an int"), need(config, "out_features", int, "an int"),
                 bias=need(config, "bias", bool, "a bool"), delay=_delay_argument(config, tensors),
                 **_event_arguments(config))


def _build_sparse(config, tensors) -> Sparse:
    # pre/post are stored sorted (the Sparse's own order), so rebuilding keeps every synapse's index
    return Sparse(need(config, "in_features", int, "an int"), need(config, "out_features", int, "an int"),
                  pre=need_tensor(tensors, "pre"), post=need_tensor(tensors, "post"),
                  delay=_delay_argument(config, tensors), bias=need(config, "bias", bool, "a bool"),
                  **_event_arguments(config))


def _describe_conv(node: Conv2d):
    return {"in_shape": list(node.in_shapes["input"]), "out_channels": node.out_channels,
            "kernel_size": list(node.kernel_size), "stride": list(node.stride), "padding": list(node.padding),
            "bias": node.bias is not None}, {}


def _build_conv(config, tensors) -> Conv2d:
    return Conv2d(need_ints(config, "in_shape", 3), need(config, "out_channels", int, "an int"),
                  need_ints(config, "kernel_size", 2), need_ints(config, "stride", 2),
                  need_ints(config, "padding", 2), bias=need(config, "bias", bool, "a bool"))


def _describe_conv1d(node: Conv1d):
    return {"in_shape": list(node.in_shapes["input"]), "out_channels": node.out_channels,
            "kernel_size": node.kernel_size, "stride": node.stride, "padding": node.padding,
            "dilation": node.dilation, "groups": node.groups, "bias": node.bias is not None}, {}


def _build_conv1d(config, tensors) -> Conv1d:
    return Conv1d(need_ints(config, "in_shape", 2), *(need(config, k, int, "an int") for k in
                  ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups")),
                  bias=need(config, "bias", bool, "a bool"))


def _describe_threshold(node: Threshold):
    return {"shape": list(node.out_shape), "trainable": node.trainable,
            "surrogate": _surrogate_config(node.surrogate)}, {}


def _build_threshold(config, tensors) -> Threshold:
    # the saved v_threshold (shape and dtype) builds the node, so the state dict fits it exactly
    return Threshold(need_ints(config, "shape"), need_tensor(tensors, "v_threshold"),
                     surrogate=_surrogate_argument(config), trainable=need(config, "trainable", bool, "a bool"))


def _describe_pool(node):
    return {"in_shape": list(node.in_shapes["input"]), "kernel_size": list(node.kernel_size),
            "stride": list(node.stride), "padding": list(node.padding)}, {}


def _pool_builder(cls):
    def build(config, tensors):
        return cls(need_ints(config, "in_shape", 3), need_ints(config, "kernel_size", 2),
                   need_ints(config, "stride", 2), need_ints(config, "padding", 2))
    return build


def _describe_flatten(node: Flatten):
    return {"in_shape": list(node.in_shapes["input"])}, {}


def _build_flatten(config, tensors) -> Flatten:
    return Flatten(need_ints(config, "in_shape"))


def _describe_delay(node: Delay):
    delay, extras = _delay_record(node.delays)
    return {"shape": list(node.out_shape), "delay": delay}, extras


def _build_delay(config, tensors) -> Delay:
    return Delay(need_ints(config, "shape"), _delay_argument(config, tensors))


register_node_spec(Population, _describe_population, _build_population, supports=_population_supports)
register_node_spec(Dense, _describe_projection, _build_dense)
register_node_spec(Sparse, _describe_projection, _build_sparse)
register_node_spec(Conv2d, _describe_conv, _build_conv)
register_node_spec(Conv1d, _describe_conv1d, _build_conv1d)
register_node_spec(Threshold, _describe_threshold, _build_threshold,
                   supports=lambda node: _surrogate_supports(node.surrogate))
register_node_spec(MaxPool2d, _describe_pool, _pool_builder(MaxPool2d))
register_node_spec(AvgPool2d, _describe_pool, _pool_builder(AvgPool2d))
register_node_spec(Flatten, _describe_flatten, _build_flatten)
register_node_spec(Delay, _describe_delay, _build_delay)
