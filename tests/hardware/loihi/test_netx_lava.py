"""Conformance of the netx export and import with Lava's own simulation (lava-dl 0.6.0's
``netx.hdf5.Network`` on ``Loihi2SimCfg(select_tag="fixed_pt")``, in the separate Lava
environment): every layer's spikes and voltages, step for step.

* ``to_netx``: networks built in neurosim's fixed-point model (conv, flatten, delayed dense with
  bias, recurrent), edge values (weights -256 / 254, no current decay so that u wraps at 24 bits,
  full and zero voltage decay, thresholds 0 and 2^17 - 1, bias at the top of its range, delays 0
  and 62), random networks, and a float network through ``quantize(max_weight_exp=1)``;
* ``from_netx`` on files written by lava-dl's slayer (``export_hdf5``): dense, delayed dense,
  conv + flatten + dense, recurrent.

All Lava runs go through one runner call (Lava's start-up is paid once). The module skips only
where the Lava environment cannot be built here (printing why); that is not a pass.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

import neurosim as ns
from neurosim.hardware.loihi import LoihiConv2d, LoihiCubaParams, LoihiDense, from_netx, quantize, to_netx
from neurosim.hardware.loihi.netx import export_layer_names, netx_layer_names
from neurosim.hardware.loihi.netx_lava import LavaUnavailable, lava_environment, run_netx_on_lava

SLAYER_SCRIPT = Path(__file__).with_name("slayer_networks.py")
SLAYER_FILES = ("dense_chain", "dense_delay", "conv_flatten", "recurrent")
STEPS = 80


def pop(shape, **params):
    return ns.Population("loihi_cuba", shape, LoihiCubaParams(**params))


def mixed(shape, low=-128, high=128, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=generator, dtype=torch.int8)


def conv_delay_recurrent():
    """input (2, 8, 8) -> conv 3x3 s2 -> flatten -> dense (delays 0..9, bias) -> dense -> recurrent."""
    g = ns.Graph.sequential(
        (2, 8, 8), ("conv", LoihiConv2d((2, 8, 8), mixed((4, 2, 3, 3), -100, 128), 1, padding=1, stride=2)),
        ("p1", pop((4, 4, 4), i_decay=4096, v_decay=100, v_th_mant=200)), ("flat", ns.Flatten((4, 4, 4))),
        ("fc", LoihiDense(mixed((10, 64), seed=1), 1, delay=torch.arange(10))),
        ("p2", pop(10, i_decay=1000, v_decay=300, v_th_mant=40, bias_mant=3, bias_exp=7)),
        ("fc2", LoihiDense(mixed((5, 10), seed=2), 0)), ("p3", pop(5, v_th_mant=30)))
    g.add("rec", LoihiDense(mixed((5, 5), -50, 128, seed=3), 1, latency=0))
    g.connect("p3", "rec", back=True).connect("rec", "p3")
    return ns.Simulator(g)


def edge_values():
    """Layer a: weights 254 and -256 (mantissas 127 / -128 at exponent 1), u never decays
    (i_decay 0, so it wraps around at 2^23) and v keeps everything (v_decay 0, so it saturates at
    2^23 - 1), the largest threshold (2^17 - 1) << 6. Layer b: exponent 0, v forgets at once
    (v_decay 4096), threshold 0, a negative bias. Layer c: delays 0, 1, 30, 61, 62, the slowest
    current decay, v_decay 4095, the largest positive bias."""
    weight = torch.full((8, 64), 127, dtype=torch.int8)
    weight[:, ::8] = -128
    g = ns.Graph.sequential(
        64, ("fa", LoihiDense(weight, 1)), ("a", pop(8, i_decay=0, v_decay=0, v_th_mant=2 ** 17 - 1)),
        ("fb", LoihiDense(mixed((6, 8), seed=5), 0)), ("b", pop(6, i_decay=4096, v_decay=4096, v_th_mant=0,
                                                                bias_mant=-64, bias_exp=6)),
        ("fc", LoihiDense(mixed((5, 6), 0, 128, seed=6), 1, delay=torch.tensor([0, 1, 30, 61, 62]))),
        ("c", pop(5, i_decay=1, v_decay=4095, v_th_mant=5000, bias_mant=4095, bias_exp=6)))
    return ns.Simulator(g)


def random_network(seed):
    generator = torch.Generator().manual_seed(seed)

    def draw(low, high):
        return int(torch.randint(low, high + 1, (), generator=generator))

    sizes = [draw(4, 24) for _ in range(4)]
    layers = []
    for k in range(3):
        exp = draw(0, 1)
        layers.append((f"fc{k}", LoihiDense(mixed((sizes[k + 1], sizes[k]), seed=seed * 10 + k), exp,
                                            delay=torch.randint(0, 6, (sizes[k + 1],), generator=generator))))
        layers.append((f"p{k}", pop(sizes[k + 1], i_decay=draw(1, 4096), v_decay=draw(0, 4096),
                                    v_th_mant=draw(1, 400 << exp), bias_mant=draw(-20, 20), bias_exp=6)))
    return ns.Simulator(ns.Graph.sequential(sizes[0], *layers))


def quantized_float_network():
    torch.manual_seed(7)
    g = ns.Graph.sequential(
        20, ("fc1", ns.Dense(20, 30, weight=torch.randn(30, 20) * 0.9 + 0.3)),
        ("lif", ns.Population("lif", 30, ns.LIFParams(tau_mem=20e-3, reset="zero"))),
        ("fc2", ns.Dense(30, 8, weight=torch.randn(8, 30) * 0.8 + 0.2)),
        ("out", ns.Population("cuba_lif", 8, ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="zero"))))
    g.add("rec", ns.Dense(30, 30, weight=torch.randn(30, 30) * 0.1)).connect("lif", "rec", back=True)
    g.connect("rec", "lif")
    qsim, report = quantize(ns.Simulator(g, dt=1e-3), max_weight_exp=1)
    assert max(layer.weight_exp for layer in report.layers.values()) <= 1
    return qsim


BUILT = {"conv_delay_recurrent": conv_delay_recurrent, "edge_values": edge_values,
         "random_0": lambda: random_network(0), "random_1": lambda: random_network(1),
         "random_2": lambda: random_network(2), "quantized": quantized_float_network}


def spikes_for(sim, seed, rate=0.3):
    shape = next(iter(sim.graph.inputs.values()))
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, 1, *shape, generator=generator) < rate).float()


@pytest.fixture(scope="module")
def lava_runs(tmp_path_factory):
    """Every case: (neurosim records, Lava run, {file layer index: population}); one Lava call."""
    try:
        env = lava_environment()
    except LavaUnavailable as why:
        print(why)
        pytest.skip(str(why))
    folder = tmp_path_factory.mktemp("netx")
    result = subprocess.run([str(env / "bin" / "python"), str(SLAYER_SCRIPT), str(folder / "slayer")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = {}
    for name, build in BUILT.items():
        sim = build()
        to_netx(sim, folder / f"{name}.net")
        cases[name] = (folder / f"{name}.net", sim, export_layer_names(sim))
    for name in SLAYER_FILES:
        path = folder / "slayer" / f"{name}.net"
        sim = from_netx(path, input_shape=(2, 8, 8) if name == "conv_flatten" else None)
        cases[f"slayer_{name}"] = (path, sim, netx_layer_names(sim))
    inputs = {name: spikes_for(sim, seed) for seed, (name, (_, sim, _)) in enumerate(cases.items())}
    runs = run_netx_on_lava([path for path, _, _ in cases.values()], list(inputs.values()))
    out = {}
    for (name, (path, sim, layers)), run in zip(cases.items(), runs):
        with torch.no_grad():
            records = sim.run(inputs[name], monitors=[ns.Monitor(p, ("spikes", "v")) for p in layers.values()]).records
        out[name] = (records, run, layers, sim, inputs[name])
    return out


@pytest.mark.parametrize("case", list(BUILT) + [f"slayer_{n}" for n in SLAYER_FILES])
def test_every_layer_spikes_and_voltages_equal_lavas(lava_runs, case):
    records, run, layers, _, _ = lava_runs[case]
    assert sorted(run.spikes) == sorted(layers)
    total = 0
    for index, name in layers.items():
        ours, lavas = records[name]["spikes"], run.spikes[index].to(records[name]["spikes"].dtype)
        assert ours.shape == lavas.shape, (name, ours.shape, lavas.shape)
        differ = (ours != lavas).nonzero()
        assert differ.numel() == 0, f"{case}/{name}: first difference at (step, batch, neuron) {differ[0].tolist()}"
        assert torch.equal(records[name]["v"].to(torch.int64), run.voltages[index].to(torch.int64)), (case, name)
        total += int(ours.sum())
    assert total > 0, f"{case}: no layer spiked; the comparison would be empty"


@pytest.mark.parametrize("case", list(BUILT) + [f"slayer_{n}" for n in SLAYER_FILES])
def test_the_comparison_ran_the_compiled_loop(lava_runs, case):
    """The runs compared with Lava above are neurosim's default backend: every population (a
    loihi_cuba block) ran on the compiled loop, so Lava checks the compiled integer kernels."""
    _, _, layers, sim, _ = lava_runs[case]
    for name in layers.values():
        assert sim.placement[name] == ("compiled", ""), (case, name, sim.placement[name])


def test_edge_case_network_reaches_its_edges(lava_runs):
    """The edge-value network does what it is there to test: layer a's current wraps around at
    2^23 (u never decays), layer c's spikes arrive through the 61- and 62-step delays."""
    records, run, layers, sim, x = lava_runs["edge_values"]
    state = sim.graph.nodes["a"].initial_state(1)
    fa, us = sim.graph.nodes["fa"], []
    drive = fa.initial_state(1)
    with torch.no_grad():
        for t in range(STEPS):
            z, drive = fa.step(x[t], drive, 1e-3)
            _, state = sim.graph.nodes["a"].step(z, state, 1e-3)
            us.append(state.u.clone())
    u = torch.stack(us)
    assert bool((u[1:] < u[:-1]).any() & (u.max() > 2 ** 22)), "u never wrapped"
    assert int(records["a"]["v"].max()) == 2 ** 23 - 1 or int(records["a"]["spikes"].sum()) > 0   # saturated
    assert int(records["a"]["spikes"].sum()) > 0 and int(records["b"]["spikes"].sum()) > 0
    c_spikes = records["c"]["spikes"][:, 0]
    assert int(c_spikes[:, 3:].sum()) > 0      # the neurons behind the 61- and 62-step delays spike


def test_a_wrong_latency_is_caught(lava_runs):
    """The same chain with one synapse at latency 0 (same-step delivery, neurosim's float timing)
    no longer matches Lava: the comparison can fail."""
    records, run, layers, sim, x = lava_runs["random_0"]
    graph = ns.Graph.sequential(next(iter(sim.graph.inputs.values()))[0], *[
        (name, LoihiDense(node.weight_mant, node.weight_exp, node.delays(), latency=0) if name == "fc1" else node)
        for name, node in sim.graph.nodes.items()])
    with torch.no_grad():
        shifted = ns.Simulator(graph).run(x, monitors=[ns.Monitor("p2", "spikes")]).records["p2"]["spikes"]
    index = next(i for i, n in layers.items() if n == "p2")
    assert not torch.equal(shifted, run.spikes[index].to(shifted.dtype))
