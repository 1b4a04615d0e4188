"""Integer synaptic delays: a shift buffer of future contributions shared by the projections.

Semantics (``d`` a whole number of time steps, ``d >= 0``): a presynaptic value ``x[t]`` sent
through a synapse of delay ``d`` arrives as the projection's output at step ``t + d``::

    y[t] = sum_g  z_g[t - d_g]          z_g[t] = W_g x[t]    (z_g[t] = 0 for t < 0)

where the synapses are split into groups ``g`` of equal delay ``d_g`` (``W_g`` holds the weights
of group ``g`` and zeros elsewhere). Delay 0 is no delay: the output of step ``t`` already holds
``x[t]``. A projection fed through a graph back-edge sees ``x[t - 1]`` at step ``t``, so its
spikes arrive ``d + 1`` steps after they were emitted.

The state is explicit: :class:`DelayState` holds ``buffer[k]`` = the summed contributions that
arrive ``k + 1`` steps after the last completed step (``k = 0 .. max_delay - 1``). A step
builds ``work = [buffer; 0]`` (``work[k]`` arrives ``k`` steps from now), adds each group into
``work[d_g]``, outputs ``work[0]`` and keeps ``work[1:]``. The old state is never modified in
place, so a state can be reused (run twice from the same state, or backpropagated through).
:func:`delay_sequence` computes ``T`` steps without a time loop: one shifted add per group.

Shapes: group contributions ``z`` are ``[batch, G, *out]`` per step, ``[T, batch, G, *out]`` for
a sequence; the buffer is ``[max_delay, batch, *out]``.

Example::

    >>> fc = Dense(100, 50, delay=3)                        # every synapse 3 steps
    >>> fc = Dense(100, 50, delay=torch.randint(0, 5, (50, 100)))   # one delay per synapse
    >>> line = Delay(50, 2)                                  # y[t] = x[t - 2]
"""
from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

import torch
from torch import nn

from ..node import Node, as_shape, state_device_dtype
from .event_cost import event_active_limit, event_cost_for

__all__ = ["DelayState", "SynapticDelay", "Delay", "delay_initial_state", "delay_step",
           "delay_sequence", "check_delay"]


class DelayState(NamedTuple):
    """buffer: ``[max_delay, batch, *out]`` contributions arriving 1 .. max_delay steps after the
    last completed step (same units as the projection's output). The batch is axis 1
    (``batch_axis``)."""

    buffer: torch.Tensor
    batch_axis = 1


def check_delay(delay, shape: Tuple[int, ...], where: str):
    """Validate ``delay`` (an int >= 0, or an integer tensor of ``shape``) and group it.

    Returns ``(values, group)``: ``values`` the sorted distinct delays (a tuple of ints) and
    ``group`` a long tensor of ``shape`` giving each element's index into ``values`` (``None``
    when every element has the same delay)."""
    if isinstance(delay, bool):
        raise TypeError(f"{where}: delay must be an int number of steps or an integer tensor, got a bool")
    if isinstance(delay, torch.Tensor) and delay.dim() == 0:
        delay = delay.item()
    if isinstance(delay, float) and delay.is_integer():
        delay = int(delay)
    if isinstance(delay, int):
        if delay < 0:
            raise ValueError(f"{where}: delay must be >= 0 steps, got {delay}")
        return (delay,), None
    if not isinstance(delay, torch.Tensor):
        try:
            delay = torch.as_tensor(delay)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{where}: delay must be an int number of steps or an integer tensor, "
                            f"got {type(delay).__name__}") from None
    if tuple(delay.shape) != tuple(shape):
        raise ValueError(f"{where}: a per-synapse delay tensor must have shape {tuple(shape)}, "
                         f"got {tuple(delay.shape)}")
    if delay.is_floating_point():
        if not bool(torch.isfinite(delay).all()) or not bool((delay == delay.round()).all()):
            raise ValueError(f"{where}: delays are whole numbers of time steps; got non-integer values")
    elif delay.dtype == torch.bool or delay.is_complex():
        raise TypeError(f"{where}: delay tensor must hold integers, got dtype {delay.dtype}")
    delay = delay.detach().to(torch.long).cpu()
    if delay.numel() and int(delay.min()) < 0:
        raise ValueError(f"{where}: delays must be >= 0 steps, got a minimum of {int(delay.min())}")
    values, group = torch.unique(delay, sorted=True, return_inverse=True)
    values = tuple(int(v) for v in values) or (0,)
    if len(values) == 1:
        return values, None
    return values, group.reshape(shape)


