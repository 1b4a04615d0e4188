"""Workload 3, COBA: the Vogels & Abbott (2005) balanced network of conductance-based LIF
neurons, benchmark 1 of Brette et al. (2007), in Brian2 (numpy and cython targets) and neurosim.

Network: 4000 neurons (3200 excitatory, 800 inhibitory), every ordered pair (i, j) connected
independently with p = 0.02 (autapses allowed, as ``Synapses.connect(p=0.02)`` does), 1 s at
dt = 0.1 ms (10 000 steps), no external input: the activity is self-sustained, started by random
initial conductances.

Equations (Brian2, ``method="euler"``; conductances in units of the leak conductance)::

    dv/dt  = (ge (Ee - v) + gi (Ei - v) - (v - El)) / taum   (unless refractory)
    dge/dt = -ge / taue            dgi/dt = -gi / taui
    threshold v > Vt, reset v = Vr, refractory 5 ms; a spike of an excitatory (inhibitory)
    neuron adds we (wi) to ge (gi) of each of its targets.

Values used, and why: taum = 20 ms, taue = 5 ms, taui = 10 ms, Vt = -50 mV, Vr = El = -60 mV,
Ee = 0 mV, Ei = -80 mV, refractory 5 ms are the published COBA values (Brette et al. 2007; the
same in Brian2's own speed test family and in the BrainPy/ANNarchy ports). The synaptic weights
we = 6 nS / 10 nS = 0.6 and wi = 67 nS / 10 nS = 6.7 (conductance increments in units of the
10 nS leak conductance) and the initial state v = El + (5 randn - 5) mV, ge = 1.5 randn + 4,
gi = 12 randn + 20 are those of the Brian COBA example of Brette et al. (2007), which runs
without external drive (Brian2's examples folder ships CUBA and COBAHH; the brian2 package
itself does not ship a COBA LIF example, so these are the reference values). The BrainPy port adds
a 20 mV background drive and starts from ge = gi = 0 instead; we keep the original. Forward Euler
(Brian2 ``method="euler"``) because ``ge * v`` makes the v equation non-linear for Brian2's exact
integrator; neurosim's ``CobaLIFParams(integration="euler")`` is the same scheme.

The same connectivity (pre/post lists) and the same initial values (one numpy draw) are given
to every simulator, so only arithmetic (float64 in Brian2, float32 in neurosim) and chaos make
their spike trains diverge; the firing rates show that they are in the same regime.

neurosim: one population ``Population("coba_lif", 4000, CobaLIFParams(...))`` (ports "exc" and
"inh") as in Brian2's example, two ``Sparse`` projections from its first 3200 neurons (port "exc",
weight we) and from its last 800 (port "inh", weight wi), each fed by a back-edge:
x[t] = W s[t-1], which with ``input_same_step=True`` is Brian2's schedule (state update with the
conductances holding the spikes of the previous step, threshold, reset; spikes then propagated).
Brian2 counts the 5 ms refractory period from the spike (silent for 49 further steps), which is
neurosim's ``refractory_steps = 49``. Brian2 integrates step 0 with the initial conductances as
given; neurosim decays its state's conductances first, so its state starts from ge / a, gi / a. The graph needs one input to know T: an unconnected input
``ext`` of shape (1,) fed with zeros.

neurosim runs twice: with the default ``backend="auto"``, which runs this no-grad simulation on
the compiled time loop (``neurosim/compiled``; the case's notes say where it ran, and
``compile+1st run`` is the first run of the fresh subprocess: the machine loaded from numba's
disk cache, or compiled when that cache is cold), and with ``backend="torch"`` (the torch path,
as a reference). Both give the same spikes bit for bit.

Plain PyTorch reference: the same equations in one loop over 4000 neurons, propagation by
summing the rows of dense ``[source, 4000]`` weight tables of the neurons that spiked.

Brian2: the numpy target, the cython target when a C compiler works, and the ``cpp_standalone``
device with one thread (no OpenMP): code generation, compilation and a first run in a fresh
folder (``compile+1st run``), then the compiled binary rerun; its figure is the simulation time
the binary measures itself (``device._last_run_time``). The first run in a
process includes code generation (and for cython, compilation into a fresh cache folder in full
runs): it is reported apart as ``compile+1st run``; the timed runs ``restore()`` the stored
initial network and run it again.
Run: ``python -m benchmarks.bench_coba [--quick] [--repeats N] [--out file.json]``.
"""
from __future__ import annotations

