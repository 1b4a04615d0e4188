"""Convolutional projection, pooling and flattening nodes for spiking feature maps.

All are stateless: the simulator applies them to a whole ``[T, batch, C, H, W]`` sequence in one
call (time and batch folded into one axis for ``F.conv2d`` / pooling).

Conv2d (NIR ``Conv2d``), input ``x [C_in, H, W]``, weight ``W [C_out, C_in, k_h, k_w]``::

    y[o, i, j] = sum_{c, u, v} W[o, c, u, v] x_pad[c, s_h i + u, s_w j + v]  (+ bias[o])
    H_out = floor((H + 2 p_h - k_h) / s_h) + 1,   W_out likewise

MaxPool2d / AvgPool2d: max / mean over each ``k_h x k_w`` window (zero padding counts in the
mean, as in ``F.avg_pool2d``'s default); Flatten: ``[*shape] -> [prod(shape)]`` (C, H, W order).

Shapes: per-sample ``in_shape = (C, H, W)``; ``out_shape`` is computed at construction and a
kernel that does not fit raises ``ValueError``.

Example::

    >>> conv = Conv2d((2, 34, 34), 8, kernel_size=5, stride=2, padding=2)   # -> (8, 17, 17)
    >>> pool = MaxPool2d(conv.out_shape, 2)                                  # -> (8, 8, 8)
    >>> flat = Flatten(pool.out_shape)                                       # -> (512,)
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..node import Node, as_shape

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "conv_output_size"]


def _pair(value, name: str, where: str, minimum: int) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair):
        raise ValueError(f"{where}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def _image_shape(in_shape, where: str) -> Tuple[int, int, int]:
    shape = as_shape(in_shape)
    if len(shape) != 3:
        raise ValueError(f"{where}: in_shape must be (channels, height, width), got {shape}")
    return shape


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """``floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1`` (may be <= 0)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _output_hw(in_shape, kernel, stride, padding, where: str) -> Tuple[int, int]:
    _, h, w = in_shape
    out = tuple(conv_output_size(n, k, s, p) for n, k, s, p in zip((h, w), kernel, stride, padding))
    if min(out) < 1:
        raise ValueError(f"{where}: a {kernel[0]}x{kernel[1]} kernel (stride {stride}, padding {padding}) "
                         f"does not fit the {h}x{w} input")
    return out


