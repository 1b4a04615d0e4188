"""NIR interchange (https://neuroir.org): export, import and files.

* :func:`to_nir` ``(sim) -> nir.NIRGraph``: a Simulator (graph + dt) as NIR, with neurosim's
  discretisation contract (dt, integration, reset, refractory steps, input timing) in the
  metadata, so that :func:`from_nir` gives back the same spikes.
* :func:`from_nir` ``(graph_or_path, convention="neurosim", dt=None, reset=None) -> Simulator``:
  also reads files written by snnTorch (``convention="snntorch"``) and Norse (``"norse"``) with
  those libraries' implicit conventions (:mod:`neurosim.hardware.nir_conventions`), warning
  about what had to be assumed.
* :func:`write_nir` / :func:`read_nir`: ``nir.write`` / a checked reader of the same HDF5
  layout (:mod:`neurosim.hardware.nir_files`), the file written under a temporary name and
  renamed; bad files raise :class:`NIRFileError` naming the file, node and key.

Example::

    >>> from neurosim.hardware.nir import to_nir, from_nir, write_nir
    >>> write_nir("net.nir", Simulator(graph, dt=1e-3))
    >>> sim = from_nir("net.nir")                          # the same network, the same spikes
    >>> sim = from_nir("snntorch_net.nir", convention="snntorch")
"""
from __future__ import annotations

import os

import nir

from neurosim.atomic import atomic_path

from .nir_conventions import CONVENTIONS
from .nir_export import NIR_EXPORT, to_nir
from .nir_files import MissingNIRFileError, NIRFileError
from .nir_import import BUILDERS, from_nir

__all__ = ["to_nir", "from_nir", "write_nir", "read_nir", "NIR_EXPORT", "BUILDERS", "CONVENTIONS",
           "NIRFileError", "MissingNIRFileError"]


def write_nir(path, sim_or_graph) -> str:
    """Write a Simulator (exported with :func:`to_nir`) or a ``nir.NIRGraph`` to the HDF5 file
    ``path`` through ``nir.write``, atomically. Returns the path."""
    graph = sim_or_graph if isinstance(sim_or_graph, nir.NIRGraph) else to_nir(sim_or_graph)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return os.fspath(path)


def read_nir(path, convention: str = "neurosim", dt=None, reset=None):
    """A Simulator from the NIR file ``path`` (see :func:`from_nir`); a missing file raises
    :class:`MissingNIRFileError` (a ``FileNotFoundError``), a bad one :class:`NIRFileError`."""
    if not os.path.isfile(path):
        raise MissingNIRFileError(path, "no NIR file at this path")
    return from_nir(path, convention=convention, dt=dt, reset=reset)
