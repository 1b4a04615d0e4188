"""``LoihiConv2d``: Loihi's integer convolution synapse (netx ``conv`` layers, Lava's ``Conv``).

Weights are 8-bit signed mantissas ``m [C_out, C_in / groups, k_h, k_w]`` with one exponent ``e``,
``w_int = m << e``, in PyTorch's layout and with PyTorch's cross-correlation::

    x[t, o, i, j] = sum_{c, u, v} (w_int[o, c, u, v] << 6) s_pad[t - latency, c, s_h i + d_h u, s_w j + d_w v]
    H_out = floor((H + 2 p_h - d_h (k_h - 1) - 1) / s_h) + 1,   W_out likewise

(int64, exact: a float64 ``F.conv2d`` of integers < 2^53). ``latency`` is 1 as on Loihi (Lava's
Conv sends at step t + 1 what reached it at step t) or 0 (for a synapse on a loop closed by a
graph back-edge, or the identity that feeds a netx input layer's neurons in the same step).
Not modelled: Lava's 24-bit clamp of the convolution sum (``|sum| < 2^23`` in practice).

Shapes: ``[batch, C_in, H, W] -> [batch, C_out, H_out, W_out]``; ``out_shape`` computed at
construction (a kernel that does not fit raises ``ValueError``).

Example::

    >>> conv = LoihiConv2d((2, 8, 8), torch.randint(-128, 128, (4, 2, 3, 3)), weight_exp=1, padding=1)
    >>> conv.out_shape
    (4, 8, 8)
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from neurosim.node import as_shape
from neurosim.projections.conv import conv_output_size
from neurosim.projections.delay import Delay

from .fixed_point import ACTIVATION_SHIFT, WEIGHT_EXP_RANGE, WEIGHT_MANT_RANGE, IntegerSynapse, check_integer_range

__all__ = ["LoihiConv2d"]


def _pair(value, name: str, minimum: int) -> Tuple[int, int]:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair):
        raise ValueError(f"LoihiConv2d.{name} must be an int >= {minimum} or a pair (H, W) of them, got {value!r}")
    return pair


class LoihiConv2d(IntegerSynapse):
    """Integer 2-D convolution ``(C_in, H, W) -> (C_out, H_out, W_out)`` (see the module docstring).

    ``in_shape``: (C_in, H, W); ``weight_mant``: integers in [-128, 127], ``[C_out, C_in / groups,
    k_h, k_w]`` (kept as an int8 buffer); ``weight_exp``: 0..7; ``stride``, ``padding``,
    ``dilation``: int or (H, W); ``groups``: divides C_in and C_out; ``latency``: 1 or 0.
    Inputs are spikes (0/1, any dtype); the output is int64 ``sum (w_int << 6) s``."""

    def __init__(self, in_shape, weight_mant: torch.Tensor, weight_exp: int = 0, stride=1, padding=0,
                 dilation=1, groups: int = 1, latency: int = 1):
        in_shape = as_shape(in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"LoihiConv2d.in_shape must be (channels, height, width), got {in_shape}")
        weight_mant = torch.as_tensor(weight_mant)
        if weight_mant.dim() != 4:
            raise ValueError("LoihiConv2d.weight_mant must be [C_out, C_in / groups, k_h, k_w], got shape "
                             f"{tuple(weight_mant.shape)}")
        check_integer_range(weight_mant, *WEIGHT_MANT_RANGE, "LoihiConv2d.weight_mant")
        if isinstance(weight_exp, torch.Tensor) and weight_exp.dim() == 0:
            weight_exp = int(weight_exp)
        check_integer_range(weight_exp, *WEIGHT_EXP_RANGE, "LoihiConv2d.weight_exp")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"LoihiConv2d.groups must be an int >= 1, got {groups!r}")
        out_channels, per_group, k_h, k_w = weight_mant.shape
        channels = in_shape[0]
        if channels % groups or out_channels % groups or per_group * groups != channels:
            raise ValueError(f"LoihiConv2d: weight_mant {tuple(weight_mant.shape)} with groups={groups} does not "
                             f"fit {channels} input channels (need C_in / groups = {channels // groups} and "
                             "C_out divisible by groups)")
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.dilation, self.groups = _pair(dilation, "dilation", 1), groups
        size = tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                     zip(in_shape[1:], (k_h, k_w), self.stride, self.padding, self.dilation))
        if min(size) < 1:
            raise ValueError(f"LoihiConv2d: a {k_h}x{k_w} kernel (stride {self.stride}, padding {self.padding}, "
                             f"dilation {self.dilation}) does not fit the {in_shape[1]}x{in_shape[2]} input")
        if isinstance(latency, bool) or latency not in (0, 1):
            raise ValueError(f"LoihiConv2d.latency must be 0 or 1, got {latency!r}")
        super().__init__({"input": in_shape}, (out_channels, *size))
        self.in_shape = in_shape
        self.weight_exp, self.latency = int(weight_exp), int(latency)
        self.register_buffer("weight_mant", weight_mant.detach().to(torch.int8).clone())
        self.delay_line = Delay(self.out_shape, 1) if latency else None
        self.stateless = self.delay_line is None
        self.supports_sequence = not self.stateless

    def weight_int(self) -> torch.Tensor:
        """``w_int = m << e`` as int64, ``[C_out, C_in / groups, k_h, k_w]``."""
        return self.weight_mant.to(torch.int64) * 2 ** self.weight_exp

    def synaptic_input(self, x4d: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, H, W] -> [N, C_out, H_out, W_out]`` int64, undelayed."""
        w = self.weight_mant.to(torch.float64) * float(2 ** (self.weight_exp + ACTIVATION_SHIFT))
        return F.conv2d(x4d.to(torch.float64), w, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups).to(torch.int64)

    def count_ops(self, x, output):
        """synops = active inputs x output positions they reach (from the convolution of the
        activity with a ones kernel); macs = the dense convolution's multiply-adds."""
        ones = torch.ones((1, 1, *self.weight_mant.shape[2:]), dtype=torch.float64)
        active = (x.detach() != 0).to(torch.float64).reshape(-1, *self.in_shape).sum(1, keepdim=True)
        reach = F.conv2d(active, ones, stride=self.stride, padding=self.padding, dilation=self.dilation)
        per_group = self.out_shape[0] // self.groups
        rows = x.numel() // self.in_features_total
        macs = rows * self.out_shape[0] * self.out_shape[1] * self.out_shape[2] * self.weight_mant[0].numel()
        return {"synops": reach.sum().round().to(torch.int64) * per_group, "macs": torch.tensor(macs)}

    @property
    def in_features_total(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    def extra_repr(self) -> str:
        return (f"{self.in_shape} -> {self.out_shape}, kernel={tuple(self.weight_mant.shape[2:])}, "
                f"weight_exp={self.weight_exp}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, groups={self.groups}, latency={self.latency}")
