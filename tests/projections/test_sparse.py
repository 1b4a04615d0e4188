"""Dense and Sparse projections: event-driven path == dense path, construction, gradients, ops."""
import pytest
import torch

from neurosim import Dense, Sparse

ATOL = 1e-5


def _inputs(kind, n, features, gen):
    if kind == "binary":
        return (torch.rand(n, features, generator=gen) < 0.03).float()
    if kind == "graded":
        x = torch.randn(n, features, generator=gen)
        return x * (torch.rand(n, features, generator=gen) < 0.03)
    return torch.zeros(n, features)


def _both_paths(node, x):
    with torch.no_grad():
        node.event_driven = True
        ev = node.propagate(x)
        node.event_driven = False
        dense = node.propagate(x)
        node.event_driven = "auto"
    return ev, dense


@pytest.mark.parametrize("kind", ["binary", "graded", "zeros"])
@pytest.mark.parametrize("rows", [1, 7])
def test_dense_event_path_equals_dense_path(kind, rows):
    gen = torch.Generator().manual_seed(0)
    fc = Dense(120, 30, bias=True)
    x = _inputs(kind, rows, 120, gen)
    ev, dense = _both_paths(fc, x)
    assert ev.shape == dense.shape == (rows, 30)
    torch.testing.assert_close(ev, dense, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["binary", "graded", "zeros"])
@pytest.mark.parametrize("rows", [1, 7])
@pytest.mark.parametrize("ell", [True, False])
def test_sparse_event_path_equals_dense_path(kind, rows, ell):
    gen = torch.Generator().manual_seed(1)
    fc = Sparse.random(150, 40, p=0.1, seed=3, bias=True)
    fc._use_ell = ell                      # padded table and CSR-segment gathers
    x = _inputs(kind, rows, 150, gen)
    ev, dense = _both_paths(fc, x)
    torch.testing.assert_close(ev, dense, atol=ATOL, rtol=0)
    torch.testing.assert_close(dense, x @ fc.to_dense().detach().t() + fc.bias.detach(), atol=ATOL, rtol=0)


def test_sparse_from_coo_equals_dense_with_equivalent_matrix():
    pre = [0, 2, 1, 4, 4, 3, 0]
    post = [1, 1, 0, 2, 0, 2, 1]           # (0 -> 1) appears twice: the two synapses add
    w = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 0.1]
    sp = Sparse(5, 3, pre=pre, post=post, weight=w)
    dense_w = torch.zeros(3, 5)
    for i, j, v in zip(pre, post, w):
        dense_w[j, i] += v
    torch.testing.assert_close(sp.to_dense().detach(), dense_w)
    fc = Dense(5, 3, weight=dense_w)
    x = (torch.rand(4, 6, 5) < 0.4).float()
    with torch.no_grad():
        torch.testing.assert_close(sp.forward_sequence(x), fc.forward_sequence(x), atol=ATOL, rtol=0)
        y_sp, _ = sp.step(x[0], None, 1e-3)
        torch.testing.assert_close(y_sp, x[0] @ dense_w.t(), atol=ATOL, rtol=0)
    # stored order is by presynaptic neuron, and row_ptr indexes it
    assert torch.all(sp.pre[1:] >= sp.pre[:-1])
    assert sp.row_ptr.tolist() == [0, 2, 3, 4, 5, 7]


def test_sparse_from_mask_and_from_dense():
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(6, 9, generator=gen)
    mask = torch.rand(6, 9, generator=gen) < 0.3
    a = Sparse(9, 6, mask=mask, weight=w)
    torch.testing.assert_close(a.to_dense().detach(), w * mask)
    assert a.nnz == int(mask.sum())
    b = Sparse.from_dense(w * mask)
    torch.testing.assert_close(b.to_dense().detach(), w * mask)
    assert torch.equal(b.mask(), mask)
    c = Sparse(9, 6, mask=mask, weight=0.5)
    assert torch.all(c.weight == 0.5)


def test_sparse_random_density_and_seed():
    a = Sparse.random(300, 200, p=0.05, seed=7)
    b = Sparse.random(300, 200, p=0.05, seed=7)
    c = Sparse.random(300, 200, p=0.05, seed=8)
    assert torch.equal(a.pre, b.pre) and torch.equal(a.post, b.post)
    assert not (a.pre.numel() == c.pre.numel() and torch.equal(a.pre, c.pre) and torch.equal(a.post, c.post))
    n = 300 * 200
    density = a.nnz / n
    assert abs(density - 0.05) < 4 * (0.05 * 0.95 / n) ** 0.5       # within 4 sigma
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    w1 = Sparse.random(50, 50, 0.2, weight=lambda k, g: torch.rand(k, generator=g), generator=g1)
    w2 = Sparse.random(50, 50, 0.2, weight=lambda k, g: torch.rand(k, generator=g), generator=g2)
    assert torch.equal(w1.weight, w2.weight)
    no_self = Sparse.random(60, 60, p=0.5, seed=1, allow_autapses=False)
    assert not torch.any(no_self.pre == no_self.post)
    assert Sparse.random(10, 10, p=0.0, seed=0).nnz == 0
    assert Sparse.random(10, 8, p=1.0, seed=0).nnz == 80


def test_sparse_weight_gradient_equals_masked_dense_gradient():
    gen = torch.Generator().manual_seed(4)
    sp = Sparse.random(40, 25, p=0.2, seed=9)
    fc = Dense(40, 25, weight=sp.to_dense().detach())
    x = torch.rand(3, 40, generator=gen, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    g = torch.randn(3, 25, generator=gen)
    (sp.propagate(x) * g).sum().backward()
    (fc.propagate(x2) * g).sum().backward()
    torch.testing.assert_close(sp.weight.grad, fc.weight.grad[sp.post, sp.pre], atol=ATOL, rtol=0)
    torch.testing.assert_close(x.grad, x2.grad, atol=ATOL, rtol=0)


def test_sparse_gradcheck_double():
    sp = Sparse(4, 3, pre=[0, 1, 3, 3, 0], post=[0, 2, 1, 1, 0]).double()   # with repeated pairs
    x = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: _call_with_weight(sp, x, w), (x, sp.weight.detach().clone().requires_grad_(True)))


