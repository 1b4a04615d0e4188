"""neurosim against Brian2, the reference simulator: same neurons, same inputs, same spikes.

Brian2 runs with the numpy code-generation target, in float64; neurosim runs through
``Population`` + ``Simulator`` (and a ``Graph`` with a back-edge for the recurrent networks), in
float64 too (``Dense`` keeps the float64 weights it is built with), so that the remaining
differences are rounding, not precision.

Schedule alignment (dt = 0.1 ms, Brian2's ``Network`` order start / groups / thresholds /
synapses / resets / end):

* neurosim step k integrates [k dt, (k+1) dt], thresholds, resets, and reports its spike at index k.
  Brian2's step n does the same for [t_n, t_{n+1}] (state update, then threshold, reset) and
  stamps the spike t_n = n dt. So neurosim step k <-> Brian2 step k, spike index k <-> time k dt,
  and the neurosim state after step k <-> a Brian2 ``StateMonitor(when="end")`` sample at t_k.
* External currents: a ``TimedArray`` read into a parameter by ``run_regularly(when="start")``,
  held over the step <-> neurosim input ``x[k]`` with ``input_same_step=True``.
* Synaptic input: a Brian2 spike of step n is propagated in the synapses slot, after that step's
  state update, so it acts on the state from step n+1 on. neurosim's feed-forward edge delivers
  ``x[k]`` to step k, so a neurosim input spike at index k <-> a Brian2 generator spike at
  step k-1; a neurosim back-edge delivers the spikes of step k-1 to step k, exactly Brian2's
  recurrent timing. (``input_same_step=False`` instead removes the shift; tested for CubaLIF.)
* Refractoriness: Brian2 ``refractory = (n+1) dt`` (no update for n steps after the spike,
  free again n+1 steps after it) <-> neurosim ``refractory_steps = n``.
* Integration: LIF, CubaLIF, LI and ALIF use Brian2's ``method="exact"`` (neurosim
  ``integration="exact"`` is the same exact propagator for input held over the step; for CubaLIF
  the exact solution of the coupled (v, I) system); LI and ALIF also ``method="euler"`` <->
  ``integration="euler"``. IF's ``v += dt r I`` is exact for a held input and is Brian2's
  ``method="euler"`` (Brian2's ``"exact"`` refuses an equation without v on its right-hand side).
  Izhikevich and AdEx use ``method="euler"`` (neurosim's forward Euler from the values at the
  start of the step).
* ALIF: Brian2 updates v and b (``db/dt = -b / tau_adapt``, not held while refractory), then
  thresholds on ``v > v_th + beta b`` with the decayed b, then resets v and adds 1 to b: the order
  of neurosim's alif_step (b' = rho b, theta = v_th + beta b', s, reset, b = b' + s).

The fused LIF kernel (``lif_sequence``, used for a population that is its own block and has no
state monitor) is compared with Brian2 too: those runs have no monitors, ``lif_step`` is made to
raise, and their spikes (and final v) are compared.

Comparisons: spike steps are compared exactly (every neuron's list of spike indices is equal);
membrane traces over the whole run. Tolerances, with the largest difference measured in
brackets: LIF, CubaLIF, the LIF networks, COBA, IF, LI and ALIF (exact and Euler) 1e-12 V
[<= 7e-16 V; IF 0]; ALIF's b 1e-12 [exact 0; Euler 8e-14, Brian2's b - dt b / tau and
neurosim's b (1 - dt / tau) round differently and the error adds up over the ~600 steps of b's
memory]. Only float64 rounding differs there; a weight rounded to float32 (1e-7 relative) would
move v by 4e-10 to 2e-9 V in the network tests (measured) and fail these bounds. Euler models
with a spike upswing: AdEx 1e-10 V [3e-16 V], Izhikevich 1e-8 mV [1.3e-10 mV]: Brian2 evaluates
the right-hand side in SI units and in another order, and every upswing (exponential or
quadratic) amplifies those 1e-16 relative rounding differences, most for Izhikevich's quadratic
in mV.
"""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

import neurosim as ns

b2 = pytest.importorskip("brian2")
pytestmark = pytest.mark.slow

DT = 1e-4          # seconds
STEPS = 2000       # 200 ms


@pytest.fixture(autouse=True)
def brian2_scope():
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = DT * b2.second
    yield


