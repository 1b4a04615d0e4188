"""``to_lava(sim)``: a fixed-point neurosim network as Lava processes (lava-nc 0.10).

Runs where Lava is importable (the separate environment of ``scripts/build_lava_env.py``; from the
main environment use :func:`neurosim.hardware.loihi.lava_process_run.run_lava_processes`). This
module imports Lava only inside :func:`to_lava`, after every check has passed, so importing it,
and checking a network (:func:`plan_lava`), works without Lava.

Axis order. Lava's shapes are neurosim's reversed: a population or graph input of shape
``(C, H, W)`` is ``(W, H, C)`` in Lava (``(n,)`` stays ``(n,)``), element ``[c, y, x]`` of
neurosim being element ``[x, y, c]`` of Lava (:func:`lava_shape`); so a Lava array ``a`` reads as
neurosim's ``a.transpose()`` (``a.T``: ``[W, H, C, T] -> [T, C, H, W]``).

Mapping (the registry :data:`LAVA`, one function per node type; the user's network is only read):

* ``Population("loihi_cuba", shape, p)``, ``shape`` ``(n,)`` or ``(C, H, W)`` ->
  ``lava.proc.lif.process.LIF(shape=lava_shape(shape), du=p.i_decay - 1, dv=p.v_decay,
  vth=p.v_th_mant, bias_mant, bias_exp)`` (the biases broadcast to ``shape`` per neuron, then
  transposed). Lava's bit-accurate model (``PyLifModelBitAcc``) runs
  ``u = trunc(u (4096 - du - 1) / 4096) + (a_in << 6)`` (24-bit wrap),
  ``v = clip(trunc(v (4096 - dv) / 4096) + u + (bias_mant << bias_exp))``, spike where
  ``v > vth << 6``, ``v = 0``: the neurosim model step for step, the ``<< 6`` of the input being
  done in neurosim's synapse instead. Refused: ``i_decay = 0`` (``du = -1``; ``du`` is 12-bit
  unsigned), ``v_decay = 4096`` (``dv`` is 12-bit, 0..4095), ``refractory_delay > 0`` (Lava 0.10's
  ``LIFRefractory`` has a ``floating_pt`` model only), ``du``/``dv``/``vth`` that differ between
  neurons (they are one register per LIF process), shapes other than ``(n,)`` and ``(C, H, W)``.
* :class:`~neurosim.hardware.loihi.LoihiDense` ``(m, e, delay)`` -> ``Dense(weights=2 m,
  weight_exp=e - 1, num_weight_bits=8, sign_mode=MIXED)``, or ``DelayDense`` (same weights,
  ``delays[j, i] = D_j``) when some ``D_j > 0``. Lava's mixed-sign synapse keeps 8 bits of
  magnitude and drops the lowest bit, so the mantissa is stored doubled with the exponent one
  lower, as in netx; the sum ``sum_i 2 m_ji s_i`` is even and ``>> 1`` (``e = 0``) is exact.
  ``sign_mode`` is given explicitly: Lava's guess for an all-negative matrix would clip
  ``-2 * 128`` to ``-255``.
* :class:`~neurosim.hardware.loihi.LoihiConv2d` ``(m [C_out, C_in / g, k_h, k_w], e, stride,
  padding, dilation, groups)`` -> ``lava.proc.conv.process.Conv(input_shape=(W, H, C_in),
  weight=(m << e)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1), stride=(s_w, s_h), padding=(p_w,
  p_h), dilation=(d_w, d_h), groups=g)``, as lava-dl's netx builds it. Lava's kernel is
  ``[C_out, k_w, k_h, C_in / g]`` and its model flips it back before a PyTorch cross-correlation,
  so the result is neurosim's ``sum (m << e) s`` (Lava's fixed-point Conv uses no weight exponent
  and drops no bit: the integer ``m << e`` is passed as it is). Lava's Conv has no delays.
* :class:`~neurosim.projections.conv.Flatten` of a population or graph input of shape
  ``(C, H, W)``, between it and synapses -> no process: the port transform
  ``s_out.transpose([2, 1, 0]).flatten()`` (Lava ``(W, H, C)`` back to ``(C, H, W)``, then row
  major, neurosim's order); of a ``(n,)`` one, the port itself. A Flatten must be fed by a
  population or graph input and feed only synapses.
* :class:`~neurosim.Sparse` -> ``lava.proc.sparse.process.Sparse`` (scipy CSR ``2 m``, ``e - 1``),
  only when its weights are Loihi weights as the ``loihi_cuba`` neuron reads them:
  ``w = (m << e) << 6`` with one ``e`` in 0..7 and ``m`` in [-128, 127]; no bias; every synapse
  with the same delay (per-synapse ``DelaySparse`` is not mapped).
* Graph inputs of shape ``(n,)`` or ``(C, H, W)``: the ``s_in`` ports of the synapses they feed,
  directly or through a Flatten (:attr:`LavaNetwork.inputs`); a source's ``s_out`` has the
  input's Lava shape (:attr:`LavaNetwork.input_shapes`).

Timing. Lava's Dense and Conv send at step ``t + 1`` what they received at ``t`` and its
``DelayDense`` ``D`` steps later still: a spike reaches the neuron ``1 + D`` steps after it was
sent. In neurosim a spike of the source at ``t`` reaches the population after
``latency + delay_j + back(in-edges) + back(out-edge)`` steps (``latency``: 1 by default for a
LoihiDense or LoihiConv2d, 0 for a Sparse; a back-edge reads the previous step; the in-edges are
the synapse's, and its Flatten's when it has one). So ``D_j`` is that sum minus 1 and must lie in
0..62, and be 0 for a conv. In particular a forward edge into a synapse with latency 1, or a
back-edge into one with latency 0, gives ``D_j = delay_j`` (a plain Dense or a Conv); a forward
edge into a synapse with no latency and no delay cannot be expressed (Lava always adds a step)
and is refused, and so is a conv whose edges need a delay (latency 1 on a back-edge). Several
in-edges into one population are summed by Lava's ``a_in`` port, as neurosim sums a port's
inputs. Every edge must run input/population -> [Flatten ->] synapse -> population: Lava's LIF
shifts its input by 6 bits and neurosim's does not, so spikes cannot enter a population without
a synapse.

Errors: one :class:`~neurosim.hardware.registry.UnsupportedNodesError` lists every node (and
every edge, under its synapse or Flatten) that cannot be mapped, and why, before anything is
built.

Example (in the Lava environment)::

    >>> net = to_lava(sim)
    >>> source = RingBuffer(data=spikes.T)              # spikes [T, *input shape] -> Lava [..., T]
    >>> net.connect_input("input", source.s_out)
    >>> net.neurons["lif"].run(RunSteps(T), Loihi2SimCfg(select_tag="fixed_pt"))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from neurosim.population import Population
from neurosim.projections import Sparse
from neurosim.projections.conv import Flatten

from ..registry import Backend, UnsupportedNodesError
from .conv import LoihiConv2d
from .fixed_point import ACTIVATION_SHIFT, DECAY_UNITY, MAX_DELAY, LoihiDense, single_int_value

__all__ = ["LAVA", "LavaNetwork", "SynapsePlan", "plan_lava", "to_lava", "lava_shape", "LAVA_MAX_DELAY"]

#: Lava's DelayDense accepts 0..63 (6 bits); neurosim's delays stop at 62, so do we
LAVA_MAX_DELAY = MAX_DELAY

#: node type -> mapping function ``fn(name, node, context) -> Lava process`` (None for a Flatten)
LAVA = Backend("lava")

#: the population / graph input ranks that map: ``(n,)`` and ``(C, H, W)``
MAPPED_RANKS = (1, 3)


def lava_shape(shape) -> Tuple[int, ...]:
    """Lava's shape of a neurosim shape: reversed, ``(C, H, W) -> (W, H, C)``, ``(n,) -> (n,)``."""
    return tuple(int(n) for n in reversed(tuple(shape)))


