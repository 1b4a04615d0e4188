"""Run netx files on Lava's own CPU simulation from the main environment (no Lava import here).

Lava (lava-nc 0.10.0, lava-dl 0.6.0) lives in an environment of its own, built by
``scripts/build_lava_env.py`` (``make lava-env``; cached under ``~/.cache/neurosim``). This module
finds or builds it, runs ``hardware/loihi/lava_runner.py`` there in a subprocess (lava-dl's
``netx.hdf5.Network`` on ``Loihi2SimCfg(select_tag="fixed_pt")``), and returns each layer's spikes
and voltages keyed by the file's layer index, in neurosim's axis order.

* :func:`lava_environment` -> the environment's folder, or :class:`LavaUnavailable` (with the
  build script's reason) where it cannot be built here;
* :func:`run_netx_on_lava` (one or several files at once: Lava's start-up, ~2 s, is paid once per
  call) -> :class:`LavaRun` per file.

Lava has no batch axis: an input ``[T, batch, *shape]`` runs as ``batch`` separate runs.

Example::

    >>> run = run_netx_on_lava("net.net", spikes)        # spikes [T, 1, 20]
    >>> run.spikes[1].shape                              # file layer 1: [T, 1, n_1]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = ["LavaUnavailable", "LavaRunError", "LavaRun", "lava_environment", "run_netx_on_lava"]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_lava_env.py"
RUNNER = Path(__file__).resolve().parent / "lava_runner.py"
CANNOT_BUILD = 3


class LavaUnavailable(RuntimeError):
    """The Lava environment cannot be built on this machine (the message says why)."""


class LavaRunError(RuntimeError):
    """Lava's run failed; the message carries the runner's error output."""


class LavaRun(NamedTuple):
    """spikes / voltages: file layer index -> int32 ``[T, batch, *shape]`` (Lava's ``v`` after the
    step, i.e. after the reset of neurons that spiked); blocks: the Lava block class per layer."""

    spikes: Dict[int, torch.Tensor]
    voltages: Dict[int, torch.Tensor]
    blocks: Dict[int, str]


_cached_env: Optional[Path] = None


def lava_environment() -> Path:
    """The Lava environment's folder, built by ``scripts/build_lava_env.py`` if needed (about a
    minute the first time, then instant from its stamp). Raises :class:`LavaUnavailable` where
    the script reports this machine cannot build it, ``RuntimeError`` on any other failure."""
    global _cached_env
    if _cached_env is not None and (_cached_env / "bin" / "python").is_file():
        return _cached_env
    if not BUILD_SCRIPT.is_file():
        raise LavaUnavailable(f"the Lava environment's build script {BUILD_SCRIPT} is not here (installed "
                              "without the source tree?)")
    result = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600)
    if result.returncode == CANNOT_BUILD:
        raise LavaUnavailable(f"the Lava environment cannot be built here: {result.stderr.strip()[-1500:]}")
    if result.returncode != 0:
        raise RuntimeError(f"scripts/build_lava_env.py failed:\n{result.stderr[-3000:]}")
    _cached_env = Path(result.stdout.strip().splitlines()[-1])
    return _cached_env


def _layers_with_neurons(path: str, input_shape) -> List[int]:
    """File layer indices that Lava turns into blocks, in order (via neurosim's own reader)."""
    from .netx import from_netx, netx_layer_names
    return list(netx_layer_names(from_netx(path, input_shape=input_shape)))


def run_netx_on_lava(paths: Union[str, os.PathLike, Sequence], inputs, steps: Optional[int] = None,
                     timeout: float = 600.0) -> Union[LavaRun, List[LavaRun]]:
    """Run netx file(s) on Lava. ``inputs``: time-first spikes ``[T, batch, *shape]`` (a tensor or
    array of integers; one per path when several paths are given); ``steps``: steps to run
    (default T; the input is zero-padded). Returns a :class:`LavaRun` (a list for a list of
    paths). Raises :class:`LavaUnavailable`, ``ValueError`` for bad inputs (before Lava starts),
    :class:`LavaRunError` when the runner fails."""
    single = isinstance(paths, (str, os.PathLike))
    paths = [os.fspath(paths)] if single else [os.fspath(p) for p in paths]
    inputs = [inputs] if single else list(inputs)
    if len(inputs) != len(paths):
        raise ValueError(f"run_netx_on_lava: {len(paths)} files but {len(inputs)} inputs")
    arrays = []
    for path, x in zip(paths, inputs):
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if x.ndim not in (3, 5):
            raise ValueError(f"run_netx_on_lava: the input for {path!r} must be [T, batch, n] or "
                             f"[T, batch, C, H, W], got shape {x.shape}")
        if not np.array_equal(x, np.round(x)):
            raise ValueError(f"run_netx_on_lava: the input for {path!r} must hold integers (spikes)")
        arrays.append(x.astype(np.int64))
    layer_indices = [_layers_with_neurons(p, tuple(x.shape[2:])) for p, x in zip(paths, arrays)]
    env = lava_environment()
    with tempfile.TemporaryDirectory(prefix="neurosim-lava-") as folder:
        command = [str(env / "bin" / "python"), str(RUNNER)]
        jobs: List[Tuple[int, int, Path]] = []
        for k, (path, x) in enumerate(zip(paths, arrays)):
            for b in range(x.shape[1]):
                spikes, out = Path(folder) / f"in_{k}_{b}.npy", Path(folder) / f"out_{k}_{b}.npz"
                np.save(spikes, x[:, b])
                command += ["--netx", path, "--input", str(spikes), "--out", str(out),
                            "--steps", str(steps or x.shape[0])]
                jobs.append((k, b, out))
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode == 2:
            raise ValueError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "lava_runner: bad input")
        if result.returncode != 0:
            raise LavaRunError(f"Lava's run failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        per_run: Dict[Tuple[int, int], Dict[str, np.ndarray]] = {}
        for k, b, out in jobs:
            with np.load(out, allow_pickle=False) as data:
                per_run[(k, b)] = {key: data[key] for key in data.files}
    runs = []
    for k, x in enumerate(arrays):
        indices, first = layer_indices[k], per_run[(k, 0)]
        if int(first["num_layers"]) != len(indices):
            raise LavaRunError(f"{paths[k]}: Lava built {int(first['num_layers'])} blocks, neurosim's reader "
                               f"{len(indices)} layers with neurons")
        spikes, voltages, blocks = {}, {}, {}
        for block, index in enumerate(indices):
            stack = [per_run[(k, b)] for b in range(x.shape[1])]
            spikes[index] = torch.from_numpy(np.stack([r[f"spikes_{block}"] for r in stack], axis=1))
            voltages[index] = torch.from_numpy(np.stack([r[f"voltage_{block}"] for r in stack], axis=1))
            blocks[index] = str(first[f"block_{block}"])
        runs.append(LavaRun(spikes, voltages, blocks))
    return runs[0] if single else runs
