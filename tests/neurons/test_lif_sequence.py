"""The fused LIF sequence kernel equals stepping lif_step: outputs bit for bit, gradients closely
(into the input, into the initial membrane and across consecutive ``Simulator.run`` calls), and
the threshold rule s = H(v - v_threshold) with H(0) = 0 in both paths.

The Simulator runs the kernel for a population that forms a block of its own (layer schedule)
and is not watched by a state monitor; the tests that go through the Simulator make ``lif_step``
raise (:func:`fused_only`), so they cannot pass by stepping it."""
from unittest import mock

import pytest
import torch

import neurosim as ns
from neurosim.neurons.lif import lif_sequence

F64 = torch.float64


def step_through(pop, x, state, dt):
    """The reference: ``pop.step`` (lif_step, autograd through every op) over ``x [T, ...]``.
    Returns (spikes [T, ...], final state)."""
    outs = []
    for t in range(x.shape[0]):
        s, state = pop.step(x[t], state, dt)
        outs.append(s)
    return torch.stack(outs), state


def fused_only(pop):
    """Context in which ``pop.step`` raises: a Simulator run inside it used the fused kernel."""
    return mock.patch.object(pop, "step", side_effect=AssertionError("lif_step ran instead of the fused kernel"))


def state_from(v0):
    """A LIF state with membrane ``v0``, no held input, not refractory."""
    zeros = torch.zeros_like(v0)
    return ns.LIFState(v=v0, i=zeros, refractory=zeros)


@pytest.mark.parametrize("reset", ["subtract", "zero", "value"])
@pytest.mark.parametrize("v_leak", [0.0, -0.2])
@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_fused_equals_stepping(reset, v_leak, integration):
    torch.manual_seed(0)
    params = ns.LIFParams(tau_mem=8e-3, v_threshold=0.6, v_leak=v_leak, v_reset=0.1, r=2.0,
                          reset=reset, integration=integration)
    pop = ns.Population("lif", 50, params, surrogate="arctan")
    x = torch.randn(40, 3, 50) * 0.8
    x_a, x_b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    state = pop.initial_state(3)
    spikes_f, final_f = lif_sequence(x_a, state, pop.params, 1e-3, pop.surrogate)
    spikes_s, st = step_through(pop, x_b, state, 1e-3)
    assert spikes_s.sum() > 10, "the comparison needs spikes"
    assert torch.equal(spikes_f, spikes_s)
    assert torch.equal(final_f.v, st.v)
    w = torch.randn_like(spikes_f)
    ((spikes_f * w).sum() + final_f.v.sum()).backward()
    ((spikes_s * w).sum() + st.v.sum()).backward()
    assert torch.allclose(x_a.grad, x_b.grad, rtol=1e-4, atol=1e-6)


def assert_same_gradient(fused, stepped, rel=1e-12):
    """max |fused - stepped| <= rel * max |stepped| (float64: only rounding differs), and not zero."""
    scale = stepped.abs().max()
    assert scale > 0, "the gradient must not vanish for the comparison to mean something"
    err = (fused - stepped).abs().max()
    assert err <= rel * scale, f"max |fused - stepped| = {err:.3g}, {err / scale:.3g} of max |stepped|"


