"""LIF dynamics against closed-form solutions; resets, refractoriness, latency, gradients."""
import math

import pytest
import torch

import neurosim as ns

DT = 1e-4


def const(value, steps, n=1, batch=1):
    return torch.full((steps, batch, n), float(value), dtype=torch.float64)


def test_subthreshold_response_matches_the_closed_form(nh):
    """Exact integration: v(t) = v_leak + r I (1 - exp(-t/tau)), step k ends at t = (k + 1) dt."""
    tau, r, current, v_leak = 20e-3, 2.0, 0.3, -0.1
    p = ns.LIFParams(tau_mem=tau, r=r, v_leak=v_leak, v_threshold=10.0)
    out, states = nh.simulate("lif", p, const(current, 500), DT)
    t = torch.arange(1, 501, dtype=torch.float64) * DT
    expected = v_leak + r * current * (1 - torch.exp(-t / tau))
    assert out.sum() == 0
    assert (nh.trace(states, "v")[:, 0, 0] - expected).abs().max() < 1e-12


def test_euler_converges_to_exact_at_first_order(nh):
    p_exact = ns.LIFParams(tau_mem=10e-3, v_threshold=10.0)
    p_euler = ns.LIFParams(tau_mem=10e-3, v_threshold=10.0, integration="euler")
    errors = []
    for dt in (1e-4, 5e-5):
        steps = round(20e-3 / dt)
        _, se = nh.simulate("lif", p_euler, const(1.0, steps), dt)
        _, sx = nh.simulate("lif", p_exact, const(1.0, steps), dt)
        errors.append((nh.trace(se, "v") - nh.trace(sx, "v")).abs().max().item())
    assert errors[0] < 5e-3                      # small at dt = tau / 100
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)   # halves with dt


@pytest.mark.parametrize("current, tau", [(1.3, 10e-3), (2.0, 7e-3), (5.0, 20e-3)])
def test_first_spike_and_period_match_the_analytic_crossing_time(nh, current, tau):
    """Zero reset, v_leak = 0: crossing at t* = -tau ln(1 - v_th / (r I)); the spike is reported in
    the first step whose end passes t*, i.e. step floor(t*/dt); then the train is periodic with
    ceil(t*/dt) steps."""
    p = ns.LIFParams(tau_mem=tau, v_threshold=1.0, reset="zero")
    out, _ = nh.simulate("lif", p, const(current, 3000), DT)
    t_star = -tau * math.log(1 - 1.0 / current)
    assert not float(t_star / DT).is_integer()
    steps = nh.spike_steps(out[:, 0, 0])
    assert steps[0] == math.floor(t_star / DT)
    period = math.ceil(t_star / DT)
    assert all(b - a == period for a, b in zip(steps, steps[1:]))
    assert len(steps) == 3000 // period


