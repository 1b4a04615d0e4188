"""Bad NIR input raises NIRFileError naming the file, the node and the key, before anything is
returned; files cut short or with flipped bytes never crash, hang or load other values."""
import json
import random
import subprocess
import sys
import textwrap

import h5py
import nir
import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.hardware.nir import (MissingNIRFileError, NIRFileError, from_nir, read_nir, to_nir,
                                   write_nir)
from neurosim.hardware.nir_files import DIGEST_KEY, graph_digest


def small_network():
    """conv + dense + LIF + recurrent: the network every case below damages."""
    torch.manual_seed(0)
    g = ns.Graph()
    g.add_input("x", (2, 6, 6))
    g.add("conv", ns.Conv2d((2, 6, 6), 3, 3, padding=1, bias=True))
    g.add("lif1", ns.Population("lif", (3, 6, 6), ns.LIFParams(tau_mem=5e-3)))
    g.add("flat", ns.Flatten((3, 6, 6)))
    g.add("fc", ns.Dense(108, 8))
    g.add("lif2", ns.Population("cuba_lif", 8, ns.CubaLIFParams(tau_syn=3e-3, tau_mem=5e-3, w_in=8.0, reset="zero")))
    g.add("rec", ns.Dense(8, 8, bias=True))
    g.chain("x", "conv", "lif1", "flat", "fc", "lif2")
    g.connect("lif2", "rec", back=True).connect("rec", "lif2")
    with torch.no_grad():
        g.nodes["conv"].weight.mul_(4.0)
        g.nodes["fc"].weight.mul_(20.0)
    return ns.Simulator(g, dt=1e-3)


def small_input():
    return (torch.rand(30, 2, 2, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.3).float()


@pytest.fixture
def written(tmp_path):
    sim = small_network()
    return sim, write_nir(tmp_path / "net.nir", sim)


def named(err, *parts):
    text = str(err.value)
    for part in parts:
        assert repr(part) in text or part in text, (part, text)
    return text


def rewrite(path, edit):
    """Apply ``edit(h5py.File)`` to a copy of the file in place (a stand-in for another writer)."""
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def drop_digest(f):
    del f["node/metadata"][DIGEST_KEY]


# ---------------------------------------------------------------------- one test per case
def test_file_not_found(tmp_path):
    missing = tmp_path / "none.nir"
    for load in (read_nir, from_nir):
        with pytest.raises(MissingNIRFileError) as err:
            load(missing)
        assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, NIRFileError)
        named(err, str(missing))


def test_not_hdf5(tmp_path):
    path = tmp_path / "net.nir"
    path.write_bytes(b"this is a text file, not HDF5\n" * 10)
    with pytest.raises(NIRFileError, match="not an HDF5 file") as err:
        from_nir(path)
    named(err, str(path))
    with pytest.raises(NIRFileError) as err:          # HDF5, but not NIR: no 'node' group
        with h5py.File(tmp_path / "other.h5", "w") as f:
            f["data"] = np.zeros(3)
        from_nir(tmp_path / "other.h5")
    named(err, "key 'node'")


def test_truncated(written):
    _, path = written
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(NIRFileError) as err:
        from_nir(path)
    named(err, path)


def test_flipped_weight_byte_is_found_by_the_digest(written, tmp_path):
    """Files neurosim writes carry a SHA-256: one changed weight is refused; a file from
    elsewhere (no digest) cannot be checked and loads the changed value (documented)."""
    sim, path = written
    rewrite(path, lambda f: f["node/nodes/fc/weight"].__setitem__((0, 0), f["node/nodes/fc/weight"][0, 0] + 0.5))
    with pytest.raises(NIRFileError, match="digest mismatch") as err:
        from_nir(path)
    named(err, path, f"metadata/{DIGEST_KEY}")
    rewrite(path, drop_digest)
    loaded = from_nir(path)
    assert not torch.equal(loaded.graph.nodes["fc"].weight, sim.graph.nodes["fc"].weight)


def test_digest_covers_parameters_edges_and_contract():
    graph = to_nir(small_network())
    base = graph_digest(graph)
    assert graph.metadata[DIGEST_KEY] == base
    graph.nodes["lif1"].metadata["neurosim"] = graph.nodes["lif1"].metadata["neurosim"].replace('"exact"', '"euler"')
    assert graph_digest(graph) != base
    graph = to_nir(small_network())
    graph.edges.reverse()
    assert graph_digest(graph) != base
    graph = to_nir(small_network())
    graph.nodes["rec"].bias[3] = np.nextafter(graph.nodes["rec"].bias[3], 1.0)
    assert graph_digest(graph) != base
    with pytest.raises(NIRFileError, match="digest mismatch"):
        from_nir(graph)


def test_unknown_node_type(written):
    _, path = written

    def edit(f):
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1"].create_dataset("type", data="QuantumLIF", dtype=h5py.string_dtype())
    rewrite(path, edit)
    with pytest.raises(NIRFileError, match="unknown NIR node type 'QuantumLIF'") as err:
        from_nir(path)
    named(err, path, "node 'lif1'", "key 'type'")


