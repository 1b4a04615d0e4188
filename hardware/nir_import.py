"""NIR -> neurosim: :func:`from_nir`, one builder per NIR node class.

Steps, each checked before anything is built:

1. nested ``NIRGraph`` nodes are flattened (their nodes named ``sub.node``, their Input/Output
   nodes contracted away); names become identifiers (``3.lif`` -> ``n3_lif``);
2. every node class must have a builder (``Scale`` on vectors becomes a diagonal ``Sparse``,
   ``SumPool2d`` a ``Conv2d`` with a channel-identity kernel, both exact) (:data:`BUILDERS`); the others are listed, with the
   reason, in one :class:`~neurosim.hardware.registry.UnsupportedNodesError`;
3. back-edges: those named in the graph's neurosim metadata, else in every loop each edge that
   leaves a neuron node for another node of the loop (so a recurrent ``Affine`` reads the last
   step's spikes and its bias acts from t = 0, as snnTorch's RLeaky and nirtorch mean it); a loop
   without a neuron is refused;
4. nodes are built in feed-forward order, each shape taken from its parameters or its
   predecessor (Norse and snnTorch write scalar parameters and no Conv2d input shape).

Top-level ``Input`` nodes become graph inputs of the same (sanitised) name, the predecessors
of ``Output`` nodes the graph's outputs.

Bad input raises :class:`~neurosim.hardware.nir_files.NIRFileError` naming the file, the node and
the key, before the network is returned: a missing, non-HDF5, truncated or damaged file, an
unknown node type, a missing key, an array of the wrong rank, an edge naming a node the graph
does not have, connected nodes whose shapes differ, and, for files neurosim wrote, any change of
content (the SHA-256 in ``metadata["neurosim_sha256"]``). Files from other libraries carry no
checksum: a flipped byte inside one of their weights cannot be detected and loads as it reads.
"""
from __future__ import annotations

import re
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import nir
import numpy as np
import torch

from neurosim import (AvgPool2d, Conv1d, Conv2d, Delay, Dense, Flatten, Graph, Population, Simulator, Sparse,
                      Threshold)
from neurosim.graph import strongly_connected_components
from neurosim.neurons.base import RESETS
from neurosim.validation import is_plain_number

from .nir_conventions import CONVENTIONS, as_array, as_value, neuron_params, read_contract
from .nir_files import NIRFileError, check_digest, read_graph_file
from .registry import UnsupportedNodesError

__all__ = ["from_nir", "BUILDERS", "NEURONS", "NIRFileError"]

#: NIR neuron class -> neurosim model name
NEURONS = {nir.LIF: "lif", nir.CubaLIF: "cuba_lif", nir.IF: "if", nir.LI: "li", nir.CubaLI: "cuba_li",
           nir.I: "integrator"}

#: NIR classes neurosim cannot build yet, and why (none today; refused per node: Conv2d with
#: dilation or groups, Scale on more than one axis, Flatten of part of a sample, delays off the
#: dt grid, Conv1d with padding "same" that is not symmetric)
MISSING: Dict[type, str] = {}


class _Context:
    """What a builder needs: the convention, dt, the reset override, collected assumptions."""

    def __init__(self, convention, dt: float, reset: Optional[str]):
        self.convention, self.dt, self.reset = convention, dt, reset
        self.assumed: List[str] = []


def _shape(array) -> Tuple[int, ...]:
    return tuple(int(n) for n in np.asarray(array).reshape(-1))


def _pair(value, where: str, field: str) -> Tuple[int, int]:
    if isinstance(value, str):
        raise ValueError(f"{where}: {field}={value!r} is not supported (give integers)")
    values = [int(v) for v in np.asarray(value).reshape(-1)]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ValueError(f"{where}: {field} must hold one or two integers, got {value!r}")
    return tuple(values)


def _tensor(value) -> torch.Tensor:
    return torch.as_tensor(as_array(value), dtype=torch.get_default_dtype())


def _ranked(node, key: str, rank: int, where: str, layout: str) -> torch.Tensor:
    """``node.<key>`` as a tensor of exactly ``rank`` axes, else ValueError naming the key."""
    value = _tensor(getattr(node, key))
    if value.dim() != rank or value.numel() == 0:
        raise ValueError(f"{where}, key {key!r}: must be a {rank}-d array {layout}, got shape {tuple(value.shape)}")
    return value


