"""The config loader on its own: the example configs pass the whole check, the check leaves torch's
global RNG alone, overrides and the train section are checked like the rest, inputs are encoded
as the spec says."""
import pathlib

import pytest
import torch
import yaml

from neurosim.cli import main
from neurosim.config import (ConfigError, MonitorSpec, OutputSettings, RunSettings, encode_inputs,
                             load_run_config)

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*.yaml"))

NET = {
    "dt": 1e-3, "steps": 30, "seed": 5,
    "network": {
        "inputs": {"x": {"shape": [6]}},
        "nodes": {"fc": {"type": "dense", "in_features": 6, "out_features": 3},
                  "lif": {"type": "population", "model": "lif", "shape": 3, "params": {"tau_mem": 0.01}}},
        "edges": [["x", "fc"], ["fc", "lif"]],
    },
}


def write(tmp_path, config, name="net.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_configs_pass_the_whole_check(path):
    raw = yaml.safe_load(path.read_text())
    run = load_run_config(path, train="train" in raw)
    assert run.settings == RunSettings(raw["dt"], raw["steps"], raw.get("batch", 1), raw["seed"])
    assert set(run.graph.nodes) == set(raw["network"]["nodes"])
    for spec in run.monitors:
        assert spec.node in run.graph.nodes
    assert (run.train is not None) == ("train" in raw)


def test_the_check_leaves_the_global_rng_alone_and_draws_weights_under_the_seed(tmp_path):
    path = write(tmp_path, NET)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = load_run_config(path)
    assert torch.equal(torch.get_rng_state(), before)
    second = load_run_config(path)
    other_seed = load_run_config(path, overrides={"seed": 6})
    w1, w2 = first.graph.nodes["fc"].weight, second.graph.nodes["fc"].weight
    assert torch.equal(w1, w2)
    assert not torch.equal(w1, other_seed.graph.nodes["fc"].weight)


def test_defaults_of_an_almost_empty_config(tmp_path):
    run = load_run_config(write(tmp_path, NET))
    assert run.settings == RunSettings(1e-3, 30, 1, 5)
    assert run.inputs == {"x": {"encoder": "poisson", "rate": 20.0}}
    assert run.monitors == [MonitorSpec("lif", ("output",), 1)]
    assert run.output == OutputSettings("out", "recording.h5", True)
    assert run.train is None


def test_overrides_are_checked_like_the_keys_they_replace(tmp_path):
    path = write(tmp_path, NET)
    assert load_run_config(path, overrides={"steps": 7, "seed": None}).settings == RunSettings(1e-3, 7, 1, 5)
    with pytest.raises(ConfigError) as info:
        load_run_config(path, overrides={"steps": True})
    assert (info.value.path, info.value.key, info.value.message) == (path, "steps", "must be an integer > 0, got True")
    assert str(info.value) == f"{path}: steps: must be an integer > 0, got True"


@pytest.mark.parametrize("train, key, message", [
    (None, "", "missing required key 'train'"),
    ({"lr": 0}, "train.lr", "must be a finite number > 0, got 0"),
    ({"epochs": 2.5}, "train.epochs", "must be an integer > 0, got 2.5"),
    ({"classes": 4}, "train.classes", "4 classes but the output node has shape (3,)"),
])
def test_train_section_is_checked_before_training(tmp_path, capsys, train, key, message):
    config = dict(NET, train=train) if train is not None else dict(NET)
    path = write(tmp_path, config)
    assert main(["train", path, "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"neurosim: error: {path}: {key + ': ' if key else ''}{message}\n"
    assert not (tmp_path / "o").exists()


def test_train_loss_must_be_registered(tmp_path):
    path = write(tmp_path, dict(NET, train={"classes": 3, "loss": "nope"}))
    with pytest.raises(ConfigError) as info:
        load_run_config(path, train=True)
    assert info.value.key == "train.loss" and "nope" in info.value.message


def test_encode_inputs_follows_the_specs(tmp_path):
    constant = load_run_config(write(tmp_path, dict(NET, batch=2, input={"x": {"encoder": "constant", "value": 0.5}})))
    x = encode_inputs(constant.inputs, constant.graph, constant.settings)["x"]
    assert torch.equal(x, torch.full((30, 2, 6), 0.5))
    silent = load_run_config(write(tmp_path, dict(NET, input={"x": {"rate": 0.0}}), "silent.yaml"))
    s = encode_inputs(silent.inputs, silent.graph, silent.settings, torch.Generator().manual_seed(0))["x"]
    assert s.shape == (30, 1, 6) and s.sum() == 0        # P(spike) = rate * dt = 0
    always = load_run_config(write(tmp_path, dict(NET, input={"x": {"rate": 1000.0}}), "always.yaml"))
    s = encode_inputs(always.inputs, always.graph, always.settings, torch.Generator().manual_seed(0))["x"]
    assert torch.equal(s, torch.ones(30, 1, 6))          # P(spike) = 1000 Hz * 1 ms = 1


@pytest.mark.parametrize("mutate, key, message", [
    (lambda c: c.update(dt=float("nan")), "dt", "must be a finite number of seconds > 0, got nan"),
    (lambda c: c.update(seed=False), "seed", "must be an integer, got False"),
    (lambda c: c.update(input={"x": {"rate": float("inf")}}), "input.x.rate", "must be a rate >= 0 in Hz, got inf"),
    (lambda c: c.update(input={"x": {"encoder": ["poisson"]}}), "input.x.encoder",     # once a TypeError
     "must be one of ['constant', 'poisson'], got ['poisson']"),
    (lambda c: c["network"]["nodes"]["fc"].update(weight_scale=True), "network.nodes.fc.weight_scale",
     "must be a finite number, got True"),
    (lambda c: c["network"]["nodes"]["fc"].update(seed=1.5), "network.nodes.fc.seed", "must be an integer, got 1.5"),
    (lambda c: c.update(train={"classes": 1}), "train.classes", "must be an integer >= 2, got 1"),
])
def test_scalar_rules_name_the_key_and_what_it_must_be(tmp_path, mutate, key, message):
    config = yaml.safe_load(yaml.safe_dump(NET))
    mutate(config)
    path = write(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    assert (info.value.key, info.value.message) == (key, message)