# ---------------------------------------------------------------------------- helpers
def run_brian2(group, *objects, variables=("v",), spikes=True, steps=STEPS):
    """Run ``group`` (plus ``objects``) with a spike monitor (unless ``spikes=False``) and an
    end-of-step monitor of ``variables``. Returns (spike steps per neuron or None,
    {variable: [steps, N] in SI units})."""
    mon = b2.StateMonitor(group, list(variables), record=True, when="end")
    spike_mon = b2.SpikeMonitor(group) if spikes else None
    net = b2.Network(group, mon, *objects, *([spike_mon] if spikes else []))
    net.run(steps * DT * b2.second)
    traces = {name: np.asarray(getattr(mon, name + "_")).T for name in variables}
    if not spikes:
        return None, traces
    trains = spike_mon.spike_trains()
    steps_of = [np.round(np.asarray(trains[i] / b2.second) / DT).astype(int).tolist() for i in range(len(group))]
    return steps_of, traces


def spike_lists(spikes):
    """[T, N] 0/1 array -> the spike steps of each neuron."""
    return [np.flatnonzero(spikes[:, i]).tolist() for i in range(spikes.shape[1])]


def run_neurosim(graph, inputs, node="pop", variables=("v",), state=None):
    """Step the graph (state monitors select ``lif_step``) and return (spike steps per neuron,
    {variable: [steps, N]}); float64 inputs give a float64 run."""
    mon = ns.Monitor(node, ("spikes", *variables))
    with torch.no_grad():
        rec = ns.Simulator(graph, dt=DT).run(inputs, state=state, monitors=[mon]).records[node]
    return spike_lists(rec["spikes"][:, 0].numpy()), {v: rec[v][:, 0].numpy() for v in variables}


def run_fused(graph, inputs, node="pop"):
    """Run without monitors, with ``lif_step`` made to raise, so the population ran the fused
    kernel. Returns (spike steps per neuron, final v [N])."""
    pop = graph.nodes[node]
    with torch.no_grad(), mock.patch.object(pop, "step", side_effect=AssertionError("lif_step ran")):
        result = ns.Simulator(graph, dt=DT).run(inputs)
    return spike_lists(result.outputs[node][:, 0].numpy()), result.state.nodes[node].v[0].numpy()


def assert_same_spikes(ns_spikes, b2_spikes, min_total=5):
    """Every neuron has exactly the same spike steps in both simulators."""
    assert sum(map(len, b2_spikes)) >= min_total, "the reference must spike to make the test meaningful"
    for i, (a, b) in enumerate(zip(ns_spikes, b2_spikes)):
        assert a == b, f"neuron {i}: neurosim spikes at steps {a}, Brian2 at {b}"
    assert len(ns_spikes) == len(b2_spikes)


def assert_close_traces(v_ns, v_b2, atol):
    """max |neurosim - Brian2| over the whole run and every neuron below ``atol``."""
    assert v_ns.shape == v_b2.shape
    err = np.abs(v_ns - v_b2).max()
    assert err < atol, f"max |neurosim - Brian2| = {err:g} > {atol:g}"