def delay_initial_state(max_delay: int, batch_size: int, out_shape, device=None,
                        dtype=torch.float32) -> DelayState:
    """Empty buffer ``[max_delay, batch, *out_shape]`` (nothing in flight)."""
    return DelayState(torch.zeros((max_delay, batch_size, *as_shape(out_shape)), device=device, dtype=dtype))


def _contiguous(values: Sequence[int]) -> bool:
    return values[-1] - values[0] == len(values) - 1


def delay_step(z: torch.Tensor, state: DelayState, values: Sequence[int]):
    """One step: ``y = buffer[0] + sum_{g: d_g = 0} z[:, g]``; groups with ``d_g > 0`` are queued.

    z: ``[batch, G, *out]`` (group ``g`` has delay ``values[g]``). Returns ``(y [batch, *out],
    new_state)``; ``state`` is not modified."""
    buf = state.buffer
    work = torch.cat([buf, buf.new_zeros((1, *buf.shape[1:]))], 0)   # work[k]: arrives k steps from now
    if _contiguous(values):
        work[values[0]:values[-1] + 1] += z.transpose(0, 1)
    else:
        for g, d in enumerate(values):
            work[d] += z[:, g]
    return work[0], DelayState(work[1:])


def delay_sequence(z_seq: torch.Tensor, state: DelayState, values: Sequence[int]):
    """``T`` steps at once: ``y[t] = buffer[t] + sum_g z[t - d_g, :, g]`` (no time loop).

    z_seq: ``[T, batch, G, *out]``. Returns ``(y [T, batch, *out], new_state)`` with the
    contributions still in flight after step ``T - 1`` in the new buffer; equal bit for bit to
    ``T`` calls of :func:`delay_step` given the same ``z`` (each arrival slot adds its
    contributions in the same order: the state's buffer, then the groups by decreasing delay)."""
    buf = state.buffer
    steps = z_seq.shape[0]
    full = torch.cat([buf, buf.new_zeros((steps, *buf.shape[1:]))], 0)   # full[t]: arrives at step t
    # largest delay first: each arrival slot sums its contributions in the order delay_step
    # adds them (earliest emission first), so step and sequence agree bit for bit
    for g in reversed(range(len(values))):
        d = values[g]
        full[d:d + steps] += z_seq[:, :, g]
    return full[:steps], DelayState(full[steps:])


class SynapticDelay(nn.Module):
    """The delays of one projection: one value for all synapses, or one per synapse.

    ``delay``: int steps >= 0, or an integer tensor of ``synapse_shape`` (``[out, in]`` for
    Dense, ``[nnz]`` for Sparse). ``values`` are the distinct delays, ``group`` (a buffer, only
    when delays differ) maps each synapse to its index in ``values``; ``max_delay`` sizes the
    buffer. The owner computes the per-group contributions ``z`` and calls :meth:`step` /
    :meth:`sequence` (see the module docstring for the exact timing): ``y[t] = sum_g z_g[t - d_g]``.

    Shapes: ``z [batch, G, *out]`` per step, ``[T, batch, G, *out]`` per sequence."""

    def __init__(self, delay, synapse_shape: Tuple[int, ...], where: str = "delay"):
        super().__init__()
        self.values, group = check_delay(delay, tuple(synapse_shape), where)
        self.max_delay = max(self.values)
        if group is None:
            self.group = None
        else:
            self.register_buffer("group", group)

    @property
    def groups(self) -> int:
        """Number of distinct delay values G."""
        return len(self.values)

    @property
    def uniform(self) -> bool:
        return self.group is None

    def steps(self, synapse_shape: Tuple[int, ...]) -> torch.Tensor:
        """Every synapse's delay in steps, a long tensor of ``synapse_shape`` (for exporters)."""
        if self.group is None:
            return torch.full(tuple(synapse_shape), self.values[0], dtype=torch.long)
        return torch.tensor(self.values, dtype=torch.long, device=self.group.device)[self.group]

    def initial_state(self, batch_size: int, out_shape, device=None, dtype=torch.float32) -> DelayState:
        return delay_initial_state(self.max_delay, batch_size, out_shape, device, dtype)

    def step(self, z: torch.Tensor, state: DelayState):
        return delay_step(z, state, self.values)

    def sequence(self, z_seq: torch.Tensor, state: DelayState):
        return delay_sequence(z_seq, state, self.values)

    def extra_repr(self) -> str:
        if self.uniform:
            return f"delay={self.values[0]}"
        return f"per-synapse, values={list(self.values)}"


