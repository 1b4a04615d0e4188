"""The compiled machine's projections (Dense, Sparse, delays, Delay, Flatten), monitors and op
counts against the torch path."""
import torch

import neurosim as ns
from neurosim.neurons import CobaLIFParams, LIFParams

from .test_conformance import _assert_same, _both


def _spikes(steps, batch, n, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g) < p).to(torch.float64)


def _delayed_network(dtype=torch.float64):
    """input -> Sparse with per-synapse delays -> LIF, LIF -> Dense with per-synapse delays ->
    (back-edge) LIF, LIF -> Delay line -> second LIF: every delay kind in one recurrent block."""
    torch.manual_seed(3)
    n_in, n = 16, 12
    g = ns.Graph().add_input("x", n_in)
    g.add("syn", ns.Sparse.random(n_in, n, p=0.5, weight=lambda k, gen: torch.rand(k, generator=gen) * 1.2,
                                  delay=lambda k, gen: torch.randint(0, 4, (k,), generator=gen), seed=5,
                                  event_driven=True).to(dtype))
    g.add("pop", ns.Population("lif", n, LIFParams(tau_mem=20e-3, r=25.0, refractory_steps=1)).to(dtype))
    w = (torch.rand(n, n, dtype=dtype) - 0.4) * 0.6
    g.add("rec", ns.Dense(n, n, weight=w, delay=torch.randint(0, 5, (n, n)), event_driven=True, bias=True))
    g.add("line", ns.Delay(n, torch.randint(0, 3, (n,))))
    g.add("uniform", ns.Dense(n, n, weight=torch.eye(n, dtype=dtype) * 2.0, delay=2, event_driven=True))
    g.add("out", ns.Population("lif", n, LIFParams(tau_mem=10e-3, r=20.0)).to(dtype))
    g.connect("x", "syn").connect("syn", "pop")
    g.connect("pop", "rec", back=True).connect("rec", "pop")
    g.connect("pop", "line").connect("line", "uniform").connect("uniform", "out")
    g.connect("out", "pop", back=True)
    g.add_output("pop", "out")
    return g


def test_delays_of_every_kind_match_and_continue():
    g = _delayed_network()
    x = _spikes(120, 2, 16, 0.3, seed=1)
    ref, got, sim = _both(g, x)
    assert ref.outputs["pop"].sum() > 0 and ref.outputs["out"].sum() > 0
    for node in ("pop", "out", "rec", "syn", "line", "uniform"):
        assert sim.placement[node][0] == "compiled", (node, sim.placement[node])
    _assert_same(ref, got, sim, "pop")
    _assert_same(ref, got, sim, "out")
    # continue from the state (delay buffers in flight) on both paths
    with torch.no_grad():
        more_ref = ns.Simulator(g, 1e-3, backend="torch").run(x, state=ref.state)
    more, _, sim2 = _both(g, x, state=got.state)
    assert torch.equal(more_ref.outputs["pop"], more.outputs["pop"])
    for name in ("rec", "syn", "line", "uniform"):
        assert torch.equal(more_ref.state.nodes[name].buffer, more.state.nodes[name].buffer), name


def test_monitors_record_the_same_values():
    g = _delayed_network()
    x = _spikes(60, 2, 16, 0.3, seed=2)
    runs = {}
    for backend in ("torch", "compiled"):
        mons = [ns.Monitor("pop", ["spikes", "v", "refractory"], name="p"), ns.Monitor("rec", "output", name="r"),
                ns.Monitor("out", ["v"], every=3, name="o")]
        with torch.no_grad():
            sim = ns.Simulator(g, 1e-3, backend=backend)
            runs[backend] = sim.run(x, monitors=mons).records
        assert sim.placement["pop"][0] == backend
    for mon, variables in runs["torch"].items():
        for var, value in variables.items():
            other = runs["compiled"][mon][var]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), (mon, var)
    assert runs["torch"]["p"]["v"].shape[0] == 60 and runs["torch"]["o"]["v"].shape[0] == 20


def test_op_counts_match():
    g = _delayed_network()
    x = _spikes(50, 3, 16, 0.3, seed=3)
    ref, got, sim = _both(g, x, count_ops=True)
    assert set(ref.ops) == set(got.ops)
    for node, counts in ref.ops.items():
        assert counts == got.ops[node], node
    assert ref.ops["pop"]["spikes"] > 0 and ref.ops["rec"]["synops"] > 0


def test_sparse_coba_network_matches_bit_for_bit():
    """A small COBA network (Sparse exc/inh projections through back-edges, as the benchmark)."""
    torch.manual_seed(0)
    n, n_exc = 200, 160
    g = ns.Graph().add_input("ext", n)
    g.add("neurons", ns.Population("coba_lif", n, CobaLIFParams(integration="euler", refractory_steps=49)))
    g.add("drive", ns.Sparse.random(n, n, p=0.05, weight=0.8, seed=1))
    g.connect("ext", "drive").connect("drive", "neurons", port="exc")
    for src, lo, hi, w in (("exc", 0, n_exc, 0.6), ("inh", n_exc, n, 6.7)):
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[:, lo:hi] = torch.rand(n, hi - lo) < 0.05
        g.add(f"{src}_syn", ns.Sparse(n, n, mask=mask, weight=w, event_driven=True))
        g.connect("neurons", f"{src}_syn", back=True).connect(f"{src}_syn", "neurons", port=src)
    g.add_output("neurons")
    x = (torch.rand(3000, 1, n) < 0.01).float()
    ref, got, sim = _both(g, x, dt=1e-4)
    assert ref.output.sum() > 100
    _assert_same(ref, got, sim, "neurons")


def test_flatten_inside_a_loop():
    torch.manual_seed(1)
    g = ns.Graph().add_input("x", (2, 3))
    g.add("flat", ns.Flatten((2, 3)))
    g.add("pop", ns.Population("lif", 6, LIFParams(r=30.0)))
    g.add("rec", ns.Dense(6, 6, weight=torch.rand(6, 6) * 0.5, event_driven=True))
    g.connect("x", "flat").connect("flat", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
    g.add_output("pop")
    x = (torch.rand(80, 2, 2, 3) < 0.4).float()
    ref, got, sim = _both(g, x)
    assert ref.output.sum() > 0
    _assert_same(ref, got, sim)