def _call_with_weight(sp, x, w):
    from neurosim.projections.sparse import sparse_linear
    return sparse_linear(x, w, sp.structure())


def test_event_path_used_only_without_autograd():
    sp = Sparse.random(50, 20, p=0.2, seed=0, event_threshold=0.05)
    x = (torch.rand(2, 50) < 0.02).float()
    assert not sp.use_event_path(x)                 # weight requires grad
    with torch.no_grad():
        assert sp.use_event_path(x)
        assert not sp.use_event_path(torch.ones(2, 50))   # dense input in "auto" mode


def test_count_ops_is_spikes_times_fan_out():
    gen = torch.Generator().manual_seed(6)
    x = (torch.rand(5, 3, 80, generator=gen) < 0.1).float()      # [T, batch, in]
    fc = Dense(80, 30)
    ops = fc.count_ops(x, None)
    assert int(ops["synops"]) == int(x.sum()) * 30
    sp = Sparse.random(80, 30, p=0.15, seed=2)
    fan_out = sp.to_dense().detach().ne(0).sum(0)                 # per presynaptic neuron
    ops = sp.count_ops(x, None)
    assert int(ops["synops"]) == int((x.reshape(-1, 80) * fan_out).sum())
    assert int(ops["macs"]) == 15 * sp.nnz
    sp._use_ell = False                   # the CSR-segment event path touches exactly these synapses
    with torch.no_grad():
        targets, _ = sp._event_targets(x.reshape(-1, 80), 30 + sp._max_fan_out)
    assert targets.numel() == int(ops["synops"])
    # fixed fan-out k: synops = spikes x k exactly
    k = 4
    pre = torch.arange(80).repeat_interleave(k)
    post = torch.randint(0, 30, (80 * k,), generator=gen)
    sp = Sparse(80, 30, pre=pre, post=post)
    assert int(sp.count_ops(x, None)["synops"]) == int(x.sum()) * k


def test_sparse_without_synapses_and_checkpoints():
    empty = Sparse.random(10, 4, p=0.0, seed=0)
    x = torch.ones(3, 10)
    with torch.no_grad():
        ev, dense = _both_paths(empty, x)
    assert torch.all(ev == 0) and torch.all(dense == 0)
    a, b = Sparse.random(20, 10, 0.3, seed=1), Sparse.random(20, 10, 0.3, seed=1)
    with torch.no_grad():
        a.weight.mul_(2.0)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(RuntimeError, match="connectivity"):
        Sparse.random(20, 10, 0.3, seed=2).load_state_dict(a.state_dict())


def test_sparse_bad_input_raises():
    with pytest.raises(IndexError, match=r"pre\[1\] = 5 is out of range for 5"):
        Sparse(5, 3, pre=[0, 5], post=[0, 1])
    with pytest.raises(IndexError, match="post"):
        Sparse(5, 3, pre=[0, 1], post=[0, -1])
    with pytest.raises(ValueError, match="same length"):
        Sparse(5, 3, pre=[0, 1], post=[0])
    with pytest.raises(ValueError, match="mask must have shape"):
        Sparse(5, 3, mask=torch.ones(5, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="one value per synapse"):
        Sparse(5, 3, pre=[0, 1], post=[0, 1], weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="either pre/post"):
        Sparse(5, 3, pre=[0], post=[0], mask=torch.ones(3, 5))
    with pytest.raises(ValueError, match="pre=..., post=..."):
        Sparse(5, 3)
    with pytest.raises(TypeError, match="integer"):
        Sparse(5, 3, pre=[0.5], post=[0])
    with pytest.raises(ValueError, match="probability"):
        Sparse.random(5, 5, p=1.5)
    with pytest.raises(ValueError, match="autapses"):
        Sparse.random(5, 4, p=0.5, allow_autapses=False)
    with pytest.raises(ValueError, match="in_features"):
        Sparse(0, 3, pre=[], post=[])
    with pytest.raises(ValueError, match="Dense weight"):
        Dense(4, 3, weight=torch.zeros(4, 3))


@pytest.mark.parametrize("event", [True, False])
def test_float64_weights_stay_float64(event):
    """A float64 weight keeps its precision (as in Dense): float64 outputs equal to a float64
    dense reference far below float32 rounding."""
    gen = torch.Generator().manual_seed(8)
    w = torch.randn(30, 50, dtype=torch.float64, generator=gen) * (1 + 1e-9)
    mask = torch.rand(30, 50, generator=gen) < 0.3
    sp = Sparse(50, 30, mask=mask, weight=w, bias=True)
    assert sp.weight.dtype == torch.float64 and sp.bias.dtype == torch.float64
    assert Sparse(50, 30, mask=mask).weight.dtype == torch.get_default_dtype()
    assert Sparse(50, 30, mask=mask, weight=torch.ones(30, 50, dtype=torch.long)).weight.dtype == torch.float32
    x = (torch.rand(4, 50, generator=gen) < 0.2).double() * torch.rand(4, 50, dtype=torch.float64, generator=gen)
    sp.event_driven = event
    with torch.no_grad():
        y = sp.propagate(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, x @ (w * mask).t(), atol=1e-13, rtol=0)
    fc = Dense(50, 30, weight=w * mask)
    assert fc.weight.dtype == torch.float64
