"""neurosim -> NIR: the ``Backend("nir")`` registry and :func:`to_nir`.

Each entry maps one neurosim node to one NIR node (ARCHITECTURE.md rules 4, 9, 12); the user's
network is only read. Node by node:

==================================  ==========================================================
neurosim                            NIR
==================================  ==========================================================
graph input ``x`` (shape s)         ``nir.Input`` named ``x``
each output node ``n``              ``nir.Output`` named ``output`` (one output) or ``output_n``
``Dense`` (no delays)               ``Linear`` (``weight [out, in]``) or ``Affine`` (with bias)
``Sparse`` (no delays)              the same, with the dense ``[out, in]`` matrix of its synapses
``Conv2d``                          ``Conv2d`` (dilation 1, groups 1, zero bias when it has none)
``Conv1d``                          ``Conv1d`` (stride, padding, dilation, groups; zero bias when none)
``Threshold``                       ``Threshold`` (``threshold`` broadcast to the node shape)
``AvgPool2d``                       ``AvgPool2d``
``Flatten``                         ``Flatten`` (start_dim 0, end_dim -1 of the sample)
``Delay`` (d steps)                 ``Delay`` (``delay = d dt`` seconds, per element)
``Population`` lif/cuba_lif/if/li   ``LIF`` / ``CubaLIF`` / ``IF`` / ``LI``, parameters broadcast
``Population`` cuba_li/integrator   ``CubaLI`` / ``I``
                                    to the population shape, and neurosim's discretisation
                                    contract under ``metadata["neurosim"]``
==================================  ==========================================================

Edges keep their direction; the graph's ``metadata["neurosim"]`` holds ``dt`` and the list of
back-edges (NIR has no such mark), so :func:`~neurosim.hardware.nir.from_nir` restores them, and
``metadata["neurosim_sha256"]`` a SHA-256 of all the rest (:func:`~neurosim.hardware.nir_files.graph_digest`),
which the importer checks, so a file damaged on disk is refused instead of loading other values.
Refused, with the reason, in one :class:`~neurosim.hardware.registry.UnsupportedNodesError`:
projections with synaptic delays, other neuron models, MaxPool2d, plug-in blocks, and edges
into ports other than ``input`` (COBA ``exc``/``inh``).
"""
from __future__ import annotations

import json
from typing import Dict, List, Tuple

import nir
import numpy as np
import torch

from neurosim import AvgPool2d, Conv1d, Conv2d, Delay, Dense, Flatten, Population, Sparse, Threshold
from .registry import Backend, UnsupportedNodesError

from .nir_conventions import CONTRACT_KEY, write_contract
from .nir_files import DIGEST_KEY, graph_digest

__all__ = ["NIR_EXPORT", "to_nir"]

NIR_EXPORT = Backend("nir")

#: neurosim model name -> (NIR class, {NIR field: neurosim params field})
NEURON_FIELDS = {
    "lif": (nir.LIF, {"tau": "tau_mem", "r": "r", "v_leak": "v_leak", "v_threshold": "v_threshold",
                      "v_reset": "v_reset"}),
    "cuba_lif": (nir.CubaLIF, {"tau_syn": "tau_syn", "tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak",
                               "v_threshold": "v_threshold", "v_reset": "v_reset", "w_in": "w_in"}),
    "if": (nir.IF, {"r": "r", "v_threshold": "v_threshold", "v_reset": "v_reset"}),
    "li": (nir.LI, {"tau": "tau_mem", "r": "r", "v_leak": "v_leak"}),
    "cuba_li": (nir.CubaLI, {"tau_syn": "tau_syn", "tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak",
                             "w_in": "w_in"}),
    "integrator": (nir.I, {"r": "r"}),
}


def _numpy(value, shape=None) -> np.ndarray:
    """A parameter (float or tensor) as a float64 array, broadcast to ``shape`` when given."""
    array = value.detach().cpu().to(torch.float64).numpy() if isinstance(value, torch.Tensor) \
        else np.asarray(value, dtype=np.float64)
    return np.array(np.broadcast_to(array, shape)) if shape is not None else array


def _no_delays(node) -> str:
    return ("synaptic delays have no NIR form here (move them into a Delay node)"
            if node.max_delay else None)


@NIR_EXPORT.register(Dense, supports=_no_delays)
def _dense(name, node: Dense, dt):
    weight = _numpy(node.weight)
    if node.bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=_numpy(node.bias))


@NIR_EXPORT.register(Sparse, supports=_no_delays)
def _sparse(name, node: Sparse, dt):
    weight = torch.zeros(node.out_features, node.in_features, dtype=torch.float64)
    weight.index_put_((node.post.long().cpu(), node.pre.long().cpu()),
                      node.weight.detach().cpu().to(torch.float64), accumulate=True)
    if node.bias is None:
        return nir.Linear(weight=weight.numpy())
    return nir.Affine(weight=weight.numpy(), bias=_numpy(node.bias))


