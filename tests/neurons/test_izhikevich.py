"""Izhikevich (2003): firing patterns, fixed point, units of dt, an independent Euler reference."""
import math

import torch

import neurosim as ns

DT = 1e-4                      # seconds (0.1 ms)

# name: (a, b, c, d) from Izhikevich (2003), Fig. 2
PRESETS = {"RS": (0.02, 0.2, -65.0, 8.0), "FS": (0.1, 0.2, -65.0, 2.0),
           "CH": (0.02, 0.2, -50.0, 2.0), "IB": (0.02, 0.2, -55.0, 4.0)}


def reference_spikes(a, b, c, d, current, steps, dt_ms=0.1):
    """Textbook forward Euler in plain Python floats (v, u from the start of the step)."""
    v, u, spikes, trace = c, b * c, [], []
    for k in range(steps):
        v, u = (v + dt_ms * (0.04 * v * v + 5 * v + 140 - u + current), u + dt_ms * a * (b * v - u))
        if v >= 30.0:
            spikes.append(k)
            v, u = c, u + d
        trace.append(v)
    return spikes, trace


def run_presets(nh, current=10.0, steps=5000, dt=DT):
    """Spikes and v, ``[T, preset]``: the four presets as one population with per-neuron float64
    parameters (the step function called directly, without a Population)."""
    params = ns.IzhikevichParams(*(torch.tensor(col, dtype=torch.float64) for col in zip(*PRESETS.values())))
    x = torch.full((steps, 1, len(PRESETS)), current, dtype=torch.float64)
    out, states = nh.simulate("izhikevich", params, x, dt, direct=True)
    return out[:, 0], nh.trace(states, "v")[:, 0]


def test_matches_an_independent_euler_reference(nh):
    """Same spikes over 300 ms; v within 1e-5 mV over the first 150 ms, and on average within
    1e-3 mV over all 300 ms. The reference groups the polynomial differently and every upswing
    amplifies those ~1e-14 rounding differences (FS, spiking fastest, drifts most: ~1e-7 mV after
    150 ms; by 300 ms up to 0.1 mV on the steepest upswing samples)."""
    out, v = run_presets(nh, steps=3000)
    for j, (name, abcd) in enumerate(PRESETS.items()):
        spikes, trace = reference_spikes(*abcd, 10.0, 3000)
        assert nh.spike_steps(out[:, j]) == spikes, name
        trace = torch.tensor(trace, dtype=torch.float64)
        assert (v[:1500, j] - trace[:1500]).abs().max() < 1e-5, name
        assert (v[:, j] - trace).abs().mean() < 1e-3, name


def test_firing_patterns_of_the_2003_paper(nh):
    out, _ = run_presets(nh, steps=6000)                  # 600 ms at I = 10
    isi = {name: torch.diff(torch.tensor(nh.spike_steps(out[:, j]))).double() * 0.1   # ms
           for j, name in enumerate(PRESETS)}
    rs, fs, ch, ib = isi["RS"], isi["FS"], isi["CH"], isi["IB"]
    # regular spiking: tonic, 15-35 Hz, with spike-frequency adaptation (first interval shortest)
    assert 0.6 * 15 <= len(rs) + 1 <= 0.6 * 35
    assert rs[0] < 0.7 * rs[-1] and torch.allclose(rs[2:], rs[-1].expand_as(rs[2:]), atol=0.5)
    # fast spiking: several times the rate of RS, little adaptation
    assert len(fs) > 4 * len(rs) and fs[-1] < 1.5 * fs[0] + 5
    # chattering: bursts (intervals < 6 ms) separated by pauses (> 30 ms), several spikes a burst
    assert torch.all((ch < 6) | (ch > 30)) and (ch < 6).sum() > 3 * (ch > 30).sum()
    # intrinsically bursting: an initial burst, then tonic spiking
    assert ib[0] < 6 and torch.all(ib[1:] > 20)


def test_rest_is_the_stable_fixed_point(nh):
    """With I = 0 and b = 0.2: 0.04 v^2 + 4.8 v + 140 = 0 -> v* = -70 mV (stable), u* = b v* = -14.
    (2 s at dt = 1 ms: the slow eigenvalue is about -0.013 / ms.)"""
    out, states = nh.simulate("izhikevich", ns.IzhikevichParams(), torch.zeros(2000, 1, 1, dtype=torch.float64), 1e-3)
    assert out.sum() == 0
    assert abs(states[-1].v.item() + 70.0) < 1e-3 and abs(states[-1].u.item() + 14.0) < 1e-3


def test_dt_is_in_seconds(nh):
    """Halving dt (in seconds) keeps the spike times in milliseconds: the step converts units.
    Euler's O(dt) error moves each spike by up to a few percent of its time (FS most)."""
    coarse, _ = run_presets(nh, steps=1500, dt=1e-4)
    fine, _ = run_presets(nh, steps=3000, dt=5e-5)
    for j in range(len(PRESETS)):
        t_coarse = [0.1 * k for k in nh.spike_steps(coarse[:, j])]
        t_fine = [0.05 * k for k in nh.spike_steps(fine[:, j])]
        assert len(t_coarse) >= 4 and abs(len(t_coarse) - len(t_fine)) <= max(1, 0.05 * len(t_fine))
        assert all(abs(a - b) < 0.05 * b + 0.2 for a, b in zip(t_coarse[:4], t_fine[:4]))    # ms


def test_reset_and_recovery_jump(nh):
    p = ns.IzhikevichParams(c=-60.0, d=5.0)
    state = ns.IzhikevichState(v=torch.full((1, 1), 29.0, dtype=torch.float64),
                               u=torch.full((1, 1), -10.0, dtype=torch.float64), i=torch.zeros(1, 1, dtype=torch.float64))
    out, states = nh.simulate("izhikevich", p, torch.zeros(1, 1, 1, dtype=torch.float64), DT, state=state)
    u_euler = -10.0 + 0.1 * 0.02 * (0.2 * 29.0 + 10.0)
    assert out.item() == 1.0 and states[0].v.item() == -60.0
    assert math.isclose(states[0].u.item(), u_euler + 5.0, abs_tol=1e-12)


def test_gradients_reach_input_and_trainable_parameters():
    pop = ns.Population("izhikevich", 2, ns.IzhikevichParams(), trainable=("a", "d"))
    x = torch.full((600, 1, 2), 10.0, requires_grad=True)
    state, total = pop.initial_state(1), 0.0
    for t in range(600):
        s, state = pop.step(x[t], state, DT)
        total = total + s.sum()
    assert total > 0
    total.backward()
    assert x.grad.abs().sum() > 0 and pop.a.grad.abs() > 0 and pop.d.grad.abs() > 0
