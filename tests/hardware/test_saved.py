"""neurosim.save / neurosim.load: every node type round-trips with identical spikes and states;
bad, cut or damaged files raise SavedNetworkError naming file, node and key; nothing half-written
is left on disk."""
import hashlib
import json
import os
import random

import h5py
import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.hardware import saved
from neurosim.hardware.registry import UnsupportedNodesError
from neurosim.hardware.saved import MissingSavedNetworkError, SavedNetworkError

N = 6
#: model -> (params with one per-neuron tensor, dt, input unit that makes it fire, trainable)
MODELS = {
    "lif": (ns.LIFParams(tau_mem=10e-3, v_threshold=torch.linspace(0.8, 1.2, N)), 1e-3, 1.5, ("tau_mem",)),
    "cuba_lif": (ns.CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, v_threshold=torch.linspace(0.8, 1.2, N)),
                 1e-3, 0.6, ("tau_syn",)),
    "if": (ns.IFParams(r=300.0, v_threshold=torch.linspace(0.8, 1.2, N)), 1e-3, 1.5, ("r",)),
    "li": (ns.LIParams(tau_mem=10e-3, r=torch.linspace(0.5, 1.5, N)), 1e-3, 1.0, ("tau_mem",)),
    "cuba_li": (ns.CubaLIParams(tau_syn=5e-3, tau_mem=10e-3, r=torch.linspace(0.5, 1.5, N)), 1e-3, 1.0, ("tau_syn",)),
    "integrator": (ns.IntegratorParams(r=torch.linspace(200.0, 400.0, N)), 1e-3, 1.0, ("r",)),
    "alif": (ns.ALIFParams(tau_mem=10e-3, tau_adapt=torch.linspace(40e-3, 60e-3, N)), 1e-3, 2.0, ("tau_mem",)),
    "izhikevich": (ns.IzhikevichParams(d=torch.linspace(6.0, 8.0, N)), 1e-4, 12.0, ("a",)),
    "adex": (ns.AdExParams(b=torch.linspace(0.05e-9, 0.1e-9, N)), 1e-4, 1.2e-9, ("tau_w",)),
    "coba_lif": (ns.CobaLIFParams(refractory_steps=20, v_threshold=torch.linspace(-52e-3, -48e-3, N)),
                 1e-4, 0.15, ("tau_mem",)),
}


# ---------------------------------------------------------------------- networks
def model_network(name):
    """inputs (one per port) -> Dense -> Population(name), with a back-edge through a Dense."""
    params, dt, unit, trainable = MODELS[name]
    model = ns.get_neuron_model(name)
    gen = torch.Generator().manual_seed(3)
    g = ns.Graph()
    g.add("pop", ns.Population(name, N, params, trainable=trainable, surrogate="arctan", surrogate_scale=3.0))
    inputs = {}
    for k, port in enumerate(model.input_ports):
        g.add_input(f"in_{port}", N)
        g.add(f"fc_{port}", ns.Dense(N, N, weight=torch.eye(N) + 0.1 * torch.rand(N, N, generator=gen)))
        g.connect(f"in_{port}", f"fc_{port}").connect(f"fc_{port}", "pop", port=port)
        inputs[f"in_{port}"] = (0.5 + torch.rand(300, 2, N, generator=gen)) * unit * (0.2 if k else 1.0)
    w = torch.randn(N, N, generator=gen) * 0.3 * unit
    g.add("rec", ns.Dense(N, N, weight=w.abs() if len(model.input_ports) > 1 else w))
    g.connect("pop", "rec", back=True).connect("rec", "pop", port=model.input_ports[0])
    return ns.Simulator(g, dt=dt), inputs


