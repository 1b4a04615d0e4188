"""Conformance runners of the Loihi backends, registered with :mod:`neurosim.hardware.conform`.

* ``netx``: :func:`~neurosim.hardware.loihi.netx.to_netx` to a temporary file, then lava-dl's
  own reader and Lava's CPU ``fixed_pt`` simulation on it
  (:func:`~neurosim.hardware.loihi.netx_lava.run_netx_on_lava`); every population's spikes and
  voltages come back keyed by the population the file's layer was written from.

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
from .netx_lava import LavaUnavailable, run_netx_on_lava

__all__ = ["run_netx_conformance"]


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


register_conformance_runner("netx", run_netx_conformance)