@dataclass
class SynapsePlan:
    """How one synapse node is built: the population or graph input whose spikes it reads
    (``source``), whether they pass through a Flatten (``flatten``: the port transform is needed
    for a ``(C, H, W)`` source), its target populations and Lava's delay per output neuron."""

    source: str
    targets: List[str]
    delays: np.ndarray                      # int64 [out]: Lava DelayDense steps (0: plain Dense / Conv)
    flatten: bool = False


@dataclass
class LavaNetwork:
    """The Lava processes of a network, by neurosim node name.

    ``processes``: every node's process (``LIF``, ``Dense``, ``DelayDense``, ``Sparse``, ``Conv``;
    a Flatten has none); ``neurons``: the ``LIF`` processes (probe ``s_out``, ``v``, ``u``; shape
    :func:`lava_shape` of the population's); ``inputs``: graph input name -> ``(s_in port,
    flatten)`` pairs a source must feed (see :meth:`connect_input`); ``input_shapes``: graph input
    name -> the Lava shape of the source's ``s_out`` (``(n,)`` or ``(W, H, C)``)."""

    processes: Dict[str, Any]
    neurons: Dict[str, Any]
    inputs: Dict[str, List[Tuple[Any, bool]]] = field(default_factory=dict)
    input_shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)

    def connect_input(self, name: str, out_port) -> None:
        """Connect a source's ``s_out`` (shape ``input_shapes[name]``) to every synapse fed by
        input ``name``, through ``transpose([2, 1, 0]).flatten()`` where a Flatten is between."""
        if name not in self.inputs:
            raise KeyError(f"LavaNetwork: no graph input {name!r}; inputs: {sorted(self.inputs)}")
        if tuple(out_port.shape) != tuple(self.input_shapes[name]):
            raise ValueError(f"LavaNetwork.connect_input({name!r}): the port has shape {tuple(out_port.shape)}, "
                             f"the input's Lava shape is {self.input_shapes[name]}")
        for port, flatten in self.inputs[name]:
            _flattened(out_port, flatten).connect(port)