def delay_network():
    """float64; Dense and Sparse with per-synapse delays and biases, Delay lines, a back-edge,
    a frozen weight, event-path options; the "step" schedule and a marked output."""
    gen = torch.Generator().manual_seed(7)
    g = ns.Graph().add_input("x", 8)
    g.add("fc", ns.Dense(8, 5, bias=True, weight=2 * torch.rand(5, 8, generator=gen),
                         delay=torch.randint(0, 4, (5, 8), generator=gen), event_driven=True))
    g.add("line", ns.Delay(5, torch.tensor([0, 1, 2, 3, 1])))
    g.add("lif", ns.Population("lif", 5, ns.LIFParams(tau_mem=20e-3, reset="zero", refractory_steps=2),
                               trainable=("v_threshold",)))
    g.add("sp", ns.Sparse(5, 4, pre=[0, 1, 4, 2, 3, 0], post=[3, 0, 1, 2, 2, 3], weight=[0.9, 1.4, -0.2, 1.1, 0.7, 0.5],
                          delay=[0, 2, 1, 3, 0, 1], bias=True, event_threshold=0.3))
    g.add("hold", ns.Delay(4, 2))
    g.add("out", ns.Population("cuba_lif", 4))
    g.add("rec", ns.Dense(4, 5, weight=0.5 * torch.rand(5, 4, generator=gen), delay=1))
    g.chain("x", "fc", "line", "lif", "sp", "hold", "out")
    g.connect("out", "rec", back=True).connect("rec", "lif")
    g.add_output("out", "lif")
    g = g.double()
    with torch.no_grad():
        g.nodes["sp"].bias.fill_(0.125)
        g.nodes["fc"].bias.copy_(torch.linspace(0.0, 0.2, 5, dtype=torch.float64))
    g.nodes["rec"].weight.requires_grad_(False)
    x = (torch.rand(60, 3, 8, generator=gen) < 0.4).double()
    return ns.Simulator(g, dt=1e-3, schedule="step"), {"x": x}


def conv_network():
    """float64 Conv2d (stride, padding, bias) -> LIF -> MaxPool2d -> AvgPool2d -> Flatten -> Dense -> LI."""
    torch.manual_seed(11)
    g = ns.Graph.sequential((2, 10, 10),
                            ("conv", ns.Conv2d((2, 10, 10), 4, kernel_size=3, stride=1, padding=1, bias=True)),
                            ("lif", ns.Population("lif", (4, 10, 10), ns.LIFParams(v_threshold=0.3))),
                            ("max", ns.MaxPool2d((4, 10, 10), 2)),
                            ("avg", ns.AvgPool2d((4, 5, 5), 3, stride=2, padding=1)),
                            ("flat", ns.Flatten((4, 3, 3))),
                            ("fc", ns.Dense(36, 3)),
                            ("readout", ns.Population("li", 3)))
    g.add_output("lif", "readout")
    g = g.double()
    with torch.no_grad():
        g.nodes["conv"].weight.mul_(3.0).add_(1e-9)       # values that are not float32 numbers
        g.nodes["conv"].bias.fill_(0.05)
    x = (torch.rand(25, 2, 2, 10, 10) < 0.3).double()
    return ns.Simulator(g, dt=1e-3), {"input": x}


# ---------------------------------------------------------------------- comparisons
def tensors_of(obj):
    """Every tensor in a (nested) state, outputs dict or NamedTuple, with a path."""
    if isinstance(obj, torch.Tensor):
        return {"": obj}
    items = obj._asdict().items() if hasattr(obj, "_asdict") else (
        obj.items() if isinstance(obj, dict) else enumerate(obj or ()))
    return {f"{k}.{p}": t for k, v in items for p, t in tensors_of(v).items()}


def assert_same_run(a: ns.Simulator, b: ns.Simulator, inputs):
    ra, rb = a.run(inputs), b.run(inputs)
    out_a, out_b = tensors_of(ra.outputs), tensors_of(rb.outputs)
    state_a, state_b = tensors_of(ra.state), tensors_of(rb.state)
    assert out_a.keys() == out_b.keys() and state_a.keys() == state_b.keys()
    for key in out_a:
        assert out_a[key].dtype == out_b[key].dtype and torch.equal(out_a[key], out_b[key]), key
    for key in state_a:
        assert state_a[key].dtype == state_b[key].dtype and torch.equal(state_a[key], state_b[key]), key
    return ra


