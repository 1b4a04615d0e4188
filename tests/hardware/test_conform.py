"""conform(): the spike counting on hand-made trains (checked against an independent dynamic
programme), every example network through every registered backend, a runner broken on purpose,
and the report files."""
import base64
import os
import re

import pytest
import torch

from neurosim.hardware import conform as conform_module
from neurosim.hardware.conform import BackendRun, compare_spikes, conform, spiking_populations
from neurosim.hardware.example_networks import example_names, example_network

T, BATCH = 40, 1


pytestmark = pytest.mark.usefixtures("one_thread")


def bernoulli(sim, steps=T, batch=BATCH, p=0.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(steps, batch, *s, generator=gen) < p).double() for k, s in sim.graph.inputs.items()}


# ---------------------------------------------------------------------- counting
def test_hand_made_trains_give_the_known_counts():
    ref, got = torch.zeros(10, 2, 3), torch.zeros(10, 2, 3)
    ref[2, 0, 0] = got[2, 0, 0] = 1          # exact
    ref[5, 1, 2] = got[5, 1, 2] = 1          # exact
    ref[3, 0, 1], got[4, 0, 1] = 1, 1        # backend one step late
    ref[7, 1, 0], got[6, 1, 0] = 1, 1        # backend one step early
    ref[8, 0, 2] = 1                         # reference only
    got[1, 1, 1] = 1                         # backend only: the first disagreement
    ref[9, 0, 0], got[9, 1, 0] = 1, 1        # same step, other sample: two differing
    c = compare_spikes(ref, got)
    assert (c.exact, c.within_one, c.differing) == (2, 2, 4)
    assert c.first == (1, 1, 1)
    assert (c.reference_spikes, c.backend_spikes) == (6, 6)
    assert not c.agrees and compare_spikes(ref, ref).agrees


def test_a_chain_of_shifts_pairs_each_spike_once():
    ref, got = torch.zeros(6, 1, 1), torch.zeros(6, 1, 1)
    ref[1], got[2], ref[3] = 1, 1, 1         # r g r: one pair, one spike left over
    c = compare_spikes(ref, got)
    assert (c.exact, c.within_one, c.differing, c.first) == (0, 1, 1, (1, 0, 0))


def _pairs_by_dp(r_col, g_col):
    """Maximum number of (reference, backend) pairs at adjacent steps for one neuron (DP)."""
    only_r = [a and not b for a, b in zip(r_col, g_col)]
    only_g = [b and not a for a, b in zip(r_col, g_col)]
    best = [0] * (len(r_col) + 1)
    for t in range(1, len(r_col)):
        pair = (only_r[t - 1] and only_g[t]) or (only_g[t - 1] and only_r[t])
        best[t + 1] = max(best[t], best[t - 1] + 1 if pair else 0)
    return best[len(r_col)] if len(r_col) > 1 else 0


