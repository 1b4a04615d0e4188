"""The fit of neurosim's simulation cost and the plot of the scaling benchmark
(:mod:`benchmarks.bench_scaling`): time against synaptic events, log-log, one colour and marker
per library, N by marker size and line style, neurosim's fitted cost line.

Cost model, fitted by least squares over neurosim's (T_i, E_i, t_i) points::

    t = c_step T + c_event E          c_step [s/step], c_event [s/event]

minimising the *relative* residuals sum_i ((t_i - c_step T_i - c_event E_i) / t_i)^2 (the points
span three decades of time; absolute residuals would fit only the slowest ones). Reported in
ns/step and ns/event. The grid has one T, so c_step T also holds each run's fixed overhead (graph
walk, block set-up), and the per-neuron update cost, which grows with N: :func:`fit_cost` also
fits each N alone.

Re-plot a stored run: ``python -m benchmarks.plot_scaling benchmarks/scaling.json benchmarks/scaling.png``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

STYLE = {  # library -> (colour, marker)
    "neurosim": ("tab:blue", "o"), "neurosim_torch": ("tab:cyan", "s"),
    "spikingjelly": ("tab:orange", "^"), "snntorch": ("tab:green", "v"), "norse": ("tab:purple", "D"),
    "brian2": ("tab:red", "P"),
}
LINESTYLES = ("-", "--", ":", "-.")


def fit_linear_cost(steps: Sequence[float], events: Sequence[float], times: Sequence[float]) -> Dict[str, float]:
    """Least-squares fit of ``times = c_step * steps + c_event * events`` with relative residuals.

    Shapes: three sequences of the same length K >= 2 (steps T_i, synaptic events E_i, seconds t_i,
    every t_i > 0). Returns ``fixed_per_step_ns`` (c_step in ns/step), ``cost_per_event_ns``
    (c_event in ns/event), ``rel_rms_residual`` (root mean square of (t_i - fit_i) / t_i) and
    ``points`` (K)."""
    t = np.asarray(times, dtype=np.float64)
    a = np.stack([np.asarray(steps, dtype=np.float64), np.asarray(events, dtype=np.float64)], axis=1)
    if t.ndim != 1 or a.shape[0] != t.shape[0]:
        raise ValueError(f"fit_linear_cost: steps, events and times must have one length, got "
                         f"{len(steps)}, {len(events)}, {len(times)}")
    if t.shape[0] < 2:
        raise ValueError(f"fit_linear_cost: needs at least 2 points, got {t.shape[0]}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError("fit_linear_cost: every time must be finite and > 0")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("fit_linear_cost: steps and events must be finite and >= 0")
    coef, *_ = np.linalg.lstsq(a / t[:, None], np.ones_like(t), rcond=None)
    rel = (t - a @ coef) / t
    return {"fixed_per_step_ns": float(coef[0] * 1e9), "cost_per_event_ns": float(coef[1] * 1e9),
            "rel_rms_residual": float(np.sqrt(np.mean(rel ** 2))), "points": int(t.shape[0])}


def fit_cost(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """:func:`fit_linear_cost` over benchmark results (``T``, ``info["events"]``, ``median_s``),
    plus the same fit per N (``per_n``, where N has >= 2 points: the per-step cost grows with N).
    Points where neurosim's Dense took the dense matmul (``info["dense_path"] == "dense"``: its cost
    is N^2 T, not events) are left out and counted in ``dense_points_excluded``."""
    done = [r for r in results if not r.get("error")]
    ok = [r for r in done if r.get("info", {}).get("dense_path", "event") == "event"]
    fit = fit_linear_cost([r["T"] for r in ok], [r["info"]["events"] for r in ok], [r["median_s"] for r in ok])
    per_n = {}
    for n in sorted({r["n"] for r in ok if "n" in r}):
        rs = [r for r in ok if r.get("n") == n]
        if len(rs) >= 2:
            per_n[str(n)] = fit_linear_cost([r["T"] for r in rs], [r["info"]["events"] for r in rs],
                                            [r["median_s"] for r in rs])
    fit["per_n"] = per_n
    fit["dense_points_excluded"] = len(done) - len(ok)
    fit["events_range"] = [min(r["info"]["events"] for r in ok), max(r["info"]["events"] for r in ok)]
    return fit


def check_plot_path(path) -> None:
    """Raise ValueError unless ``path`` names a ``.png`` file in an existing folder."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"plot path must end in .png, got {str(path)!r}")
    if not p.resolve().parent.is_dir():
        raise ValueError(f"plot folder does not exist: {str(p.resolve().parent)!r}")


