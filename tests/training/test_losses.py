"""Losses and firing-rate regularisers: values against hand computations, gradients, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from neurosim.surrogate import spike
from neurosim.training import (first_spike_cross_entropy, first_spike_times, firing_rates, membrane_cross_entropy,
                               one_hot_counts, population_rate_penalties, rate_l2_penalty,
                               rate_upper_bound_penalty, spike_count_cross_entropy, spike_count_mse,
                               spike_counts, spike_l1_penalty, classification_accuracy)


def _spikes(t=6, b=3, c=4, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, c, generator=g) < p).float()


def test_spike_count_cross_entropy_matches_manual():
    s, y = _spikes(), torch.tensor([0, 3, 1])
    counts = s.sum(0)
    assert torch.equal(spike_counts(s), counts)
    expected = -(torch.log_softmax(0.5 * counts, 1)[torch.arange(3), y]).mean()
    assert torch.allclose(spike_count_cross_entropy(s, y, scale=0.5), expected)
    per_sample = spike_count_cross_entropy(s, y, scale=0.5, reduction="none")
    assert per_sample.shape == (3,)
    probs = F.one_hot(y, 4).float()
    assert torch.allclose(spike_count_cross_entropy(s, probs, scale=0.5), expected)


def test_membrane_cross_entropy_modes():
    v = torch.randn(7, 2, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([2, 0])
    for mode, logits in (("max", v.max(0).values), ("mean", v.mean(0)), ("last", v[-1])):
        assert torch.allclose(membrane_cross_entropy(v, y, mode=mode), F.cross_entropy(logits, y)), mode
    with pytest.raises(ValueError, match="mode"):
        membrane_cross_entropy(v, y, mode="median")


def test_cross_entropy_gradient_reaches_the_membrane_through_spikes():
    v = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(2), requires_grad=True)
    loss = spike_count_cross_entropy(spike(v, "fast_sigmoid"), torch.tensor([1, 2]))
    (g,) = torch.autograd.grad(loss, v)
    assert g.abs().sum() > 0


def test_spike_count_mse_counts_and_rates():
    s = _spikes(t=10, b=2, c=3)
    target = one_hot_counts(torch.tensor([1, 0]), 3, on=4.0, off=1.0)
    assert target.tolist() == [[1.0, 4.0, 1.0], [4.0, 1.0, 1.0]]
    assert torch.allclose(spike_count_mse(s, target), ((s.sum(0) - target) ** 2).mean())
    hz = target * 20.0
    rates = s.sum(0) / (10 * 1e-3)
    assert torch.allclose(spike_count_mse(s, hz, dt=1e-3), ((rates - hz) ** 2).mean())
    assert spike_count_mse(s, target, reduction="none").shape == (2, 3)
    with pytest.raises(ValueError, match="does not broadcast"):
        spike_count_mse(s, torch.zeros(5, 3))


def test_first_spike_times_exact_forward():
    s = torch.zeros(5, 2, 3)
    s[2, 0, 0] = 1
    s[4, 0, 0] = 1                     # a later spike does not matter
    s[0, 0, 1] = 1
    s[3, 1, 2] = 1                     # neuron (1, 0), (1, 1), (0, 2) never fire -> T
    assert first_spike_times(s).tolist() == [[2.0, 0.0, 5.0], [5.0, 5.0, 3.0]]
    assert torch.allclose(first_spike_times(s, dt=1e-3), first_spike_times(s) * 1e-3)


def test_first_spike_times_gradient_is_k_minus_next_spike():
    # s has its first spike at 3, the next one at 6, T = 8: d t_first / d s[k] = k - 3 for k < 3,
    # k - 6 at k = 3 (removing the spike moves the first spike to 6), 0 after the first spike.
    s = torch.zeros(8, 1, 1)
    s[3] = 1
    s[6] = 1
    s.requires_grad_(True)
    (g,) = torch.autograd.grad(first_spike_times(s).sum(), s)
    assert g.flatten().tolist() == [-3.0, -2.0, -1.0, -3.0, 0.0, 0.0, 0.0, 0.0]


def test_first_spike_cross_entropy_prefers_early_target():
    s = torch.zeros(6, 2, 2)
    s[1, 0, 0] = 1; s[4, 0, 1] = 1     # sample 0: neuron 0 first
    s[4, 1, 0] = 1; s[1, 1, 1] = 1     # sample 1: neuron 1 first
    y = torch.tensor([0, 1])
    good = first_spike_cross_entropy(s, y, tau=1.0)
    bad = first_spike_cross_entropy(s, 1 - y, tau=1.0)
    assert good < bad
    assert math.isclose(float(good), math.log(1 + math.exp(-3)), rel_tol=1e-6)
    assert classification_accuracy(-first_spike_times(s), y) == 1.0


def test_first_spike_loss_trains_spike_earlier():
    v = torch.full((10, 1, 2), -0.05, requires_grad=True)
    with torch.no_grad():
        v[6, 0, 0] = 0.5                 # target neuron fires at 6
        v[2, 0, 1] = 0.5                 # the other at 2
    loss = first_spike_cross_entropy(spike(v, "fast_sigmoid"), torch.tensor([0]))
    (g,) = torch.autograd.grad(loss, v)
    # gradient descent raises the target neuron's membrane before its first spike ...
    assert (g[:6, 0, 0] < 0).all()
    # ... and lowers the competitor's up to and including its first spike
    assert (g[:3, 0, 1] > 0).all()


def test_class_target_checks():
    s = _spikes()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        spike_count_cross_entropy(s, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"shape \[B\]"):
        spike_count_cross_entropy(s, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="3 dimensions"):
        spike_count_cross_entropy(s[0], torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="scale"):
        spike_count_cross_entropy(s, torch.tensor([0, 1, 2]), scale=0)
    with pytest.raises(TypeError, match="floating-point"):
        spike_counts(s.long())
    with pytest.raises(ValueError, match="reduction"):
        membrane_cross_entropy(s, torch.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="tau"):
        first_spike_cross_entropy(s, torch.tensor([0, 1, 2]), tau=-1.0)


# ---------------------------------------------------------------------------- regularisers
def test_firing_rates_and_l2_penalty():
    s = torch.zeros(10, 2, 2)
    s[:, :, 0] = 1                        # neuron 0 fires every step: 1000 Hz at dt = 1 ms
    s[::2, 0, 1] = 1                      # neuron 1: 500 Hz in sample 0, silent in sample 1
    rates = firing_rates(s, 1e-3)
    assert torch.allclose(rates, torch.tensor([[1000.0, 500.0], [1000.0, 0.0]]))
    # per neuron: batch means 1000 and 250
    assert torch.allclose(rate_l2_penalty(s, 1e-3, 250.0), torch.tensor((750.0 ** 2 + 0.0) / 2))
    # population: mean 625
    assert torch.allclose(rate_l2_penalty(s, 1e-3, 250.0, per="population"), torch.tensor(375.0 ** 2))
    with pytest.raises(ValueError, match="per"):
        rate_l2_penalty(s, 1e-3, 10.0, per="layer")
    with pytest.raises(ValueError, match="dt"):
        firing_rates(s, 0.0)


def test_upper_bound_penalty_is_one_sided():
    s = torch.zeros(10, 2, 2)
    s[:5] = 1                                               # 500 Hz everywhere
    assert rate_upper_bound_penalty(s, 1e-3, 600.0) == 0
    assert torch.allclose(rate_upper_bound_penalty(s, 1e-3, 400.0), torch.tensor(100.0 ** 2))
    v = torch.full((10, 2, 2), -1.0, requires_grad=True)
    (g,) = torch.autograd.grad(rate_upper_bound_penalty(spike(v), 1e-3, 100.0), v)
    assert torch.count_nonzero(g) == 0                      # silent, below the bound: no gradient


def test_l1_penalty_and_population_sum():
    s = _spikes(t=8, b=4, c=5)
    assert torch.allclose(spike_l1_penalty(s), s.sum() / 4)
    assert torch.allclose(spike_l1_penalty(s, per_neuron=True), s.sum() / 4 / 5)
    total = population_rate_penalties({"a": s, "b": s[:, :, :2]}, 1e-3, {"a": 10.0, "b": 20.0})
    assert torch.allclose(total, rate_l2_penalty(s, 1e-3, 10.0) + rate_l2_penalty(s[:, :, :2], 1e-3, 20.0))
    with pytest.raises(ValueError, match=r"no target rate for \['b'\]"):
        population_rate_penalties({"a": s, "b": s}, 1e-3, {"a": 10.0})