def _flattened(out_port, flatten: bool):
    """``out_port`` as a Flatten reads it: Lava ``(W, H, C)`` -> ``(C, H, W)`` -> row major."""
    if not flatten or len(out_port.shape) == 1:
        return out_port
    return out_port.transpose([2, 1, 0]).flatten()


# ---------------------------------------------------------------------------- node checks
def _values(value) -> np.ndarray:
    """A parameter (int or tensor; Population keeps tensors as float buffers) as an int64 array."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().round().to(torch.int64).numpy()
    return np.asarray(value, dtype=np.int64)


def _population_supports(node: Population) -> Optional[str]:
    if node.model.name != "loihi_cuba":
        return (f"neuron model {node.model.name!r}: Lava's fixed-point LIF maps only 'loihi_cuba' "
                "(run neurosim.hardware.loihi.quantize first)")
    p = node.params
    if len(node.out_shape) not in MAPPED_RANKS:
        return f"shape {tuple(node.out_shape)}: only populations of shape (n,) or (C, H, W) are mapped"
    reasons = []
    for name in ("i_decay", "v_decay", "v_th_mant"):
        if single_int_value(getattr(p, name)) is None:
            reasons.append(f"{name} differs between neurons (Lava's LIF has one du/dv/vth register per process)")
    i_decay, v_decay = single_int_value(p.i_decay), single_int_value(p.v_decay)
    if i_decay == 0:
        reasons.append("i_decay = 0 (a current that never decays) needs du = -1; Lava's du is 12-bit "
                       "unsigned and its model adds 1 (i_decay = du + 1 in 1..4096)")
    if v_decay == DECAY_UNITY:
        reasons.append("v_decay = 4096 needs dv = 4096; Lava's dv is 12-bit unsigned (0..4095)")
    if p.refractory_delay > 0:
        reasons.append(f"refractory_delay = {p.refractory_delay}: Lava 0.10 has no fixed-point refractory "
                       "LIF (LIFRefractory has a floating_pt model only)")
    return "; ".join(reasons) or None


def _sparse_weights(node: Sparse) -> Tuple[Optional[np.ndarray], int, Optional[str]]:
    """``(m [out, in] int64, e, None)`` with ``to_dense() == (m << e) << 6``, or ``(None, 0, why)``."""
    w = node.to_dense().detach().cpu().to(torch.float64).numpy()
    scaled = w / 2 ** ACTIVATION_SHIFT
    if not np.all(scaled == np.round(scaled)):
        return None, 0, ("weights are not integer Loihi weights for the loihi_cuba neuron: each must be "
                         "(m << e) << 6 (m in [-128, 127], e in 0..7), i.e. a multiple of 64")
    scaled = scaled.astype(np.int64)
    for e in range(8):
        if np.all(scaled % (1 << e) == 0) and -128 <= (scaled >> e).min(initial=0) \
                and (scaled >> e).max(initial=0) <= 127:
            return scaled >> e, e, None
    return None, 0, ("weights are not 8-bit mantissas with one shared exponent: no e in 0..7 makes every "
                     "w / 64 = m << e with m in [-128, 127]")


def _sparse_supports(node: Sparse) -> Optional[str]:
    reasons = []
    if node.bias is not None:
        reasons.append("has a bias (Loihi synapses have none; use the neuron's bias_mant)")
    if node.delays is not None and node.delays.group is not None:
        reasons.append("per-synapse delays that differ (Lava's DelaySparse is not mapped)")
    why = _sparse_weights(node)[2]
    if why:
        reasons.append(why)
    return "; ".join(reasons) or None


def _synapse_latency(node) -> int:
    """Steps a synapse adds before its delays: LoihiDense's / LoihiConv2d's ``latency``, Sparse none."""
    return int(node.latency) if isinstance(node, (LoihiDense, LoihiConv2d)) else 0


def _synapse_delays(node) -> np.ndarray:
    """neurosim's own delay per output neuron, int64 ``[out]`` (a Sparse has one shared delay, a
    LoihiConv2d none: one zero, Lava's Conv having no delays to set per neuron)."""
    if isinstance(node, LoihiDense):
        return node.delays().cpu().numpy().astype(np.int64)
    if isinstance(node, LoihiConv2d):
        return np.zeros(1, dtype=np.int64)
    shared = 0 if node.delays is None else int(node.delays.values[0])
    return np.full(node.out_features, shared, dtype=np.int64)