def currents(n, scale, seed=0):
    """[STEPS, n] test currents: constants, a sinusoid and piecewise-constant random steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS) * DT
    cols = [np.full(STEPS, 1.0), np.full(STEPS, 1.6),
            1.2 + 0.6 * np.sin(2 * np.pi * 15 * t),
            np.repeat(rng.uniform(0.6, 2.0, STEPS // 100), 100)]
    return scale * np.stack(cols[:n], 1)


def current_drive(values):
    """(TimedArray for Brian2, and the neurosim [T, 1, N] input) for currents in amperes."""
    ta = b2.TimedArray(values * b2.amp, dt=DT * b2.second)
    return ta, torch.from_numpy(values).unsqueeze(1)


def current_driven_group(n, eqs, ta, **kwargs):
    """A NeuronGroup whose ``I_ext`` reads ``ta`` at the start of every step."""
    G = b2.NeuronGroup(n, eqs + "\nI_ext : amp", **kwargs)
    G.run_regularly("I_ext = ta(t, i)", when="start")
    return G


def brian2_refractory(refractory_steps):
    """Brian2's refractory period for neurosim's ``refractory_steps`` (False for none)."""
    return (refractory_steps + 1) * DT * b2.second if refractory_steps else False


def single_population_graph(model, params, n):
    g = ns.Graph().add_input("x", n).add("pop", ns.Population(model, n, params))
    return g.connect("x", "pop")


def poisson_steps(n, rate_hz, seed, first=1):
    """Fixed random spike steps (a Bernoulli process per step), [STEPS, n] 0/1 with rows < first zero."""
    rng = np.random.default_rng(seed)
    s = (rng.random((STEPS, n)) < rate_hz * DT).astype(float)
    s[:first] = 0
    return s


def spike_generator(s):
    """Brian2 generator for the neurosim input spikes ``s [STEPS, n]``: one step earlier (see the
    module docstring)."""
    idx, steps = np.nonzero(s.T)
    return b2.SpikeGeneratorGroup(s.shape[1], idx, (steps - 1) * DT * b2.second)


def brian2_synapses(source, target, weights, on_pre, unit="1", offset=0):
    """Synapses from ``source`` neuron ``offset + pre`` to ``target`` neuron ``post`` for every
    non-zero ``weights[post, pre]``, with a per-synapse ``w`` in ``unit`` (a Brian2 unit name)."""
    syn = b2.Synapses(source, target, f"w : {unit}", on_pre=on_pre)
    post, pre = np.nonzero(weights)
    syn.connect(i=pre + offset, j=post)
    syn.w = weights[post, pre] * (1 if unit == "1" else getattr(b2, unit))
    return syn


# ---------------------------------------------------------------------------- LIF
LIF_B2 = dict(v_leak=-65e-3 * b2.volt, v_th=-50e-3 * b2.volt, v_r=-65e-3 * b2.volt,
              r=100e6 * b2.ohm, tau=10e-3 * b2.second)
LIF_NS = dict(tau_mem=10e-3, v_leak=-65e-3, v_threshold=-50e-3, v_reset=-65e-3, r=100e6)
LIF_EQS = "dv/dt = (v_leak - v + r * I_ext) / tau : volt (unless refractory)"
LIF_RESETS = {"value": "v = v_r", "subtract": "v -= v_th - v_r"}


def brian2_lif_with_currents(values, reset, refractory_steps):
    ta, _ = current_drive(values)
    G = current_driven_group(values.shape[1], LIF_EQS, ta, threshold="v > v_th", reset=LIF_RESETS[reset],
                             method="exact", refractory=brian2_refractory(refractory_steps),
                             namespace=dict(LIF_B2, ta=ta))
    G.v = LIF_B2["v_leak"]
    return run_brian2(G)


@pytest.mark.parametrize("reset, refractory_steps", [("value", 20), ("subtract", 0)])
def test_lif_with_external_currents(reset, refractory_steps):
    """Four LIF neurons under constant, sinusoidal and stepped currents (0.1-0.3 nA), lif_step."""
    values = currents(4, 0.18e-9)
    b2_spikes, b2_traces = brian2_lif_with_currents(values, reset, refractory_steps)
    params = ns.LIFParams(**LIF_NS, reset=reset, refractory_steps=refractory_steps)
    ns_spikes, ns_traces = run_neurosim(single_population_graph("lif", params, 4),
                                        torch.from_numpy(values).unsqueeze(1))
    assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)


@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_lif_fused_kernel_with_external_currents(reset):
    """The same neurons without monitors: the fused kernel's spikes and final v against Brian2."""
    values = currents(4, 0.18e-9)
    b2_spikes, b2_traces = brian2_lif_with_currents(values, reset, 0)
    graph = single_population_graph("lif", ns.LIFParams(**LIF_NS, reset=reset), 4)
    ns_spikes, v_final = run_fused(graph, torch.from_numpy(values).unsqueeze(1))
    assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(v_final, b2_traces["v"][-1], atol=1e-12)


