"""Pair STDP: hand-computed pairs, the STDP window, bounds, Sparse pattern, no autograd, usage."""
import math

import pytest
import torch

from neurosim import Dense, Graph, Population, Simulator, Sparse
from neurosim.plasticity import STDPParams, STDPRule, STDPState, stdp_step

DT = 1e-3
UNBOUNDED = dict(w_min=-10.0, w_max=10.0)


def _pair(t_pre, t_post, steps=40):
    pre, post = torch.zeros(steps, 1, 1), torch.zeros(steps, 1, 1)
    pre[t_pre] = 1.0
    post[t_post] = 1.0
    return pre, post


def _dw(t_pre, t_post, params):
    fc = Dense(1, 1, weight=torch.zeros(1, 1))
    STDPRule(fc, params).apply(*_pair(t_pre, t_post), DT)
    return float(fc.weight.detach())


def test_hand_computed_pairs():
    p = STDPParams(tau_plus=20e-3, tau_minus=30e-3, a_plus=0.1, a_minus=0.05, **UNBOUNDED)
    assert _dw(10, 15, p) == pytest.approx(0.1 * math.exp(-5e-3 / 20e-3), rel=1e-6)    # pre then post
    assert _dw(15, 10, p) == pytest.approx(-0.05 * math.exp(-5e-3 / 30e-3), rel=1e-6)  # post then pre
    assert _dw(12, 12, p) == 0.0                                                       # same step


def test_stdp_window_shape():
    p = STDPParams(tau_plus=10e-3, tau_minus=15e-3, a_plus=1.0, a_minus=0.8, **UNBOUNDED)
    lags = [1, 2, 4, 8, 16]
    ltp = [_dw(5, 5 + k, p) for k in lags]
    ltd = [_dw(5 + k, 5, p) for k in lags]
    assert all(v > 0 for v in ltp) and all(v < 0 for v in ltd)
    assert all(a > b for a, b in zip(ltp, ltp[1:]))                 # decays with |dt|
    assert all(abs(a) > abs(b) for a, b in zip(ltd, ltd[1:]))
    for k, a, b in zip(lags, ltp, ltd):                                # exponential with the right tau
        assert a == pytest.approx(math.exp(-k * DT / 10e-3), rel=1e-5)
        assert b == pytest.approx(-0.8 * math.exp(-k * DT / 15e-3), rel=1e-5)


def test_all_to_all_and_nearest_interactions():
    pre, post = torch.zeros(20, 1, 1), torch.zeros(20, 1, 1)
    pre[2] = pre[6] = 1.0
    post[10] = 1.0
    tau = 20e-3
    for interaction, expected in (("all_to_all", math.exp(-8e-3 / tau) + math.exp(-4e-3 / tau)),
                                  ("nearest", math.exp(-4e-3 / tau))):
        fc = Dense(1, 1, weight=torch.zeros(1, 1))
        params = STDPParams(tau_plus=tau, a_plus=1.0, a_minus=0.0, interaction=interaction, **UNBOUNDED)
        STDPRule(fc, params).apply(pre, post, DT)
        assert float(fc.weight.detach()) == pytest.approx(expected, rel=1e-6)


def test_batch_is_summed_and_matrix_orientation():
    p = STDPParams(a_plus=1.0, a_minus=0.0, **UNBOUNDED)
    pre, post = torch.zeros(2, 3), torch.zeros(2, 2)
    state = STDPState(torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]]), torch.zeros(2, 2))
    post[0, 1] = 1.0
    post[1, 1] = 1.0
    dw, _ = stdp_step(pre, post, state, p, DT)
    a = math.exp(-DT / p.tau_plus)
    torch.testing.assert_close(dw, torch.tensor([[0.0, 0.0, 0.0], [1.0 * a, 0.0, 1.5 * a]]))