def test_missing_key(written):
    _, path = written
    rewrite(path, lambda f: f["node/nodes/lif1"].__delitem__("tau"))
    with pytest.raises(NIRFileError, match="missing") as err:
        from_nir(path)
    named(err, path, "node 'lif1'", "key 'tau'")


def test_mismatched_shapes_between_connected_nodes(written):
    """fc's weight says 100 inputs, flat gives 108 (a file from elsewhere: no digest)."""
    _, path = written

    def edit(f):
        drop_digest(f)
        w = f["node/nodes/fc/weight"][()]
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"]["weight"] = w[:, :100]
    rewrite(path, edit)
    with pytest.raises(NIRFileError, match=r"\(100,\) differs from the output shape \(108,\)") as err:
        from_nir(path)
    named(err, path, "node 'fc'", "key 'input'", "'flat'")
    graph = to_nir(small_network())                       # a neuron whose parameters have another shape
    graph.nodes["lif2"] = nir.LIF(tau=np.full(5, 5e-3), r=np.ones(5), v_leak=np.zeros(5),
                                  v_threshold=np.arange(5.0), v_reset=np.zeros(5))
    del graph.metadata[DIGEST_KEY]
    with pytest.raises(NIRFileError) as err:
        from_nir(graph)
    named(err, "node 'lif2'", "key 'tau'", "does not broadcast")


def test_edges_to_missing_nodes(written):
    _, path = written

    def edit(f):
        drop_digest(f)
        edges = f["node/edges"][()]
        edges[0, 1] = b"ghost"
        del f["node/edges"]
        f["node"]["edges"] = edges
    rewrite(path, edit)
    with pytest.raises(NIRFileError, match="names node 'ghost', which the graph does not have") as err:
        from_nir(path)
    named(err, path, "key 'edges'")


def test_wrong_array_rank(written):
    _, path = written

    def edit(f):
        drop_digest(f)
        w = f["node/nodes/conv/weight"][()]
        del f["node/nodes/conv/weight"]
        f["node/nodes/conv"]["weight"] = w.reshape(3, 2, 9)
    rewrite(path, edit)
    with pytest.raises(NIRFileError, match="must be a 4-d array") as err:
        from_nir(path)
    named(err, path, "node 'conv'", "key 'weight'")
    graph = to_nir(small_network())
    graph.nodes["rec"].weight = np.ones(8)               # nir.Affine refuses it at construction
    del graph.metadata[DIGEST_KEY]
    with pytest.raises(NIRFileError) as err:
        from_nir(graph)
    named(err, "<in-memory graph>", "node 'rec'", "key 'weight'", "2-d")


# ---------------------------------------------------------------------- fuzz
CHILD = textwrap.dedent("""
    import json, sys, warnings
    import torch
    from neurosim.hardware.nir import NIRFileError, from_nir
    original, inputs, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    warnings.simplefilter("ignore")
    x = torch.load(inputs)
    want = from_nir(original).run(x).outputs
    for path in paths:
        try:
            sim = from_nir(path)
        except NIRFileError as e:
            result = "error" if path in str(e) else "error without the file name: " + str(e)
        except Exception as e:
            result = "other %s: %s" % (type(e).__name__, e)
        else:
            try:
                got = sim.run(x).outputs
                same = list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
                result = "equal" if same else "LOADED OTHER VALUES"
            except Exception as e:
                result = "run failed %s: %s" % (type(e).__name__, e)
        print(json.dumps([path, result]), flush=True)
""")


def run_batch(original, inputs, paths, timeout=60):
    """Load every damaged file in one child process, so that a crash in h5py cannot kill pytest."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(original), str(inputs), *map(str, paths)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"the child crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    results = dict(json.loads(line) for line in proc.stdout.splitlines())
    assert set(results) == set(map(str, paths))
    return results


def test_cut_or_flipped_files_raise_or_load_exactly(tmp_path):
    """>= 40 cuts at random offsets and >= 40 copies with random bytes flipped, seeded."""
    sim = small_network()
    original = write_nir(tmp_path / "net.nir", sim)
    x = small_input()
    assert sim.run(x).outputs["lif2"].sum() >= 10          # the comparison sees spikes
    torch.save(x, tmp_path / "x.pt")
    data = open(original, "rb").read()
    rng = random.Random(2024)
    paths = []
    for k, cut in enumerate(sorted(rng.sample(range(1, len(data)), 45))):
        paths.append(tmp_path / f"cut{k}.nir")
        paths[-1].write_bytes(data[:cut])
    for k in range(45):
        damaged = bytearray(data)
        for offset in rng.sample(range(len(data)), rng.choice([1, 1, 2, 8])):
            damaged[offset] ^= 1 << rng.randrange(8)
        paths.append(tmp_path / f"flip{k}.nir")
        paths[-1].write_bytes(bytes(damaged))
    results = run_batch(original, tmp_path / "x.pt", paths)
    bad = {p: r for p, r in results.items() if r not in ("error", "equal")}
    assert not bad, bad
    counts = {r: list(results.values()).count(r) for r in set(results.values())}
    print("fuzz outcomes:", counts, "file bytes:", len(data))
    assert all(results[str(p)] == "error" for p in paths[:45])      # every cut is refused
    assert counts.get("error", 0) >= 45
