"""Backpropagation through time, full and truncated.

**Full BPTT** is plain autograd through :meth:`neurosim.Simulator.run`: the loss of the whole
sequence is differentiated through every step, so the gradient of a weight ``w`` is::

    dL/dw = sum_t  dL/dy_t . sum_{k <= t} (prod_{j=k+1..t} dS_j/dS_{j-1}) dS_k/dw

where ``S_t`` is the network state after step t. Memory grows with T (every step's activations
are kept for the backward pass).

**Truncated BPTT** (Williams & Peng 1990) cuts the sequence into windows of ``window`` steps.
Each window starts from the previous window's final state *detached* from the autograd graph,
so its loss is differentiated only through the steps of that window: the products above stop at
the window start (``k >= t0``). Influence of a weight on the state across a window boundary is
ignored (the gradient is biased towards short time dependencies), the forward pass is unchanged
(the state, and so every output, is exactly that of one full run), and memory is bounded by the
window length. With ``window >= T`` it is full BPTT.

The total loss is the sum of the window losses. For a loss that is a sum over time steps (e.g.
a per-step MSE against ``[T, B, ...]`` targets with ``sequence_targets=True``) this equals the
full-sequence loss, and only the truncation makes the gradients differ.

Example::

    >>> res = tbptt_step(sim, x, y, loss_fn, optimizer, window=50)     # x: [T, B, ...]
    >>> res.loss, res.outputs["readout"].shape
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional

import torch

from ..simulator import NetworkState
from ..validation import check_choice, check_int

__all__ = ["detach_state", "tbptt_step", "bptt_step", "BPTTResult", "UPDATES"]

UPDATES = ("window", "sequence")


def detach_state(state: Any) -> Any:
    """A copy of ``state`` with every tensor detached from the autograd graph (values shared).

    Walks NamedTuples (e.g. :class:`NetworkState`, ``LIFState``), dicts, lists and tuples
    recursively and keeps ``None`` and non-tensor leaves as they are; the structure and types are
    preserved. Used between truncated-BPTT windows: the next window starts from the same values
    but its gradient stops at the window boundary.

    Shapes: unchanged. Example::

        >>> state = detach_state(sim.run(x[:50]).state)
        >>> more = sim.run(x[50:], state=state)
    """
    if isinstance(state, torch.Tensor):
        return state.detach()
    if state is None:
        return None
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(v) for v in state))
    if isinstance(state, dict):
        return type(state)((k, detach_state(v)) for k, v in state.items())
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(v) for v in state)
    return state


class BPTTResult(NamedTuple):
    """loss: total loss (sum over windows, a float); window_losses: one float per window;
    outputs: node -> ``[T, B, ...]`` outputs of all windows concatenated (detached);
    state: the final :class:`NetworkState` (detached)."""

    loss: float
    window_losses: List[float]
    outputs: Dict[str, torch.Tensor]
    state: NetworkState


def _time_steps(inputs) -> int:
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() < 2:
            raise ValueError(f"inputs must be time first [T, B, ...], got shape {tuple(inputs.shape)}")
        return inputs.shape[0]
    if isinstance(inputs, dict) and inputs and all(isinstance(v, torch.Tensor) and v.dim() >= 2 for v in inputs.values()):
        steps = {v.shape[0] for v in inputs.values()}
        if len(steps) != 1:
            raise ValueError(f"all inputs need the same number of time steps, got {sorted(steps)}")
        return steps.pop()
    raise TypeError("inputs must be a [T, B, ...] tensor or a dict name -> [T, B, ...] tensor")


def _slice(inputs, t0, t1):
    if isinstance(inputs, torch.Tensor):
        return inputs[t0:t1]
    return {k: v[t0:t1] for k, v in inputs.items()}


def _pick_output(outputs, output):
    if output is None:
        if len(outputs) != 1:
            raise ValueError(f"the graph has outputs {list(outputs)}; pass output=<name> to choose the loss input")
        return next(iter(outputs.values()))
    return outputs[output]


def tbptt_step(sim, inputs, targets, loss_fn: Callable, optimizer: Optional[torch.optim.Optimizer] = None,
               window: int = 50, state: Optional[NetworkState] = None, *, output: Optional[str] = None,
               sequence_targets: bool = False, update: str = "window",
               regularizer: Optional[Callable] = None) -> BPTTResult:
    """Truncated BPTT over one batch: run ``window`` steps at a time, backprop, detach, continue.

    For window ``k`` covering steps ``[t0, t1)``::

        res_k  = sim.run(inputs[t0:t1], state=detach(state_{k-1}))
        L_k    = loss_fn(res_k.outputs[output], targets_k) (+ regularizer(res_k))
        L_k.backward()                       # gradient through steps t0 .. t1-1 only

    ``targets_k`` is ``targets[t0:t1]`` when ``sequence_targets`` (targets ``[T, B, ...]``), else
    ``targets`` itself for every window (e.g. class labels ``[B]``). ``update="window"`` zeroes the
    gradients, backpropagates and steps ``optimizer`` once per window (online TBPTT; later
    windows then run with updated weights); ``update="sequence"`` accumulates the window
    gradients and steps once at the end. With ``optimizer=None`` nothing is zeroed or stepped:
    the summed window gradients are left in ``.grad`` for the caller.

    Shapes: inputs ``[T, B, ...]`` (or a dict of them, time first); ``window`` in steps.
    Returns a :class:`BPTTResult`; ``sim`` may be a ``DistributedDataParallel``-wrapped simulator.

    Example::

        >>> loss = lambda v, y: ((v - y) ** 2).sum(0).mean()          # sum over time
        >>> res = tbptt_step(sim, x, y_seq, loss, opt, window=25, sequence_targets=True)
    """
    steps = _time_steps(inputs)
    check_int(window, "tbptt_step: window (steps)", minimum=1)
    check_choice(update, UPDATES, "tbptt_step: update")
    if not callable(loss_fn):
        raise TypeError(f"tbptt_step: loss_fn must be callable, got {type(loss_fn).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"tbptt_step: optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if sequence_targets:
        if not isinstance(targets, torch.Tensor) or targets.dim() < 1 or targets.shape[0] != steps:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"tbptt_step: sequence_targets=True needs targets [T, B, ...] with T = {steps}, got {got}")

    if optimizer is not None and update == "sequence":
        optimizer.zero_grad(set_to_none=True)
    window_losses: List[float] = []
    chunks: Dict[str, List[torch.Tensor]] = {}
    for t0 in range(0, steps, window):
        t1 = min(t0 + window, steps)
        if optimizer is not None and update == "window":
            optimizer.zero_grad(set_to_none=True)
        result = sim(_slice(inputs, t0, t1), state=state)
        y = targets[t0:t1] if sequence_targets else targets
        loss = loss_fn(_pick_output(result.outputs, output), y)
        if regularizer is not None:
            loss = loss + regularizer(result)
        if loss.requires_grad:
            loss.backward()
        if optimizer is not None and update == "window":
            optimizer.step()
        window_losses.append(float(loss.detach()))
        for name, seq in result.outputs.items():
            chunks.setdefault(name, []).append(seq.detach())
        state = detach_state(result.state)
    if optimizer is not None and update == "sequence":
        optimizer.step()
    outputs = {name: torch.cat(parts, 0) for name, parts in chunks.items()}
    return BPTTResult(sum(window_losses), window_losses, outputs, state)


def bptt_step(sim, inputs, targets, loss_fn: Callable, optimizer: Optional[torch.optim.Optimizer] = None,
              state: Optional[NetworkState] = None, *, output: Optional[str] = None,
              regularizer: Optional[Callable] = None) -> BPTTResult:
    """Full BPTT over one batch: ``L = loss_fn(sim.run(inputs).outputs[output], targets)``,
    backward through all T steps, one optimizer step (none when ``optimizer`` is None).

    Shapes: inputs ``[T, B, ...]``; targets as ``loss_fn`` expects. Equivalent to
    :func:`tbptt_step` with ``window = T``.

    Example::

        >>> res = bptt_step(sim, x, labels, lambda v, y: membrane_cross_entropy(v, y), opt)
    """
    steps = _time_steps(inputs)
    return tbptt_step(sim, inputs, targets, loss_fn, optimizer, window=max(steps, 1), state=state,
                      output=output, regularizer=regularizer)
