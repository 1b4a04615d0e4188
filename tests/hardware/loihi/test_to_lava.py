"""``to_lava``: neurosim's fixed-point networks as Lava processes, run on Lava's own simulation.

The reference is Lava itself: every network below is saved, built into Lava processes by
``to_lava`` inside the separate Lava environment (``hardware/loihi/lava_process_runner.py``) and
run there with ``Loihi2SimCfg(select_tag="fixed_pt")``; neurosim's ``Simulator`` runs the same
network on the same input here. Spikes must be identical at every population and every step, and
so must the voltage (both are ``v`` after the reset of the neurons that spiked). The networks are
dense, recurrent, delayed, sparse and random ones, and convolutional ones (``LoihiConv2d`` to
Lava's ``Conv``, ``(C, H, W)`` populations as ``(W, H, C)`` LIFs, ``Flatten`` as a port
transform): conv -> Flatten -> dense, strided / padded / dilated / grouped convs with unequal
(H, W) pairs, convs from the graph input and on conv populations with a recurrent conv, and conv
weights at the netx edges. All networks go through one runner call (one start of the
environment).

The ``lava_env`` fixture (``conftest.py``) builds the environment with
``scripts/build_lava_env.py`` and skips, printing why, only on its exit 3 (this machine cannot
build it). The last tests need no Lava: they run in the main environment.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import neurosim
from neurosim import Dense, Graph, Monitor, Population, Simulator, Sparse
from neurosim.hardware.loihi import LoihiConv2d, LoihiCubaParams, LoihiDense
from neurosim.hardware.loihi.lava import plan_lava, to_lava
from neurosim.hardware.loihi.lava_process_run import run_lava_processes
from neurosim.hardware.registry import UnsupportedNodesError
from neurosim.projections.conv import Flatten

ROOT = Path(__file__).resolve().parents[3]
RUNNER = ROOT / "hardware" / "loihi" / "lava_process_runner.py"


# ---------------------------------------------------------------------------- networks
def cuba(shape, **params):
    return Population("loihi_cuba", shape, LoihiCubaParams(**params))


def chain_network(seed):
    """x(12) -> fc1 -> h(10) -> fc2 -> o(5): a 2-layer dense chain, both latency 1."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", 12)
    net.add("fc1", LoihiDense(torch.randint(-128, 128, (10, 12), generator=g), weight_exp=3))
    net.add("h", cuba(10, i_decay=1024, v_decay=256, v_th_mant=400))
    net.add("fc2", LoihiDense(torch.randint(-128, 128, (5, 10), generator=g), weight_exp=5))
    net.add("o", cuba(5, i_decay=2048, v_decay=128, v_th_mant=600))
    return net.chain("x", "fc1", "h", "fc2", "o")


def recurrent_network(seed):
    """x -> fc (latency 1) -> h, and h ~> rec (latency 0, a back-edge) -> h: h sums two in-edges."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", 8)
    net.add("fc", LoihiDense(torch.randint(-128, 128, (16, 8), generator=g), weight_exp=4))
    net.add("h", cuba(16, i_decay=512, v_decay=300, v_th_mant=500))
    net.add("rec", LoihiDense(torch.randint(-128, 128, (16, 16), generator=g), weight_exp=4, latency=0))
    net.chain("x", "fc", "h")
    return net.connect("h", "rec", back=True).connect("rec", "h")


def delay_network(seed):
    """Per-neuron delays 0..62 (Lava's DelayDense), a forward latency-0 synapse whose delays are all
    >= 1, and a latency-1 synapse on a back-edge (Lava delay 1 + d)."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", 6)
    delays = torch.tensor([0, 1, 2, 7, 30, 61, 62, 62])
    net.add("fc", LoihiDense(torch.randint(0, 128, (8, 6), generator=g), weight_exp=5, delay=delays))
    net.add("h", cuba(8, i_decay=4096, v_decay=64, v_th_mant=300))
    net.add("fc2", LoihiDense(torch.randint(-128, 128, (4, 8), generator=g), weight_exp=6,
                              delay=torch.tensor([1, 3, 40, 62]), latency=0))
    net.add("o", cuba(4, i_decay=2048, v_decay=0, v_th_mant=200))
    net.add("rec", LoihiDense(torch.randint(-128, 128, (4, 4), generator=g), weight_exp=6, delay=5, latency=1))
    net.chain("x", "fc", "h", "fc2", "o")
    return net.connect("o", "rec", back=True).connect("rec", "o")


