"""IF (no leak, NIR dv/dt = r I): integration, analytic spike times, resets, refractoriness."""
import math

import pytest
import torch

import neurosim as ns

DT = 1e-3


def test_membrane_is_the_running_integral_of_the_input(nh):
    x = torch.rand(100, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = ns.IFParams(r=50.0, v_threshold=1e9)
    out, states = nh.simulate("if", p, x, DT)
    assert out.sum() == 0
    assert torch.allclose(nh.trace(states, "v"), torch.cumsum(x, 0) * DT * 50.0, atol=1e-12)


@pytest.mark.parametrize("current, r", [(0.37, 100.0), (1.3, 20.0), (0.0537, 1e3)])
def test_spike_times_under_constant_input_are_analytic(nh, current, r):
    """v(t) = r I t crosses v_th at t* = v_th / (r I); step k ends at (k + 1) dt, so the first spike
    is at step floor(t*/dt); with a subtract reset the count over T steps is floor(T dt r I / v_th)."""
    p = ns.IFParams(r=r, v_threshold=1.0, reset="subtract")
    steps = 2000
    out, _ = nh.simulate("if", p, torch.full((steps, 1, 1), current, dtype=torch.float64), DT)
    t_star = 1.0 / (r * current)
    assert not float(t_star / DT).is_integer()
    spikes = nh.spike_steps(out[:, 0, 0])
    assert spikes[0] == math.floor(t_star / DT)
    assert len(spikes) == math.floor(steps * DT * r * current / 1.0)


def test_zero_and_value_resets_discard_the_overshoot(nh):
    """With v += 0.3 per step and v_th = 1: subtract keeps 0.2 after the 4th step, zero restarts
    from 0 (a spike every 4 steps), value restarts from v_reset = 0.5 (a spike every 2 steps)."""
    x = torch.full((41, 1, 1), 0.3, dtype=torch.float64)
    zero, _ = nh.simulate("if", ns.IFParams(r=1 / DT, reset="zero"), x, DT)
    value, _ = nh.simulate("if", ns.IFParams(r=1 / DT, reset="value", v_reset=0.5), x, DT)
    subtract, _ = nh.simulate("if", ns.IFParams(r=1 / DT, reset="subtract"), x, DT)
    assert nh.spike_steps(zero[:, 0, 0]) == list(range(3, 41, 4))
    assert nh.spike_steps(value[:, 0, 0])[:3] == [3, 5, 7]
    assert subtract.sum() == math.floor(41 * 0.3)      # 12.3 thresholds' worth of input


def test_refractory_steps_are_silent_and_hold_v(nh):
    p = ns.IFParams(r=1 / DT, reset="zero", refractory_steps=4)
    out, states = nh.simulate("if", p, torch.full((30, 1, 1), 2.0, dtype=torch.float64), DT)
    spikes = nh.spike_steps(out[:, 0, 0])
    assert spikes == list(range(0, 30, 5))
    assert torch.all(nh.trace(states, "v")[1:5] == 0)


def test_input_same_step_false_delays_by_one_step(nh):
    x = torch.rand(100, 1, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    same, _ = nh.simulate("if", ns.IFParams(r=1 / DT), x, DT)
    late, _ = nh.simulate("if", ns.IFParams(r=1 / DT, input_same_step=False), x, DT)
    assert same.sum() > 10
    assert late[0].sum() == 0 and torch.equal(late[1:], same[:-1])


def test_gradients_reach_input_and_trainable_threshold():
    pop = ns.Population("if", 3, ns.IFParams(r=200.0), trainable=("v_threshold", "r"))
    x = torch.full((30, 2, 3), 0.4, requires_grad=True)
    state, total = pop.initial_state(2), 0.0
    for t in range(30):
        s, state = pop.step(x[t], state, DT)
        total = total + s.sum()
    assert total > 0
    total.backward()
    assert x.grad.abs().sum() > 0
    assert pop.v_threshold.grad.abs() > 0 and pop.r.grad.abs() > 0
