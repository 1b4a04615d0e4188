"""``Threshold``: a stateless spike non-linearity, ``s = H(x - v_threshold)`` (NIR ``Threshold``).

Not a neuron model (it keeps no state and has no dynamics, so it is no Population) and not a
projection (no weights): a node of its own, next to :class:`~neurosim.Population`. It fires
exactly as populations do, on ``x - v_threshold > 0`` (an input equal to the threshold gives no
spike), through the engine's one spike function, so its backward pass is the chosen surrogate
gradient ``ds/dx = g(x - v_threshold)`` (:mod:`neurosim.surrogate`)::

    s[b, ...] = H(x[b, ...] - v_threshold[...])        H(z) = 1 where z > 0, else 0

Typical use: after an ``integrator`` or a ``cuba_li`` population to rebuild a NIR graph that
spells a neuron as integration + threshold.

Shapes: ``[batch, *shape] -> [batch, *shape]``; ``v_threshold`` [V] a float or a tensor that
broadcasts against ``shape`` (kept as a buffer, or a Parameter when ``trainable``).

Example::

    >>> th = Threshold(10, v_threshold=0.5, surrogate="arctan")
    >>> s, _ = th.step(torch.rand(4, 10), None, dt=1e-3)
"""
from __future__ import annotations

import functools
import numbers
from typing import Optional

import torch
from torch import nn

from .node import Node, as_shape
from .surrogate import get_surrogate, spike

__all__ = ["Threshold"]


class Threshold(Node):
    """``H(x - v_threshold)`` on every element, with a surrogate gradient (module docstring)."""

    stateless = True
    emits_spikes = True

    def __init__(self, shape, v_threshold=1.0, surrogate="fast_sigmoid",
                 surrogate_scale: Optional[float] = None, trainable: bool = False):
        shape = as_shape(shape)
        super().__init__({"input": shape}, shape)
        if isinstance(v_threshold, bool) or not isinstance(v_threshold, (numbers.Real, torch.Tensor)):
            raise TypeError(f"Threshold: v_threshold must be a number or a tensor, got {type(v_threshold).__name__}")
        value = torch.as_tensor(v_threshold)
        value = value.detach().clone() if value.is_floating_point() else value.to(torch.get_default_dtype())
        if value.isnan().any():
            raise ValueError("Threshold: v_threshold holds NaN")
        try:
            torch.broadcast_shapes(value.shape, shape)
        except RuntimeError:
            raise ValueError(f"Threshold: v_threshold has shape {tuple(value.shape)}, which does not broadcast "
                             f"to the node shape {shape}") from None
        if not isinstance(trainable, bool):
            raise TypeError(f"Threshold: trainable must be a bool, got {trainable!r}")
        self.trainable = trainable
        if trainable:
            self.v_threshold = nn.Parameter(value)
        else:
            self.register_buffer("v_threshold", value)
        self.surrogate = get_surrogate(surrogate, surrogate_scale)
        self._spike_fn = functools.partial(spike, surrogate=self.surrogate)

    def step(self, x, state, dt: float):
        """``[batch, *shape] -> ([batch, *shape] spikes, None)``."""
        return self._spike_fn(x - self.v_threshold), state

    def count_ops(self, x, output):
        return {"spikes": output.detach().sum()}

    def extra_repr(self) -> str:
        return (f"shape={self.out_shape}, v_threshold shape={tuple(self.v_threshold.shape)}, "
                f"surrogate={type(self.surrogate).__name__}, trainable={self.trainable}")