SYNAPSES = (LoihiDense, LoihiConv2d, Sparse)


# ---------------------------------------------------------------------------- edge checks
def _is_spike_source(graph, name: str) -> bool:
    """A graph input or a population: what a synapse (or a Flatten) may read."""
    return name in graph.inputs or (name in graph.nodes and isinstance(graph.nodes[name], Population))


def _kind(graph, name: str) -> str:
    return "graph input" if name in graph.inputs else type(graph.nodes[name]).__name__


def _check_flatten(graph, name: str, problems: list) -> None:
    """A Flatten reads one population or graph input and feeds synapses only."""
    bad = []
    in_edges = graph.in_edges(name)
    out_edges = [e for e in graph.edges if e.source == name]
    if len(in_edges) != 1:
        bad.append(f"{len(in_edges)} in-edges; a Flatten maps to a port transform of one source")
    for e in in_edges:
        if not _is_spike_source(graph, e.source):
            bad.append(f"in-edge {e}: its source is a {_kind(graph, e.source)}; a Flatten maps to a port "
                       "transform of a population's or graph input's spikes")
    if not out_edges:
        bad.append("no out-edge (a Flatten maps only as the input of synapses)")
    for e in out_edges:
        if not isinstance(graph.nodes[e.target], (LoihiDense, Sparse)):
            bad.append(f"out-edge {e}: its target is a {type(graph.nodes[e.target]).__name__}; a Flatten must "
                       "feed synapses (LoihiDense, Sparse): Lava has no process for it, only a port transform")
    if bad:
        problems.append((name, "Flatten", "; ".join(bad)))


def _resolve_source(graph, edge) -> Tuple[Optional[str], int, bool, Optional[str]]:
    """``(spike source, back-edges on the way, through a Flatten, None)`` for a synapse's in-edge,
    or ``(None, 0, False, why)``. A Flatten in between is looked through (its own in-edge counts)."""
    if _is_spike_source(graph, edge.source):
        return edge.source, int(edge.back), False, None
    node = graph.nodes[edge.source] if edge.source in graph.nodes else None
    if isinstance(node, Flatten):
        before = graph.in_edges(edge.source)
        if len(before) == 1 and _is_spike_source(graph, before[0].source):
            return before[0].source, int(edge.back) + int(before[0].back), True, None
        return None, 0, False, ""               # the Flatten's own check names the problem
    return None, 0, False, (f"in-edge {edge}: its source is a {_kind(graph, edge.source)}; a synapse must be "
                            "fed by a graph input or a population (spikes), directly or through a Flatten")


