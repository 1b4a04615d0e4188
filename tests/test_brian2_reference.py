"""neurosim against Brian2, the reference simulator: same neurons, same inputs, same spikes.

Brian2 runs with the numpy code-generation target, in float64; neurosim runs through
``Population`` + ``Simulator`` (and a ``Graph`` with a back-edge for the recurrent network), in
float64 too, so that the remaining differences are rounding, not precision.

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
* Integration: LIF and CubaLIF use Brian2's ``method="exact"`` (neurosim ``integration="exact"``
  is the same exact propagator for input held over the step; for CubaLIF the exact solution of
  the coupled (v, I) system), Izhikevich and AdEx ``method="euler"`` (neurosim's forward Euler
  from the values at the start of the step).

Comparisons: every spike is matched pairwise within one time step and the counts must be equal;
membrane traces are compared up to the first spike whose step differs (none does in practice;
after a one-step shift the traces would legitimately differ by a step's change of v).
Tolerances (measured differences in brackets): exact models 1e-12 V [~1e-15 V]: the two
propagators are algebraically identical and only float64 rounding differs. Euler models:
AdEx 1e-10 V [~1e-15 V], Izhikevich 1e-8 mV [~1e-10 mV]: Brian2 evaluates the right-hand side in
SI units and in another order, and every spike upswing (exponential or quadratic) amplifies
those 1e-16 relative rounding differences, most for Izhikevich's quadratic in mV.
Everything runs in float64; neurosim's float32 parameter storage (Dense weights) alone would
move v by ~1e-9 V, which is why the recurrent test copies float64 weights in.
"""
from __future__ import annotations

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
def run_brian2(group, *objects, steps=STEPS):
    """Run ``group`` (plus ``objects``) with a spike monitor and an end-of-step v monitor.
    Returns (spike steps per neuron, v [steps, N] in volts)."""
    spikes = b2.SpikeMonitor(group)
    v = b2.StateMonitor(group, "v", record=True, when="end")
    net = b2.Network(group, spikes, v, *objects)
    net.run(steps * DT * b2.second)
    trains = spikes.spike_trains()
    steps_of = [np.round(np.asarray(trains[i] / b2.second) / DT).astype(int).tolist() for i in range(len(group))]
    return steps_of, np.asarray(v.v_).T


def run_neurosim(graph, inputs, node="pop", dt=DT, weights=None):
    """Run the graph in float64 and return (spike steps per neuron, v [steps, N]).

    ``weights``: node name -> float64 weight array, copied in after ``.double()`` (``Dense``
    stores its weight as float32, whose 1e-7 rounding alone would move v by ~1e-9 V)."""
    graph = graph.double()
    for name, w in (weights or {}).items():
        graph.nodes[name].weight.data.copy_(torch.from_numpy(w))
    mon = ns.Monitor(node, ("spikes", "v"))
    with torch.no_grad():
        result = ns.Simulator(graph, dt=dt).run(inputs, monitors=[mon])
    rec = result.records[node]
    spikes, v = rec["spikes"][:, 0].numpy(), rec["v"][:, 0].numpy()
    return [np.flatnonzero(spikes[:, i]).tolist() for i in range(spikes.shape[1])], v


def assert_same_spikes(ns_spikes, b2_spikes, min_total=5):
    """Pairwise match within one step, equal counts; returns the first differing step per neuron."""
    assert sum(map(len, b2_spikes)) >= min_total, "the reference must spike to make the test meaningful"
    first_diff = []
    for i, (a, b) in enumerate(zip(ns_spikes, b2_spikes)):
        assert len(a) == len(b), f"neuron {i}: neurosim {len(a)} spikes, Brian2 {len(b)}"
        assert all(abs(x - y) <= 1 for x, y in zip(a, b)), f"neuron {i}: {a} vs {b}"
        first_diff.append(next((x for x, y in zip(a, b) if x != y), None))
    return first_diff


