"""ALIF: spike-triggered threshold adaptation (Bellec et al. 2018)."""
import math

import pytest
import torch

import neurosim as ns

DT = 1e-3


def drive(steps=400, n=5, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.8 + 1.5 * torch.rand(steps, batch, n, generator=g)).double()


def test_without_adaptation_it_is_lif(nh):
    x = drive()
    lif_out, lif_states = nh.simulate("lif", ns.LIFParams(tau_mem=20e-3), x, DT)
    alif_out, alif_states = nh.simulate("alif", ns.ALIFParams(tau_mem=20e-3, beta=0.0), x, DT)
    assert lif_out.sum() > 20
    assert torch.equal(lif_out, alif_out)
    assert torch.equal(nh.trace(lif_states, "v"), nh.trace(alif_states, "v"))   # theta = v_th + 0 b exactly


def test_adaptation_decays_exponentially_after_one_spike(nh):
    x = torch.zeros(300, 1, 1, dtype=torch.float64)
    x[0] = 1e3                                              # one spike at step 0, then silence
    p = ns.ALIFParams(tau_mem=20e-3, tau_adapt=150e-3, beta=0.5, reset="zero")
    out, states = nh.simulate("alif", p, x, DT)
    assert nh.spike_steps(out[:, 0, 0]) == [0]
    k = torch.arange(300, dtype=torch.float64)
    assert torch.allclose(nh.trace(states, "b")[:, 0, 0], torch.exp(-k * DT / 150e-3), rtol=1e-12)


def test_threshold_is_raised_by_beta_after_a_spike(nh):
    """From rest, a pulse that takes v to 1.2 fires a LIF (v_th = 1) and a fresh ALIF; an ALIF that
    fired one step earlier has threshold 1 + beta rho > 1.2 and stays silent."""
    tau, beta, tau_a = 20e-3, 0.5, 100e-3
    a = math.exp(-DT / tau)
    amp = 1.2 / (1 - a)                                     # v = (1 - a) I from v = 0
    p = ns.ALIFParams(tau_mem=tau, tau_adapt=tau_a, beta=beta, reset="zero")
    fresh, _ = nh.simulate("alif", p, torch.full((1, 1, 1), amp, dtype=torch.float64), DT)
    adapted_state = ns.ALIFState(v=torch.zeros(1, 1, dtype=torch.float64), i=torch.zeros(1, 1, dtype=torch.float64),
                                 b=torch.ones(1, 1, dtype=torch.float64), refractory=torch.zeros(1, 1, dtype=torch.float64))
    adapted, st = nh.simulate("alif", p, torch.full((1, 1, 1), amp, dtype=torch.float64), DT, state=adapted_state)
    assert fresh.item() == 1.0 and adapted.item() == 0.0
    assert 1.0 + beta * math.exp(-DT / tau_a) > 1.2
    # and the same neuron fires once v exceeds the raised threshold
    amp2 = (1.0 + beta * math.exp(-DT / tau_a) + 0.01) / (1 - a)
    adapted2, _ = nh.simulate("alif", p, torch.full((1, 1, 1), amp2, dtype=torch.float64), DT, state=adapted_state)
    assert adapted2.item() == 1.0


def test_subtract_reset_removes_the_effective_threshold(nh):
    tau, beta, tau_a = 20e-3, 0.5, 100e-3
    a, rho = math.exp(-DT / tau), math.exp(-DT / tau_a)
    v0, b0, amp = 0.9, 0.4, 100.0
    state = ns.ALIFState(v=torch.full((1, 1), v0, dtype=torch.float64), i=torch.zeros(1, 1, dtype=torch.float64),
                         b=torch.full((1, 1), b0, dtype=torch.float64), refractory=torch.zeros(1, 1, dtype=torch.float64))
    p = ns.ALIFParams(tau_mem=tau, tau_adapt=tau_a, beta=beta, reset="subtract", v_reset=0.0)
    out, states = nh.simulate("alif", p, torch.full((1, 1, 1), amp, dtype=torch.float64), DT, state=state)
    v_pre = v0 * a + (1 - a) * amp
    theta = 1.0 + beta * b0 * rho
    assert out.item() == 1.0
    assert states[0].v.item() == pytest.approx(v_pre - theta, abs=1e-12)
    assert states[0].b.item() == pytest.approx(b0 * rho + 1.0, abs=1e-12)


def test_constant_drive_shows_spike_frequency_adaptation(nh):
    x = torch.full((1500, 1, 1), 3.0, dtype=torch.float64)
    lif_out, _ = nh.simulate("lif", ns.LIFParams(tau_mem=20e-3, reset="zero"), x, DT)
    alif_out, _ = nh.simulate("alif", ns.ALIFParams(tau_mem=20e-3, tau_adapt=200e-3, beta=0.3, reset="zero"), x, DT)
    isi = torch.diff(torch.tensor(nh.spike_steps(alif_out[:, 0, 0])))
    lif_isi = torch.diff(torch.tensor(nh.spike_steps(lif_out[:, 0, 0])))
    assert len(isi) > 5
    assert isi[-1] > isi[0] + 3, "intervals lengthen as the threshold adapts"
    assert torch.all(isi[1:] >= isi[:-1] - 1)
    assert torch.all(lif_isi == lif_isi[0]) and alif_out.sum() < lif_out.sum()


def test_gradients_reach_input_and_adaptation_time_constant():
    pop = ns.Population("alif", 3, ns.ALIFParams(tau_mem=10e-3, tau_adapt=50e-3, beta=0.3),
                        trainable=("tau_mem", "tau_adapt", "beta"))
    x = torch.full((60, 2, 3), 2.0, requires_grad=True)
    state, total = pop.initial_state(2), 0.0
    for t in range(60):
        s, state = pop.step(x[t], state, DT)
        total = total + s.sum()
    assert total > 0
    total.backward()
    assert x.grad.abs().sum() > 0
    for name in ("tau_mem", "tau_adapt", "beta"):
        assert getattr(pop, name).grad.abs() > 0, name
