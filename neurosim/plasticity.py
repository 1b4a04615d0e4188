"""Trace-based pair STDP (spike-timing-dependent plasticity), applied without autograd.

Each synapse ``pre -> post`` sees two exponentially decaying traces (dimensionless)::

    x_pre[t]  = x_pre[t-1]  exp(-dt / tau_plus)  + s_pre[t]      (all-to-all interaction)
    x_post[t] = x_post[t-1] exp(-dt / tau_minus) + s_post[t]
    ("nearest": a spike sets its trace to 1 instead of adding 1)

Order within step ``t`` (fixed): (1) both traces decay by one step; (2) the weight change is
computed from the decayed traces, which do **not** yet include the spikes of step ``t``;
(3) the spikes of step ``t`` are added to the traces. So for one pre spike at ``t_pre`` and one
post spike at ``t_post``, with ``dt_s = t_post - t_pre`` (seconds)::

    dt_s > 0 (pre before post, causal):  dw = +a_plus  exp(-dt_s / tau_plus)
    dt_s < 0 (post before pre):          dw = -a_minus exp(+dt_s / tau_minus)
    dt_s = 0 (same step):                dw = 0

In matrix form, summed over the batch (``b``)::

    dw[j, i] = a_plus  sum_b s_post[b, j] x_pre[b, i]  -  a_minus sum_b x_post[b, j] s_pre[b, i]

``multiplicative=True`` gives soft bounds: the potentiation term is scaled by ``(w_max - w)`` and
the depression term by ``(w - w_min)``. The weights are clipped to ``[w_min, w_max]`` after every
update (weights in the units of the projection; ``a_plus``/``a_minus`` in the same units).
Synaptic delays are ignored: the rule sees the spike times at the neurons.

State is explicit (:class:`STDPState`); :func:`stdp_step` is pure. :class:`STDPRule` applies it to
a :class:`~neurosim.projections.Dense` (``[out, in]`` weights) or
:class:`~neurosim.projections.Sparse` (only the existing synapses change) in place, under
``torch.no_grad``. The :class:`~neurosim.Simulator` stays the only loop over the network; the rule
loops over recorded time. Two ways to use it:

* offline: run the simulator, then ``rule.apply(pre_seq, post_seq, dt)`` on the recorded
  ``[T, batch, ...]`` spike trains (weights frozen during the run);
* online: run the simulator in chunks, carrying both the network state and the STDP state, and
  call ``apply`` after each chunk (weights frozen within a chunk; a chunk of one step is exact
  online learning)::

    >>> rule = STDPRule(graph.nodes["fc"], STDPParams(a_plus=1e-3, a_minus=1.2e-3))
    >>> state, stdp_state = None, None
    >>> for chunk in inputs.split(100):                       # [100, batch, in] each
    ...     res = sim.run(chunk, state); state = res.state
    ...     stdp_state = rule.apply(chunk, res.outputs["lif"], sim.dt, stdp_state)

Shapes: ``pre_spikes [batch, in]``, ``post_spikes [batch, out]`` (trailing axes are flattened),
``delta_w [out, in]`` (dense) or ``[nnz]`` (with ``synapses``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch

from .validation import check_choice, check_number

__all__ = ["STDPParams", "STDPState", "STDPRule", "stdp_step", "stdp_initial_state"]

INTERACTIONS = ("all_to_all", "nearest")


@dataclass(frozen=True)
class STDPParams:
    """Pair-STDP parameters: ``tau_plus``/``tau_minus`` [s] (trace time constants of the pre and
    post traces, i.e. of the potentiation and depression windows), ``a_plus``/``a_minus`` >= 0
    (weight units, magnitudes of the changes), weight bounds ``w_min <= w_max``,
    ``multiplicative`` (soft bounds) and ``interaction`` (``"all_to_all"`` or ``"nearest"``)."""

    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    a_plus: float = 0.01
    a_minus: float = 0.012
    w_min: float = 0.0
    w_max: float = 1.0
    multiplicative: bool = False
    interaction: str = "all_to_all"

    def __post_init__(self):
        for name in ("tau_plus", "tau_minus"):
            check_number(getattr(self, name), f"STDPParams.{name}", positive=True, what="time constant", unit="s")
        for name in ("a_plus", "a_minus"):
            check_number(getattr(self, name), f"STDPParams.{name}", nonnegative=True, what="magnitude")
        for name in ("w_min", "w_max"):
            check_number(getattr(self, name), f"STDPParams.{name}", finite=False, what="weight (or +-inf)")
        if self.w_min > self.w_max:
            raise ValueError(f"STDPParams: w_min ({self.w_min}) must not exceed w_max ({self.w_max})")
        if self.multiplicative and not (math.isfinite(self.w_min) and math.isfinite(self.w_max)):
            raise ValueError("STDPParams: multiplicative (soft-bound) STDP needs finite w_min and w_max")
        check_choice(self.interaction, INTERACTIONS, "STDPParams.interaction")


class STDPState(NamedTuple):
    """pre_trace ``[batch, in]`` and post_trace ``[batch, out]`` (dimensionless), decayed to and
    including the spikes of the last processed step."""

    pre_trace: torch.Tensor
    post_trace: torch.Tensor


def stdp_initial_state(batch_size: int, in_features: int, out_features: int, device=None,
                       dtype=torch.float32) -> STDPState:
    """Zero traces (no spike seen yet)."""
    return STDPState(torch.zeros(batch_size, in_features, device=device, dtype=dtype),
                     torch.zeros(batch_size, out_features, device=device, dtype=dtype))


def _add_spikes(trace, spikes, interaction):
    if interaction == "nearest":
        return torch.where(spikes != 0, spikes, trace)
    return trace + spikes


@torch.no_grad()
def stdp_step(pre_spikes: torch.Tensor, post_spikes: torch.Tensor, state: Optional[STDPState],
              params: STDPParams, dt: float, weight: Optional[torch.Tensor] = None,
              synapses: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
    """One step of pair STDP (see the module docstring for the equations and the order).

    pre_spikes ``[batch, in]``, post_spikes ``[batch, out]``; ``state`` None starts from zero
    traces. ``synapses = (pre_index [nnz], post_index [nnz])`` gives per-synapse changes
    ``[nnz]`` (for :class:`Sparse`) instead of ``[out, in]``. ``weight`` (same shape as the
    change) is needed only when ``params.multiplicative``. Returns ``(delta_w, new_state)``;
    nothing requires grad.

    Shapes: pre_spikes ``[batch, in]``, post_spikes ``[batch, out]`` -> delta_w ``[out, in]`` (or
    ``[nnz]``) in weight units, traces ``[batch, in]`` / ``[batch, out]``."""
    check_number(dt, "stdp_step: dt", positive=True, what="time step", unit="s")
    if pre_spikes.dim() < 2 or post_spikes.dim() < 2 or pre_spikes.shape[0] != post_spikes.shape[0]:
        raise ValueError(f"stdp_step: pre_spikes and post_spikes must be [batch, ...] with the same batch, "
                         f"got {tuple(pre_spikes.shape)} and {tuple(post_spikes.shape)}")
    pre = pre_spikes.detach().reshape(pre_spikes.shape[0], -1)
    post = post_spikes.detach().reshape(post_spikes.shape[0], -1).to(pre.dtype)
    if state is None:
        state = stdp_initial_state(pre.shape[0], pre.shape[1], post.shape[1], pre.device, pre.dtype)
    if state.pre_trace.shape != pre.shape or state.post_trace.shape != post.shape:
        raise ValueError(f"stdp_step: state traces {tuple(state.pre_trace.shape)}, {tuple(state.post_trace.shape)} "
                         f"do not match the spikes {tuple(pre.shape)}, {tuple(post.shape)}")
    x_pre = state.pre_trace * math.exp(-dt / params.tau_plus)        # (1) decay, without step t
    x_post = state.post_trace * math.exp(-dt / params.tau_minus)
    if synapses is None:                                                # (2) pair terms, summed over batch
        potentiation = post.t() @ x_pre                                 # [out, in]
        depression = x_post.t() @ pre
    else:
        pre_idx, post_idx = synapses
        potentiation = (post.index_select(1, post_idx) * x_pre.index_select(1, pre_idx)).sum(0)
        depression = (x_post.index_select(1, post_idx) * pre.index_select(1, pre_idx)).sum(0)
    if params.multiplicative:
        if weight is None:
            raise ValueError("stdp_step: multiplicative STDP needs the current weight")
        w = weight.detach()
        if w.shape != potentiation.shape:
            raise ValueError(f"stdp_step: weight shape {tuple(w.shape)} does not match the update "
                             f"{tuple(potentiation.shape)}")
        delta = params.a_plus * (params.w_max - w) * potentiation - params.a_minus * (w - params.w_min) * depression
    else:
        delta = params.a_plus * potentiation - params.a_minus * depression
    new_state = STDPState(_add_spikes(x_pre, pre, params.interaction),          # (3) add step t
                          _add_spikes(x_post, post, params.interaction))
    return delta, new_state


class STDPRule:
    """Applies :func:`stdp_step` to a projection's weights in place (no autograd), clipping to
    ``[w_min, w_max]`` after each update.

    ``projection``: a Dense-like node (``weight [out, in]``) or a Sparse-like node (``weight
    [nnz]`` with ``pre``/``post`` index buffers); for Sparse only the existing synapses change.
    Shapes: spikes ``[batch, in]`` / ``[batch, out]`` per step, ``[T, batch, ...]`` for
    :meth:`apply` (trailing axes flattened)."""

    def __init__(self, projection, params: STDPParams):
        if not isinstance(params, STDPParams):
            raise TypeError(f"STDPRule: params must be STDPParams, got {type(params).__name__}")
        weight = getattr(projection, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"STDPRule: {type(projection).__name__} has no weight tensor to learn")
        self.projection, self.params = projection, params
        self.sparse = weight.dim() == 1
        if self.sparse:
            if not all(isinstance(getattr(projection, n, None), torch.Tensor) for n in ("pre", "post")):
                raise TypeError(f"STDPRule: {type(projection).__name__} has 1-D weights but no pre/post indices")
            self.in_features, self.out_features = projection.in_features, projection.out_features
        elif weight.dim() == 2:
            self.out_features, self.in_features = weight.shape
        else:
            raise TypeError(f"STDPRule: weights must be [out, in] or [nnz], got shape {tuple(weight.shape)}")

    def initial_state(self, batch_size: int, device=None, dtype=None) -> STDPState:
        w = self.projection.weight
        return stdp_initial_state(batch_size, self.in_features, self.out_features,
                                  device or w.device, dtype or w.dtype)

    @torch.no_grad()
    def step(self, pre_spikes, post_spikes, state: Optional[STDPState], dt: float) -> STDPState:
        """Update the weights for one step; returns the new :class:`STDPState`."""
        self._check(pre_spikes, post_spikes, 1)
        w = self.projection.weight
        synapses = (self.projection.pre, self.projection.post) if self.sparse else None
        delta, state = stdp_step(pre_spikes, post_spikes, state, self.params, dt, weight=w, synapses=synapses)
        w.add_(delta.to(w.dtype)).clamp_(self.params.w_min, self.params.w_max)
        return state

    @torch.no_grad()
    def apply(self, pre_seq, post_seq, dt: float, state: Optional[STDPState] = None) -> STDPState:
        """Update the weights step by step over recorded spikes ``[T, batch, ...]`` (e.g. a
        Simulator run's input and output); returns the STDP state to continue from."""
        self._check(pre_seq, post_seq, 2)
        if pre_seq.shape[:2] != post_seq.shape[:2]:
            raise ValueError(f"STDPRule.apply: pre and post sequences need the same [T, batch], got "
                             f"{tuple(pre_seq.shape[:2])} and {tuple(post_seq.shape[:2])}")
        for t in range(pre_seq.shape[0]):
            state = self.step(pre_seq[t], post_seq[t], state, dt)
        return state

    def _check(self, pre, post, lead: int):
        for name, x, n in (("pre", pre, self.in_features), ("post", post, self.out_features)):
            if not isinstance(x, torch.Tensor) or x.dim() < lead + 1 or math.prod(x.shape[lead:]) != n:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                axes = "[T, batch, ...]" if lead == 2 else "[batch, ...]"
                raise ValueError(f"STDPRule: {name} spikes must be {axes} with {n} neurons per sample, got {got}")
