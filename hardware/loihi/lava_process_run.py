"""Run a fixed-point neurosim network as Lava processes from the main environment (no Lava here).

:func:`run_lava_processes` writes the network with ``neurosim.save`` into a temporary folder,
finds (or builds, about a minute the first time) the separate Lava environment with
``scripts/build_lava_env.py``, and runs ``hardware/loihi/lava_process_runner.py`` there: Lava's
CPU simulation, ``Loihi2SimCfg(select_tag="fixed_pt")``, of the processes that
:func:`neurosim.hardware.loihi.lava.to_lava` builds. It imports no Lava.

Example::

    >>> out = run_lava_processes(sim, spikes)          # spikes [T, *input shape] (or [T, 1, ...]) 0/1
    >>> out["spikes"]["lif"].shape, out["voltage"]["lif"].shape    # [T, *shape] int32 each
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict

import numpy as np
import torch

__all__ = ["run_lava_processes", "run_lava_processes_batch", "lava_env", "LavaEnvError", "RUNNER", "BUILD_SCRIPT"]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_lava_env.py"
RUNNER = Path(__file__).resolve().parent / "lava_process_runner.py"


class LavaEnvError(RuntimeError):
    """The Lava environment cannot be built or found; ``status`` is the build script's exit status
    (3: this machine cannot build it, no Python 3.11 or no package registry)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def lava_env() -> Path:
    """The Lava environment's folder, found by its stamp or built by ``scripts/build_lava_env.py``
    (:func:`neurosim.hardware.loihi.netx_lava.lava_environment`, with its errors as
    :class:`LavaEnvError`)."""
    from .netx_lava import LavaUnavailable, lava_environment
    try:
        return lava_environment()
    except LavaUnavailable as error:
        raise LavaEnvError(str(error), 3) from None
    except RuntimeError as error:
        raise LavaEnvError(str(error), 1) from None


def _time_first(inputs, shape) -> np.ndarray:
    """``inputs`` ``[T, *shape]`` or ``[T, 1, *shape]`` (batch 1) as int32 ``[T, *shape]``, checked."""
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    shape = tuple(int(n) for n in shape)
    wanted = f"[T, {', '.join(map(str, shape))}] or [T, 1, {', '.join(map(str, shape))}]"
    if x.ndim == 2 + len(shape) and tuple(x.shape[2:]) == shape:
        if x.shape[1] != 1:
            raise ValueError(f"run_lava_processes: inputs [T, batch, *shape] need batch 1, got shape {x.shape}")
        x = x[:, 0]
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != shape:
        raise ValueError(f"run_lava_processes: inputs must be {wanted} (the graph input's shape), got shape "
                         f"{x.shape}")
    if not np.isin(x, (0, 1)).all():
        raise ValueError("run_lava_processes: inputs must be 0/1 spikes")
    return x.astype(np.int32)


def run_lava_processes(sim, inputs, env: Path = None, timeout: float = 600) -> Dict[str, Dict[str, np.ndarray]]:
    """Run ``sim`` (one graph input, of shape ``(n,)`` or ``(C, H, W)``) as Lava processes on
    ``inputs`` and return what Lava did.

    ``inputs``: 0/1 spikes ``[T, *shape]`` (or ``[T, 1, *shape]``, neurosim's layout with batch 1).
    Returns ``{"spikes": {population: [T, *shape]}, "voltage": {population: [T, *shape]}}``,
    int32, in neurosim's axis order (``(C, H, W)`` populations too), step t
    of Lava (1-based) at row t - 1, which is neurosim's step t - 1; ``voltage`` is ``v`` after
    the reset of the neurons that spiked. The network is checked first (``plan_lava``: one
    ``UnsupportedNodesError`` for everything that cannot be mapped); ``env`` defaults to
    :func:`lava_env`. Raises :class:`LavaEnvError` when the environment cannot be built and
    ``RuntimeError`` with the runner's message when the run fails."""
    import neurosim
    from .lava import plan_lava

    plan_lava(sim)
    graph = getattr(sim, "graph", sim)
    if len(graph.inputs) != 1:
        raise ValueError(f"run_lava_processes: the network must have one graph input, has {dict(graph.inputs)}")
    spikes = _time_first(inputs, next(iter(graph.inputs.values())))
    env = lava_env() if env is None else Path(env)
    with tempfile.TemporaryDirectory(prefix="neurosim-lava-") as tmp:
        tmp = Path(tmp)
        neurosim.save(sim, tmp / "network.h5")
        np.save(tmp / "input.npy", spikes)
        command = [str(env / "bin" / "python"), str(RUNNER), "--network", str(tmp / "network.h5"),
                   "--input", str(tmp / "input.npy"), "--steps", str(len(spikes)), "--out", str(tmp / "out.npz")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"lava_process_runner failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        with np.load(tmp / "out.npz") as data:
            out = {"spikes": {}, "voltage": {}}
            for key in data.files:
                kind, _, node = key.partition("_")
                if kind in out:
                    out[kind][node] = data[key]
    return out


def run_lava_processes_batch(sim, inputs, env: Path = None, timeout: float = 600) -> Dict[str, Dict[str, torch.Tensor]]:
    """:func:`run_lava_processes` for a batch: ``inputs`` 0/1 ``[T, batch, *shape]``; Lava has no
    batch axis, so each sample is its own run, all in one runner process (Lava starts once).
    Returns ``{"spikes" | "voltage": {population: int32 [T, batch, *shape]}}``."""
    import neurosim
    from .lava import plan_lava

    plan_lava(sim)
    graph = getattr(sim, "graph", sim)
    if len(graph.inputs) != 1:
        raise ValueError(f"run_lava_processes_batch: the network must have one graph input, has {dict(graph.inputs)}")
    x = inputs.detach().cpu() if isinstance(inputs, torch.Tensor) else torch.as_tensor(inputs)
    samples = [_time_first(x[:, b:b + 1], next(iter(graph.inputs.values()))) for b in range(x.shape[1])]
    env = lava_env() if env is None else Path(env)
    with tempfile.TemporaryDirectory(prefix="neurosim-lava-") as tmp:
        tmp = Path(tmp)
        neurosim.save(sim, tmp / "network.h5")
        command = [str(env / "bin" / "python"), str(RUNNER)]
        for b, spikes in enumerate(samples):
            np.save(tmp / f"input_{b}.npy", spikes)
            command += ["--network", str(tmp / "network.h5"), "--input", str(tmp / f"input_{b}.npy"),
                        "--steps", str(len(spikes)), "--out", str(tmp / f"out_{b}.npz")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"lava_process_runner failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        per_sample = []
        for b in range(len(samples)):
            with np.load(tmp / f"out_{b}.npz") as data:
                per_sample.append({key: data[key] for key in data.files})
    out = {"spikes": {}, "voltage": {}}
    for key in per_sample[0]:
        kind, _, node = key.partition("_")
        if kind in out:
            out[kind][node] = torch.from_numpy(np.stack([r[key] for r in per_sample], axis=1))
    return out
