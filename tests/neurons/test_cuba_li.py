"""CubaLI: the current-based leaky integrator readout (NIR CubaLI)."""

import pytest
import torch

import neurosim as ns

DT = 1e-4


def test_pulse_response_matches_the_closed_form(nh):
    """A pulse q at t = 0: i(t) = w q e^{-t/ts}, v(t) = r w q ts (e^{-t/ts} - e^{-t/tm}) / (ts - tm);
    the pulse arrives at the start of step 0, so v[k] = v((k + 1) dt)."""
    ts, tm, r, w, q = 3e-3, 12e-3, 2.0, 1.5, 0.7
    x = torch.zeros(500, 1, 1, dtype=torch.float64)
    x[0] = q
    out, states = nh.simulate("cuba_li", ns.CubaLIParams(tau_syn=ts, tau_mem=tm, r=r, w_in=w), x, DT)
    t = torch.arange(1, 501, dtype=torch.float64) * DT
    v = r * w * q * ts * (torch.exp(-t / ts) - torch.exp(-t / tm)) / (ts - tm)
    i = w * q * torch.exp(-(t - DT) / ts)
    assert torch.equal(out, nh.trace(states, "v"))
    assert (out[:, 0, 0] - v).abs().max() < 1e-12
    assert (nh.trace(states, "i")[:, 0, 0] - i).abs().max() < 1e-12


def test_equal_time_constants_and_leak(nh):
    """tau_syn = tau_mem: v(t) = v_leak + r w q (t / tau) e^{-t/tau}."""
    tau, v_leak, q = 5e-3, -0.2, 1.0
    x = torch.zeros(300, 1, 1, dtype=torch.float64)
    x[0] = q
    out, _ = nh.simulate("cuba_li", ns.CubaLIParams(tau_syn=tau, tau_mem=tau, v_leak=v_leak), x, DT)
    t = torch.arange(1, 301, dtype=torch.float64) * DT
    assert (out[:, 0, 0] - (v_leak + q * t / tau * torch.exp(-t / tau))).abs().max() < 1e-12


@pytest.mark.parametrize("integration", ["exact", "euler"])
@pytest.mark.parametrize("same_step", [True, False])
def test_same_membrane_as_cuba_lif_below_threshold(nh, integration, same_step):
    """The shared discretisation: CubaLI is CubaLIF without threshold, bit for bit."""
    x = torch.randn(80, 2, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    common = dict(tau_syn=torch.linspace(2e-3, 6e-3, 4, dtype=torch.float64), tau_mem=8e-3, r=3.0,
                  v_leak=0.1, w_in=0.5, integration=integration, input_same_step=same_step)
    out, states = nh.simulate("cuba_li", ns.CubaLIParams(**common), x, DT)
    _, lif_states = nh.simulate("cuba_lif", ns.CubaLIFParams(**common, v_threshold=1e30, reset="zero"), x, DT)
    assert torch.equal(out, nh.trace(lif_states, "v"))
    assert torch.equal(nh.trace(states, "i"), nh.trace(lif_states, "i"))


def test_euler_decay_without_input(nh):
    x = torch.zeros(50, 1, 1, dtype=torch.float64)
    state = ns.CubaLIState(v=torch.ones(1, 1, dtype=torch.float64), i=torch.zeros(1, 1, dtype=torch.float64))
    out, _ = nh.simulate("cuba_li", ns.CubaLIParams(tau_mem=10e-3, integration="euler"), x, DT, state=state)
    k = torch.arange(1, 51, dtype=torch.float64)
    assert torch.allclose(out[:, 0, 0], (1 - DT / 10e-3) ** k, rtol=1e-12)


def test_non_spiking_validated_and_differentiable():
    assert ns.CubaLI.spiking is False and ns.Population("cuba_li", 3).emits_spikes is False
    with pytest.raises(ValueError, match="tau_syn"):
        ns.CubaLIParams(tau_syn=0.0)
    with pytest.raises(ValueError, match="integration"):
        ns.CubaLIParams(integration="rk4")
    pop = ns.Population("cuba_li", 2, ns.CubaLIParams(), trainable=("tau_mem", "w_in"))
    x = torch.ones(10, 1, 2, requires_grad=True)
    state, total = pop.initial_state(1), 0.0
    for t in range(10):
        v, state = pop.step(x[t], state, DT)
        total = total + v.sum()
    total.backward()
    assert x.grad.abs().sum() > 0 and pop.tau_mem.grad.abs() > 0 and pop.w_in.grad.abs() > 0
