"""A saved network: one HDF5 file holding a Simulator's graph, its ``dt`` and every weight.

``save(sim, path)`` writes, and ``load(path) -> Simulator`` reads back, a network that gives the
same spikes bit for bit: same nodes (type, constructor config, per-neuron and trainable
parameters with their dtypes, surrogate), same edges (port, back flag, order), marked outputs,
``dt`` (seconds) and schedule. Nothing is pickled; any HDF5 reader can open the file.

Layout (format ``neurosim.saved-network``, version 1)::

    /network                   uint8 dataset: UTF-8 JSON, the document below
    /network  attr sha256      hex SHA-256 of those bytes
    /tensors/<node>/<key>      one dataset per tensor, its dtype kept (little-endian;
                               bfloat16 stored as its int16 bit pattern)

    document = {"format", "version", "dt", "schedule",
                "inputs":  [{"name", "shape"}],
                "nodes":   [{"name", "type", "config", "frozen",
                             "tensors": {key: {"dtype", "shape", "sha256"}}}],
                "edges":   [{"source", "target", "port", "back"}],   # in the graph's order
                "outputs": [names marked with add_output]}

Node configs and tensors come from :mod:`neurosim.hardware.node_specs` (one spec per node type;
a network with nodes it cannot describe raises one ``UnsupportedNodesError`` listing them all,
before anything is written).

Integrity: the JSON and every tensor carry a SHA-256 of their bytes, checked on load. A SHA-256
rather than HDF5's fletcher32 filter: it also covers the JSON, works on contiguous (unchunked)
datasets and is 256 bits instead of 32, so a flipped byte anywhere in the data is found; flips in
HDF5's own metadata are found by h5py or by the shape and dtype checks against the JSON. Before
a dataset is read its shape and dtype must match the document and its size must fit in the file,
so a damaged header cannot make the reader allocate more than the file holds.

Errors: every problem of a file raises :class:`SavedNetworkError` naming the file and, where
there is one, the node and the key (``MissingSavedNetworkError``, also a ``FileNotFoundError``,
when there is no file). A file is either loaded exactly or refused. Writing goes to a
temporary name that is renamed when complete (:func:`neurosim.atomic.atomic_path`), so a crash
leaves the old file (or none) and no partial one.

Example::

    >>> neurosim.save(sim, "net.h5")
    >>> sim2 = neurosim.load("net.h5")
    >>> torch.equal(sim2.run(x).output, sim.run(x).output)
    True
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch

from neurosim.atomic import atomic_path
from neurosim.simulator import Simulator
from neurosim.graph import Graph

from . import loihi  # noqa: F401  (registers the loihi_cuba model and LoihiDense's spec)
from .node_specs import NodeRecord, NodeSpecError, build_node, describe_nodes

__all__ = ["save", "load", "SavedNetworkError", "MissingSavedNetworkError", "FORMAT", "VERSION"]

FORMAT = "neurosim.saved-network"
VERSION = 1
DOCUMENT = "network"          # the JSON dataset
CHECKSUM = "sha256"           # its attribute holding the JSON's SHA-256
TENSORS = "tensors"           # group of /tensors/<node>/<key>

#: torch dtype name -> (torch dtype, numpy dtype on disk, torch dtype viewed for numpy)
_DTYPES = {
    "float64": (torch.float64, "<f8", None), "float32": (torch.float32, "<f4", None),
    "float16": (torch.float16, "<f2", None), "bfloat16": (torch.bfloat16, "<i2", torch.int16),
    "int64": (torch.int64, "<i8", None), "int32": (torch.int32, "<i4", None), "int16": (torch.int16, "<i2", None),
    "int8": (torch.int8, "|i1", None), "uint8": (torch.uint8, "|u1", None), "bool": (torch.bool, "|b1", None),
}
_DTYPE_NAMES = {torch_dtype: name for name, (torch_dtype, _, _) in _DTYPES.items()}


class SavedNetworkError(ValueError):
    """A saved-network file that cannot be loaded (or a network that cannot be saved); the message
    names the file and, where there is one, the node and key."""


class MissingSavedNetworkError(SavedNetworkError, FileNotFoundError):
    """The saved-network file does not exist."""


# ---------------------------------------------------------------------- save
def save(sim: Simulator, path) -> str:
    """Write ``sim`` (graph, ``dt``, schedule, all weights) to the HDF5 file ``path``; returns ``path``.

    Everything is checked before the file is opened: ``sim`` must be a Simulator whose graph is
    valid, every node must have a spec (else one ``UnsupportedNodesError`` lists each node and
    why) and every tensor a supported dtype. The file appears complete or not at all."""
    if not isinstance(sim, Simulator):
        raise TypeError(f"save(sim, path): sim must be a neurosim Simulator (a graph plus its dt), "
                        f"got {type(sim).__name__}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path!r} is a folder; give a file name such as {os.path.join(path, 'net.h5')!r}")
    sim.plan                                   # noqa: B018 - validates the graph as it is now
    records = describe_nodes(sim.graph)
    arrays, nodes, bad = {}, [], []
    for name, record in records.items():
        entries = {}
        for key, tensor in record.tensors.items():
            if tensor.dtype not in _DTYPE_NAMES:
                bad.append(f"node {name!r}, tensor {key!r}: dtype {tensor.dtype} is not supported "
                           f"({sorted(_DTYPES)})")
                continue
            array = _to_numpy(tensor)
            arrays[f"{TENSORS}/{name}/{key}"] = array
            entries[key] = {"dtype": _DTYPE_NAMES[tensor.dtype], "shape": list(array.shape),
                            "sha256": _sha256(array)}
        nodes.append({"name": name, "type": record.type, "config": record.config,
                      "frozen": list(record.frozen), "tensors": entries})
    if bad:
        raise SavedNetworkError(f"cannot save to {path!r}:\n  - " + "\n  - ".join(bad))
    graph = sim.graph
    document = {"format": FORMAT, "version": VERSION, "dt": sim.dt, "schedule": sim.schedule,
                "inputs": [{"name": n, "shape": list(s)} for n, s in graph.inputs.items()],
                "nodes": nodes,
                "edges": [{"source": e.source, "target": e.target, "port": e.port, "back": e.back}
                          for e in graph.edges],
                "outputs": list(graph.outputs)}
    text = np.frombuffer(json.dumps(document, sort_keys=True).encode("utf-8"), dtype=np.uint8)

    import h5py
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(DOCUMENT, data=text)
            f[DOCUMENT].attrs[CHECKSUM] = _sha256(text)
            for where, array in arrays.items():
                f.create_dataset(where, data=array)
    return path


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    _, disk, view = _DTYPES[_DTYPE_NAMES[tensor.dtype]]
    t = tensor.detach().cpu().contiguous()
    array = (t.view(view) if view is not None else t).numpy()
    return array.astype(np.dtype(disk), copy=False)       # C-contiguous, 0-d stays 0-d


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes(order="C")).hexdigest()


# ---------------------------------------------------------------------- load
def load(path) -> Simulator:
    """Read a file written by :func:`save` into a new, independent :class:`Simulator` (on the CPU).

    Raises :class:`MissingSavedNetworkError` when ``path`` does not exist and
    :class:`SavedNetworkError` (naming the file, node and key) for a file that is not HDF5, is cut
    short or damaged (checksums), has another format or version, an unknown node type, a missing
    key, a tensor of the wrong shape or dtype, or a graph that does not validate."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingSavedNetworkError(f"saved network {path!r}: no such file")
    if not os.path.isfile(path):
        raise SavedNetworkError(f"saved network {path!r}: not a file")
    import h5py
    with _reading(path, "opening the file (not an HDF5 file, or cut short?)"):
        handle = h5py.File(path, "r")
    with handle as f:
        document = _read_document(f, path)
        nodes = _node_entries(document, path)
        tensors = {name: _read_tensors(f, path, name, entry) for name, entry in nodes.items()}
    return _assemble(document, nodes, tensors, path)