class Delay(Node):
    """A delay line (NIR ``Delay`` in whole steps): ``y[t] = x[t - d]``, zero before ``d`` steps.

    ``delay``: int steps >= 0 for every element, or an integer tensor of ``shape`` (one delay
    per element). Stateful (the values in flight, a :class:`DelayState`); ``step_sequence``
    computes a whole sequence as shifts.

    Shapes: ``[batch, *shape] -> [batch, *shape]``."""

    supports_sequence = True

    def __init__(self, shape, delay):
        shape = as_shape(shape)
        super().__init__({"input": shape}, shape)
        self.delays = SynapticDelay(delay, shape, "Delay")
        self.stateless = self.delays.max_delay == 0
        if self.delays.group is not None:
            onehot = self.delays.group.unsqueeze(0) == torch.arange(self.delays.groups).view(-1, *[1] * len(shape))
            self.register_buffer("_onehot", onehot)   # [G, *shape]

    def _groups(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.out_shape)
        if self.delays.group is None:
            return x.unsqueeze(-n - 1)
        return x.unsqueeze(-n - 1) * self._onehot.to(x.dtype)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        if self.stateless:
            return None
        device, dtype = state_device_dtype(self, device, dtype)
        return self.delays.initial_state(batch_size, self.out_shape, device, dtype)

    def step(self, x, state, dt: float):
        if self.stateless:
            return x, state
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        return self.delays.step(self._groups(x), state)

    def forward_sequence(self, x_seq):
        if not self.stateless:
            raise RuntimeError("Delay with a delay > 0 is stateful; use step_sequence(x_seq, state, dt)")
        return x_seq

    def step_sequence(self, x_seq, state, dt: float):
        if self.stateless:
            return x_seq, state
        if state is None:
            state = self.initial_state(x_seq.shape[1], x_seq.device, x_seq.dtype)
        return self.delays.sequence(self._groups(x_seq), state)

    def extra_repr(self) -> str:
        return f"shape={self.out_shape}, {self.delays.extra_repr()}"