def assert_same_network(a: ns.Simulator, b: ns.Simulator):
    assert (b.dt, b.schedule) == (a.dt, a.schedule)
    ga, gb = a.graph, b.graph
    assert gb.inputs == ga.inputs and gb.edges == ga.edges and gb.outputs == ga.outputs
    assert list(gb.nodes) == list(ga.nodes)
    for name, node in ga.nodes.items():
        other = gb.nodes[name]
        assert type(other) is type(node) and other is not node
        sa, sb = node.state_dict(), other.state_dict()
        assert list(sa) == list(sb), name
        for key in sa:
            assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), (name, key)
            assert sa[key].numel() == 0 or sa[key].data_ptr() != sb[key].data_ptr(), (name, key)
        assert [(n, p.requires_grad) for n, p in node.named_parameters()] == \
               [(n, p.requires_grad) for n, p in other.named_parameters()], name
        assert other.extra_repr() == node.extra_repr()


def outcome(path, original: ns.Simulator, inputs) -> str:
    """"error" (a SavedNetworkError naming the file) or "equal" (an exactly equal network)."""
    try:
        loaded = ns.load(path)
    except SavedNetworkError as e:
        assert str(path) in str(e)
        return "error"
    assert_same_network(original, loaded)
    assert_same_run(original, loaded, {k: x[:8] for k, x in inputs.items()})   # short: the weights are compared above
    return "equal"


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_neuron_model_round_trips_with_identical_spikes_and_states(tmp_path, name):
    sim, inputs = model_network(name)
    assert set(MODELS) >= {m for m in ns.available_neuron_models()
                           if ns.get_neuron_model(m).step.__module__.startswith("neurosim.neurons.")}
    path = ns.save(sim, tmp_path / "net.h5")
    loaded = ns.load(path)
    assert_same_network(sim, loaded)
    pop = loaded.graph.nodes["pop"]
    assert pop.surrogate == sim.graph.nodes["pop"].surrogate and pop.trainable == MODELS[name][3]
    for field in pop.params.__dataclass_fields__:
        mine, theirs = getattr(pop.params, field), getattr(sim.graph.nodes["pop"].params, field)
        assert type(mine) is type(theirs), field
        assert torch.equal(mine, theirs) if isinstance(mine, torch.Tensor) else mine == theirs, field
    result = assert_same_run(sim, loaded, inputs)
    out = result.outputs["pop"]
    assert out.abs().sum() > 0 and (not pop.emits_spikes or out.sum() >= 10)   # the test sees activity


def test_delays_sparse_recurrence_float64_and_frozen_weights_round_trip(tmp_path):
    sim, inputs = delay_network()
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    assert_same_network(sim, loaded)
    fc, sp = loaded.graph.nodes["fc"], loaded.graph.nodes["sp"]
    assert fc.weight.dtype == torch.float64 and fc.weight.stride() == sim.graph.nodes["fc"].weight.stride()
    assert torch.equal(sp.pre, sim.graph.nodes["sp"].pre) and sp.delays.values == (0, 1, 2, 3)
    assert (fc.event_driven, sp.event_threshold) == (True, 0.3)
    assert not loaded.graph.nodes["rec"].weight.requires_grad and loaded.graph.nodes["lif"].v_threshold.requires_grad
    result = assert_same_run(sim, loaded, inputs)
    assert result.outputs["out"].sum() >= 10 and result.outputs["lif"].sum() >= 10


def test_conv_pool_flatten_round_trip_in_float64(tmp_path):
    sim, inputs = conv_network()
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    assert_same_network(sim, loaded)
    assert loaded.graph.nodes["conv"].weight.dtype == torch.float64
    result = assert_same_run(sim, loaded, inputs)
    assert result.outputs["lif"].sum() >= 10 and result.outputs["readout"].abs().sum() > 0


