"""Training through a stepped LIF loop gives the same spikes, states and gradients bit for bit as
a plain reference loop written with the operations of the step, keeps one tensor fewer per
step for the backward than a ``SpikeFunction`` of ``v - v_threshold`` would, and allocates in its
forward only the ``[batch, n]`` tensors that the equations produce (counted with a dispatch mode).

The reference (:func:`reference_recurrent`) is written out here from the equations of
``lif_step`` (forward Euler, reset to zero): ``I = W_in x[t] + W_rec s[t-1]``, ``v = v a + (1 - a) I``,
``s = SpikeFunction(v - v_th)``, ``v = v - v s``; it shares nothing with the code under test but
``SpikeFunction``'s two-argument form and the Dense weights (the same Parameters, so the same
memory layout in ``F.linear``)."""
import functools

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import neurosim as ns
from neurosim.neurons.lif import lif_step
from neurosim.surrogate import SpikeFunction, bound_surrogate, get_surrogate, spike, spike_above

pytestmark = pytest.mark.usefixtures("one_thread")

T, B, N, DT, TAU, TH = 30, 3, 24, 1e-3, 10e-3, 1.0


def recurrent_sim(surrogate="fast_sigmoid", reset="zero"):
    """x -> fc -> lif, lif ~> rec -> lif (a back-edge): the graph of ``benchmarks/bench_recurrent.py``."""
    torch.manual_seed(0)
    params = ns.LIFParams(tau_mem=TAU, v_threshold=TH, integration="euler", reset=reset)
    g = ns.Graph().add_input("x", N)
    g.add("fc", ns.Dense(N, N, weight=torch.randn(N, N) * 0.4 + 0.1))
    g.add("lif", ns.Population("lif", N, params, surrogate=surrogate, surrogate_scale=5.0))
    g.add("rec", ns.Dense(N, N, weight=torch.randn(N, N) * 0.3))
    g.chain("x", "fc", "lif").connect("lif", "rec", back=True).connect("rec", "lif")
    return ns.Simulator(g, dt=DT)


def reference_recurrent(sim, x):
    """The plain loop: returns (spikes [T, B, N], final v)."""
    fc, rec, pop = sim.graph.nodes["fc"], sim.graph.nodes["rec"], sim.graph.nodes["lif"]
    a = 1.0 - DT / TAU
    current = F.linear(x.reshape(-1, N), fc.weight).reshape(x.shape[0], x.shape[1], N)
    v = torch.zeros(x.shape[1], N)
    s = torch.zeros(x.shape[1], N)
    out = []
    for i_t in current.unbind(0):
        i = i_t + F.linear(s, rec.weight)
        v = v * a + (1.0 - a) * i
        s = SpikeFunction.apply(v - TH, pop.surrogate)
        v = torch.addcmul(v, v, s, value=-1.0)
        out.append(s)
    return torch.stack(out), v


def inputs():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(T, B, N, generator=g) < 0.4).float(), torch.randn(T, B, N, generator=g)


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "arctan"])
def test_recurrent_training_equals_the_reference_loop_bit_for_bit(surrogate):
    x, w = inputs()
    sim = recurrent_sim(surrogate)
    weights = [sim.graph.nodes["fc"].weight, sim.graph.nodes["rec"].weight]
    x_a, x_b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    res = sim.run(x_a)
    v_a = res.state.nodes["lif"].v
    grads_a = torch.autograd.grad((res.output * w).sum() + v_a.sum(), weights + [x_a])
    spikes_b, v_b = reference_recurrent(sim, x_b)
    grads_b = torch.autograd.grad((spikes_b * w).sum() + v_b.sum(), weights + [x_b])
    assert 20 < res.output.sum() < 0.5 * res.output.numel(), "the comparison needs spikes"
    assert torch.equal(res.output, spikes_b)
    assert torch.equal(v_a, v_b)
    for name, ga, gb in zip(("W_in", "W_rec", "x"), grads_a, grads_b):
        assert ga.abs().max() > 0, name
        assert torch.equal(ga, gb), f"d loss / d {name} differs: max {(ga - gb).abs().max():.3g}"


def saved_storages_per_step(sim, x):
    """Distinct storages the autograd graph keeps, per step, beyond those of a 1-step run."""
    counts = []
    for steps in (10, 20):
        seen = set()

        def pack(t):
            seen.add(t.untyped_storage().data_ptr())
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sim.run(x[:steps].clone().requires_grad_(True))
        counts.append(len(seen))
    return (counts[1] - counts[0]) / 10


def test_a_recurrent_lif_step_keeps_v_and_s_only():
    """Per step the backward keeps v (surrogate and reset), s (reset, the recurrent matmul) and
    nothing else: no v - v_threshold."""
    x, _ = inputs()
    assert saved_storages_per_step(recurrent_sim(), x) == 2


RESET_CASES = [("zero", 0), ("subtract", 0), ("value", 0), ("subtract_delayed", 0), ("subtract", 2),
               ("zero", 3)]