import atexit
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks.common import Case, Prepared, bench_main

WORKLOAD = "coba"
TARGET = None
WARM_STEPS = 200  # warm-up of the PyTorch-based cases: a short run, not the whole second


def defaults(quick: bool = False) -> dict:
    cfg = dict(n_exc=3200, n_inh=800, p_connect=0.02, duration=1.0, dt=1e-4,
               tau_mem=20e-3, tau_exc=5e-3, tau_inh=10e-3, v_threshold=-50e-3, v_reset=-60e-3,
               v_leak=-60e-3, e_exc=0.0, e_inh=-80e-3, we=0.6, wi=6.7, refractory=5e-3,
               fresh_cython_cache=True, warmup=1, repeats=3, rounds=1)
    if quick:
        cfg.update(duration=0.05, fresh_cython_cache=False, warmup=1, repeats=1)
    return cfg


def steps(cfg) -> int:
    return int(round(cfg["duration"] / cfg["dt"]))


def refractory_steps(cfg) -> int:
    """Brian2's refractory period counted from the spike -> neurosim's silent steps after it."""
    return int(round(cfg["refractory"] / cfg["dt"])) - 1


def make_network(cfg):
    """Connectivity and initial state shared by every simulator (numpy, seeded).

    Returns dict with ``exc_pre, exc_post`` (synapses from excitatory neuron ``pre`` in
    [0, n_exc) onto neuron ``post`` in [0, N)), ``inh_pre, inh_post`` (``pre`` in [0, n_inh),
    counted within the inhibitory group) and the initial ``v`` [V], ``ge``, ``gi`` (float64, [N])."""
    rng = np.random.default_rng(cfg["seed"])
    n_exc, n_inh = cfg["n_exc"], cfg["n_inh"]
    n = n_exc + n_inh
    net = {}
    for name, n_src in (("exc", n_exc), ("inh", n_inh)):
        pres, posts = [], []
        chunk = 400
        for start in range(0, n_src, chunk):
            rows = min(chunk, n_src - start)
            pre, post = np.nonzero(rng.random((rows, n)) < cfg["p_connect"])
            pres.append(pre + start)
            posts.append(post)
        net[f"{name}_pre"] = np.concatenate(pres).astype(np.int64)
        net[f"{name}_post"] = np.concatenate(posts).astype(np.int64)
    net["v"] = cfg["v_leak"] + (rng.standard_normal(n) * 5.0 - 5.0) * 1e-3
    net["ge"] = rng.standard_normal(n) * 1.5 + 4.0
    net["gi"] = rng.standard_normal(n) * 12.0 + 20.0
    return net


def rates(spikes_exc, spikes_inh, cfg) -> dict:
    """Mean firing rates [Hz] from spike counts."""
    dur = cfg["duration"]
    return {"rate_exc_hz": spikes_exc / cfg["n_exc"] / dur, "rate_inh_hz": spikes_inh / cfg["n_inh"] / dur,
            "rate_hz": (spikes_exc + spikes_inh) / (cfg["n_exc"] + cfg["n_inh"]) / dur,
            "spikes": spikes_exc + spikes_inh}


def timed_with_first_run(first, again, warmup: int, repeats: int, measure=None) -> dict:
    """Time a case whose first run differs (code generation, compilation, a cache load).

    ``first()`` once, its wall time reported as ``compile_s``; then ``warmup - 1`` untimed and
    ``repeats`` timed calls of ``again()``. A timed figure is the call's wall time, or
    ``measure()`` after it when given (e.g. the simulation time Brian2's standalone binary
    measures itself; the calls' median wall time is then ``process_s``)."""
    t0 = time.perf_counter()
    first()
    result = {"compile_s": time.perf_counter() - t0}
    for _ in range(max(0, warmup - 1)):
        again()
    times, walls = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        again()
        walls.append(time.perf_counter() - t0)
        times.append(walls[-1] if measure is None else float(measure()))
    result["times"] = times
    if measure is not None:
        result["process_s"] = statistics.median(walls)
    return result


# ---------------------------------------------------------------------------- neurosim
def coba_params(cfg):
    import neurosim as ns
    return ns.CobaLIFParams(tau_mem=cfg["tau_mem"], tau_syn_exc=cfg["tau_exc"], tau_syn_inh=cfg["tau_inh"],
                            v_leak=cfg["v_leak"], v_threshold=cfg["v_threshold"], v_reset=cfg["v_reset"],
                            e_exc=cfg["e_exc"], e_inh=cfg["e_inh"], g_leak=1.0, integration="euler",
                            reset="value", refractory_steps=refractory_steps(cfg), input_same_step=True)


