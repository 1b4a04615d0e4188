"""Saved-network specs of :class:`~neurosim.hardware.loihi.LoihiDense` and
:class:`~neurosim.hardware.loihi.LoihiConv2d` (``neurosim.save``/``load``).

LoihiConv2d: config ``{"in_shape", "weight_shape", "weight_exp", "stride", "padding", "dilation",
"groups", "latency"}``, the int8 ``weight_mant`` from its ``state_dict``.

Config ``{"in_features", "out_features", "weight_exp", "latency", "delay"}`` with ``delay`` an
int (every output neuron) or null, then the int64 tensor ``delay [out]``; the int8 mantissas
``weight_mant [out, in]`` come from the node's ``state_dict``. The ``loihi_cuba`` populations
need no spec of their own: the generic Population spec covers every registered neuron model, and
importing :mod:`neurosim.hardware.loihi` registers this one (``neurosim.load`` does).
"""
from __future__ import annotations

import torch

from ..node_specs import need, need_ints, need_tensor, register_node_spec
from .conv import LoihiConv2d
from .fixed_point import LoihiDense


def _describe(node: LoihiDense):
    config = {"in_features": node.in_features, "out_features": node.out_features,
              "weight_exp": node.weight_exp, "latency": node.latency}
    if isinstance(node.delay, torch.Tensor):
        return {**config, "delay": None}, {"delay": node.delays()}
    return {**config, "delay": node.delay}, {}


def _build(config, tensors) -> LoihiDense:
    shape = (need(config, "out_features", int, "an int"), need(config, "in_features", int, "an int"))
    delay = need(config, "delay", (int, type(None)), "an int number of steps or null (per-neuron tensor)")
    return LoihiDense(torch.zeros(shape, dtype=torch.int8), need(config, "weight_exp", int, "an int 0..7"),
                      need_tensor(tensors, "delay") if delay is None else delay,
                      latency=need(config, "latency", int, "0 or 1"))


register_node_spec(LoihiDense, _describe, _build)


def _describe_conv(node: LoihiConv2d):
    return {"in_shape": list(node.in_shape), "weight_shape": list(node.weight_mant.shape),
            "weight_exp": node.weight_exp, "stride": list(node.stride), "padding": list(node.padding),
            "dilation": list(node.dilation), "groups": node.groups, "latency": node.latency}, {}


def _build_conv(config, tensors) -> LoihiConv2d:
    return LoihiConv2d(need_ints(config, "in_shape", 3), torch.zeros(need_ints(config, "weight_shape", 4),
                                                                    dtype=torch.int8),
                       need(config, "weight_exp", int, "an int 0..7"), stride=need_ints(config, "stride", 2),
                       padding=need_ints(config, "padding", 2), dilation=need_ints(config, "dilation", 2),
                       groups=need(config, "groups", int, "an int >= 1"), latency=need(config, "latency", int, "0 or 1"))


register_node_spec(LoihiConv2d, _describe_conv, _build_conv)
