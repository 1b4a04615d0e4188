"""MAML (plugins/maml.py): the inner loop against a hand-unrolled reference with hand-written
gradients, the meta-gradient against its closed form (second and first order), functional_call on a
Simulator against the same Simulator with the parameters loaded, a conventional block inside a
graph, a spiking Simulator adapted and meta-trained, and bad input refused before any work."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import neurosim as ns
from neurosim.plugins import Block
from neurosim.plugins.maml import MAML, MAMLConfig, SimulatorReadout, adapt, meta_loss, model_params


def gen(seed):
    return torch.Generator().manual_seed(seed)


def mse(out, y):
    return F.mse_loss(out, y)


# ---------------------------------------------------------------------- linear model: exact references
def hand_grads(w, b, x, y):
    """d/dW, d/db of mean((x W^T + b - y)^2) over all N*O entries, written out by hand."""
    r = x @ w.T + b - y
    scale = 2.0 / r.numel()
    return scale * r.T @ x, scale * r.sum(0)


@pytest.mark.parametrize("first_order", [False, True])
def test_adapt_matches_hand_unrolled_linear(first_order):
    torch.manual_seed(0)
    model = nn.Linear(5, 3).double()
    x, y = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    config = MAMLConfig(inner_lr=0.1, inner_steps=3, first_order=first_order)
    fast = adapt(model, dict(model.named_parameters()), x, y, mse, config)
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    for _ in range(3):
        gw, gb = hand_grads(w, b, x, y)
        w, b = w - 0.1 * gw, b - 0.1 * gb
    torch.testing.assert_close(fast["weight"], w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast["bias"], b, rtol=1e-12, atol=1e-12)
    assert not torch.equal(w, model.weight.detach())           # the steps moved the weights
    assert fast["weight"].requires_grad and model.weight.grad is None


def linear_tasks(n_tasks=2, d=4):
    tasks = []
    for i in range(n_tasks):
        g = gen(10 + i)
        w_true = torch.randn(d, 1, generator=g, dtype=torch.float64)
        xs, xq = (torch.randn(n, d, generator=g, dtype=torch.float64) for n in (6, 7))
        tasks.append((xs, xs @ w_true, xq, xq @ w_true + 0.1))
    return tasks


@pytest.mark.parametrize("first_order,steps", [(False, 1), (True, 1), (False, 2)])
def test_meta_gradient_matches_hand_derived(first_order, steps):
    """f(w; x) = x w. Support loss (1/n)|Xs w - ys|^2 has Hessian H = (2/n) Xs^T Xs, so K steps
    give w_K with dw_K/dw = (I - alpha H)^K, and dLq/dw = ((I - alpha H)^K)^T grad Lq(w_K) (second
    order) or grad Lq(w_K) (first order)."""
    torch.manual_seed(1)
    model = nn.Linear(4, 1, bias=False).double()
    alpha, tasks = 0.05, linear_tasks()
    config = MAMLConfig(inner_lr=alpha, inner_steps=steps, first_order=first_order)
    loss = meta_loss(model, dict(model.named_parameters()), tasks, mse, config)
    (got,) = torch.autograd.grad(loss, [model.weight])

    w0 = model.weight.detach().reshape(4, 1)
    expected = torch.zeros(4, 1, dtype=torch.float64)
    for xs, ys, xq, yq in tasks:
        h = 2.0 / xs.shape[0] * xs.T @ xs
        w = w0
        for _ in range(steps):
            w = w - alpha * (2.0 / xs.shape[0]) * xs.T @ (xs @ w - ys)
        g_q = 2.0 / xq.shape[0] * xq.T @ (xq @ w - yq)
        jac = torch.linalg.matrix_power(torch.eye(4, dtype=torch.float64) - alpha * h, steps)
        expected += (g_q if first_order else jac.T @ g_q) / len(tasks)
    torch.testing.assert_close(got.reshape(4, 1), expected, rtol=1e-10, atol=1e-12)
    # second and first order differ here (H != 0), so each comparison can tell them apart
    other = MAMLConfig(inner_lr=alpha, inner_steps=steps, first_order=not first_order)
    (g_other,) = torch.autograd.grad(meta_loss(model, dict(model.named_parameters()), tasks, mse, other),
                                     [model.weight])
    assert (g_other - got).abs().max() > 1e-4


def test_adapt_only_a_subset_and_param_lr():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    head = {n: p for n, p in model.named_parameters() if n.startswith("2.")}
    fast = adapt(model, head, x, y, mse, MAMLConfig(inner_lr=0.5, param_lr={"2.bias": 0.0}))
    assert set(fast) == {"2.weight", "2.bias"}
    torch.testing.assert_close(fast["2.bias"], model[2].bias)                 # lr 0: unchanged
    (g,) = torch.autograd.grad(mse(model(x), y), [model[2].weight])
    torch.testing.assert_close(fast["2.weight"], model[2].weight - 0.5 * g)  # the body kept as it is


# ---------------------------------------------------------------------- functional_call on a Simulator
def spiking_sim(trainable=("tau_mem",), surrogate="fast_sigmoid", seed=0, n_in=6, hidden=12, n_out=2):
    g = gen(seed)
    graph = ns.Graph.sequential(
        n_in, ("fc", ns.Dense(n_in, hidden, weight=(torch.rand(hidden, n_in, generator=g) * 2 - 1) * 1.5)),
        ("lif", ns.Population("lif", hidden, ns.LIFParams(tau_mem=5e-3, reset="subtract"), trainable=trainable,
                              surrogate=surrogate)),
        ("ro", ns.Dense(hidden, n_out, weight=(torch.rand(n_out, hidden, generator=g) * 2 - 1) * 0.5)),
        ("out", ns.Population("li", n_out, ns.LIParams(tau_mem=5e-3))))
    return ns.Simulator(graph, dt=1e-3)


def test_functional_call_on_simulator_equals_loaded_parameters():
    sim = spiking_sim()
    x = torch.rand(10, 3, 6, generator=gen(3)) * 3
    params = {n: p.detach() * 1.3 for n, p in sim.named_parameters()}
    assert "graph.nodes.lif.tau_mem" in params                        # trainable population parameter
    result = functional_call(sim, params, (x,))
    assert isinstance(result, ns.SimulationResult) and set(result.outputs) == {"out"}
    other = copy.deepcopy(sim)
    other.load_state_dict(params, strict=False)
    assert torch.equal(result.outputs["out"], other.run(x).outputs["out"])
    assert not torch.equal(result.outputs["out"], sim.run(x).outputs["out"])  # not the module's own weights


def test_block_in_graph_adapts_like_the_bare_module():
    torch.manual_seed(4)
    mlp = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    graph = ns.Graph.sequential(3, ("mlp", Block(mlp, 3, 2, mode="analog")))
    sim = ns.Simulator(graph)
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    config = MAMLConfig(inner_lr=0.3, inner_steps=2)
    bare = adapt(mlp, dict(mlp.named_parameters()), x, y, mse, config)
    in_graph = adapt(sim, dict(sim.named_parameters()), x.unsqueeze(0), y, lambda r, t: mse(r.output[0], t), config)
    assert set(in_graph) == {f"graph.nodes.mlp.module.{n}" for n in bare}
    for n in bare:
        torch.testing.assert_close(in_graph[f"graph.nodes.mlp.module.{n}"], bare[n], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- spiking MAML
def swap_task(seed, n=16, d=6):
    """Two clusters at +-m; a task draws which cluster is class 0 (so only adaptation can tell)."""
    g = gen(seed)
    m = torch.tensor([2.0, 2.0, -1.0, 1.0, 0.5, -0.5])[:d]
    flip = int(torch.randint(0, 2, (1,), generator=g))

    def draw():
        y = torch.randint(0, 2, (n,), generator=g)
        sign = (2 * y - 1).float().unsqueeze(1)
        return (sign * m + 0.5 * torch.randn(n, d, generator=g)).clamp(min=-3), (y + flip) % 2
    (xs, ys), (xq, yq) = draw(), draw()
    return xs, ys, xq, yq


@pytest.mark.parametrize("first_order,surrogate", [(True, "fast_sigmoid"), (False, "arctan"), (False, "fast_sigmoid")])
def test_spiking_adapt_lowers_query_loss(first_order, surrogate):
    model = SimulatorReadout(spiking_sim(surrogate=surrogate), readout="mean", steps=10)
    config = MAMLConfig(inner_lr=1.0, inner_steps=3, first_order=first_order,
                        param_lr={"sim.graph.nodes.lif.tau_mem": 1e-6})
    params = model_params(model)
    assert "sim.graph.nodes.lif.tau_mem" in params
    for seed in range(4):
        xs, ys, xq, yq = swap_task(seed)
        before = F.cross_entropy(model(xq), yq).detach()
        fast = adapt(model, params, xs, ys, F.cross_entropy, config)
        after = F.cross_entropy(functional_call(model, fast, (xq,)), yq)
        assert float(after.detach()) < float(before) - 0.1, (seed, float(before), float(after.detach()))
        assert float(fast["sim.graph.nodes.lif.tau_mem"]) != float(params["sim.graph.nodes.lif.tau_mem"])
        # the adapted parameters are differentiable functions of the meta-parameters
        grads = torch.autograd.grad(after, list(params.values()), allow_unused=True)
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_meta_step_trains_a_spiking_simulator():
    model = SimulatorReadout(spiking_sim(surrogate="arctan"), readout="mean", steps=10)
    config = MAMLConfig(inner_lr=1.0, inner_steps=1, first_order=False, outer_lr=3e-2,
                        param_lr={"sim.graph.nodes.lif.tau_mem": 1e-6})
    maml = MAML(model, F.cross_entropy, config, optimizer=torch.optim.Adam(
        [{"params": [p for n, p in model.named_parameters() if not n.endswith("tau_mem")]},
         {"params": [model.sim.graph.nodes["lif"].tau_mem], "lr": 1e-4}], lr=3e-2))
    held_out = [swap_task(100 + i) for i in range(4)]
    before = float(maml.meta_loss(held_out))
    for step in range(6):
        result = maml.meta_step([swap_task(2 * step), swap_task(2 * step + 1)])
        assert result.grad_norm > 0 and torch.isfinite(torch.tensor(result.meta_loss))
    after = float(maml.meta_loss(held_out))
    assert after < before, (before, after)


def test_meta_step_trains_an_mlp_on_regression_tasks():
    """Tasks y = a x + c (a, c random per task): after meta-training, one inner step from the
    learnt initialisation fits held-out tasks better than from the initial one."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(1, 24), nn.Tanh(), nn.Linear(24, 1))

    def task(seed):
        g = gen(seed)
        a, c = torch.rand(2, generator=g) * 4 - 2
        xs, xq = torch.rand(10, 1, generator=g) * 4 - 2, torch.rand(10, 1, generator=g) * 4 - 2
        return xs, a * xs + c, xq, a * xq + c

    maml = MAML(model, mse, MAMLConfig(inner_lr=0.05, inner_steps=1, outer_lr=1e-2))
    held_out = [task(1000 + i) for i in range(8)]
    before = float(maml.meta_loss(held_out))
    for step in range(60):
        maml.meta_step([task(4 * step + i) for i in range(4)])
    after = float(maml.meta_loss(held_out))
    assert after < 0.7 * before, (before, after)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_adapt_on_cuda_matches_cpu():
    model = SimulatorReadout(spiking_sim(surrogate="arctan"), readout="mean", steps=10)
    xs, ys, _, _ = swap_task(0)
    config = MAMLConfig(inner_lr=2.0, inner_steps=2, param_lr={"sim.graph.nodes.lif.tau_mem": 1e-6})
    cpu = adapt(model, model_params(model), xs, ys, F.cross_entropy, config)
    model_gpu = copy.deepcopy(model).to("cuda")
    gpu = adapt(model_gpu, model_params(model_gpu), xs.cuda(), ys.cuda(), F.cross_entropy, config)
    for n in cpu:
        assert gpu[n].device.type == "cuda"
        torch.testing.assert_close(gpu[n].cpu(), cpu[n], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_refused_before_any_work():
    model = nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    calls = []

    def counting_loss(out, t):
        calls.append(1)
        return mse(out, t)
    with pytest.raises(ValueError, match=r"\['wieght'\] are not parameters of Linear"):
        adapt(model, {"wieght": model.weight}, x, y, counting_loss)
    with pytest.raises(ValueError, match=r"params\['weight'\] has shape \(3, 2\)"):
        adapt(model, {"weight": torch.zeros(3, 2)}, x, y, counting_loss)
    with pytest.raises(TypeError, match="params must be a dict"):
        adapt(model, [model.weight], x, y, counting_loss)
    with pytest.raises(ValueError, match=r"param_lr names \['bias'\]"):
        adapt(model, {"weight": model.weight}, x, y, counting_loss, MAMLConfig(param_lr={"bias": 0.1}))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        adapt(model, dict(model.named_parameters()), x, y, "mse")
    with pytest.raises(ValueError, match="tasks is empty"):
        meta_loss(model, dict(model.named_parameters()), [], counting_loss)
    with pytest.raises(ValueError, match="task 0 must be"):
        meta_loss(model, dict(model.named_parameters()), [(x, y)], counting_loss)
    assert not calls
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        adapt(model, dict(model.named_parameters()), x, y, lambda o, t: (o - t) ** 2)
    with pytest.raises(ValueError, match="MAMLConfig.inner_lr"):
        MAMLConfig(inner_lr=0)
    with pytest.raises(ValueError, match="MAMLConfig.inner_steps"):
        MAMLConfig(inner_steps=0)
    with pytest.raises(ValueError, match="MAMLConfig.first_order"):
        MAMLConfig(first_order="yes")
    with pytest.raises(ValueError, match=r"\['nope'\] are not trainable parameters"):
        MAML(model, mse, adapt_names=["nope"])
    with pytest.raises(TypeError, match="sim must be a neurosim Simulator"):
        SimulatorReadout(model)
    with pytest.raises(ValueError, match="readout must be one of"):
        SimulatorReadout(spiking_sim(), readout="median")
    with pytest.raises(ValueError, match="output 'x' is not an output"):
        SimulatorReadout(spiking_sim(), output="x")


def test_second_order_through_the_fused_lif_kernel_equals_the_stepped_path():
    """Without trainable population parameters the layer schedule runs lif's fused kernel; the
    second-order meta-gradient through it equals the one through the stepped path (step schedule)."""
    grads = []
    for schedule in ("layer", "step"):
        built = spiking_sim(trainable=(), surrogate="fast_sigmoid").double()
        sim = ns.Simulator(built.graph, dt=built.dt, schedule=schedule)
        model = SimulatorReadout(sim, readout="mean", steps=10)
        config = MAMLConfig(inner_lr=1.0, inner_steps=2, first_order=False)
        params = model_params(model)
        xs, ys, xq, yq = [t.double() if t.is_floating_point() else t for t in swap_task(7)]
        fast = adapt(model, params, xs, ys, F.cross_entropy, config)
        loss = F.cross_entropy(functional_call(model, fast, (xq,)), yq)
        grads.append(torch.autograd.grad(loss, list(params.values())))
    for fused, stepped in zip(*grads):
        torch.testing.assert_close(fused, stepped, rtol=1e-9, atol=1e-12)
    assert any(float(g.abs().sum()) > 0 for g in grads[0])
