"""Smoke test of benchmarks/bench_backend_crossover.py: every graph runs on both backends with the
same spikes (the benchmark's figures are only meaningful if they compute the same network)."""
import pytest

from benchmarks import bench_backend_crossover as crossover


@pytest.mark.parametrize("kind", crossover.GRAPHS)
def test_every_graph_gives_the_same_spikes_on_both_backends(kind):
    point = crossover.time_point(256, 60, kind, repeats=1)
    assert point["graph"] == kind and point["torch_s"] > 0 and point["compiled_s"] > 0
    assert point["spikes_torch"] == point["spikes_compiled"] > 0


def test_unknown_graph_is_refused():
    with pytest.raises(SystemExit):
        crossover.main(["--quick", "--graphs", "loihi,bogus"])