def _bias(node, out: int, where: str) -> torch.Tensor:
    bias = _tensor(node.bias)
    if bias.dim() > 1 or bias.numel() != out:
        raise ValueError(f"{where}, key 'bias': must hold {out} values (one per output), got shape "
                         f"{tuple(bias.shape)}")
    return bias.reshape(-1)


def _int(value, where: str, field: str, minimum: int = 0) -> int:
    values = np.asarray(value).reshape(-1)
    if values.size != 1 or not float(values[0]).is_integer() or int(values[0]) < minimum:
        raise ValueError(f"{where}, key {field!r}: must be one integer >= {minimum}, got {value!r}")
    return int(values[0])


def _build_affine(node, in_shape, where, ctx):
    weight = _ranked(node, "weight", 2, where, "[out, in]")
    bias = getattr(node, "bias", None)
    dense = Dense(weight.shape[1], weight.shape[0], bias=bias is not None, weight=weight)
    if bias is not None:
        with torch.no_grad():
            dense.bias.copy_(_bias(node, weight.shape[0], where))
    return dense


def _build_conv1d(node, in_shape, where, ctx):
    """NIR Conv1d -> Conv1d; ``padding="valid"`` is 0, ``"same"`` the symmetric padding that keeps
    the length (stride 1 and an even ``dilation (k - 1)`` only)."""
    weight = _ranked(node, "weight", 3, where, "[C_out, C_in / groups, k]")
    stride, dilation = _int(node.stride, where, "stride", 1), _int(node.dilation, where, "dilation", 1)
    groups = _int(node.groups, where, "groups", 1)
    kernel = weight.shape[2]
    padding = node.padding
    if isinstance(padding, str):
        total = dilation * (kernel - 1)
        if padding == "valid":
            padding = 0
        elif padding == "same" and stride == 1 and total % 2 == 0:
            padding = total // 2
        else:
            raise ValueError(f"{where}, key 'padding': {padding!r} is not supported here (neurosim pads "
                             f"symmetrically; give an integer)")
    padding = _int(padding, where, "padding")
    if in_shape is None:
        if node.input_shape is None:
            raise ValueError(f"{where}, key 'input_shape': the input length is unknown (no input_shape, "
                             "no predecessor)")
        in_shape = (weight.shape[1] * groups, _int(node.input_shape, where, "input_shape", 1))
    bias = _bias(node, weight.shape[0], where)
    conv = Conv1d(in_shape, weight.shape[0], kernel, stride=stride, padding=padding, dilation=dilation,
                  groups=groups, bias=bool(torch.any(bias != 0)), weight=weight)
    if conv.bias is not None:
        with torch.no_grad():
            conv.bias.copy_(bias)
    return conv


def _build_threshold(node, in_shape, where, ctx):
    """NIR Threshold -> Threshold (fires on ``x > threshold``, as NIR defines it)."""
    threshold = as_array(node.threshold)
    shape = in_shape or tuple(threshold.shape)
    if not shape:
        raise ValueError(f"{where}, key 'threshold': the shape is unknown (a scalar, no predecessor)")
    return Threshold(shape, as_value(threshold, shape, f"{where}, key 'threshold'"))


def _build_conv2d(node, in_shape, where, ctx):
    weight = _ranked(node, "weight", 4, where, "[C_out, C_in, k_h, k_w]")
    if _pair(node.dilation, where, "dilation") != (1, 1) or int(node.groups) != 1:
        raise ValueError(f"{where}: neurosim's Conv2d has no dilation or groups "
                         f"(got dilation={node.dilation!r}, groups={node.groups!r})")
    if in_shape is None:
        if node.input_shape is None:
            raise ValueError(f"{where}: the input shape is unknown (no input_shape, no predecessor)")
        in_shape = (weight.shape[1], *_pair(node.input_shape, where, "input_shape"))
    bias = _bias(node, weight.shape[0], where)
    conv = Conv2d(in_shape, weight.shape[0], tuple(weight.shape[2:]), stride=_pair(node.stride, where, "stride"),
                  padding=_pair(node.padding, where, "padding"), bias=bool(torch.any(bias != 0)), weight=weight)
    if conv.bias is not None:
        with torch.no_grad():
            conv.bias.copy_(bias)
    return conv


def _build_avgpool(node, in_shape, where, ctx):
    return AvgPool2d(in_shape, _pair(node.kernel_size, where, "kernel_size"),
                     _pair(node.stride, where, "stride"), _pair(node.padding, where, "padding"))


