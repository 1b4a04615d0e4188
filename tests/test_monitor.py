"""Monitor: in-memory records, the time axis (per run or continued), HDF5 streaming with
fsync-then-rename, cleanup of failed runs, checks and read-back."""
import os

import h5py
import pytest
import torch

import neurosim as ns
from neurosim.monitor import MonitorError, closing_monitors, spike_times

DT = 1e-3
PARAMS = ns.LIFParams(tau_mem=5e-3, reset="zero")


def net(with_counter=False):
    gen = torch.Generator().manual_seed(0)
    weight = torch.rand(3, 4, generator=gen) * 3.0
    fc = CountingDense(4, 3, weight=weight) if with_counter else ns.Dense(4, 3, weight=weight)
    g = ns.Graph.sequential(4, ("fc", fc), ("lif", ns.Population("lif", 3, PARAMS)))
    return g, ns.Simulator(g, dt=DT)


class CountingDense(ns.Dense):
    calls = 0

    def forward_sequence(self, x_seq):
        CountingDense.calls += 1
        return super().forward_sequence(x_seq)


class Exploding(ns.Dense):
    """Fails when asked to, after the nodes before it have run (and been recorded)."""
    explode = False

    def forward_sequence(self, x_seq):
        if self.explode:
            raise RuntimeError("boom")
        return super().forward_sequence(x_seq)


def inputs(t=20, b=2, seed=1, p=0.4):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, 4, generator=gen) < p).float()


def hand_loop(g, x):
    """The LIF population driven by the dense projection, stepped by hand with lif_step."""
    current = x @ g.nodes["fc"].weight.detach().T
    state = ns.neurons.lif.lif_initial_state(PARAMS, (3,), x.shape[1])
    spikes, vs = [], []
    for t in range(x.shape[0]):
        s, state = ns.lif_step(current[t], state, PARAMS, DT)
        spikes.append(s)
        vs.append(state.v)
    return torch.stack(spikes), torch.stack(vs)


def test_in_memory_record_matches_a_hand_written_loop():
    g, sim = net()
    x = inputs()
    result = sim.run(x, monitors=[ns.Monitor("lif", ("spikes", "v", "refractory")), ns.Monitor("fc")])
    rec = result.records["lif"]
    spikes, v = hand_loop(g, x)
    assert spikes.sum() > 0, "the test network must spike"
    assert rec["spikes"].shape == (20, 2, 3) and rec["v"].shape == (20, 2, 3)
    assert torch.equal(rec["spikes"], spikes)
    assert torch.allclose(rec["v"], v, atol=1e-6)
    assert torch.equal(rec["spikes"], result.output)
    assert torch.equal(rec["t"], torch.arange(20))
    assert torch.allclose(rec["time"], torch.arange(20, dtype=torch.float64) * DT)
    fc_rec = result.records["fc"]
    assert set(fc_rec) == {"output", "t", "time"}
    assert torch.allclose(fc_rec["output"], x @ g.nodes["fc"].weight.detach().T, atol=1e-6)


def test_every_counts_the_same_steps_in_each_run_by_default():
    """A monitor reused across batches that each start from rest (a Trainer's loop) samples the
    same time indices in every batch: the default time axis starts at 0 in each run."""
    g, sim = net()
    mon = ns.Monitor("lif", ("spikes", "v"), every=3)
    first = sim.run(inputs(t=20, seed=1), monitors=[mon]).records["lif"]
    second = sim.run(inputs(t=20, seed=2), monitors=[mon]).records["lif"]
    assert first["t"].tolist() == second["t"].tolist() == list(range(0, 20, 3))
    assert torch.equal(first["time"], second["time"])
    whole = sim.run(inputs(t=20, seed=2), monitors=[ns.Monitor("lif", "v")]).records["lif"]
    assert torch.equal(second["v"], whole["v"][::3])       # the rows are those steps of the run
    assert mon.steps_seen == 40


def test_every_counts_global_steps_across_continued_runs():
    g, sim = net()
    x = inputs(t=18)
    whole = sim.run(x, monitors=[ns.Monitor("lif", ("v",), every=3)]).records["lif"]
    assert whole["t"].tolist() == [0, 3, 6, 9, 12, 15]
    mon = ns.Monitor("lif", ("v",), every=3, time_axis="continued")
    first = sim.run(x[:10], monitors=[mon])
    second = sim.run(x[10:], state=first.state, monitors=[mon])
    r1, r2 = first.records["lif"], second.records["lif"]
    assert r1["t"].tolist() == [0, 3, 6, 9]
    assert r2["t"].tolist() == [12, 15]               # steps 10..17 of the continued time axis
    assert torch.allclose(r2["time"], torch.tensor([12e-3, 15e-3], dtype=torch.float64))
    assert torch.allclose(torch.cat([r1["v"], r2["v"]]), whole["v"], atol=1e-6)
    assert mon.steps_seen == 18
    assert mon.needs_state and not ns.Monitor("lif", ("spikes", "output")).needs_state
    mon.reset()
    assert sim.run(x[:4], monitors=[mon]).records["lif"]["t"].tolist() == [0, 3]


