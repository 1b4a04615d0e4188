"""``Block``: any ``torch.nn.Module`` as a node of a simulation graph, next to spiking populations.

A block wraps the user's module; it never copies it and never keeps hidden per-batch state.
Three modes:

``"analog"``
    The conventional reference in the same graph: real values in, the module's real values out,
    every step (``y[t] = f(x[t])``). Run it for ``T = 1`` for a plain forward pass.
``"hybrid"``
    The module runs every step on the incoming spikes or currents, ``y[t] = f(x[t])``. A module
    without state is applied to the whole run at once, time folded into the batch (one call on
    ``[T * batch, *in_shape]``): the Simulator's layer schedule does that for every stateless
    node. A module *with* state (an LSTM cell, an NTM controller) follows the stateful-module
    protocol below and keeps that state in the block's explicit state, like every other node.
``"rate"`` (``window=W``)
    Input spikes are counted over windows of ``W`` steps; at the end of window ``k`` the module
    runs once on the rates ``x_k = counts_k / W`` (spikes per step) and its output, clipped to
    ``r_k = clamp(f(x_k), 0, 1)`` (spikes per step), is emitted as spikes during window ``k + 1``::

        deterministic ("rate"):  s[kW + W + j] = floor((j + 1) r_k) - floor(j r_k),  j = 0..W-1
        Poisson ("poisson"):     s[kW + W + j] = 1[u_kj < r_k],  u_kj ~ U(0, 1) drawn from a
                                 generator seeded by (seed, k): the same in every schedule

    so a window holds ``floor(W r_k)`` deterministic spikes (``W r_k`` on average for Poisson).
    Nothing is emitted during the first window: the latency is ``W`` steps (``block.latency``).
    The gradient passes straight through the encoding (``ds/dr = 1``) and through the counts.

Stateful-module protocol (hybrid and analog modes): a module with a method
``initial_state(batch_size, device, dtype)`` is stateful; the block then calls
``module(x, state, dt) -> (y, new_state)`` once per step (``dt`` the Simulator's time step in
seconds, for modules with neuron dynamics inside), and its state is the block's state (a tensor,
a tuple or a NamedTuple of tensors, ``[batch, ...]`` each).

Cost: ``count_ops`` reports the module's dense multiply-accumulates, ``macs``, measured once per
input shape with ``torch.utils.flop_counter.FlopCounterMode`` (``macs = flops / 2``: matmuls,
convolutions, attention) on one sample and multiplied by the number of samples the module saw
(in rate mode amortised over the window: ``macs_per_call / W`` per sample and step, exact for runs
that are whole windows). Populations and projections count spikes and synaptic operations, so
``Simulator.run(..., count_ops=True)`` of a mixed graph gives the whole cost.

Checks before any step runs: the module is run once on zeros ``[2, *in_shape]`` (in eval mode,
without gradient, its training flags restored) and must give ``[2, *out_shape]``; an error names
the block's module and both shapes. ``Simulator.run`` refuses a rate block whose window is longer
than the run (``check_run``).

Shapes: ``[batch, *in_shape] -> [batch, *out_shape]`` per step.

Example::

    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(8 * 30 * 30, 10))
    >>> block = Block(cnn, (2, 32, 32), 10, mode="hybrid")
    >>> g = Graph.sequential((2, 32, 32), ("cnn", block), ("out", Population("lif", 10)))
"""
from __future__ import annotations

import contextlib
from typing import Any, NamedTuple, Optional

import torch
from torch import nn

from neurosim.node import Node, as_shape

__all__ = ["Block", "RateBlockState", "module_macs", "MODES", "ENCODINGS"]

MODES = ("analog", "hybrid", "rate")
ENCODINGS = ("rate", "poisson")


class RateBlockState(NamedTuple):
    """State of a rate block. counts: input spikes of the current window ``[batch, *in]``;
    rate: output rate being emitted, ``r`` of the last complete window ``[batch, *out]``;
    step: steps run so far (int64, 0-d)."""

    counts: torch.Tensor
    rate: torch.Tensor
    step: torch.Tensor


