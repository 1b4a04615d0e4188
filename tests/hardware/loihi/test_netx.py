"""to_netx / from_netx in the main environment (Lava's own runs are in test_netx_lava.py): the file
layout lava-dl's reader expects, round trips, one error for every node netx cannot carry, and bad
files (each named by file, layer and key; cut short or with bytes flipped: refused or identical)."""
from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.hardware.loihi import (LoihiConv2d, LoihiCubaParams, LoihiDense, NetxFileError, from_netx,
                                     quantize, to_netx)
from neurosim.hardware.loihi.netx import export_layer_names, netx_layer_names
from neurosim.hardware.registry import UnsupportedNodesError

from .test_netx_lava import conv_delay_recurrent, edge_values, mixed, pop, random_network


def run_all(sim, x, names):
    with torch.no_grad():
        return sim.run(x, monitors=[ns.Monitor(n, ("spikes", "v", "u")) for n in names]).records


def inputs_for(sim, steps=70, batch=2, seed=0):
    shape = next(iter(sim.graph.inputs.values()))
    return (torch.rand(steps, batch, *shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


@pytest.mark.parametrize("build", [conv_delay_recurrent, edge_values, lambda: random_network(3)])
def test_to_netx_then_from_netx_gives_identical_spikes_voltages_and_currents(tmp_path, build):
    sim = build()
    to_netx(sim, tmp_path / "net.net")
    loaded = from_netx(tmp_path / "net.net")
    ours, layers = export_layer_names(sim), netx_layer_names(loaded)
    assert ours == {i: n for i, n in ours.items()} and sorted(ours) == sorted(layers)
    x = inputs_for(sim)
    a, b = run_all(sim, x, ours.values()), run_all(loaded, x, layers.values())
    assert sum(int(a[n]["spikes"].sum()) for n in ours.values()) > 0
    for index, name in ours.items():
        for key in ("spikes", "v", "u"):
            assert torch.equal(a[name][key], b[layers[index]][key]), (name, key)
    # writing the loaded network again gives the same datasets
    to_netx(loaded, tmp_path / "again.net")
    with h5py.File(tmp_path / "net.net") as f1, h5py.File(tmp_path / "again.net") as f2:
        keys1, keys2 = [], []
        f1.visit(keys1.append), f2.visit(keys2.append)
        assert keys1 == keys2
        for key in keys1:
            if hasattr(f1[key], "shape"):
                assert np.array_equal(f1[key][()], f2[key][()]), key


def test_the_file_has_lava_dls_layout(tmp_path):
    """Every value a dataset; type an S10 array of shape (1,); neuron/type a scalar string; the
    weight the integer w_int = m << e per synapse, [out, in]; shapes (C, H, W); delays [out]."""
    sim = conv_delay_recurrent()
    to_netx(sim, tmp_path / "net.net")
    with h5py.File(tmp_path / "net.net") as f:
        attributes = []
        f.visititems(lambda name, obj: attributes.extend(obj.attrs.keys()))
        assert attributes == [] and not f.attrs.keys()
        assert [f[f"layer/{i}/type"][()].tolist() for i in range(5)] == [
            [b"input"], [b"conv"], [b"flatten"], [b"dense"], [b"dense_rec"]]
        assert f["layer/0/type"].dtype == np.dtype("S10") and f["layer/0/type"].shape == (1,)
        assert f["layer/1/neuron/type"].shape == () and f["layer/1/neuron/type"][()] == b"CUBA"
        assert f["layer/0/shape"][()].tolist() == [2, 8, 8] and f["layer/1/shape"][()].tolist() == [4, 4, 4]
        conv, fc = sim.graph.nodes["conv"], sim.graph.nodes["fc"]
        assert np.array_equal(f["layer/1/weight"][()], (conv.weight_mant.long() * 2).numpy())
        assert f["layer/1/stride"][()].tolist() == [2, 2] and int(f["layer/1/groups"][()]) == 1
        assert np.array_equal(f["layer/3/weight"][()], (fc.weight_mant.long() * 2).numpy())
        assert f["layer/3/delay"][()].tolist() == list(range(10))
        assert f["layer/3/bias"][()].tolist() == [6] * 10                    # 3 << 7 = 6 << 6
        neuron = f["layer/3/neuron"]
        assert [int(neuron[k][()]) for k in ("iDecay", "vDecay", "vThMant", "refDelay")] == [1000, 300, 40, 1]
        assert bool(neuron["gradedSpike"][()]) is False
        assert f["layer/4/weight_rec"].shape == (5, 5) and "delay" not in f["layer/4"]


def test_weights_become_mantissas_with_the_smallest_exponent(tmp_path):
    """A file weight w: mantissa w at exponent 0 if the layer fits 8 bits, else w / 2 at exponent 1
    (even weights up to 254, as slayer writes them); odd weights above 8 bits are refused."""
    def write(path, weight):
        with h5py.File(path, "w") as f:
            layer = f.create_group("layer")
            layer.create_dataset("0/type", data=np.array([b"input"], dtype="S10"))
            layer.create_dataset("0/shape", data=np.array([weight.shape[1]]))
            layer.create_dataset("1/type", data=np.array([b"dense"], dtype="S10"))
            layer.create_dataset("1/shape", data=np.array([weight.shape[0]]))
            layer.create_dataset("1/weight", data=weight.astype(np.float32))
            for key, value in (("iDecay", 4096), ("vDecay", 0), ("vThMant", 10), ("refDelay", 1)):
                layer.create_dataset(f"1/neuron/{key}", data=np.int64(value))
            layer.create_dataset("1/neuron/type", data="CUBA")
            layer.create_dataset("1/neuron/gradedSpike", data=False)

    write(tmp_path / "small.net", np.array([[-128, 127, 3]]))
    fc = from_netx(tmp_path / "small.net").graph.nodes["layer1_synapse"]
    assert fc.weight_exp == 0 and fc.weight_mant.tolist() == [[-128, 127, 3]] and fc.latency == 1
    write(tmp_path / "even.net", np.array([[-256, 254, 2]]))
    fc = from_netx(tmp_path / "even.net").graph.nodes["layer1_synapse"]
    assert fc.weight_exp == 1 and fc.weight_int().tolist() == [[-256, 254, 2]]
    write(tmp_path / "odd.net", np.array([[-3, 253, 2]]))
    with pytest.raises(NetxFileError, match=r"layer/1/weight: weights in \[-3, 253\] with odd values"):
        from_netx(tmp_path / "odd.net")


def test_quantize_for_netx_then_export(tmp_path):
    """quantize(max_weight_exp=1) keeps every w_int in netx's range, so the network exports; with
    the default exponents (up to 7) the export names the layers whose weights do not fit."""
    from .test_netx_lava import quantized_float_network
    qsim = quantized_float_network()
    to_netx(qsim, tmp_path / "q.net")
    x = inputs_for(qsim, 60, 1, seed=3)
    a = run_all(qsim, x, ["lif", "out"])
    loaded = from_netx(tmp_path / "q.net")
    b = run_all(loaded, x, ["layer1", "layer2"])
    assert torch.equal(a["lif"]["spikes"], b["layer1"]["spikes"]) and torch.equal(a["out"]["spikes"], b["layer2"]["spikes"])
    assert int(a["lif"]["spikes"].sum()) > 0
    full = quantize(qsim_float := _float_network(), max_weight_exp=7)[0]
    with pytest.raises(UnsupportedNodesError) as error:
        to_netx(full, tmp_path / "full.net")
    assert {name for name, _, _ in error.value.problems} <= {"fc1", "fc2", "rec"}
    assert all("m << e span" in reason for _, _, reason in error.value.problems)
    assert not (tmp_path / "full.net").exists() and qsim_float is not None
    with pytest.raises(ValueError, match="max_weight_exp must be an int in"):
        quantize(qsim_float, max_weight_exp=8)


def _float_network():
    torch.manual_seed(7)
    g = ns.Graph.sequential(
        20, ("fc1", ns.Dense(20, 30, weight=torch.randn(30, 20) * 0.9 + 0.3)),
        ("lif", ns.Population("lif", 30, ns.LIFParams(tau_mem=20e-3, reset="zero"))))
    return ns.Simulator(g)


def test_every_node_netx_cannot_carry_is_listed_before_anything_is_written(tmp_path):
    g = ns.Graph().add_input("x", 6)
    g.add("f1", LoihiDense(mixed((5, 6), seed=1), 3, latency=0))                      # too large, latency 0
    g.add("p1", pop(5, refractory_delay=2, bias_mant=5, bias_exp=2))                  # refractory, bias
    g.add("f2", LoihiDense(-mixed((4, 5), 0, 100, seed=2).abs(), 0))                  # no positive weight
    g.add("p2", ns.Population("loihi_cuba", 4, LoihiCubaParams(v_th_mant=torch.tensor([1, 2, 3, 4]))))
    g.chain("x", "f1", "p1", "f2", "p2")
    with pytest.raises(UnsupportedNodesError) as error:
        to_netx(ns.Simulator(g), tmp_path / "bad.net")
    reasons = {}
    for name, _, reason in error.value.problems:
        reasons.setdefault(name, []).append(reason)
    assert sorted(reasons) == ["f1", "f2", "p1", "p2"]
    assert any("latency=0" in r for r in reasons["f1"]) and any("m << e span" in r for r in reasons["f1"])
    assert any("refractory_delay=2" in r for r in reasons["p1"]) and any("multiple of 2^6" in r for r in reasons["p1"])
    assert any("no positive weight" in r for r in reasons["f2"]) and any("per-neuron v_th_mant" in r for r in reasons["p2"])
    assert list(tmp_path.iterdir()) == []
    float_net = ns.Simulator(ns.Graph.sequential(4, ("fc", ns.Dense(4, 3)), ("lif", ns.Population("lif", 3))))
    with pytest.raises(UnsupportedNodesError, match="quantize") as error:
        to_netx(float_net, tmp_path / "f.net")
    assert [name for name, _, _ in error.value.problems] == ["fc", "lif"]
    branch = conv_delay_recurrent().graph
    branch.add("extra", ns.Flatten((4, 4, 4))).connect("p1", "extra")
    with pytest.raises(UnsupportedNodesError, match="a netx file is a chain"):
        to_netx(ns.Simulator(branch), tmp_path / "b.net")
    with pytest.raises(TypeError, match="takes a neurosim Simulator"):
        to_netx(branch, tmp_path / "g.net")


def test_export_never_changes_the_network_and_a_crash_leaves_no_file(tmp_path, monkeypatch):
    sim = conv_delay_recurrent()
    before = {k: v.clone() for k, v in sim.state_dict().items()}
    to_netx(sim, tmp_path / "net.net")
    assert all(torch.equal(before[k], v) for k, v in sim.state_dict().items())
    original = (tmp_path / "net.net").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        to_netx(sim, tmp_path / "net.net")
    assert (tmp_path / "net.net").read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.net"]


# ---------------------------------------------------------------------- bad files
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.net"
    to_netx(conv_delay_recurrent(), path)
    return path


def edit(path, change):
    """Remove the checksum (so the edit reaches the reader's other checks), then apply ``change``."""
    with h5py.File(path, "r+") as f:
        del f["neurosim_sha256"]
        change(f)
    return path


def replace(key, value):
    def change(f):
        del f[key]
        f.create_dataset(key, data=value)
    return change


def delete(key):
    def change(f):
        del f[key]
    return change


BAD_EDITS = [
    (delete("layer/3/weight"), r"layer/3/weight: missing key 'weight'"),
    (delete("layer/3/neuron/vThMant"), r"layer/3/neuron/vThMant: missing key 'vThMant'"),
    (delete("layer/1/neuron"), r"layer/1: missing key 'neuron'"),
    (replace("layer/3/type", np.array([b"pool"], dtype="S10")), r"layer/3/type: layer type 'pool' is not loadable"),
    (replace("layer/3/type", np.array([b"spiral"], dtype="S10")), r"layer/3/type: unknown layer type 'spiral'"),
    (replace("layer/3/neuron/type", "SDNN"), r"layer/3/neuron/type: neuron type 'SDNN' is not loadable"),
    (replace("layer/3/neuron/iDecay", np.int64(5000)), r"layer/3/neuron/iDecay: values in \[5000, 5000\] outside \[0, 4096\]"),
    (replace("layer/3/neuron/vThMant", np.int64(2 ** 17)), r"layer/3/neuron/vThMant: values .* outside \[0, 131071\]"),
    (replace("layer/3/neuron/gradedSpike", True), r"layer/3/neuron/gradedSpike: graded spikes are not modelled"),
    (replace("layer/3/delay", np.full(10, 63)), r"layer/3/delay: values in \[63, 63\] outside \[0, 62\]"),
    (replace("layer/3/delay", np.zeros(64)), r"layer/3/delay: expected one delay or one per output neuron \[10\]"),
    (replace("layer/3/weight", np.full((10, 64), 300.0)), r"layer/3/weight: weights in \[300, 300\] outside netx's"),
    (replace("layer/3/weight", np.full((10, 64), 0.5)), r"layer/3/weight: holds non-integer weights"),
    (replace("layer/3/weight", np.full((10, 64), np.nan)), r"layer/3/weight: holds NaN or infinite values"),
    (replace("layer/3/weight", np.ones((10, 63))), r"layer/3/weight: takes 63 inputs but the previous layer gives 64"),
    (replace("layer/3/weight", np.ones((9, 64))), r"layer/3/weight: has 9 rows but the layer's shape says 10 neurons"),
    (replace("layer/1/shape", np.array([4, 5, 4])), r"layer/1/shape: says \(4, 5, 4\) but the convolution gives"),
    (replace("layer/1/stride", np.array([0, 2])), r"layer/1/stride: values in \[0, 2\] outside"),
    (replace("layer/4/weight_rec", np.ones((5, 4))), r"layer/4/weight_rec: expected \[5, 5\]"),
    (delete("layer/2"), r"layer: layers must be named 0..3"),
    (replace("layer/2/type", np.array([b"input"], dtype="S10")), r"layer/2/type: an 'input' layer after the first"),
    (replace("layer/0/shape", np.array([2, 8])), r"layer/0/shape: expected \(n,\) or \(C, H, W\)"),
    (replace("layer/3/neuron/type", np.array([1, 2])), r"layer/3/neuron/type: expected one string"),
]


@pytest.mark.parametrize("change,message", BAD_EDITS, ids=[m.split(":")[0] + f"#{i}" for i, (_, m) in enumerate(BAD_EDITS)])
def test_bad_files_name_the_file_layer_and_key(good_file, change, message):
    edit(good_file, change)
    with pytest.raises(NetxFileError, match=message) as error:
        from_netx(good_file)
    assert str(good_file) in str(error.value)


def test_missing_not_hdf5_and_not_netx_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        from_netx(tmp_path / "none.net")
    (tmp_path / "text.net").write_text("layer 0: dense\n")
    with pytest.raises(NetxFileError, match="opening the file"):
        from_netx(tmp_path / "text.net")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=1)
    with pytest.raises(NetxFileError, match="missing group 'layer' \\(not a netx file\\)"):
        from_netx(tmp_path / "other.h5")


def test_an_edited_value_in_a_neurosim_file_fails_its_checksum_and_a_foreign_file_loads(good_file):
    with h5py.File(good_file, "r+") as f:
        f["layer/3/weight"][0, 0] = f["layer/3/weight"][0, 0] + 2.0       # still a valid weight
    with pytest.raises(NetxFileError, match="neurosim_sha256: the layers do not match"):
        from_netx(good_file)
    edit(good_file, lambda f: None)                                       # a file without our checksum
    assert int(from_netx(good_file).graph.nodes["layer3_synapse"].weight_int()[0, 0]) % 2 == 0


FUZZ_CHILD = r"""
import sys, json, torch
import neurosim as ns
from neurosim.hardware.loihi import from_netx, NetxFileError
reference = torch.load(sys.argv[1], weights_only=True)
x = reference["x"]
results = []
for path in sys.argv[2:]:
    try:
        sim = from_netx(path)
    except NetxFileError:
        results.append("refused")
        continue
    except Exception as error:
        results.append(f"other {type(error).__name__}: {error}")
        continue
    with torch.no_grad():
        out = sim.run(x, monitors=[ns.Monitor(n, "v") for n in reference["names"]]).records
    same = all(torch.equal(out[n]["v"], reference[n]) for n in reference["names"])
    results.append("identical" if same else "DIFFERENT")
print(json.dumps(results))
"""


def test_files_cut_short_or_with_flipped_bytes_are_refused_or_load_identically(good_file, tmp_path):
    """40 random truncations and 40 random byte flips (half of them inside the stored values, where
    only the checksum can tell) of a neurosim-written file, loaded in a child
    process (a crash in h5py cannot take pytest down; a hang hits the timeout): each is refused
    with a NetxFileError or loads a network whose voltages equal the original's."""
    sim = from_netx(good_file)
    names = list(netx_layer_names(sim).values())
    x = inputs_for(sim, 30, 1)
    with torch.no_grad():
        records = sim.run(x, monitors=[ns.Monitor(n, "v") for n in names]).records
    torch.save({"x": x, "names": names, **{n: records[n]["v"] for n in names}}, tmp_path / "reference.pt")
    data = good_file.read_bytes()
    rng = np.random.default_rng(0)
    paths = []
    for k, cut in enumerate(rng.integers(0, len(data), 40)):
        path = tmp_path / f"cut_{k}.net"
        path.write_bytes(data[:cut])
        paths.append(path)
    stored = []                                # byte ranges of the datasets' values in the file
    with h5py.File(good_file) as f:
        f.visititems(lambda name, obj: stored.append((obj.id.get_offset(), obj.id.get_storage_size()))
                     if hasattr(obj, "shape") and obj.id.get_offset() is not None else None)
    in_values = np.concatenate([np.arange(start, start + size) for start, size in stored])
    for k in range(40):                        # half anywhere, half inside the stored values
        damaged = bytearray(data)
        where = rng.integers(0, len(data), 3) if k % 2 else rng.choice(in_values, 3)
        for offset in where:
            damaged[offset] ^= int(rng.integers(1, 256))
        path = tmp_path / f"flip_{k}.net"
        path.write_bytes(bytes(damaged))
        paths.append(path)
    result = subprocess.run([sys.executable, "-c", FUZZ_CHILD, str(tmp_path / "reference.pt"), *map(str, paths)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(outcomes) == 80
    bad = [(p.name, o) for p, o in zip(paths, outcomes) if o not in ("refused", "identical")]
    assert bad == []
    assert outcomes[:40].count("refused") >= 35           # almost every cut loses data


# ---------------------------------------------------------------------- LoihiConv2d
def test_loihi_conv2d_is_the_exact_integer_convolution_one_step_late():
    m = mixed((6, 2, 3, 2), seed=9)
    conv = LoihiConv2d((4, 7, 6), m, 1, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    x = (torch.rand(5, 3, 4, 7, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    y, _ = conv.step_sequence(x, conv.initial_state(3), 1e-3)
    want = F.conv2d(x.reshape(15, 4, 7, 6).double(), (m.long() << 7).double(), stride=(2, 1), padding=1,
                    dilation=(1, 2), groups=2).reshape(5, 3, *conv.out_shape).long()
    assert y.dtype == torch.int64 and torch.equal(y[0], torch.zeros_like(y[0])) and torch.equal(y[1:], want[:-1])
    stepped, state = [], conv.initial_state(3)
    for t in range(5):
        out, state = conv.step(x[t], state, 1e-3)
        stepped.append(out)
    assert torch.equal(torch.stack(stepped), y)
    same = LoihiConv2d((4, 7, 6), m, 1, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, latency=0)
    assert torch.equal(same.forward_sequence(x), want)
    for args, kwargs, match in [(((4, 7, 6), m), {"groups": 3}, "does not fit 4 input channels"),
                                (((4, 7, 6), m * 0 + 1), {"groups": 2, "latency": 2}, "latency must be 0 or 1"),
                                (((4, 2, 2), m), {"groups": 2, "dilation": 3}, "does not fit the 2x2 input"),
                                (((4, 7, 6), torch.full((6, 2, 3, 2), 200)), {"groups": 2}, r"must lie in \[-128, 127\]")]:
        with pytest.raises(ValueError, match=match):
            LoihiConv2d(*args, **kwargs)


def test_conv_networks_save_and_load_with_identical_spikes(tmp_path):
    sim = conv_delay_recurrent()
    ns.save(sim, tmp_path / "net.h5")
    loaded = ns.load(tmp_path / "net.h5")
    x = inputs_for(sim)
    a, b = run_all(sim, x, ["p1", "p2", "p3"]), run_all(loaded, x, ["p1", "p2", "p3"])
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    node = loaded.graph.nodes["conv"]
    assert (node.stride, node.padding, node.latency, node.weight_exp) == ((2, 2), (1, 1), 1, 1)
