"""The fused LIF sequence kernel equals stepping lif_step: spikes and states (v, i, refractory)
bit for bit, gradients to rounding (into the input, the initial state and every trainable
parameter, across consecutive ``Simulator.run`` calls, and second derivatives inside
``higher_order_gradients``), over the grid of every reset mode x refractory 0/2 x
input_same_step x integration x float / scalar / per-neuron trainable parameters x float64 /
float32; and the threshold rule s = H(v - v_threshold) with H(0) = 0 in both paths.

The Simulator runs the kernel for a population that forms a block of its own (layer schedule)
and is not watched by a state monitor; the tests that go through the Simulator make ``lif_step``
raise (:func:`fused_only`), so they cannot pass by stepping it."""
import itertools
from unittest import mock

import pytest
import torch

import neurosim as ns
import neurosim.neurons.lif_fused as lif_fused
from neurosim.neurons.lif import lif_sequence

pytestmark = pytest.mark.usefixtures("one_thread")

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


def test_fused_kernel_declines_only_what_stepping_would_compute_otherwise():
    """NotImplemented (the caller steps lif_step) for an empty sequence, a state or a parameter
    tensor of another dtype or of a shape that would change the state's shape, and a refractory
    count that requires a gradient; the settings it used to decline now run fused."""
    pop = ns.Population("lif", 4)
    state = pop.initial_state(1)
    x = torch.zeros(5, 1, 4)
    surrogate = ns.get_surrogate("sigmoid")
    for params in (ns.LIFParams(refractory_steps=2), ns.LIFParams(input_same_step=False),
                   ns.LIFParams(reset="subtract_delayed")):
        assert lif_sequence(x, state, params, 1e-3, surrogate) is not NotImplemented
    assert ns.Population("lif", 4, trainable=("tau_mem", "v_threshold")).step_sequence(x, state, 1e-3) \
        is not NotImplemented
    declined = [
        (torch.zeros(0, 1, 4), state, ns.LIFParams()),
        (x.double(), state, ns.LIFParams()),
        (x, state, ns.LIFParams(v_threshold=torch.ones(4, dtype=torch.float64))),
        (x, state, ns.LIFParams(v_threshold=torch.ones(1, 1, 4))),
        (x, state._replace(refractory=state.refractory.clone().requires_grad_(True)), ns.LIFParams()),
    ]
    for xs, st, params in declined:
        assert lif_sequence(xs, st, params, 1e-3, surrogate) is NotImplemented


FIELDS = ("tau_mem", "v_threshold", "v_leak", "v_reset", "r")
GRID = list(itertools.product(["subtract", "zero", "value", "subtract_delayed"], [0, 2], [True, False],
                              ["exact", "euler"], ["float", "scalar", "per_neuron"], [F64, torch.float32]))


def grid_population(reset, refractory, same_step, integration, kind, dtype, n=8, seed=0):
    """A LIF population with every continuous field trainable (``kind`` scalar or per_neuron) or
    plain floats, leak and reset away from 0 and r != 1 so that every term of the kernel counts."""
    g = torch.Generator().manual_seed(seed)
    base = dict(tau_mem=6e-3, v_threshold=0.5, v_leak=-0.1, v_reset=0.05, r=1.5)
    values = {}
    for name, value in base.items():
        if kind == "per_neuron":
            values[name] = value * (1 + 0.2 * torch.rand(n, generator=g, dtype=dtype))
        else:
            values[name] = torch.tensor(value, dtype=dtype) if kind == "scalar" else value
    params = ns.LIFParams(**values, reset=reset, refractory_steps=refractory, input_same_step=same_step,
                          integration=integration)
    return ns.Population("lif", n, params, surrogate="arctan", trainable=FIELDS if kind != "float" else ()).to(dtype)


@pytest.mark.parametrize("reset,refractory,same_step,integration,kind,dtype", GRID,
                         ids=lambda v: str(v).replace("torch.", "") if isinstance(v, torch.dtype) else None)
