"""A stateless ``Dense`` outside any loop, run as one compiled pass over the whole sequence.

Such a node has no time loop: the torch path already runs it as one call over all ``T x batch``
rows. When that call would take the event-driven path (the node's own cost model,
``Dense.use_event_path``), the compiled backend runs the same sum with
:func:`neurosim.compiled.sequence_kernels.event_sequence` instead, which reads each weight row
once rather than once per use (bit for bit the torch event path's result for spikes). Everything
else stays on torch: a dense matmul, a delayed or trainable projection, a subclass of ``Dense``,
a GPU tensor, mixed dtypes.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..projections.dense import Dense

__all__ = ["STATELESS", "why_not_sequence_compiled", "event_path_active", "run_sequence_compiled"]

#: why a stateless node outside a loop stays on torch (expected: not reported as a fallback)
STATELESS = "stateless, outside a loop: one call over all steps"


def why_not_sequence_compiled(node, x: torch.Tensor) -> Optional[str]:
    """None when ``node`` (a stateless node outside a loop) with input ``x [T, batch, in]`` runs on
    the compiled sequence kernel, else why it stays one torch call."""
    if type(node) is not Dense or node.delays is not None:
        return STATELESS
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.float32, torch.float64):
        return STATELESS
    weight = node.weight
    if weight.dtype != x.dtype or (node.bias is not None and node.bias.dtype != x.dtype):
        return STATELESS
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return STATELESS
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (node.bias is not None and node.bias.requires_grad)):
        return STATELESS
    return None


def event_path_active(node: Dense, x: torch.Tensor) -> Optional[int]:
    """The number of non-zero inputs when ``node`` takes the event path for ``x`` (the choice of
    ``Dense.use_event_path`` without autograd, with one count of the non-zeros), else None."""
    if node.event_driven is False:
        return None
    x2d = x.reshape(-1, node.in_features)
    active = int(torch.count_nonzero(x2d))
    return active if node.event_driven is True or active < node._event_limit(x2d) else None


def run_sequence_compiled(node: Dense, x: torch.Tensor, active: int) -> torch.Tensor:
    """``node.forward_sequence(x)`` on the compiled kernel: ``[T, batch, in] -> [T, batch, out]``;
    ``active``: the non-zeros of x (:func:`event_path_active`)."""
    from .sequence_kernels import event_sequence
    steps, batch = x.shape[:2]
    x2d = x.detach().reshape(steps * batch, node.in_features).contiguous()
    z = torch.from_numpy(event_sequence(x2d.numpy(), node.weight_t().numpy(), active, torch.get_num_threads()))
    if node.bias is not None:
        z += node.bias.detach()
    return z.reshape(steps, batch, node.out_features)