def _register_cpu_attention_flops() -> None:
    """torch's FlopCounterMode counts ``scaled_dot_product_attention`` on CUDA but not its CPU
    kernel (``_scaled_dot_product_flash_attention_for_cpu``, 0 flops in torch 2.13): register the
    same formula, ``2 B H L S (E + E_v)`` flops (Q K^T and the product with V)."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or op.default in flop_registry or op in flop_registry:
        return

    @register_flop_formula(op)
    def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        b, h, l, e = query_shape
        s, e_v = key_shape[-2], value_shape[-1]
        return 2 * b * h * l * s * (e + e_v)


def module_macs(module: nn.Module, example: torch.Tensor, state: Any = None, dt: float = 1e-3) -> int:
    """Multiply-accumulates of one call ``module(example)`` (or ``module(example, state, dt)``),
    counted by ``torch.utils.flop_counter.FlopCounterMode`` (``flops / 2``), without gradient."""
    from torch.utils.flop_counter import FlopCounterMode
    _register_cpu_attention_flops()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(example) if state is None else module(example, state, dt)
    return int(counter.get_total_flops()) // 2


@contextlib.contextmanager
def _evaluating(module: nn.Module):
    """Eval mode inside the block (no batch-norm statistics updated), the training flags restored."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _first(value):
    """The first tensor of a state (tensor / tuple / NamedTuple), for its batch size and device."""
    if isinstance(value, torch.Tensor):
        return value
    for item in value:
        found = _first(item)
        if found is not None:
            return found
    return None