class Conv2d(Node):
    """2-D convolution ``(C_in, H, W) -> (out_channels, H_out, W_out)`` (see the module docstring).

    ``weight`` may be given ``[out_channels, C_in, k_h, k_w]``; by default it is drawn uniform in
    +-1/sqrt(C_in k_h k_w) (like ``nn.Conv2d``). Units: output = weight x input.

    count_ops (exact): ``synops`` = sum over non-zero inputs ``x[c, h, w]`` of their fan-out
    ``out_channels x n(h, w)``, where ``n(h, w)`` is the number of output positions whose
    receptive field contains ``(h, w)`` (fewer at the borders and with stride > 1);
    ``macs`` = rows x C_out x H_out x W_out x C_in x k_h x k_w (the dense convolution's work).

    Shapes: ``[batch, C_in, H, W] -> [batch, out_channels, H_out, W_out]`` (``out_shape``)."""

    stateless = True

    def __init__(self, in_shape, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = False,
                 weight: Optional[torch.Tensor] = None):
        where = "Conv2d"
        in_shape = _image_shape(in_shape, where)
        if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels <= 0:
            raise ValueError(f"{where}: out_channels must be a positive int, got {out_channels!r}")
        self.kernel_size = _pair(kernel_size, "kernel_size", where, 1)
        self.stride = _pair(stride, "stride", where, 1)
        self.padding = _pair(padding, "padding", where, 0)
        h_out, w_out = _output_hw(in_shape, self.kernel_size, self.stride, self.padding, where)
        super().__init__({"input": in_shape}, (out_channels, h_out, w_out))
        self.in_channels, self.out_channels = in_shape[0], out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_shape[0], *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()
        if weight is not None:
            weight = torch.as_tensor(weight)
            if tuple(weight.shape) != tuple(self.weight.shape):
                raise ValueError(f"{where}: weight must have shape (out_channels, in_channels, k_h, k_w) = "
                                 f"{tuple(self.weight.shape)}, got {tuple(weight.shape)}")
            dtype = weight.dtype if weight.is_floating_point() else torch.get_default_dtype()
            self.weight = nn.Parameter(weight.detach().to(dtype).clone())   # a float64 weight stays float64
            if self.bias is not None:
                self.bias = nn.Parameter(self.bias.detach().to(dtype))
        # n(h, w): output positions reached by input (h, w) = transposed conv of ones with a ones kernel
        reach = torch.nn.grad.conv2d_input((1, 1, *in_shape[1:]), torch.ones(1, 1, *self.kernel_size),
                                           torch.ones(1, 1, h_out, w_out), stride=self.stride, padding=self.padding)
        self.register_buffer("_reach", reach[0, 0].round().to(torch.long), persistent=False)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def step(self, x, state, dt: float):
        """``[batch, C_in, H, W] -> [batch, C_out, H_out, W_out]``."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding), state

    def fan_out(self) -> torch.Tensor:
        """``[H, W]`` synapses reached by one input at each position (per input channel)."""
        return self._reach * self.out_channels

    def count_ops(self, x, output):
        c, h, w = self.in_shapes["input"]
        active = torch.count_nonzero(x.detach().reshape(-1, c, h, w), dim=(0, 1))   # [H, W]
        rows = x.numel() // (c * h * w)
        per_row = math.prod(self.out_shape) * c * self.kernel_size[0] * self.kernel_size[1]
        return {"synops": (active * self.fan_out()).sum(), "macs": torch.tensor(rows * per_row)}

    def extra_repr(self) -> str:
        return (f"{self.in_shapes['input']} -> {self.out_shape}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class _Pool2d(Node):
    stateless = True
    _name = "Pool2d"

    def __init__(self, in_shape, kernel_size, stride=None, padding=0):
        where = self._name
        in_shape = _image_shape(in_shape, where)
        self.kernel_size = _pair(kernel_size, "kernel_size", where, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", where, 1)
        self.padding = _pair(padding, "padding", where, 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{where}: padding {self.padding} must be at most half the kernel {self.kernel_size}")
        h_out, w_out = _output_hw(in_shape, self.kernel_size, self.stride, self.padding, where)
        super().__init__({"input": in_shape}, (in_shape[0], h_out, w_out))

    def extra_repr(self) -> str:
        return (f"{self.in_shapes['input']} -> {self.out_shape}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(_Pool2d):
    """Max over ``k_h x k_w`` windows (stride defaults to the kernel; padding never wins the max):
    ``y[c, i, j] = max_{u, v} x[c, s_h i + u - p_h, s_w j + v - p_w]``. Spikes in, spikes out.

    Shapes: ``[batch, C, H, W] -> [batch, C, H_out, W_out]``."""

    _name = "MaxPool2d"

    def step(self, x, state, dt: float):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding), state


class AvgPool2d(_Pool2d):
    """Mean over ``k_h x k_w`` windows (zero padding included in the count):
    ``y[c, i, j] = (1 / (k_h k_w)) sum_{u, v} x_pad[c, s_h i + u, s_w j + v]``.

    Shapes: ``[batch, C, H, W] -> [batch, C, H_out, W_out]``."""

    _name = "AvgPool2d"

    def step(self, x, state, dt: float):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding), state


class Flatten(Node):
    """``[batch, *in_shape] -> [batch, prod(in_shape)]`` in row-major (C, H, W) order (a view).

    Shapes: any per-sample ``in_shape`` to ``(prod(in_shape),)``."""

    stateless = True

    def __init__(self, in_shape):
        in_shape = as_shape(in_shape)
        super().__init__({"input": in_shape}, (math.prod(in_shape),))

    def step(self, x, state, dt: float):
        return x.reshape(x.shape[0], -1), state

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq.reshape(*x_seq.shape[:2], -1)
