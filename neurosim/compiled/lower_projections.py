"""Lowerings of the projections: Dense and Sparse (event-driven, with delays), Delay, Flatten.

Integer tables of a projection, always four (unused ones are empty), in this order:
``[structure 0, structure 1, delay values, ring head]`` where the structure is the Dense
column table ``group * out + j`` (per-synapse delays), or the Sparse CSR ``row_ptr`` and output
rows, or a Delay node's element groups. Parameters: ``[weights (Sparse), bias]``. Extra 2D
arrays: ``[weight table [in, out] (Dense), group buffer [batch, G * out]]``. Extra 3D: the delay
ring ``[D, batch, out]``, a copy of the state's buffer, given back as a ``DelayState`` in the
torch layout by ``finish``.
"""
from __future__ import annotations

import torch

from ..projections.conv import Flatten
from ..projections.delay import Delay, DelayState
from ..projections.dense import Dense
from ..projections.sparse import Sparse
from . import kinds as K
from .lowering import LoweredNode, NotLowerable, register_node_lowering

__all__ = ["lower_dense", "lower_sparse", "lower_delay", "lower_flatten", "delay_parts"]

_EMPTY_INT = torch.zeros(0, dtype=torch.long)


def _check_weight(weight: torch.Tensor, dtype: torch.dtype, where: str) -> torch.Tensor:
    if weight.dtype != dtype:
        raise NotLowerable(f"{where} weight is {weight.dtype} but the state is {dtype}")
    if weight.device.type != "cpu":
        raise NotLowerable(f"{where} weight is on {weight.device}; the compiled path runs on the CPU")
    return weight.detach()


def delay_parts(delays, state, batch: int, n_out: int, dtype: torch.dtype, where: str):
    """``(groups, values, head, rings, group buffer, finish)`` of a projection's delay line."""
    if delays is None:
        return 0, _EMPTY_INT, _EMPTY_INT, [], [], lambda: state
    if not isinstance(state, DelayState) or state.buffer.dtype != dtype:
        raise NotLowerable(f"{where} delay state is not a {dtype} DelayState")
    ring = state.buffer.detach().reshape(delays.max_delay, batch, n_out).clone()
    head = torch.zeros(1, dtype=torch.long)
    values = torch.tensor(delays.values, dtype=torch.long)
    buffer = torch.zeros(batch, delays.groups * n_out, dtype=dtype)
    shape = state.buffer.shape

    def finish():          # ring[(head + k) % D] is the torch buffer[k]
        return DelayState(torch.roll(ring, -int(head[0]), 0).reshape(shape))
    return delays.groups, values, head, [ring], [buffer], finish


def _bias(node, dtype, where):
    return [] if node.bias is None else [_check_weight(node.bias, dtype, f"{where} bias")]


@register_node_lowering(Dense)
def lower_dense(node: Dense, state, dt, batch, dtype) -> LoweredNode:
    """Dense: the ``[in, out]`` weight table, rows of the active inputs accumulated in order."""
    where = "Dense"
    weight_t = _check_weight(node.weight, dtype, where).t()
    weight_t = weight_t if weight_t.is_contiguous() else weight_t.contiguous()
    groups, values, head, rings, buffer, finish = delay_parts(node.delays, state, batch, node.out_features,
                                                               dtype, where)
    grouped = node.delays is not None and not node.delays.uniform
    column = node._delay_column_t.reshape(-1).long() if grouped else _EMPTY_INT
    bias = _bias(node, dtype, where)
    return LoweredNode(kind=K.DENSE, params=[torch.zeros(0, dtype=dtype)] + bias,
                       ints=[column, _EMPTY_INT, values, head], extra2=[weight_t] + buffer, extra3=rings,
                       flags=(groups, int(bool(bias)), int(grouped)), finish=finish)


@register_node_lowering(Sparse)
def lower_sparse(node: Sparse, state, dt, batch, dtype) -> LoweredNode:
    """Sparse: the CSR by presynaptic neuron, synapses of the active inputs scattered in order."""
    where = "Sparse"
    weight = _check_weight(node.weight, dtype, where).contiguous()
    groups, values, head, rings, buffer, finish = delay_parts(node.delays, state, batch, node.out_features,
                                                               dtype, where)
    bias = _bias(node, dtype, where)
    return LoweredNode(kind=K.SPARSE, params=[weight] + bias,
                       ints=[node.row_ptr.long(), node._rows.long(), values, head],
                       extra2=[torch.zeros(0, 0, dtype=dtype)] + buffer, extra3=rings,
                       flags=(groups, int(bool(bias)), 0), finish=finish)


@register_node_lowering(Delay)
def lower_delay(node: Delay, state, dt, batch, dtype) -> LoweredNode:
    """A delay line ``y[t] = x[t - d]`` (one delay, or one per element)."""
    n = int(torch.Size(node.out_shape).numel())
    if node.stateless:
        return LoweredNode(kind=K.IDENTITY)
    groups, values, head, rings, buffer, finish = delay_parts(node.delays, state, batch, n, dtype, "Delay")
    group = (torch.zeros(n, dtype=torch.long) if node.delays.group is None
             else node.delays.group.reshape(-1).long())
    return LoweredNode(kind=K.DELAY, params=[torch.zeros(0, dtype=dtype)],
                       ints=[group, _EMPTY_INT, values, head], extra2=[torch.zeros(0, 0, dtype=dtype)] + buffer,
                       extra3=rings, flags=(groups, 0, 1), finish=finish)


@register_node_lowering(Flatten)
def lower_flatten(node: Flatten, state, dt, batch, dtype) -> LoweredNode:
    """Flatten: the same ``[batch, n]`` values (the machine stores every node flat)."""
    return LoweredNode(kind=K.IDENTITY)
