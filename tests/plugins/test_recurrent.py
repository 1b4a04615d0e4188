"""Recurrent baselines: the LSTMCell/GRUCell block in a Simulator against torch's nn.LSTM/nn.GRU on
the whole sequence, the step and layer schedules, MAC counts, the recurrent LIF graph against its
equations unrolled by hand, BPTT and truncated BPTT (against nn.LSTM run in detached chunks),
training above chance on a temporal-order task, and bad input."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.plugins import Block
from neurosim.plugins.recurrent import (CELLS, GRUState, LSTMState, RecurrentCell, RecurrentClassifier,
                                        RecurrentConfig, recurrent_block, recurrent_lif)
from neurosim.training import membrane_cross_entropy, tbptt_step


def order_task(n, seed, steps=20):
    """Two temporal patterns on 2 input channels: class 0 is a burst on channel 0 (steps 2-6) then
    on channel 1 (steps 11-15), class 1 the other order; Bernoulli spikes (p = 0.8 in a burst,
    0.05 background). Returns x ``[steps, n, 2]`` (0/1 floats) and labels ``[n]``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (torch.rand(steps, n, 2, generator=g) < 0.05).float()
    rows = torch.arange(n)
    for (t0, t1), channel in (((2, 7), y), ((11, 16), 1 - y)):
        burst = (torch.rand(t1 - t0, n, generator=g) < 0.8).float()
        x[t0:t1, rows, channel] = torch.maximum(x[t0:t1, rows, channel], burst)
    return x, y


def config(cell="lstm", **kw):
    return RecurrentConfig(**{"input_size": 3, "hidden_size": 5, "output_size": 2, "num_layers": 2,
                              "cell": cell, **kw})


def torch_reference(rnn, readout, x):
    """torch's own layer over the whole sequence, then the readout: ``[T, B, C]``."""
    h, _ = rnn(x)
    return readout(h)