def test_run_shorter_than_every_gives_empty_tensors_of_the_right_shape():
    g, sim = net()
    mon = ns.Monitor("lif", ("spikes", "v"), every=5, time_axis="continued")
    sim.run(inputs(t=3), monitors=[mon])                    # records step 0 only
    rec = sim.run(inputs(t=2), monitors=[mon]).records["lif"]   # steps 3, 4: nothing
    assert rec["v"].shape == (0, 2, 3) and rec["t"].numel() == 0


def test_unknown_variable_fails_before_any_step_naming_node_and_choices():
    g, sim = net(with_counter=True)
    CountingDense.calls = 0
    choices = r"\['i', 'output', 'refractory', 'v', 'spikes'\]"
    with pytest.raises(ValueError, match=r"node 'lif' has no variable 'u'; available: " + choices):
        sim.run(inputs(), monitors=[ns.Monitor("lif", ("v", "u"))])
    assert CountingDense.calls == 0
    with pytest.raises(ValueError, match=r"node 'fc' has no variable 'v'; available: \['output'\]$"):
        sim.run(inputs(), monitors=[ns.Monitor("fc", "v")])
    with pytest.raises(ValueError, match="'fc' does not emit spikes"):
        sim.run(inputs(), monitors=[ns.Monitor("fc", "spikes")])
    assert CountingDense.calls == 0


def test_a_bad_later_monitor_is_refused_before_an_earlier_one_opens_its_file(tmp_path):
    g, sim = net()
    good = ns.Monitor("lif", "v", path=tmp_path / "good.h5")
    with pytest.raises(MonitorError, match="node 'fc' has no variable 'v'"):
        sim.run(inputs(), monitors=[good, ns.Monitor("fc", "v")])
    assert good.temp_path is None and os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs, argument, reason", [
    (dict(variables=()), "variables", "must be a non-empty sequence of names, got []"),
    (dict(variables=("v", "v")), "variables", "must not contain duplicates, got ['v', 'v']"),
    (dict(variables=7), "variables", "must be a non-empty sequence of names, got 7"),
    (dict(every=0), "every", "must be an integer >= 1, got 0"),
    (dict(every=1.5), "every", "must be an integer >= 1, got 1.5"),
    (dict(every=True), "every", "must be an integer >= 1, got True"),
    (dict(chunk_steps=0), "chunk_steps", "must be an integer >= 1, got 0"),
    (dict(compression="zip"), "compression", "must be 'gzip', 'lzf' or None, got 'zip'"),
    (dict(time_axis="global"), "time_axis", "must be one of ['per_run', 'continued'], got 'global'"),
    (dict(path="/nonexistent-dir/x.h5"), "path",
     "'/nonexistent-dir/x.h5': directory '/nonexistent-dir' does not exist"),
    (dict(path="TMP/rec.h5", detach=False), "detach", "must be True with a path: detach=False keeps the "
     "autograd graph, which a file cannot hold; use path=None to keep the graph"),
])
def test_bad_monitor_arguments_name_the_argument(kwargs, argument, reason, tmp_path):
    if str(kwargs.get("path", "")).startswith("TMP/"):
        kwargs["path"] = str(tmp_path / "rec.h5")
    with pytest.raises(MonitorError) as info:
        ns.Monitor("lif", **kwargs)
    assert isinstance(info.value, ValueError)
    assert (info.value.argument, info.value.reason) == (argument, reason)
    assert str(info.value) == f"Monitor('lif') {argument} {reason}"


def test_check_finds_unknown_nodes_and_variables_without_running():
    g, sim = net(with_counter=True)
    CountingDense.calls = 0
    ns.Monitor("lif", ("spikes", "v")).check(g)
    with pytest.raises(MonitorError) as info:
        ns.Monitor("lif", ("v", "u")).check(g)
    assert info.value.argument == "variables"
    assert info.value.reason == "node 'lif' has no variable 'u'; available: ['i', 'output', 'refractory', 'v', 'spikes']"
    with pytest.raises(MonitorError) as info:
        ns.Monitor("nope").check(g)
    assert info.value.argument == "node" and info.value.reason == "unknown node 'nope' (nodes: ['fc', 'lif'])"
    assert CountingDense.calls == 0


