"""Plots of recordings: spike rasters and state-variable traces (matplotlib).

Library code never calls ``plt.show()`` and never touches pyplot's global figure list: each
function builds a :class:`matplotlib.figure.Figure` (or draws into the ``ax`` given), returns the
figure, and saves it to ``path`` when one is given. Saving writes a temporary file in the same
directory and renames it, so a crash never leaves a half-written image; the format follows the
extension (``.png``, ``.pdf``, ``.svg``, ...) and is checked before anything is drawn.
Tensors (any device) and numpy arrays are accepted.

Example::

    >>> rec = sim.run(x, monitors=[Monitor("hidden", ("spikes", "v"))]).records["hidden"]
    >>> fig = raster(rec["spikes"], dt=1e-3, batch=0, path="raster.png")
    >>> fig = plot_recording(rec, path="hidden.pdf", dt=1e-3)
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import torch

from .atomic import atomic_path
from .monitor import Recording, load_recording, spike_times
from .validation import check_choice, check_int

__all__ = ["raster", "traces", "plot_recording", "save_figure"]

_TIME_UNITS = {"s": 1.0, "ms": 1e3}
#: units of well-known state variables, used for axis labels
VARIABLE_UNITS = {"v": "V", "i": "A", "refractory": "steps", "w": "A", "a": "A"}


# ---------------------------------------------------------------------- helpers
def _check_path(path) -> Optional[str]:
    """Absolute path with a supported image extension in an existing directory (or None)."""
    if path is None:
        return None
    from matplotlib.backend_bases import FigureCanvasBase
    path = os.path.abspath(os.fspath(path))
    ext = os.path.splitext(path)[1][1:].lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if ext not in supported:
        raise ValueError(f"cannot save a figure as {path!r}: extension {ext!r} is not one of {sorted(supported)}")
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"cannot save a figure as {path!r}: directory {os.path.dirname(path)!r} does not exist")
    return path


def save_figure(fig, path, dpi: Optional[float] = None) -> str:
    """Save ``fig`` to ``path`` atomically (temporary file in the same directory, then rename).

    The format follows the extension. Returns the absolute path.

    Shapes: not applicable (``fig`` is a matplotlib Figure).

    Example::

        >>> save_figure(raster(spikes, dt=1e-3), "raster.svg")
    """
    path = _check_path(path)
    if path is None:
        raise ValueError("save_figure: path must be a file name, got None")
    ext = os.path.splitext(path)[1][1:].lower()
    with atomic_path(path, fsync=False) as tmp:
        fig.savefig(tmp, format=ext, dpi=dpi)
    return path


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _as_2d(values, batch: int, where: str) -> torch.Tensor:
    """[T, N] as is; [T, B, *shape] -> sample ``batch`` flattened to [T, N]; on the CPU, float64."""
    try:
        x = torch.as_tensor(values)
    except Exception:
        raise TypeError(f"{where}: expected a tensor or array, got {type(values).__name__}") from None
    x = x.detach().cpu()
    if x.dim() < 2:
        raise ValueError(f"{where}: expected [T, N] or [T, B, *shape], got shape {tuple(x.shape)}")
    if x.dim() >= 3:
        if isinstance(batch, bool) or not isinstance(batch, int) or not -x.shape[1] <= batch < x.shape[1]:
            raise ValueError(f"{where}: batch index {batch!r} out of range for batch size {x.shape[1]}")
        x = x[:, batch].reshape(x.shape[0], -1)
    return x.to(torch.float64)


def _time_axis(steps: int, dt, times, where: str) -> torch.Tensor:
    if times is not None:
        t = torch.as_tensor(times, dtype=torch.float64).detach().cpu().reshape(-1)
        if t.numel() != steps:
            raise ValueError(f"{where}: times has {t.numel()} entries for {steps} time steps")
        return t
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0:
        raise ValueError(f"{where}: give dt (seconds per row, > 0) or times, got dt={dt!r}")
    return torch.arange(steps, dtype=torch.float64) * float(dt)


def _check_time_unit(time_unit, where):
    return _TIME_UNITS[check_choice(time_unit, sorted(_TIME_UNITS), f"{where}: time_unit")]


# ---------------------------------------------------------------------- plots
def raster(spikes, dt: Optional[float] = None, batch: int = 0, times=None, ax=None, path=None,
           title: Optional[str] = None, time_unit: str = "s", color: str = "k", markersize: float = 4.0,
           figsize=(6.0, 3.0)):
    """Spike raster: a tick at (time, neuron) for every non-zero entry.

    time of row k = ``times[k]`` [s] if given, else ``k * dt``; neuron = index into the
    flattened per-sample shape. Drawn as one Line2D (markers only) in ``ax``.

    Shapes: ``spikes`` ``[T, N]`` or ``[T, B, *shape]`` (sample ``batch`` is drawn).

    Example::

        >>> fig = raster(result.output, dt=1e-3, batch=0, path="out.png", time_unit="ms")
    """
    where = "raster"
    path = _check_path(path)
    scale = _check_time_unit(time_unit, where)
    s = _as_2d(spikes, batch, where)
    t_axis = _time_axis(s.shape[0], dt, times, where)
    t, n = spike_times(s, dt=1.0, times=t_axis)
    fig, ax = _new_axes(ax, figsize)
    ax.plot((t * scale).numpy(), n.numpy(), linestyle="none", marker="|", markersize=markersize, color=color)
    if t_axis.numel():
        step = float(t_axis[1] - t_axis[0]) if t_axis.numel() > 1 else (dt or 1.0)
        ax.set_xlim(float(t_axis[0]) * scale, (float(t_axis[-1]) + step) * scale)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel(f"time [{time_unit}]")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    if path:
        save_figure(fig, path)
    return fig


def traces(values, dt: Optional[float] = None, neurons: Optional[Sequence[int]] = None, batch: int = 0,
           times=None, ax=None, path=None, ylabel: str = "value", units: str = "",
           title: Optional[str] = None, threshold: Optional[float] = None, time_unit: str = "s",
           max_traces: int = 10, figsize=(6.0, 3.0)):
    """Time courses of a variable (membrane, current, ...), one line per selected neuron.

    ``neurons``: flat indices to draw (default the first ``max_traces``); ``threshold`` draws a
    dashed horizontal line (e.g. ``v_threshold``). Times as in :func:`raster`.

    Shapes: ``values`` ``[T, N]`` or ``[T, B, *shape]`` (sample ``batch`` is drawn).

    Example::

        >>> fig = traces(rec["v"], dt=1e-3, neurons=[0, 3], ylabel="v", units="V", threshold=1.0)
    """
    where = "traces"
    path = _check_path(path)
    scale = _check_time_unit(time_unit, where)
    x = _as_2d(values, batch, where)
    t_axis = _time_axis(x.shape[0], dt, times, where)
    n_total = x.shape[1]
    if neurons is None:
        neurons = list(range(min(n_total, check_int(max_traces, f"{where}: max_traces", minimum=1))))
    else:
        neurons = [int(i) for i in neurons]
        bad = [i for i in neurons if not 0 <= i < n_total]
        if bad:
            raise ValueError(f"{where}: neuron indices {bad} out of range for {n_total} neurons")
    fig, ax = _new_axes(ax, figsize)
    tt = (t_axis * scale).numpy()
    for i in neurons:
        ax.plot(tt, x[:, i].numpy(), label=f"neuron {i}", linewidth=1.0)
    if threshold is not None:
        ax.axhline(float(threshold), linestyle="--", color="0.4", linewidth=0.8, label="threshold")
    ax.set_xlabel(f"time [{time_unit}]")
    ax.set_ylabel(f"{ylabel} [{units}]" if units else ylabel)
    if 0 < len(neurons) <= 10:
        ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    if path:
        save_figure(fig, path)
    return fig


def _is_spike_train(name: str, x: torch.Tensor) -> bool:
    if name == "spikes":
        return True
    if name != "output" or x.numel() == 0:
        return False
    return bool(((x == 0) | (x == 1)).all())


def plot_recording(recording, path=None, dt: Optional[float] = None, batch: int = 0,
                   variables: Optional[Sequence[str]] = None, max_traces: int = 10,
                   title: Optional[str] = None, time_unit: str = "s"):
    """One panel per variable of a recording: a raster for spikes, traces for state variables.

    ``recording``: a :class:`Recording`, an HDF5 recording's path, a streaming monitor's record
    ``{"path": ...}``, or an in-memory monitor record ``{var: [n, B, ...], "t", "time"}``
    (``time`` is used; without it ``t * dt``). ``"spikes"`` and a 0/1 ``"output"`` are drawn as
    rasters, everything else as traces of at most ``max_traces`` neurons.

    Shapes: each variable ``[n_recorded, batch, *shape]``; sample ``batch`` is drawn.

    Example::

        >>> plot_recording(result.records["hidden"], path="hidden.png")
        >>> plot_recording("hidden.h5", path="hidden.pdf", variables=["spikes"])
    """
    where = "plot_recording"
    path = _check_path(path)
    _check_time_unit(time_unit, where)
    if isinstance(recording, (str, os.PathLike)):
        recording = load_recording(recording)
    elif isinstance(recording, dict) and set(recording) == {"path"}:
        recording = load_recording(recording["path"])
    if isinstance(recording, Recording):
        data: Dict[str, Any] = dict(recording.variables)
        times = recording.time
        label = recording.node
    elif isinstance(recording, dict):
        data = {k: v for k, v in recording.items() if k not in ("t", "time")}
        if "time" in recording:
            times = recording["time"]
        elif "t" in recording and dt is not None:
            times = torch.as_tensor(recording["t"], dtype=torch.float64) * float(dt)
        else:
            times = None
        label = None
    else:
        raise TypeError(f"{where}: expected a Recording, a path or a monitor record dict, "
                        f"got {type(recording).__name__}")
    names = list(data) if variables is None else list(variables)
    missing = [v for v in names if v not in data]
    if missing:
        raise ValueError(f"{where}: no variable(s) {missing} in the recording (it has {sorted(data)})")
    if not names:
        raise ValueError(f"{where}: the recording holds no variables")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.0, 2.2 * len(names) + 0.4), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        x = torch.as_tensor(data[name]).detach().cpu()
        if _is_spike_train(name, x):
            raster(x, dt=dt, batch=batch, times=times, ax=ax, title=name, time_unit=time_unit)
        else:
            traces(x, dt=dt, batch=batch, times=times, ax=ax, ylabel=name, units=VARIABLE_UNITS.get(name, ""),
                   max_traces=max_traces, title=name, time_unit=time_unit)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    if title or label:
        fig.suptitle(title or f"node {label!r}")
    if path:
        save_figure(fig, path)
    return fig
