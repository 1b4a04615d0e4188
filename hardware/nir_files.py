"""Reading NIR files defensively, and the content digest neurosim writes into its NIR graphs.

:class:`NIRFileError` is the one error of a bad NIR file or graph; its message names the file
(``<in-memory graph>`` for a ``nir.NIRGraph`` passed directly), the node and the key. A missing
file raises :class:`MissingNIRFileError` (also a ``FileNotFoundError``).

:func:`read_graph_file` replaces ``nir.read`` (same layout: ``/version`` and the ``/node``
group written by ``nir.write``) with checks first: the file must open as HDF5; every dataset's
declared size must fit what the file can hold (so a damaged header cannot make h5py allocate
gigabytes); every node group must have a ``type`` that NIR knows and every key its class needs;
then each node is built by NIR's own ``dict2NIRNode``, an error naming that node.

Integrity. NIR files carry no checksum, so a flipped byte inside a weight of a file written by
another library (snnTorch, Norse, ...) cannot be detected: it loads with that wrong value. Files
that neurosim writes carry a SHA-256 (:func:`graph_digest`) in the graph's
``metadata["neurosim_sha256"]``, over a canonical form of every node's type and parameters
(numbers as little-endian float64, shapes included), the edges in order and all metadata (the
discretisation contract, ``dt``, back-edges) except the digest itself; :func:`check_digest`
recomputes it on import and refuses a file whose content changed.

Example::

    >>> graph = read_graph_file("net.nir")        # NIRFileError naming file, node and key
    >>> check_digest(graph, "net.nir")            # no-op for files without a digest
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from typing import Any, Dict, Iterator, Optional

import nir
import numpy as np

__all__ = ["NIRFileError", "MissingNIRFileError", "read_graph_file", "graph_digest", "check_digest",
           "DIGEST_KEY", "IN_MEMORY"]

#: the graph-metadata key of neurosim's content digest
DIGEST_KEY = "neurosim_sha256"
IN_MEMORY = "<in-memory graph>"
#: compressed datasets may expand; a declared size beyond this many times the file is damage
_EXPANSION = 1100


class NIRFileError(ValueError):
    """A NIR file or graph that cannot be imported; ``file``, ``node``, ``key`` name the culprit."""

    def __init__(self, file, message: str, node: Optional[str] = None, key: Optional[str] = None):
        self.file, self.node, self.key = (os.fspath(file) if file is not None else IN_MEMORY), node, key
        where = f"NIR file {self.file!r}"
        if node is not None:
            where += f", node {node!r}"
        if key is not None:
            where += f", key {key!r}"
        super().__init__(f"{where}: {message}")


class MissingNIRFileError(NIRFileError, FileNotFoundError):
    """There is no file at the path given."""


@contextlib.contextmanager
def _reading(file, node: Optional[str], key: Optional[str], what: str) -> Iterator[None]:
    """Whatever h5py or NIR raises on a damaged file becomes a NIRFileError naming file/node/key."""
    try:
        yield
    except NIRFileError:
        raise
    except Exception as e:   # h5py: OSError, KeyError, RuntimeError...; NIR: AssertionError, TypeError...
        raise NIRFileError(file, f"{what}: {type(e).__name__}: {e}", node, key) from None


def _node_classes() -> Dict[str, type]:
    return {name: cls for name in dir(nir) for cls in [getattr(nir, name)]
            if isinstance(cls, type) and issubclass(cls, nir.NIRNode) and cls is not nir.NIRNode}


def _required_keys(cls: type):
    if cls in (nir.Input, nir.Output):
        return ("shape",)
    return tuple(f.name for f in dataclasses.fields(cls)
                 if f.init and f.name != "metadata" and f.default is dataclasses.MISSING
                 and f.default_factory is dataclasses.MISSING)


def _to_dict(group, file, node: str, limit: int, in_nodes: bool = False) -> Dict[str, Any]:
    """The group as nested dicts of numpy values / strings (as ``nir.serialization.hdf2dict``).
    ``node`` is the NIR node path the group belongs to (``""`` for the top-level graph);
    ``in_nodes``: the group is a graph's ``nodes``, so each child is a node of its own."""
    import h5py
    out: Dict[str, Any] = {}
    with _reading(file, node or None, None, "reading the node group"):
        items = list(group.items())
    for key, item in items:
        key = key.decode("utf8") if isinstance(key, bytes) else key
        with _reading(file, node or None, key, "reading the key"):
            if isinstance(item, h5py.Group):
                out[key] = _to_dict(item, file, _join(node, key), limit) if in_nodes else \
                    _to_dict(item, file, node, limit, in_nodes=(key == "nodes"))
            elif isinstance(item, h5py.Dataset):
                if item.size * max(item.dtype.itemsize, 1) > limit:
                    raise NIRFileError(file, f"declares {item.size} elements of {item.dtype}, more than the file "
                                             "can hold (damaged header)", node or None, key)
                value = item[()]
                out[key] = value.decode("utf8") if isinstance(value, bytes) else value
    return out


def _join(node: str, key: str) -> str:
    return key if not node else f"{node}.{key}"


