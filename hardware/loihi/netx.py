"""``to_netx(sim, path)`` and ``from_netx(path) -> Simulator``: lava-dl's netx HDF5 files.

The file layout and every fact about how Lava reads it are in :mod:`.netx_format`. A netx file
is a chain of layers; neurosim's counterpart is a chain of fixed-point nodes
(:mod:`.fixed_point`, :mod:`.conv`), named after the file's own layer index ``i``:

=====================  =========================================================================
netx ``layer/i``        neurosim nodes
=====================  =========================================================================
``input`` (shape only)  the graph input ``input`` of that shape
``input`` + neuron      ``layer{i}_input`` (identity synapse, latency 0) -> population ``layer{i}``
``dense``               ``layer{i}_synapse`` (LoihiDense, latency 1, delays) -> ``layer{i}``
``dense_rec``           the same, plus ``layer{i}_recurrent`` (LoihiDense, latency 0) on a
                        back-edge ``layer{i} ~> layer{i}_recurrent -> layer{i}``
``conv``                ``layer{i}_synapse`` (LoihiConv2d, latency 1) -> ``layer{i}``
``flatten``             ``layer{i}`` (Flatten)
=====================  =========================================================================

Every population is ``loihi_cuba`` with ``i_decay = iDecay``, ``v_decay = vDecay``,
``v_th_mant = vThMant``, ``bias_mant = bias``, ``bias_exp = 6`` and no refractory period
(``refDelay`` is not used by Lava). A file weight ``w`` (an integer in [-256, 254]) becomes the
mantissa ``m = w`` with exponent 0 when every weight of the layer lies in [-128, 127], else
``m = w / 2`` with exponent 1 (slayer writes even integers); ``w << 6`` per spike either way.
So a Monitor on ``layer{i}`` records what Lava's ``net.layers[k].neuron`` does, step for step
(same latency: one step per dense or conv layer).

``to_netx`` writes the same chain back (any node names); it refuses, in one
:class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every node and why, what the
format or Lava's reader cannot carry: other node types or a graph that is not such a chain,
a synapse latency other than 1 (forward) / 0 (recurrent), weights ``m << e`` outside
[-256, 254] or a layer without a positive weight, delays on a recurrent layer, a refractory
period, per-neuron decays or thresholds, a bias that is not a whole multiple of 2^6.
Written under a temporary name and renamed; the user's network is only read.

``from_netx`` raises :class:`~neurosim.hardware.loihi.netx_format.NetxFileError` naming the file,
the layer and the key for anything it cannot load exactly: a missing file, not HDF5, cut short,
a checksum that does not match, unknown or unloadable layer types, missing keys, shapes that do
not chain, values outside the fixed-point ranges; nothing is loaded with pickle.

Example::

    >>> qsim, report = quantize(sim, max_weight_exp=1)     # netx holds w = m << e in [-256, 254]
    >>> to_netx(qsim, "net.net")
    >>> sim2 = from_netx("net.net")                         # nodes input, layer1_synapse, layer1, ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from neurosim.atomic import atomic_path
from neurosim.graph import Graph
from neurosim.population import Population
from neurosim.projections.conv import Flatten
from neurosim.simulator import Simulator

from ..registry import UnsupportedNodesError
from .conv import LoihiConv2d
from .fixed_point import MAX_DELAY, PARAM_RANGES, WEIGHT_MANT_RANGE, LoihiCubaParams, LoihiDense, single_int_value
from .netx_format import (CHECKSUM_KEY, NETX_WEIGHT_RANGE, NEURON_TYPES, UNLOADABLE_TYPES, NetxFileError,
                          content_digest, file_size, read_dataset, read_text, reading, text_dataset)

__all__ = ["to_netx", "from_netx", "NetxFileError", "netx_layer_names", "export_layer_names"]

BACKEND = "netx"
BIAS_EXP = 6          # Lava's netx reader gives every LIF bias_exp = 6


# ====================================================================== export
@dataclass
class _Layer:
    kind: str                                   # "dense", "dense_rec", "conv", "flatten"
    name: str                                   # the population (or Flatten) node
    synapse: Optional[str] = None
    recurrent: Optional[str] = None


@dataclass
class _Chain:
    input_name: str
    input_shape: Tuple[int, ...]
    layers: List[_Layer] = field(default_factory=list)


def _forward_targets(graph: Graph, source: str) -> List[str]:
    return [e.target for e in graph.edges if e.source == source and not e.back]


def _walk(graph: Graph, problems: List[Tuple[str, str, str]]) -> Optional[_Chain]:
    """Follow the chain from the single input; append a problem for every node that breaks it."""
    if len(graph.inputs) != 1:
        problems.append(("<graph>", "Graph", f"has inputs {list(graph.inputs)}; a netx file has exactly one"))
        return None
    input_name, input_shape = next(iter(graph.inputs.items()))
    chain, current, seen = _Chain(input_name, input_shape), input_name, set()
    while True:
        targets = _forward_targets(graph, current)
        if not targets:
            break
        if len(targets) != 1:
            problems.append((current, type(graph.nodes[current]).__name__ if current in graph.nodes else "input",
                             f"feeds {targets}; a netx file is a chain (each layer feeds the next only)"))
            return None
        node_name = targets[0]
        node = graph.nodes[node_name]
        seen.add(node_name)
        if isinstance(node, Flatten):
            chain.layers.append(_Layer("flatten", node_name))
            current = node_name
            continue
        if not isinstance(node, (LoihiDense, LoihiConv2d)):
            problems.append((node_name, type(node).__name__, "netx layers start with a LoihiDense or LoihiConv2d "
                             "synapse (or a Flatten); map a float network with quantize() first"))
            return None
        pops = _forward_targets(graph, node_name)
        if len(pops) != 1 or not isinstance(graph.nodes[pops[0]], Population):
            problems.append((node_name, type(node).__name__, f"feeds {pops}; a netx layer's synapse feeds exactly "
                             "one population"))
            return None
        pop_name = pops[0]
        seen.add(pop_name)
        layer = _Layer("conv" if isinstance(node, LoihiConv2d) else "dense", pop_name, synapse=node_name)
        for edge in graph.in_edges(pop_name):
            if edge.source in (node_name,):
                continue
            rec = graph.nodes[edge.source] if edge.source in graph.nodes else None
            loop = [e for e in graph.in_edges(edge.source)] if rec is not None else []
            if (isinstance(rec, LoihiDense) and isinstance(node, LoihiDense) and not edge.back
                    and len(loop) == 1 and loop[0].source == pop_name and loop[0].back
                    and _forward_targets(graph, edge.source) == [pop_name] and layer.recurrent is None):
                layer.kind, layer.recurrent = "dense_rec", edge.source
                seen.add(edge.source)
            else:
                problems.append((pop_name, "Population", f"also reads {edge.source!r}; a netx layer's population "
                                 "reads its synapse and, for dense_rec, one LoihiDense on a back-edge from itself"))
        chain.layers.append(layer)
        current = pop_name
    for name, node in graph.nodes.items():
        if name not in seen:
            problems.append((name, type(node).__name__, "is not on the chain from the input (netx files are chains)"))
    return chain


def _weight_problems(name: str, node, w_int: torch.Tensor) -> List[Tuple[str, str, str]]:
    kind, low, high = type(node).__name__, *NETX_WEIGHT_RANGE
    problems = []
    if w_int.numel() and (int(w_int.min()) < low or int(w_int.max()) > high):
        problems.append((name, kind, f"weights m << e span [{int(w_int.min())}, {int(w_int.max())}]; netx stores "
                         f"one integer per synapse that Lava's reader keeps exact only in [{low}, {high}] "
                         "(quantize(..., max_weight_exp=1))"))
    if not w_int.numel() or int(w_int.max()) <= 0:
        problems.append((name, kind, "has no positive weight; lava-dl 0.6.0's reader mis-scales such layers "
                         "(measured: -1 -> 0, -256 -> -255; all zeros raise OverflowError)"))
    return problems


def _population_problems(name: str, pop: Population, size: int) -> List[Tuple[str, str, str]]:
    p, problems = pop.params, []
    for key in ("i_decay", "v_decay", "v_th_mant"):
        if single_int_value(getattr(p, key)) is None:
            problems.append((name, "Population", f"per-neuron {key}; a netx neuron group holds one value"))
    if p.refractory_delay:
        problems.append((name, "Population", f"refractory_delay={p.refractory_delay}; Lava's fixed-point LIF "
                         "has no refractory period"))
    bias = _bias_values(p, size)
    if bias is None:
        problems.append((name, "Population", f"bias_mant << bias_exp = {p.bias_mant} << {p.bias_exp} is not a whole "
                         f"multiple of 2^{BIAS_EXP} (netx biases are bias_mant with bias_exp {BIAS_EXP})"))
    elif bias.numel() and (int(bias.min()) < PARAM_RANGES["bias_mant"][0] or int(bias.max()) > PARAM_RANGES["bias_mant"][1]):
        problems.append((name, "Population", f"bias {int(bias.min())}..{int(bias.max())} << {BIAS_EXP} outside the "
                         "13-bit bias mantissa"))
    return problems


def _bias_values(p: LoihiCubaParams, size: int) -> Optional[torch.Tensor]:
    """The netx bias (``bias_mant`` at exponent 6) per neuron, int64 ``[size]``, or None if inexact."""
    mant = torch.as_tensor(p.bias_mant, dtype=torch.float64).reshape(-1).expand(size) if not isinstance(
        p.bias_mant, torch.Tensor) or p.bias_mant.numel() == 1 else p.bias_mant.detach().to(torch.float64).reshape(-1)
    total = mant * 2.0 ** single_int_value(p.bias_exp)
    netx = total / 2 ** BIAS_EXP
    if not bool((netx == netx.round()).all()):
        return None
    return netx.to(torch.int64)


def _type_problems(graph: Graph) -> List[Tuple[str, str, str]]:
    """Every node whose type has no netx layer (listed all at once, before the chain is walked)."""
    problems = []
    for name, node in graph.nodes.items():
        if isinstance(node, Population):
            if node.model.name != "loihi_cuba":
                problems.append((name, "Population", f"neuron model {node.model.name!r}; netx layers hold "
                                 "loihi_cuba neurons (quantize() maps lif / cuba_lif to it)"))
        elif not isinstance(node, (LoihiDense, LoihiConv2d, Flatten)):
            problems.append((name, type(node).__name__, "no netx layer for this node type (netx: LoihiDense, "
                             "LoihiConv2d, Flatten and loihi_cuba populations; quantize() maps float networks)"))
    return problems


def _check_export(graph: Graph) -> _Chain:
    problems = _type_problems(graph)
    if problems:
        raise UnsupportedNodesError(BACKEND, problems)
    chain = _walk(graph, problems)
    if chain is not None:
        for layer in chain.layers:
            if layer.kind == "flatten":
                continue
            syn, pop = graph.nodes[layer.synapse], graph.nodes[layer.name]
            if syn.latency != 1:
                problems.append((layer.synapse, type(syn).__name__, f"latency={syn.latency}; a netx layer's synapse "
                                 "delivers one step after the spike (latency=1)"))
            w = syn.weight_int()
            if layer.recurrent is not None:
                rec = graph.nodes[layer.recurrent]
                if rec.latency != 0:
                    problems.append((layer.recurrent, "LoihiDense", f"latency={rec.latency} on a recurrent loop; the "
                                     "back-edge is the loop's one step, so it must be 0"))
                if rec.max_delay or syn.max_delay:
                    problems.append((layer.recurrent, "LoihiDense", "a recurrent layer with delays: Lava's reader "
                                     "drops its weight exponent and delays the recurrent synapse too"))
                w = torch.cat([w, rec.weight_int()], dim=1)
            problems += _weight_problems(layer.synapse, syn, w.reshape(w.shape[0], -1))
            problems += _population_problems(layer.name, pop, int(np.prod(pop.out_shape)))
    if problems:
        raise UnsupportedNodesError(BACKEND, problems)
    return chain


def _write_neuron(group, p: LoihiCubaParams) -> None:
    neuron = group.create_group("neuron")
    neuron.create_dataset("type", data="CUBA")          # a scalar variable-length string, as slayer writes
    for key, value in (("iDecay", p.i_decay), ("vDecay", p.v_decay), ("vThMant", p.v_th_mant)):
        neuron.create_dataset(key, data=np.int64(single_int_value(value)))
    neuron.create_dataset("refDelay", data=np.int64(1))   # slayer's value; Lava does not use it
    neuron.create_dataset("gradedSpike", data=False)


def to_netx(sim: Simulator, path) -> str:
    """Write the fixed-point chain ``sim`` (see the module docstring) as a netx file at ``path``.

    Raises ``TypeError`` for anything but a Simulator and
    :class:`~neurosim.hardware.registry.UnsupportedNodesError` (every node that cannot be written,
    and why) before anything is written. Returns ``path``."""
    if not isinstance(sim, Simulator):
        raise TypeError(f"to_netx takes a neurosim Simulator (a graph and its dt), got {type(sim).__name__}")
    graph = sim.graph
    chain = _check_export(graph)
    import h5py
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            layers = f.create_group("layer")
            first = layers.create_group("0")
            first.create_dataset("type", data=text_dataset("input"))
            first.create_dataset("shape", data=np.array(chain.input_shape, dtype=np.int64))
            for index, layer in enumerate(chain.layers, start=1):
                group = layers.create_group(str(index))
                node = graph.nodes[layer.name]
                group.create_dataset("type", data=text_dataset(layer.kind))
                if layer.kind == "flatten":
                    group.create_dataset("shape", data=np.array([node.out_shape[0], 1, 1], dtype=np.int64))
                    continue
                syn = graph.nodes[layer.synapse]
                group.create_dataset("shape", data=np.array(node.out_shape, dtype=np.int64))
                group.create_dataset("weight", data=syn.weight_int().numpy().astype(np.float32))
                if layer.recurrent is not None:
                    rec = graph.nodes[layer.recurrent]
                    group.create_dataset("weight_rec", data=rec.weight_int().numpy().astype(np.float32))
                if layer.kind == "conv":
                    group.create_dataset("stride", data=np.array(syn.stride, dtype=np.int64))
                    group.create_dataset("padding", data=np.array(syn.padding, dtype=np.int64))
                    group.create_dataset("dilation", data=np.array(syn.dilation, dtype=np.int64))
                    group.create_dataset("groups", data=np.int64(syn.groups))
                elif syn.max_delay:
                    group.create_dataset("delay", data=syn.delays().numpy().astype(np.int64))
                bias = _bias_values(node.params, int(np.prod(node.out_shape)))
                if bool((bias != 0).any()):
                    if layer.kind == "conv":
                        bias = bias.reshape(node.out_shape)
                        if not bool((bias == bias[:, :1, :1]).all()):
                            raise UnsupportedNodesError(BACKEND, [(layer.name, "Population", "a conv layer's bias "
                                                        "is one value per channel in netx")])
                        bias = bias[:, 0, 0]
                    group.create_dataset("bias", data=bias.numpy().astype(np.float32))
                _write_neuron(group, node.params)
            f.create_dataset(CHECKSUM_KEY, data=np.array(content_digest(layers).encode("ascii"), dtype="S64"))
    return path


# ====================================================================== import
class _Reader:
    """Reads one file, naming the file, layer and key in every error."""

    def __init__(self, path: str):
        self.path = path
        self.size = file_size(path)

    def fail(self, where: str, message: str) -> NetxFileError:
        return NetxFileError(f"netx file {self.path!r}: {where}: {message}")

    def array(self, group, key: str, where: str, required: bool = True) -> Optional[np.ndarray]:
        return read_dataset(group, key, self.path, where, self.size, required)

    def integers(self, group, key: str, where: str, low: int, high: int, required: bool = True):
        """An integer-valued dataset (any numeric dtype holding whole numbers) in [low, high], int64."""
        value = self.array(group, key, where, required)
        if value is None:
            return None
        if value.dtype.kind not in "iufb":
            raise self.fail(f"{where}/{key}", f"expected numbers, got dtype {value.dtype}")
        value = value.astype(np.float64)
        if not np.all(np.isfinite(value)) or not np.array_equal(value, np.round(value)):
            raise self.fail(f"{where}/{key}", "expected whole numbers")
        if value.size and (value.min() < low or value.max() > high):
            raise self.fail(f"{where}/{key}", f"values in [{value.min():g}, {value.max():g}] outside [{low}, {high}]")
        return value.astype(np.int64)

    def pair(self, group, key: str, where: str, minimum: int) -> Tuple[int, int]:
        value = self.integers(group, key, where, minimum, 2 ** 15)
        flat = value.reshape(-1)
        if flat.size == 1:
            return int(flat[0]), int(flat[0])
        if flat.size != 2:
            raise self.fail(f"{where}/{key}", f"expected one int or a pair (H, W), got shape {value.shape}")
        return int(flat[0]), int(flat[1])

    def neuron(self, group, where: str, bias: Optional[np.ndarray], shape) -> LoihiCubaParams:
        where_n = f"{where}/neuron"
        with reading(self.path, where_n):
            if "neuron" not in group:
                raise self.fail(where, "missing key 'neuron' (a layer without neurons is not loadable here)")
            neuron = group["neuron"]
        kind = read_text(neuron, "type", self.path, where_n, self.size)
        if kind not in NEURON_TYPES:
            raise self.fail(f"{where_n}/type", f"neuron type {kind!r} is not loadable (supported: {list(NEURON_TYPES)})")
        values = {}
        for key, field_name in (("iDecay", "i_decay"), ("vDecay", "v_decay"), ("vThMant", "v_th_mant")):
            value = self.integers(neuron, key, where_n, *PARAM_RANGES[field_name])
            if value.size != 1:
                raise self.fail(f"{where_n}/{key}", f"expected one value, got shape {value.shape}")
            values[field_name] = int(value.reshape(-1)[0])
        self.integers(neuron, "refDelay", where_n, 0, 2 ** 31 - 1)       # required by the format, unused
        graded = self.array(neuron, "gradedSpike", where_n)
        if graded.size != 1 or bool(graded.reshape(-1)[0]):
            raise self.fail(f"{where_n}/gradedSpike", "graded spikes are not modelled (must be False)")
        bits = self.integers(neuron, "messageBits", where_n, 0, 32, required=False)
        if bits is not None and int(bits.reshape(-1)[0]) != 0:
            raise self.fail(f"{where_n}/messageBits", "graded spikes are not modelled (must be 0)")
        bias_mant = 0
        if bias is not None:
            bias_mant = torch.as_tensor(bias, dtype=torch.int64)
            if bias_mant.numel() == 1:
                bias_mant = int(bias_mant.reshape(-1)[0])
            elif tuple(bias_mant.shape) != tuple(shape):
                raise self.fail(f"{where}/bias", f"shape {tuple(bias_mant.shape)} does not fit the layer {tuple(shape)}")
        return LoihiCubaParams(bias_mant=bias_mant, bias_exp=BIAS_EXP if bias is not None else 0, **values)

    def bias(self, group, where: str, shape) -> Optional[np.ndarray]:
        low, high = PARAM_RANGES["bias_mant"]
        value = self.integers(group, "bias", where, low, high, required=False)
        if value is None:
            return None
        if len(shape) == 3 and value.shape == (shape[0],):                  # one value per channel
            value = np.broadcast_to(value.reshape(-1, 1, 1), shape).copy()
        elif len(shape) == 1 and value.shape == ():
            value = np.full(shape, int(value))
        return value


def _mantissa(w: np.ndarray, where: str, reader: _Reader) -> Tuple[torch.Tensor, int]:
    """File weights (integers) as (int8 mantissas, exponent): e = 0 if they fit 8 bits, else 1."""
    low, high = WEIGHT_MANT_RANGE
    if w.size == 0 or (w.min() >= low and w.max() <= high):
        return torch.as_tensor(w, dtype=torch.int8), 0
    if np.all(w % 2 == 0) and w.min() >= 2 * low and w.max() <= 2 * high:
        return torch.as_tensor(w // 2, dtype=torch.int8), 1
    raise reader.fail(f"{where}/weight", f"weights in [{w.min()}, {w.max()}] with odd values above 8 bits do not fit "
                      "an 8-bit mantissa with a shared exponent")


def _file_weights(reader: _Reader, group, key: str, where: str, rows: int) -> np.ndarray:
    """Weights as Lava reads them (``.astype(int)``), checked to be whole numbers in [-256, 254]."""
    value = reader.array(group, key, where)
    if value.dtype.kind not in "iuf":
        raise reader.fail(f"{where}/{key}", f"expected numbers, got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise reader.fail(f"{where}/{key}", "holds NaN or infinite values")
    if not np.array_equal(value, np.round(value)):
        raise reader.fail(f"{where}/{key}", "holds non-integer weights (Lava would truncate them with .astype(int))")
    value = value.astype(np.int64)
    if value.ndim == 1:
        if rows <= 0 or value.size % rows:
            raise reader.fail(f"{where}/{key}", f"a flat weight of {value.size} values does not fit {rows} rows")
        value = value.reshape(rows, -1)
    low, high = NETX_WEIGHT_RANGE
    if value.size and (value.min() < low or value.max() > high + 1):
        raise reader.fail(f"{where}/{key}", f"weights in [{value.min()}, {value.max()}] outside netx's [{low}, {high}] "
                          "(Lava's reader would clip them)")
    return value


def _layer_groups(reader: _Reader, f) -> List[Tuple[int, object]]:
    with reading(reader.path, "layer"):
        if "layer" not in f:
            raise reader.fail("/", "missing group 'layer' (not a netx file)")
        layers = f["layer"]
        keys = list(layers.keys())
    if not keys:
        raise reader.fail("layer", "has no layers")
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise reader.fail("layer", f"layers must be named 0..{len(keys) - 1}, got {sorted(keys)}")
    with reading(reader.path, "layer"):
        return [(i, layers[str(i)]) for i in range(len(keys))]


def _check_digest(reader: _Reader, f) -> None:
    with reading(reader.path, CHECKSUM_KEY):
        if CHECKSUM_KEY not in f:
            return
        stored = f[CHECKSUM_KEY][()]
        stored = stored.decode("ascii") if isinstance(stored, bytes) else str(stored)
        actual = content_digest(f["layer"])
    if stored != actual:
        raise reader.fail(CHECKSUM_KEY, "the layers do not match the file's SHA-256 (damaged or edited)")


def from_netx(path, dt: float = 1e-3, input_shape=None) -> Simulator:
    """Read the netx file ``path`` into the fixed-point model (see the module docstring).

    ``dt``: the Simulator's time step in seconds (netx has none; the integer model does not use
    it). ``input_shape``: (C, H, W) or (n,), needed (as for Lava's ``Network(input_shape=...)``)
    only when the file has no ``input`` layer and starts with a conv. Raises ``FileNotFoundError`` (also a NetxFileError) for a missing file and
    :class:`NetxFileError` naming the file, layer and key for anything else."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _MissingNetxFile(f"netx file {path!r}: no such file")
    import h5py
    reader = _Reader(path)
    with reading(path, "/", "opening the file (not an HDF5 file, or cut short?)"):
        handle = h5py.File(path, "r")
    with handle as f:
        _check_digest(reader, f)
        graph = _build(reader, _layer_groups(reader, f), input_shape)
    with reading(path, "graph", "validating the network"):
        return Simulator(graph, dt=dt)


class _MissingNetxFile(NetxFileError, FileNotFoundError):
    pass


def _build(reader: _Reader, groups, input_shape=None) -> Graph:
    graph, current, shape = Graph(), None, None
    for index, group in groups:
        where = f"layer/{index}"
        kind = read_text(group, "type", reader.path, where, reader.size)
        name = f"layer{index}"
        if kind in UNLOADABLE_TYPES:
            raise reader.fail(f"{where}/type", f"layer type {kind!r} is not loadable (lava-dl's netx reader does not "
                              "load it either)")
        if kind == "input":
            if current is not None:
                raise reader.fail(f"{where}/type", "an 'input' layer after the first layer")
            shape = tuple(int(n) for n in reader.integers(group, "shape", where, 1, 2 ** 31 - 1).reshape(-1))
            if len(shape) not in (1, 3):
                raise reader.fail(f"{where}/shape", f"expected (n,) or (C, H, W), got {shape}")
            graph.add_input("input", shape)
            current = "input"
            if _has(reader, group, "neuron", where):
                size = int(np.prod(shape))
                identity = (LoihiDense(torch.eye(size, dtype=torch.int8), 0, latency=0) if len(shape) == 1 else
                            LoihiConv2d(shape, torch.eye(shape[0], dtype=torch.int8).reshape(shape[0], shape[0], 1, 1),
                                        latency=0))
                params = reader.neuron(group, where, reader.bias(group, where, shape), shape)
                graph.add(f"{name}_input", identity).add(name, Population("loihi_cuba", shape, params))
                graph.chain("input", f"{name}_input", name)
                current = name
            continue
        if kind == "flatten":
            if current is None:
                raise reader.fail(f"{where}/type", "a 'flatten' layer before any input shape is known")
            graph.add(name, Flatten(shape))
            graph.connect(current, name)
            current, shape = name, (int(np.prod(shape)),)
            continue
        if kind not in ("dense", "dense_rec", "conv"):
            raise reader.fail(f"{where}/type", f"unknown layer type {kind!r} (netx: input, dense, dense_rec, conv, "
                              "flatten)")
        out_shape = tuple(int(n) for n in reader.integers(group, "shape", where, 1, 2 ** 31 - 1).reshape(-1))
        if current is None and input_shape is not None:
            shape = tuple(int(n) for n in input_shape)
            graph.add_input("input", shape)
            current = "input"
        if kind == "conv":
            synapse = _conv_synapse(reader, group, where, shape, out_shape)
        else:
            rows = int(np.prod(out_shape))
            synapse = _dense_synapse(reader, group, where, rows, kind == "dense_rec")
            if current is None:         # no input layer and no input_shape: the first dense sets it
                shape = (synapse[0].in_features,)
                graph.add_input("input", shape)
                current = "input"
            if synapse[0].in_features != int(np.prod(shape)):
                raise reader.fail(f"{where}/weight", f"takes {synapse[0].in_features} inputs but the previous layer "
                                  f"gives {int(np.prod(shape))} {tuple(shape)}")
            if len(shape) != 1:
                raise reader.fail(f"{where}/type", f"a dense layer after a {shape} layer needs a 'flatten' layer first")
            out_shape = (rows,)
        params = reader.neuron(group, where, reader.bias(group, where, out_shape), out_shape)
        forward = synapse[0] if isinstance(synapse, tuple) else synapse
        graph.add(f"{name}_synapse", forward).add(name, Population("loihi_cuba", out_shape, params))
        graph.chain(current, f"{name}_synapse", name)
        if isinstance(synapse, tuple) and synapse[1] is not None:
            graph.add(f"{name}_recurrent", synapse[1])
            graph.connect(name, f"{name}_recurrent", back=True).connect(f"{name}_recurrent", name)
        current, shape = name, out_shape
    if current is None or current == "input":
        raise reader.fail("layer", "has no layer with neurons")
    return graph


def _has(reader: _Reader, group, key: str, where: str) -> bool:
    with reading(reader.path, where):
        return key in group


def _dense_synapse(reader: _Reader, group, where: str, rows: int, recurrent: bool):
    w = _file_weights(reader, group, "weight", where, rows)
    if w.shape[0] != rows:
        raise reader.fail(f"{where}/weight", f"has {w.shape[0]} rows but the layer's shape says {rows} neurons")
    w_rec = None
    if recurrent:
        w_rec = _file_weights(reader, group, "weight_rec", where, rows)
        if w_rec.shape != (rows, rows):
            raise reader.fail(f"{where}/weight_rec", f"expected [{rows}, {rows}], got {list(w_rec.shape)}")
        # Lava fits one exponent to both; here each synapse is a node of its own, with its own
        # exponent (the per-spike value w << 6 is the same either way)
        m_rec, e_rec = _mantissa(w_rec, where, reader)
    m, e = _mantissa(w, where, reader)
    delay = reader.integers(group, "delay", where, 0, MAX_DELAY, required=False)
    if delay is not None:
        if recurrent:
            raise reader.fail(f"{where}/delay", "delays on a dense_rec layer are not loadable (Lava's reader drops "
                              "the weight exponent and delays the recurrent synapse too)")
        if delay.size == 1:
            delay = int(delay.reshape(-1)[0])
        elif delay.shape != (rows,):
            raise reader.fail(f"{where}/delay", f"expected one delay or one per output neuron [{rows}], got shape "
                              f"{delay.shape} (per-input delays are not modelled)")
        else:
            delay = torch.as_tensor(delay)
    forward = LoihiDense(m, e, 0 if delay is None else delay, latency=1)
    return forward, (LoihiDense(m_rec, e_rec, 0, latency=0) if recurrent else None)


def _conv_synapse(reader: _Reader, group, where: str, in_shape, out_shape) -> LoihiConv2d:
    if in_shape is None or len(in_shape) != 3:
        raise reader.fail(f"{where}/type", f"a conv layer needs a (C, H, W) input before it, got {in_shape} "
                          "(write an 'input' layer with its shape)")
    if len(out_shape) != 3:
        raise reader.fail(f"{where}/shape", f"expected (C, H, W), got {out_shape}")
    w = _file_weights(reader, group, "weight", where, out_shape[0])
    if w.ndim != 4:
        raise reader.fail(f"{where}/weight", f"expected [out, in / groups, k_h, k_w], got shape {w.shape}")
    m, e = _mantissa(w, where, reader)
    groups_value = reader.integers(group, "groups", where, 1, 2 ** 15)
    if groups_value.size != 1:
        raise reader.fail(f"{where}/groups", f"expected one int, got shape {groups_value.shape}")
    if reader.array(group, "delay", where, required=False) is not None:
        raise reader.fail(f"{where}/delay", "conv layers have no delays in netx")
    with reading(reader.path, where, "building the conv layer"):
        conv = LoihiConv2d(in_shape, m, e, stride=reader.pair(group, "stride", where, 1),
                           padding=reader.pair(group, "padding", where, 0),
                           dilation=reader.pair(group, "dilation", where, 1),
                           groups=int(groups_value.reshape(-1)[0]), latency=1)
    if tuple(conv.out_shape) != tuple(out_shape):
        raise reader.fail(f"{where}/shape", f"says {tuple(out_shape)} but the convolution gives {conv.out_shape}")
    return conv


def export_layer_names(sim: Simulator) -> Dict[int, str]:
    """For a network :func:`to_netx` can write: file layer index -> the population it writes
    there (1, 2, ...; ``layer/0`` is the input). Raises like :func:`to_netx`."""
    chain = _check_export(sim.graph)
    return {index: layer.name for index, layer in enumerate(chain.layers, start=1) if layer.kind != "flatten"}


def netx_layer_names(sim: Simulator) -> Dict[int, str]:
    """For a network read by :func:`from_netx`: file layer index -> its population node (the
    layers that have neurons, in file order: the ones Lava's ``net.layers`` holds)."""
    names = {}
    for name, node in sim.graph.nodes.items():
        if name.startswith("layer") and name[5:].isdigit() and isinstance(node, Population):
            names[int(name[5:])] = name
    return dict(sorted(names.items()))