def plot_scaling(data: Dict[str, Any], path) -> str:
    """Write the PNG of ``data`` (the benchmark's JSON: ``results``, ``fit_neurosim``, ``config``,
    ``environment``) to ``path`` atomically (temporary name, then rename). x: synaptic events
    (input spikes x N), y: median simulation time [s]; returns ``path``."""
    check_plot_path(path)
    results = [r for r in data.get("results", []) if not r.get("error")]
    if not results:
        raise ValueError("plot_scaling: no successful results to plot")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from neurosim.atomic import atomic_path
    sizes = sorted({r["n"] for r in results})
    size_of = {n: 25 + 45 * i for i, n in enumerate(sizes)}
    style_of = {n: LINESTYLES[i % len(LINESTYLES)] for i, n in enumerate(sizes)}
    fig, ax = plt.subplots(figsize=(11.0, 6.0))
    libs = [lib for lib in STYLE if any(r["library"] == lib for r in results)]
    libs += sorted({r["library"] for r in results} - set(libs))
    for lib in libs:
        colour, marker = STYLE.get(lib, ("black", "x"))
        label = next(r["label"] for r in results if r["library"] == lib)
        for n in sizes:
            rs = sorted((r for r in results if r["library"] == lib and r["n"] == n), key=lambda r: r["info"]["events"])
            if not rs:
                continue
            ev = [r["info"]["events"] for r in rs]
            ts = [r["median_s"] for r in rs]
            ax.plot(ev, ts, linestyle=style_of[n], color=colour, linewidth=0.8, alpha=0.6)
            ax.scatter(ev, ts, s=size_of[n], color=colour, marker=marker, zorder=3,
                       label=label if n == sizes[0] else None)
    fit = data.get("fit_neurosim")
    ours = [r for r in results if r["library"] == "neurosim"]
    if fit and ours:
        lo, hi = fit.get("events_range") or (min(r["info"]["events"] for r in ours),
                                             max(r["info"]["events"] for r in ours))
        ev = np.geomspace(lo, hi, 100)
        steps = ours[0]["T"]
        ax.plot(ev, (fit["fixed_per_step_ns"] * steps + fit["cost_per_event_ns"] * ev) * 1e-9, color="black",
                linewidth=1.5, label=f"neurosim fit: {fit['fixed_per_step_ns']:.0f} ns/step x T + "
                                      f"{fit['cost_per_event_ns']:.3f} ns/event")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("synaptic events (input spikes x N fan-out)")
    ax.set_ylabel("simulation time [s] (median)")
    cfg = data.get("config", {})
    env = data.get("environment", {})
    loads = [x[0] for r in results for x in r.get("loadavg_rounds", [])]
    load = f", load {min(loads):.1f}-{max(loads):.1f}" if loads else ""
    ax.set_title(f"Simulation scaling: input [T={cfg.get('T', '?')}, 1, N] -> Dense N x N -> LIF, float32, "
                 f"{cfg.get('threads', '?')} thread(s)\n{env.get('usable_cores', '?')} cores{load}"
                 f"{' (quick run)' if cfg.get('quick') else ''}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    first = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.add_artist(first)
    handles = [Line2D([], [], color="grey", linestyle=style_of[n], marker="o", markersize=(size_of[n]) ** 0.5,
                      label=f"N = {n}") for n in sizes]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.02, 0.0), fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.68, top=0.9, bottom=0.1)
    with atomic_path(path, fsync=False) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return str(path)


def main(argv=None) -> str:
    """``python -m benchmarks.plot_scaling RESULTS.json OUT.png``: re-plot a stored run."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) != 2:
        raise SystemExit("usage: python -m benchmarks.plot_scaling RESULTS.json OUT.png")
    check_plot_path(argv[1])
    data = json.loads(Path(argv[0]).read_text())
    return plot_scaling(data, argv[1])


if __name__ == "__main__":
    main()