def _plan_synapse(graph, name: str, node, problems: list) -> Optional[SynapsePlan]:
    kind = type(node).__name__
    in_edges = graph.in_edges(name)
    out_edges = [e for e in graph.edges if e.source == name]
    bad = []
    if len(in_edges) != 1:
        bad.append(f"{len(in_edges)} in-edges; a synapse maps to one Lava connection from one source "
                   "(give each source its own synapse)")
    resolved = [_resolve_source(graph, e) for e in in_edges]
    bad += [why for *_, why in resolved if why]
    failed = any(why is not None for *_, why in resolved)
    if not out_edges:
        bad.append("no out-edge (it feeds no population)")
    for e in out_edges:
        if not isinstance(graph.nodes[e.target], Population):
            bad.append(f"out-edge {e}: its target is a {type(graph.nodes[e.target]).__name__}; a synapse "
                       "must feed populations")
    if len({e.back for e in out_edges}) > 1:
        bad.append("its out-edges mix back-edges and forward edges (they would need two Lava delays)")
    if not bad and not failed:
        source, back_in, flatten, _ = resolved[0]
        steps = _synapse_latency(node) + _synapse_delays(node) + back_in + int(out_edges[0].back)
        delays = steps - 1
        if delays.min() < 0:
            bad.append(f"edge {in_edges[0]}: the spike arrives in the step it was sent (latency "
                       f"{_synapse_latency(node)}, delay 0, forward edges); Lava's synapses always add one "
                       "step (use latency 1 on a forward edge, latency 0 only on a back-edge)")
        elif isinstance(node, LoihiConv2d) and delays.max() > 0:
            backs = back_in + int(out_edges[0].back)
            bad.append(f"edges {in_edges[0]} / {out_edges[0]}: latency {node.latency} and {backs} back-edge(s) "
                       f"make {int(steps.max())} steps, which needs a delay of {int(delays.max())}; "
                       "Lava's Conv has no delays (use latency 0 on a back-edge, latency 1 on forward edges)")
        elif delays.max() > LAVA_MAX_DELAY:
            bad.append(f"edges {in_edges[0]} / {out_edges[0]}: a total of {int(steps.max())} steps needs a "
                       f"Lava delay of {int(delays.max())} > {LAVA_MAX_DELAY}")
    if bad:
        problems.append((name, kind, "; ".join(bad)))
        return None
    if failed:
        return None
    return SynapsePlan(source, [e.target for e in out_edges], delays.astype(np.int64), flatten)


def _check_population_edges(graph, name: str, problems: list) -> None:
    for e in graph.in_edges(name):
        source = graph.nodes[e.source] if e.source in graph.nodes else None
        if not isinstance(source, SYNAPSES):
            problems.append((name, "Population", f"in-edge {e} comes from a {_kind(graph, e.source)}, not a "
                             "synapse: Lava's LIF shifts its input by 6 bits and neurosim's does not; put a "
                             "LoihiDense (or LoihiConv2d) between"))


def _check_inputs(graph, problems: list) -> None:
    for name, shape in graph.inputs.items():
        for e in graph.edges:
            if e.source != name:
                continue
            target = (e.target, type(graph.nodes[e.target]).__name__)
            if e.back:
                problems.append((*target, f"in-edge {e}: a back-edge from a graph input is not mapped"))
            if len(shape) not in MAPPED_RANKS:
                problems.append((*target, f"in-edge {e}: graph input {name!r} has shape {tuple(shape)}; only "
                                 "(n,) and (C, H, W) inputs are mapped"))


def plan_lava(sim) -> Dict[str, SynapsePlan]:
    """Check that ``sim`` (a Simulator or a Graph) maps to Lava, without importing Lava.

    Returns ``{synapse name: SynapsePlan}``; raises one :class:`UnsupportedNodesError` naming
    every node that cannot be mapped (unknown type, out-of-range parameter, or an edge whose timing
    Lava cannot express) and why."""
    graph = getattr(sim, "graph", sim)
    problems = []
    for name, node in graph.nodes.items():
        fn, reason = LAVA.entry(node)
        if fn is None:
            problems.append((name, type(node).__name__, reason))
    plans = {}
    for name, node in graph.nodes.items():
        if isinstance(node, SYNAPSES):
            plan = _plan_synapse(graph, name, node, problems)
            if plan is not None:
                plans[name] = plan
        elif isinstance(node, Population):
            _check_population_edges(graph, name, problems)
        elif isinstance(node, Flatten):
            _check_flatten(graph, name, problems)
    _check_inputs(graph, problems)
    if problems:
        raise UnsupportedNodesError(LAVA.name, problems)
    return plans


# ---------------------------------------------------------------------------- mapping functions
def _per_neuron(value, shape) -> np.ndarray:
    """A parameter broadcast to neurosim's ``shape`` per neuron, in Lava's order (transposed), int32."""
    return np.ascontiguousarray(np.broadcast_to(_values(value), tuple(shape)).T).astype(np.int32)


@LAVA.register(Population, supports=_population_supports)
def _map_population(name: str, node: Population, context):
    from lava.proc.lif.process import LIF
    p = node.params
    shape = tuple(node.out_shape)
    return LIF(shape=lava_shape(shape), du=single_int_value(p.i_decay) - 1, dv=single_int_value(p.v_decay),
               vth=single_int_value(p.v_th_mant), bias_mant=_per_neuron(p.bias_mant, shape),
               bias_exp=_per_neuron(p.bias_exp, shape), name=name)


