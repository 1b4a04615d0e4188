"""The fused LIF training kernel on compiled code (neurosim.compiled.training) against its torch ops.

The reference is the same kernel with the compiled kernels turned off (``compiled_kernels(False)``),
which tests/neurons/test_lif_sequence.py checks against autograd through ``lif_step``: spikes and
final states must be equal bit for bit, gradients equal to float rounding."""
import itertools

import pytest
import torch

import neurosim as ns
from neurosim.compiled import threads, training
from neurosim.compiled.training import compiled_kernels
from neurosim.neurons import LIFParams, LIFState
from neurosim.neurons import lif_fused
from neurosim.neurons.lif_fused import fused_lif
from neurosim.surrogate import FastSigmoid, get_surrogate

F64 = torch.float64


@pytest.fixture
def calls(monkeypatch):
    """Counts of compiled forwards that ran and compiled backwards."""
    seen = {"forward": 0, "backward": 0}
    forward, backward = training.forward_compiled, training.backward_compiled

    def spy_forward(*args, **kwargs):
        result = forward(*args, **kwargs)
        seen["forward"] += result is not None
        return result

    def spy_backward(*args, **kwargs):
        seen["backward"] += 1
        return backward(*args, **kwargs)
    monkeypatch.setattr(training, "forward_compiled", spy_forward)
    monkeypatch.setattr(training, "backward_compiled", spy_backward)
    return seen


def params_for(reset, refractory, same_step, integration="euler", per_neuron=False, n=9):
    values = dict(tau_mem=6e-3, v_threshold=0.7, v_leak=-0.05, v_reset=0.1, r=1.3)
    if per_neuron:                 # fixed per-neuron tensors (no gradient): still the compiled backward
        values["tau_mem"] = torch.linspace(4e-3, 9e-3, n, dtype=F64)
        values["v_threshold"] = torch.linspace(0.6, 0.8, n, dtype=F64)
    return LIFParams(**values, reset=reset, refractory_steps=refractory, input_same_step=same_step,
                     integration=integration)


def inputs(dtype, T=40, B=3, n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, n, generator=g, dtype=F64) * 0.9 + 0.45
    v0 = torch.rand(B, n, generator=g, dtype=F64) * 0.6
    i0 = torch.randn(B, n, generator=g, dtype=F64)
    ref0 = torch.randint(0, 3, (B, n), generator=g).to(F64)
    w = torch.randn(T, B, n, generator=g, dtype=F64)
    u = torch.randn(B, n, generator=g, dtype=F64)
    return [t.to(dtype) for t in (x, v0, i0, ref0, w, u)]


def cast(p, dtype):
    fields = {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in vars(p).items()}
    return LIFParams(**fields)


def train_pass(p, surrogate, x, v0, i0, ref0, w, u, loss="weighted"):
    """Spikes, final state and dL/d(x, v0, i0) of one fused pass."""
    leaves = [t.clone().requires_grad_(True) for t in (x, v0, i0)]
    spikes, v, ref = fused_lif(leaves[0], LIFState(leaves[1], leaves[2], ref0), p, 1e-3, surrogate)
    total = (spikes * w).sum() + (v * u).sum() if loss == "weighted" else spikes.sum()
    grads = torch.autograd.grad(total, leaves, allow_unused=True)
    return spikes.detach(), v.detach(), ref, grads


def compare(runs, dtype):
    (s1, v1, r1, g1), (s0, v0, r0, g0) = runs
    assert torch.equal(s1, s0) and torch.equal(v1, v0) and torch.equal(r1, r0)
    rel = 1e-12 if dtype == F64 else 2e-5
    for got, want in zip(g1, g0):
        if want is None:
            assert got is None or not got.abs().max() > 0
            continue
        assert got is not None and want.abs().max() > 0
        assert float((got - want).abs().max()) <= rel * float(want.abs().max()), float((got - want).abs().max())


GRID = list(itertools.product(["zero", "subtract", "value", "subtract_delayed"], [0, 2], [True, False],
                              ["fast_sigmoid", "triangle", "arctan"], [F64, torch.float32]))


@pytest.mark.parametrize("reset,refractory,same_step,surrogate,dtype", GRID,
                         ids=lambda v: str(v).replace("torch.", "") if isinstance(v, torch.dtype) else None)
