"""The command line on small configs: simulate writes a recording and plots, train checkpoints,
info lists backends, and bad configs name the file and the key."""
import os
import subprocess
import sys

import pytest
import yaml

from neurosim.cli import main
from neurosim.monitor import load_recording

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
    a = load_recording(str(tmp_path / "t" / "run.h5")).variables["output"]
    b = load_recording(str(tmp_path / "y" / "run.h5")).variables["output"]
    assert a.shape == b.shape and a.sum() > 0


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["network"]["nodes"]["lif"]["params"].update(tau_mem=-1.0), "network.nodes.lif: "),
    (lambda c: c["network"]["nodes"]["lif"].update(type="blob"), "network.nodes.lif.type: unknown node type 'blob'"),
    (lambda c: c["network"]["nodes"]["fc"].update(out_features=14), "shape mismatch"),
    (lambda c: c.update(steps=-5), "steps: invalid value -5"),
    (lambda c: c.update(stepz=5), "stepz: unknown key"),
    (lambda c: c["monitors"][0].update(node="nope"), "monitors[0].node: unknown node 'nope'"),
    (lambda c: c["input"]["x"].update(encoder="morse"), "input.x.encoder: unknown encoder 'morse'"),
    (lambda c: c["network"]["nodes"]["lif"]["params"].update(tau_membrane=1.0), "network.nodes.lif: bad arguments"),
    (lambda c: c["network"]["nodes"]["fc"].update(weight={"distribution": "cauchy"}), "network.nodes.fc: weight: expected"),
])
def test_bad_config_names_file_and_key(tmp_path, capsys, mutate, message):
    import copy
    config = copy.deepcopy(SMALL)
    mutate(config)
    path = write(tmp_path, config)
    assert main(["simulate", path, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert path in err and message in err


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