def make_neurosim(cfg, net):
    """(simulator, initial NetworkState, zero input [T, 1, 1]) of the COBA graph laid out as in
    Brian2's example: one population of all neurons, an excitatory projection from its first
    ``n_exc`` neurons to the "exc" port and an inhibitory one from the rest to the "inh" port."""
    import neurosim as ns
    n_exc, n_inh = cfg["n_exc"], cfg["n_inh"]
    n = n_exc + n_inh
    g = ns.Graph().add_input("ext", 1)
    g.add("neurons", ns.Population("coba_lif", n, coba_params(cfg)))
    for src, offset, weight in (("exc", 0, cfg["we"]), ("inh", n_exc, cfg["wi"])):
        name = f"{src}_synapses"
        g.add(name, ns.Sparse(n, n, pre=torch.from_numpy(net[f"{src}_pre"] + offset),
                              post=torch.from_numpy(net[f"{src}_post"]), weight=float(weight)))
        g.connect("neurons", name, back=True)     # x[t] = W s[t-1]
        g.connect(name, "neurons", port=src)      # "exc" or "inh" conductance port
    g.add_output("neurons")
    sim = ns.Simulator(g, dt=cfg["dt"])
    state = sim.initial_state(1)
    ge, gi = initial_conductances(cfg, net)
    nodes = dict(state.nodes)
    nodes["neurons"] = nodes["neurons"]._replace(v=_row(net["v"]), g_exc=_row(ge), g_inh=_row(gi))
    state = type(state)(nodes, state.previous)
    ext = torch.zeros(steps(cfg), 1, 1)
    return sim, state, ext


def initial_conductances(cfg, net):
    """Brian2's initial ge, gi as a neurosim state: Brian2 integrates v at step 0 with the values
    it was given, neurosim with ``input_same_step=True`` with the state's conductances decayed
    once (g[0] = g_state a + x[0]); so the state holds ge / a_exc and gi / a_inh."""
    a_e, a_i = 1.0 - cfg["dt"] / cfg["tau_exc"], 1.0 - cfg["dt"] / cfg["tau_inh"]
    return net["ge"] / a_e, net["gi"] / a_i


def _row(a):
    return torch.as_tensor(a, dtype=torch.float32).reshape(1, -1).clone()


def run_neurosim(sim, state, ext, n_exc):
    """Spike trains ``(exc [T, n_exc], inh [T, n_inh])`` of one run from ``state``."""
    with torch.no_grad():
        out = sim.run(ext, state=state).outputs["neurons"][:, 0]
    return out[:, :n_exc], out[:, n_exc:]


def _neurosim_build(backend):
    """neurosim with ``Simulator(backend=backend)``: ``"auto"`` runs this no-grad simulation on the
    compiled time loop, ``"torch"`` on the torch path. The first run in the fresh subprocess is
    reported apart (``compile_s``): for the compiled loop it loads the machine from numba's disk
    cache (or compiles it when the cache is cold), for the torch path it is a plain first run."""
    def build(cfg, meter):
        net = make_network(cfg)
        import neurosim  # noqa: F401  (import before the memory baseline)
        meter.start()
        sim, state, ext = make_neurosim(cfg, net)
        sim.backend = backend
        last = {}

        def run():
            last["out"] = run_neurosim(sim, state, ext, cfg["n_exc"])

        def timed(warmup, repeats):
            return timed_with_first_run(run, run, warmup, repeats)

        def info():
            se, si = last["out"]
            d = rates(float(se.sum()), float(si.sum()), cfg)
            d["placement"] = sorted({where for where, _ in sim.placement.values()})
            return d
        return Prepared(run=run, info=info, timed=timed)
    return build