def test_detach_false_keeps_the_graph_for_rate_penalties():
    g, sim = net()
    kept = ns.Monitor("lif", ("spikes", "v"), detach=False, name="kept")
    dropped = ns.Monitor("lif", ("v",), name="dropped")
    rec = sim.run(inputs(), monitors=[kept, dropped]).records
    assert rec["kept"]["v"].requires_grad and not rec["dropped"]["v"].requires_grad
    penalty = (rec["kept"]["spikes"].mean() - 0.0) ** 2 + rec["kept"]["v"].pow(2).mean()
    penalty.backward()
    grad = g.nodes["fc"].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_streaming_appends_runs_and_appears_only_when_closed(tmp_path):
    g, sim = net()
    x = inputs(t=30)
    path = tmp_path / "lif.h5"
    memory = ns.Monitor("lif", ("spikes", "v"), every=2, name="memory", time_axis="continued")
    with ns.Monitor("lif", ("spikes", "v"), every=2, path=path, chunk_steps=4, name="file",
                    time_axis="continued") as mon:
        first = sim.run(x[:17], monitors=[mon, memory])
        assert first.records["file"] == {"path": str(path)}
        assert not path.exists(), "the final name must appear only on close"
        assert os.path.dirname(mon.temp_path) == str(tmp_path) and os.path.exists(mon.temp_path)
        second = sim.run(x[17:], state=first.state, monitors=[mon, memory])
        tmp = mon.temp_path
    assert path.exists() and not os.path.exists(tmp)
    assert os.listdir(tmp_path) == ["lif.h5"]
    (tmp_path / "plain").write_text("")            # the rename keeps the usual permissions
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    rec = ns.load_recording(path)
    expected_t = torch.cat([first.records["memory"]["t"], second.records["memory"]["t"]])
    assert rec.t.tolist() == expected_t.tolist() == list(range(0, 30, 2))
    for var in ("spikes", "v"):
        want = torch.cat([first.records["memory"][var], second.records["memory"][var]])
        assert torch.equal(rec.variables[var], want), var
    assert rec.dt == DT and rec.node == "lif" and rec.attrs["every"] == 2 and rec.attrs["time_axis"] == "continued"
    assert rec.attrs["variables"] == ["spikes", "v"] and rec.attrs["neurosim_version"] == ns.__version__
    assert torch.allclose(rec.time, expected_t.double() * DT)
    with h5py.File(path, "r") as f:
        ds = f["v"]
        assert ds.chunks is not None and ds.compression == "gzip" and ds.maxshape[0] is None
        assert ds.shape == (15, 2, 3)