# ---------------------------------------------------------------------------- CubaLIF
@pytest.mark.parametrize("input_same_step", [True, False])
def test_cuba_lif_with_synaptic_input_spikes(input_same_step):
    """Four CubaLIF neurons (tau_syn 3 ms, tau_mem 12 ms, refractory 1 ms), each driven by its own
    fixed random spike train through an exponential synapse ``I += w`` of its own weight."""
    n = 4
    w = np.array([0.3, 0.45, 0.6, 0.8]) * 1e-9               # A
    s = poisson_steps(n, 300.0, seed=1)                       # neurosim input, index k
    idx, steps = np.nonzero(s.T)
    shift = 1 if input_same_step else 0                      # Brian2 spike step = k - shift
    gen = b2.SpikeGeneratorGroup(n, idx, (steps - shift) * DT * b2.second)
    eqs = """dv/dt = (v_leak - v + r * I) / tau_mem : volt (unless refractory)
             dI/dt = -I / tau_syn : amp"""
    G = b2.NeuronGroup(n, eqs, threshold="v > v_th", reset="v = v_r", refractory=1.0e-3 * b2.second,
                       method="exact", namespace=dict(v_leak=-65e-3 * b2.volt, v_th=-55e-3 * b2.volt,
                                                      v_r=-70e-3 * b2.volt, r=80e6 * b2.ohm,
                                                      tau_mem=12e-3 * b2.second, tau_syn=3e-3 * b2.second))
    G.v = -65e-3 * b2.volt
    syn = b2.Synapses(gen, G, "w : amp", on_pre="I_post += w")
    syn.connect(j="i")
    syn.w = w * b2.amp
    b2_spikes, b2_traces = run_brian2(G, gen, syn)

    params = ns.CubaLIFParams(tau_syn=3e-3, tau_mem=12e-3, r=80e6, v_leak=-65e-3, v_threshold=-55e-3,
                              v_reset=-70e-3, reset="value", refractory_steps=9, input_same_step=input_same_step)
    x = torch.from_numpy(s * w).unsqueeze(1)                 # current increments [T, 1, n]
    ns_spikes, ns_traces = run_neurosim(single_population_graph("cuba_lif", params, n), x)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)


# ---------------------------------------------------------------------------- IF
IF_NS = dict(r=5e9, v_threshold=20e-3, v_reset=-5e-3)          # r = 1/C with C = 200 pF, in V/(A s)
IF_RESETS = {"value": "v = v_r", "subtract": "v -= v_th - v_r", "zero": "v = 0 * volt"}


@pytest.mark.parametrize("reset, refractory_steps", [("value", 20), ("subtract", 0), ("zero", 5)])
def test_if_with_external_currents(reset, refractory_steps):
    """Four IF neurons (dv/dt = r I, no leak) under 0.2-0.6 nA, for each reset mode."""
    values = currents(4, 0.3e-9, seed=4)
    ta, x = current_drive(values)
    G = current_driven_group(4, "dv/dt = r_if * I_ext : volt (unless refractory)", ta, threshold="v > v_th",
                             reset=IF_RESETS[reset], method="euler", refractory=brian2_refractory(refractory_steps),
                             namespace=dict(r_if=IF_NS["r"] * b2.ohm / b2.second, v_th=IF_NS["v_threshold"] * b2.volt,
                                            v_r=IF_NS["v_reset"] * b2.volt, ta=ta))
    b2_spikes, b2_traces = run_brian2(G)

    params = ns.IFParams(**IF_NS, reset=reset, refractory_steps=refractory_steps)
    ns_spikes, ns_traces = run_neurosim(single_population_graph("if", params, 4), x)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=40)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)


# ---------------------------------------------------------------------------- LI
@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_li_readout_with_external_currents(integration):
    """Four LI readouts (no threshold): neurosim's output, the membrane v, against Brian2's v."""
    values = currents(4, 0.18e-9, seed=5)
    ta, x = current_drive(values)
    G = current_driven_group(4, "dv/dt = (v_leak - v + r * I_ext) / tau : volt", ta, method=integration,
                             namespace=dict(LIF_B2, ta=ta))
    G.v = LIF_B2["v_leak"]
    _, b2_traces = run_brian2(G, spikes=False)

    params = ns.LIParams(tau_mem=LIF_NS["tau_mem"], v_leak=LIF_NS["v_leak"], r=LIF_NS["r"], integration=integration)
    with torch.no_grad():
        out = ns.Simulator(single_population_graph("li", params, 4), dt=DT).run(x).output[:, 0].numpy()
    assert np.ptp(out) > 10e-3, "the readout must move to make the comparison meaningful"
    assert_close_traces(out, b2_traces["v"], atol=1e-12)


# ---------------------------------------------------------------------------- ALIF
ALIF_NS = dict(LIF_NS, tau_adapt=60e-3, beta=4e-3)
ALIF_RESETS = {"value": "v = v_r; b += 1", "subtract": "v -= v_th + beta * b - v_r; b += 1"}