# ---------------------------------------------------------------------------- plain PyTorch
def make_torch_reference(cfg, net):
    """State and dense propagation tables of the plain-PyTorch COBA loop."""
    n = cfg["n_exc"] + cfg["n_inh"]
    w_exc = torch.zeros(cfg["n_exc"], n)
    w_exc.index_put_((torch.from_numpy(net["exc_pre"]), torch.from_numpy(net["exc_post"])),
                     torch.tensor(float(cfg["we"])), accumulate=True)
    w_inh = torch.zeros(cfg["n_inh"], n)
    w_inh.index_put_((torch.from_numpy(net["inh_pre"]), torch.from_numpy(net["inh_post"])),
                     torch.tensor(float(cfg["wi"])), accumulate=True)
    ge, gi = initial_conductances(cfg, net)
    init = {k: torch.as_tensor(a, dtype=torch.float32) for k, a in (("v", net["v"]), ("ge", ge), ("gi", gi))}
    return w_exc, w_inh, init


def torch_reference_loop(cfg, w_exc, w_inh, init, n_steps=None):
    """The COBA network in one plain loop (same arithmetic as neurosim's coba_lif_step, euler).
    Returns spikes [T, N] (excitatory neurons first)."""
    n_exc = cfg["n_exc"]
    n_steps = steps(cfg) if n_steps is None else n_steps
    dt = cfg["dt"]
    a_e, a_i = 1.0 - dt / cfg["tau_exc"], 1.0 - dt / cfg["tau_inh"]
    k = dt / cfg["tau_mem"]
    v_leak, v_th, v_reset = cfg["v_leak"], cfg["v_threshold"], cfg["v_reset"]
    e_exc, e_inh = cfg["e_exc"], cfg["e_inh"]
    n_ref = float(refractory_steps(cfg))
    v, ge, gi = init["v"].clone(), init["ge"].clone(), init["gi"].clone()
    ref = torch.zeros_like(v)
    s = torch.zeros_like(v)
    out = torch.empty(n_steps, v.numel())
    for t in range(n_steps):
        active = s.nonzero().squeeze(1)
        act_e, act_i = active[active < n_exc], active[active >= n_exc] - n_exc
        ge = ge * a_e + w_exc.index_select(0, act_e).sum(0)
        gi = gi * a_i + w_inh.index_select(0, act_i).sum(0)
        total = 1.0 + ge + gi
        drive = v_leak + ge * e_exc + gi * e_inh
        v_new = v + (drive - total * v) * k
        free = ref <= 0
        v_new = torch.where(free, v_new, v)
        s = (v_new - v_th > 0).to(v.dtype) * free
        ref = torch.where(s > 0, torch.full_like(ref, n_ref), (ref - 1).clamp_(min=0))
        v = v_new * (1.0 - s) + s * v_reset
        out[t] = s
    return out


def _torch_build(cfg, meter):
    net = make_network(cfg)
    meter.start()
    w_exc, w_inh, init = make_torch_reference(cfg, net)
    last = {}

    def run():
        with torch.no_grad():
            last["out"] = torch_reference_loop(cfg, w_exc, w_inh, init)

    def warm():
        with torch.no_grad():
            torch_reference_loop(cfg, w_exc, w_inh, init, n_steps=WARM_STEPS)

    def info():
        out, n_exc = last["out"], cfg["n_exc"]
        return rates(float(out[:, :n_exc].sum()), float(out[:, n_exc:].sum()), cfg)
    return Prepared(run=run, info=info, warm=warm)


# ---------------------------------------------------------------------------- Brian2
BRIAN2_EQS = """
dv/dt  = (ge * (Ee - v) + gi * (Ei - v) - (v - El)) / taum : volt (unless refractory)
dge/dt = -ge / taue : 1
dgi/dt = -gi / taui : 1
"""


def make_brian2(cfg, net, target: str):
    """The Brian2 network (``Network`` with a SpikeMonitor), stored at its initial state."""
    import brian2 as b2
    b2.prefs.codegen.target = target
    b2.defaultclock.dt = cfg["dt"] * b2.second
    ns = {"taum": cfg["tau_mem"] * b2.second, "taue": cfg["tau_exc"] * b2.second,
          "taui": cfg["tau_inh"] * b2.second, "Vt": cfg["v_threshold"] * b2.volt,
          "Vr": cfg["v_reset"] * b2.volt, "El": cfg["v_leak"] * b2.volt, "Ee": cfg["e_exc"] * b2.volt,
          "Ei": cfg["e_inh"] * b2.volt, "we": cfg["we"], "wi": cfg["wi"]}
    n_exc, n_inh = cfg["n_exc"], cfg["n_inh"]
    P = b2.NeuronGroup(n_exc + n_inh, BRIAN2_EQS, threshold="v > Vt", reset="v = Vr",
                       refractory=cfg["refractory"] * b2.second, method="euler", namespace=ns, name="P")
    P.v = net["v"] * b2.volt
    P.ge = net["ge"]
    P.gi = net["gi"]
    Ce = b2.Synapses(P, P, on_pre="ge += we", namespace=ns, name="Ce")
    Ce.connect(i=net["exc_pre"], j=net["exc_post"])
    Ci = b2.Synapses(P, P, on_pre="gi += wi", namespace=ns, name="Ci")
    Ci.connect(i=net["inh_pre"] + n_exc, j=net["inh_post"])
    mon = b2.SpikeMonitor(P, name="spikes")
    network = b2.Network(P, Ce, Ci, mon)
    if target != "cpp_standalone":        # standalone mode has no store/restore: its binary reruns
        network.store("initial")
    return network, mon