def test_value_reset_shortens_later_intervals_as_predicted(nh):
    """After a reset to v_reset the next crossing takes tau ln((rI - v_reset) / (rI - v_th))."""
    tau, current, v_reset = 10e-3, 1.5, 0.4
    p = ns.LIFParams(tau_mem=tau, v_threshold=1.0, v_reset=v_reset, reset="value")
    out, _ = nh.simulate("lif", p, const(current, 2000), DT)
    steps = nh.spike_steps(out[:, 0, 0])
    t_isi = tau * math.log((current - v_reset) / (current - 1.0))
    assert all(b - a == math.ceil(t_isi / DT) for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("reset", ["zero", "subtract", "value"])
def test_reset_modes_after_one_spiking_step(nh, reset):
    tau, v0, current, v_reset = 10e-3, 0.95, 40.0, -0.25
    a = math.exp(-DT / tau)
    v_pre = v0 * a + (1 - a) * current          # v_leak = 0, r = 1
    assert v_pre > 1.0
    p = ns.LIFParams(tau_mem=tau, v_threshold=1.0, v_reset=v_reset, reset=reset)
    state = ns.LIFState(v=torch.full((1, 1), v0, dtype=torch.float64),
                        i=torch.zeros(1, 1, dtype=torch.float64), refractory=torch.zeros(1, 1, dtype=torch.float64))
    out, states = nh.simulate("lif", p, const(current, 1), DT, state=state)
    expected = {"zero": 0.0, "value": v_reset, "subtract": v_pre - (1.0 - v_reset)}[reset]
    assert out.item() == 1.0
    assert states[0].v.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_refractory_period_is_exactly_n_silent_steps(nh, n):
    """A drive that crosses threshold in one step: spike, n silent steps with v held at the reset
    value, spike again."""
    p = ns.LIFParams(tau_mem=10e-3, v_threshold=1.0, reset="value", v_reset=0.0, refractory_steps=n)
    out, states = nh.simulate("lif", p, const(500.0, 40), DT)
    steps = nh.spike_steps(out[:, 0, 0])
    assert steps[0] == 0
    assert all(b - a == n + 1 for a, b in zip(steps, steps[1:]))
    v = nh.trace(states, "v")[:, 0, 0]
    for k in range(1, n + 1):
        assert v[k].item() == 0.0, "v is held during the refractory period"


def test_input_same_step_false_adds_one_step_of_latency(nh):
    x = (torch.rand(200, 3, 5, generator=torch.Generator().manual_seed(0)) * 3.0).double()
    same, s1 = nh.simulate("lif", ns.LIFParams(tau_mem=5e-3), x, DT)
    late, s2 = nh.simulate("lif", ns.LIFParams(tau_mem=5e-3, input_same_step=False), x, DT)
    assert same.sum() > 10
    assert late[0].sum() == 0
    assert torch.equal(late[1:], same[:-1])
    assert torch.equal(nh.trace(s2, "v")[1:], nh.trace(s1, "v")[:-1])     # the same operations, shifted


def test_gradients_reach_input_and_trainable_tau():
    pop = ns.Population("lif", 4, ns.LIFParams(tau_mem=10e-3), trainable=("tau_mem",))
    x = torch.full((30, 2, 4), 1.5, requires_grad=True)
    state = pop.initial_state(2)
    total = 0.0
    for t in range(30):
        s, state = pop.step(x[t], state, 1e-3)
        total = total + s.sum()
    assert total > 0
    total.backward()
    assert x.grad.abs().sum() > 0
    assert pop.tau_mem.grad is not None and pop.tau_mem.grad.abs() > 0


def test_subtract_delayed_reset_follows_its_equation():
    """v[t] = a v[t-1] + (1 - a) r I[t] - H(v[t-1] - thr) (thr - v_reset), no reset in the spike's step."""
    p = ns.LIFParams(tau_mem=10e-3, v_threshold=1.0, v_reset=0.25, reset="subtract_delayed", integration="euler")
    dt, a = 1e-3, 1.0 - 1e-3 / 10e-3
    x = torch.tensor([[30.0], [0.0], [0.0], [0.0], [0.0]], dtype=torch.float64)
    state = ns.lif_initial_state(p, (1,), 1, dtype=torch.float64)
    v_prev, spikes = 0.0, []
    for t in range(x.shape[0]):
        s, state = ns.lif_step(x[t:t + 1, 0].view(1, 1), state, p, dt)
        want = a * v_prev + (1 - a) * float(x[t, 0]) - (0.75 if v_prev > 1.0 else 0.0)
        assert float(state.v) == pytest.approx(want, rel=1e-12)
        assert float(s) == float(want > 1.0)
        v_prev, spikes = want, spikes + [float(s)]
    assert spikes == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_subtract_delayed_reset_matches_snntorch_leaky_spike_for_spike():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    beta, thr = 0.9, 1.0
    leaky = snn.Leaky(beta=beta, threshold=thr)           # defaults: subtract, reset_delay=True
    current = torch.rand(100, 4, 20) * 0.5
    mem, expected = torch.zeros(4, 20), []
    with torch.no_grad():
        for t in range(100):
            spk, mem = leaky(current[t], mem)
            expected.append(spk)
    expected = torch.stack(expected)
    dt = 1e-4
    tau = dt / (1 - beta)
    pop = ns.Population("lif", 20, ns.LIFParams(tau_mem=tau, r=tau / dt, v_threshold=thr, integration="euler",
                                                reset="subtract_delayed"))
    got = ns.Simulator(ns.Graph.sequential(20, ("lif", pop)), dt=dt).run(current).output
    assert int(expected.sum()) > 50
    assert torch.equal(got, expected)
    zero_reset = ns.Population("lif", 20, ns.LIFParams(tau_mem=tau, r=tau / dt, integration="euler", reset="subtract"))
    other = ns.Simulator(ns.Graph.sequential(20, ("lif", zero_reset)), dt=dt).run(current).output
    assert not torch.equal(other, expected)          # the plain subtract reset is another neuron


def test_the_fused_kernel_has_the_stepped_second_derivative():
    """MAML's second order differentiates the backward again: inside higher_order_gradients() the
    fused LIF kernel gives the same gradient and second derivative as the stepped lif_step, with
    and without a trainable tau_mem (both run fused now); outside, such a backward raises instead
    of dropping terms."""
    torch.manual_seed(0)
    x = torch.rand(20, 2, 4, dtype=torch.float64)
    first = {}
    for trainable in ((), ("tau_mem",)):
        results = []
        for fused in (True, False):
            w = torch.ones(4, dtype=torch.float64, requires_grad=True)
            pop = ns.Population("lif", 4, ns.LIFParams(v_threshold=0.3), surrogate="arctan",
                                trainable=trainable).double()
            with ns.higher_order_gradients():
                state = pop.initial_state(2, dtype=torch.float64)
                if fused:
                    out = pop.step_sequence(x * w, state, 1e-3)
                    assert out is not NotImplemented                 # really the fused kernel
                    spikes = out[0]
                else:                                                # stepped: the reference
                    steps = []
                    for t in range(20):
                        s, state = pop.step(x[t] * w, state, 1e-3)
                        steps.append(s)
                    spikes = torch.stack(steps)
            loss = (spikes.sum(0) * w).sum()     # dL/ds depends on w, as a MAML loss through a readout
            (g,) = torch.autograd.grad(loss, w, create_graph=True)
            (h,) = torch.autograd.grad((g ** 2).sum(), w)
            results.append((g.detach(), h))
        (g_fused, h_fused), (g_ref, h_ref) = results
        torch.testing.assert_close(g_fused, g_ref, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(h_fused, h_ref, rtol=1e-6, atol=1e-9)
        assert float(h_ref.abs().sum()) > 0
        first[trainable] = g_fused
    # with and without create_graph the fused kernel's first derivative is the same
    w = torch.ones(4, dtype=torch.float64, requires_grad=True)
    pop = ns.Population("lif", 4, ns.LIFParams(v_threshold=0.3), surrogate="arctan").double()
    spikes, _ = pop.step_sequence(x * w, pop.initial_state(2, dtype=torch.float64), 1e-3)
    (fast,) = torch.autograd.grad((spikes.sum(0) * w).sum(), w, retain_graph=True)
    torch.testing.assert_close(fast, first[()], rtol=1e-13, atol=1e-13)
    with pytest.raises(RuntimeError, match=r"inside neurosim.higher_order_gradients\(\)"):
        torch.autograd.grad((spikes.sum(0) * w).sum(), w, create_graph=True)