def test_weight_bounds_and_multiplicative():
    fc = Dense(4, 3, weight=torch.full((3, 4), 0.5))
    pre, post = torch.zeros(30, 1, 4), torch.zeros(30, 1, 3)
    pre[::3] = 1.0
    post[1::3] = 1.0                      # post always 1 step after pre: strong potentiation
    STDPRule(fc, STDPParams(a_plus=0.2, a_minus=0.0, w_min=0.0, w_max=1.0)).apply(pre, post, DT)
    assert torch.all(fc.weight == 1.0)
    pre2, post2 = torch.zeros(30, 1, 4), torch.zeros(30, 1, 3)
    pre2[1::3] = 1.0
    post2[::3] = 1.0                      # pre 1 step after post: strong depression
    STDPRule(fc, STDPParams(a_plus=0.0, a_minus=0.3, w_min=0.1, w_max=1.0)).apply(pre2, post2, DT)
    assert torch.all(fc.weight == 0.1)
    # soft bounds: the change shrinks as the weight approaches w_max and never crosses it
    soft = Dense(1, 1, weight=torch.full((1, 1), 0.9))
    params = STDPParams(a_plus=0.5, a_minus=0.0, w_min=0.0, w_max=1.0, multiplicative=True)
    STDPRule(soft, params).apply(*_pair(3, 4), DT)
    assert float(soft.weight.detach()) == pytest.approx(0.9 + 0.5 * 0.1 * math.exp(-DT / 20e-3), rel=1e-6)


def _one_pair_soft_bound(w0, t_pre, t_post, **kw):
    params = STDPParams(tau_plus=20e-3, tau_minus=30e-3, w_min=0.2, w_max=1.5, multiplicative=True, **kw)
    fc = Dense(1, 1, weight=torch.full((1, 1), w0, dtype=torch.float64))
    STDPRule(fc, params).apply(*(s.double() for s in _pair(t_pre, t_post)), DT)
    return float(fc.weight.detach())


def test_multiplicative_depression_is_scaled_by_the_distance_to_w_min():
    """Post at step 10, pre at 15: dw = -a_minus (w - w_min) exp(-5 ms / tau_minus), w = 0.7."""
    w = _one_pair_soft_bound(0.7, t_pre=15, t_post=10, a_plus=0.0, a_minus=0.4)
    expected = 0.7 - 0.4 * (0.7 - 0.2) * math.exp(-5e-3 / 30e-3)
    assert w == pytest.approx(expected, rel=1e-12, abs=0)


def test_multiplicative_potentiation_is_scaled_by_the_distance_to_w_max():
    """Pre at step 10, post at 15: dw = +a_plus (w_max - w) exp(-5 ms / tau_plus), w = 0.7."""
    w = _one_pair_soft_bound(0.7, t_pre=10, t_post=15, a_plus=0.4, a_minus=0.0)
    expected = 0.7 + 0.4 * (1.5 - 0.7) * math.exp(-5e-3 / 20e-3)
    assert w == pytest.approx(expected, rel=1e-12, abs=0)


def test_sparse_keeps_its_pattern_and_matches_dense():
    gen = torch.Generator().manual_seed(0)
    sp = Sparse.random(30, 20, p=0.2, seed=1, weight=0.5)
    fc = Dense(30, 20, weight=sp.to_dense().detach())
    mask = sp.mask()
    pre = (torch.rand(50, 2, 30, generator=gen) < 0.2).float()
    post = (torch.rand(50, 2, 20, generator=gen) < 0.2).float()
    params = STDPParams(a_plus=0.01, a_minus=0.012, w_min=-1.0, w_max=1.0)
    STDPRule(sp, params).apply(pre, post, DT)
    STDPRule(fc, params).apply(pre, post, DT)
    assert sp.nnz == int(mask.sum()) and torch.equal(sp.mask(), mask)
    dense_after = sp.to_dense().detach()
    assert torch.all(dense_after[~mask] == 0)
    torch.testing.assert_close(dense_after[mask], fc.weight.detach()[mask], atol=1e-6, rtol=0)
    assert not torch.equal(sp.weight.detach(), torch.full_like(sp.weight, 0.5))


