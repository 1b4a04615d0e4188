"""The Brian2 backend against neurosim: ``run_brian2(sim, inputs)`` (Brian2's own simulation of
the exported network) gives neurosim's spikes exactly and its traces within the tolerances of
``tests/test_brian2_reference.py`` (float64, numpy target, dt = 0.1 ms): 1e-12 V for the
LIF-like models, IF, LI, ALIF (v and b) and COBA, 1e-10 V for AdEx, 1e-8 mV for Izhikevich
(every upswing amplifies the rounding of Brian2's other order of operations).

Every run has a batch of 2 (different drives per sample), so the batch layout is tested too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns

b2 = pytest.importorskip("brian2")
from neurosim.hardware.brian2 import run_brian2, to_brian2  # noqa: E402
from neurosim.hardware.registry import UnsupportedNodesError  # noqa: E402

pytestmark = pytest.mark.slow

DT = 1e-4
STEPS = 600
BATCH = 2


# ---------------------------------------------------------------------------- helpers
def currents(n, scale, seed):
    """[STEPS, BATCH, n] currents: constants, a sinusoid, piecewise-constant random steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS) * DT
    cols = [np.full(STEPS, 1.0), np.full(STEPS, 1.6), 1.2 + 0.6 * np.sin(2 * np.pi * 40 * t),
            np.repeat(rng.uniform(0.6, 2.0, STEPS // 50), 50)]
    one = np.stack(cols[:n], 1)
    return torch.from_numpy(scale * np.stack([one, one[:, ::-1] * 0.9], 1).copy())


def poisson(n, rate_hz, seed, first=0):
    """[STEPS, BATCH, n] fixed 0/1 spike trains."""
    s = (np.random.default_rng(seed).random((STEPS, BATCH, n)) < rate_hz * DT).astype(float)
    s[:first] = 0
    return torch.from_numpy(s)


def single(model, params, n=4):
    g = ns.Graph().add_input("x", n).add("pop", ns.Population(model, n, params))
    return ns.Simulator(g.connect("x", "pop"), dt=DT)


def run_neurosim(sim, inputs, traces, state=None):
    """Spikes (outputs) and {node: {variable: [T, batch, ...]}} of neurosim's own run."""
    mons = [ns.Monitor(node, tuple(variables)) for node, variables in traces.items()]
    with torch.no_grad():
        result = sim.run(inputs, state=state, monitors=mons)
    return result.outputs, {m.node: {v: result.records[m.name][v] for v in traces[m.node]} for m in mons}


def assert_matches(sim, inputs, traces, atol, min_spikes=10, state=None):
    """Brian2 and neurosim: every spike train equal, every trace within ``atol``; returns the
    neurosim outputs."""
    ns_out, ns_rec = run_neurosim(sim, inputs, traces, state)
    result = run_brian2(sim, inputs, monitors=traces, state=state)
    for name, spikes in ns_out.items():
        if sim.graph.nodes[name].emits_spikes:
            assert spikes.sum() >= min_spikes, f"{name}: the reference must spike to make the test meaningful"
            assert torch.equal(result.outputs[name], spikes), f"{name}: spike trains differ"
        else:
            assert (result.outputs[name] - spikes).abs().max() < atol
    for name, variables in traces.items():
        for var in variables:
            err = float((result.records[name][var] - ns_rec[name][var]).abs().max())
            assert err < atol, f"{name}.{var}: max |neurosim - Brian2| = {err:g} > {atol:g}"
    return ns_out


LIF_NS = dict(tau_mem=10e-3, v_leak=-65e-3, v_threshold=-50e-3, v_reset=-65e-3, r=100e6)


# ---------------------------------------------------------------------------- every model
@pytest.mark.parametrize("reset, refractory_steps, integration, same_step",
                         [("value", 20, "exact", True), ("subtract", 0, "euler", True), ("zero", 5, "exact", False)])
def test_lif_under_currents(reset, refractory_steps, integration, same_step):
    params = ns.LIFParams(**LIF_NS, reset=reset, refractory_steps=refractory_steps, integration=integration,
                          input_same_step=same_step)
    if reset == "zero":      # v = 0 V is above threshold here: reset to 0 with a threshold above it
        params = ns.LIFParams(tau_mem=10e-3, v_threshold=15e-3, r=100e6, reset="zero", refractory_steps=5,
                              input_same_step=False)
    assert_matches(single("lif", params), currents(4, 0.18e-9, 1), {"pop": ("v",)}, atol=1e-12)


@pytest.mark.parametrize("reset, refractory_steps", [("value", 20), ("subtract", 0), ("zero", 5)])
def test_if_under_currents(reset, refractory_steps):
    params = ns.IFParams(r=5e9, v_threshold=20e-3, v_reset=-5e-3, reset=reset, refractory_steps=refractory_steps)
    assert_matches(single("if", params), currents(4, 0.3e-9, 4), {"pop": ("v",)}, atol=1e-12, min_spikes=20)


@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_li_readout_output_is_its_membrane(integration):
    params = ns.LIParams(tau_mem=10e-3, v_leak=-65e-3, r=100e6, integration=integration)
    out = assert_matches(single("li", params), currents(4, 0.18e-9, 5), {"pop": ("v",)}, atol=1e-12)
    assert float(out["pop"].max() - out["pop"].min()) > 10e-3, "the readout must move"


@pytest.mark.parametrize("reset, refractory_steps, integration",
                         [("subtract", 0, "exact"), ("value", 20, "exact"), ("subtract", 0, "euler")])
def test_alif_spikes_membrane_and_adaptation(reset, refractory_steps, integration):
    params = ns.ALIFParams(**LIF_NS, tau_adapt=60e-3, beta=4e-3, reset=reset, refractory_steps=refractory_steps,
                           integration=integration)
    assert_matches(single("alif", params), currents(4, 0.22e-9, 6), {"pop": ("v", "b")}, atol=1e-12)


def test_izhikevich_regular_spiking():
    assert_matches(single("izhikevich", ns.IzhikevichParams()), currents(4, 8.0, 2), {"pop": ("v", "u")},
                   atol=1e-8, min_spikes=6)


def test_adex_with_refractoriness_and_per_neuron_b():
    p = ns.AdExParams(refractory_steps=19, b=torch.tensor([0.0805e-9, 0.0, 0.2e-9, 0.05e-9], dtype=torch.float64))
    assert_matches(single("adex", p), currents(4, 0.7e-9, 3), {"pop": ("v", "w")}, atol=1e-10, min_spikes=6)


@pytest.mark.parametrize("same_step", [True, False])
def test_cuba_lif_driven_by_input_spikes_through_dense(same_step):
    """A SpikeGeneratorGroup -> Synapses -> the jumping current I_syn; v and i traces."""
    n = 4
    params = ns.CubaLIFParams(tau_syn=3e-3, tau_mem=12e-3, r=80e6, v_leak=-65e-3, v_threshold=-55e-3,
                              v_reset=-70e-3, reset="value", refractory_steps=9, w_in=1.5, input_same_step=same_step)
    g = ns.Graph().add_input("x", n)
    g.add("fc", ns.Dense(n, n, weight=torch.diag(torch.tensor([0.3, 0.45, 0.6, 0.8], dtype=torch.float64) * 1e-9)))
    g.add("pop", ns.Population("cuba_lif", n, params)).chain("x", "fc", "pop")
    assert_matches(ns.Simulator(g, dt=DT), poisson(n, 300.0, 1), {"pop": ("v", "i")}, atol=1e-12)


# ---------------------------------------------------------------------------- networks
def delay_network(recurrent=True):
    """input -> Dense (per-synapse delays 0..4) -> lif1 -> Sparse (delays 0..3) -> lif2, a
    zero-delay Dense lif1 -> lif2 as well, and lif2 ~> Dense (delays 1..3) -> lif2 (back-edge)."""
    rng = np.random.default_rng(3)
    n_in, n1, n2 = 12, 16, 10
    t = lambda a: torch.from_numpy(a)          # noqa: E731
    w_in = rng.uniform(0.0, 1.0, (n1, n_in)) * 8e-9
    g = ns.Graph().add_input("x", n_in)
    g.add("fc", ns.Dense(n_in, n1, weight=t(w_in), delay=t(rng.integers(0, 5, (n1, n_in)))))
    g.add("lif1", ns.Population("lif", n1, ns.LIFParams(**LIF_NS, reset="value", refractory_steps=10)))
    mask = rng.random((n2, n1)) < 0.4
    post, pre = np.nonzero(mask)
    g.add("sp", ns.Sparse(n1, n2, pre=t(pre), post=t(post), weight=t(rng.uniform(2, 9, pre.size) * 1e-9),
                          delay=t(rng.integers(0, 4, pre.size))))
    g.add("direct", ns.Dense(n1, n2, weight=t(rng.uniform(0.0, 2.0, (n2, n1)) * 1e-9)))
    g.add("lif2", ns.Population("lif", n2, ns.LIFParams(**LIF_NS, reset="subtract")))
    g.chain("x", "fc", "lif1", "sp", "lif2").chain("lif1", "direct", "lif2")
    if recurrent:
        w_rec = rng.normal(0.5, 1.0, (n2, n2)) * 6e-9 * (rng.random((n2, n2)) < 0.4)
        np.fill_diagonal(w_rec, 0.0)
        g.add("rec", ns.Dense(n2, n2, weight=t(w_rec), delay=t(rng.integers(1, 4, (n2, n2)))))
        g.connect("lif2", "rec", back=True).connect("rec", "lif2")
    g.add_output("lif1", "lif2")
    return ns.Simulator(g, dt=DT)


def test_feedforward_and_recurrent_network_with_per_synapse_delays():
    x = poisson(12, 80.0, 9)
    out = assert_matches(delay_network(), x, {"lif1": ("v",), "lif2": ("v",)}, atol=1e-12, min_spikes=30)
    # the delays and the back-edge matter: without recurrence lif2 fires differently
    open_loop, _ = run_neurosim(delay_network(recurrent=False), x, {})
    assert not torch.equal(open_loop["lif2"], out["lif2"])
    assert torch.equal(open_loop["lif1"], out["lif1"])


def test_coba_network_with_back_edges_from_a_given_state():
    """A 60-neuron COBA network (Brette et al. 2007 equations, CobaLIFParams defaults): excitatory
    and inhibitory back-edges onto the ports exc/inh, an external Poisson drive, random start v."""
    n, n_exc, n_ext = 60, 48, 20
    rng = np.random.default_rng(11)
    conn = rng.random((n, n)) < 0.3
    np.fill_diagonal(conn, False)
    full_e = np.where(conn & (np.arange(n) < n_exc), 0.6, 0.0)
    full_i = np.where(conn & (np.arange(n) >= n_exc), 6.7, 0.0)
    w_x = np.where(rng.random((n, n_ext)) < 0.3, 0.5, 0.0)
    g = ns.Graph().add_input("ext", n_ext).add("pop", ns.Population("coba_lif", n, ns.CobaLIFParams()))
    for name, w in (("fx", w_x), ("fe", full_e), ("fi", full_i)):
        g.add(name, ns.Dense(w.shape[1], n, weight=torch.from_numpy(w)))
    g.connect("ext", "fx").connect("fx", "pop", port="exc")
    g.connect("pop", "fe", back=True).connect("fe", "pop", port="exc")
    g.connect("pop", "fi", back=True).connect("fi", "pop", port="inh")
    sim = ns.Simulator(g, dt=DT)
    state = sim.initial_state(BATCH, dtype=torch.float64)
    v0 = torch.from_numpy(-60e-3 + rng.random((BATCH, n)) * 10e-3)
    state = ns.NetworkState({**state.nodes, "pop": state.nodes["pop"]._replace(v=v0)}, state.previous)
    assert_matches(sim, {"ext": poisson(n_ext, 60.0, 12)}, {"pop": ("v", "g_exc", "g_inh")}, atol=1e-12,
                   min_spikes=40, state=state)


# ---------------------------------------------------------------------------- refusals
def test_every_unmappable_node_is_listed_once_before_anything_is_built():
    g = ns.Graph().add_input("img", (1, 4, 4))
    g.add("conv", ns.Conv2d((1, 4, 4), 2, 3))
    g.add("flat", ns.Flatten((2, 2, 2)))
    g.add("fc", ns.Dense(8, 5, bias=True))
    g.add("hid", ns.Population("lif", 5, ns.LIFParams(reset="subtract_delayed")))
    g.add("out", ns.Population("lif", 5))
    g.chain("img", "conv", "flat", "fc", "hid", "out")
    with pytest.raises(UnsupportedNodesError) as err:
        to_brian2(ns.Simulator(g, dt=DT))
    conv, flat, fc, fc_feed, hid, hid_out = err.value.problems
    assert [p[:2] for p in err.value.problems] == [("conv", "Conv2d"), ("flat", "Flatten"), ("fc", "Dense"),
                                                   ("fc", "Dense"), ("hid", "Population"), ("hid", "Population")]
    assert conv[2].startswith("no brian2 mapping for node type Conv2d (supported: ")
    assert fc[2] == "a bias (a constant current) is not mapped; use a population parameter"
    assert fc_feed[2] == "a projection must be fed by exactly one spiking population or graph input, got ['flat']"
    assert hid[2] == "reset='subtract_delayed' (a reset one step late) has no Brian2 counterpart"
    assert hid_out[2].endswith("it feeds ['out'] directly")


def test_graded_input_into_a_projection_is_refused_naming_the_input():
    g = ns.Graph().add_input("x", 3).add("fc", ns.Dense(3, 2, weight=torch.ones(2, 3, dtype=torch.float64)))
    g.add("pop", ns.Population("lif", 2)).chain("x", "fc", "pop")
    with pytest.raises(ValueError, match="input 'x' feeds a projection.*only 0 and 1"):
        run_brian2(ns.Simulator(g, dt=DT), torch.full((5, 1, 3), 0.5, dtype=torch.float64))


def test_bad_monitors_and_start_states_are_refused_by_name():
    sim = single("cuba_lif", ns.CubaLIFParams(input_same_step=True))
    x = torch.zeros(5, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="population 'pop' has no Brian2 trace of \\['refractory'\\]"):
        to_brian2(sim, x, monitors={"pop": ("v", "refractory")})
    with pytest.raises(ValueError, match="monitor 'x' is not a population"):
        to_brian2(sim, x, monitors={"x": ("v",)})
    state = sim.initial_state(1, dtype=torch.float64)
    jumped = ns.NetworkState({"pop": state.nodes["pop"]._replace(i=torch.ones(1, 4, dtype=torch.float64))}, {})
    with pytest.raises(ValueError, match="state of 'pop' field 'i' must be zero \\(only \\['v'\\]"):
        to_brian2(sim, x, state=jumped)


def test_importing_the_backend_does_not_import_brian2():
    import subprocess
    import sys
    code = "import sys, neurosim.hardware.brian2; assert 'brian2' not in sys.modules, 'brian2 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cuba_lif_with_equal_time_constants_is_refused():
    """Brian2's exact solution of the (v, I) pair divides by tau_syn - tau_mem (NaN, checked by hand)."""
    sim = single("cuba_lif", ns.CubaLIFParams(tau_syn=10e-3, tau_mem=10e-3))
    with pytest.raises(UnsupportedNodesError, match="tau_syn == tau_mem: Brian2's exact solver divides"):
        to_brian2(sim)
    to_brian2(single("cuba_lif", ns.CubaLIFParams(tau_syn=10e-3, tau_mem=10e-3, integration="euler")))


def test_no_refractory_warning_for_populations_without_a_refractory_period():
    """Brian2 warns when equations say ``(unless refractory)`` but no refractory period is given;
    a population without one gets equations without the flag (with one, the flag stays)."""
    import logging
    torch.manual_seed(0)
    for steps, flagged in ((0, False), (2, True)):
        g = ns.Graph.sequential(3, ("fc", ns.Dense(3, 2, weight=torch.ones(2, 3, dtype=torch.float64))),
                                ("lif", ns.Population("lif", 2, ns.LIFParams(refractory_steps=steps))))
        sim = ns.Simulator(g.to(torch.float64), dt=1e-3)
        messages = []
        handler = logging.Handler()
        handler.emit = lambda record: messages.append(record.getMessage()) if record.levelno >= logging.WARNING else None
        logger = logging.getLogger("brian2")
        logger.addHandler(handler)
        try:
            built = to_brian2(sim, batch_size=1)
            run_brian2(sim, {"input": torch.ones(5, 1, 3, dtype=torch.float64)})
        finally:
            logger.removeHandler(handler)
        group = next(o for o in built.network.objects if type(o).__name__ == "NeuronGroup")
        assert ("unless refractory" in str(group.user_equations)) is flagged
        assert not [m for m in messages if "refractory" in m], messages