@pytest.mark.parametrize("reset, refractory_steps, integration",
                         [("subtract", 0, "exact"), ("value", 20, "exact"), ("subtract", 0, "euler")])
def test_alif_with_external_currents(reset, refractory_steps, integration):
    """Four ALIF neurons (threshold raised by beta = 4 mV per spike, decaying with 60 ms) under
    0.2-0.45 nA: spikes, v and the adaptation b."""
    values = currents(4, 0.22e-9, seed=6)
    ta, x = current_drive(values)
    eqs = LIF_EQS + "\ndb/dt = -b / tau_adapt : 1"
    G = current_driven_group(4, eqs, ta, threshold="v > v_th + beta * b", reset=ALIF_RESETS[reset],
                             method=integration, refractory=brian2_refractory(refractory_steps),
                             namespace=dict(LIF_B2, tau_adapt=ALIF_NS["tau_adapt"] * b2.second,
                                            beta=ALIF_NS["beta"] * b2.volt, ta=ta))
    G.v = LIF_B2["v_leak"]
    b2_spikes, b2_traces = run_brian2(G, variables=("v", "b"))

    params = ns.ALIFParams(**ALIF_NS, reset=reset, refractory_steps=refractory_steps, integration=integration)
    ns_spikes, ns_traces = run_neurosim(single_population_graph("alif", params, 4), x, variables=("v", "b"))
    assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)
    assert_close_traces(ns_traces["b"], b2_traces["b"], atol=1e-12)
    # the adaptation matters: without it every neuron fires more
    plain = ns.ALIFParams(**dict(ALIF_NS, beta=0.0), reset=reset, refractory_steps=refractory_steps,
                          integration=integration)
    unadapted, _ = run_neurosim(single_population_graph("alif", plain, 4), x)
    assert all(len(u) > len(a) for u, a in zip(unadapted, ns_spikes))


# ---------------------------------------------------------------------------- Izhikevich
def test_izhikevich_regular_spiking_cells():
    """Four regular-spiking cells (a=0.02, b=0.2, c=-65 mV, d=8) under I = 8-16 (paper units)."""
    values = currents(4, 8.0, seed=2)
    ta = b2.TimedArray(values, dt=DT * b2.second)
    eqs = """dv/dt = (0.04 * v**2 / mV + 5 * v + 140 * mV - u + I_ext * mV) / ms : volt
             du/dt = a * (b * v - u) / ms : volt
             I_ext : 1"""
    G = b2.NeuronGroup(4, eqs, threshold="v > 30 * mV", reset="v = c; u += d", method="euler",
                       namespace=dict(a=0.02, b=0.2, c=-65 * b2.mV, d=8 * b2.mV, ta=ta))
    G.v = -65 * b2.mV
    G.u = 0.2 * -65 * b2.mV
    G.run_regularly("I_ext = ta(t, i)", when="start")
    b2_spikes, b2_traces = run_brian2(G)

    x = torch.from_numpy(values).unsqueeze(1)
    ns_spikes, ns_traces = run_neurosim(single_population_graph("izhikevich", ns.IzhikevichParams(), 4), x)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=10)
    assert_close_traces(ns_traces["v"], b2_traces["v"] * 1e3, atol=1e-8)       # neurosim's v is in mV


# ---------------------------------------------------------------------------- AdEx
def test_adex_with_adaptation_and_refractoriness():
    """Four AdEx cells (Brette & Gerstner 2005 values, refractory 2 ms) under 0.4-1.4 nA."""
    p = ns.AdExParams(refractory_steps=19)
    values = currents(4, 0.7e-9, seed=3)
    ta, x = current_drive(values)
    eqs = ("dv/dt = (-g_L * (v - E_L) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w + I_ext) / C"
           " : volt (unless refractory)\ndw/dt = (a * (v - E_L) - w) / tau_w : amp")
    si = b2.siemens
    G = current_driven_group(4, eqs, ta, threshold="v > V_peak", reset="v = V_reset; w += b", method="euler",
                             refractory=brian2_refractory(19),
                             namespace=dict(C=p.C * b2.farad, g_L=p.g_L * si, E_L=p.E_L * b2.volt,
                                            V_T=p.V_T * b2.volt, Delta_T=p.Delta_T * b2.volt,
                                            tau_w=p.tau_w * b2.second, a=p.a * si, b=p.b * b2.amp,
                                            V_reset=p.V_reset * b2.volt, V_peak=p.V_peak * b2.volt, ta=ta))
    G.v = p.E_L * b2.volt
    b2_spikes, b2_traces = run_brian2(G)

    ns_spikes, ns_traces = run_neurosim(single_population_graph("adex", p, 4), x)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=10)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-10)


