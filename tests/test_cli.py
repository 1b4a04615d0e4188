"""The command line on small configs: simulate writes a recording and plots, train checkpoints,
info lists backends, and bad configs exit with status 2 and one line naming the file and the key,
before anything runs."""
import copy
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

import neurosim as ns
from neurosim import config as config_module
from neurosim.cli import main
from neurosim.monitor import load_recording

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

SMALL = {
    "dt": 1e-3, "steps": 80, "batch": 2, "seed": 3,
    "network": {
        "inputs": {"x": {"shape": [20]}},
        "nodes": {
            "fc": {"type": "dense", "in_features": 20, "out_features": 15,
                   "weight": {"distribution": "uniform", "low": 0.0, "high": 1.0}},
            "lif": {"type": "population", "model": "lif", "shape": 15, "params": {"tau_mem": 0.01}},
            "rec": {"type": "dense", "in_features": 15, "out_features": 15},
        },
        "edges": [["x", "fc"], ["fc", "lif"], {"source": "lif", "target": "rec", "back": True}, ["rec", "lif"]],
    },
    "input": {"x": {"encoder": "poisson", "rate": 100.0}},
    "monitors": [{"node": "lif", "variables": ["output", "v"], "every": 2}],
    "output": {"recording": "run.h5"},
}