def test_fused_equals_stepping_over_the_grid(reset, refractory, same_step, integration, kind, dtype, monkeypatch):
    """Spikes, v, i and refractory equal bit for bit (with and without autograd), and the gradient
    of a loss on the spikes and the final v into x, v0, i0 and every trainable parameter equals
    autograd through lif_step (float64: to 1e-10 of the largest entry; float32: 1e-3, as the
    scalar parameters' gradients sum 720 terms that partly cancel). The backward runs in chunks
    of 7 of the 30 steps (its CPU temporaries are chunked), so the chunk boundaries count too."""
    T, B, N, dt = 30, 3, 8, 1e-3
    monkeypatch.setattr(lif_fused, "CHUNK_BYTES", 7 * B * N * torch.finfo(dtype).bits // 8)
    pop = grid_population(reset, refractory, same_step, integration, kind, dtype, N)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=g, dtype=dtype) * 0.8 + 0.5
    v0 = torch.rand(B, N, generator=g, dtype=dtype) * 0.8 - 0.2
    i0 = torch.randn(B, N, generator=g, dtype=dtype)
    ref0 = torch.randint(0, 3, (B, N), generator=g).to(dtype) if refractory else torch.zeros(B, N, dtype=dtype)
    w, u = torch.randn(T, B, N, generator=g, dtype=dtype), torch.randn(B, N, generator=g, dtype=dtype)
    trained = [getattr(pop, name) for name in FIELDS] if kind != "float" else []
    runs = {}
    for how in ("fused", "stepped"):
        leaves = [t.clone().requires_grad_(True) for t in (x, v0, i0)]
        state = ns.LIFState(v=leaves[1], i=leaves[2], refractory=ref0)
        if how == "fused":
            spikes, final = lif_sequence(leaves[0], state, pop.params, dt, pop.surrogate)
        else:
            spikes, final = step_through(pop, leaves[0], state, dt)
        loss = (spikes * w).sum() + (final.v * u).sum()
        runs[how] = spikes, final, torch.autograd.grad(loss, leaves + trained, allow_unused=True)
    with torch.no_grad():
        runs["no grad"] = lif_sequence(x, ns.LIFState(v=v0, i=i0, refractory=ref0), pop.params, dt, pop.surrogate)
    spikes, final, grads = runs["stepped"]
    assert 0.03 < float(spikes.detach().mean()) < 0.5, "the comparison needs spikes, not silence or saturation"
    if refractory:
        assert float(final.refractory.max()) > 0
    for how in ("fused", "no grad"):
        got_spikes, got_final = runs[how][:2]
        assert torch.equal(got_spikes, spikes), how
        for field in ("v", "i", "refractory"):
            assert torch.equal(getattr(got_final, field), getattr(final, field)), (how, field)
    rel = 1e-10 if dtype == F64 else 1e-3
    for name, got, want in zip(("x", "v0", "i0") + FIELDS, runs["fused"][2], grads):
        if want is None or not want.abs().max() > 0:     # no path from it (v_reset with reset="zero"; i0)
            assert got is None or not got.abs().max() > 0, name
            continue
        assert_same_gradient(got, want, rel)


def test_retained_graph_gives_the_same_gradients_twice():
    """The backward works in place on buffers of its own only: a second backward through a
    retained graph gives the same gradients (trainable, refractory and delayed settings)."""
    pop = grid_population("subtract_delayed", 2, False, "exact", "per_neuron", F64)
    x = (torch.randn(25, 2, 8, dtype=F64) * 0.8 + 0.5).requires_grad_(True)
    state = pop.initial_state(2, dtype=F64)
    spikes, final = lif_sequence(x, state, pop.params, 1e-3, pop.surrogate)
    loss = spikes.sum() + final.v.sum()
    first = torch.autograd.grad(loss, [x, pop.tau_mem, pop.v_threshold], retain_graph=True)
    second = torch.autograd.grad(loss, [x, pop.tau_mem, pop.v_threshold])
    for a, b in zip(first, second):
        assert a.abs().max() > 0 and torch.equal(a, b)


