"""Full and truncated BPTT: exact equality for window = T, truncation only changes gradients."""
import copy

import pytest
import torch

from neurosim import LIFState, NetworkState
from neurosim.training import bptt_step, detach_state, tbptt_step

T, B = 24, 4


def _data(n_in=12, n_out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, n_in, generator=g) < 0.3).float()
    y = torch.randn(T, B, n_out, generator=g)
    return x, y


def per_step_mse(v, y):
    """Sum over time steps of the batch-mean squared error: additive over windows."""
    return ((v - y) ** 2).sum(0).mean()


def _grads(sim):
    return {n: p.grad.clone() for n, p in sim.named_parameters()}


def _full_bptt_grads(sim, x, y):
    sim.zero_grad(set_to_none=True)
    out = sim.run(x).output
    loss = per_step_mse(out, y)
    loss.backward()
    return _grads(sim), out.detach(), float(loss.detach())


def test_window_equal_to_T_is_full_bptt_exactly(classifier):
    sim = classifier(trainable=("tau_mem", "v_threshold"))
    x, y = _data()
    full, out, loss = _full_bptt_grads(sim, x, y)
    for window in (T, T + 7):
        sim.zero_grad(set_to_none=True)
        res = tbptt_step(sim, x, y, per_step_mse, None, window=window, sequence_targets=True)
        assert len(res.window_losses) == 1 and res.loss == loss
        assert torch.equal(res.outputs["out"], out)
        for name, g in _grads(sim).items():
            assert torch.equal(g, full[name]), name


def test_truncation_changes_gradients_but_not_the_forward_pass(classifier):
    sim = classifier()
    x, y = _data()
    full, out, loss = _full_bptt_grads(sim, x, y)
    sim.zero_grad(set_to_none=True)
    res = tbptt_step(sim, x, y, per_step_mse, None, window=5, sequence_targets=True)
    assert len(res.window_losses) == 5                      # 5 + 5 + 5 + 5 + 4 steps
    assert torch.allclose(res.outputs["out"], out, atol=1e-6, rtol=0)
    assert res.loss == pytest.approx(loss, rel=1e-5)         # the loss is additive over windows
    trunc = _grads(sim)
    # the input weights influence the state across window boundaries: truncation drops that part
    assert not torch.allclose(trunc["graph.nodes.fc1.weight"], full["graph.nodes.fc1.weight"], rtol=1e-3)
    # but the gradients still point in a similar direction
    cos = torch.nn.functional.cosine_similarity(trunc["graph.nodes.fc1.weight"].flatten(),
                                                full["graph.nodes.fc1.weight"].flatten(), dim=0)
    assert cos > 0.5


def test_windows_continue_the_state(classifier):
    sim = classifier()
    x, _ = _data()
    with torch.no_grad():
        full = sim.run(x)
    state, parts = None, []
    for t0 in range(0, T, 7):
        res = sim.run(x[t0:t0 + 7], state=state)
        parts.append(res.output)
        state = detach_state(res.state)
    assert torch.allclose(torch.cat(parts), full.output, atol=1e-6, rtol=0)
    for name, st in full.state.nodes.items():
        if st is not None:
            for a, b in zip(st, state.nodes[name]):
                assert torch.allclose(a, b, atol=1e-6, rtol=0), name


def test_detach_state_preserves_structure():
    v = torch.ones(2, 3, requires_grad=True) * 2.0
    st = NetworkState({"lif": LIFState(v, v + 1, torch.zeros(2, 3)), "fc": None},
                      {"lif": [v, (v, None)]})
    d = detach_state(st)
    assert isinstance(d, NetworkState) and isinstance(d.nodes["lif"], LIFState)
    assert d.nodes["fc"] is None
    assert not d.nodes["lif"].v.requires_grad and d.nodes["lif"].v.data_ptr() == v.data_ptr()
    assert isinstance(d.previous["lif"], list) and isinstance(d.previous["lif"][1], tuple)
    assert d.previous["lif"][1][1] is None and not d.previous["lif"][1][0].requires_grad
    assert detach_state(None) is None and detach_state(3) == 3


def test_per_window_updates_match_a_manual_loop(classifier):
    x, y = _data()
    sim_a = classifier()
    sim_b = copy.deepcopy(sim_a)
    opt_a = torch.optim.SGD(sim_a.parameters(), lr=0.05)
    opt_b = torch.optim.SGD(sim_b.parameters(), lr=0.05)
    tbptt_step(sim_a, x, y, per_step_mse, opt_a, window=8, sequence_targets=True, update="window")
    state = None
    for t0 in range(0, T, 8):
        opt_b.zero_grad()
        res = sim_b.run(x[t0:t0 + 8], state=state)
        per_step_mse(res.output, y[t0:t0 + 8]).backward()
        opt_b.step()
        state = detach_state(res.state)
    for (n, a), b in zip(sim_a.named_parameters(), sim_b.parameters()):
        assert torch.equal(a, b), n
    before = [p.clone() for p in sim_a.parameters()]
    # update="sequence": a single step with the summed window gradients
    res = tbptt_step(sim_a, x, y, per_step_mse, opt_a, window=8, sequence_targets=True, update="sequence")
    assert len(res.window_losses) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, sim_a.parameters()))


def test_bptt_step_with_class_labels(classifier):
    from neurosim.training import membrane_cross_entropy
    sim = classifier()
    x, _ = _data()
    labels = torch.tensor([0, 1, 1, 0])
    w0 = sim.graph.nodes["fc2"].weight.clone()
    res = bptt_step(sim, x, labels, membrane_cross_entropy, torch.optim.SGD(sim.parameters(), lr=0.1))
    assert res.outputs["out"].shape == (T, B, 2) and len(res.window_losses) == 1
    assert not torch.equal(sim.graph.nodes["fc2"].weight, w0)


def test_bad_arguments_raise_before_running(classifier):
    sim = classifier()
    x, y = _data()
    with pytest.raises(ValueError, match="window"):
        tbptt_step(sim, x, y, per_step_mse, window=0)
    with pytest.raises(ValueError, match="update"):
        tbptt_step(sim, x, y, per_step_mse, window=4, update="epoch")
    with pytest.raises(ValueError, match="sequence_targets"):
        tbptt_step(sim, x, y[:5], per_step_mse, window=4, sequence_targets=True)
    with pytest.raises(TypeError, match="optimizer"):
        tbptt_step(sim, x, y, per_step_mse, optimizer="sgd", window=4)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        tbptt_step(sim, x[0, 0], y, per_step_mse, window=4)
