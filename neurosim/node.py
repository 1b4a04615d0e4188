"""The node protocol shared by populations, projections and plug-in blocks.

A node is a ``torch.nn.Module`` that the :class:`neurosim.Simulator` drives; it keeps no hidden
per-batch state. Its contract:

* ``input_ports``: names of its inputs; the inputs on one port are summed. ``in_shapes[port]``
  and ``out_shape`` are per-sample shapes (no time or batch axis).
* ``initial_state(batch_size, device, dtype)``: the state at t = 0 (``None`` when stateless).
* ``step(x, state, dt) -> (output, new_state)``: one time step, ``x`` shaped ``[batch, *in_shape]``
  (a tuple in ``input_ports`` order for multi-port nodes).
* ``stateless``: True when ``step`` does not depend on time; the simulator may then call
  ``forward_sequence(x_seq)`` on the whole ``[T, batch, ...]`` sequence at once.
* ``supports_sequence``: True when a stateful node also offers
  ``step_sequence(x_seq, state, dt) -> (y_seq, new_state)`` computing T steps at once (a delay
  line is a shift; a neuron model may have a fused kernel); the simulator prefers it outside
  recurrent loops and steps ``step`` when it returns ``NotImplemented``.
  Both flags may be set per instance (a projection with delays is stateful, one without is not):
  read them from the node, never from its class.
* ``validate(dt, where)``: raise on bad parameters before any step runs.
* ``check_run(steps, where)``: raise when the node cannot run ``steps`` time steps (a rate-coded
  block whose window is longer than the run); called by ``Simulator.run`` before the first step.
* ``count_ops(x, output) -> dict``: spikes / synaptic operations / dense MACs caused by one call
  (``x`` and ``output`` may carry any number of leading time and batch axes).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

__all__ = ["Node", "Shape", "as_shape"]

Shape = Tuple[int, ...]


def as_shape(shape) -> Shape:
    """``100`` -> ``(100,)``; ``(2, 3)`` -> ``(2, 3)``; validates positive integers."""
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(shape)
    if not shape or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ValueError(f"a shape must be a positive int or a tuple of positive ints, got {shape!r}")
    return shape


class Node(nn.Module):
    """Base class of everything a :class:`neurosim.Graph` can hold (see the module docstring)."""

    input_ports: Tuple[str, ...] = ("input",)
    stateless: bool = False
    supports_sequence: bool = False
    #: True when the output is a spike train (counted as spikes, propagated event-driven downstream)
    emits_spikes: bool = False

    def __init__(self, in_shapes: Dict[str, Shape], out_shape: Shape):
        super().__init__()
        self.in_shapes = {port: as_shape(s) for port, s in in_shapes.items()}
        self.out_shape = as_shape(out_shape)

    def initial_state(self, batch_size: int, device=None, dtype=torch.float32):
        return None

    def step(self, x, state, dt: float):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Apply a stateless node to ``[T, batch, *in_shape]`` at once (one big call)."""
        t, b = x_seq.shape[:2]
        y, _ = self.step(x_seq.reshape(t * b, *x_seq.shape[2:]), None, 0.0)
        return y.reshape(t, b, *y.shape[1:])

    def step_sequence(self, x_seq, state, dt: float):  # pragma: no cover - optional
        raise NotImplementedError

    def validate(self, dt: float, where: str) -> None:
        return None

    def check_run(self, steps: int, where: str) -> None:
        return None

    def count_ops(self, x, output) -> Dict[str, torch.Tensor]:
        return {}

    def extra_repr(self) -> str:
        return f"in_shapes={self.in_shapes}, out_shape={self.out_shape}"


def state_device_dtype(module: nn.Module, device: Optional[torch.device], dtype: Optional[torch.dtype]):
    """Default device/dtype for a state: those of the module's first parameter or buffer."""
    for t in list(module.parameters()) + list(module.buffers()):
        return (device or t.device), (dtype or (t.dtype if t.is_floating_point() else torch.float32))
    return device or torch.device("cpu"), dtype or torch.float32