# ---------------------------------------------------------------------------- LIF networks
def brian2_lif_network(w_in, s_in, refractory_steps, w_rec=None):
    """LIF neurons driven by the input trains ``s_in`` through ``w_in [post, pre]`` (amperes) and,
    if given, recurrently through ``w_rec``. A synapse delivers a current pulse held for one step,
    neurosim's meaning of a Dense output into a LIF: ``on_pre: I_syn_post += w`` into a
    parameter that a ``run_regularly(when="before_synapses")`` zeroes each step after the state
    update. A spike at Brian2 step n then acts on the update of step n+1: the back-edge timing,
    and the input trains enter Brian2 one step before their neurosim index."""
    eqs = """dv/dt = (v_leak - v + r * I_syn) / tau : volt (unless refractory)
             I_syn : amp"""
    G = b2.NeuronGroup(w_in.shape[0], eqs, threshold="v > v_th", reset="v = v_r",
                       refractory=brian2_refractory(refractory_steps), method="exact", namespace=dict(LIF_B2))
    G.v = LIF_B2["v_leak"]
    clear = G.run_regularly("I_syn = 0 * amp", when="before_synapses")
    gen = spike_generator(s_in)
    objects = [clear, gen, brian2_synapses(gen, G, w_in, "I_syn_post += w", "amp")]
    if w_rec is not None:
        objects.append(brian2_synapses(G, G, w_rec, "I_syn_post += w", "amp"))
    return run_brian2(G, *objects)


def lif_network_graph(w_in, refractory_steps, w_rec=None):
    """input -> Dense(w_in) -> LIF, plus a back-edge Dense(w_rec) if given (float64 weights kept)."""
    n_out, n_in = w_in.shape
    g = ns.Graph().add_input("x", n_in)
    g.add("fc", ns.Dense(n_in, n_out, weight=torch.from_numpy(w_in)))
    g.add("pop", ns.Population("lif", n_out, ns.LIFParams(**LIF_NS, reset="value",
                                                          refractory_steps=refractory_steps)))
    g.chain("x", "fc", "pop")
    if w_rec is not None:
        g.add("rec", ns.Dense(n_out, n_out, weight=torch.from_numpy(w_rec)))
        g.connect("pop", "rec", back=True).connect("rec", "pop")
    assert all(p.dtype == torch.float64 for p in g.parameters())
    return g


def random_network(seed, n_in=20, n=40):
    """Fixed random input weights [n, n_in], recurrent weights [n, n] (30 % connected, no
    autapses), both in amperes, and 60 Hz input trains."""
    rng = np.random.default_rng(seed)
    w_in = rng.uniform(0.0, 1.0, (n, n_in)) * 6e-9
    w_rec = rng.normal(0.3, 1.0, (n, n)) * 4e-9 * (rng.random((n, n)) < 0.3)
    np.fill_diagonal(w_rec, 0.0)
    return w_in, w_rec, poisson_steps(n_in, 60.0, seed=seed + 1)


def test_feedforward_lif_layer_runs_the_fused_kernel():
    """20 Poisson inputs -> Dense -> 40 LIF neurons without refractoriness and without monitors:
    the fused kernel, fed by the Dense matmul over all steps, against Brian2's synapses."""
    w_in, _, s_in = random_network(7)
    b2_spikes, b2_traces = brian2_lif_network(w_in, s_in, 0)
    ns_spikes, v_final = run_fused(lif_network_graph(w_in, 0), torch.from_numpy(s_in).unsqueeze(1))
    assert_same_spikes(ns_spikes, b2_spikes, min_total=100)
    assert_close_traces(v_final, b2_traces["v"][-1], atol=1e-12)


def test_recurrent_lif_network_with_poisson_input():
    """40 LIF neurons (refractory 2 ms) with fixed random recurrent weights (a back-edge Dense in
    neurosim), driven by 20 fixed Poisson-like input trains through fixed random weights."""
    w_in, w_rec, s_in = random_network(7)
    b2_spikes, b2_traces = brian2_lif_network(w_in, s_in, 19, w_rec)
    x = torch.from_numpy(s_in).unsqueeze(1)
    ns_spikes, ns_traces = run_neurosim(lif_network_graph(w_in, 19, w_rec), x)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=100)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)
    # the recurrent weights matter: without them the network fires differently
    open_loop, _ = run_neurosim(lif_network_graph(w_in, 19), x)
    assert open_loop != ns_spikes