def _build_flatten(node, in_shape, where, ctx):
    start, end = int(node.start_dim), int(node.end_dim)
    rank = len(in_shape)
    if start % rank != 0 or end % rank != rank - 1:
        raise ValueError(f"{where}: only a flatten of the whole sample is supported "
                         f"(start_dim 0, end_dim -1), got start_dim={start}, end_dim={end}")
    return Flatten(in_shape)


def _build_scale(node, in_shape, where, ctx):
    """``y = scale * x`` on a vector: a Sparse projection with one synapse per element (exact)."""
    scale = as_array(node.scale)
    shape = in_shape or tuple(scale.shape)
    if len(shape) != 1:
        raise ValueError(f"{where}: Scale is only supported on vectors (neurosim has no element-wise "
                         f"scale node), got shape {shape}")
    n = shape[0]
    index = torch.arange(n)
    weight = torch.as_tensor(np.array(np.broadcast_to(scale, shape)), dtype=torch.get_default_dtype())
    return Sparse(n, n, pre=index, post=index, weight=weight)


def _build_sumpool(node, in_shape, where, ctx):
    """Sum over windows: a Conv2d whose weight is 1 from each channel to itself (exact sums)."""
    if in_shape is None:
        raise ValueError(f"{where}: the input shape is unknown (no predecessor)")
    channels = in_shape[0]
    kernel = _pair(node.kernel_size, where, "kernel_size")
    weight = torch.zeros(channels, channels, *kernel)
    weight[torch.arange(channels), torch.arange(channels)] = 1.0
    return Conv2d(in_shape, channels, kernel, stride=_pair(node.stride, where, "stride"),
                  padding=_pair(node.padding, where, "padding"), weight=weight)


def _build_delay(node, in_shape, where, ctx):
    seconds = as_array(node.delay)
    steps = seconds / ctx.dt
    rounded = np.round(steps)
    if np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, np.abs(steps))):
        raise ValueError(f"{where}: delays {seconds.reshape(-1)[:4]} s are not whole multiples of dt = {ctx.dt:g} s")
    shape = in_shape or tuple(seconds.shape)
    if np.all(rounded == rounded.reshape(-1)[0]):
        return Delay(shape, int(rounded.reshape(-1)[0]))
    return Delay(shape, torch.as_tensor(np.array(np.broadcast_to(rounded, shape), dtype=np.int64)))


def _build_neuron(node, in_shape, where, ctx):
    model = NEURONS[type(node)]
    shape = in_shape
    if shape is None:
        sizes = as_array(node.v_threshold if hasattr(node, "v_threshold") else node.r)
        if sizes.ndim == 0:
            raise ValueError(f"{where}: the population shape is unknown (scalar parameters, no predecessor)")
        shape = tuple(sizes.shape)
    params, assumed = neuron_params(model, node, ctx.convention, ctx.dt, ctx.reset, shape, where)
    ctx.assumed.extend(assumed)
    return Population(model, shape, params)


#: NIR node class -> ``builder(node, in_shape or None, where, context) -> neurosim Node``
BUILDERS: Dict[type, Callable] = {
    nir.Affine: _build_affine, nir.Linear: _build_affine, nir.Conv2d: _build_conv2d, nir.Conv1d: _build_conv1d,
    nir.Threshold: _build_threshold,
    nir.AvgPool2d: _build_avgpool, nir.Flatten: _build_flatten, nir.Delay: _build_delay,
    nir.Scale: _build_scale, nir.SumPool2d: _build_sumpool,
    **{cls: _build_neuron for cls in NEURONS},
}


# ---------------------------------------------------------------------------- graph structure
def _flatten_graph(graph: nir.NIRGraph, prefix: str = "", file=None):
    """(nodes {path: node}, edges [(src, dst)], io {path: "input"|"output"} of nested graphs)."""
    nodes, edges, passthrough = {}, [], set()
    graph_name = prefix[:-1] or "(top-level graph)"
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise NIRFileError(file, f"edge ({src!r}, {dst!r}) names node {end!r}, which the graph does not have "
                                         f"(nodes: {sorted(graph.nodes)})", graph_name, "edges")
    for name, node in graph.nodes.items():
        path = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_pass = _flatten_graph(node, path + ".", file)
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            passthrough |= sub_pass
        else:
            nodes[path] = node
            if prefix and isinstance(node, (nir.Input, nir.Output)):
                passthrough.add(path)

    def endpoint(name: str, incoming: bool) -> List[str]:
        node = graph.nodes.get(name)
        if isinstance(node, nir.NIRGraph):      # an edge to/from the subgraph itself
            kind = nir.Input if incoming else nir.Output
            ports = [prefix + name + "." + k for k, n in node.nodes.items() if isinstance(n, kind)]
            if len(ports) != 1:
                raise NIRFileError(file, f"an edge names subgraph {prefix + name!r}, which has {len(ports)} "
                                         f"{kind.__name__} nodes; name one of them ({ports})", graph_name, "edges")
            return ports
        return [prefix + name]

    for src, dst in graph.edges:
        for s in endpoint(src, incoming=False):
            for d in endpoint(dst, incoming=True):
                edges.append((s, d))
    return nodes, edges, passthrough


