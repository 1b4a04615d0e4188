"""Helpers shared by the neuron-model tests: run a model step by step and keep every state."""
from types import SimpleNamespace

import pytest
import torch

import neurosim as ns


def simulate(model, params, x, dt, state=None, direct=False, **pop_kwargs):
    """Step ``Population(model, shape, params)`` over ``x`` ([T, batch, *shape], or a tuple of
    such tensors for multi-port models). Returns (outputs [T, ...], list of states after each step).

    The population is converted to the dtype of ``x`` (``.to``), so its tensor parameters take that
    dtype. ``direct=True`` calls the registered model's pure step function instead, with ``params``
    exactly as given (no Population, no conversion)."""
    xs = x if isinstance(x, tuple) else (x,)
    steps, batch, *shape = xs[0].shape
    if direct:
        m = ns.get_neuron_model(model)
        step = lambda xt, st: m.step(xt, st, params, dt)  # noqa: E731
        if state is None:
            state = m.initial_state(params, tuple(shape), batch, xs[0].device, xs[0].dtype)
    else:
        pop = ns.Population(model, tuple(shape), params, **pop_kwargs).to(xs[0].dtype)
        step = lambda xt, st: pop.step(xt, st, dt)  # noqa: E731
        if state is None:
            state = pop.initial_state(batch, dtype=xs[0].dtype)
    outs, states = [], []
    for t in range(steps):
        xt = tuple(p[t] for p in xs) if isinstance(x, tuple) else x[t]
        y, state = step(xt, state)
        outs.append(y)
        states.append(state)
    return torch.stack(outs), states


def trace(states, field):
    """The ``[T, ...]`` trace of one state field."""
    return torch.stack([getattr(s, field) for s in states])


def spike_steps(spikes_1d):
    """Indices of the steps with a spike in a 1-d spike train."""
    return torch.nonzero(spikes_1d > 0).flatten().tolist()


@pytest.fixture
def nh():
    """Neuron-test helpers: ``nh.simulate``, ``nh.trace``, ``nh.spike_steps``."""
    return SimpleNamespace(simulate=simulate, trace=trace, spike_steps=spike_steps)