def test_trained_values_are_saved_not_the_constructor_values(tmp_path):
    sim, inputs = model_network("lif")
    pop, fc = sim.graph.nodes["pop"], sim.graph.nodes["fc_input"]
    with torch.no_grad():
        pop.tau_mem.fill_(12.5e-3)
        fc.weight.mul_(1.25)
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    tau = loaded.graph.nodes["pop"].tau_mem
    assert torch.equal(tau, torch.tensor(12.5e-3)) and tau.requires_grad and tau.dtype == torch.float32
    assert torch.equal(loaded.graph.nodes["fc_input"].weight, fc.weight)
    assert_same_run(sim, loaded, inputs)


def test_loading_twice_gives_independent_networks_and_keeps_the_rng(tmp_path):
    sim, inputs = delay_network()
    path = ns.save(sim, tmp_path / "net.h5")
    rng = torch.get_rng_state()
    a, b = ns.load(path), ns.load(path)
    assert torch.equal(torch.get_rng_state(), rng)
    with torch.no_grad():
        a.graph.nodes["fc"].weight.add_(1.0)
        a.graph.nodes["sp"].weight.mul_(-1.0)
    assert_same_network(sim, b)
    assert not torch.equal(a.graph.nodes["fc"].weight, b.graph.nodes["fc"].weight)
    assert a.graph is not b.graph and a.graph.edges is not b.graph.edges


def test_saving_again_over_a_file_replaces_it(tmp_path):
    path = tmp_path / "net.h5"
    ns.save(model_network("lif")[0], path)
    sim, inputs = conv_network()
    ns.save(sim, path)
    assert_same_network(sim, ns.load(path))
    assert os.listdir(tmp_path) == ["net.h5"]


# ---------------------------------------------------------------------- what cannot be saved
class Doubler(ns.Node):
    stateless = True

    def __init__(self):
        super().__init__({"input": (3,)}, (3,))

    def step(self, x, state, dt):
        return 2 * x, state


class MyDense(ns.Dense):
    pass


def test_every_node_that_cannot_be_saved_is_listed_and_nothing_is_written(tmp_path):
    g = ns.Graph.sequential(3, ("double", Doubler()), ("fc", MyDense(3, 3)),
                            ("pop", ns.Population("lif", 3, surrogate=ns.surrogate.Triangle(2.0))), ("ok", ns.Dense(3, 2)))
    ns.register_surrogate("triangle_for_test_saved", type("Tri", (ns.surrogate.Triangle,), {}))
    g.add("odd", ns.Population("lif", 2, surrogate=ns.get_surrogate("triangle_for_test_saved")))
    g.connect("ok", "odd")
    sim = ns.Simulator(g)
    sim.graph.nodes["odd"].surrogate = type("Unregistered", (ns.surrogate.Triangle,), {})()
    with pytest.raises(UnsupportedNodesError) as err:
        ns.save(sim, tmp_path / "net.h5")
    assert [(name, kind) for name, kind, _ in err.value.problems] == [
        ("double", "Doubler"), ("fc", "MyDense"), ("odd", "Population")]
    assert "subclass of Dense" in err.value.problems[1][2] and "not registered" in err.value.problems[2][2]
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="must be a neurosim Simulator"):
        ns.save(g, tmp_path / "net.h5")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        ns.save(ns.Simulator(ns.Graph.sequential(3, ("fc", ns.Dense(3, 2)))), tmp_path)


def test_a_crash_while_writing_leaves_no_file_and_the_old_file_untouched(tmp_path, monkeypatch):
    sim, _ = delay_network()
    path = tmp_path / "net.h5"
    original = h5py.Group.create_dataset
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("name"))
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="disk full"):
        ns.save(sim, path)
    assert len(calls) == 4 and os.listdir(tmp_path) == []

    monkeypatch.setattr(h5py.Group, "create_dataset", original)
    ns.save(sim, path)
    before = path.read_bytes()
    calls.clear()
    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="disk full"):
        ns.save(conv_network()[0], path)
    assert os.listdir(tmp_path) == ["net.h5"] and path.read_bytes() == before


