"""Input encoders (values -> spike trains) and output decoders (spike trains -> values).

Every function is pure; random encoders take an optional ``torch.Generator`` for reproducibility.
Time is the first axis of every sequence: ``[T, batch, ...]`` as :meth:`Simulator.run` expects.

Encoders
    :func:`poisson_encode`  rate coding, P(spike in a step) = rate * dt
    :func:`latency_encode`  time-to-first-spike, one spike per input, stronger = earlier
    :func:`delta_encode`    send-on-delta (ON/OFF threshold crossings, like a DVS pixel)
    :func:`direct_encode`   the analogue value repeated as a constant input current

Decoders
    :func:`spike_count`, :func:`mean_membrane`, :func:`max_membrane`, :func:`first_spike_time`

Example::

    >>> x = torch.rand(8, 784)                                    # intensities in [0, 1]
    >>> spikes = poisson_encode(x, steps=100, dt=1e-3, max_rate=200.0)   # [100, 8, 784]
    >>> logits = spike_count(sim.run(spikes).output)              # [8, 10]
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch

from .validation import as_float_tensor, check_choice, check_finite, check_int, check_number, check_sequence

__all__ = ["poisson_encode", "latency_encode", "delta_encode", "direct_encode",
           "spike_count", "mean_membrane", "max_membrane", "first_spike_time"]


def _check_unit(x: torch.Tensor, where: str) -> None:
    check_finite(x, f"{where}: x")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"{where}: intensities must lie in [0, 1], got values in "
                         f"[{float(x.min()):g}, {float(x.max()):g}]")


def _check_steps(steps, where: str) -> int:
    return check_int(steps, f"{where}: steps", minimum=1)


def _check_dt(dt, where: str) -> float:
    return check_number(dt, f"{where}: dt", positive=True, what="time step", unit="s")


# ---------------------------------------------------------------------- encoders
def poisson_encode(x, steps: int, dt: float, max_rate: Optional[float] = None,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Rate coding: independent Bernoulli spikes with probability ``p = rate * dt`` per step.

    ``rate = x`` [Hz] when ``max_rate`` is None, else ``rate = x * max_rate`` with ``x`` an
    intensity in [0, 1]. Over ``T`` steps the count is Binomial(T, p): mean ``T p``, variance
    ``T p (1 - p)``. When ``rate * dt > 1`` the probability is clipped to 1 (one spike every
    step) with a ``RuntimeWarning``: a step cannot hold more than one spike. ``generator`` must
    live on ``x``'s device.

    Shapes: ``x`` ``[B, ...]`` -> spikes ``[steps, B, ...]`` (0/1, dtype of ``x``).

    Example::

        >>> g = torch.Generator().manual_seed(0)
        >>> s = poisson_encode(torch.full((2, 10), 50.0), steps=1000, dt=1e-3, generator=g)
        >>> s.mean()          # ~ 50 Hz * 1 ms = 0.05
    """
    where = "poisson_encode"
    x = as_float_tensor(x, where)
    steps, dt = _check_steps(steps, where), _check_dt(dt, where)
    check_finite(x, f"{where}: x")
    if max_rate is None:
        if x.numel() and float(x.min()) < 0:
            raise ValueError(f"{where}: rates must be >= 0 Hz, got a minimum of {float(x.min()):g}")
        rate = x
    else:
        max_rate = check_number(max_rate, f"{where}: max_rate", nonnegative=True, what="rate", unit="Hz")
        _check_unit(x, where)
        rate = x * max_rate
    p = rate * dt
    if p.numel() and float(p.max()) > 1.0:
        warnings.warn(f"{where}: rate * dt reaches {float(p.max()):g} > 1; clipped to one spike per step "
                      f"(rates above 1/dt = {1 / dt:g} Hz cannot be represented)", RuntimeWarning, stacklevel=2)
        p = p.clamp(max=1.0)
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"{where}: the generator is on {generator.device} but x is on {x.device}; "
                         "create the generator on x's device")
    u = torch.rand((steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def latency_encode(x, steps: int, method: str = "linear", threshold: float = 0.0,
                   tau: Optional[float] = None, dt: Optional[float] = None) -> torch.Tensor:
    """Time-to-first-spike coding: each input spikes once, larger intensity = earlier.

    Intensities ``x`` in [0, 1]; inputs with ``x <= threshold`` never spike. The spike step is

    * ``"linear"``: ``k = round((1 - x) (steps - 1))``, so x = 1 spikes at step 0 and x -> 0 at
      the last step;
    * ``"log"`` (RC charging): an RC circuit driven by ``x`` charges as ``v(t) = x (1 - e^{-t/tau})``
      and spikes when ``v`` reaches ``threshold``: ``t = tau ln(x / (x - threshold))`` seconds,
      ``k = round(t / dt)``; needs ``tau``, ``dt`` and ``0 < threshold < 1``. Spikes that would
      fall at ``k >= steps`` are dropped (no spike in the window).

    ``round`` is to the nearest step, ties to even (``torch.round``).

    Shapes: ``x`` ``[B, ...]`` -> spikes ``[steps, B, ...]`` with at most one 1 along time.

    Example::

        >>> latency_encode(torch.tensor([[1.0, 0.5, 0.0]]), steps=11)[:, 0].nonzero().tolist()
        [[0, 0], [5, 1]]            # (step, input): x = 0 never spikes
    """
    where = "latency_encode"
    x = as_float_tensor(x, where)
    steps = _check_steps(steps, where)
    check_choice(method, ("linear", "log"), f"{where}: method")
    threshold = check_number(threshold, f"{where}: threshold", nonnegative=True, below=1.0)
    _check_unit(x, where)
    fires = x > threshold
    if method == "linear":
        k = torch.round((1.0 - x) * (steps - 1))
    else:
        if tau is None or dt is None:
            raise ValueError(f"{where}: method='log' needs tau and dt (seconds)")
        tau = check_number(tau, f"{where}: tau", positive=True, what="time constant", unit="s")
        dt = _check_dt(dt, where)
        if threshold <= 0:
            raise ValueError(f"{where}: method='log' needs 0 < threshold < 1 (the RC firing level), got {threshold!r}")
        safe = torch.where(fires, x, torch.ones_like(x))
        k = torch.round(tau / dt * torch.log(safe / (safe - threshold)))
        fires = fires & (k < steps)
    k = torch.where(fires, k, torch.full_like(k, -1.0)).long()
    t = torch.arange(steps, device=x.device).view(steps, *([1] * x.dim()))
    return (t == k.unsqueeze(0)).to(x.dtype)


def delta_encode(signal, threshold: float, off_spikes: bool = True, signed: bool = False,
                 reference=None) -> torch.Tensor:
    """Send-on-delta coding (a DVS pixel): an event each time the signal moves ``threshold``
    away from a reference, which then moves by ``threshold`` towards the signal.

    With reference ``r`` (default: the first sample ``signal[0]``) and ``d = signal[t] - r``::

        n_on[t]  = floor( d / threshold)  if d > 0 else 0;       r += n_on[t]  * threshold
        n_off[t] = floor(-d / threshold)  if d < 0 else 0;       r -= n_off[t] * threshold

    so after every step ``|signal[t] - r[t]| < threshold`` and the signal is reconstructed by
    ``r[0] + threshold * cumsum(n_on - n_off)``. A jump of several thresholds in one step gives
    a count > 1 in that step. The events are not differentiable (no gradient reaches ``signal``).

    Output format:

    * ``off_spikes=True, signed=False`` (default): ``[T, B, ..., 2]``, channel 0 = ON counts,
      channel 1 = OFF counts (both >= 0);
    * ``off_spikes=True, signed=True``: ``[T, B, ...]`` holding ``n_on - n_off``;
    * ``off_spikes=False``: ``[T, B, ...]`` ON counts only (the reference still follows the
      signal down, silently).

    Shapes: ``signal`` ``[T, B, ...]``; ``reference`` ``[B, ...]`` or a scalar.

    Example::

        >>> s = torch.tensor([0.0, 0.25, 0.5, 0.1]).view(4, 1, 1)
        >>> delta_encode(s, 0.2)[:, 0, 0].tolist()    # r: 0 -> 0.2 -> 0.4 -> 0.2
        [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    """
    where = "delta_encode"
    s = check_sequence(as_float_tensor(signal, where), f"{where}: signal")
    threshold = check_number(threshold, f"{where}: threshold", positive=True)
    check_finite(s, f"{where}: signal")
    if reference is None:
        ref = s[0].detach().clone()
    else:
        ref = as_float_tensor(reference, where).to(device=s.device, dtype=s.dtype)
        try:
            ref = torch.broadcast_to(ref, s.shape[1:]).clone()
        except RuntimeError:
            raise ValueError(f"{where}: reference of shape {tuple(ref.shape)} does not broadcast to "
                             f"the per-step shape {tuple(s.shape[1:])}") from None
        check_finite(ref, f"{where}: reference")
    base, level = ref, torch.zeros_like(ref)      # r = base + level * threshold (no drift)
    on, off = torch.empty_like(s), torch.empty_like(s)
    with torch.no_grad():
        for t in range(s.shape[0]):
            d = (s[t] - (base + level * threshold)) / threshold
            n_on = torch.floor(d).clamp(min=0) + 0.0        # + 0.0 turns -0.0 into 0.0
            n_off = torch.floor(-d).clamp(min=0) + 0.0
            level = level + n_on - n_off
            on[t], off[t] = n_on, n_off
    if not off_spikes:
        return on
    if signed:
        return on - off
    return torch.stack([on, off], dim=-1)


def direct_encode(x, steps: int) -> torch.Tensor:
    """Direct (analogue) coding: the input value as a constant current at every step.

        I[t] = x     for t = 0 .. steps - 1

    Returns an expanded view (no copy; differentiable in ``x``): do not write into it in place.

    Shapes: ``x`` ``[B, ...]`` -> ``[steps, B, ...]``.

    Example::

        >>> direct_encode(torch.rand(8, 784), steps=25).shape      # [25, 8, 784]
    """
    where = "direct_encode"
    x = as_float_tensor(x, where)
    steps = _check_steps(steps, where)
    if x.dim() < 1:
        raise ValueError(f"{where}: x must be [B, ...], got a scalar")
    return x.unsqueeze(0).expand(steps, *x.shape)


# ---------------------------------------------------------------------- decoders
def _check_seq(x, where: str, name: str) -> torch.Tensor:
    return check_sequence(as_float_tensor(x, where), f"{where}: {name}")


def spike_count(spikes) -> torch.Tensor:
    """Spike count over time, ``n[b, c] = sum_t s[t, b, c]`` (differentiable through surrogates).

    Shapes: ``[T, B, ...]`` -> ``[B, ...]``.

    Example::

        >>> logits = spike_count(result.output)       # rate-coded classification
    """
    return _check_seq(spikes, "spike_count", "spikes").sum(0)


def mean_membrane(v) -> torch.Tensor:
    """Time-averaged membrane of a readout (e.g. LI) layer, ``m[b, c] = (1/T) sum_t v[t, b, c]`` [V].

    Shapes: ``[T, B, ...]`` -> ``[B, ...]``.

    Example::

        >>> logits = mean_membrane(result.output)      # LI readout
    """
    return _check_seq(v, "mean_membrane", "v").mean(0)


def max_membrane(v) -> torch.Tensor:
    """Peak membrane over time, ``m[b, c] = max_t v[t, b, c]`` [V] (gradient flows to the argmax step).

    Shapes: ``[T, B, ...]`` -> ``[B, ...]``.

    Example::

        >>> logits = max_membrane(result.output)
    """
    return _check_seq(v, "max_membrane", "v").max(0).values


def first_spike_time(spikes, dt: float, no_spike: float = math.inf) -> torch.Tensor:
    """Time of each neuron's first spike in seconds: ``t_first = dt * min{t : s[t] != 0}``;
    ``no_spike`` (default ``inf``; e.g. ``T * dt`` for a finite loss) where there is none.

    When ``spikes`` requires grad and ``no_spike`` is finite, the same value is computed
    differentiably from the first-spike indicator ``f[t] = s[t] prod_{u<t} (1 - s[u])``::

        t_first = sum_t f[t] t dt + (1 - sum_t f[t]) no_spike

    (exact for 0/1 spikes), so surrogate gradients reach earlier layers.

    Shapes: ``[T, B, ...]`` -> ``[B, ...]`` (seconds).

    Example::

        >>> first_spike_time(result.output, dt=1e-3, no_spike=result.output.shape[0] * 1e-3)
    """
    where = "first_spike_time"
    s = _check_seq(spikes, where, "spikes")
    dt = _check_dt(dt, where)
    no_spike = check_number(no_spike, f"{where}: no_spike", finite=False, what="time (or inf)", unit="s")
    steps = s.shape[0]
    t = torch.arange(steps, device=s.device, dtype=s.dtype).view(steps, *([1] * (s.dim() - 1))) * dt
    if s.requires_grad and math.isfinite(no_spike):
        survive = torch.cumprod(1.0 - s, dim=0)
        before = torch.cat([torch.ones_like(survive[:1]), survive[:-1]], dim=0)
        first = s * before
        return (first * t).sum(0) + (1.0 - first.sum(0)) * no_spike
    active = s.detach() != 0
    any_spike = active.any(0)
    index = active.to(torch.uint8).argmax(0)          # first maximum = first spike
    out = index.to(s.dtype) * dt
    return torch.where(any_spike, out, torch.full_like(out, float(no_spike)))