def test_counts_match_an_independent_matching_on_random_trains():
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        ref = (torch.rand(30, 2, 4, generator=gen) < 0.3).float()
        got = (torch.rand(30, 2, 4, generator=gen) < 0.3).float()
        c = compare_spikes(ref, got)
        pairs = sum(_pairs_by_dp(ref[:, b, i].bool().tolist(), got[:, b, i].bool().tolist())
                    for b in range(2) for i in range(4))
        unmatched = int((ref != got).sum())
        assert c.exact == int((ref * got).sum())
        assert c.within_one == pairs
        assert c.differing == unmatched - 2 * pairs
        differs = (ref != got).reshape(30, 2 * 4)
        t = int(differs.any(1).nonzero()[0])
        flat = int(differs[t].nonzero()[0])
        assert c.first == (t, flat // 4, flat % 4)


def test_shape_mismatch_names_the_place():
    with pytest.raises(ValueError, match="lif1"):
        compare_spikes(torch.zeros(5, 1, 3), torch.zeros(5, 1, 4), "lif1")


# ---------------------------------------------------------------------- the backends
EXPECTED_TO_RUN = {       # backends that must take each example (the others report why not)
    "feedforward": {"saved", "nir", "norse", "brian2"},
    "recurrent": {"saved", "nir", "norse", "brian2"},
    "conv": {"saved", "nir", "norse"},
    "cuba": {"saved", "nir", "norse", "brian2"},
    "delays": {"saved", "brian2"},
    "loihi": set(),
}


@pytest.mark.parametrize("name", example_names())
def test_every_example_agrees_exactly_wherever_a_backend_takes_it(name):
    sim = example_network(name, seed=0)
    report = conform(sim, bernoulli(sim))
    ran = {n for n, r in report.rows.items() if r.status == "ok"} - {"neurosim"}
    assert EXPECTED_TO_RUN[name] <= ran, report.table()
    for row in report.rows.values():
        assert row.status != "error", report.table()
        if row.status == "ok":
            assert row.agrees, report.table()
            assert row.nodes_mapped == row.nodes_total == len(sim.graph.nodes)
        else:
            assert row.reason and row.nodes_mapped < row.nodes_total
    ref = report.reference.spikes
    for pop in spiking_populations(sim):          # the comparison is not trivial: every population spikes
        rate = float((ref[pop] != 0).double().mean())
        assert 0.01 < rate < 0.8, (pop, rate)
    assert report.all_exact


def test_unsupported_nodes_are_a_row_with_the_reason():
    sim = example_network("delays")
    report = conform(sim, bernoulli(sim), backends=["nir"])
    row = report.rows["nir"]
    assert row.status == "unsupported" and (row.nodes_mapped, row.nodes_total) == (2, 4)
    assert "'fc1'" in row.reason and "'fc2'" in row.reason
    assert "nir: unsupported" in report.table()
    assert report.all_exact                         # nothing that ran disagreed


def _broken(shift: bool):
    """A runner that runs the engine and then moves (shift) or drops one spike of lif2."""
    def runner(sim, inputs):
        run = conform_module._engine_run(sim, inputs)
        s = run.spikes["lif2"].clone()
        t, b, i = [int(v) for v in (s[10:] != 0).nonzero()[0]]
        t += 10
        s[t, b, i] = 0
        if shift:
            assert s[t + 1, b, i] == 0
            s[t + 1, b, i] = 1
        runner.where = (t, b, i)
        return BackendRun({**run.spikes, "lif2": s}, run.voltages, run.nodes_mapped, run.nodes_total)
    return runner


@pytest.mark.parametrize("shift", [False, True])
def test_a_broken_backend_is_reported_with_its_first_difference(monkeypatch, shift):
    runner = _broken(shift)
    monkeypatch.setitem(conform_module._RUNNERS, "broken", (runner, None))
    sim = example_network("feedforward")
    x = bernoulli(sim)
    report = conform(sim, x, backends=["broken", "saved"])
    row = report.rows["broken"]
    assert row.status == "ok" and not row.agrees and not report.all_exact
    assert (row.within_one, row.differing) == ((1, 0) if shift else (0, 1))
    assert row.first_difference == ("lif2", *runner.where)
    assert row.populations["lif1"].agrees and report.rows["saved"].agrees
    t, b, i = runner.where
    assert f"lif2 t={t} b={b} n={i}" in report.table()


def test_report_files_carry_the_raster(monkeypatch, tmp_path):
    monkeypatch.setitem(conform_module._RUNNERS, "broken", (_broken(False), None))
    sim = example_network("feedforward")
    report = conform(sim, bernoulli(sim), backends=["broken", "nir"])
    md = report.to_markdown(tmp_path / "r.md")
    text = open(md).read()
    assert "| broken |" in text and "![broken raster](r_broken.png)" in text
    with open(tmp_path / "r_broken.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    html_text = open(report.to_html(tmp_path / "r.html")).read()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_text)
    assert len(images) == 1 and base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<td>nir</td>" in html_text
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_unknown_backend_and_bad_inputs_raise_before_running():
    sim = example_network("feedforward")
    with pytest.raises(KeyError, match="nope"):
        conform(sim, bernoulli(sim), backends=["nope"])
    with pytest.raises(ValueError, match="x"):
        conform(sim, {"x": torch.zeros(5, 1, 7)})