def _lava_weights(exponent: int) -> Dict[str, Any]:
    """Lava's synapse options for weights passed as ``2 m``: exponent ``e - 1``, mixed sign."""
    from lava.utils.weightutils import SignMode
    return dict(weight_exp=exponent - 1, num_weight_bits=8, sign_mode=SignMode.MIXED)


@LAVA.register(LoihiDense)
def _map_loihi_dense(name: str, node: LoihiDense, context):
    from lava.proc.dense.process import DelayDense, Dense
    weights = 2 * node.weight_mant.detach().cpu().to(torch.int64).numpy()   # a copy: never the user's
    delays = context[name].delays
    options = _lava_weights(node.weight_exp)
    if delays.max() == 0:
        return Dense(weights=weights, name=name, **options)
    per_synapse = np.repeat(delays[:, None], weights.shape[1], axis=1).astype(int)
    return DelayDense(weights=weights, delays=per_synapse, name=name, **options)


@LAVA.register(LoihiConv2d)
def _map_loihi_conv(name: str, node: LoihiConv2d, context):
    from lava.proc.conv.process import Conv
    if context[name].delays.max() != 0:
        raise AssertionError(f"{name}: plan_lava admits a LoihiConv2d only without a Lava delay")
    w_int = node.weight_int().detach().cpu().numpy()                        # [C_out, C_in / g, k_h, k_w]
    weight = np.ascontiguousarray(w_int[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32)
    return Conv(weight=weight, weight_exp=0, input_shape=lava_shape(node.in_shape), stride=node.stride[::-1],
                padding=node.padding[::-1], dilation=node.dilation[::-1], groups=node.groups, name=name)


@LAVA.register(Flatten)
def _map_flatten(name: str, node: Flatten, context):
    """No process: the synapses after it read their source through ``transpose([2, 1, 0]).flatten()``."""
    return None


@LAVA.register(Sparse, supports=_sparse_supports)
def _map_sparse(name: str, node: Sparse, context):
    from scipy.sparse import csr_matrix
    from lava.proc.sparse.process import Sparse as LavaSparse
    mantissa, exponent, _ = _sparse_weights(node)
    if context[name].delays.max() != 0:
        raise AssertionError(f"{name}: plan_lava admits a Sparse only without a Lava delay")
    return LavaSparse(weights=csr_matrix(2 * mantissa), name=name, **_lava_weights(exponent))


def to_lava(sim) -> LavaNetwork:
    """Build the Lava processes of ``sim`` (a Simulator or Graph of ``loihi_cuba`` populations,
    LoihiDense / LoihiConv2d / Sparse synapses and Flattens) and connect them; see the module
    docstring for the mapping, axis order and timing. Needs Lava (raises ``ImportError`` saying so
    after the checks pass). The network is only read; the processes hold copies of its values.

    Returns a :class:`LavaNetwork`: ``processes[node]``, ``neurons[population]`` (Lava shape
    ``(n,)`` or ``(W, H, C)``), ``inputs[graph input]`` (the ports a ``RingBuffer`` source of
    shape ``input_shapes[graph input]`` feeds, with :meth:`LavaNetwork.connect_input`)."""
    graph = getattr(sim, "graph", sim)
    plans = plan_lava(graph)
    try:
        import lava.magma.core.process.process  # noqa: F401
    except ImportError as error:
        raise ImportError("to_lava needs Lava (lava-nc 0.10), which is not importable here; build its "
                          "environment with `make lava-env`, or use neurosim.hardware.loihi.lava_process_run."
                          "run_lava_processes from this one") from error
    processes = {name: p for name, p in LAVA.map_nodes(graph, context=plans).items() if p is not None}
    inputs: Dict[str, List[Tuple[Any, bool]]] = {name: [] for name in graph.inputs}
    for name, plan in plans.items():
        if plan.source in graph.inputs:
            inputs[plan.source].append((processes[name].s_in, plan.flatten))
        else:
            _flattened(processes[plan.source].s_out, plan.flatten).connect(processes[name].s_in)
        for target in plan.targets:
            processes[name].a_out.connect(processes[target].a_in)
    neurons = {name: processes[name] for name, node in graph.nodes.items() if isinstance(node, Population)}
    shapes = {name: lava_shape(shape) for name, shape in graph.inputs.items()}
    return LavaNetwork(processes=processes, neurons=neurons, inputs=inputs, input_shapes=shapes)