def _build(data: Dict[str, Any], file, node: Optional[str], classes: Dict[str, type]):
    """A NIR node from its dict, every problem named; NIRGraph children built one by one."""
    name = node or "(top-level graph)"
    if not isinstance(data, dict):
        raise NIRFileError(file, "is not a group of keys", name)
    kind = data.get("type")
    if kind is None:
        raise NIRFileError(file, "missing (every NIR node has a type)", name, "type")
    if not isinstance(kind, str) or kind not in classes:
        raise NIRFileError(file, f"unknown NIR node type {kind!r} (NIR {nir.version} knows {sorted(classes)})",
                           name, "type")
    cls = classes[kind]
    for key in _required_keys(cls):
        if key not in data:
            raise NIRFileError(file, f"missing (a NIR {kind} needs {list(_required_keys(cls))})", name, key)
    if cls is nir.NIRGraph:
        nodes = data["nodes"]
        if not isinstance(nodes, dict):
            raise NIRFileError(file, "must be a group of nodes", name, "nodes")
        children = {child: _build(sub, file, _join(node or "", child), classes) for child, sub in nodes.items()}
        with _reading(file, name, "edges", "reading the edges"):
            edges = [(_text(a), _text(b)) for a, b in np.asarray(data["edges"]).reshape(-1, 2)] \
                if np.size(data["edges"]) else []
        with _reading(file, name, "metadata", "building the graph"):
            return nir.NIRGraph(nodes=children, edges=edges, metadata=dict(data.get("metadata") or {}),
                                type_check=False)
    with _reading(file, name, None, f"NIR cannot build this {kind}"):
        return nir.dict2NIRNode(dict(data))


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_graph_file(path) -> nir.NIRGraph:
    """The ``nir.NIRGraph`` of the NIR file ``path``, checked as the module docstring says.

    Raises :class:`MissingNIRFileError` or :class:`NIRFileError` (file, node, key), never
    anything else, for a file that is absent, not HDF5, cut short, damaged or incomplete."""
    import h5py
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingNIRFileError(path, "no such file")
    if not os.path.isfile(path):
        raise NIRFileError(path, "not a file")
    limit = max(1 << 20, _EXPANSION * os.path.getsize(path))
    with _reading(path, None, None, "opening the file (not an HDF5 file, or cut short?)"):
        handle = h5py.File(path, "r")
    with _reading(path, None, None, "reading the file"), handle as f:
        with _reading(path, None, "node", "reading the top-level group"):
            top = f.get("node")
        if top is None or not isinstance(top, h5py.Group):
            raise NIRFileError(path, "missing: not a NIR file (no 'node' group)", None, "node")
        data = _to_dict(top, path, "", limit)
    graph = _build(data, path, None, _node_classes())
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFileError(path, f"the top-level node is a {type(graph).__name__}, not a NIRGraph", None, "type")
    return graph


# ---------------------------------------------------------------------- digest
def _feed(h, value) -> None:
    """Hash ``value`` in a canonical, type-tagged form (dicts sorted by key, numbers as float64)."""
    if isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=str):
            _feed(h, str(key))
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)) and _numeric(value):
        _feed(h, np.asarray(value))              # (1, 1) and array([1, 1]) are the same stride
    elif isinstance(value, (list, tuple)):
        h.update(b"[%d" % len(value))
        for item in value:
            _feed(h, item)
        h.update(b"]")
    elif value is None:
        h.update(b"N")
    elif isinstance(value, (str, bytes)):
        data = value.encode("utf8") if isinstance(value, str) else value
        h.update(b"s%d:" % len(data) + data)
    else:
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            h.update(b"a" + repr(array.shape).encode() + b":")
            h.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
        elif array.dtype.kind in "OSU":
            _feed(h, [_text(v) for v in array.reshape(-1).tolist()])
        else:
            raise TypeError(f"graph_digest: cannot hash a value of type {type(value).__name__}")


def _numeric(values) -> bool:
    return len(values) > 0 and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                   for v in values)


def graph_digest(graph: nir.NIRGraph) -> str:
    """Hex SHA-256 of ``graph`` (nodes, parameters, edges, metadata; not ``metadata[DIGEST_KEY]``)."""
    data = graph.to_dict()
    data["metadata"] = {k: v for k, v in (data.get("metadata") or {}).items() if k != DIGEST_KEY}
    h = hashlib.sha256(b"neurosim-nir-digest-1")
    _feed(h, data)
    return h.hexdigest()


def check_digest(graph: nir.NIRGraph, file=None) -> None:
    """Raise :class:`NIRFileError` when ``graph`` holds a digest that its content does not match."""
    want = (graph.metadata or {}).get(DIGEST_KEY)
    if want is None:
        return
    want = _text(want)
    try:
        got = graph_digest(graph)
    except (TypeError, ValueError) as e:
        raise NIRFileError(file, f"cannot recompute the content digest: {e}", None, f"metadata/{DIGEST_KEY}") from None
    if got != want:
        raise NIRFileError(file, "content digest mismatch: the parameters, edges or metadata changed after "
                                 "neurosim wrote this graph (a damaged file? after a deliberate edit, delete "
                                 f"metadata[{DIGEST_KEY!r}])", None, f"metadata/{DIGEST_KEY}")
