"""LI: the non-spiking leaky integrator readout."""
import torch

import neurosim as ns

DT = 1e-4


def test_output_is_the_membrane_and_matches_the_closed_form(nh):
    tau, r, current, v_leak = 15e-3, 4.0, 0.8, 0.2
    out, states = nh.simulate("li", ns.LIParams(tau_mem=tau, r=r, v_leak=v_leak),
                              torch.full((800, 1, 2), current, dtype=torch.float64), DT)
    t = torch.arange(1, 801, dtype=torch.float64) * DT
    expected = v_leak + r * current * (1 - torch.exp(-t / tau))
    assert torch.equal(out, nh.trace(states, "v"))
    assert (out[:, 0, 0] - expected).abs().max() < 1e-12


def test_li_never_spikes_and_is_marked_non_spiking(nh):
    assert ns.LI.spiking is False
    pop = ns.Population("li", 3, ns.LIParams())
    assert pop.emits_spikes is False
    out, _ = nh.simulate("li", ns.LIParams(tau_mem=1e-3), torch.full((50, 1, 3), 100.0, dtype=torch.float64), DT)
    # graded values far above any threshold, never reset
    assert out.max() > 10.0 and torch.all(out[1:] >= out[:-1])
    assert pop.count_ops(None, out) == {}


def test_euler_option_and_decay_without_input(nh):
    x = torch.zeros(100, 1, 1, dtype=torch.float64)
    state = ns.LIState(v=torch.ones(1, 1, dtype=torch.float64), i=torch.zeros(1, 1, dtype=torch.float64))
    out_exact, _ = nh.simulate("li", ns.LIParams(tau_mem=10e-3), x, DT, state=state)
    out_euler, _ = nh.simulate("li", ns.LIParams(tau_mem=10e-3, integration="euler"), x, DT, state=state)
    k = torch.arange(1, 101, dtype=torch.float64)
    assert torch.allclose(out_exact[:, 0, 0], torch.exp(-k * DT / 10e-3), rtol=1e-12)
    assert torch.allclose(out_euler[:, 0, 0], (1 - DT / 10e-3) ** k, rtol=1e-12)


def test_input_same_step_false_delays_the_readout(nh):
    x = torch.randn(60, 2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    same, _ = nh.simulate("li", ns.LIParams(), x, DT)
    late, _ = nh.simulate("li", ns.LIParams(input_same_step=False), x, DT)
    assert torch.all(late[0] == 0) and torch.equal(late[1:], same[:-1])    # the same operations, shifted


def test_gradients_reach_input_and_trainable_tau():
    pop = ns.Population("li", 2, ns.LIParams(tau_mem=5e-3), trainable=("tau_mem",))
    x = torch.ones(20, 1, 2, requires_grad=True)
    state, total = pop.initial_state(1), 0.0
    for t in range(20):
        v, state = pop.step(x[t], state, 1e-3)
        total = total + v.sum()
    total.backward()
    assert x.grad.abs().min() > 0 and pop.tau_mem.grad.abs() > 0