def test_compiled_training_kernel_equals_the_torch_kernel(reset, refractory, same_step, surrogate, dtype, calls):
    """Every reset mode, refractory or not, the input of the same step or one step late, the two
    surrogates computed in the kernel and one computed by torch (arctan), float64 and float32."""
    p = cast(params_for(reset, refractory, same_step, per_neuron=(surrogate == "triangle")), dtype)
    sg = get_surrogate(surrogate, 2.0 if surrogate == "triangle" else None)
    data = inputs(dtype)
    compiled = train_pass(p, sg, *data)
    assert calls == {"forward": 1, "backward": 1}
    with compiled_kernels(False):
        reference = train_pass(p, sg, *data)
    assert calls == {"forward": 1, "backward": 1}, "the torch kernel must not run compiled code"
    assert 0.03 < float(compiled[0].mean()) < 0.6, "the comparison needs spikes"
    if refractory:
        assert float(compiled[2].max()) > 0
    compare([compiled, reference], dtype)


def test_no_grad_forward_runs_compiled_and_equals_torch(calls):
    p = params_for("subtract", 2, False)
    x, v0, i0, ref0, _, _ = inputs(F64)
    with torch.no_grad():
        got = fused_lif(x, LIFState(v0, i0, ref0), p, 1e-3, get_surrogate("fast_sigmoid"))
        with compiled_kernels(False):
            want = fused_lif(x, LIFState(v0, i0, ref0), p, 1e-3, get_surrogate("fast_sigmoid"))
    assert calls["forward"] == 1
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("batch", [1, 5])
def test_results_do_not_depend_on_the_thread_split(batch, monkeypatch, calls):
    """Blocks of rows (batch >= threads) or of neurons (batch 1): the same values bit for bit."""
    p = params_for("zero", 2, True)
    data = inputs(F64, B=batch, n=70)
    results = []
    for count in (1, 3):
        monkeypatch.setattr(training, "KERNEL_THREADS", count)
        assert len(training._blocks(batch, 70)) == count
        results.append(train_pass(p, get_surrogate("fast_sigmoid"), *data))
    (s1, v1, r1, g1), (s3, v3, r3, g3) = results
    assert torch.equal(s1, s3) and torch.equal(v1, v3) and torch.equal(r1, r3)
    for a, b in zip(g1, g3):
        assert (a is None and b is None) or torch.equal(a, b)
    assert g1[0].abs().max() > 0
    assert calls == {"forward": 2, "backward": 2}


def test_parameter_gradients_come_from_the_torch_backward_on_the_compiled_forward(calls):
    """Trainable time constant and threshold: the compiled forward saves what the torch backward
    reads, so every gradient equals the torch kernel's bit for bit."""
    pop = ns.Population("lif", 9, params_for("subtract", 0, True), trainable=("tau_mem", "v_threshold")).to(F64)
    x, v0, i0, ref0, w, u = inputs(F64)
    grads = []
    for enabled in (True, False):
        xs = x.clone().requires_grad_(True)
        with compiled_kernels(enabled):
            spikes, v, _ = fused_lif(xs, LIFState(v0, i0, ref0), pop.params, 1e-3, pop.surrogate)
        grads.append(torch.autograd.grad((spikes * w).sum() + (v * u).sum(), [xs, pop.tau_mem, pop.v_threshold]))
    assert calls == {"forward": 1, "backward": 0}
    for a, b in zip(*grads):
        assert a.abs().max() > 0 and torch.equal(a, b)


def test_a_gradient_broadcast_along_time_equals_a_full_one(calls):
    """``spikes.sum()`` hands the backward one value for every step (stride 0): read once per row."""
    p = params_for("zero", 0, True)
    x, v0, i0, ref0, w, u = inputs(F64)
    broadcast = train_pass(p, get_surrogate("fast_sigmoid"), x, v0, i0, ref0, w, u, loss="sum")
    full = train_pass(p, get_surrogate("fast_sigmoid"), x, v0, i0, ref0, torch.ones_like(w), torch.zeros_like(u))
    assert broadcast[3][0].abs().max() > 0
    for a, b in zip(broadcast[3], full[3]):
        assert (a is None and b is None) or torch.equal(a, b)


def test_a_retained_graph_and_a_strided_input_give_the_same_gradients(calls):
    """The compiled backward writes dL/dx into h' only when the graph is not kept; a transposed
    (non-contiguous) input gives the contiguous input's results."""
    p = params_for("value", 2, False)
    x, v0, i0, ref0, w, _ = inputs(F64)
    xs = x.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(True)
    assert not xs.is_contiguous()
    spikes, v, _ = fused_lif(xs, LIFState(v0, i0, ref0), p, 1e-3, get_surrogate("fast_sigmoid"))
    loss = (spikes * w).sum() + v.sum()
    first = torch.autograd.grad(loss, xs, retain_graph=True)[0]
    second = torch.autograd.grad(loss, xs)[0]
    assert first.abs().max() > 0 and torch.equal(first, second)
    xc = x.clone().requires_grad_(True)
    spikes_c, v_c, _ = fused_lif(xc, LIFState(v0, i0, ref0), p, 1e-3, get_surrogate("fast_sigmoid"))
    assert torch.equal(spikes_c, spikes)
    assert torch.equal(torch.autograd.grad((spikes_c * w).sum() + v_c.sum(), xc)[0], first)
    assert calls["backward"] == 3


