"""Leaky integrate-and-fire neuron (NIR ``LIF``).

Continuous dynamics, with the input current I in amperes and r in ohms (so r*I is in volts)::

    tau_mem dv/dt = (v_leak - v) + r I
    spike when v > v_threshold, then reset (zero | subtract | value | subtract_delayed), then
    ``refractory_steps`` steps during which v is held and no input is integrated.

Discretisation with a = exp(-dt/tau_mem) (``integration="exact"``, exact for I constant over the
step) or a = 1 - dt/tau_mem (``"euler"``)::

    v[t] = v_leak + (v[t-1] - v_leak) a + (1 - a) r I_eff[t]
    s[t] = H(v[t] - v_threshold);   v[t] <- reset(v[t], s[t])

``reset="subtract_delayed"`` (snnTorch's default ``Leaky``) applies the reset one step late and
undecayed: no reset in the step of the spike, and the next step computes

    v[t] = v_leak + (v[t-1] - v_leak) a + (1 - a) r I_eff[t] - s[t-1] (v_threshold - v_reset)

with ``s[t-1] = H(v[t-1] - v_threshold)`` read from the (unreset) stored membrane; with
a = beta, (1 - a) r = 1 and v_reset = 0 this is snnTorch's ``beta v + I - H(v - thr) thr``.

``I_eff[t] = I[t]`` when ``input_same_step`` (the input of step t can make a spike at step t),
else ``I[t-1]`` (one step of latency, as on hardware that integrates after thresholding).

Shapes: input and every state field ``[batch, *shape]``; parameters are floats or tensors that
broadcast against ``shape``.

Example::

    >>> pop = Population("lif", 100, LIFParams(tau_mem=20e-3, v_threshold=1.0, reset="zero"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from ..higher_order import higher_order_enabled
from .base import (NeuronModel, apply_reset, check_choice, delayed_reset, check_fields_positive, check_steps, decay_factor,
                   default_spike_fn, INTEGRATIONS, RESETS, register_neuron_model)

Scalar = Union[float, torch.Tensor]

__all__ = ["LIFParams", "LIFState", "lif_step", "lif_initial_state", "LIF", "leaky_integrate",
           "integrate_and_fire"]


@dataclass(frozen=True)
class LIFParams:
    """LIF parameters (SI units). ``tau_mem`` [s], ``v_*`` [V], ``r`` [Ohm]."""

    tau_mem: Scalar = 10e-3
    v_threshold: Scalar = 1.0
    v_leak: Scalar = 0.0
    v_reset: Scalar = 0.0
    r: Scalar = 1.0
    integration: str = "exact"
    reset: str = "subtract"
    refractory_steps: int = 0
    input_same_step: bool = True

    def __post_init__(self):
        check_choice(self.integration, INTEGRATIONS, "LIFParams.integration")
        check_choice(self.reset, RESETS, "LIFParams.reset")
        check_steps(self.refractory_steps, "LIFParams.refractory_steps")
        check_fields_positive(self, ("tau_mem",))


class LIFState(NamedTuple):
    """v: membrane [V]; i: the input current held for the next step [A];
    refractory: steps of refractoriness left (float, 0 when free)."""

    v: torch.Tensor
    i: torch.Tensor
    refractory: torch.Tensor


def lif_initial_state(params: LIFParams, shape, batch_size: int, device=None, dtype=torch.float32) -> LIFState:
    """Resting state: v = v_leak, no held input, not refractory."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return LIFState(v=z + params.v_leak, i=z, refractory=z)


def leaky_integrate(v, current, tau_mem, v_leak, r, dt: float, integration: str):
    """One step of ``tau_mem dv/dt = (v_leak - v) + r I`` with I held over the step:
    ``v_leak + (v - v_leak) a + (1 - a) r I`` with a = exp(-dt/tau_mem) or 1 - dt/tau_mem."""
    a = decay_factor(tau_mem, dt, integration)
    return v_leak + (v - v_leak) * a + (1.0 - a) * (r * current)


