"""Every way of changing a weight reaches the next propagation: Dense and Sparse, with and
without per-synapse delays, event and dense paths, autograd on and off.

Each case runs the projection once (so anything it might keep from the old weights exists),
changes the weight, runs again and compares with a projection built fresh from the new weights:
same code path, same values, so the outputs must be equal bit for bit."""
import pytest
import torch

from neurosim import Dense, Graph, Population, Simulator, Sparse

IN, OUT, T, BATCH = 24, 10, 6, 3


def _delays(kind, with_delay, gen):
    if not with_delay:
        return 0
    return torch.randint(0, 4, (OUT, IN), generator=gen)


def _build(kind, weight, delay, structure=None):
    """Dense from ``weight [out, in]``; Sparse over ``structure = (pre, post)`` with ``weight [nnz]``."""
    if kind == "dense":
        return Dense(IN, OUT, weight=weight, delay=delay)
    pre, post = structure
    if isinstance(delay, torch.Tensor):
        delay = delay[post, pre]
    return Sparse(IN, OUT, pre=pre, post=post, weight=weight, delay=delay)


def _original(kind, with_delay):
    gen = torch.Generator().manual_seed(0)
    delay = _delays(kind, with_delay, gen)
    if kind == "dense":
        return _build(kind, torch.randn(OUT, IN, generator=gen), delay), delay, None
    sp = Sparse.random(IN, OUT, p=0.4, seed=1)
    structure = (sp.pre, sp.post)
    return _build(kind, torch.randn(sp.nnz, generator=gen), delay, structure), delay, structure


def _run(node, x, event):
    """Outputs of a step loop and of step_sequence / forward_sequence (all on one graph of calls)."""
    node.event_driven = event
    state, ys = node.initial_state(BATCH, dtype=x.dtype), []
    for xt in x:
        y, state = node.step(xt, state, 1e-3)
        ys.append(y)
    seq, _ = node.step_sequence(x, node.initial_state(BATCH, dtype=x.dtype), 1e-3)
    return torch.stack(ys), seq


def _change(how, node):
    """Apply ``how`` to ``node.weight``; returns the new weight values (detached copy)."""
    w = node.weight
    gen = torch.Generator().manual_seed(7)
    other = torch.randn(w.shape, generator=gen, dtype=w.dtype)
    if how == "data_copy":
        w.data.copy_(other)
    elif how == "data_mul":
        w.data.mul_(3.0)
    elif how == "no_grad_inplace":
        with torch.no_grad():
            w.add_(other)
    elif how == "load_state_dict":
        state = node.state_dict()
        state["weight"] = other
        node.load_state_dict(state)
    elif how == "optimizer":
        w.grad = other.clone()
        torch.optim.SGD([w], lr=1.0).step()
        w.grad = None
    elif how == "to_float64":
        node.to(torch.float64)
    else:
        raise ValueError(how)
    return node.weight.detach().clone()


HOWS = ["data_copy", "data_mul", "no_grad_inplace", "load_state_dict", "optimizer", "to_float64"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("with_delay", [False, True])
@pytest.mark.parametrize("event", [True, False])
@pytest.mark.parametrize("grad", [False, True])
def test_changed_weight_propagates_like_a_fresh_projection(how, kind, with_delay, event, grad):
    node, delay, structure = _original(kind, with_delay)
    x = (torch.rand(T, BATCH, IN, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    with torch.set_grad_enabled(grad):
        before = _run(node, x, event)                     # fills whatever the projection keeps
    new_weight = _change(how, node)
    fresh = _build(kind, new_weight, delay, structure)
    assert fresh.weight.dtype == node.weight.dtype
    x = x.to(node.weight.dtype)
    with torch.set_grad_enabled(grad):
        after, expected = _run(node, x, event), _run(fresh, x, event)
    for got, want in zip(after, expected):
        assert got.dtype == node.weight.dtype
        assert torch.equal(got, want)
    if how == "to_float64":                                   # same values, now in float64
        torch.testing.assert_close(after[0], before[0].double(), atol=1e-5, rtol=0)
    else:
        assert not torch.equal(after[0], before[0])           # the change is visible at all


def _spike_counts(kind, scale_after_first_run):
    """Issue 5's example: input -> projection -> LIF; run without grad, scale the weight by 3
    through ``.data``, then count the spikes of a no-grad run and of an autograd run."""
    gen = torch.Generator().manual_seed(0)
    if kind == "dense":
        fc = Dense(200, 100, weight=torch.rand(100, 200, generator=gen) * 0.6)
    else:
        fc = Sparse.random(200, 100, p=0.3, weight=lambda k, g: torch.rand(k, generator=g) * 2.0, generator=gen)
    g = Graph().add_input("x", 200)
    g.add("fc", fc).add("lif", Population("lif", 100)).chain("x", "fc", "lif")
    sim = Simulator(g, dt=1e-3)
    x = (torch.rand(50, 1, 200, generator=gen) < 0.04).float()
    with torch.no_grad():
        sim.run(x)
    if scale_after_first_run:
        fc.weight.data.mul_(3.0)
    with torch.no_grad():
        no_grad = sim.run(x).output
    autograd = sim.run(x).output
    return no_grad, autograd


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_scaling_weight_data_reaches_the_no_grad_run(kind):
    no_grad, autograd = _spike_counts(kind, True)
    unscaled, _ = _spike_counts(kind, False)
    assert int(no_grad.sum()) == int(autograd.sum())
    assert torch.equal(no_grad, autograd)
    assert int(no_grad.sum()) > int(unscaled.sum())            # scaling by 3 does spike more


def test_dense_weight_layout_and_replacement():
    """The Parameter is column-major, so the event path's [in, out] table is a free view; a
    user's row-major replacement still propagates correctly (a copy per call)."""
    fc = Dense(IN, OUT)
    assert fc.weight.t().is_contiguous() and fc.weight_t().data_ptr() == fc.weight.data_ptr()
    w = torch.randn(OUT, IN, generator=torch.Generator().manual_seed(4))
    fc.weight = torch.nn.Parameter(w.clone())                  # row-major
    assert not fc.weight.t().is_contiguous()
    assert fc.weight_t().is_contiguous() and torch.equal(fc.weight_t(), w.t())
    x = (torch.rand(5, IN, generator=torch.Generator().manual_seed(5)) < 0.3).float()
    with torch.no_grad():
        fc.event_driven = True
        torch.testing.assert_close(fc.propagate(x), x @ w.t(), atol=1e-5, rtol=0)
