"""The example contract (examples/common.py): presets, results, and the shared measurements."""
import argparse
import types

import pytest
import torch

import neurosim as ns
from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters, measure_simulator,
                                      module_macs_per_sample, parse_example_args, shared_data)


def _fake_module(presets):
    def add_arguments(parser):
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--hidden", type=int, default=None)
    return types.SimpleNamespace(NAME="fake", TITLE="a fake example", PRESETS=presets, add_arguments=add_arguments)


PRESETS = {"quick": {"epochs": 1, "hidden": 4}, "default": {"epochs": 5, "hidden": 16},
           "full": {"epochs": 50, "hidden": 64}}


def test_presets_fill_only_the_flags_left_unset():
    module = _fake_module(PRESETS)
    assert vars(parse_example_args(module, [])) == {"size": "default", "seed": 0, "out": None, "threads": None,
                                                    "epochs": 5, "hidden": 16}
    quick = parse_example_args(module, ["--quick", "--hidden", "7", "--seed", "3"])
    assert (quick.size, quick.epochs, quick.hidden, quick.seed) == ("quick", 1, 7, 3)
    assert parse_example_args(module, ["--full"]).epochs == 50


def test_bad_flags_and_bad_presets_are_refused():
    module = _fake_module(PRESETS)
    with pytest.raises(SystemExit) as exit_info:
        parse_example_args(module, ["--quick", "--full"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        parse_example_args(module, ["--epochs", "many"])
    broken = _fake_module({**PRESETS, "quick": {"epochs": 1, "widht": 3}})
    with pytest.raises(ValueError, match="'widht'"):
        parse_example_args(broken, ["--quick"])


def _variant(**overrides):
    fields = dict(name="CNN", kind="conventional", metric=0.9, params=10, time_steps=1, train_seconds=1.0,
                  seconds_per_sample=1e-4, macs_per_sample=100.0)
    return VariantResult(**{**fields, **overrides})


def test_results_check_their_fields_and_serialise_without_tensors():
    with pytest.raises(ValueError, match="kind"):
        _variant(kind="neuromorphic")
    with pytest.raises(ValueError, match="metric"):
        _variant(metric=float("nan"))
    spiking = _variant(name="SNN", kind="spiking", raster=torch.zeros(3, 2, dtype=torch.bool),
                       spikes_per_sample=5.0, synops_per_sample=50.0)
    result = ExampleResult(example="fake", task="t", metric_name="accuracy", higher_is_better=True, chance=0.1,
                           seed=0, size="quick", budget={"epochs": 1}, variants=[_variant(), spiking])
    figures = result.figures()
    assert [v["name"] for v in figures["variants"]] == ["CNN", "SNN"]
    assert "raster" not in figures["variants"][1] and figures["variants"][1]["synops_per_sample"] == 50.0
    with pytest.raises(ValueError, match="repeat"):
        ExampleResult(example="fake", task="t", metric_name="a", higher_is_better=True, chance=None, seed=0,
                      size="quick", budget={}, variants=[_variant(), _variant()])


def _chain(weight):
    g = ns.Graph().add_input("x", 6)
    g.add("fc", ns.Dense(6, 3, weight=weight))
    g.add("lif", ns.Population("lif", 3, ns.LIFParams(tau_mem=20e-3, v_threshold=1.0, reset="subtract")))
    g.chain("x", "fc", "lif")
    return ns.Simulator(g, dt=1e-3)


def test_measure_simulator_counts_spikes_and_synops_per_sample():
    torch.manual_seed(0)
    weight = torch.rand(3, 6)
    sim = _chain(weight)
    x = (torch.rand(20, 4, 6) < 0.3).float()
    m = measure_simulator(sim, x)
    out = sim.run(x).output
    assert m.spikes_per_sample == pytest.approx(out.sum().item() / 4)
    assert m.synops_per_sample == pytest.approx(x.sum().item() * 3 / 4)       # active inputs x fan-out 3
    assert m.macs_per_sample == 0.0 and m.time_steps == 20 and m.raster_population == "lif"
    assert torch.equal(m.raster, out[:, 0].bool())
    with pytest.raises(ValueError, match="'fc' is not a population"):
        measure_simulator(sim, x, raster_population="fc")


def test_parameter_and_mac_counts():
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert count_parameters(net) == 6 * 4 + 4 + 4 * 2 + 2
    assert module_macs_per_sample(net, torch.rand(5, 6)) == 6 * 4 + 4 * 2
    sim = _chain(torch.nn.Parameter(torch.rand(3, 6)))
    assert count_parameters(sim) == 18


def test_shared_data_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))
    assert shared_data("events", "nmnist") == tmp_path / "events" / "nmnist"
    monkeypatch.delenv("NEUROSIM_DATA")
    assert shared_data("planetoid").parts[-3:] == ("shared", "data", "planetoid")
