"""The deployment section of a ``neurosim compare`` report: a trained spiking variant run through
the backends and compared with the engine spike for spike.

:func:`deploy` ``(sim, inputs, backends, folder, name)`` returns one JSON-able dict with a row per
backend (:data:`ROW_KEYS`), never raising for a backend's failure (it becomes a row with status
``"error"``):

* float backends (``saved``, ``nir``, ``norse``, ``brian2``, ... any runner of
  :mod:`neurosim.hardware.conform`): :func:`~neurosim.hardware.conform.conform` on the trained
  network and ``inputs`` ``[T, batch, ...]``;
* ``loihi``: :func:`~neurosim.hardware.loihi.quantize` (``max_weight_exp=1``, what netx files
  hold) to the fixed-point Loihi model, compared with the float network: population ``p`` of the
  fixed-point network runs ``k_p`` steps late (one step per synapse layer, as on Loihi), so float
  step ``t`` is compared with fixed-point step ``t + k_p`` over ``t < T - k_p``; the netx file of
  the fixed-point network is written into ``folder`` (``<name>.net``);
* ``netx`` / ``lava``: the fixed-point network on Lava's own CPU simulation (netx file, or Lava
  processes) compared with the engine's fixed-point run, only where the Lava environment is
  already built (:func:`lava_ready`; it is never built here); otherwise a row says why not.

Row counts: ``exact`` spikes at the same step and neuron, ``total`` the reference's spikes,
``within_one`` pairs one step apart, ``differing`` the rest (see :mod:`neurosim.hardware.conform`).

Example::

    >>> section = deploy(sim, x[:, :4], ("saved", "nir", "loihi"), "report/deploy", "snn")
    >>> [(r["backend"], r["status"], r["exact"], r["total"]) for r in section["rows"]]
"""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["deploy", "lava_ready", "DEFAULT_BACKENDS", "LOIHI_STEPS", "ROW_KEYS"]

#: what the report runs by default: float backends, then the Loihi path
DEFAULT_BACKENDS = ("saved", "nir", "norse", "brian2", "loihi", "netx")
#: names that run on the quantised network (``loihi`` is the quantisation itself)
LOIHI_STEPS = ("loihi", "netx", "lava")
ROW_KEYS = ("backend", "network", "status", "exact", "total", "within_one", "differing", "membrane_error",
            "wall_s", "reason")

_ROOT = Path(__file__).resolve().parents[1]


