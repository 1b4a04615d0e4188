"""The PNG figures of a ``neurosim compare`` report, drawn from :func:`~neurosim.report_figures.aggregate`'s dict.

Each function returns PNG bytes (matplotlib's object API, never pyplot's global figures):

* :func:`curves_png`: one panel per history key (``train_loss``, ``val_accuracy``, ...), one line
  per variant, the mean over seeds with a band of +- one std over seeds;
* :func:`metric_png`: the test metric per variant, bar = mean over seeds, error bar = std, dots =
  single seeds, a dotted line at chance and a dashed line per published figure;
* :func:`energy_png`: energy per sample per variant under each energy model (log scale);
* :func:`raster_png`: the spikes ``[T, neurons]`` of one test sample (:func:`neurosim.plot.raster`).

Example::

    >>> png = metric_png(aggregate(results))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
"""
from __future__ import annotations

import io
from typing import Any, Dict

__all__ = ["curves_png", "metric_png", "energy_png", "raster_png", "KIND_COLORS"]

#: one colour family per variant kind
KIND_COLORS = {"conventional": "tab:blue", "spiking": "tab:orange", "converted": "tab:green", "hybrid": "tab:purple"}
_DPI = 90


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _colors(variants):
    """A distinct colour per variant (matplotlib's tab10 cycle, in order)."""
    from matplotlib import colormaps
    cmap = colormaps["tab10"]
    return {v["name"]: cmap(i % 10) for i, v in enumerate(variants)}


def curves_png(data: Dict[str, Any]) -> bytes:
    """Training curves: one panel per history key, mean over seeds +- std band per variant."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    keys = []
    for v in data["variants"]:
        keys += [k for k in v["history"] if k not in keys]
    keys = keys or ["(no history)"]
    fig = Figure(figsize=(4.2 * len(keys), 3.2))
    colors = _colors(data["variants"])
    for j, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), j + 1)
        for v in data["variants"]:
            if key not in v["history"] or not v["history"][key]:
                continue
            mean = np.asarray(v["history"][key], dtype=float)
            epochs = np.arange(1, len(mean) + 1)
            per_seed = [h[key][:len(mean)] for h in v["history_per_seed"] if len(h.get(key, [])) >= len(mean)]
            ax.plot(epochs, mean, marker="o", markersize=3, color=colors[v["name"]], label=v["name"])
            if len(per_seed) > 1:
                std = np.asarray(per_seed, dtype=float).std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=colors[v["name"]], alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
        if j == 0:
            ax.legend(fontsize=7)
    return _png(fig)


def metric_png(data: Dict[str, Any]) -> bytes:
    """Bars of the mean test metric per variant, std error bars, single seeds as dots, chance and
    published figures as horizontal lines."""
    from matplotlib.figure import Figure
    variants = data["variants"]
    fig = Figure(figsize=(max(4.5, 1.1 * len(variants) + 2.5), 3.4))
    ax = fig.add_subplot()
    xs = list(range(len(variants)))
    means = [v["metric"]["mean"] for v in variants]
    stds = [v["metric"]["std"] for v in variants]
    ax.bar(xs, means, yerr=stds, capsize=4, color=[KIND_COLORS.get(v["kind"], "0.5") for v in variants], alpha=0.85)
    for x, v in zip(xs, variants):
        seeds = v["metric"]["per_seed"]
        ax.scatter([x] * len(seeds), seeds, color="k", s=10, zorder=3)
    if data.get("chance") is not None:
        ax.axhline(data["chance"], color="0.4", linestyle=":", linewidth=1, label=f"chance {data['chance']:.3g}")
    for k, ref in enumerate(data.get("references", [])):
        ax.axhline(ref["value"], color=f"C{(k + 3) % 10}", linestyle="--", linewidth=1,
                   label=f"{ref['model']} ({ref['source']}): {ref['value']:.3g}")
    ax.set_xticks(xs, [v["name"] for v in variants], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(data["metric_name"])
    ax.set_title(f"{data['example']}: {data['metric_name']} over {len(data['seeds'])} seed(s)")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _png(fig)


def energy_png(data: Dict[str, Any]) -> bytes:
    """Grouped bars: energy per sample [nJ] of each variant under each energy model (log y)."""
    from matplotlib.figure import Figure
    variants = data["variants"]
    presets = list(data["energy_models"])
    fig = Figure(figsize=(max(4.5, 1.2 * len(variants) + 2.5), 3.4))
    ax = fig.add_subplot()
    width = 0.8 / len(presets)
    for k, preset in enumerate(presets):
        xs = [i + (k - (len(presets) - 1) / 2) * width for i in range(len(variants))]
        values = [max(v["energy_per_sample"][preset]["mean"] * 1e9, 1e-12) for v in variants]
        ax.bar(xs, values, width=width, label=preset, color=f"C{k}", alpha=0.85)
    ax.set_yscale("log")
    ax.set_xticks(range(len(variants)), [v["name"] for v in variants], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("energy per sample [nJ]")
    ax.set_title("energy estimate per inference (see the table for the per-operation energies)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def raster_png(raster, title: str) -> bytes:
    """Raster of one sample, ``raster`` ``[T, neurons]`` (bool or 0/1), x axis in steps."""
    import torch
    from .plot import raster as draw_raster
    spikes = torch.as_tensor(raster).detach().cpu().to(torch.float32)
    if spikes.dim() != 2:
        raise ValueError(f"raster_png: raster must be [T, neurons], got shape {tuple(spikes.shape)}")
    fig = draw_raster(spikes, dt=1.0, title=title, figsize=(6.0, 2.8), markersize=3.0)
    from matplotlib.ticker import MaxNLocator
    ax = fig.axes[0]
    ax.set_xlabel("time step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig)
