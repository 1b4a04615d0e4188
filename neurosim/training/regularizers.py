"""Firing-rate regularisers: keep spiking activity near a target, below a bound, or sparse.

All take a spike train ``s`` shaped ``[T, B, ...]`` (time first, as the simulator returns it)
and the time step ``dt`` in seconds where a rate is involved. The firing rate of neuron ``i`` in
sample ``b`` is ``r[b, i] = (1 / (T dt)) sum_t s[t, b, i]`` in Hz. Penalties on rates are in Hz^2,
so their weight in the total loss is typically small (e.g. 1e-4 for rates of tens of Hz).

``per`` chooses the level a rate constraint applies to:

* ``"neuron"``: each neuron's rate, averaged over the batch: ``r_i = mean_b r[b, i]``; the
  penalty is the mean over neurons.
* ``"population"``: the population's mean rate ``r = mean_{b, i} r[b, i]`` (one number).

Note for data-parallel training: these are means over the (local) batch; the population-level
penalties are not linear in the samples, so their DDP gradient is not exactly the single-process
one (the per-neuron and L1 penalties are, when every rank has the same local batch size).

Example::

    >>> res = sim.run(x)                                   # graph outputs include "hidden"
    >>> reg = rate_l2_penalty(res.outputs["hidden"], dt=1e-3, target_hz=10.0)
    >>> loss = task_loss + 1e-4 * reg
"""
from __future__ import annotations

from typing import Mapping, Union

import torch

from ..validation import check_choice, check_number, check_sequence

__all__ = ["firing_rates", "rate_l2_penalty", "rate_upper_bound_penalty", "spike_l1_penalty",
           "population_rate_penalties"]

PER = ("neuron", "population")


def firing_rates(spikes: torch.Tensor, dt: float) -> torch.Tensor:
    """Firing rate of each neuron in each sample: ``r[b, ...] = sum_t s[t, b, ...] / (T dt)``.

    Units: Hz (``dt`` in seconds). Shapes: ``[T, B, ...]`` -> ``[B, ...]``.

    Example::

        >>> firing_rates(torch.ones(10, 1, 1), dt=1e-3)   # a spike every step at 1 ms
        tensor([[1000.]])
    """
    check_sequence(spikes, "firing_rates: spikes")
    dt = check_number(dt, "firing_rates: dt", positive=True)
    return spikes.sum(0) / (spikes.shape[0] * dt)


def _level_rates(spikes, dt, per, where):
    check_choice(per, PER, f"{where}: per")
    check_sequence(spikes, f"{where}: spikes")
    rates = firing_rates(spikes, dt)
    return rates.mean(0) if per == "neuron" else rates.mean()


def rate_l2_penalty(spikes: torch.Tensor, dt: float, target_hz: float, per: str = "neuron") -> torch.Tensor:
    """Squared distance of the firing rates from a target: ``mean_i (r_i - r_target)^2``.

    ``r_i`` is the batch-averaged rate of neuron i (``per="neuron"``) or the population mean
    rate (``per="population"``, a single term). Units: Hz^2.

    Shapes: spikes ``[T, B, ...]``; result a scalar.

    Example::

        >>> rate_l2_penalty(hidden_spikes, dt=1e-3, target_hz=20.0, per="population")
    """
    target = check_number(target_hz, "rate_l2_penalty: target_hz", nonnegative=True)
    return ((_level_rates(spikes, dt, per, "rate_l2_penalty") - target) ** 2).mean()


def rate_upper_bound_penalty(spikes: torch.Tensor, dt: float, max_hz: float,
                             per: str = "population") -> torch.Tensor:
    """One-sided penalty on rates above a bound: ``mean_i relu(r_i - r_max)^2``.

    Zero (and zero gradient) while the rate is at or below ``max_hz``. ``per`` as in
    :func:`rate_l2_penalty`. Units: Hz^2.

    Shapes: spikes ``[T, B, ...]``; result a scalar.

    Example::

        >>> rate_upper_bound_penalty(hidden_spikes, dt=1e-3, max_hz=50.0)
    """
    bound = check_number(max_hz, "rate_upper_bound_penalty: max_hz", nonnegative=True)
    excess = torch.relu(_level_rates(spikes, dt, per, "rate_upper_bound_penalty") - bound)
    return (excess ** 2).mean()


def spike_l1_penalty(spikes: torch.Tensor, per_neuron: bool = False) -> torch.Tensor:
    """L1 sparsity on activity: the total number of spikes per sample, ``(1/B) sum_{t,b,i} |s[t,b,i]|``.

    With ``per_neuron=True`` it is divided by the number of neurons (spikes per neuron per
    sample). Spikes are non-negative, so |s| = s. Units: spikes.

    Shapes: spikes ``[T, B, ...]``; result a scalar.

    Example::

        >>> loss = task_loss + 1e-3 * spike_l1_penalty(hidden_spikes)
    """
    check_sequence(spikes, "spike_l1_penalty: spikes")
    total = spikes.abs().sum() / spikes.shape[1]
    if per_neuron:
        total = total / (spikes[0, 0].numel())
    return total


def population_rate_penalties(spikes: Mapping[str, torch.Tensor], dt: float,
                              target_hz: Union[float, Mapping[str, float]], per: str = "neuron") -> torch.Tensor:
    """Sum of :func:`rate_l2_penalty` over several populations, each with its own target rate.

    ``R = sum_p mean_i (r_{p,i} - r_target,p)^2``. ``target_hz`` is one rate for all or a dict
    population name -> Hz covering every population in ``spikes``.

    Shapes: each ``spikes[p]`` ``[T, B, ...]``; result a scalar.

    Example::

        >>> population_rate_penalties({"h1": s1, "h2": s2}, 1e-3, {"h1": 10.0, "h2": 5.0})
    """
    if not isinstance(spikes, Mapping) or not spikes:
        raise ValueError("population_rate_penalties: spikes must be a non-empty dict name -> [T, B, ...] tensor")
    if isinstance(target_hz, Mapping):
        missing = sorted(set(spikes) - set(target_hz))
        if missing:
            raise ValueError(f"population_rate_penalties: no target rate for {missing} "
                             f"(targets given for {sorted(target_hz)})")
        targets = {name: target_hz[name] for name in spikes}
    else:
        targets = {name: target_hz for name in spikes}
    terms = [rate_l2_penalty(s, dt, targets[name], per) for name, s in spikes.items()]
    return torch.stack(terms).sum()
