"""`neurosim conform` and `neurosim export`: every kind of MODEL, the exit statuses and messages,
and exported files read back by their target library (NIR by neurosim, the norse file by Norse's
own ``from_nir``)."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import neurosim as ns
from neurosim.cli import main
from neurosim.hardware import conform as conform_module
from neurosim.hardware.conform import BackendRun
from neurosim.hardware.example_networks import example_network

FAST = ["--steps", "30", "--batch", "1"]

CONFIG = {
    "dt": 1e-3, "seed": 3,
    "network": {
        "inputs": {"x": {"shape": [12]}},
        "nodes": {
            "fc": {"type": "dense", "in_features": 12, "out_features": 8,
                   "weight": {"distribution": "uniform", "low": 0.5, "high": 1.5}},
            "lif": {"type": "population", "model": "lif", "shape": 8, "params": {"tau_mem": 0.01}},
        },
        "edges": [["x", "fc"], ["fc", "lif"]],
    },
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_conform_on_an_example_prints_the_table_and_exits_0(capsys):
    assert main(["conform", "recurrent", "--backends", "saved,nir,brian2"] + FAST) == 0
    out = capsys.readouterr().out
    assert "conformance of recurrent (example)" in out
    assert re.search(r"^nir +3/3 +\d+ +0 +0 +none", out, re.M), out


def test_conform_on_a_saved_file_a_nir_file_and_a_config(tmp_path, capsys):
    saved = ns.save(example_network("feedforward", seed=1), tmp_path / "net.h5")
    assert main(["conform", str(saved), "--backends", "nir"] + FAST) == 0
    assert "(saved)" in capsys.readouterr().out
    nir_file = tmp_path / "net.bin"                # content decides, not the extension
    assert main(["export", "conv", "--to", "nir", "-o", str(nir_file)]) == 0
    assert main(["conform", str(nir_file), "--backends", "saved,norse"] + FAST) == 0
    assert "(nir)" in capsys.readouterr().out
    config = tmp_path / "net.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    assert main(["conform", str(config), "--backends", "saved,nir"] + FAST) == 0
    out = capsys.readouterr().out
    assert "(config)" in out and re.search(r"^saved +2/2 +[1-9]\d* +0 +0 +none", out, re.M), out


def test_export_to_nir_reads_back_with_the_same_spikes(tmp_path):
    from neurosim.hardware.nir import read_nir
    path = tmp_path / "ff.nir"
    assert main(["export", "feedforward", "--to", "nir", "-o", str(path), "--seed", "2"]) == 0
    sim = example_network("feedforward", seed=2)
    x = (torch.rand(40, 2, 20, generator=torch.Generator().manual_seed(0)) < 0.2).to(torch.float32)
    back = read_nir(str(path))
    want = sim.run(x.double()).output
    assert want.sum() > 20
    assert torch.equal(back.run(x).output.double(), want)   # float32 read: same spikes on this input
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("name", ["feedforward", "recurrent"])
def test_export_to_norse_is_read_by_norse_with_the_same_spikes(tmp_path, name):
    nir = pytest.importorskip("nir")
    norse_torch = pytest.importorskip("norse.torch")
    path = tmp_path / "net.nir"
    assert main(["export", name, "--to", "norse", "-o", str(path)]) == 0
    module = norse_torch.from_nir(nir.read(str(path)), dt=1e-3).double()
    sim = example_network(name)
    x = (torch.rand(60, 2, 20, generator=torch.Generator().manual_seed(4)) < 0.2).double()
    want = sim.run(x).output
    state, got = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = module(x[t], state)
            got.append(y)
    got = torch.stack(got)
    assert want.sum() > 50
    assert torch.equal(got, want), f"{int((got != want).sum())} spike entries differ"


def test_exit_1_when_a_backend_differs(monkeypatch, capsys):
    def dropping(sim, inputs):
        run = conform_module._engine_run(sim, inputs)
        spikes = {k: v.clone() for k, v in run.spikes.items()}
        t, b, i = [int(v) for v in (spikes["lif2"] != 0).nonzero()[0]]
        spikes["lif2"][t, b, i] = 0
        return BackendRun(spikes, {}, run.nodes_mapped, run.nodes_total)
    monkeypatch.setitem(conform_module._RUNNERS, "dropping", (dropping, None))
    assert main(["conform", "feedforward", "--backends", "dropping"] + FAST) == 1
    assert re.search(r"^dropping +4/4 +\d+ +0 +1 +lif2 t=", capsys.readouterr().out, re.M)


def test_exit_2_for_bad_models_inputs_and_backends(tmp_path, capsys):
    def error(args):
        assert main(args) == 2
        return capsys.readouterr().err

    assert "no/such.h5: no such file, and not an example network" in error(["conform", "no/such.h5"])
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a network\n")
    assert f"{text}: not a network file" in error(["conform", str(text)])
    import h5py
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("junk", data=[1, 2])
    assert "empty.h5: an HDF5 file but not a network" in error(["conform", str(tmp_path / "empty.h5")])
    assert "unknown backend(s) ['nope']" in error(["conform", "feedforward", "--backends", "saved,nope"])
    wrong = tmp_path / "x.npy"
    np.save(wrong, np.zeros((10, 2, 7)))
    message = error(["conform", "feedforward", "--input", str(wrong)])
    assert str(wrong) in message and "(10, 2, 7)" in message and "[T, batch, 20]" in message
    assert "--to brian2" in error(["export", "feedforward", "--to", "brian2", "-o", str(tmp_path / "b")])
    message = error(["export", "cuba", "--to", "norse", "-o", str(tmp_path / "c.nir")])
    assert "'lif1'" in message and "'lif2'" in message and "cuba_lif" in message
    assert not (tmp_path / "c.nir").exists()


def test_a_given_input_file_is_used(tmp_path, capsys):
    x = (np.random.default_rng(0).random((25, 3, 20)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["conform", "feedforward", "--input", str(tmp_path / "x.npz"), "--backends", "saved"]) == 0
    assert "25 steps of 1 ms, batch 3" in capsys.readouterr().out


def test_exit_3_when_a_named_backend_cannot_take_the_network(capsys):
    assert main(["conform", "delays", "--backends", "nir,saved"] + FAST) == 3
    captured = capsys.readouterr()
    assert "nir could not run" in captured.err and "'fc1'" in captured.err
    assert "nir: unsupported" in captured.out


def test_report_written_from_the_command_line_in_a_subprocess(tmp_path):
    report = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "neurosim.cli", "conform", "feedforward", "--backends", "saved",
                           "--report", str(report)] + FAST, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "<table" in report.read_text() and f"wrote {report}" in done.stdout




def test_export_to_netx_and_conform_on_lava(tmp_path, capsys):
    """The fixed-point example exports to a netx file that reads back as the same network, and
    `conform --backends netx` runs it on Lava (lava-dl's own reader) with every spike equal."""
    from neurosim.hardware.loihi import from_netx
    from neurosim.hardware.loihi.netx_lava import LavaUnavailable, lava_environment
    assert main(["export", "loihi", "--to", "netx", "-o", str(tmp_path / "net.net")]) == 0
    sim, loaded = example_network("loihi"), from_netx(tmp_path / "net.net")
    x = (torch.rand(30, 1, 20, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.float64)
    with torch.no_grad():
        a = sim.run(x, monitors=[ns.Monitor("lif2", "spikes")]).records["lif2"]["spikes"]
        b = loaded.run(x, monitors=[ns.Monitor("layer2", "spikes")]).records["layer2"]["spikes"]
    assert torch.equal(a.float(), b.float()) and int(a.sum()) > 0
    assert main(["export", "feedforward", "--to", "netx", "-o", str(tmp_path / "float.net")]) == 2
    assert "quantize" in capsys.readouterr().err and not (tmp_path / "float.net").exists()
    try:
        lava_environment()
    except LavaUnavailable as why:
        pytest.skip(str(why))
    capsys.readouterr()
    assert main(["conform", "loihi", "--backends", "netx", *FAST]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("netx"))
    assert re.match(r"netx\s+4/4\s+\d+\s+0\s+0\s+none\s+0\s", row), row


def test_conform_runs_the_fixed_point_example_as_lava_processes(capsys):
    """`conform --backends lava` builds to_lava's processes in the Lava environment: every spike
    and voltage equal to neurosim's, for a batch of two samples (two Lava runs)."""
    from neurosim.hardware.loihi.netx_lava import LavaUnavailable, lava_environment
    try:
        lava_environment()
    except LavaUnavailable as why:
        pytest.skip(str(why))
    assert main(["conform", "loihi", "--backends", "lava", "--steps", "30", "--batch", "2"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lava"))
    assert re.match(r"lava\s+4/4\s+\d+\s+0\s+0\s+none\s+0\s", row), row


def test_a_netx_file_without_an_input_layer_takes_input_shape(tmp_path, capsys):
    """A conv-first netx file (as slayer writes a network without an Input block) needs the input
    shape, like Lava's Network(input_shape=...): without it the error says so."""
    import h5py
    from neurosim.hardware.loihi import LoihiConv2d, LoihiCubaParams, to_netx
    conv = LoihiConv2d((2, 6, 6), torch.randint(0, 100, (3, 2, 3, 3), generator=torch.Generator().manual_seed(0)), 1)
    g = ns.Graph.sequential((2, 6, 6), ("conv", conv),
                            ("pop", ns.Population("loihi_cuba", (3, 4, 4), LoihiCubaParams(v_th_mant=50))))
    to_netx(ns.Simulator(g), tmp_path / "net.net")
    with h5py.File(tmp_path / "net.net", "r+") as f:          # drop the input layer, renumber
        del f["neurosim_sha256"], f["layer/0"]
        f.move("layer/1", "layer/0")
    assert main(["conform", str(tmp_path / "net.net"), "--backends", "saved", *FAST]) == 2
    assert "needs a (C, H, W) input" in capsys.readouterr().err
    assert main(["conform", str(tmp_path / "net.net"), "--backends", "saved", "--input-shape", "2,6,6", *FAST]) == 0
    assert main(["export", str(tmp_path / "net.net"), "--to", "netx", "--input-shape", "2,6", "-o",
                 str(tmp_path / "x.net")]) == 2
    assert "expected n or C,H,W" in capsys.readouterr().err
