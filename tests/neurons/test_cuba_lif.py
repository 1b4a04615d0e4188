"""CubaLIF: exponential current and the exact (v, i) propagator against closed forms."""
import math

import pytest
import torch

import neurosim as ns
from neurosim.neurons.cuba_lif import exact_current_coefficient

DT = 1e-4


def pulse(amplitude, steps, at=0, n=1):
    x = torch.zeros(steps, 1, n, dtype=torch.float64)
    x[at] = amplitude
    return x


def test_synaptic_current_decays_exponentially(nh):
    p = ns.CubaLIFParams(tau_syn=3e-3, tau_mem=10e-3, w_in=2.0, v_threshold=1e9)
    _, states = nh.simulate("cuba_lif", p, pulse(0.7, 300), DT)
    i = nh.trace(states, "i")[:, 0, 0]
    k = torch.arange(300, dtype=torch.float64)
    assert torch.allclose(i, 2.0 * 0.7 * torch.exp(-k * DT / 3e-3), rtol=1e-12, atol=0)


@pytest.mark.parametrize("tau_syn, tau_mem", [(3e-3, 10e-3), (10e-3, 4e-3), (5e-3, 5e-3)])
def test_membrane_response_to_one_pulse_is_the_double_exponential(nh, tau_syn, tau_mem):
    """A current i0 starting at t = 0 gives
    v(t) = r i0 tau_s / (tau_s - tau_m) (exp(-t/tau_s) - exp(-t/tau_m)), or r i0 (t/tau) exp(-t/tau)
    when tau_s = tau_m; with ``input_same_step`` the pulse of step 0 starts at the beginning of
    step 0, so step k ends at t = (k + 1) dt."""
    r, i0 = 3.0, 0.5
    p = ns.CubaLIFParams(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_threshold=1e9)
    _, states = nh.simulate("cuba_lif", p, pulse(i0, 600), DT)
    t = torch.arange(1, 601, dtype=torch.float64) * DT
    if tau_syn == tau_mem:
        expected = r * i0 * (t / tau_mem) * torch.exp(-t / tau_mem)
    else:
        expected = r * i0 * tau_syn / (tau_syn - tau_mem) * (torch.exp(-t / tau_syn) - torch.exp(-t / tau_mem))
    v = nh.trace(states, "v")[:, 0, 0]
    assert (v - expected).abs().max() < 1e-12


def test_coefficient_is_continuous_across_equal_time_constants():
    tau = 5e-3
    at = exact_current_coefficient(tau, tau, DT)
    assert at == pytest.approx(DT / tau * math.exp(-DT / tau), rel=1e-14)
    for eps in (1e-12, 1e-9, 1e-6):
        near = exact_current_coefficient(tau, tau * (1 + eps), DT)
        assert near == pytest.approx(at, rel=10 * eps + 1e-14)
    taus = torch.tensor([tau, tau * (1 + 1e-9), 2 * tau], dtype=torch.float64, requires_grad=True)
    c = exact_current_coefficient(taus, tau, DT)
    floats = [exact_current_coefficient(x, tau, DT) for x in taus.detach().tolist()]
    assert torch.allclose(c, torch.tensor(floats, dtype=torch.float64), rtol=1e-12)
    c.sum().backward()
    assert torch.isfinite(taus.grad).all()


def test_euler_converges_to_exact(nh):
    errors = []
    for dt in (1e-4, 5e-5):
        steps = round(30e-3 / dt)
        x = pulse(1.0, steps)
        runs = [nh.simulate("cuba_lif", ns.CubaLIFParams(v_threshold=1e9, integration=m), x, dt)[1]
                for m in ("exact", "euler")]
        errors.append((nh.trace(runs[0], "v") - nh.trace(runs[1], "v")).abs().max().item())
    peak = 1.0 * 5e-3 / (5e-3 - 10e-3) * (0.25 - 0.5)   # the peak is 0.25 for tau_s = tau_m / 2
    assert errors[0] < 0.02 * peak
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1)


def test_input_same_step_false_is_the_same_run_one_step_later(nh):
    x = (torch.rand(300, 2, 4, generator=torch.Generator().manual_seed(3)) < 0.2).double() * 1.5
    p = ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="zero")
    same, s1 = nh.simulate("cuba_lif", p, x, DT)
    late, s2 = nh.simulate("cuba_lif", ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="zero",
                                                         input_same_step=False), x, DT)
    assert same.sum() > 5
    assert late[0].sum() == 0 and nh.trace(s2, "v")[0].abs().max() == 0
    assert torch.equal(late[1:], same[:-1])
    assert torch.allclose(nh.trace(s2, "v")[1:], nh.trace(s1, "v")[:-1], atol=1e-12)
    # the synaptic current itself is the same: only the membrane sees it a step later
    assert torch.allclose(nh.trace(s2, "i"), nh.trace(s1, "i"))


def test_refractory_holds_v_while_the_current_keeps_decaying(nh):
    p = ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="value", v_reset=0.0, refractory_steps=5)
    out, states = nh.simulate("cuba_lif", p, pulse(1e4, 20), DT)
    steps = nh.spike_steps(out[:, 0, 0])
    assert steps[0] == 0 and steps[1] == 6
    v, i = nh.trace(states, "v")[:, 0, 0], nh.trace(states, "i")[:, 0, 0]
    assert torch.all(v[1:6] == 0.0)
    assert torch.allclose(i[1:6] / i[0:5], torch.full((5,), math.exp(-DT / 5e-3), dtype=torch.float64))


def test_gradients_reach_input_and_both_time_constants():
    pop = ns.Population("cuba_lif", 3, ns.CubaLIFParams(tau_syn=4e-3, tau_mem=8e-3),
                        trainable=("tau_syn", "tau_mem", "w_in"))
    x = torch.full((40, 2, 3), 0.6, requires_grad=True)
    state, total = pop.initial_state(2), 0.0
    for t in range(40):
        s, state = pop.step(x[t], state, 1e-3)
        total = total + s.sum() + 0.1 * state.v.sum()
    assert total > 0
    total.backward()
    assert x.grad.abs().sum() > 0
    for name in ("tau_syn", "tau_mem", "w_in"):
        grad = getattr(pop, name).grad
        assert grad is not None and torch.isfinite(grad) and grad.abs() > 0, name
