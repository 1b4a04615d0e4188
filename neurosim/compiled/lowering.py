"""Lowering: what a node is to the compiled machine, by registry (ARCHITECTURE.md rule 4).

A lowering turns one node, its state and ``dt`` into a :class:`LoweredNode`: the kind number
the machine dispatches on, the node's state as ``[batch, n]`` arrays (copies, advanced in
place), its parameters as arrays of the state's dtype, integer tables, flags, and ``finish``,
which builds the node's new state (its own State NamedTuple) from the advanced arrays.

Two registries: :data:`NODE_LOWERINGS` by node class (``Dense``, ``Sparse``, ``Delay``,
``Flatten``) and :data:`NEURON_LOWERINGS` by registered neuron-model name (``"lif"``,
``"coba_lif"``, ...), used for ``Population``. A node or model without an entry, or a setting
the kernel does not cover, raises :class:`NotLowerable` with the reason; the Simulator then
runs that node's block on the torch path and says so (:mod:`neurosim.compiled.placement`).

Example::

    >>> lowered = lower_node(sim.graph.nodes["pop"], state.nodes["pop"], dt=1e-4, batch=1,
    ...                      dtype=torch.float32)
    >>> lowered.kind, [a.shape for a in lowered.state]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

__all__ = ["NotLowerable", "LoweredNode", "NODE_LOWERINGS", "NEURON_LOWERINGS", "register_node_lowering",
           "register_neuron_lowering", "lower_node", "per_neuron", "state_arrays"]


class NotLowerable(Exception):
    """A node (or one of its settings) the compiled machine does not run; ``str()`` says why."""


@dataclass
class LoweredNode:
    """A node as the compiled machine sees it (see the module docstring).

    kind: a kind of :mod:`neurosim.compiled.kinds`; state: ``[batch, n]`` arrays advanced in
    place; params: 1D arrays of the state's dtype; ints: 1D int64 tables; extra2 / extra3: 2D /
    3D arrays of the state's dtype (weight tables, group buffers, delay rings); flags: up to
    four ints; finish(): the node's new state after the run.

    A fixed-point node (``kind >= kinds.INTEGER_KINDS``) keeps ``state``, ``extra2`` and
    ``extra3`` as int64 arrays (the integer tables I2 / I3); ``out_lane`` and ``port_lanes`` say
    which lane its output and each input port are in (``kinds.LANE_FLOAT`` by default).
    ``inexact()``, called after the run, returns None, or why the run's result is not the torch
    path's (the block is then run again there)."""

    kind: int
    state: List[torch.Tensor] = field(default_factory=list)
    params: List[torch.Tensor] = field(default_factory=list)
    ints: List[torch.Tensor] = field(default_factory=list)
    extra2: List[torch.Tensor] = field(default_factory=list)
    extra3: List[torch.Tensor] = field(default_factory=list)
    flags: Tuple[int, ...] = ()
    finish: Callable[[], Any] = lambda: None
    out_lane: int = 0
    port_lanes: Tuple[int, ...] = ()
    inexact: Callable[[], Optional[str]] = lambda: None


NODE_LOWERINGS: Dict[type, Callable] = {}
NEURON_LOWERINGS: Dict[str, Callable] = {}


def register_node_lowering(node_type: type):
    """Decorator: ``fn(node, state, dt, batch, dtype) -> LoweredNode`` for nodes of ``node_type``."""
    def decorate(fn):
        NODE_LOWERINGS[node_type] = fn
        return fn
    return decorate


def register_neuron_lowering(model_name: str):
    """Decorator: ``fn(params, dt, shape, dtype) -> (kind, params list, flags)`` for populations of
    the neuron model registered as ``model_name``."""
    def decorate(fn):
        NEURON_LOWERINGS[model_name.lower()] = fn
        return fn
    return decorate


def lower_node(node, state, dt: float, batch: int, dtype: torch.dtype) -> LoweredNode:
    """The :class:`LoweredNode` of ``node`` with its current ``state`` (``[batch, ...]``); raises
    :class:`NotLowerable` naming the reason when the compiled machine cannot run it."""
    from . import lower_neurons, lower_neurons_more, lower_projections  # noqa: F401  (fill the registries)
    for kind in type(node).__mro__:
        if kind in NODE_LOWERINGS:
            return NODE_LOWERINGS[kind](node, state, dt, batch, dtype)
    raise NotLowerable(f"{type(node).__name__} has no compiled kernel")


def per_neuron(value, shape, dtype: torch.dtype, where: str) -> torch.Tensor:
    """A parameter (a Python number or a tensor broadcasting to ``shape``) as a contiguous
    ``[prod(shape)]`` array of ``dtype``: a number is rounded to ``dtype`` once, as torch does
    when it combines a Python scalar with a tensor of that dtype. A tensor of another floating
    dtype raises :class:`NotLowerable` (torch would promote; the compiled path does not)."""
    if isinstance(value, torch.Tensor):
        if value.dtype != dtype:
            raise NotLowerable(f"{where} is a {value.dtype} tensor but the state is {dtype}")
        value = value.detach()
        if value.device.type != "cpu":
            raise NotLowerable(f"{where} is on {value.device}; the compiled path runs on the CPU")
        return value.expand(shape).reshape(-1).contiguous()
    return torch.full((int(torch.Size(shape).numel()),), float(value), dtype=dtype)


def state_arrays(state, batch: int, dtype: torch.dtype, where: str, integer: bool = False) -> List[torch.Tensor]:
    """Copies of every field of a State NamedTuple as contiguous ``[batch, n]`` arrays; with
    ``integer``, every field must be an integer tensor and is copied as int64."""
    arrays = []
    for name, value in zip(state._fields, state):
        if integer and isinstance(value, torch.Tensor) and not value.is_floating_point() \
                and value.dtype != torch.bool and value.device.type == "cpu":
            arrays.append(value.detach().reshape(batch, -1).to(torch.int64).clone())
            continue
        if integer or not isinstance(value, torch.Tensor) or value.dtype != dtype:
            raise NotLowerable(f"{where} state {name!r} is not a {'integer' if integer else dtype} tensor")
        if value.device.type != "cpu":
            raise NotLowerable(f"{where} state is on {value.device}; the compiled path runs on the CPU")
        arrays.append(value.detach().reshape(batch, -1).clone())
    return arrays
