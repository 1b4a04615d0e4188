"""The compiled time loop gives the torch path's spikes and states bit for bit.

Every model with a compiled kernel runs over a grid of its discrete settings (reset mode,
refractory period, input in the same step or the next, exact or Euler integration) and of
scalar vs per-neuron tensor parameters, in float64 and float32, in two graphs: feed-forward
(input -> Dense -> population: the population alone is a block with a time loop) and recurrent
(a Dense back-edge from the population onto itself: the whole loop is one block). The torch
run is the reference (``backend="torch"``); the compiled one must match it exactly, and say
that it ran compiled.
"""
import itertools

import pytest
import torch

import neurosim as ns
from neurosim.neurons import (ALIFParams, CobaLIFParams, CubaLIFParams, CubaLIParams, IFParams, IntegratorParams,
                              LIFParams, LIParams)

DT = 1e-3
N_IN, N = 12, 10
RESETS = ("zero", "subtract", "value", "subtract_delayed")


def _per_neuron(value, n, dtype, spread=0.2):
    """A per-neuron tensor around ``value`` (deterministic)."""
    return torch.linspace(value * (1 - spread), value * (1 + spread), n, dtype=dtype)


def _graph(model, params, recurrent, dtype, seed=0, ports=("input",)):
    """input [N_IN] -> Dense(s) -> Population(model), with an optional Dense back-edge per port."""
    torch.manual_seed(seed)
    g = ns.Graph().add_input("x", N_IN)
    g.add("pop", ns.Population(model, N, params).to(dtype))
    for k, port in enumerate(ports):
        scale = 1.0 if port != "inh" else 0.5
        w = (torch.rand(N, N_IN, dtype=dtype) * 1.5 - 0.2) * scale
        g.add(f"fc_{port}", ns.Dense(N_IN, N, weight=w, event_driven=True))
        g.connect("x", f"fc_{port}")
        g.connect(f"fc_{port}", "pop", port=port)
        if recurrent:
            wr = (torch.rand(N, N, dtype=dtype) - 0.5) * 0.8 * scale
            g.add(f"rec_{port}", ns.Dense(N, N, weight=wr, event_driven=True, bias=(k == 0)))
            with torch.no_grad():
                if k == 0:
                    g.nodes[f"rec_{port}"].bias.fill_(0.05)
            g.connect("pop", f"rec_{port}", back=True)
            g.connect(f"rec_{port}", "pop", port=port)
    g.add_output("pop")
    return g


def _inputs(dtype, steps=150, batch=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, N_IN, generator=g) < 0.3).to(dtype)


def _both(graph, x, dt=DT, state=None, **run):
    """(torch result, compiled result, compiled simulator) of the same run."""
    with torch.no_grad():
        ref = ns.Simulator(graph, dt, backend="torch").run(x, state=state, **run)
        sim = ns.Simulator(graph, dt, backend="compiled")
        got = sim.run(x, state=state, **run)
    return ref, got, sim


def _assert_same(ref, got, sim, node="pop"):
    assert sim.placement[node] == ("compiled", ""), sim.placement
    assert torch.equal(ref.outputs[node], got.outputs[node]), \
        f"spikes differ at steps {(ref.outputs[node] != got.outputs[node]).nonzero()[:5].tolist()}"
    for name in ref.state.nodes:
        a, b = ref.state.nodes[name], got.state.nodes[name]
        if a is None:
            assert b is None
            continue
        for field, u, w in zip(a._fields, a, b):
            assert u.dtype == w.dtype and u.shape == w.shape, (name, field)
            assert torch.equal(u, w), f"{name}.{field} differs by {(u - w).abs().max().item()}"
    for name in ref.state.previous:
        assert torch.equal(ref.state.previous[name], got.state.previous[name]), name


def _lif_like_cases():
    for reset, refractory, same, integration, tensor in itertools.product(
            RESETS, (0, 3), (True, False), ("exact", "euler"), (False, True)):
        yield reset, refractory, same, integration, tensor