def integrate_and_fire(v_integrated, state_v, refractory, p, spike_fn, v_threshold=None,
                       reset=None, v_reset=None):
    """Shared tail of LIF-like models: refractory hold, threshold, reset, refractory count.

    ``v_threshold``, ``reset`` and ``v_reset`` default to the fields of ``p`` of the same names
    (models with an adaptive threshold or other field names pass them explicitly).
    Returns (s, v_after_reset, refractory_new)."""
    v_threshold = p.v_threshold if v_threshold is None else v_threshold
    reset = p.reset if reset is None else reset
    v_reset = p.v_reset if v_reset is None else v_reset
    if reset == "subtract_delayed":      # the reset of the last step's spike, after integration
        v_integrated = delayed_reset(v_integrated, state_v, v_threshold, v_reset)
    if p.refractory_steps > 0:
        free = refractory <= 0
        v_integrated = torch.where(free, v_integrated, state_v)
        s = spike_fn(v_integrated - v_threshold) * free
        refractory = torch.where(s > 0, torch.full_like(refractory, float(p.refractory_steps)),
                                 (refractory - 1).clamp_(min=0))
    else:
        s = spike_fn(v_integrated - v_threshold)
    return s, apply_reset(v_integrated, s, reset, v_threshold, v_reset), refractory


def lif_step(x: torch.Tensor, state: LIFState, p: LIFParams, dt: float,
             spike_fn=default_spike_fn):
    """One LIF step (see the module docstring for the equations). Returns (spikes, new_state)."""
    current = x if p.input_same_step else state.i
    v = leaky_integrate(state.v, current, p.tau_mem, p.v_leak, p.r, dt, p.integration)
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn)
    return s, LIFState(v=v, i=x, refractory=refractory)


