"""A stateless ``Dense`` outside any loop, run as one compiled pass over the whole sequence.

Such a node has no time loop: the torch path already runs it as one call over all ``T x batch``
rows. When the inputs are sparse enough (:func:`event_path_active`), the compiled backend runs
the sum over the active inputs with :func:`neurosim.compiled.sequence_kernels.event_sequence`,
which reads each weight row once per column tile rather than once per use (bit for bit the
torch event path's result for spikes; equal to float rounding against the dense matmul). Everything
else stays on torch: a dense matmul, a delayed or trainable projection, a subclass of ``Dense``,
a GPU tensor, mixed dtypes.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..projections.dense import Dense

__all__ = ["STATELESS", "COMPILED_EVENT_DENSITY", "why_not_sequence_compiled", "event_path_active",
           "run_sequence_compiled"]

#: input density below which the compiled gather beats torch's dense matmul (``F.linear``):
#: per add it costs 0.1-0.3 ns, the matmul 0.028-0.038 ns per multiply-add (1 thread, T = 200,
#: N = 1024-16 384), so they tie near 20 % (N = 1024: 7.3 against 7.1 ms); at 10 % the gather
#: takes 0.35-0.62 of the matmul's time, at 3 % of 16 384 inputs 0.16 (316 against 1938 ms).
#: torch's own event path (``F.embedding_bag``) is slower, which is why the Dense cost model
#: (fitted for it) switches to the matmul earlier, from 3 % for a 1 GB weight table.
COMPILED_EVENT_DENSITY = 0.15

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
    """The number of non-zero inputs when the compiled gather should run for ``x``, else None
    (the dense matmul). ``event_driven=True`` / ``False`` and a user's ``event_threshold`` decide
    as in ``Dense.use_event_path``; in ``"auto"`` mode without a threshold the compiled gather
    runs when the input density is below :data:`COMPILED_EVENT_DENSITY` or where the torch
    path's own cost model would take its (slower) event path anyway."""
    if node.event_driven is False:
        return None
    x2d = x.reshape(-1, node.in_features)
    active = int(torch.count_nonzero(x2d))
    if node.event_driven is True:
        return active
    if node.event_threshold is None and active < COMPILED_EVENT_DENSITY * x2d.numel():
        return active
    return active if active < node._event_limit(x2d) else None


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