def _spikes_and_match(model, params, recurrent, dtype, ports=("input",)):
    g = _graph(model, params, recurrent, dtype, ports=ports)
    spiking = ns.get_neuron_model(model).spiking
    if recurrent and not spiking:
        for name, node in g.nodes.items():
            if name.startswith("rec_"):
                node.weight.data *= 0.1      # a graded readout fed back: keep it bounded
    ref, got, sim = _both(g, _inputs(dtype))
    if spiking:
        assert ref.outputs["pop"].sum() > 0, "the case must spike to test anything"
    if recurrent and not spiking and dtype == torch.float32:
        # graded values through a float32 Dense: torch's event path (fbgemm's embedding bag with
        # per-sample weights) may fuse the multiply-add; the compiled path rounds the product
        assert sim.placement["pop"] == ("compiled", "")
        torch.testing.assert_close(got.outputs["pop"], ref.outputs["pop"], rtol=1e-5, atol=1e-5)
        return
    _assert_same(ref, got, sim)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_lif_grid(dtype, recurrent):
    for reset, refractory, same, integration, tensor in _lif_like_cases():
        tau = _per_neuron(20e-3, N, dtype) if tensor else 20e-3
        th = _per_neuron(1.0, N, dtype) if tensor else 1.0
        p = LIFParams(tau_mem=tau, v_threshold=th, v_leak=0.1, v_reset=-0.1 if reset == "value" else 0.0, r=30.0,
                      integration=integration, reset=reset, refractory_steps=refractory, input_same_step=same)
        _spikes_and_match("lif", p, recurrent, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_cuba_lif_and_alif_grid(dtype, recurrent):
    for reset, refractory, same, integration, tensor in _lif_like_cases():
        tau = _per_neuron(10e-3, N, dtype) if tensor else 10e-3
        p = CubaLIFParams(tau_syn=5e-3, tau_mem=tau, r=20.0, v_threshold=1.0, v_reset=0.1 if reset == "value" else 0.0,
                          w_in=2.0, integration=integration, reset=reset, refractory_steps=refractory,
                          input_same_step=same)
        _spikes_and_match("cuba_lif", p, recurrent, dtype)
        beta = _per_neuron(0.3, N, dtype) if tensor else 0.3
        q = ALIFParams(tau_mem=20e-3, tau_adapt=tau * 10, beta=beta, v_threshold=1.0, r=30.0, integration=integration,
                       reset=reset, refractory_steps=refractory, input_same_step=same)
        _spikes_and_match("alif", q, recurrent, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_if_and_readouts(dtype, recurrent):
    for reset, refractory, same in itertools.product(RESETS, (0, 3), (True, False)):
        p = IFParams(r=_per_neuron(40.0, N, dtype), v_threshold=1.0, reset=reset, refractory_steps=refractory,
                     input_same_step=same)
        _spikes_and_match("if", p, recurrent, dtype)
    for same, integration in itertools.product((True, False), ("exact", "euler")):
        _spikes_and_match("li", LIParams(tau_mem=_per_neuron(10e-3, N, dtype), r=5.0, integration=integration,
                                         input_same_step=same), recurrent, dtype)
        _spikes_and_match("cuba_li", CubaLIParams(tau_syn=5e-3, tau_mem=10e-3, w_in=_per_neuron(2.0, N, dtype),
                                                  integration=integration, input_same_step=same), recurrent, dtype)
        _spikes_and_match("integrator", IntegratorParams(r=3.0, input_same_step=same), recurrent, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_coba_grid(dtype):
    """Both integration schemes (the exact one through exp: numba's and torch's agree on these
    inputs), g_leak 1 and not, refractory, both input timings, recurrent on both ports."""
    for integration, g_leak, refractory, same, reset in itertools.product(
            ("euler", "exact"), (1.0, 2.0), (0, 20), (True, False), ("value", "subtract")):
        p = CobaLIFParams(integration=integration, g_leak=g_leak, refractory_steps=refractory, input_same_step=same,
                          reset=reset, tau_mem=_per_neuron(20e-3, N, dtype) if g_leak == 2.0 else 20e-3)
        for recurrent in (False, True):
            _spikes_and_match("coba_lif", p, recurrent, dtype, ports=("exc", "inh"))


def test_a_long_run_and_continuation_stay_exact():
    """2000 steps of a recurrent LIF network, and the same in two runs continued from the state."""
    dtype = torch.float32
    p = LIFParams(tau_mem=20e-3, v_threshold=1.0, r=30.0, refractory_steps=2)
    g = _graph("lif", p, True, dtype)
    x = _inputs(dtype, steps=2000)
    ref, got, sim = _both(g, x)
    assert ref.outputs["pop"].sum() > 1000
    _assert_same(ref, got, sim)
    with torch.no_grad():
        first = sim.run(x[:700])
        second = sim.run(x[700:], state=first.state)
    assert torch.equal(torch.cat([first.output, second.output]), ref.output)
    for u, w in zip(ref.state.nodes["pop"], second.state.nodes["pop"]):
        assert torch.equal(u, w)