def test_time_constants_below_the_floor_have_no_gradient_as_when_stepping():
    """decay_factor floors a tensor tau_mem at dt/100 (the clamp's gradient is zero below it):
    the fused gradient into a per-neuron tau_mem with entries under the floor equals stepping."""
    dt = 1e-3
    tau = torch.tensor([5e-3, 1e-6, 2e-5, 8e-3], dtype=F64)          # 1e-6 < dt/100 = 1e-5 < 2e-5
    pop = ns.Population("lif", 4, ns.LIFParams(tau_mem=tau, v_threshold=0.4), trainable=("tau_mem",)).double()
    x = torch.rand(30, 3, 4, dtype=F64)
    grads = []
    for fused in (True, False):
        state = pop.initial_state(3, dtype=F64)
        spikes, final = (lif_sequence(x, state, pop.params, dt, pop.surrogate) if fused
                         else step_through(pop, x, state, dt))
        (grad,) = torch.autograd.grad(spikes.sum() + final.v.sum(), pop.tau_mem)
        grads.append(grad)
    assert grads[1][1] == 0 and grads[1][2] != 0
    assert grads[0][1] == 0
    assert_same_gradient(grads[0], grads[1])


def test_second_derivatives_of_the_new_settings_equal_stepping():
    """Inside higher_order_gradients() a create_graph backward rebuilds the stepped computation:
    the first and second derivatives into the weight and into trainable tau_mem and v_threshold
    equal autograd through lif_step, with refractory steps, a late input and the delayed reset."""
    torch.manual_seed(0)
    x = torch.rand(20, 2, 4, dtype=F64)
    params = ns.LIFParams(v_threshold=0.3, refractory_steps=1, input_same_step=False, reset="subtract_delayed")
    results = []
    for fused in (True, False):
        w = torch.ones(4, dtype=F64, requires_grad=True)
        pop = ns.Population("lif", 4, params, surrogate="arctan", trainable=("tau_mem", "v_threshold")).double()
        with ns.higher_order_gradients():
            state = pop.initial_state(2, dtype=F64)
            spikes, final = (lif_sequence(x * w, state, pop.params, 1e-3, pop.surrogate) if fused
                             else step_through(pop, x * w, state, 1e-3))
        loss = (spikes.sum(0) * w).sum() + (final.v * w).sum()
        leaves = [w, pop.tau_mem, pop.v_threshold]
        first = torch.autograd.grad(loss, leaves, create_graph=True)
        second = torch.autograd.grad(sum((g ** 2).sum() for g in first), leaves)
        results.append([g.detach() for g in first] + list(second))
    for got, want in zip(*results):
        assert want.abs().max() > 0
        assert_same_gradient(got, want, 1e-10)


@pytest.mark.parametrize("setting", ["refractory", "late_input", "subtract_delayed", "trainable"])
def test_the_simulator_runs_the_kernel_for_the_new_settings(setting):
    """Dense -> LIF through the layer schedule with lif_step made to raise: the spikes and the
    weight and parameter gradients equal the step schedule's."""
    params = dict(refractory=ns.LIFParams(tau_mem=5e-3, v_threshold=0.5, refractory_steps=2),
                  late_input=ns.LIFParams(tau_mem=5e-3, v_threshold=0.5, input_same_step=False),
                  subtract_delayed=ns.LIFParams(tau_mem=5e-3, v_threshold=0.5, reset="subtract_delayed"),
                  trainable=ns.LIFParams(tau_mem=5e-3, v_threshold=0.5, v_leak=0.1))[setting]
    trainable = ("tau_mem", "v_threshold", "v_leak") if setting == "trainable" else ()
    g = ns.Graph.sequential(30, ("fc", ns.Dense(30, 20, weight=torch.rand(20, 30, dtype=F64) * 0.3)),
                            ("lif", ns.Population("lif", 20, params, trainable=trainable).double()))
    pop = g.nodes["lif"]
    x = (torch.rand(50, 2, 30, generator=torch.Generator().manual_seed(0)) < 0.3).to(F64)
    leaves = [g.nodes["fc"].weight] + [getattr(pop, name) for name in trainable]
    with fused_only(pop):
        layer = ns.Simulator(g).run(x).output
    stepped = ns.Simulator(g, schedule="step").run(x).output
    assert 0 < layer.sum() < 0.5 * layer.numel()
    assert torch.equal(layer, stepped)
    for a, b in zip(torch.autograd.grad(layer.sum(), leaves), torch.autograd.grad(stepped.sum(), leaves)):
        assert_same_gradient(a, b)


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


