"""The fused LIF training kernel on compiled code: when it runs, and the torch side of its calls.

:class:`neurosim.neurons.lif_fused.LIFSequenceFunction` asks :func:`forward_compiled` first; it
runs the forward of :mod:`neurosim.compiled.training_kernels` for float32/float64 tensors on the
CPU when numba imports and the compiled kernels are allowed (:func:`compiled_kernels`; a
``Simulator(backend="torch")`` run turns them off for its forward). The results are the torch
forward's, bit for bit: the same h', spikes, free masks and final state. Its backward runs
compiled (:func:`backward_compiled`) when no parameter needs a gradient (inputs, v0 and i0 only;
parameter gradients are sums over time and batch, left to torch's reductions), else the torch
backward reads the same saved tensors.

Threads: ``torch.get_num_threads()`` blocks of batch rows (or of neurons, for a batch smaller
than that), each in a Python thread with the GIL released (:mod:`neurosim.compiled.threads`).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Optional

import numpy as np
import torch

from .kinds import RESET_CODES

__all__ = ["compiled_kernels", "kernels_enabled", "forward_compiled", "backward_compiled", "surrogate_code"]

_ENABLED = contextvars.ContextVar("neurosim_compiled_kernels", default=True)
_DTYPES = (torch.float32, torch.float64)
#: threads (blocks) per kernel call; 0: ``torch.get_num_threads()``
KERNEL_THREADS = 0


@contextlib.contextmanager
def compiled_kernels(enabled: bool):
    """Within the block, the fused LIF kernel may (``True``, the default) or may not use its
    compiled forward and backward (a forward decides, and its backward follows it)."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def kernels_enabled() -> bool:
    """Whether compiled kernels are allowed here (:func:`compiled_kernels`) and numba imports."""
    if not _ENABLED.get():
        return False
    from .placement import compiled_available
    return compiled_available()[0]


def surrogate_code(surrogate) -> int:
    """The backward kernel's code for ``surrogate``: its own derivative for exactly
    :class:`~neurosim.surrogate.FastSigmoid` and :class:`~neurosim.surrogate.Triangle` (a subclass may
    change ``grad``), else ``SURROGATE_GIVEN`` (torch computes g)."""
    from ..surrogate import FastSigmoid, Triangle
    from .training_kernels import SURROGATE_FAST_SIGMOID, SURROGATE_GIVEN, SURROGATE_TRIANGLE
    return {FastSigmoid: SURROGATE_FAST_SIGMOID, Triangle: SURROGATE_TRIANGLE}.get(type(surrogate), SURROGATE_GIVEN)


def _shape_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _DTYPES and x.dim() >= 2 and x.shape[0] > 0


def _blocks(batch: int, n: int):
    from .threads import row_blocks
    return row_blocks(batch, n, KERNEL_THREADS or max(1, torch.get_num_threads()))


def _array(value, shape, dtype) -> np.ndarray:
    """A parameter (number or tensor) as the kernels' ``[n]`` array (the lowering's ``per_neuron``)."""
    from .lowering import per_neuron
    return per_neuron(value.detach() if isinstance(value, torch.Tensor) else value, shape, dtype, "lif").numpy()


