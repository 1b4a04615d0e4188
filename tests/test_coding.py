"""Encoders and decoders: statistics, exact spike times, reconstruction, hand-made trains."""
import math

import pytest
import torch

import neurosim as ns


def test_poisson_counts_follow_the_binomial_law():
    rates = torch.tensor([0.0, 20.0, 100.0, 400.0]).repeat_interleave(25).view(1, 100).repeat(2, 1)
    steps, dt = 2000, 1e-3
    s = ns.poisson_encode(rates, steps, dt, generator=torch.Generator().manual_seed(0))
    assert s.shape == (steps, 2, 100)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    for k, rate in enumerate([0.0, 20.0, 100.0, 400.0]):
        count = s[:, :, 25 * k:25 * (k + 1)].sum().item()
        n, p = steps * 2 * 25, rate * dt
        sd = math.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 4 * sd + 1e-9, (rate, count, n * p, sd)


def test_poisson_intensities_scale_by_max_rate_and_seed_reproduces():
    x = torch.tensor([[0.0, 0.5, 1.0]]).repeat(50, 1)
    a = ns.poisson_encode(x, 1000, 1e-3, max_rate=200.0, generator=torch.Generator().manual_seed(3))
    b = ns.poisson_encode(x, 1000, 1e-3, max_rate=200.0, generator=torch.Generator().manual_seed(3))
    c = ns.poisson_encode(x, 1000, 1e-3, max_rate=200.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    means = a.mean(dim=(0, 1))
    n = 1000 * 50
    for mean, p in zip(means.tolist(), [0.0, 0.1, 0.2]):
        assert abs(mean - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_poisson_clips_rates_above_one_spike_per_step_with_a_warning():
    with pytest.warns(RuntimeWarning, match="clipped"):
        s = ns.poisson_encode(torch.full((1, 2), 5000.0), 10, 1e-3)
    assert torch.equal(s, torch.ones(10, 1, 2))


@pytest.mark.parametrize("call, match", [
    (lambda: ns.poisson_encode(torch.tensor([[-1.0]]), 5, 1e-3), "rates must be >= 0"),
    (lambda: ns.poisson_encode(torch.tensor([[1.5]]), 5, 1e-3, max_rate=10.0), r"in \[0, 1\]"),
    (lambda: ns.poisson_encode(torch.tensor([[0.5]]), 0, 1e-3), "steps"),
    (lambda: ns.poisson_encode(torch.tensor([[0.5]]), 5, 0.0), "dt"),
    (lambda: ns.poisson_encode(torch.tensor([[float("nan")]]), 5, 1e-3), "NaN"),
    (lambda: ns.latency_encode(torch.tensor([[1.2]]), 5), r"in \[0, 1\]"),
    (lambda: ns.latency_encode(torch.tensor([[0.5]]), 5, method="exp"), "method"),
    (lambda: ns.latency_encode(torch.tensor([[0.5]]), 5, method="log", threshold=0.2), "tau and dt"),
    (lambda: ns.latency_encode(torch.tensor([[0.5]]), 5, method="log", tau=1.0, dt=0.1), "0 < threshold"),
    (lambda: ns.delta_encode(torch.zeros(5, 2), 0.0), "threshold"),
    (lambda: ns.delta_encode(torch.zeros(5), 0.1), r"\[T, B, ...\]"),
    (lambda: ns.delta_encode(torch.zeros(5, 2, 3), 0.1, reference=torch.zeros(4)), "broadcast"),
    (lambda: ns.direct_encode(torch.zeros(2), -1), "steps"),
    (lambda: ns.spike_count(torch.zeros(5)), "time first"),
    (lambda: ns.first_spike_time(torch.zeros(5, 1, 2), dt=-1.0), "dt"),
])
def test_bad_arguments_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_latency_linear_exact_steps_and_ordering():
    x = torch.tensor([[1.0, 0.5, 0.25, 0.0, 0.8]])
    s = ns.latency_encode(x, steps=11)
    assert s.shape == (11, 1, 5)
    assert s.sum(0).tolist() == [[1.0, 1.0, 1.0, 0.0, 1.0]]           # x = 0 never spikes
    steps = s[:, 0].argmax(0).tolist()
    # round((1 - x) * 10): 0, 5, 7.5 -> 8 (ties to even), -, 2
    assert [steps[i] for i in (0, 1, 2, 4)] == [0, 5, 8, 2]
    cut = ns.latency_encode(x, steps=11, threshold=0.3)
    assert cut.sum(0).tolist() == [[1.0, 1.0, 0.0, 0.0, 1.0]]


def test_latency_log_matches_the_rc_charging_time():
    x = torch.tensor([[1.0, 0.5, 0.3, 0.25, 0.2, 0.1]])
    tau, dt, th = 10e-3, 1e-3, 0.2
    s = ns.latency_encode(x, steps=12, method="log", tau=tau, dt=dt, threshold=th)
    expected = {}
    for i, xi in enumerate(x[0].tolist()):
        if xi > th:
            k = round(tau / dt * math.log(xi / (xi - th)))
            if k < 12:
                expected[i] = k
    # 1.0 -> 2.23 -> 2; 0.5 -> 5.11 -> 5; 0.3 -> 10.99 -> 11; 0.25 -> 16.1 (beyond the window)
    assert expected == {0: 2, 1: 5, 2: 11}
    got = {int(i): int(t) for t, i in s[:, 0].nonzero().tolist()}
    assert got == expected


def test_delta_encoding_tracks_the_signal_within_one_threshold():
    t = torch.linspace(0, 1, 300)
    gen = torch.Generator().manual_seed(0)
    walk = torch.cumsum(torch.randn(300, generator=gen) * 0.05, 0)
    signal = torch.stack([torch.sin(2 * math.pi * 3 * t), 2 * t ** 2, walk], dim=-1).unsqueeze(1)   # [T, 1, 3]
    th = 0.1
    ev = ns.delta_encode(signal, th)
    assert ev.shape == (300, 1, 3, 2) and bool((ev >= 0).all())
    recon = signal[0] + th * torch.cumsum(ev[..., 0] - ev[..., 1], 0)
    assert float((recon - signal).abs().max()) < th + 1e-5
    assert ev[..., 0].sum() > 10 and ev[..., 1].sum() > 10
    assert torch.equal(ns.delta_encode(signal, th, signed=True), ev[..., 0] - ev[..., 1])
    assert torch.equal(ns.delta_encode(signal, th, off_spikes=False), ev[..., 0])


def test_delta_encoding_by_hand():
    s = torch.tensor([0.0, 0.25, 0.5, 0.1, 0.85]).view(5, 1, 1)
    ev = ns.delta_encode(s, 0.2)[:, 0, 0]
    # reference: 0 -> 0.2 (ON) -> 0.4 (ON) -> 0.2 (OFF) -> 0.8 (3 ON in one step)
    assert ev.tolist() == [[0, 0], [1, 0], [1, 0], [0, 1], [3, 0]]
    shifted = ns.delta_encode(s, 0.2, reference=-0.45)[:, 0, 0]
    assert shifted[0].tolist() == [2, 0]


def test_direct_encode_repeats_and_is_differentiable():
    x = torch.rand(3, 4, requires_grad=True)
    d = ns.direct_encode(x, 5)
    assert d.shape == (5, 3, 4) and torch.equal(d[4], x)
    d.sum().backward()
    assert torch.equal(x.grad, torch.full((3, 4), 5.0))


def spike_train():
    s = torch.zeros(4, 1, 3)
    s[:, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0])
    s[:, 0, 2] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    return s


def test_decoders_on_a_hand_made_train():
    s = spike_train()
    assert ns.spike_count(s).tolist() == [[2.0, 0.0, 1.0]]
    assert torch.allclose(ns.first_spike_time(s, dt=1e-3), torch.tensor([[1e-3, math.inf, 0.0]]))
    assert torch.allclose(ns.first_spike_time(s, dt=1e-3, no_spike=4e-3), torch.tensor([[1e-3, 4e-3, 0.0]]))
    assert ns.first_spike_time(s, dt=1e-3)[0, 1] == math.inf
    v = torch.tensor([[0.1, -1.0], [0.5, -2.0], [0.3, -0.5]]).unsqueeze(1)      # [T=3, B=1, C=2]
    assert torch.allclose(ns.mean_membrane(v), torch.tensor([[0.3, -7 / 6]]))
    assert torch.allclose(ns.max_membrane(v), torch.tensor([[0.5, -0.5]]))


def test_differentiable_first_spike_time_equals_the_exact_one():
    s = spike_train().requires_grad_()
    t_first = ns.first_spike_time(s, dt=1e-3, no_spike=4e-3)
    assert torch.allclose(t_first, torch.tensor([[1e-3, 4e-3, 0.0]]))
    t_first.sum().backward()
    # silent neuron 1: d t_first / d s[t] = t dt - no_spike
    assert torch.allclose(s.grad[:, 0, 1], torch.tensor([-4e-3, -3e-3, -2e-3, -1e-3]))
    # after the first spike of neuron 0 (step 1) later steps no longer matter
    assert float(s.grad[2, 0, 0]) == 0.0 and float(s.grad[3, 0, 0]) == 0.0
