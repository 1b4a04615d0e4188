"""Plots: drawn data equals the input, files are saved atomically, pyplot is left alone."""
import os

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import plot


def spikes():
    s = torch.zeros(6, 2, 3)
    s[0, 1, 2] = s[3, 1, 0] = s[5, 1, 1] = 1
    s[2, 0, 0] = 1
    return s


def test_raster_draws_one_tick_per_spike_and_leaves_pyplot_alone():
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    fig = plot.raster(spikes(), dt=1e-3, batch=1, title="hidden")
    assert plt.get_fignums() == before
    (line,) = fig.axes[0].lines
    assert np.allclose(line.get_xdata(), [0.0, 3e-3, 5e-3]) and list(line.get_ydata()) == [2, 0, 1]
    assert fig.axes[0].get_title() == "hidden"
    fig_ms = plot.raster(spikes().numpy()[:, 0], dt=1e-3, time_unit="ms")       # numpy [T, N]
    (line,) = fig_ms.axes[0].lines
    assert np.allclose(line.get_xdata(), [2.0]) and list(line.get_ydata()) == [0]
    assert fig_ms.axes[0].get_xlabel() == "time [ms]"


def test_traces_draw_the_selected_neurons():
    v = torch.randn(7, 2, 2, 2)                      # [T, B, 2, 2] -> 4 flat neurons
    fig = plot.traces(v, dt=2e-3, neurons=[3, 0], batch=1, ylabel="v", units="V", threshold=1.0)
    ax = fig.axes[0]
    lines = ax.lines
    assert len(lines) == 3                           # two neurons and the threshold
    assert np.allclose(lines[0].get_ydata(), v[:, 1].reshape(7, 4)[:, 3].numpy())
    assert np.allclose(lines[1].get_ydata(), v[:, 1, 0, 0].numpy())
    assert np.allclose(lines[0].get_xdata(), np.arange(7) * 2e-3)
    assert np.allclose(lines[2].get_ydata(), [1.0, 1.0])
    assert ax.get_ylabel() == "v [V]"
    assert len(plot.traces(torch.randn(5, 30), dt=1e-3, max_traces=4).axes[0].lines) == 4


def test_figures_are_saved_atomically_and_bad_paths_fail_first(tmp_path):
    path = tmp_path / "raster.png"
    plot.raster(spikes(), dt=1e-3, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["raster.png"]
    reference = tmp_path.parent / (tmp_path.name + "-plain")
    reference.write_text("")
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    reference.unlink()
    with pytest.raises(ValueError, match="extension 'txt'"):
        plot.raster(spikes(), dt=1e-3, path=tmp_path / "raster.txt")
    with pytest.raises(ValueError, match="does not exist"):
        plot.traces(torch.zeros(3, 2), dt=1e-3, path=tmp_path / "missing" / "t.png")
    assert os.listdir(tmp_path) == ["raster.png"]


@pytest.mark.parametrize("call, match", [
    (lambda: plot.raster(spikes()), "give dt"),
    (lambda: plot.raster(torch.zeros(5), dt=1e-3), r"\[T, N\]"),
    (lambda: plot.raster(spikes(), dt=1e-3, batch=2), "batch index 2"),
    (lambda: plot.raster(spikes(), times=[0, 1]), "times has 2 entries for 6"),
    (lambda: plot.traces(torch.zeros(4, 3), dt=1e-3, neurons=[5]), r"indices \[5\] out of range"),
    (lambda: plot.traces(torch.zeros(4, 3), dt=1e-3, time_unit="h"), "time_unit"),
])
def test_bad_plot_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def small_run(monitor):
    gen = torch.Generator().manual_seed(0)
    g = ns.Graph.sequential(4, ("fc", ns.Dense(4, 3, weight=torch.rand(3, 4, generator=gen) * 3)),
                            ("lif", ns.Population("lif", 3, ns.LIFParams(tau_mem=5e-3))))
    x = (torch.rand(12, 2, 4, generator=gen) < 0.5).float()
    return ns.Simulator(g, dt=1e-3).run(x, monitors=[monitor])


def test_plot_recording_raster_for_spikes_traces_for_states(tmp_path):
    rec = small_run(ns.Monitor("lif", ("spikes", "v"), every=2)).records["lif"]
    assert rec["spikes"].sum() > 0
    fig = plot.plot_recording(rec, path=tmp_path / "rec.svg")
    raster_ax, trace_ax = fig.axes
    (ticks,) = raster_ax.lines
    t, n = ns.spike_times(rec["spikes"], dt=1e-3, batch=0, times=rec["time"])
    assert np.allclose(ticks.get_xdata(), t.numpy()) and list(ticks.get_ydata()) == n.tolist()
    assert len(trace_ax.lines) == 3
    assert np.allclose(trace_ax.lines[0].get_xdata(), rec["time"].numpy())       # every=2: t = 0, 2, 4 ... ms
    assert np.allclose(trace_ax.lines[1].get_ydata(), rec["v"][:, 0, 1].numpy())
    assert (tmp_path / "rec.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match=r"no variable\(s\) \['u'\]"):
        plot.plot_recording(rec, variables=["u"])


def test_plot_recording_from_a_file(tmp_path):
    path = tmp_path / "lif.h5"
    with ns.Monitor("lif", ("output", "v"), path=path) as mon:
        result = small_run(mon)
    assert result.records["lif"] == {"path": str(path)}
    for source in (path, result.records["lif"], ns.load_recording(path)):
        fig = plot.plot_recording(source, batch=1)
        assert [ax.get_title() for ax in fig.axes] == ["output", "v"]
        assert fig.axes[0].lines[0].get_marker() == "|"                        # 0/1 output -> raster