# ---------------------------------------------------------------------- bad files
@pytest.fixture
def saved_file(tmp_path):
    sim, inputs = delay_network()
    return ns.save(sim, tmp_path / "net.h5"), sim, inputs


def edit_document(path, change):
    """Rewrite the JSON of a saved file with ``change(document)`` and a matching checksum."""
    with h5py.File(path, "r+") as f:
        document = json.loads(f[saved.DOCUMENT][()].tobytes())
        change(document)
        text = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
        del f[saved.DOCUMENT]
        f.create_dataset(saved.DOCUMENT, data=text)
        f[saved.DOCUMENT].attrs[saved.CHECKSUM] = hashlib.sha256(text.tobytes()).hexdigest()


def node_entry(document, name):
    return next(n for n in document["nodes"] if n["name"] == name)


def load_error(path) -> str:
    with pytest.raises(SavedNetworkError) as err:
        ns.load(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_a_missing_file_a_folder_and_files_that_are_not_hdf5(tmp_path):
    with pytest.raises(MissingSavedNetworkError, match="no such file") as err:
        ns.load(tmp_path / "nope.h5")
    assert isinstance(err.value, FileNotFoundError) and str(tmp_path / "nope.h5") in str(err.value)
    assert "not a file" in load_error(tmp_path)
    (tmp_path / "text.h5").write_text("name: not hdf5\n")
    (tmp_path / "empty.h5").write_bytes(b"")
    assert "opening the file" in load_error(tmp_path / "text.h5")
    assert "opening the file" in load_error(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("spikes", data=np.zeros(3))
    assert "key 'network': missing from the file" in load_error(tmp_path / "other.h5")


def test_files_cut_short_at_30_random_offsets_are_refused(saved_file):
    path, sim, inputs = saved_file
    data = open(path, "rb").read()
    rng = random.Random(0)
    for offset in sorted(rng.sample(range(len(data)), 30)):
        with open(path, "wb") as f:
            f.write(data[:offset])
        assert outcome(path, sim, inputs) == "error", offset


def test_files_with_30_random_flipped_bytes_are_refused_or_exactly_equal(saved_file):
    path, sim, inputs = saved_file
    data = open(path, "rb").read()
    rng = random.Random(1)
    results = []
    for offset in rng.sample(range(len(data)), 30):
        damaged = bytearray(data)
        damaged[offset] ^= rng.randrange(1, 256)
        with open(path, "wb") as f:
            f.write(damaged)
        results.append(outcome(path, sim, inputs))
    assert results.count("error") >= 5, results      # most of the file is HDF5 metadata or data


def test_a_flipped_byte_in_any_tensor_names_its_node_and_key(saved_file):
    path, sim, _ = saved_file
    with h5py.File(path, "r") as f:
        places = []
        f[saved.TENSORS].visititems(lambda name, obj: places.append((name, obj.id.get_offset(), obj.nbytes))
                                    if isinstance(obj, h5py.Dataset) and obj.nbytes else None)
        document_at = f[saved.DOCUMENT].id.get_offset()
    assert len(places) >= 10
    data = open(path, "rb").read()
    for name, offset, nbytes in places + [("network", document_at, 1)]:
        damaged = bytearray(data)
        damaged[offset + nbytes // 2] ^= 0x10
        with open(path, "wb") as f:
            f.write(damaged)
        message = load_error(path)
        assert "checksum mismatch" in message, (name, message)
        if name != "network":
            node, key = name.split("/", 1)
            assert f"node {node!r}, tensor {key!r}" in message


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(version=2), "key 'version': format version 2 is not supported (this neurosim reads version 1)"),
    (lambda d: d.update(format="nir"), "key 'format': not a neurosim saved network (format 'nir'"),
    (lambda d: node_entry(d, "sp").update(type="Transformer"), "node 'sp' (Transformer, key 'type': unknown node type"),
    (lambda d: node_entry(d, "fc")["config"].pop("in_features"), "node 'fc' (Dense, key 'in_features': missing"),
    (lambda d: node_entry(d, "lif")["config"]["params"].update(reset="sideways"), "node 'lif' (Population, key 'params'"),
    (lambda d: node_entry(d, "lif")["config"].update(model="hodgkin"), "key 'model': unknown neuron model 'hodgkin'"),
    (lambda d: node_entry(d, "fc")["config"].update(bias=False), "node 'fc' (Dense, key 'bias': unexpected tensor"),
    (lambda d: node_entry(d, "fc")["config"].update(delay=0), "node 'fc' (Dense, key 'delay': unexpected tensor"),
    (lambda d: node_entry(d, "rec").update(frozen=["w"]), "key 'frozen': 'w' is not a parameter"),
    (lambda d: node_entry(d, "rec").update(frozen=[{}]), "node 'rec', key 'frozen': expected a list of parameter names"),
    (lambda d: node_entry(d, "sp")["tensors"].pop("weight"), "node 'sp' (Sparse, key 'weight': missing tensor"),
    (lambda d: node_entry(d, "sp")["tensors"]["weight"].update(shape=[7]), "node 'sp', tensor 'weight': the dataset is"),
    (lambda d: node_entry(d, "sp")["tensors"]["weight"].update(dtype="float32"), "node 'sp', tensor 'weight': the dataset is"),
    (lambda d: node_entry(d, "sp")["tensors"]["weight"].pop("sha256"), "node 'sp', tensor 'weight', key 'sha256': missing"),
    (lambda d: d["edges"].append({"source": "out", "target": "nowhere", "port": "input", "back": False}),
     "graph: invalid graph:\n  - edge out -> nowhere.input: unknown target 'nowhere'"),
    (lambda d: d.pop("dt"), "document, key 'dt': missing"),
    (lambda d: d.update(dt=-1.0), "dt must be a positive number"),
    (lambda d: d["nodes"].append(dict(d["nodes"][0])), "node 'fc': appears twice"),
])
def test_edited_documents_raise_an_error_naming_the_node_and_key(saved_file, change, expected):
    path, _, _ = saved_file
    edit_document(path, change)
    assert expected in load_error(path)