@contextlib.contextmanager
def _reading(path: str, what: str) -> Iterator[None]:
    """Turn whatever h5py raises on a damaged file into a SavedNetworkError naming file and key."""
    try:
        yield
    except SavedNetworkError:
        raise
    except Exception as e:    # h5py raises OSError, KeyError, ValueError, RuntimeError ... on damage
        raise SavedNetworkError(f"saved network {path!r}: {what}: {type(e).__name__}: {e}") from None


def _fail(path: str, where: str, message: str) -> SavedNetworkError:
    return SavedNetworkError(f"saved network {path!r}: {where}: {message}")


def _dataset(f, path: str, where: str, size_limit: int):
    import h5py
    with _reading(path, f"key {where!r}"):
        obj = f.get(where)
        if obj is None:
            raise _fail(path, f"key {where!r}", "missing from the file")
        if not isinstance(obj, h5py.Dataset):
            raise _fail(path, f"key {where!r}", "is not a dataset")
        if obj.size * obj.dtype.itemsize > size_limit:
            raise _fail(path, f"key {where!r}", f"declares {obj.size} elements, more than the file holds "
                                                "(damaged header)")
        return obj


def _read_document(f, path: str) -> Dict[str, Any]:
    size = os.path.getsize(path)
    ds = _dataset(f, path, DOCUMENT, size)
    with _reading(path, f"key {DOCUMENT!r}"):
        if ds.dtype != np.uint8 or ds.ndim != 1:
            raise _fail(path, f"key {DOCUMENT!r}", f"expected a 1-d uint8 dataset, got {ds.dtype} {ds.shape}")
        text = np.asarray(ds[()])
        want = ds.attrs.get(CHECKSUM)
    if isinstance(want, bytes):
        want = want.decode("ascii", "replace")
    if not isinstance(want, str):
        raise _fail(path, f"key {DOCUMENT!r}", f"missing its {CHECKSUM!r} attribute")
    if _sha256(text) != want:
        raise _fail(path, f"key {DOCUMENT!r}", "checksum mismatch: the network description is damaged")
    try:
        document = json.loads(text.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"key {DOCUMENT!r}", f"not valid JSON ({e})") from None
    if not isinstance(document, dict):
        raise _fail(path, f"key {DOCUMENT!r}", "the JSON is not an object")
    if document.get("format") != FORMAT:
        raise _fail(path, "key 'format'", f"not a neurosim saved network (format {document.get('format')!r}, "
                                          f"expected {FORMAT!r})")
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):
        raise _fail(path, "key 'version'", f"format version {version!r} is not supported (this neurosim "
                                           f"reads version {VERSION})")
    return document


