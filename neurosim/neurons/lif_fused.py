"""The fused LIF kernel: T steps of :func:`~neurosim.neurons.lif.lif_step` in one autograd node.

Forward, per step t, with the operations of ``lif_step`` in the same order on the same operand
types, so spikes and states are equal bit for bit (a = exp(-dt/tau_mem) or 1 - dt/tau_mem)::

    I_t  = x_t  (input_same_step)   or   x_{t-1}, with x_{-1} = i0 (the state's held input)
    h_t  = v_leak + (v_{t-1} - v_leak) a + (1 - a) (r I_t)
           - f_t J                       (subtract_delayed: f_t = H(v_{t-1} - v_th), J = v_th - v_reset)
    h'_t = h_t where free_t, else v_{t-1}   (free_t = [ref_{t-1} <= 0]; always free without refractory)
    s_t  = H(h'_t - v_th) free_t;   v_t = reset(h'_t, s_t);   ref_t = R where s_t, else max(ref_{t-1} - 1, 0)

Backward, with g_t = surrogate'(h'_t - v_th) free_t, G_t = dL/dh'_t and m_t = a free_t + (1 - free_t)
(m_t = a without refractory)::

    G_t         = dL/ds_t g_t + dL/dv_t D_t,        dL/dv_t = m_{t+1} G_{t+1}  (t < T-1; given at T-1)
    D_t         = dv_t/dh'_t = 1 - J g_t  (subtract)  |  1 - s_t - h'_t g_t  (zero)
                  |  1 - s_t + (v_reset - h'_t) g_t  (value)  |  1  (subtract_delayed)
    dL/dI_t     = (1 - a) r free_t G_t;      dL/dv_{-1} = m_0 G_0
    dL/da       = sum free_t G_t (v_{t-1} - v_leak - r I_t);    dL/dv_leak = sum free_t G_t (1 - a)
    dL/dr       = sum free_t G_t (1 - a) I_t
    dL/dv_th    = sum [-dL/ds_t g_t + dL/dv_t E_t - f_t free_t G_t (subtract_delayed)]
    E_t         = dv_t/dv_th = -s_t + J g_t  |  h'_t g_t  |  (h'_t - v_reset) g_t  |  0
    dL/dv_reset = sum [dL/dv_t s_t (subtract, value)  |  f_t free_t G_t (subtract_delayed)]
    dL/dtau_mem = dL/da da/dtau:  a dt / tau_c^2 (exact) or dt / tau_c^2 (euler), tau_c = max(tau, dt/100),
                  zero below the floor (the clamp of ``decay_factor``)

The sums run over time and batch and then over the axes a parameter broadcasts along (a scalar
parameter gets the total, a per-neuron one a value per neuron). The recurrence over t is one
``addcmul_`` per step; every other term is computed on chunks of steps (about 512 KiB on the
CPU, in cache), in place where the values are not needed again. The forward needs two
``[T, batch, ...]`` tensors (h' and s; in training on the CPU reused from earlier iterations once
nothing refers to them, :func:`_workspace_like`); the backward none when the graph is not kept
(dL/dx is written into h' as it is consumed), one otherwise: on the CPU a fresh large buffer costs a page
fault per 4 KiB on first touch (measured 3-8 us each here, 1600 per [100, 16, 1024] float32
buffer), more than the arithmetic. f_t and ``ref`` carry no gradient (the late reset of
``subtract_delayed`` is a detached constant; refractory counts are integers).

Shapes: x ``[T, batch, *shape]``; v0, i0, ref0 ``[batch, *shape]``; parameters floats or tensors
broadcasting against ``shape`` (all tensors of x's dtype and device, see :func:`covers`).
"""
from __future__ import annotations

import dataclasses
import numbers
import sys
import threading

import torch

from ..higher_order import higher_order_enabled
from .base import apply_reset, decay_factor, scalar_operand

__all__ = ["fused_lif", "LIFSequenceFunction", "lif_forward", "covers", "chunk_steps", "PARAMETER_FIELDS",
           "release_workspace"]