@pytest.mark.parametrize("reset", ["subtract", "zero", "value"])
@pytest.mark.parametrize("v_leak", [0.0, -0.2])
def test_gradient_into_the_initial_membrane_equals_stepping(reset, v_leak):
    """dL/dv0 for a leaf v0 in the initial state: h_0 = v_leak + (v0 - v_leak) a + ..., so
    dL/dv0 = a dL/dh_0. Kernel called directly and through ``Simulator.run(state=...)``."""
    torch.manual_seed(2)
    dt = 1e-3
    params = ns.LIFParams(tau_mem=8e-3, v_threshold=0.6, v_leak=v_leak, v_reset=0.1, r=2.0, reset=reset)
    pop = ns.Population("lif", 50, params, surrogate="arctan")
    x = torch.randn(40, 3, 50, dtype=F64) * 0.8 + 0.3
    v0 = (torch.rand(3, 50, dtype=F64) * 0.9 - 0.3).requires_grad_(True)
    w, u = torch.randn(40, 3, 50, dtype=F64), torch.randn(3, 50, dtype=F64)

    def loss(spikes, final):
        return (spikes * w).sum() + (final.v * u).sum()

    spikes_s, final_s = step_through(pop, x, state_from(v0), dt)
    assert spikes_s.sum() > 100, "the comparison needs spikes"
    (grad_stepped,) = torch.autograd.grad(loss(spikes_s, final_s), v0)

    spikes_f, final_f = lif_sequence(x, state_from(v0), pop.params, dt, pop.surrogate)
    assert torch.equal(spikes_f, spikes_s)
    (grad_fused,) = torch.autograd.grad(loss(spikes_f, final_f), v0)
    assert_same_gradient(grad_fused, grad_stepped)

    g = ns.Graph().add_input("x", 50).add("lif", pop).connect("x", "lif")
    sim = ns.Simulator(g, dt=dt)
    state = sim.initial_state(3, dtype=F64)
    state = ns.NetworkState({"lif": state_from(v0)}, state.previous)
    with fused_only(pop):
        result = sim.run(x, state=state)
    assert torch.equal(result.output, spikes_s)
    (grad_sim,) = torch.autograd.grad(loss(result.output, result.state.nodes["lif"]), v0)
    assert_same_gradient(grad_sim, grad_stepped)


def test_bptt_across_two_runs_equals_one_run_over_the_whole_input():
    """Dense -> LIF (fused), the second run continuing from the first's final state: the weight
    gradient of a loss on both runs' spikes equals that of one run over the concatenated input
    (fused, and stepped with lif_step), and the part that crosses between the runs matters."""
    torch.manual_seed(3)
    w = torch.rand(20, 30, dtype=F64) * 0.3
    g = ns.Graph.sequential(30, ("fc", ns.Dense(30, 20, weight=w)),
                            ("lif", ns.Population("lif", 20, ns.LIFParams(tau_mem=20e-3, v_threshold=0.5),
                                                  surrogate="arctan")))
    fc, pop = g.nodes["fc"], g.nodes["lif"]
    x = (torch.rand(60, 2, 30) < 0.3).to(F64)
    readout = torch.randn(60, 2, 20, dtype=F64)
    split = 25

    def weight_grad(output):
        (grad,) = torch.autograd.grad((output * readout).sum(), fc.weight, retain_graph=True)
        return grad

    sim = ns.Simulator(g)
    with fused_only(pop):
        first = sim.run(x[:split])
        second = sim.run(x[split:], state=first.state)
        two = torch.cat([first.output, second.output])
        grad_two = weight_grad(two)
        whole = sim.run(x).output
        grad_one = weight_grad(whole)
        detached = ns.NetworkState({n: s if s is None else type(s)(*(f.detach() for f in s))
                                    for n, s in first.state.nodes.items()}, first.state.previous)
        cut = torch.cat([first.output, sim.run(x[split:], state=detached).output])
        grad_cut = weight_grad(cut)
    stepped = ns.Simulator(g, schedule="step").run(x).output
    grad_stepped = weight_grad(stepped)

    assert 0.05 * two.numel() < two.sum() < 0.5 * two.numel(), "the network must spike, not saturate"
    assert torch.equal(two, whole) and torch.equal(whole, stepped)
    assert_same_gradient(grad_two, grad_stepped)
    assert_same_gradient(grad_one, grad_stepped)
    # the gradient through the state handed from the first run to the second is not negligible
    assert (grad_cut - grad_stepped).abs().max() > 1e-3 * grad_stepped.abs().max()