def forward_compiled(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep: bool) -> Optional[tuple]:
    """``lif_forward``'s results ``(H or None, S, F or None, v_T, ref_T)`` from the compiled
    kernel, or None when it does not apply here (the caller runs the torch forward)::

        x [T, batch, *shape]; v0, i0, ref0 [batch, *shape]
        a: the decay factor; th, leak, v_reset, r: LIFParams' values (floats or tensors)

    The parameters are combined as the simulation lowering combines them (``c = 1 - a``,
    ``jump = v_threshold - v_reset``, each in the same expression as ``lif_step``'s).

    ``keep``: training (H ``[T, ...]`` and, with refractory, the free masks ``F`` kept)."""
    if not kernels_enabled() or not _shape_ok(x):
        return None
    from .cache import check_cache
    check_cache()                                    # an edited kernel source empties the stale cache
    from .training_kernels import lif_train_forward
    T, batch, shape = x.shape[0], x.shape[1], tuple(x.shape[2:])
    n = int(torch.Size(shape).numel())
    dtype = x.dtype
    refr = int(p.refractory_steps)
    x3 = x.detach().reshape(T, batch, n)
    if not x3.is_contiguous():
        x3 = x3.contiguous()
    from ..neurons.lif_fused import _workspace_like
    S = _workspace_like(x) if keep else torch.empty_like(x)
    H = _workspace_like(x) if keep else torch.empty((1, batch) + shape, dtype=dtype)
    if refr:
        F = torch.empty(x.shape if keep else (1, batch) + shape, dtype=torch.bool)
    else:
        F = torch.empty((1, 1, 1), dtype=torch.bool)
    v = v0.detach().reshape(batch, n).clone()
    ref = ref0.detach().reshape(batch, n).clone()
    i_held = i0.detach().reshape(batch, n).contiguous()
    values = (leak, a, 1.0 - a, r, th, th - v_reset, v_reset)
    params = [_array(value, shape, dtype) for value in values]
    uniform = not any(isinstance(value, torch.Tensor) for value in values)
    from .threads import run_blocks
    run_blocks(lif_train_forward, _blocks(batch, n),
               x3.numpy(), i_held.numpy(), v.numpy(), ref.numpy(), H.view(H.shape[0], batch, n).numpy(),
               S.view(T, batch, n).numpy(), F.view(F.shape[0], F.shape[1], -1).numpy(), *params,
               RESET_CODES[p.reset], refr, bool(p.input_same_step), bool(keep), uniform)
    v_T = v.reshape((batch,) + shape)
    ref_T = ref.reshape((batch,) + shape) if refr else ref0
    return (H if keep else None), S, (F if (refr and keep) else None), v_T, ref_T


def backward_compiled(H, F, grad_s, grad_v, th, a, in_scale, jump, v_reset, p, surrogate, dest) -> torch.Tensor:
    """dL/dI ``[T, ...]`` into ``dest`` (``[T, ...]``, or ``[T + 1, ...]`` for an input one step
    late: row t holds dL/dI_t, the last row is left alone), and returns dL/dv0 ``[batch, ...]``.
    ``grad_s`` ``[T, ...]`` (or broadcast along time; None for no gradient), ``grad_v``
    ``[batch, ...]`` or None. Parameters: floats or tensors (no gradient wanted for any)."""
    from .threads import run_blocks
    from .training_kernels import SURROGATE_GIVEN, lif_train_backward
    T, batch, shape = H.shape[0], H.shape[1], tuple(H.shape[2:])
    n = int(torch.Size(shape).numel())
    dtype = H.dtype
    carry = (torch.zeros((batch, n), dtype=dtype) if grad_v is None
             else grad_v.detach().reshape(batch, n).to(dtype).clone())
    if grad_s is None:
        gs, full = torch.zeros((1, batch, n), dtype=dtype), False
    elif grad_s.dim() == H.dim() and grad_s.stride(0) == 0:      # the same gradient at every step
        gs, full = grad_s[:1].reshape(1, batch, n).contiguous(), False
    else:
        gs, full = grad_s.reshape(T, batch, n).contiguous(), True
    code = surrogate_code(surrogate)
    k = getattr(surrogate, "scale", 1.0)
    scalar = np.float32 if dtype == torch.float32 else np.float64
    refr = int(p.refractory_steps) > 0
    Fv = F.reshape(T, batch, n) if refr else torch.empty((1, 1, 1), dtype=torch.bool)
    Hv = H.reshape(T, batch, n)
    destv = dest.reshape(dest.shape[0], batch, n)
    args = (Hv.numpy(), Fv.numpy(), gs.numpy(), full)
    values = (th, a, in_scale, jump, v_reset)
    uniform = not any(isinstance(value, torch.Tensor) for value in values)
    tail = (carry.numpy(), destv.numpy(), *(_array(q, shape, dtype) for q in values),
            RESET_CODES[p.reset], code, scalar(k), scalar(0.5 * k), refr, uniform)
    blocks = _blocks(batch, n)
    if code != SURROGATE_GIVEN:
        run_blocks(lif_train_backward, [(0, T) + b for b in blocks], *args, np.zeros((1, 1, 1), dtype=scalar), *tail)
        return carry.reshape((batch,) + shape)
    from ..neurons.lif_fused import chunk_steps
    step = chunk_steps(H)
    for t1 in range(T, 0, -step):          # torch's g per chunk of steps (in cache), then the kernel
        t0 = max(0, t1 - step)
        g = surrogate.grad(H[t0:t1] - th).reshape(t1 - t0, batch, n).contiguous()
        run_blocks(lif_train_backward, [(t0, t1) + b for b in blocks], *args, g.numpy(), *tail)
    return carry.reshape((batch,) + shape)