#: the continuous LIFParams fields, in the order the kernel takes them
PARAMETER_FIELDS = ("tau_mem", "v_threshold", "v_leak", "v_reset", "r")


def covers(x_seq: torch.Tensor, state, p) -> bool:
    """Whether the kernel reproduces stepping ``lif_step`` for these inputs: at least one step,
    state fields of ``x_seq[0]``'s shape, dtype and device, parameter tensors of that dtype and
    device that broadcast against the neuron shape without adding axes, and a refractory count
    without gradient (stepping would carry one through ``torch.where``; nobody trains it)."""
    if x_seq.dim() < 2 or x_seq.shape[0] == 0 or state.refractory.requires_grad:
        return False
    like = x_seq[0]
    for t in state:
        if t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            return False
    shape = tuple(like.shape[1:])
    for name in PARAMETER_FIELDS:
        value = getattr(p, name)
        if isinstance(value, torch.Tensor):
            if value.dtype != like.dtype or value.device != like.device or value.dim() > len(shape):
                return False
            try:
                if torch.broadcast_shapes(value.shape, shape) != shape:
                    return False
            except RuntimeError:
                return False
        elif not isinstance(value, numbers.Real):
            return False
    return True


def fused_lif(x_seq, state, p, dt: float, surrogate):
    """T steps of ``lif_step`` from ``state`` (a LIFState): ``(s [T, ...], v_T, ref_T)``.

    Through :class:`LIFSequenceFunction` when autograd needs a graph (an input, state field or
    parameter requires grad); otherwise the forward loop alone, without saving anything.
    ``ref_T`` is ``state.refractory`` itself when ``p.refractory_steps`` is 0. The caller checks
    :func:`covers` first."""
    params = tuple(getattr(p, name) for name in PARAMETER_FIELDS)
    tensors = (x_seq, state.v, state.i) + tuple(q for q in params if isinstance(q, torch.Tensor))
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        out = LIFSequenceFunction.apply(p, dt, surrogate, x_seq, state.v, state.i, state.refractory, *params)
        return out[0], out[1], (out[2] if p.refractory_steps > 0 else state.refractory)
    a = decay_factor(p.tau_mem, dt, p.integration)
    _, spikes, _, v, ref, _ = lif_forward(x_seq, state.v, state.i, state.refractory, a, *params[1:], p, keep=False)
    return spikes, v, ref


def _is(value, number) -> bool:
    """``value`` is the plain number ``number`` (not a tensor): a term that can be skipped exactly."""
    return not isinstance(value, torch.Tensor) and value == number


#: bytes of one chunk of steps in the backward's temporaries and the no-grad forward's buffer: small
#: enough to stay in a core's L2 cache and below the sizes that the C allocator hands back to the
#: system after use (a fresh [T, ...] temporary costs a page fault per 4 KiB on every call)
CHUNK_BYTES = 1 << 19


#: at most this many [T, ...] buffers kept per thread for reuse (two per LIF layer in training, and
#: the spikes of the last iteration that a caller may still hold) ...
WORKSPACE_BUFFERS = 8
#: ... and at most this many bytes of them: a larger buffer is allocated afresh every time (its
#: page faults are then small beside its arithmetic), so the pool never holds much memory idle
WORKSPACE_BYTES = 128 << 20
_workspace = threading.local()


def release_workspace() -> None:
    """Drop this thread's pooled training buffers (:func:`_workspace_like`); tensors still in use
    elsewhere stay alive with their users."""
    _workspace.buffers = []


