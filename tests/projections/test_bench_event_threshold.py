"""Smoke run of benchmarks/bench_event_threshold.py: the grid runs, the ratios are what they say."""
import json

import pytest
import torch

from benchmarks import bench_event_threshold as bench


def test_quick_grid_writes_consistent_json(tmp_path, capsys):
    out = tmp_path / "grid.json"
    threads = torch.get_num_threads()
    try:
        results, summary = bench.main(["--quick", "--repeats", "1", "--fit", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)                     # the benchmark sets 2 threads
    data = json.loads(out.read_text())
    assert data["summary"]["points"] == len(results) == 2 * 1 * 2 * 2      # kinds x sizes x rows x densities
    for p in data["results"]:
        best = min(p["event_s"], p["dense_s"])
        assert p["ratio"] == pytest.approx(p["auto_s"] / best)
        chosen = p["event_s"] if p["auto_path"] == "event" else p["dense_s"]
        assert p["choice_ratio"] == pytest.approx(chosen / best)
        assert p["active"] == round(p["density"] * p["rows"] * p["n"])
    assert summary["max_ratio"] == max(p["ratio"] for p in results)
    assert "worst auto / min(event, dense)" in capsys.readouterr().out


def test_inputs_have_the_exact_density_and_bad_arguments_raise():
    x = bench.make_input(16, 256, 0.05, seed=0)
    assert int(x.sum()) == round(0.05 * 16 * 256) and set(x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="kind must be"):
        bench.make_projection("conv", 8, 0.1, 0)
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--threads", "0"])