def test_streaming_writes_in_chunks_not_per_step(tmp_path, monkeypatch):
    g, sim = net()
    writes = []
    original = h5py.Dataset.__setitem__

    def counting(self, key, value):
        writes.append(self.name)
        return original(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", counting)
    with ns.Monitor("lif", ("spikes", "v"), path=tmp_path / "r.h5", chunk_steps=8) as mon:
        sim.run(inputs(t=20), monitors=[mon])
    # flushes after 8 and 16 records and at finish (4): 3 writes for each of spikes, v and t
    assert sorted(writes) == sorted(["/spikes", "/v", "/t"] * 3)


def test_a_failed_run_is_dropped_from_the_file(tmp_path):
    g, sim = net()
    g.add("boom", Exploding(3, 2))
    g.connect("lif", "boom")
    sim = ns.Simulator(g, dt=DT)
    x = inputs(t=20)
    path = tmp_path / "r.h5"
    mon = ns.Monitor("lif", ("v",), path=path, chunk_steps=4, time_axis="continued")
    good = sim.run(x[:6], monitors=[mon])
    g.nodes["boom"].explode = True
    with pytest.raises(RuntimeError, match="boom"):      # lif was recorded (and flushed) before boom ran
        sim.run(x[6:], state=good.state, monitors=[mon])
    g.nodes["boom"].explode = False
    again = sim.run(x[6:], state=good.state, monitors=[mon])
    mon.close()
    rec = ns.load_recording(path)
    assert rec.t.tolist() == list(range(20))
    whole = sim.run(x, monitors=[ns.Monitor("lif", "v")]).records["lif"]["v"]
    assert torch.allclose(rec["v"], whole, atol=1e-6)
    assert again.state is not None


def test_streamed_runs_from_rest_each_start_at_step_0_in_the_file(tmp_path):
    g, sim = net()
    with ns.Monitor("lif", "v", every=3, path=tmp_path / "r.h5", chunk_steps=4) as mon:
        sim.run(inputs(t=10, seed=1), monitors=[mon])
        sim.run(inputs(t=10, seed=2), monitors=[mon])
    rec = ns.load_recording(tmp_path / "r.h5")
    assert rec.t.tolist() == [0, 3, 6, 9, 0, 3, 6, 9] and rec.attrs["time_axis"] == "per_run"


def test_close_fsyncs_the_file_before_renaming_it(tmp_path, monkeypatch):
    g, sim = net()
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "r.h5"
    with ns.Monitor("lif", "v", path=path) as mon:
        sim.run(inputs(), monitors=[mon])
    renames = [e for e in events if e[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == str(path)
    inode = renames[0][1]
    assert ("fsync", inode) in events[:events.index(renames[0])], events
    assert ns.load_recording(path)["v"].shape == (20, 2, 3)


def test_closing_monitors_closes_all_on_success_and_aborts_all_on_failure(tmp_path):
    g, sim = net()
    g.add("boom", Exploding(3, 2))
    g.connect("lif", "boom")
    sim = ns.Simulator(g, dt=DT)
    with closing_monitors([ns.Monitor("fc", path=tmp_path / "fc.h5"),
                           ns.Monitor("lif", ("spikes", "v"), path=tmp_path / "lif.h5")]) as mons:
        sim.run(inputs(), monitors=mons)
    assert sorted(os.listdir(tmp_path)) == ["fc.h5", "lif.h5"]
    failed = tmp_path / "failed"
    failed.mkdir()
    g.nodes["boom"].explode = True
    with pytest.raises(RuntimeError, match="boom"):     # fails mid-run, after fc and lif were recorded
        with closing_monitors([ns.Monitor("fc", path=failed / "fc.h5"),
                               ns.Monitor("lif", ("spikes", "v"), path=failed / "lif.h5")]) as mons:
            sim.run(inputs(), monitors=mons)
    assert os.listdir(failed) == []
    with pytest.raises(MonitorError, match="no variable 'u'"):   # the 2nd monitor fails at start
        with closing_monitors([ns.Monitor("fc", path=failed / "fc.h5"),
                               ns.Monitor("lif", "u", path=failed / "lif.h5")]) as mons:
            sim.run(inputs(), monitors=mons)
    assert os.listdir(failed) == []


def test_exception_inside_with_block_leaves_no_file(tmp_path):
    g, sim = net()
    with pytest.raises(KeyError):
        with ns.Monitor("lif", "v", path=tmp_path / "r.h5") as mon:
            sim.run(inputs(), monitors=[mon])
            raise KeyError("user code failed")
    assert os.listdir(tmp_path) == []


def test_appending_a_different_batch_or_reusing_a_closed_monitor_is_refused(tmp_path):
    g, sim = net()
    mon = ns.Monitor("lif", "v", path=tmp_path / "r.h5")
    sim.run(inputs(b=2), monitors=[mon])
    with pytest.raises(ValueError, match=r"batch 3 != 2"):
        sim.run(inputs(b=3), monitors=[mon])
    mon.close()
    assert ns.load_recording(tmp_path / "r.h5")["v"].shape == (20, 2, 3)
    with pytest.raises(RuntimeError, match="closed"):
        sim.run(inputs(b=2), monitors=[mon])


def test_load_recording_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no recording"):
        ns.load_recording(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        ns.load_recording(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = [1, 2, 3]
    with pytest.raises(ValueError, match="not a neurosim recording"):
        ns.load_recording(other)
    g, sim = net()
    with ns.Monitor("lif", "v", path=tmp_path / "ok.h5") as mon:
        sim.run(inputs(), monitors=[mon])
    with pytest.raises(ValueError, match=r"no variable\(s\) \['u'\]"):
        ns.load_recording(tmp_path / "ok.h5", variables=["u"])
    assert set(ns.load_recording(tmp_path / "ok.h5", variables=["v"]).variables) == {"v"}


def test_spike_times_lists_events_per_sample():
    s = torch.zeros(4, 2, 3)
    s[1, 0, 2] = 1
    s[3, 0, 0] = 1
    s[0, 1, 1] = 1
    events = spike_times(s, dt=0.5)
    t0, n0 = events[0]
    assert t0.tolist() == [0.5, 1.5] and n0.tolist() == [2, 0]
    t1, n1 = spike_times(s, dt=0.5, batch=1)
    assert t1.tolist() == [0.0] and n1.tolist() == [1]
    t, n = spike_times(s[:, 0], dt=1.0, times=[0, 10, 20, 30])
    assert t.tolist() == [10.0, 30.0] and n.tolist() == [2, 0]
    with pytest.raises(ValueError, match="batch index"):
        spike_times(s, dt=1.0, batch=5)