def test_no_autograd_graph():
    fc = Dense(5, 4)
    x = torch.rand(3, 5, requires_grad=True)
    pre = (x > 0.5).float() * x                      # a tensor that is part of a graph
    post = torch.ones(3, 4, requires_grad=True)
    dw, state = stdp_step(pre, post, None, STDPParams(), DT)
    assert not dw.requires_grad and dw.grad_fn is None
    assert not state.pre_trace.requires_grad and not state.post_trace.requires_grad
    rule = STDPRule(fc, STDPParams())
    state = rule.step(pre, post, None, DT)
    assert fc.weight.grad_fn is None and fc.weight.requires_grad     # still a trainable leaf
    assert state.pre_trace.grad_fn is None


def test_offline_and_chunked_online_usage_with_the_simulator():
    torch.manual_seed(0)
    fc = Dense(10, 4, weight=torch.full((4, 10), 0.3))
    g = Graph().add_input("x", 10)
    g.add("fc", fc).add("lif", Population("lif", 4))
    g.chain("x", "fc", "lif")
    sim = Simulator(g, dt=DT)
    x = (torch.rand(60, 2, 10) < 0.3).float()
    params = STDPParams(a_plus=0.01, a_minus=0.005, w_min=0.0, w_max=1.0)

    # offline: record, then learn; equals the pure stdp_step loop
    with torch.no_grad():
        post = sim.run(x).output
    w0 = fc.weight.detach().clone()
    rule = STDPRule(fc, params)
    state = rule.apply(x, post, sim.dt)
    w_ref, s = w0.clone(), None
    for t in range(60):
        dw, s = stdp_step(x[t], post[t], s, params, DT)
        w_ref = (w_ref + dw).clamp(0.0, 1.0)
    torch.testing.assert_close(fc.weight.detach(), w_ref)
    torch.testing.assert_close(state.pre_trace, s.pre_trace)

    # learning in two halves with the STDP state carried equals learning once
    with torch.no_grad():
        fc.weight.copy_(w0)
    rule.apply(x[30:], post[30:], DT, rule.apply(x[:30], post[:30], DT))
    torch.testing.assert_close(fc.weight.detach(), w_ref)

    # online: the simulator runs in chunks, the rule learns between them
    with torch.no_grad():
        fc.weight.copy_(w0)
    net_state, stdp_state = None, None
    for chunk in x.split(10):
        with torch.no_grad():
            res = sim.run(chunk, net_state)
        net_state = res.state
        stdp_state = rule.apply(chunk, res.output, sim.dt, stdp_state)
    assert not torch.equal(fc.weight.detach(), w0)
    assert torch.all((fc.weight >= 0) & (fc.weight <= 1))


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="tau_plus"):
        STDPParams(tau_plus=0.0)
    with pytest.raises(ValueError, match="a_minus"):
        STDPParams(a_minus=-1.0)
    with pytest.raises(ValueError, match="w_min"):
        STDPParams(w_min=1.0, w_max=0.0)
    with pytest.raises(ValueError, match="interaction"):
        STDPParams(interaction="triplet")
    rule = STDPRule(Dense(3, 2), STDPParams())
    with pytest.raises(ValueError, match="pre spikes"):
        rule.step(torch.zeros(1, 4), torch.zeros(1, 2), None, DT)
    with pytest.raises(ValueError, match="same \\[T, batch\\]"):
        rule.apply(torch.zeros(5, 1, 3), torch.zeros(4, 1, 2), DT)
    with pytest.raises(TypeError, match="no weight"):
        STDPRule(Population("lif", 3), STDPParams())
    with pytest.raises(ValueError, match="dt"):
        stdp_step(torch.zeros(1, 3), torch.zeros(1, 2), None, STDPParams(), 0.0)