def _workspace_like(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` for the two ``[T, ...]`` tensors of the training forward (the saved
    h', which the backward turns into dL/dx, and the spikes): on the CPU taken from a per-thread
    list of earlier such buffers that nothing else refers to any more (see :func:`_unreferenced`),
    else allocated and added to the list (at most :data:`WORKSPACE_BUFFERS`). The caller gets a
    new tensor object on the buffer's storage, never the list's own object.

    Without reuse every training iteration allocates both afresh, and glibc hands blocks of this
    size back to the system between iterations, so that their first touch costs a page fault
    per 4 KiB: about 5 us each on the project's VM, 8 ms per [100, 16, 1024] float32 buffer,
    more than the LIF arithmetic (workload 1: 1600 faults per iteration before, ~50 after). The
    price: the list keeps up to that many buffers (at most :data:`WORKSPACE_BYTES`) alive after
    training (:func:`release_workspace` drops them), and a gradient into a leaf input is copied
    by autograd instead of taken over (the list still refers to it). A GPU's
    caching allocator already reuses blocks, so elsewhere this is ``empty_like``."""
    if x.device.type != "cpu" or _STORAGE_USE_COUNT is None:
        return torch.empty_like(x)
    pool = getattr(_workspace, "buffers", None)
    if pool is None:
        pool = _workspace.buffers = []
    for k in range(len(pool)):
        if _unreferenced(pool, k) and pool[k].shape == x.shape and pool[k].dtype == x.dtype:
            return pool[k].detach()
    buf = torch.empty(x.shape, dtype=x.dtype)
    size = buf.numel() * buf.element_size()
    if size > WORKSPACE_BYTES // 2:
        return buf
    pool.append(buf)
    while len(pool) > WORKSPACE_BUFFERS or sum(b.numel() * b.element_size() for b in pool) > WORKSPACE_BYTES:
        del pool[0]                                  # dropped from the list only: whoever holds it keeps it
    # a new tensor on the same storage: autograd attaches the spikes' graph node to the object the
    # forward returns, which must not be the list's (it would keep the node alive and hand a tensor
    # that requires grad to the next forward, whose backward writes dL/dx into it)
    return buf.detach()


#: torch's count of references to a storage (private; without it nothing is reused)
_STORAGE_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)


def _unreferenced(pool: list, k: int) -> bool:
    """Only the list ``pool`` refers to its ``k``-th tensor: no other Python reference (the count
    of 2 is the list's and getrefcount's argument), no C++ one (a graph that saved it, a gradient
    written into it and kept) and nothing else on its storage (a view, a storage object; the
    count of 2 is the tensor's and the storage object asked for it)."""
    if sys.getrefcount(pool[k]) != 2 or pool[k]._use_count() != 1:
        return False
    return _STORAGE_USE_COUNT(pool[k].untyped_storage()._cdata) == 2


def chunk_steps(x: torch.Tensor) -> int:
    """Steps per chunk of ``x [T, ...]``: about :data:`CHUNK_BYTES` on the CPU, all T elsewhere
    (a GPU's caching allocator reuses whole buffers, and fewer launches are cheaper there)."""
    if x.device.type != "cpu":
        return max(1, x.shape[0])
    return max(1, CHUNK_BYTES // max(1, x[0].numel() * x.element_size()))


def _input_terms(out, x, i0, t0, t1, same, one_minus_a, r):
    """``out[k] = (1 - a) (r I_{t0+k})`` for the steps t0 <= t < t1, with I_t = x_t, or x_{t-1}
    (i0 at t = 0) when the input is one step late; the rounding of ``lif_step``'s
    ``(1.0 - a) * (r * current)`` (multiplication commutes exactly)."""
    if not same and t0 == 0:
        out[0] = one_minus_a * (i0 if _is(r, 1) else r * i0)
        src, dst = x[:t1 - 1], out[1:]
    else:
        src, dst = (x[t0:t1] if same else x[t0 - 1:t1 - 1]), out
    if src.shape[0] == 0:
        return
    if _is(r, 1):
        torch.mul(src, one_minus_a, out=dst)
    else:
        torch.mul(src, r, out=dst).mul_(one_minus_a)


def lif_forward(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep: bool):
    """The forward loop. Returns (h' [T, ...] or None, s [T, ...], free [T, ...] bool or None, v_T,
    ref_T, whether it ran compiled). ``keep`` (training) keeps h' and the free masks for the backward; without it h' lives in
    a buffer of one chunk of steps (inference: no [T, ...] temporary). On the CPU in float32/float64
    this is one compiled pass (:func:`neurosim.compiled.training.forward_compiled`, the same values
    bit for bit), elsewhere :func:`_torch_forward`."""
    from ..compiled.training import forward_compiled
    compiled = forward_compiled(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep)
    if compiled is not None:
        return compiled + (True,)
    return _torch_forward(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep) + (False,)


def _torch_forward(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep: bool):
    """:func:`lif_forward` in torch ops, a few per step."""
    T, same, refr, reset = x.shape[0], p.input_same_step, int(p.refractory_steps), p.reset
    one_minus_a = 1.0 - a
    S = _workspace_like(x) if keep else torch.empty_like(x)
    if keep:
        H, step = _workspace_like(x), T
        free_all = torch.empty(x.shape, dtype=torch.bool, device=x.device) if refr else None
    else:
        step = chunk_steps(x)
        H, free_all = None, None
        buf = torch.empty((min(step, T),) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    delayed = reset == "subtract_delayed"
    jump = th - v_reset if delayed else None
    leak_zero = _is(leak, 0)
    a_op, th_op = scalar_operand(a, x), scalar_operand(th, x)
    v, ref, s_prev = v0, ref0, None
    for t0 in range(0, T, step):
        t1 = min(T, t0 + step)
        hc = H[t0:t1] if keep else buf[:t1 - t0]
        _input_terms(hc, x, i0, t0, t1, same, one_minus_a, r)
        for t, h in enumerate(hc.unbind(0), t0):
            s = S[t]
            if leak_zero:
                h.add_(v * a_op)                     # c + v a = v a + c (exact: addition commutes)
            else:
                h.add_((v - leak).mul_(a_op).add_(leak))
            if delayed:                              # h - H(v_{t-1} - v_th) J, the late reset
                fired = s_prev if s_prev is not None else (v > th_op).to(h.dtype)
                if isinstance(jump, torch.Tensor):
                    h.sub_(fired * jump)
                else:
                    h.sub_(fired, alpha=jump)        # fired * J is exact (fired is 0 or 1)
            if refr:
                free = torch.le(ref, 0, out=free_all[t]) if keep else ref <= 0
                torch.where(free, h, v, out=h)
                torch.gt(h, th_op, out=s).mul_(free)
                ref = (ref - 1).clamp_(min=0).masked_fill_(s > 0, float(refr))
            else:
                torch.gt(h, th_op, out=s)            # H(h - v_th): h - v_th > 0 exactly when h > v_th
                s_prev = s
            v = apply_reset(h, s, reset, th, v_reset)
        if delayed:
            v = v.clone()                            # not a view of h' (saved, or reused by the next chunk)
    return H, S, free_all, v, ref


def _lead_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the time and batch axes: ``[T, batch, *shape] -> [*shape]``."""
    return t.sum(dim=(0, 1))


def _grad_for(total: torch.Tensor, param) -> torch.Tensor:
    """A gradient ``[*shape]`` (or broadcast to it) summed to the parameter's own shape."""
    return total.expand(torch.broadcast_shapes(total.shape, param.shape)).sum_to_size(param.shape)


class LIFSequenceFunction(torch.autograd.Function):
    """T LIF steps as one autograd node (equations in the module docstring).

    ``apply(p, dt, surrogate, x, v0, i0, ref0, tau_mem, v_threshold, v_leak, v_reset, r)`` ->
    ``(s [T, ...], v_T)``, and ``ref_T`` (no gradient) after them when ``p.refractory_steps > 0``;
    the parameters are ``p``'s values (floats or tensors), passed apart so that autograd sees the
    tensors among them."""

    @staticmethod
    def forward(ctx, p, dt, surrogate, x, v0, i0, ref0, tau, th, leak, v_reset, r):
        a = decay_factor(tau, dt, p.integration)
        H, S, free, v, ref, ctx.compiled = lif_forward(x, v0, i0, ref0, a, th, leak, v_reset, r, p, keep=True)
        ctx.p, ctx.dt, ctx.surrogate, ctx.a = p, dt, surrogate, a
        params = (tau, th, leak, v_reset, r)
        ctx.floats = tuple(None if isinstance(q, torch.Tensor) else q for q in params)
        ctx.rebuildable = higher_order_enabled()     # keep the inputs only when asked (memory)
        need_tau, need_r = ctx.needs_input_grad[7], ctx.needs_input_grad[11]
        keep_x = ctx.rebuildable or need_tau or need_r
        ctx.save_for_backward(H, S, free, x if keep_x else None, v0,
                              i0 if (keep_x and not p.input_same_step) or ctx.rebuildable else None,
                              ref0 if ctx.rebuildable else None,
                              *(q if isinstance(q, torch.Tensor) else None for q in params))
        if not p.refractory_steps:
            return S, v
        ctx.mark_non_differentiable(ref)
        return S, v, ref

    @staticmethod
    def backward(ctx, grad_s, grad_v, *_grad_ref):
        if torch.is_grad_enabled():     # create_graph (MAML's second order): a differentiable backward
            if not ctx.rebuildable:
                raise RuntimeError("the fused LIF kernel's backward cannot be differentiated again unless its forward "
                                   "ran inside neurosim.higher_order_gradients() (MAML's second order does that)")
            return (None, None, None) + _stepped_backward(ctx, grad_s, grad_v)
        return (None, None, None) + _fast_backward(ctx, grad_s, grad_v)


def _param_values(ctx, saved):
    """(tau, th, leak, v_reset, r): the floats kept on ctx, the tensors from the saved ones."""
    return tuple(f if f is not None else t for f, t in zip(ctx.floats, saved))


def _keeps_graph() -> bool:
    """Whether the running backward keeps the graph (``retain_graph``): then the saved h' must
    survive it. Unknown (a torch without the query) counts as kept."""
    query = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return True if query is None else bool(query())


def _fast_backward(ctx, grad_s, grad_v):
    """The once-differentiable backward of the module docstring, chunk by chunk of steps from the
    last. The recurrence runs in a chunk temporary; dL/dx is written chunk by chunk into the
    saved h' itself when the graph is not kept (its values were read just before), else into one
    new ``[T, ...]`` buffer, so a plain ``backward()`` allocates no ``[T, ...]`` tensor."""
    H, S, F, x, v0, i0, _ref0, *saved = ctx.saved_tensors
    tau, th, leak, v_reset, r = _param_values(ctx, saved)
    p, a, dt = ctx.p, ctx.a, ctx.dt
    need = ctx.needs_input_grad
    need_x, need_v0, need_i0 = need[3], need[4], need[5]
    need_tau, need_th, need_leak, need_vr, need_r = need[7:12]
    reset, same, refr = p.reset, p.input_same_step, p.refractory_steps > 0
    delayed = reset == "subtract_delayed"
    jump = th - v_reset
    T, dtype = H.shape[0], H.dtype
    one_minus_a = 1.0 - a
    in_scale = one_minus_a * r                       # dh_t/dI_t
    # dL/dI_t per step; one more slot when the input is late by a step (dL/dx_t = dL/dI_{t+1})
    dest = None
    if same and need_x:
        dest = H if not _keeps_graph() else torch.empty_like(H)
    elif not same and (need_x or need_i0):
        dest = torch.empty((T + 1,) + tuple(H.shape[1:]), dtype=dtype, device=H.device)
        dest[T] = 0.0
    if ctx.compiled and not any((need_tau, need_th, need_leak, need_vr, need_r)):
        from ..compiled.training import backward_compiled
        if dest is None:                             # only dL/dv0 wanted: the kernel still writes dL/dI
            dest = H if not _keeps_graph() else torch.empty_like(H)
        grad_v0 = backward_compiled(H, F, grad_s, grad_v, th, a, in_scale, jump, v_reset, p, ctx.surrogate, dest)
        grad_x = (dest if same else dest[1:]) if need_x else None
        grad_i0 = dest[0] if need_i0 and not same else None
        return grad_x, (grad_v0 if need_v0 else None), grad_i0, None, None, None, None, None, None
    sum_th = sum_vr = sum_g = sum_gi = sum_gv = None
    carry = grad_v                                   # dL/dv at the chunk's last step
    step = chunk_steps(H)
    for t1 in range(T, 0, -step):
        t0 = max(0, t1 - step)
        h, s = H[t0:t1], S[t0:t1]
        g = ctx.surrogate.grad(h - th)
        if refr:
            g.mul_(F[t0:t1])                         # g_t free_t
        Gc = g * grad_s[t0:t1]                       # dL/ds_t g_t, completed by the recurrence
        if need_th:
            sum_th = _add(sum_th, -_lead_sum(Gc))
            E = None if delayed else _threshold_derivative(g, h, s, jump, v_reset, reset)
        v_before = _v_before(H, S, v0, t0, t1, reset, th, v_reset) if (
            need_tau or (delayed and (need_th or need_vr))) else None
        m = F[t0 + 1:t1].to(dtype).mul_(a - 1.0).add_(1.0) if refr else a    # m_t = a free_t + 1 - free_t
        if delayed:                                  # D_t = 1: C_t = m_{t+1}
            Gc[-1].add_(carry)
            C = m
        else:
            D = _reset_derivative(g, h, s, jump, v_reset, reset)
            Gc[-1].addcmul_(carry, D[-1])
            C = D[:-1].mul_(m)
        Gs = Gc.unbind(0)
        if not isinstance(C, torch.Tensor):
            for k in range(t1 - t0 - 2, -1, -1):
                Gs[k].add_(Gs[k + 1], alpha=C)
        elif C.dim() < Gc.dim():                     # the decay a itself (a tensor, per neuron)
            for k in range(t1 - t0 - 2, -1, -1):
                Gs[k].addcmul_(Gs[k + 1], C)
        else:
            Cs = C.unbind(0)
            for k in range(t1 - t0 - 2, -1, -1):
                Gs[k].addcmul_(Gs[k + 1], Cs[k])
        if need_th or need_vr:                       # dL/dv_t = m_{t+1} G_{t+1}; the carry at the last step
            Vg = torch.empty_like(Gc)
            torch.mul(Gc[1:], m, out=Vg[:-1])
            Vg[-1] = carry
        m_first = F[t0].to(dtype).mul_(a - 1.0).add_(1.0) if refr else a
        carry = Gc[0] * m_first                      # dL/dv_{t0-1}, for the chunk before
        Gh = Gc.mul_(F[t0:t1]) if refr else Gc       # dL/dh_t = free_t G_t
        if need_th and not delayed:
            sum_th = sum_th + _lead_sum(Vg * E)
        if need_vr and reset in ("subtract", "value"):
            sum_vr = _add(sum_vr, _lead_sum(Vg * s))
        if delayed and (need_th or need_vr):         # f_t = H(v_{t-1} - v_th), from the stored v_{t-1}
            fired = (v_before > th).to(dtype).mul_(Gh)
            if need_th:
                sum_th = sum_th - _lead_sum(fired)
            if need_vr:
                sum_vr = _add(sum_vr, _lead_sum(fired))
        if need_leak or need_tau:
            sum_g = _add(sum_g, _lead_sum(Gh))
        if need_tau or need_r:
            sum_gi = _add(sum_gi, _lead_sum(Gh * _inputs(x, i0, t0, t1, same)))
        if need_tau:
            sum_gv = _add(sum_gv, _lead_sum(Gh * v_before))
        if dest is not None:                         # last: h' of this chunk is not read again
            torch.mul(Gh, in_scale, out=dest[t0:t1])
    grad_v0 = carry if need_v0 else None
    grad_th = _grad_for(sum_th, th) if need_th else None
    grad_vr = _grad_for(sum_vr, v_reset) if sum_vr is not None else None
    grad_leak = _grad_for(sum_g * one_minus_a, leak) if need_leak else None
    grad_r = _grad_for(sum_gi * one_minus_a, r) if need_r else None
    grad_tau = None
    if need_tau:
        grad_a = sum_gv - leak * sum_g - r * sum_gi  # sum dL/dh_t (v_{t-1} - v_leak - r I_t)
        tau_c = tau.clamp(min=dt / 100.0)
        da_dtau = dt / tau_c ** 2
        if p.integration == "exact":
            da_dtau = da_dtau * a
        grad_tau = _grad_for(grad_a * da_dtau * (tau >= dt / 100.0), tau)
    grad_x = (dest if same else dest[1:]) if need_x else None
    grad_i0 = dest[0] if need_i0 and not same else None
    return grad_x, grad_v0, grad_i0, None, grad_tau, grad_th, grad_leak, grad_vr, grad_r


def _add(total, term):
    return term if total is None else total + term


def _inputs(x, i0, t0, t1, same):
    """I_t for t0 <= t < t1: x_t, or x_{t-1} with i0 at t = 0 when the input is one step late."""
    if same:
        return x[t0:t1]
    if t0 > 0:
        return x[t0 - 1:t1 - 1]
    return torch.cat([i0.unsqueeze(0), x[:t1 - 1]])


def _v_before(H, S, v0, t0, t1, reset, th, v_reset):
    """v_{t-1} for t0 <= t < t1, rebuilt from the saved h' and s (v0 at t = 0)."""
    lo = max(t0 - 1, 0)
    v = apply_reset(H[lo:t1 - 1], S[lo:t1 - 1], reset, th, v_reset)
    return torch.cat([v0.unsqueeze(0), v]) if t0 == 0 else v


def _reset_derivative(g, H, S, jump, v_reset, reset):
    """D_t = dv_t/dh'_t of the module docstring, in place in ``g`` (which holds g_t)."""
    if reset == "subtract":                          # 1 - J g
        return g.mul_(-jump).add_(1.0)
    if reset == "zero":                              # 1 - (s + h g)
        torch.addcmul(S, H, g, out=g)
    else:                                            # value: 1 - (s + (h - v_reset) g)
        torch.addcmul(S, H if _is(v_reset, 0) else H - v_reset, g, out=g)
    return g.neg_().add_(1.0)


def _threshold_derivative(g, H, S, jump, v_reset, reset):
    """E_t = dv_t/dv_th holding h'_t (through s_t and, for subtract, the jump J = v_th - v_reset)."""
    if reset == "subtract":
        return g * jump - S
    if reset == "zero":
        return H * g
    return (H - v_reset) * g


def _stepped_backward(ctx, grad_s, grad_v):
    """The same gradients from the T steps of ``lif_step`` rebuilt under autograd from the saved
    inputs, with ``create_graph``: differentiable again (the fast backward works in place and is
    not). Only runs when a backward asks for a graph, for a forward run inside
    :func:`neurosim.higher_order.higher_order_gradients`."""
    from ..surrogate import spike
    from .lif import LIFState, lif_step
    _H, _S, _F, x, v0, i0, ref0, *saved = ctx.saved_tensors
    values = _param_values(ctx, saved)
    p = dataclasses.replace(ctx.p, **dict(zip(PARAMETER_FIELDS, values)))
    inputs = (x, v0, i0) + tuple(values)
    wanted = [q for q, need in zip(inputs, ctx.needs_input_grad[3:6] + ctx.needs_input_grad[7:12])
              if need and isinstance(q, torch.Tensor)]
    with torch.enable_grad():
        state, spikes = LIFState(v=v0, i=i0, refractory=ref0), []
        for t in range(x.shape[0]):
            s, state = lif_step(x[t], state, p, ctx.dt, lambda z: spike(z, ctx.surrogate))
            spikes.append(s)
        outputs, grads = [torch.stack(spikes)], [grad_s]
        if grad_v is not None:
            outputs.append(state.v)
            grads.append(grad_v)
        found = iter(torch.autograd.grad(outputs, wanted, grads, create_graph=True, allow_unused=True))
    result = []
    for q, need in zip(inputs, ctx.needs_input_grad[3:6] + ctx.needs_input_grad[7:12]):
        result.append(next(found) if need and isinstance(q, torch.Tensor) else None)
    x_grad, v0_grad, i0_grad, *param_grads = result
    return (x_grad, v0_grad, i0_grad, None, *param_grads)
