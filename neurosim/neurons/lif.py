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

from .base import (NeuronModel, apply_reset, check_choice, delayed_reset, check_fields_positive, check_steps, decay_factor,
                   default_spike_fn, INTEGRATIONS, RESETS, register_neuron_model, scalar_operand)
from ..surrogate import bound_surrogate, get_surrogate, spike_above
from ..validation import is_plain_number
from .lif_fused import covers, fused_lif

Scalar = Union[float, torch.Tensor]

#: what :func:`~neurosim.neurons.base.default_spike_fn` applies (``spike``'s default surrogate)
_DEFAULT_SURROGATE = get_surrogate("fast_sigmoid")

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
    ``v_leak + (v - v_leak) a + (1 - a) r I`` with a = exp(-dt/tau_mem) or 1 - dt/tau_mem.

    With ``v_leak = 0`` and ``r = 1`` given as Python numbers the terms that add 0 or multiply
    by 1 are left out (``v a + (1 - a) I``): the same values, three operations (and backward
    nodes) fewer per step; a float ``a`` then enters both products as a cached 0-dim tensor
    (:func:`~neurosim.neurons.base.scalar_operand`, the same values, cheaper dispatch).

    The final sum is written into the decayed term, a temporary of this function (see
    :func:`_add_into`): the same values, one ``[batch, *shape]`` tensor fewer per step. Neither
    ``v`` nor ``current`` is ever written to.

    Shapes: v, current ``[batch, *shape]``; parameters floats or tensors broadcasting to them."""
    a = decay_factor(tau_mem, dt, integration)
    if _is_number(r, 1.0) and _is_number(v_leak, 0.0):     # v a + (1 - a) I: the rounding of v a + drive
        return _add_into(v * scalar_operand(a, v), scalar_operand(1.0 - a, current) * current)
    drive = (1.0 - a) * (current if _is_number(r, 1.0) else r * current)
    if _is_number(v_leak, 0.0):        # the same values (up to the sign of a zero), three ops fewer
        return _add_into(v * a, drive)
    return _add_into(v_leak + (v - v_leak) * a, drive)


def _add_into(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``fresh + other``, written into ``fresh`` when ``other`` has its shape and dtype (else a
    new tensor, with broadcasting and type promotion as usual): the same values bit for bit.

    ``fresh`` must be a temporary that nobody else holds: a product or sum just made by the
    caller, whose autograd node keeps its inputs, never its output, so the in-place add is
    allowed under autograd, double backward included. One allocation fewer per step matters
    more than its size: PyTorch's CPU allocator asks glibc for 64-byte aligned blocks
    (``posix_memalign``), and glibc (2.36 here) serves each such request from a free chunk at
    least 64 + 32 bytes larger than the block, so a freed block of a stepped loop is reused by
    the next block of its size only once it has merged with a free neighbour (checked with a
    small C program: an isolated hole is skipped, two adjacent ones are reused); every
    temporary of a step can leave such a hole, and the heap grows past it. In the recurrent training
    benchmark at T = 1000 (``benchmarks/bench_recurrent.py``) this one temporary fewer per step,
    with the spike written straight into its float tensor (:func:`~neurosim.surrogate.heaviside`),
    took neurosim's peak resident-memory increase from 456-534 MB to 388-416 MB (6 and 8 fresh
    processes; the spread is the address-space randomisation), below SpikingJelly's 525-533 MB."""
    if isinstance(other, torch.Tensor) and other.shape == fresh.shape and other.dtype == fresh.dtype:
        return fresh.add_(other)
    return fresh + other


def _is_number(value, number: float) -> bool:
    """True when ``value`` is the plain Python number ``number`` (a tensor never is)."""
    return not isinstance(value, torch.Tensor) and value == number


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
        s = _fire(v_integrated, v_threshold, spike_fn) * free
        refractory = torch.where(s > 0, torch.full_like(refractory, float(p.refractory_steps)),
                                 (refractory - 1).clamp_(min=0))
    else:
        s = _fire(v_integrated, v_threshold, spike_fn)
    return s, apply_reset(v_integrated, s, reset, v_threshold, v_reset), refractory


def _fire(v, v_threshold, spike_fn):
    """``spike_fn(v - v_threshold)``. When ``spike_fn`` is neurosim's :func:`~neurosim.surrogate.spike`
    with a bound surrogate (what a Population passes, or the default) and the threshold a plain
    number, through :func:`~neurosim.surrogate.spike_above` instead: the same spikes and
    gradients, without the ``v - v_threshold`` tensor that the backward would keep per step."""
    if is_plain_number(v_threshold):
        surrogate = _DEFAULT_SURROGATE if spike_fn is default_spike_fn else bound_surrogate(spike_fn)
        if surrogate is not None:
            return spike_above(v, v_threshold, surrogate)
    return spike_fn(v - v_threshold)


def lif_step(x: torch.Tensor, state: LIFState, p: LIFParams, dt: float,
             spike_fn=default_spike_fn):
    """One LIF step (see the module docstring for the equations). Returns (spikes, new_state)."""
    current = x if p.input_same_step else state.i
    v = leaky_integrate(state.v, current, p.tau_mem, p.v_leak, p.r, dt, p.integration)
    s, v, refractory = integrate_and_fire(v, state.v, state.refractory, p, spike_fn)
    return s, LIFState(v=v, i=x, refractory=refractory)


def lif_sequence(x_seq: torch.Tensor, state: LIFState, p: LIFParams, dt: float, surrogate):
    """T steps of :func:`lif_step` at once: the fused kernel of :mod:`neurosim.neurons.lif_fused`
    (one autograd node, same spikes and states bit for bit, the same gradients up to rounding for
    the input, the initial state and every trainable parameter).

    Covers every reset mode, refractory periods, ``input_same_step`` True or False, both
    integrations, and float, per-neuron or trainable ``tau_mem``, ``v_threshold``, ``v_leak``,
    ``v_reset`` and ``r``. Returns ``NotImplemented`` (the caller steps :func:`lif_step`) only
    for an empty sequence, state fields or parameter tensors of another dtype, device or shape
    than the input's step (:func:`~neurosim.neurons.lif_fused.covers`), or a refractory count
    that requires a gradient.

    Shapes: x_seq ``[T, batch, *shape]`` -> (spikes ``[T, batch, *shape]``, final LIFState)."""
    if not covers(x_seq, state, p):
        return NotImplemented
    spikes, v, refractory = fused_lif(x_seq, state, p, dt, surrogate)
    return spikes, LIFState(v=v, i=x_seq[-1], refractory=refractory)


LIF = register_neuron_model(NeuronModel(
    name="lif", params_type=LIFParams, state_type=LIFState, step=lif_step,
    initial_state=lif_initial_state, time_constants=("tau_mem",), sequence=lif_sequence))
