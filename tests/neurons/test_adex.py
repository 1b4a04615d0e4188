"""AdEx (Brette & Gerstner 2005): Euler reference, fixed point, adaptation, reset, refractoriness."""
import math

import pytest
import torch

import neurosim as ns

DT = 1e-4
P = ns.AdExParams()                                   # the paper's values, SI units


def reference(p, current, steps, dt=DT):
    """Textbook forward Euler in Python floats; returns (spike steps, V trace, w trace)."""
    v, w, spikes, vs, ws = p.E_L, 0.0, [], [], []
    for k in range(steps):
        dv = (-p.g_L * (v - p.E_L) + p.g_L * p.Delta_T * math.exp((v - p.V_T) / p.Delta_T) - w + current) / p.C
        dw = (p.a * (v - p.E_L) - w) / p.tau_w
        v, w = v + dt * dv, w + dt * dw
        if v > p.V_peak:
            spikes.append(k)
            v, w = p.V_reset, w + p.b
        vs.append(v)
        ws.append(w)
    return spikes, vs, ws


def const(current, steps, n=1):
    return torch.full((steps, 1, n), current, dtype=torch.float64)


def test_matches_an_independent_euler_reference(nh):
    for current in (0.7e-9, 1.5e-9):
        out, states = nh.simulate("adex", P, const(current, 3000), DT)
        spikes, vs, ws = reference(P, current, 3000)
        assert len(spikes) >= 3
        assert nh.spike_steps(out[:, 0, 0]) == spikes
        assert (nh.trace(states, "v")[:, 0, 0] - torch.tensor(vs, dtype=torch.float64)).abs().max() < 1e-9   # V
        assert (nh.trace(states, "w")[:, 0, 0] - torch.tensor(ws, dtype=torch.float64)).abs().max() < 1e-15  # A


def test_subthreshold_fixed_point(nh):
    """Below rheobase V settles where (g_L + a)(V - E_L) - g_L Delta_T exp((V - V_T)/Delta_T) = I
    (Euler keeps the fixed points of the ODE), with w = a (V - E_L)."""
    current = 0.4e-9

    def f(v):
        return (P.g_L + P.a) * (v - P.E_L) - P.g_L * P.Delta_T * math.exp((v - P.V_T) / P.Delta_T) - current
    lo, hi = P.E_L, P.V_T                      # f(lo) < 0 < f(hi): the stable root lies between
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    out, states = nh.simulate("adex", P, const(current, 3000), 5e-4)    # 1.5 s, ten tau_w
    assert out.sum() == 0
    assert states[-1].v.item() == pytest.approx(lo, abs=1e-6)
    assert states[-1].w.item() == pytest.approx(P.a * (lo - P.E_L), rel=1e-3)


def test_adaptation_lengthens_inter_spike_intervals(nh):
    x = const(1.0e-9, 5000)
    out, _ = nh.simulate("adex", P, x, DT)
    isi = torch.diff(torch.tensor(nh.spike_steps(out[:, 0, 0])))
    assert len(isi) >= 4
    assert torch.all(isi[1:] >= isi[:-1]) and isi[-1] > 1.5 * isi[0]
    # without adaptation (a = b = 0) the intervals are all equal, and shorter
    plain, _ = nh.simulate("adex", ns.AdExParams(a=0.0, b=0.0), x, DT)
    isi0 = torch.diff(torch.tensor(nh.spike_steps(plain[:, 0, 0])))
    assert torch.all((isi0 - isi0[0]).abs() <= 1) and isi0[0] < isi[0] * 1.01 and plain.sum() > out.sum()


def test_reset_jump_and_refractory_hold(nh):
    p = ns.AdExParams(refractory_steps=20)
    out, states = nh.simulate("adex", p, const(3e-9, 400), DT)
    spikes = nh.spike_steps(out[:, 0, 0])
    assert len(spikes) >= 2 and all(b - a > 20 for a, b in zip(spikes, spikes[1:]))
    k = spikes[0]
    v, w = nh.trace(states, "v")[:, 0, 0], nh.trace(states, "w")[:, 0, 0]
    assert torch.all(v[k:k + 21] == p.V_reset), "V held at V_reset for 20 steps after the spike"
    assert v[k + 21] != p.V_reset
    w_euler = w[k - 1] + DT / p.tau_w * (p.a * (v[k - 1] - p.E_L) - w[k - 1])
    assert w[k].item() == pytest.approx(w_euler.item() + p.b, rel=1e-12)
    # w keeps evolving (decaying toward a (V_reset - E_L) = 0) during the refractory period
    assert torch.all(w[k + 1:k + 21] < w[k:k + 20])


def test_time_constants_are_checked():
    with pytest.raises(ValueError, match="AdExParams.tau_w must be finite and > 0"):
        ns.AdExParams(tau_w=0.0)
    with pytest.raises(ValueError, match="AdExParams.C must be"):
        ns.AdExParams(C=-1e-12)
    assert P.tau_mem == pytest.approx(281e-12 / 30e-9)
    g = ns.Graph.sequential(1, ("p", ns.Population("adex", 1, P)))
    with pytest.warns(RuntimeWarning, match="tau_mem"):
        ns.Simulator(g, dt=1e-2)


def test_gradients_reach_input_and_adaptation_parameters():
    pop = ns.Population("adex", 2, P, trainable=("tau_w", "b", "V_T"))
    x = torch.full((1000, 1, 2), 1.0e-9, dtype=torch.float64, requires_grad=True)
    pop = pop.double()
    state, total = pop.initial_state(1, dtype=torch.float64), 0.0
    for t in range(1000):
        s, state = pop.step(x[t], state, DT)
        total = total + s.sum()
    assert total >= 2
    total.backward()
    assert x.grad.abs().sum() > 0
    for name in ("tau_w", "b", "V_T"):
        grad = getattr(pop, name).grad
        assert grad is not None and torch.isfinite(grad) and grad.abs() > 0, name
