"""The scaling benchmark compares like with like and reports honestly: at a tiny point every
library's case gives neurosim's torch-path spike count (Brian2 too, numpy target, float64), the
cost fit recovers known constants, and the plot writer leaves a PNG (or, on failure, the old file)
under the final name and no temporary file.

The spike counts are compared in a configuration where every library's arithmetic is exact (as
in ``tests/test_benchmarks_smoke.py``): dt = 2^-10 s and tau_mem = 2^-9 s (a = 1/2 exactly, also
in Brian2's ``v + dt (-v / tau)``), weights on a grid of 2^-2 with |w| <= 2, T = 12 steps, so
every membrane value is a multiple of 2^-14 below 2^8 (22 bits, exact in float32); the threshold
fl32(0.7) has its lowest bit at 2^-24, so no v equals it (SpikingJelly fires on v >= v_th, the
others on v > v_th). The default backend's compiled LIF is compared with the torch path at the
benchmark's own configuration (T = 40). Nothing is timed and nothing runs in a subprocess."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_scaling as S  # noqa: E402
from benchmarks import plot_scaling as P  # noqa: E402
from benchmarks.common import MemoryMeter  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TORCH_LIBS = ("neurosim", "neurosim_torch", "spikingjelly", "snntorch", "norse")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def exact_point():
    """A tiny point whose arithmetic is exact in every library (module docstring)."""
    cfg = S.defaults(quick=True)
    cfg.update(T=12, seed=3, threads=1, dt=2.0 ** -10, tau_mem=2.0 ** -9, grid_bits=2,
               v_th=float(np.float32(0.7)))
    point = S.point_config(cfg, 48, 0.3)
    assert S.decay(point) == 0.5
    return point


def run_torch_case(lib, point):
    prepared = S.CASES[lib].build(point, MemoryMeter())
    prepared.timed(0, 1)
    return prepared.info()


@pytest.fixture(scope="module")
def reference():
    """neurosim's torch path at the exact point: its info and the inputs."""
    point = exact_point()
    x, w = S.point_inputs(point)
    assert w.abs().max() <= 2.0 and float(x.sum(-1).max()) * 2.0 < 2.0 ** 8
    info = run_torch_case("neurosim_torch", point)
    frac = info["spikes"] / (point["T"] * point["n_out"])
    assert 0.03 < frac < 0.5, f"spike raster empty or saturated ({frac:.3f})"
    return point, x, w, info


@pytest.mark.parametrize("lib", [lib for lib in TORCH_LIBS if lib != "neurosim_torch"])
def test_every_torch_library_gives_the_torch_path_spike_count(lib, reference):
    point, x, w, ref = reference
    info = run_torch_case(lib, point)
    assert info["spikes"] == ref["spikes"]
    assert info["events"] == ref["events"] == int(x.sum()) * point["n_out"]


def test_default_backend_runs_the_lif_compiled_with_the_torch_path_spikes():
    """The benchmark's own configuration (a = 0.9) over 40 steps (auto keeps runs under 20 steps
    on the torch path): the compiled gather and LIF promise the torch path's arithmetic, spike for spike."""
    cfg = S.defaults(quick=True)
    cfg.update(T=40, seed=1, threads=1)
    point = S.point_config(cfg, 96, 0.1)
    ours, ref = run_torch_case("neurosim", point), run_torch_case("neurosim_torch", point)
    assert ours["placement"] == {"fc": "compiled", "lif": "compiled"} and ours["dense_path"] == "event"
    assert ref["placement"] == {"fc": "torch", "lif": "torch"}
    assert ours["spikes"] == ref["spikes"] > 0


def test_brian2_network_gives_the_torch_path_spike_count(reference):
    """The network the benchmark hands to cpp_standalone, run on Brian2's numpy target (float64)."""
    b2 = pytest.importorskip("brian2")
    point, x, w, ref = reference
    saved = b2.prefs.codegen.target, b2.defaultclock.dt        # make_brian2 sets dt globally
    try:
        b2.prefs.codegen.target = "numpy"
        network, mon = S.make_brian2(x, w, point)
        network.run(point["T"] * point["dt"] * b2.second)
        assert int(mon.num_spikes) == ref["spikes"]
    finally:
        b2.prefs.codegen.target, b2.defaultclock.dt = saved


def test_weight_recipe_keeps_the_output_at_a_few_percent():
    """The benchmark's own configuration (a = 0.9, grid 2^-14) at the sparsest and densest input."""
    cfg = S.defaults(quick=True)
    cfg.update(T=60, seed=0, threads=1)
    for p in (0.001, 0.2):
        point = S.point_config(cfg, 1024, p)
        frac = run_torch_case("neurosim_torch", point)["spikes"] / (point["T"] * point["n_out"])
        assert 0.01 < frac < 0.1, f"p = {p}: output spike fraction {frac:.4f}"