def lava_ready() -> Optional[str]:
    """None when the Lava environment is built (its stamp exists), else why not. Only looks:
    ``scripts/build_lava_env.py``'s cache key and folder are computed, nothing is built."""
    script = _ROOT / "scripts" / "build_lava_env.py"
    if not script.is_file():
        return f"the Lava build script {script} is not here"
    try:
        spec = importlib.util.spec_from_file_location("_neurosim_build_lava_env", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        key = module.cache_key()
        env = Path(os.environ.get("LAVA_ENV") or module.cache_root() / f"lava-env-{key}").expanduser()
    except Exception as e:  # a broken script is a reason, not a crash
        return f"cannot locate the Lava environment ({type(e).__name__}: {e})"
    if not (env / f".neurosim-lava-{key}").is_file():
        return f"the Lava environment is not built ({env}; run `make lava-env`)"
    return None


def _row(backend: str, network: str, status: str, reason: str = "", **counts) -> Dict[str, Any]:
    row = {k: None for k in ROW_KEYS}
    row.update(backend=backend, network=network, status=status, reason=reason, **counts)
    return row


def _conform_rows(sim, inputs, names: Sequence[str], network: str) -> List[Dict[str, Any]]:
    from neurosim.hardware.conform import REFERENCE, conform
    try:
        report = conform(sim, inputs, list(names))
    except Exception as e:  # the reference or the inputs failed: one row says so
        return [_row(",".join(names), network, "error", f"{type(e).__name__}: {e}")]
    total = sum(int((s != 0).sum()) for s in report.reference.spikes.values())
    rows = []
    for name, r in report.rows.items():
        if name == REFERENCE:
            continue
        if r.status != "ok":
            rows.append(_row(name, network, r.status, r.reason, total=total, wall_s=r.wall_s))
            continue
        rows.append(_row(name, network, "exact" if r.agrees else "differs", "", exact=r.exact, total=total,
                         within_one=r.within_one, differing=r.differing, membrane_error=r.membrane_error,
                         wall_s=r.wall_s))
    return rows


def _fixed_point_row(sim, qsim, latency: Dict[str, int], inputs, wall: float) -> Dict[str, Any]:
    """Float vs fixed-point spikes, population ``p`` shifted by its latency ``k_p``."""
    import torch
    from neurosim.hardware.conform import compare_spikes, network_dtype
    from neurosim.monitor import Monitor
    pops = list(latency)
    with torch.no_grad():
        x = inputs.to(network_dtype(sim)) if inputs.is_floating_point() else inputs
        a = sim.run(x, monitors=[Monitor(p, "spikes") for p in pops]).records
        b = qsim.run(inputs, monitors=[Monitor(p, "spikes") for p in pops]).records
    exact = within = differing = total = 0
    for p in pops:
        lag = latency[p]
        s_ref, s_q = a[p]["spikes"], b[p]["spikes"]
        s_ref, s_q = s_ref[: s_ref.shape[0] - lag], s_q[lag:]
        c = compare_spikes(s_ref, s_q, f"fixed point: {p}")
        exact, within, differing = exact + c.exact, within + c.within_one, differing + c.differing
        total += c.reference_spikes
    status = "exact" if within == 0 and differing == 0 else "differs"
    lags = ", ".join(f"{p} +{k}" for p, k in latency.items())
    return _row("loihi fixed-point", "float vs fixed-point", status,
                f"compared with the float network, fixed-point steps shifted by the Loihi latency ({lags})",
                exact=exact, total=total, within_one=within, differing=differing, wall_s=wall)


def _loihi_rows(sim, inputs, names: Sequence[str], folder: str, name: str, files: List[str]):
    try:
        from neurosim.hardware.loihi import quantize, to_netx
    except Exception as e:
        return [_row("loihi", "fixed-point", "unavailable", f"neurosim.hardware.loihi does not import: {e}")]
    start = time.perf_counter()
    try:
        qsim, qreport = quantize(sim, max_weight_exp=1)
    except Exception as e:  # UnsupportedNodesError lists every node it cannot map
        status = "unsupported" if type(e).__name__ == "UnsupportedNodesError" else "error"
        return [_row("loihi", "fixed-point", status, f"quantize: {e}")]
    rows = []
    try:
        rows.append(_fixed_point_row(sim, qsim, dict(qreport.latency_steps), inputs, time.perf_counter() - start))
    except Exception as e:
        rows.append(_row("loihi fixed-point", "float vs fixed-point", "error", f"{type(e).__name__}: {e}"))
    netx_path = os.path.join(folder, f"{name}.net")
    try:
        os.makedirs(folder, exist_ok=True)
        to_netx(qsim, netx_path)
        files.append(netx_path)
        rows.append(_row("netx file", "fixed-point", "written", f"{os.path.basename(netx_path)} "
                         "(lava-dl netx HDF5; load with lava.lib.dl.netx.hdf5.Network)"))
    except Exception as e:
        rows.append(_row("netx file", "fixed-point", "unsupported" if type(e).__name__ == "UnsupportedNodesError"
                         else "error", f"to_netx: {e}"))
    lava = [n for n in names if n in ("netx", "lava")]
    if lava:
        why = lava_ready()
        if why is None:
            rows += _conform_rows(qsim, inputs, lava, "fixed-point vs Lava")
        else:
            rows += [_row(n, "fixed-point vs Lava", "not run", f"Lava was not available: {why}") for n in lava]
    if qreport.warnings:
        rows[0]["reason"] += "; quantize warnings: " + "; ".join(qreport.warnings)
    return rows


def deploy(sim, inputs, backends: Sequence[str], folder: str, name: str) -> Dict[str, Any]:
    """Run the backends on the trained network ``sim`` (a :class:`neurosim.Simulator`) and
    ``inputs`` ``[T, batch, ...]``; returns ``{"rows": [...], "files": [...], "steps", "batch",
    "wall_s"}`` (see the module docstring). Files (the netx export) go into ``folder``."""
    import torch
    start = time.perf_counter()
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        return {"rows": [_row("all", "float", "error", f"deploy_inputs must be a [T, batch, ...] tensor, got {shape}")],
                "files": [], "steps": None, "batch": None, "wall_s": 0.0}
    inputs = inputs.detach().cpu()
    floats = [b for b in backends if b not in LOIHI_STEPS]
    rows: List[Dict[str, Any]] = []
    files: List[str] = []
    if floats:
        rows += _conform_rows(sim, inputs, floats, "float")
    if "loihi" in backends:
        rows += _loihi_rows(sim, inputs, backends, folder, name, files)
    elif any(b in backends for b in ("netx", "lava")):
        rows.append(_row("netx/lava", "fixed-point", "not run", "needs the 'loihi' step (quantisation) too"))
    return {"rows": rows, "files": [os.path.basename(f) for f in files], "steps": int(inputs.shape[0]),
            "batch": int(inputs.shape[1]), "wall_s": time.perf_counter() - start}