def _brian2_build(target):
    def build(cfg, meter):
        net = make_network(cfg)
        import brian2 as b2
        if target == "cython":
            _check_cython(b2)
            if cfg.get("fresh_cython_cache"):   # compile from scratch: an honest compile time
                cache = tempfile.mkdtemp(prefix="bench_coba_cython_")
                atexit.register(shutil.rmtree, cache, ignore_errors=True)
                b2.prefs.codegen.runtime.cython.cache_dir = cache
        meter.start()
        network, mon = make_brian2(cfg, net, target)
        duration = cfg["duration"] * b2.second
        n_exc = cfg["n_exc"]
        last = {}

        def run():
            network.restore("initial")
            network.run(duration)
            i = np.asarray(mon.i)
            last["counts"] = (int((i < n_exc).sum()), int((i >= n_exc).sum()))

        def timed(warmup, repeats):              # the first run: code generation (+ compilation)
            return timed_with_first_run(run, run, warmup, repeats)

        def info():
            ce, ci = last["counts"]
            d = rates(ce, ci, cfg)
            d["target"] = target
            return d
        return Prepared(run=run, info=info, timed=timed)
    return build


def _brian2_standalone_build(cfg, meter):
    """Brian2's ``cpp_standalone`` device, one thread (no OpenMP), built into a fresh folder.

    The first ``network.run`` generates the C++ code, compiles it and runs it once: its wall time
    is ``compile_s`` (code generation + compilation + first run). The timed runs execute the
    compiled binary again (``device.run``); the figure is the simulation time the binary measures
    itself (Brian2's ``device._last_run_time``), without the process start and result files."""
    net = make_network(cfg)
    import brian2 as b2
    directory = tempfile.mkdtemp(prefix="bench_coba_standalone_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    b2.set_device("cpp_standalone", directory=directory, build_on_run=True)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    meter.start()
    network, mon = make_brian2(cfg, net, "cpp_standalone")
    n_exc = cfg["n_exc"]
    last = {}

    def count():
        i = np.asarray(mon.i)
        last["counts"] = (int((i < n_exc).sum()), int((i >= n_exc).sum()))

    def run():
        b2.device.run(directory=directory, with_output=False)
        count()

    def first():                                     # code generation, compilation, one run
        network.run(cfg["duration"] * b2.second)
        count()

    def timed(warmup, repeats):
        return timed_with_first_run(first, run, warmup, repeats, measure=lambda: b2.device._last_run_time)

    def info():
        ce, ci = last["counts"]
        d = rates(ce, ci, cfg)
        d["target"] = "cpp_standalone"
        return d
    return Prepared(run=run, info=info, timed=timed)


def _check_cython(b2):
    """Raise with a clear message when Cython or a C compiler is missing (the case then fails)."""
    import Cython  # noqa: F401
    if not (shutil.which("gcc") or shutil.which("cc")):
        raise RuntimeError("no C compiler (gcc/cc) found: Brian2's cython target cannot run")


CASES = {
    "neurosim": Case("neurosim", _neurosim_build("auto"), "neurosim (compiled loop)"),
    "neurosim_torch": Case("reference", _neurosim_build("torch"), "neurosim, backend='torch'"),
    "brian2_standalone": Case("peer", _brian2_standalone_build, "Brian2 cpp_standalone (1 thread)"),
    "brian2_numpy": Case("peer", _brian2_build("numpy"), "Brian2 numpy"),
    "brian2_cython": Case("peer", _brian2_build("cython"), "Brian2 cython"),
    "torch": Case("reference", _torch_build, "plain PyTorch loop"),
}


if __name__ == "__main__":
    bench_main("benchmarks.bench_coba")