def test_bad_settings_raise_before_work():
    cfg = S.defaults(quick=True)
    for key, value in (("densities", [0.0]), ("densities", [1.5]), ("sizes", [0]), ("T", 0)):
        with pytest.raises(ValueError, match=key):
            S.check_config(dict(cfg, **{key: value}))
    with pytest.raises(ValueError, match="unknown libraries"):
        S.run_grid(dict(cfg, threads=1, seed=0), ["brain3"])


def test_spike_agreement_flags_disagreement_but_not_brian2():
    def res(lib, spikes):
        return {"library": lib, "n": 8, "p_in": 0.1, "info": {"spikes": spikes}}
    ok = S.spike_agreement([res("neurosim", 5), res("spikingjelly", 5), res("brian2", 6)])
    bad = S.spike_agreement([res("neurosim", 5), res("spikingjelly", 4), res("brian2", 5)])
    assert ok[0]["float32_agree"] and not bad[0]["float32_agree"]


# ---------------------------------------------------------------------------- the fit
def synthetic(c_step_ns, c_event_ns, noise=None):
    steps = np.array([200, 200, 200, 100, 100, 400, 400, 200], dtype=float)
    events = np.array([2e5, 2e6, 3e7, 1e8, 5e5, 6e8, 3e6, 1e9])
    times = (c_step_ns * steps + c_event_ns * events) * 1e-9
    return steps, events, times * (1.0 + (noise if noise is not None else 0.0))


def test_fit_recovers_known_constants():
    fit = P.fit_linear_cost(*synthetic(38_000.0, 0.12))
    assert fit["fixed_per_step_ns"] == pytest.approx(38_000.0, rel=1e-9)
    assert fit["cost_per_event_ns"] == pytest.approx(0.12, rel=1e-9)
    assert fit["rel_rms_residual"] < 1e-9 and fit["points"] == 8
    noise = np.array([0.05, -0.04, 0.03, -0.05, 0.02, -0.03, 0.04, -0.02])
    fit = P.fit_linear_cost(*synthetic(38_000.0, 0.12, noise))
    assert fit["fixed_per_step_ns"] == pytest.approx(38_000.0, rel=0.1)
    assert fit["cost_per_event_ns"] == pytest.approx(0.12, rel=0.1)
    assert 0.01 < fit["rel_rms_residual"] < 0.06


def test_fit_of_results_matches_the_array_fit_and_rejects_bad_input():
    steps, events, times = synthetic(10_000.0, 0.5)
    results = [{"T": int(s), "n": 64 if i % 2 else 128, "info": {"events": e}, "median_s": t}
               for i, (s, e, t) in enumerate(zip(steps, events, times))]
    dense = {"T": 200, "n": 64, "info": {"events": 5e9, "dense_path": "dense"}, "median_s": 100.0}
    fit = P.fit_cost(results + [dense])      # a dense-matmul point does not follow the event model
    assert fit["cost_per_event_ns"] == pytest.approx(0.5, rel=1e-9)
    assert set(fit["per_n"]) == {"64", "128"} and fit["dense_points_excluded"] == 1
    with pytest.raises(ValueError, match="at least 2"):
        P.fit_linear_cost([200], [1e6], [0.01])
    with pytest.raises(ValueError, match="> 0"):
        P.fit_linear_cost([200, 200], [1e6, 2e6], [0.01, 0.0])


# ---------------------------------------------------------------------------- the plot
def fake_data():
    results = []
    for lib, c_step, c_event in (("neurosim", 20_000.0, 0.1), ("spikingjelly", 150_000.0, 1.0),
                                 ("brian2", 5_000.0, 0.5)):
        for n in (64, 256):
            for p in (0.01, 0.1):
                events = 200 * p * n * n
                results.append({"library": lib, "label": lib, "n": n, "p_in": p, "T": 200,
                                "median_s": (c_step * 200 + c_event * events) * 1e-9,
                                "info": {"events": events, "spikes": 10}, "loadavg_rounds": [[1.0, 1.0, 1.0]]})
    fit = P.fit_cost([r for r in results if r["library"] == "neurosim"])
    return {"results": results, "fit_neurosim": fit, "config": {"T": 200, "threads": 1},
            "environment": {"usable_cores": 2}}


def test_plot_writes_a_png_atomically(tmp_path):
    out = tmp_path / "scaling.png"
    P.plot_scaling(fake_data(), out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert os.listdir(tmp_path) == ["scaling.png"]            # no temporary file left


def test_failed_plot_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import matplotlib.figure
    out = tmp_path / "scaling.png"
    out.write_bytes(b"old")

    def broken(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        P.plot_scaling(fake_data(), out)
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["scaling.png"]


def test_plot_rejects_a_bad_path_before_work(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        P.plot_scaling(fake_data(), tmp_path / "scaling.jpg")
    with pytest.raises(ValueError, match="folder"):
        P.plot_scaling(fake_data(), tmp_path / "missing" / "scaling.png")