@NIR_EXPORT.register(Conv2d)
def _conv2d(name, node: Conv2d, dt):
    _, h, w = node.in_shapes["input"]
    bias = _numpy(node.bias) if node.bias is not None else np.zeros(node.out_channels)
    return nir.Conv2d(input_shape=(h, w), weight=_numpy(node.weight), stride=node.stride,
                      padding=node.padding, dilation=(1, 1), groups=1, bias=bias)


@NIR_EXPORT.register(Conv1d)
def _conv1d(name, node: Conv1d, dt):
    bias = _numpy(node.bias) if node.bias is not None else np.zeros(node.out_channels)
    conv = nir.Conv1d(input_shape=node.in_shapes["input"][1], weight=_numpy(node.weight), stride=node.stride,
                      padding=node.padding, dilation=node.dilation, groups=node.groups, bias=bias)
    # nir 1.0 takes the input channels from weight.shape[1], which is C_in / groups: set the true type
    conv.input_type = {"input": np.array(node.in_shapes["input"])}
    return conv


@NIR_EXPORT.register(Threshold)
def _threshold(name, node: Threshold, dt):
    return nir.Threshold(threshold=_numpy(node.v_threshold, node.out_shape))


@NIR_EXPORT.register(AvgPool2d)
def _avgpool(name, node: AvgPool2d, dt):
    return nir.AvgPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                         padding=np.array(node.padding))


@NIR_EXPORT.register(Flatten)
def _flatten(name, node: Flatten, dt):
    return nir.Flatten(input_type={"input": np.array(node.in_shapes["input"])}, start_dim=0, end_dim=-1)


@NIR_EXPORT.register(Delay)
def _delay(name, node: Delay, dt):
    steps = node.delays.steps(node.out_shape).to(torch.float64)
    return nir.Delay(delay=steps.cpu().numpy() * dt)


def _population_supported(node: Population):
    if node.model.name not in NEURON_FIELDS:
        return (f"neuron model {node.model.name!r} has no NIR node (NIR models: "
                f"{', '.join(sorted(NEURON_FIELDS))})")
    return None


@NIR_EXPORT.register(Population, supports=_population_supported)
def _population(name, node: Population, dt):
    cls, fields = NEURON_FIELDS[node.model.name]
    params = node.params
    arrays = {nir_field: _numpy(getattr(params, ours), node.out_shape) for nir_field, ours in fields.items()}
    return cls(**arrays, metadata=write_contract(params, node.model.name, dt))


def _port_problems(graph) -> List[Tuple[str, str, str]]:
    return [(e.target, type(graph.nodes[e.target]).__name__,
             f"edge {e} reaches port {e.port!r}; NIR nodes have a single input")
            for e in graph.edges if e.port != "input"]


def _unique(name: str, taken) -> str:
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def to_nir(sim) -> nir.NIRGraph:
    """Export a :class:`~neurosim.Simulator` (graph + ``dt``) as a ``nir.NIRGraph``.

    Every node is checked first; nodes that cannot be mapped raise one
    :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing each with its reason. The
    network is not changed (weights are copied). Shapes in the NIR graph are per sample.

    Example::

        >>> graph = to_nir(Simulator(g, dt=1e-3))
        >>> nir.write("net.nir", graph)"""
    graph, dt = sim.graph, sim.dt
    graph.validate()
    problems = _port_problems(graph)
    try:
        NIR_EXPORT.check(graph)
    except UnsupportedNodesError as err:
        problems = err.problems + problems
    if problems:
        raise UnsupportedNodesError("nir", problems)
    nodes: Dict[str, nir.NIRNode] = {}
    for name, shape in graph.inputs.items():
        nodes[name] = nir.Input(input_type={"input": np.array(shape)})
    nodes.update(NIR_EXPORT.map_nodes(graph, dt))
    edges = [(e.source, e.target) for e in graph.edges]
    outputs = graph.output_names()
    for out in outputs:
        out_name = _unique("output" if len(outputs) == 1 else f"output_{out}", set(nodes))
        nodes[out_name] = nir.Output(output_type={"output": np.array(graph.nodes[out].out_shape)})
        edges.append((out, out_name))
    metadata = {CONTRACT_KEY: json.dumps({
        "dt": dt, "back_edges": [[e.source, e.target] for e in graph.edges if e.back],
        "outputs": outputs}, sort_keys=True)}
    exported = nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)   # fills pooling types
    exported.metadata[DIGEST_KEY] = graph_digest(exported)
    return exported