def _contract(nodes, edges, passthrough):
    """Remove the nested Input/Output nodes, joining each predecessor to each successor."""
    for p in passthrough:
        preds = [s for s, d in edges if d == p]
        succs = [d for s, d in edges if s == p]
        edges = [(s, d) for s, d in edges if p not in (s, d)] + [(s, d) for s in preds for d in succs]
        del nodes[p]
    return nodes, list(dict.fromkeys(edges))


def _identifier(path: str, taken: set) -> str:
    name = re.sub(r"\W", "_", path)
    if not name or not name.isidentifier() or name[0].isdigit():
        name = "n" + name
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


def _back_edges(nodes, edges, listed: Optional[List[List[str]]]) -> Tuple[set, List[str]]:
    """The set of back-edges and the problems (loops without a neuron)."""
    if listed is not None:
        return {tuple(e) for e in listed}, []
    inner = [(s, d) for s, d in edges if s in nodes and d in nodes]
    back, problems = set(), []
    for comp in strongly_connected_components(list(nodes), inner):
        members = set(comp)
        loop = len(comp) > 1 or (comp[0], comp[0]) in inner
        if not loop:
            continue
        chosen = {(s, d) for s, d in inner if s in members and d in members and type(nodes[s]) in NEURONS}
        if not chosen:
            problems.append(f"loop {sorted(members)} has no neuron node to carry the step of delay")
        back |= chosen
    return back, problems


def _read_graph(graph_or_path) -> Tuple[nir.NIRGraph, Optional[str]]:
    """(graph, file name or None), the digest checked (shapes are checked while building)."""
    if isinstance(graph_or_path, nir.NIRGraph):
        graph, file = graph_or_path, None
    else:
        file = str(graph_or_path)
        graph = read_graph_file(file)
    check_digest(graph, file)
    return graph, file


def _shape_of(node) -> Optional[Tuple[int, ...]]:
    """The shape an Output node declares, or None when it declares none."""
    try:
        shape = _shape(node.output_type["output"])
    except (TypeError, ValueError, KeyError):
        return None
    return shape or None


def _check_shapes(edges, shapes, g, names, compute, outputs, nodes, file) -> None:
    """Every edge joins equal shapes: the source's output and the target's input."""
    for s, d in edges:
        if d in compute:
            want = g.nodes[names[d]].in_shapes["input"]
        elif d in outputs:
            want = _shape_of(nodes[d])
            if want is None or int(np.prod(want)) == int(np.prod(shapes[s])) and len(want) != len(shapes[s]):
                continue      # undeclared, or the same elements with a batch-like extra axis
        else:
            continue
        if tuple(shapes[s]) != tuple(want):
            raise NIRFileError(file, f"its input shape {tuple(want)} differs from the output shape "
                                     f"{tuple(shapes[s])} of node {s!r} connected to it", d, "input")


def from_nir(graph_or_path, convention: str = "neurosim", dt: Optional[float] = None,
             reset: Optional[str] = None) -> Simulator:
    """Build a :class:`~neurosim.Simulator` from a ``nir.NIRGraph`` or a NIR file path.

    ``convention``: ``"neurosim"`` (read neurosim's contract from the metadata; a file without it
    is read with NIR's literal equations, exact integration and a reset to v_reset, and warns),
    ``"snntorch"`` or ``"norse"`` (that library's meaning, see
    :mod:`neurosim.hardware.nir_conventions`). ``dt`` [s] overrides the file's or the
    convention's time step; ``reset`` overrides the reset mode of every spiking neuron. What had
    to be assumed is reported in one ``UserWarning``.

    Raises ``ValueError`` for a bad ``convention``, ``dt`` or ``reset`` argument;
    :class:`~neurosim.hardware.nir_files.NIRFileError` (a ``ValueError`` naming the file, node and
    key; ``MissingNIRFileError``, also a ``FileNotFoundError``, for no file) for a bad file,
    parameter or structure (see the module docstring); and
    :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every NIR node that
    neurosim cannot build. All before returning anything."""
    if convention not in CONVENTIONS:
        raise ValueError(f"from_nir: convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    if dt is not None and not (is_plain_number(dt) and dt > 0):
        raise ValueError(f"from_nir: dt must be a positive number of seconds, got {dt!r}")
    if reset is not None and reset not in RESETS:
        raise ValueError(f"from_nir: reset must be one of {RESETS}, got {reset!r}")
    graph, file = _read_graph(graph_or_path)
    try:
        return _from_graph(graph, file, convention, dt, reset)
    except (NIRFileError, UnsupportedNodesError):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, AssertionError, RuntimeError) as e:
        raise NIRFileError(file, f"{type(e).__name__}: {e}") from None