def test_every_unknown_node_type_is_listed_at_once(saved_file):
    path, _, _ = saved_file
    edit_document(path, lambda d: [node_entry(d, n).update(type="Mystery") for n in ("fc", "out")])
    message = load_error(path)
    assert "2 node(s) cannot be loaded" in message and "node 'fc' (Mystery" in message and "node 'out' (Mystery" in message


def test_tensors_of_the_wrong_shape_are_refused(saved_file):
    path, _, _ = saved_file
    bad = np.zeros((5, 9))
    with h5py.File(path, "r+") as f:              # the dataset and its document entry agree, the node does not
        del f["tensors/fc/weight"]
        f.create_dataset("tensors/fc/weight", data=bad)
    edit_document(path, lambda d: node_entry(d, "fc")["tensors"]["weight"].update(
        shape=[5, 9], sha256=hashlib.sha256(bad.tobytes()).hexdigest()))
    assert "node 'fc' (Dense, key 'weight': tensor has shape (5, 9), the node needs (5, 8))" in load_error(path)


def test_a_damaged_document_and_a_dataset_that_is_missing(saved_file):
    path, _, _ = saved_file
    with h5py.File(path, "r+") as f:
        del f["tensors/sp/pre"]
    assert "key 'tensors/sp/pre': missing from the file" in load_error(path)
    with h5py.File(path, "r+") as f:
        f[saved.DOCUMENT].attrs[saved.CHECKSUM] = "0" * 64
    assert "key 'network': checksum mismatch" in load_error(path)
    with h5py.File(path, "r+") as f:
        del f[saved.DOCUMENT].attrs[saved.CHECKSUM]
    assert "missing its 'sha256' attribute" in load_error(path)
    text = np.frombuffer(b"{not json", dtype=np.uint8)
    with h5py.File(path, "r+") as f:
        del f[saved.DOCUMENT]
        f.create_dataset(saved.DOCUMENT, data=text)
        f[saved.DOCUMENT].attrs[saved.CHECKSUM] = hashlib.sha256(text.tobytes()).hexdigest()
    assert "key 'network': not valid JSON" in load_error(path)


