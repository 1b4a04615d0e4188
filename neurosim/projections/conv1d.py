"""1-D convolutional projection for spiking sequences of channels (NIR ``Conv1d``).

Stateless, like :class:`~neurosim.projections.conv.Conv2d`: the simulator applies it to a whole
``[T, batch, C, L]`` sequence in one ``F.conv1d`` call. Input ``x [C_in, L]``, weight
``W [C_out, C_in / groups, k]``, channels split into ``groups`` blocks::

    y[o, j] = sum_{c in group(o), u} W[o, c, u] x_pad[c, s j + d u]  (+ bias[o])
    L_out = floor((L + 2 p - d (k - 1) - 1) / s) + 1

with stride s, zero padding p and dilation d.

Shapes: per-sample ``in_shape = (C_in, L)``, ``out_shape = (out_channels, L_out)``, computed at
construction; a kernel that does not fit raises ``ValueError``.

Example::

    >>> conv = Conv1d((4, 100), 8, kernel_size=5, stride=2, padding=2, dilation=1, groups=2)  # -> (8, 50)
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..node import Node, as_shape
from .conv import conv_output_size

__all__ = ["Conv1d"]


def _positive_int(value, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Conv1d: {name} must be an int >= {minimum}, got {value!r}")
    return value


class Conv1d(Node):
    """1-D convolution ``(C_in, L) -> (out_channels, L_out)`` (see the module docstring).

    ``weight`` may be given ``[out_channels, C_in / groups, k]`` (a floating weight keeps its
    dtype); by default it is drawn uniform in +-1/sqrt(C_in k / groups) (like ``nn.Conv1d``).
    Units: output = weight x input.

    count_ops (exact): ``synops`` = sum over non-zero inputs ``x[c, l]`` of their fan-out
    ``(out_channels / groups) x n(l)``, ``n(l)`` the number of output positions whose receptive
    field holds ``l``; ``macs`` = rows x C_out x L_out x (C_in / groups) x k.

    Shapes: ``[batch, C_in, L] -> [batch, out_channels, L_out]`` (``out_shape``)."""

    stateless = True

    def __init__(self, in_shape, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = False, weight: Optional[torch.Tensor] = None):
        in_shape = as_shape(in_shape)
        if len(in_shape) != 2:
            raise ValueError(f"Conv1d: in_shape must be (channels, length), got {in_shape}")
        _positive_int(out_channels, "out_channels", 1)
        self.kernel_size = _positive_int(kernel_size, "kernel_size", 1)
        self.stride = _positive_int(stride, "stride", 1)
        self.padding = _positive_int(padding, "padding", 0)
        self.dilation = _positive_int(dilation, "dilation", 1)
        self.groups = _positive_int(groups, "groups", 1)
        channels, length = in_shape
        if channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels={channels} and "
                             f"out_channels={out_channels}")
        l_out = conv_output_size(length, kernel_size, stride, padding, dilation)
        if l_out < 1:
            raise ValueError(f"Conv1d: a kernel of {kernel_size} (stride {stride}, padding {padding}, dilation "
                             f"{dilation}) does not fit the input of length {length}")
        super().__init__({"input": in_shape}, (out_channels, l_out))
        self.in_channels, self.out_channels = channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()
        if weight is not None:
            weight = torch.as_tensor(weight)
            if tuple(weight.shape) != tuple(self.weight.shape):
                raise ValueError(f"Conv1d: weight must have shape (out_channels, in_channels / groups, k) = "
                                 f"{tuple(self.weight.shape)}, got {tuple(weight.shape)}")
            dtype = weight.dtype if weight.is_floating_point() else torch.get_default_dtype()
            self.weight = nn.Parameter(weight.detach().to(dtype).clone())   # a float64 weight stays float64
            if self.bias is not None:
                self.bias = nn.Parameter(self.bias.detach().to(dtype))
        # n(l): output positions reached by input l = transposed conv of ones with a ones kernel
        reach = torch.nn.grad.conv1d_input((1, 1, length), torch.ones(1, 1, kernel_size), torch.ones(1, 1, l_out),
                                           stride=stride, padding=padding, dilation=dilation)
        self.register_buffer("_reach", reach[0, 0].round().to(torch.long), persistent=False)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.weight.shape[1] * self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def step(self, x, state, dt: float):
        """``[batch, C_in, L] -> [batch, C_out, L_out]``."""
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups), state

    def fan_out(self) -> torch.Tensor:
        """``[L]`` synapses reached by one input at each position (per input channel)."""
        return self._reach * (self.out_channels // self.groups)

    def count_ops(self, x, output):
        c, length = self.in_shapes["input"]
        active = torch.count_nonzero(x.detach().reshape(-1, c, length), dim=(0, 1))   # [L]
        rows = x.numel() // (c * length)
        per_row = math.prod(self.out_shape) * (c // self.groups) * self.kernel_size
        return {"synops": (active * self.fan_out()).sum(), "macs": torch.tensor(rows * per_row)}

    def extra_repr(self) -> str:
        return (f"{self.in_shapes['input']} -> {self.out_shape}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}")