def _take(mapping, key: str, kind, path: str, where: str):
    """``mapping[key]`` of type ``kind`` or a SavedNetworkError naming ``where`` and ``key``."""
    if not isinstance(mapping, dict):
        raise _fail(path, where, f"expected a JSON object, got {type(mapping).__name__}")
    if key not in mapping:
        raise _fail(path, f"{where}, key {key!r}", "missing")
    value = mapping[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise _fail(path, f"{where}, key {key!r}", f"expected {names}, got {value!r}")
    return value


def _node_entries(document, path: str) -> Dict[str, Dict[str, Any]]:
    entries = {}
    for i, entry in enumerate(_take(document, "nodes", list, path, "document")):
        name = _take(entry, "name", str, path, f"nodes[{i}]")
        where = f"node {name!r}"
        if name in entries:
            raise _fail(path, where, "appears twice")
        for key, kind in (("type", str), ("config", dict), ("frozen", list), ("tensors", dict)):
            _take(entry, key, kind, path, where)
        if not all(isinstance(n, str) for n in entry["frozen"]):
            raise _fail(path, f"{where}, key 'frozen'", f"expected a list of parameter names, got {entry['frozen']!r}")
        entries[name] = entry
    return entries


def _read_tensors(f, path: str, name: str, entry) -> Dict[str, torch.Tensor]:
    size, tensors = os.path.getsize(path), {}
    for key, spec in entry["tensors"].items():
        where = f"node {name!r}, tensor {key!r}"
        dtype_name = _take(spec, "dtype", str, path, where)
        shape = tuple(_take(spec, "shape", list, path, where))
        want = _take(spec, "sha256", str, path, where)
        if dtype_name not in _DTYPES:
            raise _fail(path, where, f"unknown dtype {dtype_name!r} (known: {sorted(_DTYPES)})")
        torch_dtype, disk, view = _DTYPES[dtype_name]
        ds = _dataset(f, path, f"{TENSORS}/{name}/{key}", size)
        with _reading(path, where):
            if ds.shape != shape or ds.dtype != np.dtype(disk):
                raise _fail(path, where, f"the dataset is {ds.dtype} of shape {ds.shape}, the document says "
                                         f"{disk} of shape {shape}")
            array = np.array(ds[()], dtype=np.dtype(disk))
        if _sha256(array) != want:
            raise _fail(path, where, "checksum mismatch: the tensor's bytes are damaged")
        tensor = torch.from_numpy(array.reshape(shape))
        tensors[key] = tensor.view(torch_dtype) if view is not None else tensor
    return tensors


def _assemble(document, nodes, tensors, path: str) -> Simulator:
    graph = Graph()
    for i, entry in enumerate(_take(document, "inputs", list, path, "document")):
        name = _take(entry, "name", str, path, f"inputs[{i}]")
        shape = _take(entry, "shape", list, path, f"input {name!r}")
        with _graph_errors(path, f"input {name!r}"):
            graph.add_input(name, tuple(shape))
    problems: List[Tuple[str, str]] = []
    for name, entry in nodes.items():
        record = NodeRecord(entry["type"], entry["config"], tensors[name], tuple(entry["frozen"]))
        try:
            node = build_node(record)
        except NodeSpecError as e:
            problems.append((name, f"{entry['type']}, {e}"))
            continue
        with _graph_errors(path, f"node {name!r}"):
            graph.add(name, node)
    if problems:
        lines = "\n  - ".join(f"node {name!r} ({why})" for name, why in problems)
        raise SavedNetworkError(f"saved network {path!r}: {len(problems)} node(s) cannot be loaded:\n  - {lines}")
    for i, entry in enumerate(_take(document, "edges", list, path, "document")):
        where = f"edges[{i}]"
        graph.connect(_take(entry, "source", str, path, where), _take(entry, "target", str, path, where),
                      _take(entry, "port", str, path, where), _take(entry, "back", bool, path, where))
    outputs = _take(document, "outputs", list, path, "document")
    if not all(isinstance(n, str) for n in outputs):
        raise _fail(path, "key 'outputs'", f"expected a list of node names, got {outputs!r}")
    graph.add_output(*outputs)
    dt = _take(document, "dt", (int, float), path, "document")
    schedule = _take(document, "schedule", str, path, "document")
    with _graph_errors(path, "graph"):
        return Simulator(graph, dt=dt, schedule=schedule)


@contextlib.contextmanager
def _graph_errors(path: str, where: str) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError) as e:
        raise _fail(path, where, str(e)) from None
