"""The convolutional part of :func:`~neurosim.hardware.loihi.quantize`: engine ``Conv2d`` ->
:class:`~neurosim.hardware.loihi.LoihiConv2d`, ``Flatten`` kept as it is, pools refused.

A ``Conv2d`` (no bias) into population ``p`` is scaled like a Dense into ``p``: with ``k_p`` the
membrane gain and ``s_p`` the population's voltage scale, each weight ``W[o, c, u, v]`` becomes
an 8-bit mantissa at the layer's exponent ``e``::

    m[o, c, u, v] = clamp(round(k_p W[o, c, u, v] / (64 s_p 2^e)), -128, 127)

and the integer convolution keeps the float one's stride, padding, dilation and groups (the
engine's Conv2d has dilation 1 and groups 1). Worst-case current (the bound that keeps Loihi's
24-bit ``u`` from wrapping): one output neuron ``(o, i, j)`` reads the receptive field
``[C_in / groups, k_h, k_w]`` of every input channel of its group, so with every input spiking

    |x[o, i, j]| <= bound[o] = sum_{c, u, v} |m[o, c, u, v]| 2^(e + 6)        (per output channel)

the same for every position (fewer inputs at a padded border: the bound is an upper bound).
For a Dense, ``bound[j] = sum_i |m[j, i]| 2^(e + 6)``. :func:`neuron_bounds` lays either out in
the population's shape, so a population fed by several synapse nodes sums them per neuron (a
forward and a recurrent conv, say; the engine's shape check keeps a Dense, ``(n,)``, and a
Conv2d, ``(C, H, W)``, from sharing one population).

``Flatten`` (``[C, H, W] -> [C H W]``) between a population (or a graph input) and Dense nodes
passes the integer spikes through unchanged; it adds no latency, so lags pass through it.

Refused: a Conv2d with a bias (Loihi's bias acts on the voltage, not on the synaptic input);
MaxPool2d / AvgPool2d (Loihi has no graded pooling: use a strided conv or pool=1); see
:func:`refusal`.

Shapes: conv weights ``[C_out, C_in / groups, k_h, k_w]``; bounds ``[rows]`` -> population shape.

Example::

    >>> # input (2, 8, 8) -> conv1 -> lif1 -> conv2 (stride 2) -> lif2 -> flat -> fc -> out
    >>> qsim, report = quantize(sim, max_weight_exp=1)
    >>> qsim.graph.nodes["conv1"].latency, report.latency_steps      # 1, {lif1: 1, lif2: 2, out: 3}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from neurosim.graph import Graph
from neurosim.population import Population
from neurosim.projections.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from neurosim.projections.dense import Dense

from .conv import LoihiConv2d
from .fixed_point import ACTIVATION_SHIFT

__all__ = ["ConvGeometry", "conv_reason", "map_conv", "map_flatten", "refusal", "neuron_bounds",
           "conv_structure_problems", "loihi_conv", "SYNAPSE_TYPES"]

#: node types that become integer synapses (they carry the population's weight scale)
SYNAPSE_TYPES = (Dense, Conv2d)

_POOL_REASON = ("Loihi has no graded pooling (no pooling layer; its synapses only sum weighted spikes): use a "
                "strided conv or pool=1")
_REFUSED = {MaxPool2d: _POOL_REASON, AvgPool2d: _POOL_REASON}


@dataclass(frozen=True)
class ConvGeometry:
    """What a LoihiConv2d needs besides its mantissas: the input shape and the conv's geometry."""

    in_shape: Tuple[int, int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int


def refusal(node) -> Optional[str]:
    """The reason a node type is refused outright (pools), or None."""
    for cls, why in _REFUSED.items():
        if isinstance(node, cls):
            return why
    return None


def conv_reason(node: Conv2d) -> Optional[str]:
    """Why this Conv2d cannot be mapped (None when it can)."""
    if node.bias is not None:
        return "has a bias (Loihi's bias acts on the voltage, not on the synaptic input): build it with bias=False"
    return None


def map_conv(name: str, node: Conv2d, dt: float) -> Tuple[torch.Tensor, ConvGeometry]:
    """``(W float64 [C_out, C_in / groups, k_h, k_w], geometry)``; the node is only read."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(int(a) for a in v)   # noqa: E731
    geometry = ConvGeometry(tuple(node.in_shapes["input"]), pair(node.stride), pair(node.padding),
                            pair(getattr(node, "dilation", 1)), int(getattr(node, "groups", 1)))
    return node.weight.detach().to(torch.float64).clone(), geometry


def map_flatten(name: str, node: Flatten, dt: float) -> Tuple[int, ...]:
    """The Flatten's input shape (the quantised graph gets a new Flatten of it)."""
    return tuple(node.in_shapes["input"])


def loihi_conv(mant: torch.Tensor, exponent: int, geometry: ConvGeometry, latency: int) -> LoihiConv2d:
    """The integer convolution with ``geometry``, int8 mantissas ``mant`` and exponent ``exponent``."""
    return LoihiConv2d(geometry.in_shape, mant.to(torch.int8), exponent, stride=geometry.stride,
                       padding=geometry.padding, dilation=geometry.dilation, groups=geometry.groups,
                       latency=latency)


def neuron_bounds(mant: torch.Tensor, exponent: int, per_channel: bool, shape) -> torch.Tensor:
    """Largest ``|x|`` one synapse node can send each neuron of a population of ``shape`` in one
    step (every input spiking): ``sum |m| 2^(e + 6)`` over each row (a Dense's output neuron, or a
    conv's output channel, repeated over its ``H x W`` positions), float64 in ``shape``."""
    rows = mant.abs().to(torch.float64).flatten(1).sum(1) * 2.0 ** (exponent + ACTIVATION_SHIFT)
    if per_channel:
        return rows.reshape(-1, *([1] * (len(shape) - 1))).expand(*shape)
    return rows.reshape(*shape)


def conv_structure_problems(graph: Graph) -> List[Tuple[str, str, str]]:
    """Conv2d nodes feed exactly one population and read graph inputs or populations; a Flatten
    reads one population (or graph input) and feeds Dense nodes only."""
    problems = []
    for name, node in graph.nodes.items():
        if not isinstance(node, (Conv2d, Flatten)):
            continue
        kind = type(node).__name__
        ins = graph.in_edges(name)
        targets = sorted({e.target for e in graph.edges if e.source == name})
        if isinstance(node, Conv2d):
            if len(targets) != 1 or not isinstance(graph.nodes[targets[0]], Population):
                problems.append((name, kind, f"feeds {targets or 'nothing'}; it must feed exactly one population "
                                 "(its weights are scaled to that population's voltage)"))
            bad = [e.source for e in ins
                   if e.source in graph.nodes and not isinstance(graph.nodes[e.source], Population)]
            if bad:
                problems.append((name, kind, f"reads {bad}, which are not populations (Loihi synapses carry spikes)"))
            continue
        sources = [e.source for e in ins]
        if len(sources) != 1 or (sources[0] in graph.nodes and not isinstance(graph.nodes[sources[0]], Population)):
            problems.append((name, kind, f"reads {sources}; a Flatten passes the spikes of one population (or "
                             "graph input) on to Dense nodes"))
        bad = [t for t in targets if not isinstance(graph.nodes[t], Dense)]
        if bad or not targets:
            problems.append((name, kind, f"feeds {bad or 'nothing'}; a Flatten must feed Dense nodes only"))
    return problems
