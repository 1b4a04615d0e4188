"""Op accounting against hand counts; report arithmetic; energy linear in the counts."""
import pytest
import torch

import neurosim as ns

DT = 1e-3


def hand_network():
    """x(4) -> fc -> lif(3) -> out(2). fc copies inputs 0 and 1 onto neurons 0 and 1 with a weight
    large enough to fire from rest in one step (reset to zero), and never drives neuron 2."""
    w_fc = torch.zeros(3, 4)
    w_fc[0, 0] = w_fc[1, 1] = 20.0     # v = (1 - e^{-0.1}) * 20 = 1.9 > 1 from v = 0
    g = ns.Graph.sequential(4, ("fc", ns.Dense(4, 3, weight=w_fc)),
                            ("lif", ns.Population("lif", 3, ns.LIFParams(tau_mem=10e-3, reset="zero"))),
                            ("out", ns.Dense(3, 2, weight=torch.ones(2, 3))))
    return g, ns.Simulator(g, dt=DT)


def hand_inputs():
    x = torch.zeros(5, 2, 4)
    x[0, 0, 0] = x[1, 0, 0] = x[3, 0, 0] = 1     # sample 0: input 0 three times
    x[2, 0, 1] = 1                               # input 1 once
    x[4, 0, 3] = 1                               # input 3: fc has no synapse from it onto a spiking path
    x[1, 1, 2] = x[2, 1, 2] = 1                  # sample 1: input 2 twice (weights are zero)
    return x


def test_op_counts_equal_spikes_times_fan_out_by_hand():
    g, sim = hand_network()
    x = hand_inputs()
    result = sim.run(x, count_ops=True, monitors=[ns.Monitor("lif", "spikes")])
    lif_spikes = result.records["lif"]["spikes"]
    # neuron j in {0, 1} fires exactly when input j spikes; neuron 2 never
    assert torch.equal(lif_spikes[..., :2], x[..., :2]) and lif_spikes[..., 2].sum() == 0
    assert result.ops["fc"]["synops"] == 7 * 3          # 7 input spikes x fan-out 3
    assert result.ops["fc"]["macs"] == 5 * 2 * 4 * 3    # T x B x in x out
    assert result.ops["lif"]["spikes"] == 4             # 3 + 1
    assert result.ops["out"]["synops"] == 4 * 2         # 4 spikes x fan-out 2
    assert result.ops["out"]["macs"] == 5 * 2 * 3 * 2


def test_summarize_ops_arithmetic():
    g, sim = hand_network()
    result = sim.run(hand_inputs(), count_ops=True)
    report = ns.summarize_ops(result, sim=sim)
    assert (report.steps, report.batch, report.dt) == (5, 2, DT)
    assert report.spikes == 4 and report.synops == 21 + 8 and report.macs == 120 + 60
    assert report.firing_rates == pytest.approx({"lif": 4 / (3 * 2 * 5 * DT)})     # 133.3 Hz
    assert report.synops_per_sample == pytest.approx(29 / 2)
    assert report.synops_per_sample_per_step == pytest.approx(29 / 10)
    assert report.macs_per_sample_per_step == pytest.approx(18.0)
    assert report.activity_ratio == pytest.approx(29 / 180)
    assert "lif: spikes 4, rate 133 Hz" in str(report)
    same = ns.summarize_ops(result.ops, steps=5, batch=2, dt=DT, sizes={"lif": 3})
    assert same == report
    no_rates = ns.summarize_ops(result.ops, steps=5, batch=2)
    assert no_rates.firing_rates == {} and no_rates.synops == report.synops


def test_summarize_ops_rejects_bad_input():
    g, sim = hand_network()
    with pytest.raises(ValueError, match="count_ops=True"):
        ns.summarize_ops(sim.run(hand_inputs()))
    with pytest.raises(ValueError, match="steps and batch are required"):
        ns.summarize_ops({"fc": {"synops": 1}})
    with pytest.raises(ValueError, match=r"steps=7 disagrees with the result \(5\)"):
        ns.summarize_ops(sim.run(hand_inputs(), count_ops=True), steps=7)
    with pytest.raises(ValueError, match=r"ops\['fc'\]\['synops'\] must be a finite count >= 0"):
        ns.summarize_ops({"fc": {"synops": -1}}, steps=1, batch=1)
    with pytest.raises(TypeError, match="SimulationResult"):
        ns.summarize_ops([1, 2], steps=1, batch=1)


def test_energy_is_linear_in_the_counts():
    ops = {"fc": {"synops": 100.0, "macs": 1000.0}, "lif": {"spikes": 10.0}}
    report = ns.summarize_ops(ops, steps=10, batch=2)
    est = ns.energy_estimate(report, e_synop=2.0, e_mac=3.0, e_spike=5.0)
    assert est.neuromorphic == 100 * 2.0 + 10 * 5.0
    assert est.conventional == 1000 * 3.0
    assert est.neuromorphic_per_sample == 125.0 and est.ratio == pytest.approx(3000 / 250)
    assert est.per_node["fc"] == {"neuromorphic": 200.0, "conventional": 3000.0}
    doubled = ns.summarize_ops({k: {n: 2 * c for n, c in v.items()} for k, v in ops.items()}, steps=10, batch=2)
    est2 = ns.energy_estimate(doubled, e_synop=2.0, e_mac=3.0, e_spike=5.0)
    assert est2.neuromorphic == 2 * est.neuromorphic and est2.conventional == 2 * est.conventional


def test_energy_presets_follow_the_cited_figures():
    report = ns.summarize_ops({"fc": {"synops": 1e6, "macs": 1e6}, "lif": {"spikes": 1e3}}, steps=1, batch=1)
    loihi = ns.energy_estimate(report)
    assert loihi.neuromorphic == pytest.approx(1e6 * 23.6e-12 + 1e3 * 1.7e-12)
    assert loihi.conventional == pytest.approx(1e6 * (0.9e-12 + 3.7e-12))        # Horowitz 2014 fp32 MAC
    cmos = ns.energy_estimate(report, preset="cmos45nm")
    assert cmos.neuromorphic == pytest.approx(1e6 * 0.9e-12)                      # accumulate only
    partial = ns.energy_estimate(report, e_synop=1e-12)                          # override one value
    assert partial.neuromorphic == pytest.approx(1e6 * 1e-12 + 1e3 * 1.7e-12)
    with pytest.raises(ValueError, match="unknown preset"):
        ns.energy_estimate(report, preset="tpu")
    with pytest.raises(ValueError, match="e_mac must be a finite energy"):
        ns.energy_estimate(report, e_mac=-1.0)
    with pytest.raises(TypeError, match="OpsReport"):
        ns.energy_estimate({"fc": {}})
