"""Integrator (NIR I): v[t] = dt r sum_{k <= t} I[k], no leak, no threshold."""
import pytest
import torch

import neurosim as ns


def test_output_is_the_exact_running_sum(nh):
    """Integer inputs, dt and r powers of two: every partial sum is exact, so equality is exact."""
    dt, r = 2.0 ** -10, torch.tensor([4.0, 8.0, 0.5], dtype=torch.float64)
    x = torch.randint(-5, 6, (200, 2, 3), generator=torch.Generator().manual_seed(0)).double()
    out, states = nh.simulate("integrator", ns.IntegratorParams(r=r), x, dt)
    assert torch.equal(out, dt * r * torch.cumsum(x, dim=0))
    assert torch.equal(out, nh.trace(states, "v"))


def test_input_same_step_false_is_one_step_later(nh):
    x = torch.randn(40, 1, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    same, _ = nh.simulate("integrator", ns.IntegratorParams(r=10.0), x, 1e-3)
    late, _ = nh.simulate("integrator", ns.IntegratorParams(r=10.0, input_same_step=False), x, 1e-3)
    assert torch.all(late[0] == 0) and torch.equal(late[1:], same[:-1])


def test_same_membrane_as_if_without_threshold(nh):
    x = torch.rand(60, 2, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out, _ = nh.simulate("integrator", ns.IntegratorParams(r=300.0), x, 1e-3)
    _, if_states = nh.simulate("if", ns.IFParams(r=300.0, v_threshold=1e30, reset="zero"), x, 1e-3)
    assert torch.equal(out, nh.trace(if_states, "v"))


def test_non_spiking_and_differentiable():
    assert ns.Integrator.spiking is False
    pop = ns.Population("integrator", 2, ns.IntegratorParams(r=2.0), trainable=("r",))
    assert pop.emits_spikes is False
    x = torch.ones(5, 1, 2, requires_grad=True)
    state, total = pop.initial_state(1), 0.0
    for t in range(5):
        v, state = pop.step(x[t], state, 0.1)
        total = total + v.sum()
    total.backward()
    # d total / d x[t] = dt r (T - t); d total / d r = dt sum_t (T - t) x = 0.1 * 15 per neuron
    assert torch.allclose(x.grad[:, 0, 0], 0.2 * torch.tensor([5.0, 4, 3, 2, 1]))
    assert torch.allclose(pop.r.grad, torch.tensor(2 * 1.5))
    with pytest.raises(TypeError):
        ns.Population("integrator", 2, ns.LIParams())
