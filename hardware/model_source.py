"""Where the CLI's ``MODEL`` argument comes from: a file (detected by its content) or an example name.

:func:`load_model` ``(spec, seed=0) -> (Simulator, kind)`` accepts

==============  =========================================================  =============================
kind            recognised by                                              loaded with
==============  =========================================================  =============================
``saved``       HDF5 with a ``/network`` dataset                           :func:`neurosim.load`
``nir``         HDF5 with a ``/node`` group (what ``nir.write`` writes)    :func:`~neurosim.hardware.nir.from_nir`
``netx``        HDF5 with a ``/layer`` group (lava-dl's netx format)       ``neurosim.hardware.loihi.netx.from_netx``
``config``      a text file that parses as YAML or TOML with a ``network``  :func:`neurosim.config.load_run_config`
                key (the file must end in .yaml/.yml/.toml, as for          (``Simulator(graph, dt)``)
                ``neurosim simulate``)
``example``     not a path, but a name in                                  :func:`~neurosim.hardware.example_networks.example_network`
                :data:`~neurosim.hardware.example_networks.EXAMPLE_NETWORKS`
==============  =========================================================  =============================

The content decides (HDF5 signature, then the groups inside), not the extension, so a NIR file
named ``net.h5`` or a saved network named ``net.nir`` load as what they are. Everything else
raises :class:`ModelSourceError` naming the file (or the name) and what it is not, before any
network is built; the loaders' own errors (a damaged saved network, a bad config) keep their
types and messages.

Example::

    >>> sim, kind = load_model("net.nir")          # kind == "nir"
    >>> sim, kind = load_model("feedforward", seed=3)
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import tomllib
from typing import Tuple

from neurosim.simulator import Simulator

__all__ = ["load_model", "detect_kind", "ModelSourceError", "HDF5_SIGNATURE", "CONFIG_EXTENSIONS"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CONFIG_EXTENSIONS = (".yaml", ".yml", ".toml")
NETX_MODULE = "neurosim.hardware.loihi.netx"


class ModelSourceError(ValueError):
    """MODEL is neither a network file nor an example name; the message names it."""


def _hdf5_kind(path: str) -> str:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
    except OSError as e:
        raise ModelSourceError(f"{path}: an HDF5 file that h5py cannot open ({e})") from None
    if "network" in keys:
        return "saved"
    if "node" in keys:
        return "nir"
    if "layer" in keys:
        return "netx"
    raise ModelSourceError(f"{path}: an HDF5 file but not a network: no '/network' (neurosim.save), '/node' (NIR) "
                           f"or '/layer' (netx) entry; it has {sorted(keys) or 'no entries'}")


def _text_kind(path: str, head: bytes) -> str:
    import yaml
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelSourceError(f"{path}: not a network file: neither HDF5 (saved network, NIR, netx) nor a "
                               f"UTF-8 YAML/TOML config") from None
    data = None
    for parse in (yaml.safe_load, tomllib.loads):
        try:
            data = parse(text)
        except Exception:     # yaml and tomllib raise their own error types; try the other format
            continue
        if isinstance(data, dict):
            break
    if not isinstance(data, dict) or "network" not in data:
        raise ModelSourceError(f"{path}: not a network file: neither HDF5 (saved network, NIR, netx) nor a "
                               f"YAML/TOML config with a 'network' section")
    if os.path.splitext(path)[1].lower() not in CONFIG_EXTENSIONS:
        raise ModelSourceError(f"{path}: looks like a network config, but configs are read by their extension: "
                               f"name it {', '.join(CONFIG_EXTENSIONS)}")
    return "config"


def detect_kind(spec: str) -> str:
    """``"saved"``, ``"nir"``, ``"netx"``, ``"config"`` or ``"example"`` for ``spec`` (see the
    module docstring); raises :class:`ModelSourceError` naming ``spec`` for anything else."""
    from .example_networks import EXAMPLE_NETWORKS, example_names
    spec = os.fspath(spec)
    if not os.path.exists(spec):
        if spec in EXAMPLE_NETWORKS:
            return "example"
        raise ModelSourceError(f"{spec}: no such file, and not an example network (examples: "
                               f"{', '.join(example_names())})")
    if os.path.isdir(spec):
        raise ModelSourceError(f"{spec}: a directory, not a network file")
    with open(spec, "rb") as f:
        head = f.read(8)
        if head == HDF5_SIGNATURE:
            return _hdf5_kind(spec)
        rest = f.read(1 << 20)
    return _text_kind(spec, head + rest)


def load_model(spec: str, seed: int = 0, input_shape=None) -> Tuple[Simulator, str]:
    """The network ``spec`` names, as a Simulator, and its kind. ``seed`` is used by example
    networks only (a config draws its random weights under its own ``seed``); ``input_shape``
    ((C, H, W) or (n,)) by netx files without an ``input`` layer only."""
    kind = detect_kind(spec)
    if kind == "example":
        from .example_networks import example_network
        return example_network(spec, seed), kind
    if kind == "saved":
        from .saved import load
        return load(spec), kind
    if kind == "nir":
        from .nir import read_nir
        return read_nir(spec), kind
    if kind == "netx":
        if importlib.util.find_spec(NETX_MODULE) is None:
            raise ModelSourceError(f"{spec}: a netx file, but this neurosim has no netx reader ({NETX_MODULE})")
        return importlib.import_module(NETX_MODULE).from_netx(spec, input_shape=input_shape), kind
    from neurosim.config import load_run_config
    run = load_run_config(spec)
    return Simulator(run.graph, dt=run.settings.dt), kind