def _from_graph(graph: nir.NIRGraph, file, convention: str, dt, reset) -> Simulator:
    conv = CONVENTIONS[convention]
    meta = read_contract(graph, "graph") if convention == "neurosim" else {}
    assumed: List[str] = []
    if dt is None:
        dt = meta.get("dt", conv.default_dt)
        if dt is None:
            dt = 1e-3
            assumed.append("the file gives no time step: assumed dt = 1e-3 s (pass dt=)")
        elif convention != "neurosim":
            assumed.append(f"assumed {convention}'s dt = {dt:g} s (pass dt= if the model used another)")
    elif "dt" in meta and float(meta["dt"]) != float(dt):
        assumed.append(f"the file was exported with dt = {meta['dt']:g} s; simulating with dt = {dt:g} s")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0:
        raise NIRFileError(file, f"the time step must be a positive number of seconds, got {dt!r}", None,
                           "metadata/neurosim")
    dt = float(dt)

    nodes, edges, passthrough = _flatten_graph(graph, file=file)
    nodes, edges = _contract(nodes, edges, passthrough)
    problems = [(name, type(node).__name__, MISSING.get(type(node), f"no neurosim builder for NIR {type(node).__name__}"))
                for name, node in nodes.items()
                if not isinstance(node, (nir.Input, nir.Output)) and type(node) not in BUILDERS]
    if problems:
        raise UnsupportedNodesError("nir import", problems)

    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    compute = {n: node for n, node in nodes.items() if n not in inputs and n not in outputs}
    back, loop_problems = _back_edges(compute, edges, meta.get("back_edges"))
    taken: set = set()
    names = {path: _identifier(path, taken) for path in nodes}

    g = Graph()
    shapes: Dict[str, Tuple[int, ...]] = {}
    for path in inputs:
        try:
            shapes[path] = _shape(nodes[path].input_type["input"])
            g.add_input(names[path], shapes[path])
        except (TypeError, ValueError, KeyError) as e:
            raise NIRFileError(file, f"not a valid input shape: {e}", path, "shape") from None
    forward = [(s, d) for s, d in edges if (s, d) not in back and d in compute]
    order_problems = list(loop_problems)
    pending, built = dict(compute), set(inputs)
    ctx = _Context(conv, dt, reset)
    while pending:
        ready = [p for p in pending if all(s in built for s, d in forward if d == p)]
        if not ready:
            order_problems.append(f"nodes {sorted(pending)} form a loop without a back-edge")
            break
        for path in ready:
            preds = [s for s, d in forward if d == path]
            in_shape = shapes[preds[0]] if preds else None
            kind = type(pending[path]).__name__
            where = f"NIR {kind} node {path!r}"
            try:
                node = BUILDERS[type(pending[path])](pending[path], in_shape, where, ctx)
            except (NIRFileError, UnsupportedNodesError):
                raise
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as e:
                raise NIRFileError(file, f"cannot build it: {e}", path) from None
            shapes[path] = node.out_shape
            g.add(names[path], node)
            built.add(path)
            del pending[path]
    if order_problems:
        raise NIRFileError(file, "; ".join(order_problems), None, "edges")
    _check_shapes(edges, shapes, g, names, compute, outputs, nodes, file)
    for s, d in edges:
        if d in compute:
            g.connect(names[s], names[d], back=(s, d) in back)
    out_sources = [s for s, d in edges if d in outputs]
    listed = meta.get("outputs")
    g.add_output(*(listed if listed is not None else [names[s] for s in dict.fromkeys(out_sources)]))
    assumed.extend(ctx.assumed)
    if assumed:
        warnings.warn(f"from_nir (convention={convention!r}): " + "; ".join(dict.fromkeys(assumed)),
                      UserWarning, stacklevel=3)
    return Simulator(g, dt=dt)