class Block(Node):
    """``module`` as a graph node ``in_shape -> out_shape`` in ``mode`` (see the module docstring).

    ``window``: steps per rate window (rate mode only, >= 1); ``encoding``: ``"rate"``
    (deterministic) or ``"poisson"`` (rate mode); ``seed``: of the Poisson draws;
    ``emits_spikes``: whether the output is a spike train (default: True in rate mode, else
    False; set it for a hybrid module that ends in a spike function)."""

    def __init__(self, module: nn.Module, in_shape, out_shape, mode: str = "hybrid", window: Optional[int] = None,
                 encoding: str = "rate", seed: int = 0, emits_spikes: Optional[bool] = None):
        if not isinstance(module, nn.Module):
            raise TypeError(f"Block: module must be a torch.nn.Module, got {type(module).__name__}")
        in_shape, out_shape = as_shape(in_shape), as_shape(out_shape)
        super().__init__({"input": in_shape}, out_shape)
        label = f"Block({type(module).__name__})"
        if mode not in MODES:
            raise ValueError(f"{label}: mode must be one of {list(MODES)}, got {mode!r}")
        if mode == "rate":
            if isinstance(window, bool) or not isinstance(window, int) or window < 1:
                raise ValueError(f"{label}: rate mode needs window=W, an int >= 1 (steps per window), got {window!r}")
            if encoding not in ENCODINGS:
                raise ValueError(f"{label}: encoding must be one of {list(ENCODINGS)}, got {encoding!r}")
        elif window is not None:
            raise ValueError(f"{label}: window applies to mode='rate' only (mode={mode!r})")
        self.module, self.mode, self.window, self.encoding, self.seed = module, mode, window, encoding, int(seed)
        self.label = label
        self.stateful_module = callable(getattr(module, "initial_state", None))
        if mode == "rate" and self.stateful_module:
            raise ValueError(f"{label}: rate mode runs the module once per window on rates; a stateful module "
                             "(one with initial_state) belongs in hybrid or analog mode")
        self.emits_spikes = (mode == "rate") if emits_spikes is None else bool(emits_spikes)
        self.stateless = mode != "rate" and not self.stateful_module
        self.supports_sequence = mode == "rate"
        self._macs: dict = {}
        self._check_shapes()

    # ------------------------------------------------------------------ checks
    @property
    def in_shape(self):
        return self.in_shapes["input"]

    @property
    def latency(self) -> int:
        """Steps from an input to the output it causes: ``W`` in rate mode, 0 otherwise."""
        return self.window if self.mode == "rate" else 0

    def _example(self, batch: int = 2):
        p = next(iter(self.module.parameters()), None)
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
        device = p.device if p is not None else None
        return torch.zeros((batch, *self.in_shape), dtype=dtype, device=device)

    def _check_shapes(self) -> None:
        x = self._example()
        try:
            with torch.no_grad(), _evaluating(self.module):
                if self.stateful_module:
                    y, _ = self.module(x, self.module.initial_state(2, x.device, x.dtype), 1e-3)
                else:
                    y = self.module(x)
        except Exception as error:
            raise ValueError(f"{self.label}: the module fails on an input of shape [batch, *in_shape] = "
                             f"{[2, *self.in_shape]}: {type(error).__name__}: {error}") from None
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != (2, *self.out_shape):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"{self.label}: for an input [batch, *in_shape] = {[2, *self.in_shape]} the module "
                             f"gives {got}, not [batch, *out_shape] = {[2, *self.out_shape]}")

    def check_run(self, steps: int, where: str) -> None:
        if self.mode == "rate" and steps < self.window:
            raise ValueError(f"{where} ({self.label}): a rate window of {self.window} steps is longer than the "
                             f"run ({steps} steps), so the module would never run")

    # ------------------------------------------------------------------ state
    def initial_state(self, batch_size: int, device=None, dtype=None):
        if self.mode != "rate":
            return self.module.initial_state(batch_size, device, dtype) if self.stateful_module else None
        dtype = dtype if dtype is not None and dtype.is_floating_point else torch.get_default_dtype()
        return RateBlockState(torch.zeros((batch_size, *self.in_shape), device=device, dtype=dtype),
                              torch.zeros((batch_size, *self.out_shape), device=device, dtype=dtype),
                              torch.zeros((), dtype=torch.int64, device=device))

    # ------------------------------------------------------------------ hybrid / analog
    def step(self, x, state, dt: float):
        if self.mode == "rate":
            y, state = self.step_sequence(x.unsqueeze(0), state, dt)
            return y[0], state
        if self.stateful_module:
            if state is None:
                state = self.module.initial_state(x.shape[0], x.device, x.dtype)
            return self.module(x, state, dt)
        return self.module(x), state

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Stateless modes: ``[T, batch, *in] -> [T, batch, *out]`` in one call on ``[T * batch, *in]``."""
        t, b = x_seq.shape[:2]
        y = self.module(x_seq.reshape(t * b, *x_seq.shape[2:]))
        return y.reshape(t, b, *self.out_shape)

    # ------------------------------------------------------------------ rate
    def _encode(self, rate: torch.Tensor, window: int, offsets: torch.Tensor) -> torch.Tensor:
        """Spikes ``[len(offsets), batch, *out]`` for output rate ``rate`` at window offsets ``j``."""
        r = rate.clamp(0.0, 1.0).unsqueeze(0)
        shape = (-1,) + (1,) * rate.dim()
        j = offsets.to(rate.dtype).reshape(shape)
        if self.encoding == "rate":
            spikes = torch.floor((j + 1) * r) - torch.floor(j * r)
        else:
            generator = torch.Generator(device=rate.device).manual_seed(self.seed * 1_000_003 + window)
            u = torch.rand((self.window, *rate.shape), generator=generator, device=rate.device, dtype=rate.dtype)
            spikes = (u[offsets] < r).to(rate.dtype)
        return r + (spikes - r).detach()          # straight-through: ds/dr = 1

    def step_sequence(self, x_seq: torch.Tensor, state, dt: float):
        """Rate mode over ``x_seq [T, batch, *in]`` from ``state``; the same spikes as stepping."""
        if state is None:
            state = self.initial_state(x_seq.shape[1], x_seq.device, x_seq.dtype)
        counts, rate, start = state
        w, steps = self.window, x_seq.shape[0]
        t0 = int(start)
        outputs, t = [], t0
        while t < t0 + steps:
            k, j = divmod(t, w)
            end = min((k + 1) * w, t0 + steps)                  # this window's steps inside the sequence
            chunk = x_seq[t - t0:end - t0]
            offsets = torch.arange(j, j + (end - t), device=x_seq.device)
            outputs.append(self._encode(rate, k - 1, offsets) if k > 0 else
                           torch.zeros((end - t, *rate.shape), dtype=rate.dtype, device=rate.device))
            counts = counts + chunk.sum(0).to(counts.dtype)
            if end == (k + 1) * w:                               # the window is complete: run the module
                rate = self.module(counts / w)
                counts = torch.zeros_like(counts)
            t = end
        y = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        return y, RateBlockState(counts, rate, start + steps)

    # ------------------------------------------------------------------ cost
    def _macs_per_sample(self, example_shape) -> int:
        key = tuple(example_shape)
        if key not in self._macs:
            x = self._example(1)
            state = self.module.initial_state(1, x.device, x.dtype) if self.stateful_module else None
            with _evaluating(self.module):
                self._macs[key] = module_macs(self.module, x, state)
        return self._macs[key]

    def count_ops(self, x, output):
        """``macs``: the module's multiply-accumulates for the samples in ``x`` (see the module
        docstring); ``spikes`` too when the block emits spikes."""
        samples = x.numel() // max(1, int(torch.tensor(self.in_shape).prod()))
        per_call = self._macs_per_sample(self.in_shape)
        macs = samples * per_call / self.window if self.mode == "rate" else samples * per_call
        counts = {"macs": torch.tensor(float(macs))}
        if self.emits_spikes:
            counts["spikes"] = output.detach().sum()
        return counts

    def extra_repr(self) -> str:
        extra = f", window={self.window}, encoding={self.encoding!r}" if self.mode == "rate" else ""
        return f"{self.in_shape} -> {self.out_shape}, mode={self.mode!r}{extra}"