def _training_pass(x, params, surrogate):
    """One fused forward and backward from rest; returns (spikes, dL/dx) with L = sum(s w) + sum(v_T)."""
    state = state_from(torch.zeros_like(x[0]))
    spikes, final = lif_sequence(x, state, params, 1e-3, surrogate)
    w = torch.linspace(-1.0, 2.0, spikes.numel(), dtype=x.dtype).reshape(spikes.shape)
    ((spikes * w).sum() + final.v.sum()).backward()
    return spikes, x.grad


def test_training_buffers_are_reused_only_when_nothing_refers_to_them():
    """The saved h' (which the backward turns into dL/dx) and the spikes of a training forward come
    from a per-thread workspace: reused by the next forward once nothing else holds them (no page
    faults on a fresh buffer), never while a result that lives in them is still held."""
    torch.manual_seed(3)
    params = ns.LIFParams(tau_mem=6e-3, v_threshold=0.5, reset="zero")
    sg = ns.Population("lif", 10, params).surrogate
    xs = [(torch.randn(30, 2, 10, dtype=F64) * 0.6 + 0.3).requires_grad_(True) for _ in range(3)]
    expected = []
    for x in xs:                                             # reference: each pass from fresh buffers
        with mock.patch.object(lif_fused, "WORKSPACE_BUFFERS", 0), mock.patch.object(
                lif_fused, "_workspace", lif_fused.threading.local()):
            s, g = _training_pass(x.detach().clone().requires_grad_(True), params, sg)
        expected.append((s.clone(), g.clone()))
    x0, x1, x2 = xs
    with mock.patch.object(lif_fused, "_workspace", lif_fused.threading.local()):
        s0, g0 = _training_pass(x0, params, sg)               # held: s0 and x0.grad (written into h')
        s1, g1 = _training_pass(x1, params, sg)
        held = {t.untyped_storage().data_ptr() for t in (s0, g0)}
        assert not held & {t.untyped_storage().data_ptr() for t in (s1, g1)}, "a held result's buffer was reused"
        for (s, g), (s_ref, g_ref) in zip([(s0, g0), (s1, g1)], expected):
            assert torch.equal(s, s_ref) and torch.equal(g, g_ref), "a later pass overwrote a held result"
        pool = {t.data_ptr() for t in lif_fused._workspace.buffers}
        freed = s0.data_ptr()
        del s0, g0
        x0.grad = None
        s2, g2 = _training_pass(x2, params, sg)
        assert {t.data_ptr() for t in lif_fused._workspace.buffers} == pool, "free buffers were not reused"
        assert s2.data_ptr() == freed
        assert torch.equal(s2, expected[2][0]) and torch.equal(g2, expected[2][1])
        assert torch.equal(s1, expected[1][0]) and torch.equal(g1, expected[1][1])
    assert expected[0][0].sum() > 5


