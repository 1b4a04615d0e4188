"""Conductance-based LIF (COBA): two ports, conductance decay, reversal potentials, refractoriness."""
import math

import pytest
import torch

import neurosim as ns

DT = 1e-4
F64 = torch.float64


def ports(steps, exc=0.0, inh=0.0, n=1, batch=1):
    """(x_exc, x_inh) sequences, zero but for the values given at step 0 (or constant callables)."""
    xe = torch.zeros(steps, batch, n, dtype=F64)
    xi = torch.zeros(steps, batch, n, dtype=F64)
    xe[0], xi[0] = exc, inh
    return xe, xi


def test_conductances_decay_exponentially(nh):
    p = ns.CobaLIFParams(v_threshold=1.0)
    _, states = nh.simulate("coba_lif", p, ports(400, exc=0.3, inh=0.7), DT)
    k = torch.arange(400, dtype=F64)
    assert torch.allclose(nh.trace(states, "g_exc")[:, 0, 0], 0.3 * torch.exp(-k * DT / 5e-3), rtol=1e-12)
    assert torch.allclose(nh.trace(states, "g_inh")[:, 0, 0], 0.7 * torch.exp(-k * DT / 10e-3), rtol=1e-12)


@pytest.mark.parametrize("g_e, g_i", [(0.4, 0.0), (0.0, 1.5), (0.3, 0.8)])
def test_frozen_conductance_relaxation_is_exact(nh, g_e, g_i):
    """With conductances that do not decay (tau_syn huge), v relaxes to
    v_inf = (E_L + g_e E_e + g_i E_i) / (1 + g_e + g_i) with time constant tau_m / (1 + g_e + g_i)."""
    p = ns.CobaLIFParams(tau_syn_exc=1e9, tau_syn_inh=1e9, v_threshold=1.0)
    _, states = nh.simulate("coba_lif", p, ports(600, exc=g_e, inh=g_i), DT)
    total = 1 + g_e + g_i
    v_inf = (-60e-3 + g_e * 0.0 + g_i * -80e-3) / total
    t = torch.arange(1, 601, dtype=F64) * DT
    expected = v_inf + (-60e-3 - v_inf) * torch.exp(-t * total / 20e-3)
    assert (nh.trace(states, "v")[:, 0, 0] - expected).abs().max() < 1e-9


def test_steady_drive_settles_at_the_conductance_weighted_reversal_potential(nh):
    """A constant increment x per step gives g* = x / (1 - exp(-dt/tau)); v* follows from g*."""
    xe = torch.full((4000, 1, 1), 0.002, dtype=F64)
    xi = torch.full((4000, 1, 1), 0.003, dtype=F64)
    p = ns.CobaLIFParams(v_threshold=1.0)
    _, states = nh.simulate("coba_lif", p, (xe, xi), DT)
    ge = 0.002 / (1 - math.exp(-DT / 5e-3))
    gi = 0.003 / (1 - math.exp(-DT / 10e-3))
    v_star = (-60e-3 + ge * 0.0 + gi * -80e-3) / (1 + ge + gi)
    assert states[-1].g_exc.item() == pytest.approx(ge, rel=1e-9)
    assert states[-1].v.item() == pytest.approx(v_star, abs=1e-9)
    assert -80e-3 < v_star < 0.0


def test_excitation_depolarises_and_inhibition_hyperpolarises(nh):
    p = ns.CobaLIFParams(v_threshold=1.0)
    _, exc = nh.simulate("coba_lif", p, ports(50, exc=2.0), DT)
    _, inh = nh.simulate("coba_lif", p, ports(50, inh=2.0), DT)
    v_exc, v_inh = nh.trace(exc, "v")[:, 0, 0], nh.trace(inh, "v")[:, 0, 0]
    assert torch.all(v_exc > -60e-3) and torch.all(v_exc < 0.0)
    assert torch.all(v_inh < -60e-3) and torch.all(v_inh > -80e-3)


