"""``higher_order_gradients()``: ask the fused kernels for backward passes that can be
differentiated again (second-order methods such as MAML).

A fused neuron kernel (``lif``'s ``step_sequence``) computes its backward in place, fast and
once-differentiable. Inside this context its forward also keeps its input sequence, so that a
backward asked with ``create_graph=True`` can rebuild the stepped computation under autograd and
give the stepped model's second derivatives. Outside it, such a backward raises a RuntimeError
naming this context instead of silently leaving terms out, and plain training keeps its memory
(the input sequence is not held for the backward).

Example::

    >>> with higher_order_gradients():
    ...     loss = loss_fn(sim.run(x).output, y)
    ...     (g,) = torch.autograd.grad(loss, w, create_graph=True)   # differentiable again
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

__all__ = ["higher_order_gradients", "higher_order_enabled"]

_state = threading.local()


def higher_order_enabled() -> bool:
    """True inside :func:`higher_order_gradients` (in this thread)."""
    return getattr(_state, "depth", 0) > 0


@contextlib.contextmanager
def higher_order_gradients() -> Iterator[None]:
    """Forward passes in this block keep what their backward needs to be differentiated again."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
