"""neurosim.save / neurosim.load of fixed-point networks: LoihiDense (mantissas, exponent, per-neuron
delays, latency) and loihi_cuba populations come back with identical spikes and integer states."""
import subprocess
import sys

import pytest
import torch

import neurosim as ns
from neurosim.hardware.loihi import LoihiCubaParams, LoihiDense


def fixed_point_network():
    torch.manual_seed(3)
    m = torch.randint(-128, 128, (6, 8), dtype=torch.int8)
    p = LoihiCubaParams(i_decay=1000, v_decay=300, v_th_mant=40, bias_mant=3, bias_exp=2, refractory_delay=2)
    g = ns.Graph.sequential(8, ("fc", LoihiDense(m, 2, delay=torch.tensor([0, 1, 62, 3, 0, 7]))),
                            ("pop", ns.Population("loihi_cuba", 6, p)))
    g.add("rec", LoihiDense(torch.randint(-128, 128, (6, 6), dtype=torch.int8), 1, latency=0))
    g.connect("pop", "rec", back=True).connect("rec", "pop")
    g.add("fc2", LoihiDense(torch.randint(0, 128, (3, 6), dtype=torch.int8), 7, delay=5))
    g.add("out", ns.Population("loihi_cuba", 3, LoihiCubaParams(v_th_mant=2 ** 17 - 1)))
    g.chain("pop", "fc2", "out")
    return ns.Simulator(g, dt=1e-3)


def test_fixed_point_network_round_trips_with_identical_spikes_and_states(tmp_path):
    sim = fixed_point_network()
    ns.save(sim, tmp_path / "net.h5")
    loaded = ns.load(tmp_path / "net.h5")
    for name in ("fc", "rec", "fc2"):
        a, b = sim.graph.nodes[name], loaded.graph.nodes[name]
        assert torch.equal(a.weight_mant, b.weight_mant) and b.weight_mant.dtype == torch.int8
        assert (a.weight_exp, a.latency) == (b.weight_exp, b.latency)
        assert torch.equal(a.delays(), b.delays())
    x = (torch.rand(120, 2, 8) < 0.3).float()
    monitors = [ns.Monitor("pop", ("spikes", "v", "u")), ns.Monitor("out", "spikes")]
    ra, rb = sim.run(x, monitors=monitors), loaded.run(x, monitors=monitors)
    assert int(ra.records["pop"]["spikes"].sum()) > 0
    for name, fields in ra.records.items():
        for key, value in fields.items():
            assert torch.equal(value, rb.records[name][key]), (name, key)
    assert all(torch.equal(u, v) for u, v in zip(ra.state.nodes["pop"], rb.state.nodes["pop"]))


def test_load_registers_the_fixed_point_model_in_a_fresh_process(tmp_path):
    """A file with loihi_cuba populations loads in a process that never imported the Loihi backend."""
    ns.save(fixed_point_network(), tmp_path / "net.h5")
    code = ("import sys, neurosim as ns; sim = ns.load(sys.argv[1]); "
            "print(type(sim.graph.nodes['fc']).__name__, sim.graph.nodes['pop'].model.name)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "net.h5")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["LoihiDense", "loihi_cuba"]


def test_a_saved_latency_outside_0_or_1_is_refused():
    from neurosim.hardware.node_specs import build_node, describe_nodes
    record = describe_nodes(fixed_point_network().graph)["rec"]
    assert build_node(record).latency == 0
    with pytest.raises(ValueError, match="latency must be 0 or 1"):
        build_node(record._replace(config={**record.config, "latency": 2}))