class SteeperFastSigmoid(FastSigmoid):
    """A user's subclass that changes the derivative: the kernel must not use FastSigmoid's own."""

    def grad(self, x):
        return 2.0 * super().grad(x)


def test_a_surrogate_subclass_gets_its_own_derivative(calls):
    p = params_for("subtract", 0, True)
    data = inputs(F64)
    assert training.surrogate_code(SteeperFastSigmoid(3.0)) == training.surrogate_code(get_surrogate("arctan"))
    got = train_pass(p, SteeperFastSigmoid(3.0), *data)
    with compiled_kernels(False):
        want = train_pass(p, SteeperFastSigmoid(3.0), *data)
        plain = train_pass(p, FastSigmoid(3.0), *data)
    compare([got, want], F64)
    assert not torch.allclose(got[3][0], plain[3][0])
    assert calls["backward"] == 1


def test_the_simulator_uses_the_compiled_kernel_except_with_backend_torch(calls):
    """Training through a Simulator: the default backend runs the compiled training kernel,
    ``backend="torch"`` keeps every operation in torch; the same spikes and weight gradient."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(30, 4, 12, generator=g) < 0.3).float()
    weight = torch.randn(10, 12, generator=g) * 0.6 + 0.2
    results = {}
    for backend in ("auto", "torch"):
        graph = ns.Graph.sequential(12, ("fc", ns.Dense(12, 10, weight=weight.clone())),
                                    ("lif", ns.Population("lif", 10, LIFParams(integration="euler"))))
        sim = ns.Simulator(graph, backend=backend)
        before = dict(calls)
        out = sim.run(x).output
        out.sum().backward()
        results[backend] = out.detach(), graph.nodes["fc"].weight.grad
        ran = {k: calls[k] - before[k] for k in calls}
        assert ran == ({"forward": 1, "backward": 1} if backend == "auto" else {"forward": 0, "backward": 0}), backend
    assert float(results["auto"][0].mean()) > 0.02
    assert torch.equal(results["auto"][0], results["torch"][0])
    torch.testing.assert_close(results["auto"][1], results["torch"][1], rtol=1e-5, atol=1e-6)


def test_thread_blocks_cover_the_grid_once():
    for rows, columns, count in [(16, 1024, 2), (1, 1000, 2), (3, 10, 4), (5, 70, 3), (1, 8, 4)]:
        covered = torch.zeros(rows, columns, dtype=torch.int64)
        for r0, r1, c0, c1 in threads.row_blocks(rows, columns, count):
            covered[r0:r1, c0:c1] += 1
        assert torch.equal(covered, torch.ones_like(covered)), (rows, columns, count)


def test_chunked_surrogate_given_by_torch_crosses_chunk_boundaries(monkeypatch, calls):
    """A surrogate computed by torch arrives chunk by chunk of steps (7 of 40 here)."""
    monkeypatch.setattr(lif_fused, "CHUNK_BYTES", 7 * 3 * 9 * 8)
    p = params_for("zero", 0, False)
    data = inputs(F64)
    got = train_pass(p, get_surrogate("sigmoid"), *data)
    with compiled_kernels(False):
        want = train_pass(p, get_surrogate("sigmoid"), *data)
    compare([got, want], F64)
    assert calls["backward"] == 1


@pytest.mark.parametrize("enabled", [True, False])
def test_pooled_buffers_never_hand_a_graph_to_the_next_pass(enabled):
    """The spikes a forward returns carry its graph node; the training-buffer pool must not keep
    that object and hand it to the next forward as h' (whose backward writes dL/dx into it): every
    pass's input gradient is a plain tensor, and the pool holds no tensor with a graph."""
    lif_fused.release_workspace()
    p = params_for("zero", 0, True)
    x, v0, i0, ref0, _, _ = inputs(torch.float32, T=20, B=2, n=16)
    with compiled_kernels(enabled):
        for _ in range(3):
            leaf = x.clone().requires_grad_(True)
            spikes, _, _ = fused_lif(leaf, LIFState(v0, i0, ref0), p, 1e-3, get_surrogate("fast_sigmoid"))
            spikes.sum().backward()
            assert leaf.grad.abs().max() > 0 and not leaf.grad.requires_grad and leaf.grad.grad_fn is None
            del spikes
    pool = lif_fused._workspace.buffers
    assert pool and all(b.grad_fn is None and not b.requires_grad for b in pool)