@pytest.mark.parametrize("reset,refractory", RESET_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spike_above_equals_spiking_the_distance(reset, refractory, dtype):
    """lif_step with a Population's spike function (through spike_above) against the same step
    with a plain callable (which lif_step cannot see through: it computes spike_fn(v - v_th),
    the original path): spikes, states and gradients equal bit for bit."""
    torch.manual_seed(0)
    params = ns.LIFParams(tau_mem=8e-3, v_threshold=0.7, v_leak=-0.1, v_reset=0.2, r=1.5, reset=reset,
                          refractory_steps=refractory, integration="exact")
    sg = get_surrogate("arctan", 3.0)
    fast = functools.partial(spike, surrogate=sg)
    plain = lambda z: spike(z, sg)                                # noqa: E731
    x = (torch.randn(25, 4, 16, dtype=dtype) * 0.9 + 0.3)
    runs = []
    for fn in (fast, plain):
        xg = x.clone().requires_grad_(True)
        v0 = torch.full((4, 16), 0.1, dtype=dtype, requires_grad=True)
        zero = torch.zeros(4, 16, dtype=dtype)
        state = ns.LIFState(v=v0, i=zero, refractory=zero)
        spikes = []
        for t in range(x.shape[0]):
            s, state = lif_step(xg[t], state, params, 1e-3, fn)
            spikes.append(s)
        spikes = torch.stack(spikes)
        w = torch.linspace(-1, 1, spikes.numel(), dtype=dtype).reshape(spikes.shape)
        grads = torch.autograd.grad((spikes * w).sum() + state.v.sum(), [xg, v0])
        runs.append((spikes, state, grads))
    (s_a, st_a, g_a), (s_b, st_b, g_b) = runs
    assert s_a.sum() > 10
    assert torch.equal(s_a, s_b)
    for field in ("v", "i", "refractory"):
        assert torch.equal(getattr(st_a, field), getattr(st_b, field)), field
    for ga, gb in zip(g_a, g_b):
        assert ga.abs().max() > 0
        assert torch.equal(ga, gb)


def test_second_derivatives_through_spike_above_equal_those_of_the_distance():
    sg = get_surrogate("fast_sigmoid", 4.0)
    v = torch.randn(50, dtype=torch.float64, requires_grad=True)
    results = []
    for s in (spike_above(v, 0.3, sg), SpikeFunction.apply(v - 0.3, sg)):
        (g,) = torch.autograd.grad((s * torch.arange(50.0, dtype=torch.float64)).sum(), v, create_graph=True)
        (gg,) = torch.autograd.grad((g ** 2).sum(), v)
        results.append((g.detach(), gg))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][1].abs().max() > 0


def test_bound_surrogate_sees_through_a_population_spike_function_only():
    sg = get_surrogate("arctan", 2.0)
    assert bound_surrogate(functools.partial(spike, surrogate=sg)) is sg
    assert bound_surrogate(functools.partial(spike, surrogate="sigmoid", scale=3.0)) == get_surrogate("sigmoid", 3.0)
    assert bound_surrogate(lambda z: spike(z, sg)) is None
    assert bound_surrogate(functools.partial(spike, "x")) is None                 # a bound positional
    assert bound_surrogate(functools.partial(torch.sigmoid)) is None
    with pytest.raises(TypeError, match="threshold must be a plain number"):
        spike_above(torch.zeros(2), torch.tensor(1.0), sg)


@pytest.mark.parametrize("grad", [False, True])
def test_spike_above_at_the_threshold_is_no_spike_as_for_the_distance(grad):
    sg = get_surrogate("fast_sigmoid")
    v = torch.tensor([0.5, 0.5 + 2 ** -20, 0.5 - 2 ** -20, 1.0], requires_grad=grad)
    assert torch.equal(spike_above(v, 0.5, sg), spike(v - 0.5, sg))
    assert spike_above(v, 0.5, sg).tolist() == [0.0, 1.0, 0.0, 1.0]


class _NewStateTensors(TorchDispatchMode):
    """Counts the tensors of ``numel`` elements that aten ops return in storage none of their
    arguments holds: new allocations of that size (in-place and ``out=`` results are not)."""

    def __init__(self, numel):
        super().__init__()
        self.numel, self.ops = numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        held = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel() == self.numel and t.untyped_storage().data_ptr() not in held:
                self.ops.append(func.__name__)
        return out


def new_state_tensors_per_step(run, steps=(10, 20)):
    """``[batch, n]``-sized allocations per step of ``run(steps)`` (the difference of two lengths)."""
    counts = []
    for n in steps:
        mode = _NewStateTensors(B * N)
        with mode:
            run(n)
        counts.append(len(mode.ops))
    return (counts[1] - counts[0]) / (steps[1] - steps[0])


def test_a_training_lif_step_allocates_only_what_the_equations_keep():
    """One step of the benchmark's LIF (Euler, reset to zero, a Population's spike function),
    forward under autograd: four ``[batch, n]`` tensors, v a, (1 - a) I, s and the reset membrane.
    The sum v a + (1 - a) I goes into v a and the spike is one comparison into a float tensor:
    no v a + (1 - a) I copy, no v - v_th, no bool mask and no cast. Each temporary more costs
    more than its size in a long stepped loop (glibc reuses a freed aligned block only once it
    has merged with a neighbour, see ``neurosim.neurons.lif._add_into``)."""
    pop = ns.Population("lif", N, ns.LIFParams(tau_mem=TAU, v_threshold=TH, integration="euler", reset="zero"),
                        surrogate="fast_sigmoid")
    x = torch.randn(B, N).requires_grad_(True)
    state = pop.initial_state(B)
    state = state._replace(v=torch.rand(B, N).requires_grad_(True))
    mode = _NewStateTensors(B * N)
    with mode:
        s, new = pop.step(x, state, DT)
    assert s.requires_grad and new.v.requires_grad
    assert len(mode.ops) == 4, mode.ops


def test_a_stepped_recurrent_training_step_allocates_six_state_sized_tensors():
    """Per step of the recurrent graph (forward under autograd): the recurrent matmul, the sum of
    the port's two inputs, and the LIF's four (see the test above)."""
    x, _ = inputs()
    sim = recurrent_sim()
    assert new_state_tensors_per_step(lambda n: sim.run(x[:n].clone().requires_grad_(True))) == 6
