"""Shared fixtures for the training tests: a tiny Dense -> LIF -> Dense -> LI classifier and a
seeded two-class Poisson spike dataset."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from neurosim import Dense, Graph, LIFParams, Population, Simulator


def build_classifier(n_in=12, n_hidden=16, n_out=2, seed=0, gain=10.0, trainable=(), tau_mem=5e-3,
                     dt=1e-3, readout="li", surrogate="fast_sigmoid"):
    """Dense -> LIF -> Dense -> LI (or -> LIF with readout="lif") with seeded weights."""
    torch.manual_seed(seed)
    fc1, fc2 = Dense(n_in, n_hidden), Dense(n_hidden, n_out)
    with torch.no_grad():
        fc1.weight.mul_(gain)
        fc2.weight.mul_(gain)
    hidden = Population("lif", n_hidden, LIFParams(tau_mem=tau_mem), trainable=trainable, surrogate=surrogate)
    if readout == "li":
        out = Population("li", n_out)
    else:
        out = Population("lif", n_out, LIFParams(tau_mem=tau_mem), surrogate=surrogate)
    graph = Graph.sequential(n_in, ("fc1", fc1), ("hidden", hidden), ("fc2", fc2), ("out", out))
    return Simulator(graph, dt=dt)


def poisson_two_class(n=128, steps=20, n_in=12, seed=0, p_hi=0.4, p_lo=0.05):
    """Inputs [n, steps, n_in] (sample-major): class c drives input half c at p_hi per step."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    half = n_in // 2
    rates = torch.full((n, n_in), p_lo)
    rates[y == 0, :half] = p_hi
    rates[y == 1, half:] = p_hi
    x = (torch.rand(n, steps, n_in, generator=g) < rates[:, None, :]).float()
    return TensorDataset(x, y)


@pytest.fixture
def classifier():
    return build_classifier


@pytest.fixture
def two_class_data():
    return poisson_two_class