def edge_network(seed):
    """Edge values: mantissas -128 and 127, exponents 0 and 7, an all-negative matrix (Lava would
    clip -256 to -255 if it guessed the sign mode), i_decay 4096 and 1, v_decay 0 and 4095, a
    threshold at 2^17 - 1 (v saturates at 2^23 - 1 and spikes), bias mantissas -4096..4095 << 7."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", 6)
    big = torch.where(torch.rand(10, 6, generator=g) < 0.5, torch.tensor(127), torch.tensor(-128))
    net.add("fc_max", LoihiDense(big, weight_exp=7))
    net.add("sat", cuba(10, i_decay=1, v_decay=0, v_th_mant=2 ** 17 - 1))
    net.add("fc_neg", LoihiDense(torch.full((6, 10), -128), weight_exp=0))
    net.add("fc_in", LoihiDense(torch.full((6, 6), 127), weight_exp=0))
    net.add("leak", cuba(6, i_decay=4096, v_decay=4095, v_th_mant=100,
                         bias_mant=torch.tensor([4095, -4096, 100, 0, 7, 63]),
                         bias_exp=torch.tensor([0, 7, 3, 7, 7, 1])))
    net.add("fc_bias", LoihiDense(torch.randint(-128, 128, (5, 6), generator=g), weight_exp=7))
    net.add("biased", cuba(5, i_decay=1, v_decay=4095, v_th_mant=2 ** 17 - 1, bias_mant=4095, bias_exp=7))
    net.chain("x", "fc_max", "sat", "fc_neg", "leak", "fc_bias", "biased")
    return net.connect("x", "fc_in").connect("fc_in", "leak")


def sparse_network(seed):
    """neurosim Sparse synapses holding Loihi weights ``(m << e) << 6``: one forward with delay 1
    (Lava: one step), one on a back-edge without delay."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", 8)
    mask = torch.rand(10, 8, generator=g) < 0.5
    weights = (torch.randint(-128, 128, (10, 8), generator=g) * 2 ** (3 + 6)).float()
    net.add("sp", Sparse(8, 10, mask=mask, weight=weights, delay=1))
    net.add("h", cuba(10, i_decay=1024, v_decay=512, v_th_mant=300))
    rec_mask = torch.rand(10, 10, generator=g) < 0.3
    rec = (torch.randint(-128, 128, (10, 10), generator=g) * 2 ** (2 + 6)).float()
    net.add("sp_rec", Sparse(10, 10, mask=rec_mask, weight=rec))
    net.chain("x", "sp", "h")
    return net.connect("h", "sp_rec", back=True).connect("sp_rec", "h")


def random_network(seed):
    """2-3 layers of random sizes, mantissas, exponents, decays, thresholds, biases, delays, with a
    recurrent back-edge on a random layer."""
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(3, 15)) for _ in range(int(rng.integers(3, 5)))]
    net = Graph().add_input("x", sizes[0])
    previous = "x"
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        delay = torch.tensor(rng.integers(0, 63, n_out)) if rng.random() < 0.5 else int(rng.integers(0, 4))
        net.add(f"fc{k}", LoihiDense(torch.tensor(rng.integers(-128, 128, (n_out, n_in))),
                                     weight_exp=int(rng.integers(3, 8)), delay=delay))
        net.add(f"p{k}", cuba(n_out, i_decay=int(rng.integers(1, 4097)), v_decay=int(rng.integers(0, 4096)),
                              v_th_mant=int(rng.integers(1, 800)),
                              bias_mant=torch.tensor(rng.integers(-64, 64, n_out)), bias_exp=int(rng.integers(0, 4))))
        net.chain(previous, f"fc{k}", f"p{k}")
        previous = f"p{k}"
    k = int(rng.integers(0, len(sizes) - 1))
    n = sizes[k + 1]
    net.add("rec", LoihiDense(torch.tensor(rng.integers(-128, 128, (n, n))), weight_exp=int(rng.integers(0, 8)),
                              delay=int(rng.integers(0, 3)), latency=0))
    return net.connect(f"p{k}", "rec", back=True).connect("rec", f"p{k}")