def test_the_engine_imports_the_saved_network_backend_only_when_save_or_load_is_called(tmp_path):
    import subprocess
    import sys
    code = ("import sys, neurosim as ns\n"
            "assert 'neurosim.hardware.saved' not in sys.modules and 'h5py' not in sys.modules\n"
            "sim = ns.Simulator(ns.Graph.sequential(2, ('fc', ns.Dense(2, 2))))\n"
            f"ns.load(ns.save(sim, {str(tmp_path / 'net.h5')!r}))\n"
            "assert 'neurosim.hardware.saved' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_bfloat16_an_empty_sparse_and_zero_or_uniform_delays_round_trip(tmp_path):
    g = ns.Graph.sequential(4, ("sp", ns.Sparse(4, 3, pre=[], post=[], bias=True)), ("line", ns.Delay(3, 0)),
                            ("fc0", ns.Dense(3, 4, delay=2)), ("fc", ns.Dense(4, 3, bias=True, weight=torch.full((3, 4), 0.3))),
                            ("lif", ns.Population("lif", 3, ns.LIFParams(v_threshold=0.2))))
    g.connect("input", "fc")                  # the port sums the input and fc0's delayed output
    g = g.to(torch.bfloat16)
    sim = ns.Simulator(g)
    loaded = ns.load(ns.save(sim, tmp_path / "net.h5"))
    assert_same_network(sim, loaded)
    assert loaded.graph.nodes["fc"].weight.dtype == torch.bfloat16 and loaded.graph.nodes["sp"].nnz == 0
    x = (torch.rand(30, 2, 4, generator=torch.Generator().manual_seed(2)) < 0.5).to(torch.bfloat16)
    assert assert_same_run(sim, loaded, {"input": x}).output.sum() >= 5


def test_a_tensor_of_a_dtype_the_file_cannot_hold_is_named_before_writing(tmp_path):
    sim = ns.Simulator(ns.Graph.sequential(2, ("fc", ns.Dense(2, 2)), ("fc2", ns.Dense(2, 2))))
    for name in ("fc", "fc2"):
        sim.graph.nodes[name].weight = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.complex64))
    with pytest.raises(SavedNetworkError) as err:
        ns.save(sim, tmp_path / "net.h5")
    assert "node 'fc', tensor 'weight': dtype torch.complex64 is not supported" in str(err.value)
    assert "node 'fc2', tensor 'weight'" in str(err.value) and os.listdir(tmp_path) == []


def test_node_specs_keep_nan_weights_and_refuse_a_second_class_under_a_taken_name():
    from neurosim.hardware.node_specs import build_node, describe_node, register_node_spec
    fc = ns.Dense(3, 2, weight=torch.tensor([[1.0, float("nan"), 2.0], [0.0, -1.0, float("nan")]]))
    copy = build_node(describe_node(fc))
    assert torch.equal(copy.weight.isnan(), fc.weight.isnan())
    assert torch.equal(copy.weight.nan_to_num(7.0), fc.weight.nan_to_num(7.0))
    impostor = type("Dense", (ns.Node,), {})
    with pytest.raises(ValueError, match="the saved type name 'Dense' already belongs to neurosim.projections"):
        register_node_spec(impostor, lambda node: ({}, {}), lambda config, tensors: impostor())
