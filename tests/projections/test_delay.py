"""Synaptic delays: shifts, per-synapse reference loop, step_sequence == step loop, continuation."""
import pytest
import torch

from neurosim import Dense, Graph, Population, Simulator, Sparse
from neurosim.projections import Delay, DelayState

ATOL = 1e-5


def _spikes(t, b, n, seed=0, p=0.1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, n, generator=gen) < p).float()


def _step_loop(node, x_seq, state=None):
    state = node.initial_state(x_seq.shape[1]) if state is None else state
    ys = []
    for x in x_seq:
        y, state = node.step(x, state, 1e-3)
        ys.append(y)
    return torch.stack(ys), state


def _make(kind, delay, seed=0):
    torch.manual_seed(seed)
    if kind == "dense":
        return Dense(20, 6, delay=delay)
    gen = torch.Generator().manual_seed(seed)
    sp = Sparse.random(20, 6, p=0.4, seed=seed)
    if isinstance(delay, torch.Tensor):                     # [out, in] -> per stored synapse
        delay = delay[sp.post, sp.pre]
    return Sparse(20, 6, pre=sp.pre, post=sp.post, weight=torch.randn(sp.nnz, generator=gen), delay=delay)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("event", [True, False])
def test_uniform_delay_is_a_shift(kind, event):
    x = _spikes(15, 3, 20)
    d = 4
    delayed, plain = _make(kind, d), _make(kind, 0)
    plain.load_state_dict(delayed.state_dict())
    assert plain.stateless and not delayed.stateless and delayed.supports_sequence
    for node in (delayed, plain):
        node.event_driven = event
    with torch.no_grad():
        ref = plain.forward_sequence(x)
        y, state = _step_loop(delayed, x)
        y_seq, state_seq = delayed.step_sequence(x, delayed.initial_state(3), 1e-3)
    expected = torch.cat([torch.zeros(d, 3, 6), ref[:-d]])
    torch.testing.assert_close(y, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(y_seq, expected, atol=ATOL, rtol=0)
    # what is still in flight: the last d inputs, arriving 1 .. d steps later
    torch.testing.assert_close(state.buffer, ref[-d:], atol=ATOL, rtol=0)
    torch.testing.assert_close(state_seq.buffer, ref[-d:], atol=ATOL, rtol=0)


def _naive_reference(w, delay, x):
    """y[t, b, j] = sum_i w[j, i] x[t - delay[j, i], b, i], a plain loop over synapses."""
    t_steps, batch, n_in = x.shape
    n_out = w.shape[0]
    y = torch.zeros(t_steps, batch, n_out, dtype=torch.float64)
    for t in range(t_steps):
        for j in range(n_out):
            for i in range(n_in):
                s = t - int(delay[j, i])
                if s >= 0 and w[j, i] != 0:
                    y[t, :, j] += float(w[j, i]) * x[s, :, i].double()
    return y.float()


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("event", [True, False])
def test_per_synapse_delays_match_naive_loop(kind, event):
    gen = torch.Generator().manual_seed(3)
    delay = torch.randint(0, 5, (6, 20), generator=gen)
    delay[0, 0] = 7                                       # non-contiguous delay values
    node = _make(kind, delay, seed=1)
    node.event_driven = event
    x = _spikes(12, 2, 20, seed=2, p=0.3)
    w = node.weight.detach() if kind == "dense" else node.to_dense().detach()
    ref = _naive_reference(w, delay, x)
    with torch.no_grad():
        y, _ = _step_loop(node, x)
        y_seq, _ = node.step_sequence(x, node.initial_state(2), 1e-3)
    torch.testing.assert_close(y, ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(y_seq, ref, atol=ATOL, rtol=0)
    if kind == "sparse" and event:                            # CSR-segment gathers as well
        node._use_ell = False
        with torch.no_grad():
            torch.testing.assert_close(_step_loop(node, x)[0], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_continuing_from_a_state_equals_one_run(kind):
    gen = torch.Generator().manual_seed(5)
    node = _make(kind, torch.randint(0, 6, (6, 20), generator=gen), seed=2)
    x = _spikes(16, 2, 20, seed=4, p=0.3)
    with torch.no_grad():
        y_all, s_all = node.step_sequence(x, None, 1e-3)
        y1, s1 = node.step_sequence(x[:8], None, 1e-3)
        y2, s2 = node.step_sequence(x[8:], s1, 1e-3)
        y3, s3 = _step_loop(node, x[8:], s1)            # the same state reused: never modified in place
    torch.testing.assert_close(torch.cat([y1, y2]), y_all, atol=ATOL, rtol=0)
    torch.testing.assert_close(y3, y2, atol=ATOL, rtol=0)
    torch.testing.assert_close(s2.buffer, s_all.buffer, atol=ATOL, rtol=0)
    torch.testing.assert_close(s3.buffer, s_all.buffer, atol=ATOL, rtol=0)


def test_delayed_sequence_short_run_and_gradient():
    node = Dense(5, 3, delay=torch.tensor([[0, 1, 2, 3, 4]] * 3), bias=True)
    x = torch.rand(2, 1, 5, requires_grad=True)               # T = 2 < max delay
    y_seq, s = node.step_sequence(x, None, 1e-3)
    y_loop, s_loop = _step_loop(node, x)
    torch.testing.assert_close(y_seq, y_loop)
    torch.testing.assert_close(s.buffer, s_loop.buffer)
    assert s.buffer.shape == (4, 1, 3)
    g = torch.randn(2, 1, 3)
    (y_seq * g).sum().backward()                               # differentiable through the shifts
    grads = node.weight.grad.clone(), x.grad.clone()
    assert torch.all(grads[0][:, 2:] == 0)                     # delays >= 2 never arrive within T = 2
    node.weight.grad, x.grad = None, None
    (y_loop * g).sum().backward()                              # the step loop gives the same gradients
    torch.testing.assert_close(node.weight.grad, grads[0])
    torch.testing.assert_close(x.grad, grads[1])


def test_delayed_projection_in_the_simulator_both_schedules():
    g = Graph().add_input("x", 20)
    g.add("fc", Sparse.random(20, 10, p=0.5, seed=1, weight=0.8, delay=lambda n, gen: torch.randint(0, 3, (n,), generator=gen)))
    g.add("lif", Population("lif", 10))
    g.add("rec", Dense(10, 10, delay=2))                        # back-edge: arrives 2 + 1 steps later
    g.chain("x", "fc", "lif")
    g.connect("lif", "rec", back=True).connect("rec", "lif")
    x = _spikes(30, 2, 20, seed=6, p=0.3)
    outs = {}
    with torch.no_grad():
        for schedule in ("step", "layer"):
            outs[schedule] = Simulator(g, dt=1e-3, schedule=schedule).run(x).output
    torch.testing.assert_close(outs["step"], outs["layer"])
    assert outs["step"].sum() > 0


def test_back_edge_adds_one_step():
    g = Graph().add_input("x", 1)
    g.add("a", Dense(1, 1, weight=torch.ones(1, 1)))
    g.add("fc", Dense(1, 1, weight=torch.ones(1, 1), delay=2))
    g.add("sum", Dense(1, 1, weight=torch.ones(1, 1)))
    g.chain("x", "a")
    g.connect("a", "fc", back=True).connect("fc", "sum").connect("x", "sum")
    g.add_output("sum")
    x = torch.zeros(8, 1, 1)
    x[1] = 1.0
    y = Simulator(g, dt=1e-3).run(x).output[:, 0, 0]
    assert y.tolist() == [0, 1, 0, 0, 1, 0, 0, 0]               # direct at 1, through the loop at 1 + 1 + 2


def test_delay_node():
    x = _spikes(10, 2, 4, seed=1, p=0.5)
    line = Delay(4, 3)
    y, _ = line.step_sequence(x, None, 1e-3)
    torch.testing.assert_close(y, torch.cat([torch.zeros(3, 2, 4), x[:-3]]))
    per = Delay(4, torch.tensor([0, 1, 2, 5]))
    y, s = per.step_sequence(x, None, 1e-3)
    y2, _ = _step_loop(per, x)
    torch.testing.assert_close(y, y2)
    for i, d in enumerate([0, 1, 2, 5]):
        torch.testing.assert_close(y[d:, :, i], x[:10 - d, :, i])
    assert isinstance(s, DelayState) and s.buffer.shape == (5, 2, 4)
    assert Delay(4, 0).stateless


def test_bad_delays_raise():
    with pytest.raises(ValueError, match="delay must be >= 0"):
        Dense(3, 2, delay=-1)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        Dense(3, 2, delay=torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="whole numbers"):
        Dense(3, 2, delay=torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        Sparse(3, 2, pre=[0, 1], post=[1, 1], delay=[1, -2])
    with pytest.raises(ValueError, match="one value per synapse"):
        Sparse(3, 2, pre=[0, 1], post=[1, 1], delay=[1, 2, 3])
    with pytest.raises(TypeError, match="bool"):
        Dense(3, 2, delay=True)
    with pytest.raises(RuntimeError, match="step_sequence"):
        Dense(3, 2, delay=1).forward_sequence(torch.zeros(2, 1, 3))


def _flat_state(state):
    """Every tensor of a NetworkState, by name, for a bitwise comparison."""
    tensors = {}
    for name, node_state in state.nodes.items():
        for i, t in enumerate(node_state or ()):
            tensors[f"{name}.{i}"] = t
    tensors.update({f"previous.{k}": v for k, v in state.previous.items()})
    return tensors


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("event", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_layer_and_step_schedules_are_bitwise_equal_with_per_synapse_delays(kind, event, grad):
    """The sequence path adds each arrival slot's contributions in the step path's order (the
    largest delay, i.e. the earliest emission, first), so both schedules agree bit for bit
    wherever the propagation itself is row by row (event paths, Sparse's CSR product). Dense's
    matmul (training, or ``event_driven=False``) is one BLAS call on T x batch rows in the layer
    schedule and on batch rows per step: BLAS may round those differently in the last bits."""
    gen = torch.Generator().manual_seed(11)
    delay = torch.randint(0, 6, (30, 40), generator=gen)
    delay[0, 0] = 9                                             # non-contiguous delay values
    if kind == "dense":
        fc = Dense(40, 30, weight=torch.randn(30, 40, generator=gen) * 0.7, delay=delay)
    else:
        sp = Sparse.random(40, 30, p=0.5, seed=2)
        fc = Sparse(40, 30, pre=sp.pre, post=sp.post, weight=torch.randn(sp.nnz, generator=gen) * 0.7,
                    delay=delay[sp.post, sp.pre])
    fc.event_driven = event
    g = Graph().add_input("x", 40)
    g.add("fc", fc).add("lif", Population("lif", 30)).chain("x", "fc", "lif")
    x = _spikes(40, 3, 40, seed=12, p=0.3)
    runs = {}
    with torch.set_grad_enabled(grad):
        for schedule in ("step", "layer"):
            runs[schedule] = Simulator(g, dt=1e-3, schedule=schedule).run(x)
    assert runs["step"].output.sum() > 0, "the network must spike for the comparison to mean something"
    step_state, layer_state = _flat_state(runs["step"].state), _flat_state(runs["layer"].state)
    assert step_state.keys() == layer_state.keys() and "fc.0" in step_state
    pairs = [(runs["step"].output, runs["layer"].output, "output")]
    pairs += [(step_state[name], layer_state[name], name) for name in step_state]
    row_by_row = kind == "sparse" or (event and not grad)
    for a, b, name in pairs:
        if row_by_row:
            assert torch.equal(a, b), name
        else:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)


def test_synaptic_delay_steps_gives_every_synapse_its_delay():
    from neurosim.projections import SynapticDelay
    per_synapse = torch.tensor([[0, 3], [2, 3]])
    assert torch.equal(SynapticDelay(per_synapse, (2, 2)).steps((2, 2)), per_synapse)
    assert torch.equal(SynapticDelay(4, (2, 3)).steps((2, 3)), torch.full((2, 3), 4))
