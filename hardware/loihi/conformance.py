"""Conformance runners of the Loihi backends, registered with :mod:`neurosim.hardware.conform`.

* ``netx``: :func:`~neurosim.hardware.loihi.netx.to_netx` to a temporary file, then lava-dl's
  own reader and Lava's CPU ``fixed_pt`` simulation on it
  (:func:`~neurosim.hardware.loihi.netx_lava.run_netx_on_lava`); every population's spikes and
  voltages come back keyed by the population the file's layer was written from.

* ``lava``: :func:`~neurosim.hardware.loihi.lava.to_lava`'s processes (LIF, Dense, DelayDense,
  Sparse, Conv), built and run in the Lava environment
  (:func:`~neurosim.hardware.loihi.lava_process_run.run_lava_processes_batch`).

Lava runs in its own environment (``make lava-env``); where it cannot be built the backend is
reported unavailable, with the build script's reason. Lava has no batch axis: each sample is a
separate run (one Lava start-up, ~3-9 s, for all of them).
"""
from __future__ import annotations

import os
import tempfile

import torch

from ..conform import BackendRun, BackendUnavailable, register_conformance_runner
from .netx import export_layer_names, to_netx
from .lava import plan_lava
from .lava_process_run import LavaEnvError, run_lava_processes_batch
from .netx_lava import LavaUnavailable, run_netx_on_lava

__all__ = ["run_netx_conformance", "run_lava_conformance"]


def run_netx_conformance(sim, inputs) -> BackendRun:
    """The ``netx`` runner: ``inputs`` ``{name: [T, batch, *shape]}`` (one graph input)."""
    layers = export_layer_names(sim)             # UnsupportedNodesError before any file or Lava
    (x,) = inputs.values()
    with tempfile.TemporaryDirectory(prefix="neurosim-netx-") as folder:
        path = os.path.join(folder, "network.net")
        to_netx(sim, path)
        try:
            run = run_netx_on_lava(path, x)
        except LavaUnavailable as why:
            raise BackendUnavailable(str(why)) from None
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    n = len(sim.graph.nodes)
    return BackendRun({pop: run.spikes[i].to(dtype) for i, pop in layers.items()},
                      {pop: run.voltages[i].to(torch.int64) for i, pop in layers.items()}, n, n)


def run_lava_conformance(sim, inputs) -> BackendRun:
    """The ``lava`` runner: ``inputs`` ``{name: [T, batch, *shape]}`` (one graph input)."""
    plan_lava(sim)                                # UnsupportedNodesError before Lava starts
    (x,) = inputs.values()
    try:
        run = run_lava_processes_batch(sim, x)
    except LavaEnvError as why:
        raise BackendUnavailable(str(why)) from None
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    n = len(sim.graph.nodes)
    return BackendRun({pop: s.to(dtype) for pop, s in run["spikes"].items()},
                      {pop: v.to(torch.int64) for pop, v in run["voltage"].items()}, n, n)


register_conformance_runner("netx", run_netx_conformance)
register_conformance_runner("lava", run_lava_conformance)