def write(tmp_path, config, name="net.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_simulate_writes_recording_and_plot(tmp_path, capsys):
    assert main(["simulate", write(tmp_path, SMALL), "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "lif: mean firing rate" in text
    rec = load_recording(str(tmp_path / "o" / "run.h5"))
    assert rec.variables["output"].shape == (40, 2, 15)   # every 2nd of 80 steps
    assert rec.variables["v"].shape == (40, 2, 15)
    assert rec.variables["output"].sum() > 0
    assert os.path.getsize(tmp_path / "o" / "run.png") > 1000
    assert not [p for p in os.listdir(tmp_path / "o") if "tmp" in p], "temporary files left behind"


def test_toml_config_gives_the_same_run_as_yaml(tmp_path):
    import tomllib  # noqa: F401  (the loader uses it)
    toml = tmp_path / "net.toml"
    toml.write_text('''dt = 0.001
steps = 80
batch = 2
seed = 3
[network.inputs.x]
shape = [20]
[network.nodes.fc]
type = "dense"
in_features = 20
out_features = 15
weight = {distribution = "uniform", low = 0.0, high = 1.0}
[network.nodes.lif]
type = "population"
model = "lif"
shape = 15
params = {tau_mem = 0.01}
[network.nodes.rec]
type = "dense"
in_features = 15
out_features = 15
[input.x]
encoder = "poisson"
rate = 100.0
[[monitors]]
node = "lif"
variables = ["output", "v"]
every = 2
[output]
recording = "run.h5"
[[network.edges]]
source = "x"
target = "fc"
[[network.edges]]
source = "fc"
target = "lif"
[[network.edges]]
source = "lif"
target = "rec"
back = true
[[network.edges]]
source = "rec"
target = "lif"
''')
    assert main(["simulate", str(toml), "--out", str(tmp_path / "t")]) == 0
    assert main(["simulate", write(tmp_path, SMALL), "--out", str(tmp_path / "y")]) == 0
    a = load_recording(str(tmp_path / "t" / "run.h5"))
    b = load_recording(str(tmp_path / "y" / "run.h5"))
    assert a.variables["output"].sum() > 0, "the run must spike for the comparison to mean something"
    assert set(a.variables) == set(b.variables) == {"output", "v"}
    for var in ("output", "v"):           # same config, same seed: the runs are identical
        assert torch.equal(a.variables[var], b.variables[var]), var
    assert torch.equal(a.t, b.t) and a.dt == b.dt


def run_bad(tmp_path, capsys, config, argv=()):
    """Run ``neurosim simulate`` on ``config``; it must exit 2 before creating the output folder.
    Returns the config's path and what was printed on stderr."""
    path = write(tmp_path, config)
    assert main(["simulate", path, "--out", str(tmp_path / "o"), *argv]) == 2
    assert not (tmp_path / "o").exists(), "a bad config must be refused before any work starts"
    return path, capsys.readouterr().err


def mutated(mutate):
    config = copy.deepcopy(SMALL)
    mutate(config)
    return config


LIF_FIELDS = sorted(f.name for f in dataclasses.fields(ns.LIFParams))


@pytest.mark.parametrize("mutate, key, message", [
    # the four cases of the issue that used to end in a traceback with exit status 1
    (lambda c: c["monitors"][0].update(variables=["output", "u"]), "monitors[0].variables",
     "node 'lif' has no variable 'u'; available: ['i', 'output', 'refractory', 'v', 'spikes']"),
    (lambda c: c["monitors"][0].update(every=0), "monitors[0].every", "must be an integer >= 1, got 0"),
    (lambda c: c.update(steps=True), "steps", "must be an integer > 0, got True"),
    # other scalars and choices
    (lambda c: c.update(steps=-5), "steps", "must be an integer > 0, got -5"),
    (lambda c: c.update(batch=2.0), "batch", "must be an integer > 0, got 2.0"),
    (lambda c: c.update(dt="1ms"), "dt", "must be a finite number of seconds > 0, got '1ms'"),
    (lambda c: c["monitors"][0].update(every=True), "monitors[0].every", "must be an integer >= 1, got True"),
    (lambda c: c["monitors"][0].update(node="nope"), "monitors[0].node", "unknown node 'nope' (nodes: ['fc', 'lif', 'rec'])"),
    (lambda c: c["monitors"].append({"node": "lif", "variables": ["i"]}), "monitors[1].node",
     "node 'lif' is already watched by monitors[0]; list all its variables there"),
    (lambda c: c["monitors"].append({"node": "fc", "variables": ["spikes"]}), "monitors[1].variables",
     "node 'fc' does not emit spikes, so it has no variable 'spikes'; record 'output' instead"),
    (lambda c: c["input"]["x"].update(encoder="morse"), "input.x.encoder",
     "must be one of ['constant', 'poisson'], got 'morse'"),
    (lambda c: c["input"]["x"].update(rate=True), "input.x.rate", "must be a rate >= 0 in Hz, got True"),
    (lambda c: c["output"].update(plots="no"), "output.plots", "must be true or false, got 'no'"),
    (lambda c: c["network"]["nodes"]["lif"].update(type="blob"), "network.nodes.lif.type",
     "unknown node type 'blob' (known: ['avgpool2d', 'conv2d', 'dense', 'flatten', 'maxpool2d', 'population', 'sparse'])"),
    (lambda c: c["network"]["nodes"]["lif"].update(model="lyf"), "network.nodes.lif.model",
     # the registry as it is when the test runs (importing a backend registers its models)
     lambda: f"unknown neuron model 'lyf'; registered: {ns.neurons.base.available_neuron_models()}"),
    (lambda c: c["network"]["nodes"]["fc"].update(weight={"distribution": "cauchy"}), "network.nodes.fc.weight.distribution",
     "must be one of ['constant', 'normal', 'uniform'], got 'cauchy'"),
    (lambda c: c["network"]["nodes"]["fc"].update(weight={"distribution": "normal", "std": "wide"}),
     "network.nodes.fc.weight.std", "must be a finite number, got 'wide'"),
    (lambda c: c["network"]["edges"][2].update(back="yes"), "network.edges[2].back", "must be true or false, got 'yes'"),
])
def test_bad_config_exits_2_with_file_key_and_message(tmp_path, capsys, mutate, key, message):
    message = message() if callable(message) else message
    path, err = run_bad(tmp_path, capsys, mutated(mutate))
    assert err == f"neurosim: error: {path}: {key}: {message}\n"


@pytest.mark.parametrize("mutate, key, allowed", [
    (lambda c: c.update(stepz=5), "stepz", list(config_module.TOP_LEVEL_KEYS)),
    (lambda c: c["network"].update(output=["lif"]), "network.output", ["edges", "inputs", "nodes", "outputs"]),
    (lambda c: c["network"]["inputs"]["x"].update(shap=[20]), "network.inputs.x.shap", ["shape"]),
    (lambda c: c["network"]["edges"][2].update(delay=1), "network.edges[2].delay", ["back", "port", "source", "target"]),
    (lambda c: c["network"]["nodes"]["lif"]["params"].update(tau_membrane=1.0),
     "network.nodes.lif.params.tau_membrane", LIF_FIELDS),
    (lambda c: c["network"]["nodes"]["fc"]["weight"].update(mean=0.0), "network.nodes.fc.weight.mean",
     ["distribution", "high", "low"]),
    (lambda c: c["input"]["x"].update(rates=100.0), "input.x.rates", ["encoder", "rate"]),
    (lambda c: c["input"].update(y={"encoder": "poisson"}), "input.y", ["x"]),
    (lambda c: c["monitors"][0].update(evry=2), "monitors[0].evry", ["every", "node", "variables"]),
    (lambda c: c["output"].update(plot=False), "output.plot", ["dir", "plots", "recording"]),
    (lambda c: c.update(train={"epoch": 2}), "train.epoch", list(config_module.TRAIN_FIELDS)),
])
def test_unknown_keys_are_refused_in_every_section(tmp_path, capsys, mutate, key, allowed):
    path, err = run_bad(tmp_path, capsys, mutated(mutate))
    assert err == f"neurosim: error: {path}: {key}: unknown key (allowed: {sorted(allowed)})\n"


def test_node_errors_are_reported_at_the_node_key(tmp_path, capsys):
    """A node's own argument check (here a Sparse index out of range, which used to end in a
    traceback) is reported at the node's key path, with the node's own message."""
    sparse = {"type": "sparse", "in_features": 20, "out_features": 15, "pre": [0, 25], "post": [0, 1]}
    with pytest.raises(Exception) as direct:
        ns.Sparse(20, 15, pre=[0, 25], post=[0, 1])
    path, err = run_bad(tmp_path, capsys, mutated(lambda c: c["network"]["nodes"].update(fc=sparse)))
    assert err == f"neurosim: error: {path}: network.nodes.fc: {direct.value}\n"
    assert "pre[1] = 25" in err


def test_an_invalid_graph_is_reported_at_network(tmp_path, capsys):
    path, err = run_bad(tmp_path, capsys, mutated(lambda c: c["network"]["nodes"]["fc"].update(out_features=14)))
    assert err.startswith(f"neurosim: error: {path}: network: invalid graph:") and "shape" in err


def test_bad_option_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", write(tmp_path, SMALL), "--steps", "0"])
    assert exit_info.value.code == 2
    assert "argument --steps: must be an integer > 0, got '0'" in capsys.readouterr().err


def test_readme_error_example_is_what_the_cli_prints(tmp_path, capsys, monkeypatch):
    """The README quotes the exact line the CLI prints for a config with tau_mem = -1."""
    text = README.read_text()
    quoted = re.search(r"A bad config exits with status 2.*?`([^`]+)`", text, re.S).group(1)
    config = mutated(lambda c: c["network"]["nodes"]["lif"]["params"].update(tau_mem=-1.0))
    (tmp_path / "net.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "net.yaml", "--out", "o"]) == 2
    assert capsys.readouterr().err == quoted + "\n"


class Exploding(ns.Dense):
    """A Dense node that raises whenever it runs (after the nodes before it were recorded)."""

    def step(self, x, state, dt):
        raise RuntimeError("boom")

    def forward_sequence(self, x_seq):
        raise RuntimeError("boom")


def test_a_failed_run_leaves_no_file_in_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(config_module.NODE_TYPES, "exploding", lambda **kw: Exploding(**kw))
    config = copy.deepcopy(SMALL)
    config["network"]["nodes"]["boom"] = {"type": "exploding", "in_features": 15, "out_features": 2}
    config["network"]["edges"].append(["lif", "boom"])
    config["monitors"] = [{"node": "fc"}, {"node": "lif", "variables": ["output", "v"]}]
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="boom"):       # a bug while running is not a config error
        main(["simulate", write(tmp_path, config), "--out", str(out)])
    assert out.is_dir() and os.listdir(out) == []


def test_dt_not_below_tau_warns_once_naming_the_node(tmp_path, capsys):
    config = mutated(lambda c: c["network"]["nodes"]["lif"]["params"].update(tau_mem=1e-3))   # = dt
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["simulate", write(tmp_path, config), "--out", str(tmp_path / "o")]) == 0
    about_tau = [str(w.message) for w in caught if "tau_mem" in str(w.message)]
    assert len(about_tau) == 1, about_tau
    assert "'lif'" in about_tau[0] and "not larger than dt" in about_tau[0]


def test_missing_and_unparsable_files(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "none.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: [unclosed")
    assert main(["simulate", str(bad)]) == 2
    assert "cannot parse" in capsys.readouterr().err


def test_train_checkpoints_each_epoch(tmp_path, capsys):
    config = {
        "dt": 1e-3, "steps": 30, "seed": 0,
        "network": {
            "inputs": {"x": {"shape": [20]}},
            "nodes": {
                "fc1": {"type": "dense", "in_features": 20, "out_features": 16},
                "h": {"type": "population", "model": "lif", "shape": 16, "params": {"tau_mem": 0.01, "v_threshold": 0.5}},
                "fc2": {"type": "dense", "in_features": 16, "out_features": 2},
                "out": {"type": "population", "model": "li", "shape": 2, "params": {"tau_mem": 0.02}},
            },
            "edges": [["x", "fc1"], ["fc1", "h"], ["h", "fc2"], ["fc2", "out"]],
        },
        "train": {"classes": 2, "samples": 64, "epochs": 2, "batch_size": 16, "lr": 0.02,
                  "loss": "membrane_max_cross_entropy"},
    }
    assert main(["train", write(tmp_path, config), "--out", str(tmp_path / "o")]) == 0
    files = sorted(os.listdir(tmp_path / "o" / "checkpoints"))
    assert "epoch_001.pt" in files and "epoch_002.pt" in files
    assert "epoch 2" in capsys.readouterr().out


def test_info_and_help_run_as_console_script():
    out = subprocess.run([sys.executable, "-m", "neurosim.cli", "info"], capture_output=True, text=True, check=True).stdout
    for word in ("torch", "neurosim", "norse", "brian2", "devices"):
        assert word in out
    helptext = subprocess.run([sys.executable, "-m", "neurosim.cli", "simulate", "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "YAML or TOML" in helptext