class _LIFSequence(torch.autograd.Function):
    """T LIF steps in one autograd node (same arithmetic as :func:`lif_step`, bit for bit).

    Forward, per step: h_t = v_leak + (v_{t-1} - v_leak) a + c_t with c_t = (1 - a) (r x_t);
    s_t = H(h_t - v_th); v_t = reset(h_t, s_t). Backward, with g_t = surrogate'(h_t - v_th)::

        dL/dh_t     = dL/ds_t g_t + dL/dv_t dv_t/dh_t,   dL/dv_t = a dL/dh_{t+1} (t < T-1)
        dL/dx_t     = (1 - a) r dL/dh_t,                 dL/dv_{-1} = a dL/dh_0
        dv_t/dh_t   = 1 - (v_th - v_reset) g_t         (subtract)
                    = 1 - s_t - h_t g_t                 (zero)
                    = 1 - s_t + (v_reset - h_t) g_t     (value)
    """

    @staticmethod
    def forward(ctx, x_seq, v0, a, p, surrogate, dt):
        unit_r = isinstance(p.r, float) and p.r == 1.0
        inp = x_seq * (1.0 - a) if unit_r else (1.0 - a) * (p.r * x_seq)
        h_all = torch.empty_like(x_seq)
        s_all = torch.empty_like(x_seq)
        v, th, leak = v0, p.v_threshold, p.v_leak
        leaky = not (isinstance(leak, float) and leak == 0.0)
        for t in range(x_seq.shape[0]):
            h, s = h_all[t], s_all[t]
            if leaky:
                torch.add(leak, (v - leak) * a, out=h)
            else:
                torch.mul(v, a, out=h)
            h.add_(inp[t])
            torch.gt(h, th, out=s)
            v = apply_reset(h, s, p.reset, th, p.v_reset)
        ctx.rebuildable = higher_order_enabled()   # keep the inputs only when asked (memory)
        ctx.save_for_backward(h_all, s_all, *((x_seq, v0) if ctx.rebuildable else ()))
        ctx.a, ctx.p, ctx.surrogate, ctx.dt = a, p, surrogate, dt
        return s_all, v

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        if torch.is_grad_enabled():     # create_graph (MAML's second order): a differentiable backward
            if not ctx.rebuildable:
                raise RuntimeError("the fused LIF kernel's backward cannot be differentiated again unless its forward "
                                   "ran inside neurosim.higher_order_gradients() (MAML's second order does that)")
            return _LIFSequence.stepped_backward(ctx, grad_s, grad_v)
        h_all, s_all = ctx.saved_tensors[:2]
        a, p = ctx.a, ctx.p
        g = ctx.surrogate.grad(h_all - p.v_threshold)
        if p.reset == "subtract":
            dv_dh = g * -(p.v_threshold - p.v_reset)
            dv_dh.add_(1.0)
        elif p.reset == "zero":
            dv_dh = 1.0 - s_all - h_all * g
        else:
            dv_dh = 1.0 - s_all + (p.v_reset - h_all) * g
        grad_h = g.mul_(grad_s)                  # dL/ds_t g_t, completed in place below
        last = grad_h.shape[0] - 1
        if grad_v is not None:
            grad_h[last].addcmul_(grad_v, dv_dh[last])
        coef = dv_dh.mul_(a)                     # a dv_t/dh_t
        for t in range(last - 1, -1, -1):
            grad_h[t].addcmul_(grad_h[t + 1], coef[t])
        return grad_h * ((1.0 - a) * p.r), grad_h[0] * a, None, None, None, None

    @staticmethod
    def stepped_backward(ctx, grad_s, grad_v):
        """The same gradients from the T steps of :func:`lif_step` rebuilt under autograd from the
        saved inputs, with ``create_graph``: differentiable again (the fast backward above works in
        place and is not). Only runs when a backward asks for a graph, for a forward run inside
        :func:`neurosim.higher_order.higher_order_gradients`."""
        from neurosim.surrogate import spike
        x_seq, v0 = ctx.saved_tensors[2:]
        with torch.enable_grad():
            state, spikes = LIFState(v=v0, i=torch.zeros_like(v0), refractory=torch.zeros_like(v0)), []
            for t in range(x_seq.shape[0]):
                s, state = lif_step(x_seq[t], state, ctx.p, ctx.dt, lambda z: spike(z, ctx.surrogate))
                spikes.append(s)
            outputs, grads = [torch.stack(spikes)], [grad_s]
            if grad_v is not None:
                outputs.append(state.v)
                grads.append(grad_v)
            wanted = [t for t in (x_seq, v0) if t.requires_grad]
            found = iter(torch.autograd.grad(outputs, wanted, grads, create_graph=True, allow_unused=True))
        grad_x, grad_v0 = (next(found) if x_seq.requires_grad else None), (next(found) if v0.requires_grad else None)
        return grad_x, grad_v0, None, None, None, None


def lif_sequence(x_seq: torch.Tensor, state: LIFState, p: LIFParams, dt: float, surrogate):
    """T steps of :func:`lif_step` at once (fused forward/backward, same results).

    Shapes: x_seq ``[T, batch, *shape]``. Applies when input reaches the membrane in the same
    step, there is no refractory period, the reset is not ``"subtract_delayed"`` and no parameter
    needs a gradient; otherwise returns ``NotImplemented`` and the caller steps :func:`lif_step`."""
    params = (p.tau_mem, p.v_threshold, p.v_leak, p.v_reset, p.r)
    if (not p.input_same_step or p.refractory_steps > 0 or p.reset == "subtract_delayed"
            or any(isinstance(q, torch.Tensor) and q.requires_grad for q in params)):
        return NotImplemented
    a = decay_factor(p.tau_mem, dt, p.integration)
    spikes, v = _LIFSequence.apply(x_seq, state.v, a, p, surrogate, dt)
    return spikes, LIFState(v=v, i=x_seq[-1], refractory=state.refractory)


LIF = register_neuron_model(NeuronModel(
    name="lif", params_type=LIFParams, state_type=LIFState, step=lif_step,
    initial_state=lif_initial_state, time_constants=("tau_mem",), sequence=lif_sequence))