def test_a_view_of_a_training_buffer_keeps_it_from_reuse():
    torch.manual_seed(4)
    params = ns.LIFParams(tau_mem=6e-3, v_threshold=0.5)
    sg = ns.Population("lif", 10, params).surrogate
    with mock.patch.object(lif_fused, "_workspace", lif_fused.threading.local()):
        x = (torch.randn(20, 2, 10) + 0.5).requires_grad_(True)
        s, _ = _training_pass(x, params, sg)
        last = s[-1]                                          # a view only
        kept = last.clone()
        del s
        x.grad = None
        s_next, _ = _training_pass((torch.randn(20, 2, 10) + 0.5).requires_grad_(True), params, sg)
        assert torch.equal(last, kept)
        assert s_next.untyped_storage().data_ptr() != last.untyped_storage().data_ptr()


def test_two_forwards_before_their_backwards_and_a_held_storage_keep_their_buffers():
    """A graph not yet run backward holds its h' (C++ references only) and a storage object holds
    its memory: neither buffer may be handed to a later forward."""
    torch.manual_seed(5)
    params = ns.LIFParams(tau_mem=6e-3, v_threshold=0.5, reset="subtract")
    sg = ns.Population("lif", 10, params).surrogate
    xs = [(torch.randn(20, 2, 10, dtype=F64) + 0.4) for _ in range(3)]
    with mock.patch.object(lif_fused, "WORKSPACE_BUFFERS", 0):
        expected = [torch.autograd.grad(lif_sequence(x.requires_grad_(True), state_from(torch.zeros_like(x[0])),
                                                     params, 1e-3, sg)[0].sum(), x)[0] for x in xs]
    with mock.patch.object(lif_fused, "_workspace", lif_fused.threading.local()):
        for x in xs:
            x.grad = None
        losses = [lif_sequence(x, state_from(torch.zeros_like(x[0])), params, 1e-3, sg)[0].sum() for x in xs[:2]]
        first = torch.autograd.grad(losses[0], xs[0])[0]
        second = torch.autograd.grad(losses[1], xs[1])[0]
        s_held = lif_sequence(xs[2].detach(), state_from(torch.zeros_like(xs[2][0])), params, 1e-3, sg)[0]
        spikes = lif_sequence(xs[2], state_from(torch.zeros_like(xs[2][0])), params, 1e-3, sg)[0]
        storage, kept = spikes.untyped_storage(), spikes.clone()
        del spikes
        lif_sequence(xs[0], state_from(torch.zeros_like(xs[0][0])), params, 1e-3, sg)[0].sum().backward()
        assert torch.equal(torch.tensor([], dtype=F64).set_(storage).view_as(kept), kept)
    assert torch.equal(first, expected[0]) and torch.equal(second, expected[1])
    assert first.abs().max() > 0 and s_held.sum() > 0


def test_the_workspace_holds_at_most_its_byte_budget_and_can_be_released():
    """Buffers larger than half of WORKSPACE_BYTES are never pooled, the pool never holds more
    than WORKSPACE_BYTES, and release_workspace empties it."""
    params = ns.LIFParams(tau_mem=6e-3, v_threshold=0.5, reset="zero")
    sg = ns.Population("lif", 10, params).surrogate
    x = (torch.randn(30, 2, 10, dtype=F64) * 0.6 + 0.3).requires_grad_(True)
    size = x.numel() * x.element_size()
    with mock.patch.object(lif_fused, "_workspace", lif_fused.threading.local()):
        with mock.patch.object(lif_fused, "WORKSPACE_BYTES", 2 * size - 1):
            _training_pass(x, params, sg)
            assert lif_fused._workspace.buffers == []                      # too large to keep
        with mock.patch.object(lif_fused, "WORKSPACE_BYTES", 3 * size):
            for _ in range(3):
                _training_pass(x.detach().clone().requires_grad_(True), params, sg)
            kept = lif_fused._workspace.buffers
            assert 0 < len(kept) and sum(b.numel() * b.element_size() for b in kept) <= 3 * size
        lif_fused.release_workspace()
        assert lif_fused._workspace.buffers == []