def conv_flatten_network(seed):
    """(a) x(2, 7, 9) -> conv (3x3, padding 1) -> h(4, 7, 9) with a bias per neuron -> Flatten ->
    LoihiDense -> o(10): H != W and an asymmetric kernel, so any swap of H/W or of the kernel's
    flip shows."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", (2, 7, 9))
    net.add("conv", LoihiConv2d((2, 7, 9), torch.randint(-128, 128, (4, 2, 3, 3), generator=g), weight_exp=2,
                                padding=1))
    net.add("h", cuba((4, 7, 9), i_decay=1024, v_decay=256, v_th_mant=300,
                      bias_mant=torch.randint(-40, 60, (4, 7, 9), generator=g), bias_exp=2))
    net.add("flat", Flatten((4, 7, 9)))
    net.add("fc", LoihiDense(torch.randint(-128, 128, (10, 4 * 7 * 9), generator=g), weight_exp=2))
    net.add("o", cuba(10, i_decay=2048, v_decay=128, v_th_mant=500))
    return net.chain("x", "conv", "h", "flat", "fc", "o")


def strided_grouped_network(seed):
    """(b) a strided, padded, dilated 3x2 conv (every pair (H, W) unequal) into h1(4, 6, 6), a
    grouped conv (groups 2) into h2(6, 4, 6) with a bias per channel, h2 -> Flatten -> Sparse -> o,
    and h1 ~> Flatten -> LoihiDense (latency 0, a back-edge through the Flatten) -> o."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", (3, 11, 9))
    c1 = LoihiConv2d((3, 11, 9), torch.randint(-128, 128, (4, 3, 3, 2), generator=g), weight_exp=3,
                     stride=(2, 1), padding=(1, 0), dilation=(1, 3))
    net.add("conv1", c1)
    net.add("h1", cuba(c1.out_shape, i_decay=512, v_decay=300, v_th_mant=250))
    c2 = LoihiConv2d(c1.out_shape, torch.randint(-128, 128, (6, 2, 2, 3), generator=g), weight_exp=3,
                     stride=(1, 1), padding=(0, 1), dilation=(2, 1), groups=2)
    net.add("conv2", c2)
    net.add("h2", cuba(c2.out_shape, i_decay=2048, v_decay=100, v_th_mant=200,
                       bias_mant=torch.tensor([30, -20, 0, 50, 10, -5]).reshape(6, 1, 1), bias_exp=3))
    n2, n1 = int(np.prod(c2.out_shape)), int(np.prod(c1.out_shape))
    net.add("flat2", Flatten(c2.out_shape))
    mask = torch.rand(8, n2, generator=g) < 0.5
    weight = (torch.randint(-128, 128, (8, n2), generator=g) * 2 ** (2 + 6)).float()     # (m << 2) << 6
    net.add("sp", Sparse(n2, 8, mask=mask, weight=weight, delay=1))
    net.add("flat1", Flatten(c1.out_shape))
    net.add("fb", LoihiDense(torch.randint(-128, 128, (8, n1), generator=g), weight_exp=1, latency=0))
    net.add("o", cuba(8, i_decay=4096, v_decay=200, v_th_mant=400))
    net.chain("x", "conv1", "h1", "conv2", "h2", "flat2", "sp", "o")
    net.connect("h1", "flat1", back=True).connect("flat1", "fb").connect("fb", "o")
    return net