def assert_close_traces(v_ns, v_b2, first_diff, atol):
    for i, stop in enumerate(first_diff):
        stop = v_b2.shape[0] if stop is None else max(stop - 1, 0)
        assert stop > 0.5 * v_b2.shape[0], f"neuron {i}: spike shifted too early to compare traces"
        err = np.abs(v_ns[:stop, i] - v_b2[:stop, i]).max()
        assert err < atol, f"neuron {i}: max |v_neurosim - v_brian2| = {err:g} > {atol:g}"


def currents(n, scale, seed=0):
    """[STEPS, n] test currents: constants, a sinusoid and piecewise-constant random steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS) * DT
    cols = [np.full(STEPS, 1.0), np.full(STEPS, 1.6),
            1.2 + 0.6 * np.sin(2 * np.pi * 15 * t),
            np.repeat(rng.uniform(0.6, 2.0, STEPS // 100), 100)]
    return scale * np.stack(cols[:n], 1)


def current_drive(values):
    """(TimedArray-driven run_regularly, and the neurosim [T, 1, N] input) for currents in amperes."""
    ta = b2.TimedArray(values * b2.amp, dt=DT * b2.second)
    return ta, torch.from_numpy(values).unsqueeze(1)


def single_population_graph(model, params, n):
    g = ns.Graph().add_input("x", n).add("pop", ns.Population(model, n, params))
    return g.connect("x", "pop")


# ---------------------------------------------------------------------------- LIF
LIF_B2 = dict(v_leak=-65e-3 * b2.volt, v_th=-50e-3 * b2.volt, v_r=-65e-3 * b2.volt,
              r=100e6 * b2.ohm, tau=10e-3 * b2.second)
LIF_NS = dict(tau_mem=10e-3, v_leak=-65e-3, v_threshold=-50e-3, v_reset=-65e-3, r=100e6)


@pytest.mark.parametrize("reset, refractory_steps", [("value", 20), ("subtract", 0)])
def test_lif_with_external_currents(reset, refractory_steps):
    """Four LIF neurons under constant, sinusoidal and stepped currents (0.15-0.35 nA)."""
    values = currents(4, 0.18e-9)
    ta, x = current_drive(values)
    eqs = """dv/dt = (v_leak - v + r * I_ext) / tau : volt (unless refractory)
             I_ext : amp"""
    reset_code = "v = v_r" if reset == "value" else "v -= v_th - v_r"
    G = b2.NeuronGroup(4, eqs, threshold="v > v_th", reset=reset_code, method="exact",
                       refractory=(refractory_steps + 1) * DT * b2.second if refractory_steps else False,
                       namespace=dict(LIF_B2, ta=ta))
    G.v = LIF_B2["v_leak"]
    G.run_regularly("I_ext = ta(t, i)", when="start")
    b2_spikes, b2_v = run_brian2(G)

    params = ns.LIFParams(**LIF_NS, reset=reset, refractory_steps=refractory_steps)
    ns_spikes, ns_v = run_neurosim(single_population_graph("lif", params, 4), x)
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(ns_v, b2_v, first, atol=1e-12)


# ---------------------------------------------------------------------------- CubaLIF
def poisson_steps(n, rate_hz, seed, first=1):
    """Fixed random spike steps (a Bernoulli process per step), [STEPS, n] 0/1 with rows < first zero."""
    rng = np.random.default_rng(seed)
    s = (rng.random((STEPS, n)) < rate_hz * DT).astype(float)
    s[:first] = 0
    return s


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
    b2_spikes, b2_v = run_brian2(G, gen, syn)

    params = ns.CubaLIFParams(tau_syn=3e-3, tau_mem=12e-3, r=80e6, v_leak=-65e-3, v_threshold=-55e-3,
                              v_reset=-70e-3, reset="value", refractory_steps=9, input_same_step=input_same_step)
    x = torch.from_numpy(s * w).unsqueeze(1)                 # current increments [T, 1, n]
    ns_spikes, ns_v = run_neurosim(single_population_graph("cuba_lif", params, n), x)
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=20)
    assert_close_traces(ns_v, b2_v, first, atol=1e-12)


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
    b2_spikes, b2_v = run_brian2(G)

    x = torch.from_numpy(values).unsqueeze(1)
    ns_spikes, ns_v = run_neurosim(single_population_graph("izhikevich", ns.IzhikevichParams(), 4), x)
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=10)
    assert_close_traces(ns_v, b2_v * 1e3, first, atol=1e-8)       # neurosim's v is in mV


# ---------------------------------------------------------------------------- AdEx
def test_adex_with_adaptation_and_refractoriness():
    """Four AdEx cells (Brette & Gerstner 2005 values, refractory 2 ms) under 0.4-1.4 nA."""
    p = ns.AdExParams(refractory_steps=19)
    values = currents(4, 0.7e-9, seed=3)
    ta = b2.TimedArray(values * b2.amp, dt=DT * b2.second)
    eqs = """dv/dt = (-g_L * (v - E_L) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w + I_ext) / C : volt (unless refractory)
             dw/dt = (a * (v - E_L) - w) / tau_w : amp
             I_ext : amp"""
    si = b2.siemens
    G = b2.NeuronGroup(4, eqs, threshold="v > V_peak", reset="v = V_reset; w += b", method="euler",
                       refractory=20 * DT * b2.second,
                       namespace=dict(C=p.C * b2.farad, g_L=p.g_L * si, E_L=p.E_L * b2.volt, V_T=p.V_T * b2.volt,
                                      Delta_T=p.Delta_T * b2.volt, tau_w=p.tau_w * b2.second, a=p.a * si,
                                      b=p.b * b2.amp, V_reset=p.V_reset * b2.volt, V_peak=p.V_peak * b2.volt,
                                      ta=ta))
    G.v = p.E_L * b2.volt
    G.run_regularly("I_ext = ta(t, i)", when="start")
    b2_spikes, b2_v = run_brian2(G)

    ns_spikes, ns_v = run_neurosim(single_population_graph("adex", p, 4), torch.from_numpy(values).unsqueeze(1))
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=10)
    assert_close_traces(ns_v, b2_v, first, atol=1e-10)


# ---------------------------------------------------------------------------- recurrent network
def test_recurrent_lif_network_with_poisson_input():
    """40 LIF neurons with fixed random recurrent weights (a back-edge Dense in neurosim), driven by
    20 fixed Poisson-like input trains through fixed random weights.

    Synapses deliver a current pulse held for one step, neurosim's meaning of a Dense output
    into a LIF: in Brian2 ``on_pre: I_syn_post += w`` into a parameter that a
    ``run_regularly(when="before_synapses")`` zeroes each step after the state update. A spike at
    Brian2 step n then acts on the update of step n+1: the back-edge timing, and the input trains
    enter Brian2 one step before their neurosim index (see the module docstring)."""
    n_in, n = 20, 40
    rng = np.random.default_rng(7)
    w_in = rng.uniform(0.0, 1.0, (n, n_in)) * 6e-9                   # A, [post, pre]
    w_rec = rng.normal(0.3, 1.0, (n, n)) * 4e-9 * (rng.random((n, n)) < 0.3)
    np.fill_diagonal(w_rec, 0.0)
    s_in = poisson_steps(n_in, 60.0, seed=8)

    eqs = """dv/dt = (v_leak - v + r * I_syn) / tau : volt (unless refractory)
             I_syn : amp"""
    G = b2.NeuronGroup(n, eqs, threshold="v > v_th", reset="v = v_r", refractory=(19 + 1) * DT * b2.second,
                       method="exact", namespace=dict(LIF_B2))
    G.v = LIF_B2["v_leak"]
    clear = G.run_regularly("I_syn = 0 * amp", when="before_synapses")
    idx, steps = np.nonzero(s_in.T)
    gen = b2.SpikeGeneratorGroup(n_in, idx, (steps - 1) * DT * b2.second)
    syn_in = b2.Synapses(gen, G, "w : amp", on_pre="I_syn_post += w")
    pre, post = np.nonzero(w_in.T)
    syn_in.connect(i=pre, j=post)
    syn_in.w = w_in[post, pre] * b2.amp
    syn_rec = b2.Synapses(G, G, "w : amp", on_pre="I_syn_post += w")
    pre, post = np.nonzero(w_rec.T)
    syn_rec.connect(i=pre, j=post)
    syn_rec.w = w_rec[post, pre] * b2.amp
    b2_spikes, b2_v = run_brian2(G, clear, gen, syn_in, syn_rec)

    g = ns.Graph().add_input("x", n_in)
    g.add("fc", ns.Dense(n_in, n, weight=torch.from_numpy(w_in)))
    g.add("pop", ns.Population("lif", n, ns.LIFParams(**LIF_NS, reset="value", refractory_steps=19)))
    g.add("rec", ns.Dense(n, n, weight=torch.from_numpy(w_rec)))
    g.chain("x", "fc", "pop")
    g.connect("pop", "rec", back=True).connect("rec", "pop")
    ns_spikes, ns_v = run_neurosim(g, torch.from_numpy(s_in).unsqueeze(1), weights={"fc": w_in, "rec": w_rec})
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=100)
    assert_close_traces(ns_v, b2_v, first, atol=1e-12)
    # the recurrent weights matter: without them the network fires differently
    g2 = ns.Graph().add_input("x", n_in)
    g2.add("fc", ns.Dense(n_in, n, weight=torch.from_numpy(w_in)))
    g2.add("pop", ns.Population("lif", n, ns.LIFParams(**LIF_NS, reset="value", refractory_steps=19)))
    g2.chain("x", "fc", "pop")
    open_loop, _ = run_neurosim(g2, torch.from_numpy(s_in).unsqueeze(1), weights={"fc": w_in})
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
    synapses = []
    for source, weights, target in ((G, w_e, "ge"), (G, w_i, "gi")):
        offset = 0 if target == "ge" else n_exc
        syn = b2.Synapses(G, G, "w : 1", on_pre=f"{target}_post += w")
        post, pre = np.nonzero(weights)
        syn.connect(i=pre + offset, j=post)
        syn.w = weights[post, pre]
        synapses.append(syn)
    idx, steps = np.nonzero(s_ext.T)
    gen = b2.SpikeGeneratorGroup(n_ext, idx, (steps - 1) * DT * b2.second)
    syn_x = b2.Synapses(gen, G, "w : 1", on_pre="ge_post += w")
    post, pre = np.nonzero(w_x)
    syn_x.connect(i=pre, j=post)
    syn_x.w = w_x[post, pre]
    b2_spikes, b2_v = run_brian2(G, gen, syn_x, *synapses)

    g = ns.Graph().add_input("ext", n_ext)
    g.add("pop", ns.Population("coba_lif", n, p))
    g.add("fx", ns.Dense(n_ext, n)).add("fe", ns.Dense(n, n)).add("fi", ns.Dense(n, n))
    g.connect("ext", "fx").connect("fx", "pop", port="exc")
    g.connect("pop", "fe", back=True).connect("fe", "pop", port="exc")
    g.connect("pop", "fi", back=True).connect("fi", "pop", port="inh")
    full_e = np.zeros((n, n)); full_e[:, :n_exc] = w_e
    full_i = np.zeros((n, n)); full_i[:, n_exc:] = w_i
    g = g.double()
    for name, w in (("fx", w_x), ("fe", full_e), ("fi", full_i)):
        g.nodes[name].weight.data.copy_(torch.from_numpy(w))
    sim = ns.Simulator(g, dt=DT)
    state = sim.initial_state(1, dtype=torch.float64)
    pop_state = state.nodes["pop"]._replace(v=torch.from_numpy(v0).unsqueeze(0))
    state = ns.NetworkState({**state.nodes, "pop": pop_state}, state.previous)
    mon = ns.Monitor("pop", ("spikes", "v"))
    with torch.no_grad():
        rec = sim.run({"ext": torch.from_numpy(s_ext).unsqueeze(1)}, state=state, monitors=[mon]).records["pop"]
    spikes, v = rec["spikes"][:, 0].numpy(), rec["v"][:, 0].numpy()
    ns_spikes = [np.flatnonzero(spikes[:, i]).tolist() for i in range(n)]
    first = assert_same_spikes(ns_spikes, b2_spikes, min_total=200)
    assert_close_traces(v, b2_v, first, atol=1e-12)