class DelayedProjection:
    """Mixin giving a projection optional delays and the choice of the event-driven path
    (used by ``Dense`` and ``Sparse``).

    The projection provides ``propagate(x2d) -> [N, out]`` (undelayed, with bias),
    ``_grouped(x2d) -> [N, G, out]`` (per delay group, without bias) and ``bias``; it calls
    ``_setup_delays`` and ``_set_event_options`` in ``__init__``, and for the event-path choice
    ``_event_kind`` (``"dense"``/``"sparse"``), ``_event_fan_out()`` and ``_dense_synapses()``
    (see :mod:`neurosim.projections.event_cost`). Without a delay > 0 it stays stateless; otherwise its
    state is a :class:`DelayState` and ``step_sequence`` runs T steps without a time loop
    (one propagation for all T, then one shift per delay group):
    ``y[t] = sum_g W_g x[t - d_g] (+ bias)``.

    Shapes: ``[batch, in] -> [batch, out]`` per step, ``[T, batch, in] -> [T, batch, out]``."""

    def _set_event_options(self, event_driven, event_threshold, where: str) -> None:
        """Validate and keep ``event_driven`` (``"auto"``, True, False) and ``event_threshold``
        (None: the cost model of :mod:`neurosim.projections.event_cost`; else a density in [0, 1])."""
        if event_driven not in ("auto", True, False):
            raise ValueError(f"{where}.event_driven must be 'auto', True or False, got {event_driven!r}")
        if event_threshold is not None:
            if isinstance(event_threshold, bool) or not isinstance(event_threshold, (int, float)) \
                    or not 0.0 <= float(event_threshold) <= 1.0:
                raise ValueError(f"{where}.event_threshold must be None or a density in [0, 1], "
                                 f"got {event_threshold!r}")
            event_threshold = float(event_threshold)
        self.event_driven, self.event_threshold = event_driven, event_threshold
        self._event_limits = {}

    def use_event_path(self, x: torch.Tensor) -> bool:
        """Event-driven propagation only without autograd. In ``"auto"`` mode: when the cost
        model says it pays (:func:`~neurosim.projections.event_cost.event_path_pays` with this
        projection's ``_event_kind``, ``_event_fan_out()`` and ``_dense_synapses()``), or, when
        the user set ``event_threshold``, when the fraction of non-zero inputs is below it.
        x: ``[rows, in]``."""
        if self.event_driven is False or (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)):
            return False
        if self.event_driven is True:
            return True
        active = int(torch.count_nonzero(x))           # one host sync on GPU, as before
        return active < self._event_limit(x)

    def _event_limit(self, x: torch.Tensor) -> float:
        """Active inputs below which this call of shape ``x`` takes the event path: the user's
        ``event_threshold x x.numel()``, or :func:`~neurosim.projections.event_cost.event_active_limit`.
        Cached per (size, device, weight dtype, threshold): it depends on the structure only,
        never on weight values."""
        key = (x.numel(), x.device.type, self.weight.dtype, self.event_threshold)
        limit = self._event_limits.get(key)
        if limit is None:
            if self.event_threshold is not None:
                limit = self.event_threshold * x.numel()
            else:
                table_bytes = self.weight.numel() * self.weight.element_size()
                limit = event_active_limit(x.numel() // self.in_features, self._event_fan_out(),
                                           self._dense_synapses(), event_cost_for(self._event_kind, x.device.type),
                                           table_bytes)
            self._event_limits[key] = limit
        return limit

    def _setup_delays(self, delay, synapse_shape, where: str) -> None:
        delays = SynapticDelay(delay, synapse_shape, where)
        self.delays = delays if delays.max_delay > 0 else None
        self.stateless = self.delays is None
        self.supports_sequence = not self.stateless

    @property
    def max_delay(self) -> int:
        """Largest synaptic delay in steps (0 without delays)."""
        return 0 if self.delays is None else self.delays.max_delay

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """None without delays, else an empty :class:`DelayState` ``[max_delay, batch, out]``."""
        if self.delays is None:
            return None
        device, dtype = state_device_dtype(self, device, dtype)
        return self.delays.initial_state(batch_size, self.out_shape, device, dtype)

    def _delayed(self, z, state, sequence: bool):
        if state is None:
            state = self.initial_state(z.shape[1] if sequence else z.shape[0], z.device, z.dtype)
        y, state = self.delays.sequence(z, state) if sequence else self.delays.step(z, state)
        return (y if self.bias is None else y + self.bias), state

    def step(self, x, state, dt: float):
        """``(y [batch, out], state)``: this step's arrivals (see the delay module docstring)."""
        if self.delays is None:
            return self.propagate(x), state
        return self._delayed(self._grouped(x), state, False)

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, batch, in] -> [T, batch, out]`` in one propagation (undelayed projections only)."""
        if self.delays is not None:
            raise RuntimeError(f"{type(self).__name__} with delays is stateful; "
                               "use step_sequence(x_seq, state, dt)")
        t, b = x_seq.shape[:2]
        return self.propagate(x_seq.reshape(t * b, -1)).reshape(t, b, -1)

    def step_sequence(self, x_seq, state, dt: float):
        """``T`` steps at once: ``(y [T, batch, out], new state)``, equal to T calls of ``step``."""
        if self.delays is None:
            return self.forward_sequence(x_seq), state
        t, b = x_seq.shape[:2]
        z = self._grouped(x_seq.reshape(t * b, -1))
        return self._delayed(z.reshape(t, b, *z.shape[1:]), state, True)