def test_euler_and_exact_agree_at_small_dt(nh):
    x = ports(2000, exc=1.0, inh=0.5)
    runs = [nh.simulate("coba_lif", ns.CobaLIFParams(v_threshold=1.0, integration=m), x, DT)[1]
            for m in ("exact", "euler")]
    diff = (nh.trace(runs[0], "v") - nh.trace(runs[1], "v")).abs().max().item()
    assert 0 < diff < 0.2e-3                     # V: under 0.2 mV on a ~10 mV excursion


def test_default_refractory_period_is_brian2s_5_ms(nh):
    """Spike, 49 silent steps with v held at v_reset, and the 50th step after the spike free again:
    Brian2's refractory = 5 ms at dt = 0.1 ms."""
    xe = torch.full((200, 1, 1), 5.0, dtype=F64)
    out, states = nh.simulate("coba_lif", ns.CobaLIFParams(), (xe, torch.zeros_like(xe)), DT)
    spikes = nh.spike_steps(out[:, 0, 0])
    assert len(spikes) >= 3
    assert all(b - a == 50 for a, b in zip(spikes, spikes[1:]))
    v = nh.trace(states, "v")[:, 0, 0]
    assert torch.all(v[spikes[0]:spikes[0] + 50] == -60e-3)


def test_conductances_in_siemens_with_g_leak(nh):
    g_l = 10e-9
    xe = (torch.rand(1000, 2, 3, generator=torch.Generator().manual_seed(0)) < 0.05).to(F64) * 0.6
    xi = (torch.rand(1000, 2, 3, generator=torch.Generator().manual_seed(1)) < 0.05).to(F64) * 2.0
    unitless, s1 = nh.simulate("coba_lif", ns.CobaLIFParams(), (xe, xi), DT)
    siemens, s2 = nh.simulate("coba_lif", ns.CobaLIFParams(g_leak=g_l), (xe * g_l, xi * g_l), DT)
    assert unitless.sum() > 0
    assert torch.equal(unitless, siemens)
    assert torch.allclose(nh.trace(s1, "v"), nh.trace(s2, "v"), atol=1e-12)


def test_input_same_step_false_is_one_step_later(nh):
    xe = (torch.rand(600, 2, 4, generator=torch.Generator().manual_seed(2)) < 0.1).to(F64) * 1.0
    xi = (torch.rand(600, 2, 4, generator=torch.Generator().manual_seed(3)) < 0.05).to(F64) * 0.5
    same, s1 = nh.simulate("coba_lif", ns.CobaLIFParams(refractory_steps=10), (xe, xi), DT)
    late, s2 = nh.simulate("coba_lif", ns.CobaLIFParams(refractory_steps=10, input_same_step=False), (xe, xi), DT)
    assert same.sum() > 5
    assert late[0].sum() == 0 and torch.equal(late[1:], same[:-1])
    assert torch.allclose(nh.trace(s2, "v")[1:], nh.trace(s1, "v")[:-1], atol=1e-15)


def test_two_ports_through_a_graph_and_gradients():
    pop = ns.Population("coba_lif", 3, ns.CobaLIFParams(refractory_steps=0), trainable=("tau_mem",))
    g = ns.Graph().add_input("e", 3).add_input("i", 3).add("pop", pop)
    g.connect("e", "pop", port="exc").connect("i", "pop", port="inh")
    xe = torch.full((300, 2, 3), 0.08, requires_grad=True)
    xi = torch.full((300, 2, 3), 0.01, requires_grad=True)
    out = ns.Simulator(g, dt=DT).run({"e": xe, "i": xi}).output
    assert out.shape == (300, 2, 3) and out.sum() > 0
    out.sum().backward()
    assert xe.grad.abs().sum() > 0 and xi.grad.abs().sum() > 0
    assert xe.grad.sum() > 0 > xi.grad.sum(), "excitation helps spiking, inhibition hinders it"
    assert pop.tau_mem.grad.abs() > 0