# A membrane that lands exactly on the threshold: forward Euler with tau_mem = 2 dt gives
# a = 1 - dt/tau_mem = 0.5 and h_t = v/2 + x_t/2, exact in binary floating point for these inputs.
TIES = {
    # v_threshold = 0, reset to zero: h = 0 (rest, no input), -0.5, 0 again, 2^-11, 0
    "threshold_zero": (dict(v_threshold=0.0, reset="zero"),
                       [0.0, -1.0, 0.5, 2.0 ** -10, 0.0], [0, 0, 0, 1, 0]),
    # v_threshold = 0.5, subtract: h = 0.5 (tie), 0.75 (spike, v -> 0.25), 0.5 (tie), 0.5 + 2^-10
    "threshold_half": (dict(v_threshold=0.5, reset="subtract"),
                       [1.0, 1.0, 0.75, 0.5 + 2.0 ** -9], [0, 1, 0, 1]),
}


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("case", sorted(TIES))
def test_a_membrane_exactly_at_threshold_does_not_spike(case, dtype):
    """The documented rule s = H(v - v_threshold) with H(0) = 0 ("spike when v > v_threshold";
    ``surrogate.spike`` is 1 where x > 0), in the fused kernel and in lif_step alike."""
    fields, drive, expected = TIES[case]
    dt = 1e-3
    pop = ns.Population("lif", 1, ns.LIFParams(tau_mem=2 * dt, integration="euler", v_leak=0.0, **fields))
    assert ns.neurons.base.decay_factor(pop.params.tau_mem, dt, "euler") == 0.5
    x = torch.tensor(drive, dtype=dtype).reshape(-1, 1, 1)
    want = torch.tensor(expected, dtype=dtype).reshape(-1, 1, 1)
    state = pop.initial_state(1, dtype=dtype)

    fused, _ = lif_sequence(x, state, pop.params, dt, pop.surrogate)
    stepped, _ = step_through(pop, x, state, dt)
    g = ns.Graph().add_input("x", 1).add("lif", pop).connect("x", "lif")
    with fused_only(pop):
        layer = ns.Simulator(g, dt=dt).run(x).output
    step_schedule = ns.Simulator(g, dt=dt, schedule="step").run(x).output
    for name, out in (("lif_sequence", fused), ("lif_step", stepped), ("Simulator layer", layer),
                      ("Simulator step", step_schedule)):
        assert torch.equal(out, want), f"{name}: {out.flatten().tolist()} != {expected}"


def test_fused_kernel_declines_what_it_does_not_cover():
    state = ns.Population("lif", 4).initial_state(1)
    x = torch.zeros(5, 1, 4)
    for params in (ns.LIFParams(refractory_steps=2), ns.LIFParams(input_same_step=False)):
        assert lif_sequence(x, state, params, 1e-3, ns.get_surrogate("sigmoid")) is NotImplemented
    trainable = ns.Population("lif", 4, trainable=("tau_mem",))
    assert trainable.step_sequence(x, state, 1e-3) is NotImplemented


def test_simulator_uses_the_kernel_only_when_unmonitored_and_results_agree():
    torch.manual_seed(1)
    g = ns.Graph.sequential(30, ("fc", ns.Dense(30, 20, weight=torch.rand(20, 30) * 0.3)),
                            ("lif", ns.Population("lif", 20, ns.LIFParams(tau_mem=5e-3, v_threshold=0.5))))
    pop = g.nodes["lif"]
    x = (torch.rand(50, 2, 30) < 0.3).float()
    with fused_only(pop):
        layer = ns.Simulator(g).run(x)          # fused kernel
        with pytest.raises(AssertionError, match="lif_step ran"):
            ns.Simulator(g).run(x, monitors=[ns.Monitor("lif", ("spikes", "v"))])   # a state monitor steps
    step = ns.Simulator(g, schedule="step").run(x)  # lif_step in the loop
    assert layer.output.sum() > 0
    assert torch.equal(layer.output, step.output)


def test_kernel_declines_the_delayed_subtract_reset_and_the_simulator_steps_instead():
    p = ns.LIFParams(tau_mem=5e-3, reset="subtract_delayed")
    pop = ns.Population("lif", 6, p)
    x = torch.rand(40, 2, 6, generator=torch.Generator().manual_seed(0)) * 8.0
    state = pop.initial_state(2)
    assert lif_sequence(x, state, p, 1e-3, pop.surrogate) is NotImplemented
    want, _ = step_through(pop, x, state, 1e-3)
    got = ns.Simulator(ns.Graph.sequential(6, ("pop", pop)), dt=1e-3, schedule="layer").run(x).output
    assert int(want.sum()) > 10 and torch.equal(got, want)