# ---------------------------------------------------------------------------- COBA network
def test_coba_network_as_in_brian2s_benchmark():
    """A 200-neuron version of Brian2's COBA benchmark (Vogels & Abbott 2005; 80 % excitatory,
    connection probability 0.2 instead of 0.02 so that each cell still gets ~40 inputs), with
    CobaLIFParams' defaults, random initial v and an external Poisson drive.

    Brian2's ``exponential_euler`` integrates v with the conductances frozen over the step and the
    conductances exactly: neurosim's ``integration="exact"``. A conductance jump of Brian2 step n
    (after its update) enters the update of step n+1, as a neurosim back-edge does with
    ``input_same_step=True``; the external trains enter Brian2 one step before their neurosim
    index. The 5 ms refractory period is the default ``refractory_steps = 49``."""
    n, n_exc, n_ext = 200, 160, 50
    rng = np.random.default_rng(11)
    we, wi, w_ext = 0.6, 6.7, 0.3                                          # in units of g_L
    conn = rng.random((n, n)) < 0.2                                        # [post, pre]
    np.fill_diagonal(conn, False)
    w_e = np.where(conn[:, :n_exc], we, 0.0)
    w_i = np.where(conn[:, n_exc:], wi, 0.0)
    w_x = np.where(rng.random((n, n_ext)) < 0.2, w_ext, 0.0)
    s_ext = poisson_steps(n_ext, 40.0, seed=12)
    v0 = -60e-3 + rng.random(n) * 10e-3
    p = ns.CobaLIFParams()

    eqs = """dv/dt = (ge * (Ee - v) + gi * (Ei - v) - (v - El)) / taum : volt (unless refractory)
             dge/dt = -ge / taue : 1
             dgi/dt = -gi / taui : 1"""
    G = b2.NeuronGroup(n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5e-3 * b2.second,
                       method="exponential_euler",
                       namespace=dict(Ee=p.e_exc * b2.volt, Ei=p.e_inh * b2.volt, El=p.v_leak * b2.volt,
                                      Vt=p.v_threshold * b2.volt, Vr=p.v_reset * b2.volt,
                                      taum=p.tau_mem * b2.second, taue=p.tau_syn_exc * b2.second,
                                      taui=p.tau_syn_inh * b2.second))
    G.v = v0 * b2.volt
    gen = spike_generator(s_ext)
    synapses = [brian2_synapses(G, G, w_e, "ge_post += w"),
                brian2_synapses(G, G, w_i, "gi_post += w", offset=n_exc),
                brian2_synapses(gen, G, w_x, "ge_post += w")]
    b2_spikes, b2_traces = run_brian2(G, gen, *synapses)

    full_e = np.zeros((n, n)); full_e[:, :n_exc] = w_e
    full_i = np.zeros((n, n)); full_i[:, n_exc:] = w_i
    g = ns.Graph().add_input("ext", n_ext)
    g.add("pop", ns.Population("coba_lif", n, p))
    for name, w in (("fx", w_x), ("fe", full_e), ("fi", full_i)):
        g.add(name, ns.Dense(w.shape[1], n, weight=torch.from_numpy(w)))
    g.connect("ext", "fx").connect("fx", "pop", port="exc")
    g.connect("pop", "fe", back=True).connect("fe", "pop", port="exc")
    g.connect("pop", "fi", back=True).connect("fi", "pop", port="inh")
    assert all(q.dtype == torch.float64 for q in g.parameters())
    state = ns.Simulator(g, dt=DT).initial_state(1, dtype=torch.float64)
    pop_state = state.nodes["pop"]._replace(v=torch.from_numpy(v0).unsqueeze(0))
    state = ns.NetworkState({**state.nodes, "pop": pop_state}, state.previous)
    ns_spikes, ns_traces = run_neurosim(g, {"ext": torch.from_numpy(s_ext).unsqueeze(1)}, state=state)
    assert_same_spikes(ns_spikes, b2_spikes, min_total=200)
    assert_close_traces(ns_traces["v"], b2_traces["v"], atol=1e-12)