def conv_stack_network(seed):
    """(c) conv straight from the (C, H, W) graph input, a second conv on the conv population, a
    recurrent conv (latency 0, on a back-edge) on h2, and the graph input -> Flatten -> LoihiDense
    into h2's readout o."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", (2, 8, 6))
    net.add("conv1", LoihiConv2d((2, 8, 6), torch.randint(-128, 128, (3, 2, 3, 3), generator=g), weight_exp=3))
    net.add("h1", cuba((3, 6, 4), i_decay=1024, v_decay=512, v_th_mant=250))
    net.add("conv2", LoihiConv2d((3, 6, 4), torch.randint(-128, 128, (5, 3, 2, 2), generator=g), weight_exp=3,
                                 padding=1))
    net.add("h2", cuba((5, 7, 5), i_decay=512, v_decay=200, v_th_mant=200))
    net.add("rec", LoihiConv2d((5, 7, 5), torch.randint(-128, 128, (5, 5, 3, 3), generator=g), weight_exp=1,
                               padding=1, latency=0))
    net.add("flat", Flatten((2, 8, 6)))
    net.add("fc", LoihiDense(torch.randint(-128, 128, (6, 96), generator=g), weight_exp=2))
    net.add("o", cuba(6, i_decay=2048, v_decay=64, v_th_mant=300))
    net.chain("x", "conv1", "h1", "conv2", "h2")
    net.connect("h2", "rec", back=True).connect("rec", "h2")
    return net.chain("x", "flat", "fc", "o")


def conv_edge_network(seed):
    """(d) conv weights at the netx edges, m << e = -256 and 254 (m -128 / 127, e 1), a 1x1 conv
    of all -256 (all negative), and e = 7 (m << e up to 16256) on a sparse 1x1 kernel."""
    g = torch.Generator().manual_seed(seed)
    net = Graph().add_input("x", (3, 6, 5))
    edge = torch.where(torch.rand(4, 3, 3, 3, generator=g) < 0.6, torch.tensor(127), torch.tensor(-128))
    net.add("conv_edge", LoihiConv2d((3, 6, 5), edge, weight_exp=1, padding=1))
    net.add("h", cuba((4, 6, 5), i_decay=4096, v_decay=4095, v_th_mant=600))
    net.add("conv_neg", LoihiConv2d((4, 6, 5), torch.full((2, 4, 1, 1), -128), weight_exp=1))
    net.add("conv_big", LoihiConv2d((3, 6, 5), torch.tensor([[[[127]], [[0]], [[-128]]]] * 2), weight_exp=7))
    net.add("k", cuba((2, 6, 5), i_decay=1, v_decay=0, v_th_mant=2 ** 17 - 1, bias_mant=4095, bias_exp=7))
    net.chain("x", "conv_edge", "h", "conv_neg", "k")
    return net.connect("x", "conv_big").connect("conv_big", "k")


STEPS = 90
CASES = {
    "chain": (chain_network, 0, 0.3), "chain_seed1": (chain_network, 1, 0.5),
    "recurrent": (recurrent_network, 2, 0.3), "delays": (delay_network, 3, 0.4),
    "edges": (edge_network, 4, 0.5), "edges_dense_input": (edge_network, 5, 0.9),
    "sparse": (sparse_network, 6, 0.4),
    **{f"random{seed}": (random_network, seed, 0.35) for seed in (10, 11, 12, 13)},
    "conv_flatten": (conv_flatten_network, 20, 0.3), "strided_grouped": (strided_grouped_network, 21, 0.3),
    "conv_stack": (conv_stack_network, 22, 0.3), "conv_edges": (conv_edge_network, 23, 0.3),
}


def case_input(name):
    _, seed, rate = CASES[name]
    builder, *_ = CASES[name]
    sim = Simulator(builder(seed))
    shape = sim.graph.inputs["x"]
    g = torch.Generator().manual_seed(1000 + seed)
    x = (torch.rand(STEPS, 1, *shape, generator=g) < rate).float()
    x[-5:] = 0          # a quiet tail: what is still in flight arrives
    return sim, x


def run_neurosim(sim, x):
    names = [n for n, node in sim.graph.nodes.items() if isinstance(node, Population)]
    monitors = [Monitor(n, ("spikes", "v")) for n in names]
    records = sim.run(x, monitors=monitors).records
    return {n: (records[n]["spikes"][:, 0].numpy().astype(np.int32), records[n]["v"][:, 0].numpy().astype(np.int64))
            for n in names}


@pytest.fixture(scope="module")
def lava_results(lava_env, tmp_path_factory):
    """Every case through one runner call: ``{case: {key: array}}`` as the runner wrote them."""
    folder = tmp_path_factory.mktemp("to_lava")
    command = [str(lava_env / "bin" / "python"), str(RUNNER), "--steps", str(STEPS)]
    for name in CASES:
        sim, x = case_input(name)
        neurosim.save(sim, folder / f"{name}.h5")
        np.save(folder / f"{name}.npy", x[:, 0].numpy().astype(np.int32))
        command += ["--network", str(folder / f"{name}.h5"), "--input", str(folder / f"{name}.npy"),
                    "--out", str(folder / f"{name}.npz")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"lava_process_runner failed:\n{result.stderr[-4000:]}"
    out = {}
    for name in CASES:
        with np.load(folder / f"{name}.npz") as data:
            out[name] = {key: data[key] for key in data.files}
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_spikes_and_voltages_identical_to_lava(lava_results, case):
    sim, x = case_input(case)
    ours = run_neurosim(sim, x)
    lava = lava_results[case]
    assert int(lava["steps"]) == STEPS
    assert sorted(k[len("spikes_"):] for k in lava if k.startswith("spikes_")) == sorted(ours)
    total = 0
    for name, (spikes, v) in ours.items():
        assert lava[f"spikes_{name}"].shape == spikes.shape, name
        differ = np.argwhere(lava[f"spikes_{name}"] != spikes)
        assert differ.size == 0, f"{case}/{name}: first differing (step, neuron) {tuple(differ[0])}"
        np.testing.assert_array_equal(lava[f"voltage_{name}"], v, err_msg=f"{case}/{name} voltage")
        total += int(spikes.sum())
    assert total > 0, f"{case}: no spikes at all; the comparison would say nothing"


def test_edge_case_reaches_the_edges(lava_results):
    """The edge network really drives v to saturation (2^23 - 1, above the threshold 2^17 - 1 << 6)
    and the biased population spikes: the edges are exercised, not only declared."""
    lava = lava_results["edges_dense_input"]
    assert lava["spikes_sat"].sum() > 0 and lava["spikes_biased"].sum() > 0
    sim, x = case_input("edges_dense_input")
    records = sim.run(x, monitors=[Monitor("sat", ("v",))]).records
    assert int(records["sat"]["v"].abs().max()) == 2 ** 23 - 1


def test_run_lava_processes_helper(lava_env):
    """The main-environment helper (save, runner, read back) agrees with neurosim on a conv network
    fed ``[T, 1, C, H, W]`` (neurosim's layout), returning ``[T, C, H, W]`` records."""
    sim, x = case_input("conv_flatten")
    out = run_lava_processes(sim, x, env=lava_env)
    for name, (spikes, v) in run_neurosim(sim, x).items():
        assert out["spikes"][name].shape == spikes.shape == (STEPS, *sim.graph.nodes[name].out_shape)
        np.testing.assert_array_equal(out["spikes"][name], spikes)
        np.testing.assert_array_equal(out["voltage"][name], v)


def test_to_lava_only_reads_the_network(lava_env, tmp_path):
    """In the Lava environment: to_lava leaves every tensor of the network as it was, and the
    processes hold copies (writing into Lava's weights does not reach the network)."""
    sim, _ = case_input("delays")
    neurosim.save(sim, tmp_path / "net.h5")
    probe = textwrap.dedent(f"""
        import importlib.util, sys, torch
        spec = importlib.util.spec_from_file_location("runner", {str(RUNNER)!r})
        runner = importlib.util.module_from_spec(spec); spec.loader.exec_module(runner)
        neurosim = runner.import_neurosim()
        sim = runner.load_network(neurosim, runner.Path({str(tmp_path / 'net.h5')!r}))
        before = {{k: v.clone() for k, v in sim.graph.state_dict().items()}}
        edges = list(sim.graph.edges)
        from neurosim.hardware.loihi.lava import to_lava
        net = to_lava(sim)
        net.processes["fc"].weights.init[...] = 0
        net.processes["h"].bias_mant.init[...] = 7
        after = sim.graph.state_dict()
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before), "a tensor changed"
        assert list(sim.graph.edges) == edges
        print(sorted(net.processes), type(net.processes["fc"]).__name__, type(net.processes["fc2"]).__name__)
    """)
    result = subprocess.run([str(lava_env / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["['fc',", "'fc2',", "'h',", "'o',", "'rec']", "DelayDense", "DelayDense"]


def test_runner_rejects_bad_input_before_starting_lava(lava_env, tmp_path):
    """A wrong input shape, non-0/1 values, or a missing network file exit 2 naming the file."""
    sim, x = case_input("chain")
    neurosim.save(sim, tmp_path / "net.h5")
    cases = [("wrong_width.npy", np.zeros((4, 3)), "net.h5"), ("graded.npy", np.full((4, 12), 2), "net.h5"),
             ("fine.npy", np.zeros((4, 12)), "missing.h5")]
    for name, array, network in cases:
        np.save(tmp_path / name, array)
        result = subprocess.run([str(lava_env / "bin" / "python"), str(RUNNER), "--network", str(tmp_path / network),
                                 "--input", str(tmp_path / name), "--steps", "4", "--out", str(tmp_path / "never.npz")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert (network if network == "missing.h5" else name) in result.stderr
        assert not (tmp_path / "never.npz").exists()


# ---------------------------------------------------------------------------- main environment
def unsupported_network():
    net = Graph().add_input("x", 4)
    net.add("fc", LoihiDense(torch.ones(4, 4, dtype=torch.int64)))
    net.add("float_lif", Population("lif", 4))
    net.add("no_leak", cuba(4, i_decay=0))
    net.add("refractory", cuba(4, refractory_delay=2))
    net.add("full_v_decay", cuba(4, v_decay=4096))
    net.add("float_dense", Dense(4, 4))
    net.add("sparse_float", Sparse(4, 4, mask=torch.ones(4, 4, dtype=torch.bool), weight=0.5, delay=1))
    net.add("same_step", LoihiDense(torch.ones(4, 4, dtype=torch.int64), latency=0))
    net.add("direct", cuba(4))
    net.chain("x", "fc", "float_lif")
    net.connect("fc", "no_leak").connect("fc", "refractory").connect("fc", "full_v_decay")
    net.connect("x", "float_dense").connect("float_dense", "no_leak")
    net.connect("x", "sparse_float").connect("sparse_float", "refractory")
    net.connect("x", "same_step").connect("same_step", "full_v_decay")
    net.connect("x", "direct")
    return Simulator(net)


def test_unsupported_nodes_listed_in_one_error_without_lava():
    """Every node that cannot be mapped is named, with its reason, in one error, before any Lava
    import (this runs in the main environment, which has no Lava)."""
    sim = unsupported_network()
    with pytest.raises(UnsupportedNodesError) as caught:
        to_lava(sim)
    reasons = {}
    for name, _kind, why in caught.value.problems:
        reasons[name] = reasons.get(name, "") + why
    expected = {"float_lif": "'lif'", "no_leak": "i_decay = 0", "refractory": "refractory_delay = 2",
                "full_v_decay": "v_decay = 4096", "float_dense": "no lava mapping for node type Dense",
                "sparse_float": "multiple of 64", "same_step": "always add one step", "direct": "graph input"}
    assert set(reasons) == set(expected), reasons
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    assert "no_leak" in str(caught.value) and "direct" in str(caught.value)
    assert "lava" not in sys.modules and not any(m.startswith("lava.") for m in sys.modules)


def test_checks_do_not_change_the_network():
    """plan_lava / to_lava read the network: tensors, edges and the neurosim result stay the same."""
    sim, x = case_input("delays")
    before = {k: v.clone() for k, v in sim.graph.state_dict().items()}
    edges = list(sim.graph.edges)
    expected = run_neurosim(sim, x)
    plans = plan_lava(sim)
    assert plans["fc"].delays.tolist() == [0, 1, 2, 7, 30, 61, 62, 62]      # latency 1: Lava delay = d
    assert plans["fc2"].delays.tolist() == [0, 2, 39, 61]                   # latency 0: d - 1
    assert plans["rec"].delays.tolist() == [6] * 4                          # back-edge + latency 1: d + 1
    with pytest.raises(ImportError, match="needs Lava"):
        to_lava(sim)
    after = sim.graph.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and list(sim.graph.edges) == edges
    for name, (spikes, v) in run_neurosim(sim, x).items():
        np.testing.assert_array_equal(spikes, expected[name][0])


def unsupported_conv_network():
    """Conv timings Lava cannot express and Flattens in places that have no Lava port transform."""
    net = Graph().add_input("x", (2, 6, 6)).add_input("img", (6, 6))
    kernel = torch.ones(4, 2, 3, 3, dtype=torch.int64)
    net.add("conv_same", LoihiConv2d((2, 6, 6), kernel, padding=1, latency=0))      # forward, latency 0
    net.add("h", cuba((4, 6, 6)))
    net.add("conv_back", LoihiConv2d((4, 6, 6), torch.ones(4, 4, 1, 1, dtype=torch.int64)))  # back-edge, latency 1
    net.add("flat_pop", Flatten((4, 6, 6)))                                           # Flatten -> population
    net.add("o", cuba(144))
    net.add("flat_a", Flatten((4, 6, 6)))                                             # Flatten -> Flatten
    net.add("flat_b", Flatten((144,)))
    net.add("fc", LoihiDense(torch.ones(3, 144, dtype=torch.int64)))
    net.add("o2", cuba(3))
    net.add("flat_img", Flatten((6, 6)))                                              # a 2-D graph input
    net.add("fc_img", LoihiDense(torch.ones(3, 36, dtype=torch.int64)))
    net.chain("x", "conv_same", "h", "flat_pop", "o")
    net.connect("h", "conv_back", back=True).connect("conv_back", "h")
    net.chain("h", "flat_a", "flat_b", "fc", "o2")
    net.chain("img", "flat_img", "fc_img", "o2")
    return Simulator(net)


def test_unsupported_conv_and_flatten_listed_in_one_error():
    """A conv on a forward edge with latency 0, a conv with latency 1 on a back-edge (it would need
    a delay, which Lava's Conv has not), a Flatten feeding a population, a Flatten of a Flatten and a
    2-D graph input: all in one error, each with its reason, no Lava import."""
    sim = unsupported_conv_network()
    with pytest.raises(UnsupportedNodesError) as caught:
        plan_lava(sim)
    reasons = {}
    for name, _kind, why in caught.value.problems:
        reasons[name] = reasons.get(name, "") + why
    expected = {"conv_same": "always add one step", "conv_back": "Lava's Conv has no delays",
                "flat_pop": "must feed synapses", "o": "comes from a Flatten", "flat_a": "must feed synapses",
                "flat_b": "its source is a Flatten", "flat_img": "only (n,) and (C, H, W) inputs"}
    assert set(reasons) == set(expected), reasons
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    assert "lava" not in sys.modules and not any(m.startswith("lava.") for m in sys.modules)


def test_conv_plans_without_lava():
    """plan_lava reads a synapse's source through its Flatten (with the Flatten's back-edge), gives
    a conv no Lava delay, and run_lava_processes checks a (C, H, W) input's shape before any Lava."""
    sim, x = case_input("strided_grouped")
    plans = plan_lava(sim)
    assert (plans["fb"].source, plans["fb"].flatten, plans["fb"].delays.tolist()) == ("h1", True, [0] * 8)
    assert (plans["sp"].source, plans["sp"].flatten) == ("h2", True)
    assert (plans["conv2"].source, plans["conv2"].flatten, plans["conv2"].delays.tolist()) == ("h1", False, [0])
    for bad in (x[:, 0].permute(0, 3, 2, 1), x[:, :, :1], torch.cat([x, x], 1), 2 * x):     # Lava order, ...
        with pytest.raises(ValueError, match="run_lava_processes"):
            run_lava_processes(sim, bad, env=Path("/nonexistent"))


def test_runner_reads_time_first_image_inputs(tmp_path):
    """The runner's input reader (importable without Lava) takes ``[T, C, H, W]``, pads it to
    ``--steps``, and refuses Lava's own ``[T, W, H, C]`` order, naming the file."""
    spec = importlib.util.spec_from_file_location("lava_process_runner", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    x = (np.random.default_rng(0).random((5, 2, 7, 9)) < 0.5).astype(np.int32)
    np.save(tmp_path / "good.npy", x)
    padded = runner.read_input(tmp_path / "good.npy", 8, (2, 7, 9))
    assert padded.shape == (8, 2, 7, 9) and (padded[:5] == x).all() and not padded[5:].any()
    np.save(tmp_path / "lava_order.npy", x.transpose(0, 3, 2, 1))
    with pytest.raises(ValueError, match="lava_order.npy.*T, 2, 7, 9"):
        runner.read_input(tmp_path / "lava_order.npy", 8, (2, 7, 9))