# ---------------------------------------------------------------- the cell block equals nn.LSTM / nn.GRU
@pytest.mark.parametrize("cell", CELLS)
def test_cell_block_in_simulator_equals_torch_rnn_on_the_whole_sequence(cell):
    torch.manual_seed(0)
    cfg = config(cell)
    clf = RecurrentClassifier(cfg).double()
    x = torch.randn(9, 4, 3, dtype=torch.float64)
    want = torch_reference(clf.rnn, clf.readout, x)                     # nn.LSTM / nn.GRU, cuDNN-style
    g = ns.Graph.sequential(3, ("rnn", recurrent_block(cfg, share=clf)))
    outs = {s: ns.Simulator(g, schedule=s).run(x, monitors=[ns.Monitor("rnn", "h")]) for s in ("step", "layer")}
    torch.testing.assert_close(outs["step"].output, want, rtol=0, atol=1e-12)
    # the two schedules step a stateful block the same way: identical, bit for bit
    assert torch.equal(outs["step"].output, outs["layer"].output)
    assert torch.equal(outs["step"].records["rnn"]["h"], outs["layer"].records["rnn"]["h"])
    # the state the block carries is torch's final hx, batch first
    hx = clf.rnn(x)[1]
    final = outs["layer"].state.nodes["rnn"]
    torch.testing.assert_close(final.h, (hx[0] if cell == "lstm" else hx).transpose(0, 1), rtol=0, atol=1e-12)
    if cell == "lstm":
        torch.testing.assert_close(final.c, hx[1].transpose(0, 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_sharing_a_plain_torch_rnn_gives_its_hidden_states(cell):
    """Without readout the block's output is h of the top layer, as nn.LSTM/nn.GRU return it."""
    torch.manual_seed(1)
    cfg = config(cell, num_layers=3, bias=False)
    rnn = torch.nn.LSTM(3, 5, 3, bias=False) if cell == "lstm" else torch.nn.GRU(3, 5, 3, bias=False)
    x = torch.randn(7, 2, 3)
    g = ns.Graph.sequential(3, ("rnn", recurrent_block(cfg, readout=False, share=rnn)))
    torch.testing.assert_close(ns.Simulator(g).run(x).output, rnn(x)[0], rtol=1e-5, atol=1e-6)
    # shared, not copied: a change to the torch layer reaches the block
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(2.0)
    torch.testing.assert_close(ns.Simulator(g).run(x).output, rnn(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell,gates", [("lstm", 4), ("gru", 3)])
def test_block_macs_equal_the_analytic_count(cell, gates):
    """Per sample and step: gates H (I + H) for layer 1, gates H (H + H) above, H C for the readout."""
    cfg = config(cell)
    g = ns.Graph.sequential(3, ("rnn", recurrent_block(cfg)))
    steps, batch = 6, 4
    ops = ns.Simulator(g).run(torch.rand(steps, batch, 3), count_ops=True).ops["rnn"]
    per_step = gates * 5 * (3 + 5) + gates * 5 * (5 + 5) + 5 * 2
    assert float(ops["macs"]) == steps * batch * per_step


# ---------------------------------------------------------------- the spiking partner
def test_recurrent_lif_graph_matches_its_equations_unrolled_by_hand():
    """float64: I = W_in x_t + W_rec s_{t-1}; v = a v + (1-a) I; s = H(v - thr); v -= thr s;
    u = a_r u + (1-a_r) W_out s. The hand loop shares nothing with the engine but the weights."""
    cfg = RecurrentConfig(input_size=3, hidden_size=12, output_size=2, recurrent_scale=3.0)
    g = recurrent_lif(cfg, seed=3).double()
    sim = ns.Simulator(g, dt=1e-3)
    x = (torch.rand(30, 4, 3, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    res = sim.run(x, monitors=[ns.Monitor("lif1", "spikes")])
    w_in, w_rec, w_out = (g.nodes[n].weight.detach() for n in ("fc1", "rec1", "fc_out"))
    a, a_r = math.exp(-1e-3 / cfg.tau_mem), math.exp(-1e-3 / cfg.tau_readout)
    v, s, u = torch.zeros(4, 12, dtype=torch.float64), torch.zeros(4, 12, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)
    spikes, us = [], []
    for x_t in x:
        v = a * v + (1 - a) * (x_t @ w_in.T + s @ w_rec.T)
        s = (v > cfg.v_threshold).double()
        v = v - cfg.v_threshold * s
        u = a_r * u + (1 - a_r) * (s @ w_out.T)
        spikes.append(s)
        us.append(u)
    assert 0 < float(torch.stack(spikes).mean()) < 0.5, "the check needs some spikes"
    torch.testing.assert_close(res.records["lif1"]["spikes"], torch.stack(spikes), rtol=0, atol=0)
    torch.testing.assert_close(res.output, torch.stack(us), rtol=1e-12, atol=1e-12)


def test_recurrent_lif_has_the_documented_nodes_and_back_edges():
    g = recurrent_lif(RecurrentConfig(input_size=2, hidden_size=8, num_layers=2), seed=0)
    assert set(g.nodes) == {"fc1", "lif1", "rec1", "fc2", "lif2", "rec2", "fc_out", "readout"}
    back = {(e.source, e.target) for e in g.edges if e.back}
    assert back == {("lif1", "rec1"), ("lif2", "rec2")}
    assert g.output_names() == ["readout"]
    same, other = recurrent_lif(RecurrentConfig(2, 8, num_layers=2), seed=0), recurrent_lif(RecurrentConfig(2, 8, num_layers=2), seed=1)
    assert torch.equal(same.nodes["rec2"].weight, g.nodes["rec2"].weight)
    assert not torch.equal(other.nodes["rec2"].weight, g.nodes["rec2"].weight)


# ---------------------------------------------------------------- forward, backward, BPTT, TBPTT
@pytest.mark.parametrize("cell", CELLS)
def test_classifier_and_block_forward_backward_through_time(cell):
    """Gradients of the last step's output reach the first step's input (BPTT) and every weight,
    equal for the whole-sequence classifier and the block stepped in a Simulator."""
    torch.manual_seed(2)
    cfg = config(cell)
    clf = RecurrentClassifier(cfg).double()
    twin = copy.deepcopy(clf)
    x = torch.randn(8, 3, 3, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    clf(x)[0][-1].sum().backward()
    g = ns.Graph.sequential(3, ("rnn", recurrent_block(cfg, share=twin)))
    ns.Simulator(g).run(x2).output[-1].sum().backward()
    assert float(x.grad[0].abs().sum()) > 0, "no gradient reached step 0"
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-10, atol=1e-12)
    for (name, p), (_, q) in zip(clf.named_parameters(), twin.named_parameters()):
        assert float(p.grad.abs().sum()) > 0, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_recurrent_lif_backward_through_the_back_edge():
    cfg = RecurrentConfig(input_size=2, hidden_size=16, recurrent_scale=2.0)
    sim = ns.Simulator(recurrent_lif(cfg, seed=0))
    x, y = order_task(16, 0)
    membrane_cross_entropy(sim.run(x).output, y, mode="last").backward()
    for name in ("fc1", "rec1", "fc_out"):
        grad = sim.graph.nodes[name].weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0, f"no gradient reached {name}"


def per_step_loss(y, target):
    return ((y - target) ** 2).sum()


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_of_the_block_equals_nn_rnn_run_in_detached_chunks(cell):
    """tbptt_step over the Simulator (windows of 4, state carried and detached) against the
    classifier's nn.LSTM/nn.GRU run chunk by chunk with hx detached: same outputs, same summed
    gradients; and the truncation matters (full BPTT gives other gradients)."""
    torch.manual_seed(3)
    cfg = config(cell)
    clf = RecurrentClassifier(cfg).double()
    ref, full = copy.deepcopy(clf), copy.deepcopy(clf)
    x = torch.randn(12, 3, 3, dtype=torch.float64)
    target = torch.randn(12, 3, 2, dtype=torch.float64)
    sim = ns.Simulator(ns.Graph.sequential(3, ("rnn", recurrent_block(cfg, share=clf))))
    res = tbptt_step(sim, x, target, per_step_loss, None, window=4, sequence_targets=True)
    hx, ys = None, []
    for t0 in range(0, 12, 4):
        y, hx = ref(x[t0:t0 + 4], hx)
        per_step_loss(y, target[t0:t0 + 4]).backward()
        hx = tuple(h.detach() for h in hx) if isinstance(hx, tuple) else hx.detach()
        ys.append(y.detach())
    torch.testing.assert_close(res.outputs["rnn"], torch.cat(ys), rtol=0, atol=1e-12)
    per_step_loss(full(x)[0], target).backward()
    for (name, p), (_, q), (_, f) in zip(clf.named_parameters(), ref.named_parameters(), full.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)
    hh = [(p.grad, f.grad) for (name, p), (_, f) in zip(clf.named_parameters(), full.named_parameters())
          if "weight_hh" in name]
    assert any(float((a - b).abs().max()) > 1e-6 for a, b in hh), "truncation changed nothing"


def test_truncated_bptt_of_the_recurrent_lif_keeps_the_forward_pass_and_learns():
    torch.manual_seed(0)
    sim = ns.Simulator(recurrent_lif(RecurrentConfig(input_size=2, hidden_size=16), seed=0))
    x, y = order_task(64, 0)
    with torch.no_grad():
        whole = sim.run(x).output
    opt = torch.optim.Adam(sim.parameters(), 0.2)
    loss = lambda v, labels: membrane_cross_entropy(v, labels, mode="last")   # noqa: E731
    first = tbptt_step(sim, x, y, loss, opt, window=10, update="sequence")
    torch.testing.assert_close(first.outputs["readout"], whole, rtol=1e-6, atol=1e-7)
    for _ in range(10):
        last = tbptt_step(sim, x, y, loss, opt, window=10, update="sequence")
    assert last.loss < first.loss - 0.1, (first.window_losses, last.window_losses)


# ---------------------------------------------------------------- training above chance
def accuracy(scores, labels):
    return float((scores.argmax(1) == labels).float().mean())


def train(model_step, params, lr, epochs=3, batch=32):
    x, y = order_task(128, 0)
    opt = torch.optim.Adam(params, lr)
    losses = []
    for _ in range(epochs):
        for b in range(0, 128, batch):
            opt.zero_grad()
            loss = model_step(x[:, b:b + batch], y[b:b + batch])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("cell", CELLS)
def test_lstm_and_gru_learn_the_temporal_order_above_chance(cell):
    torch.manual_seed(0)
    clf = RecurrentClassifier(RecurrentConfig(input_size=2, hidden_size=16, output_size=2, cell=cell))
    x_test, y_test = order_task(128, 1)
    with torch.no_grad():
        before = accuracy(clf(x_test)[0][-1], y_test)
    losses = train(lambda x, y: F.cross_entropy(clf(x)[0][-1], y), clf.parameters(), 2e-2)
    with torch.no_grad():
        after = accuracy(clf(x_test)[0][-1], y_test)
    assert after >= 0.8 and after > before, (before, after)
    assert sum(losses[-4:]) < sum(losses[:4])


def test_lstm_block_trained_in_the_simulator_learns_above_chance():
    torch.manual_seed(0)
    cfg = RecurrentConfig(input_size=2, hidden_size=16, output_size=2)
    sim = ns.Simulator(ns.Graph.sequential(2, ("rnn", recurrent_block(cfg))))
    train(lambda x, y: F.cross_entropy(sim.run(x).output[-1], y), sim.parameters(), 2e-2)
    x_test, y_test = order_task(128, 1)
    with torch.no_grad():
        assert accuracy(sim.run(x_test).output[-1], y_test) >= 0.8


def test_recurrent_lif_learns_the_temporal_order_above_chance():
    torch.manual_seed(0)
    sim = ns.Simulator(recurrent_lif(RecurrentConfig(input_size=2, hidden_size=16), seed=0), dt=1e-3)
    losses = train(lambda x, y: membrane_cross_entropy(sim.run(x).output, y, mode="last"), sim.parameters(), 0.2)
    x_test, y_test = order_task(128, 1)
    with torch.no_grad():
        after = accuracy(sim.run(x_test).output[-1], y_test)
    assert after >= 0.75, after
    assert sum(losses[-4:]) < sum(losses[:4])


# ---------------------------------------------------------------- state, devices, bad input
def test_cell_state_is_explicit_and_batch_first():
    cfg = config("lstm")
    cell = RecurrentCell(cfg)
    state = cell.initial_state(4, None, torch.float32)
    assert isinstance(state, LSTMState) and state.h.shape == state.c.shape == (4, 2, 5)
    assert isinstance(RecurrentCell(config("gru")).initial_state(4), GRUState)
    x = torch.randn(6, 4, 3)
    y1, s1 = cell.run(x)
    y2, s2 = cell.run(x)                       # no hidden state kept between calls
    assert torch.equal(y1, y2) and torch.equal(s1.h, s2.h)
    y3, _ = cell.run(x[3:], cell.run(x[:3])[1])
    torch.testing.assert_close(y3, y1[3:], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("cell", CELLS)
def test_cell_block_on_cuda_equals_nn_rnn(cell):
    torch.manual_seed(0)
    cfg = config(cell)
    clf = RecurrentClassifier(cfg).cuda()
    x = torch.randn(9, 4, 3, device="cuda")
    g = ns.Graph.sequential(3, ("rnn", recurrent_block(cfg, share=clf)))
    torch.testing.assert_close(ns.Simulator(g).run(x).output, clf(x)[0], rtol=1e-4, atol=1e-5)
    sim = ns.Simulator(recurrent_lif(RecurrentConfig(2, 8), seed=0).cuda())
    out = sim.run((torch.rand(10, 4, 2, device="cuda") < 0.3).float()).output
    out.sum().backward()
    assert out.device.type == "cuda" and sim.graph.nodes["rec1"].weight.grad is not None


@pytest.mark.parametrize("kwargs,word", [
    ({"input_size": 0}, "input_size"), ({"input_size": 2, "hidden_size": 2.5}, "hidden_size"),
    ({"input_size": 2, "cell": "rnn"}, "cell"), ({"input_size": 2, "num_layers": True}, "num_layers"),
    ({"input_size": 2, "tau_mem": 0.0}, "tau_mem"), ({"input_size": 2, "reset": "bounce"}, "reset"),
    ({"input_size": 2, "recurrent_scale": -1.0}, "recurrent_scale"),
])
def test_bad_config_is_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RecurrentConfig(**kwargs)


def test_bad_inputs_and_mismatched_sharing_are_named():
    cfg = config("lstm")
    with pytest.raises(ValueError, match=r"RecurrentClassifier.*input_size=3"):
        RecurrentClassifier(cfg)(torch.rand(5, 2, 4))
    with pytest.raises(ValueError, match=r"RecurrentCell.*input_size=3"):
        RecurrentCell(cfg)(torch.rand(2, 4), RecurrentCell(cfg).initial_state(2))
    with pytest.raises(TypeError, match="LSTMState"):
        RecurrentCell(cfg)(torch.rand(2, 3), torch.zeros(2, 2, 5))
    with pytest.raises(TypeError, match="nn.LSTM"):
        RecurrentCell(cfg, share=torch.nn.GRU(3, 5, 2))
    with pytest.raises(ValueError, match=r"share \(input, hidden, layers, bias\)"):
        RecurrentCell(cfg, share=torch.nn.LSTM(3, 6, 2))
    with pytest.raises(TypeError, match="RecurrentConfig"):
        recurrent_lif({"input_size": 2})
    with pytest.raises(ValueError, match=r"Block\(RecurrentCell\)"):     # wrong shapes for the block
        Block(RecurrentCell(cfg), 3, 7, mode="hybrid")
