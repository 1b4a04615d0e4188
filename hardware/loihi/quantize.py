"""``quantize(sim)``: a trained float network (Dense / Conv2d -> LIF / CubaLIF) as the fixed-point Loihi model.

Each population ``p`` gets a voltage scale ``s_p`` (volts per integer unit, ``v = s_p v_int``) and
each Dense or Conv2d feeding it a mantissa/exponent weight. With ``k_p`` the float membrane gain per unit
of input (``lif``: ``k = (1 - a_mem) r``; ``cuba_lif``: ``k = c r w_in``, ``c`` its exact or Euler
current coefficient, see :mod:`neurosim.neurons.cuba_lif`), a float weight ``W`` moves the
membrane by ``k W`` volts per spike, which the integer model does with ``m << (e + 6)`` units::

    w_real = k_p W / (64 s_p)          m = clamp(round(w_real / 2^e), -128, 127)
    v_th_mant = round(v_threshold / (64 s_p))
    lif:       i_decay = 4096 (u = this step's input),  v_decay = round(4096 (1 - a_mem))
    cuba_lif:  i_decay = round(4096 (1 - a_syn)),       v_decay = round(4096 (1 - a_mem))
    a = exp(-dt / tau) ("exact") or 1 - dt / tau ("euler"); i_decay in 1..4096, v_decay in 0..4095
    (the ranges Lava's du/dv registers express)

Choice of scale: the synapse node (Dense or Conv2d) with the largest ``k max|W|`` into ``p`` uses
the full mantissa range (127) at the largest exponent ``e*`` in ``max_weight_exp``..0 (7 by
default, 1 for netx) for which ``v_th_mant <= 2^17 - 1`` and the worst
case current (every input spiking every step, ``sum |m| 2^(e+6) 4096 / i_decay`` over the
inputs of one neuron, summed over every synapse node into ``p``; for a Conv2d, over one output
channel's receptive field ``[C_in / groups, k_h, k_w]``, see :mod:`.quantize_conv`) stays below
2^23, so u never wraps; every other synapse node into ``p`` takes the smallest exponent that
holds its largest weight. When no exponent meets both bounds, ``e* = 0``
and the report carries a warning.

Timing (``timing=``): ``"loihi"`` (default) gives every Dense / Conv2d fed by forward edges
Loihi's one step of latency (:class:`LoihiDense` / :class:`LoihiConv2d` ``latency=1``) and one fed
through a back-edge (directly or through a Flatten) none (the back-edge is that step), so the
network runs step for step as Lava runs its netx export; population ``p`` then spikes ``k_p``
steps after the float network, ``k_p`` the number of synapse layers on its forward path
(``report.latency_steps``; a Flatten adds none). ``"engine"`` keeps the float network's
timing (``latency=0`` everywhere): for comparing accuracy, not for export.

Report (:class:`QuantizationReport`): per Dense / Conv2d the relative weight error, ``max|W_hat - W| /
max|W|`` and ``||W_hat - W||_2 / ||W||_2`` with ``W_hat = (m << (e + 6)) weight_scale``; per
population the threshold and decay errors; with ``inputs``, the fraction of equal spike entries
(``[T, batch, n]``, every population) between the float and the quantised network, run from rest,
comparing float step ``t`` with quantised step ``t + k_p`` (``t < T - k_p``).

Mapped: ``Dense`` (no bias; delays one per output neuron, 0..62) feeding exactly one population,
fed by graph inputs, populations or a Flatten of one; ``Conv2d`` (no bias) feeding exactly one
population, fed by graph inputs or populations, to :class:`LoihiConv2d` (same stride, padding,
dilation, groups); ``Flatten`` reading one population (or graph input) and feeding Dense nodes,
kept as a Flatten (integer spikes pass through); ``Population`` of ``lif`` / ``cuba_lif`` with
``reset="zero"``, ``v_leak = 0``, ``input_same_step=True``, ``v_threshold > 0`` and scalar
parameters, fed by Dense / Conv2d nodes only. Refused: pools (Loihi has no graded pooling: use a
strided conv or pool=1), biases, and everything else, all listed in one
:class:`~neurosim.hardware.registry.UnsupportedNodesError`.
The user's network is only read.

Example::

    >>> qsim, report = quantize(sim, inputs=spikes)      # spikes: [T, batch, n_in]
    >>> report.spike_agreement, report.layers["fc1"].max_rel_error
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from neurosim.graph import Graph
from neurosim.monitor import Monitor
from neurosim.neurons.base import decay_factor
from neurosim.neurons.cuba_lif import exact_current_coefficient
from neurosim.population import Population
from neurosim.projections.conv import Conv2d, Flatten
from neurosim.projections.dense import Dense
from neurosim.simulator import Simulator

from ..registry import Backend, UnsupportedNodesError
from .fixed_point import (ACTIVATION_SHIFT, DECAY_UNITY, MAX_DELAY, PARAM_RANGES, THRESHOLD_SHIFT, UV_LIMIT,
                          WEIGHT_EXP_RANGE, WEIGHT_MANT_RANGE, LoihiCubaParams, LoihiDense)
from .quantize_conv import (SYNAPSE_TYPES, ConvGeometry, conv_reason, conv_structure_problems, loihi_conv, map_conv,
                            map_flatten, neuron_bounds, refusal)

__all__ = ["quantize", "QuantizationReport", "LayerReport", "PopulationReport", "weight_mantissa",
           "fake_quantize_weight", "LOIHI"]

LOIHI = Backend("loihi")
_MAX_V_TH_MANT = PARAM_RANGES["v_th_mant"][1]


def weight_mantissa(w_real: torch.Tensor, exponent: int) -> torch.Tensor:
    """``m = clamp(round(w_real / 2^exponent), -128, 127)`` (round half to even), same dtype."""
    return torch.round(w_real / 2.0 ** exponent).clamp(*WEIGHT_MANT_RANGE)


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantised weight; backward: the identity (straight-through estimator)."""

    @staticmethod
    def forward(ctx, w, exponent, scale):
        return weight_mantissa(w / scale, exponent) * (scale * 2.0 ** exponent)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def fake_quantize_weight(w: torch.Tensor, exponent: int, scale: float = 1.0) -> torch.Tensor:
    """Quantisation-aware training: ``w_q = clamp(round(w / (scale 2^e)), -128, 127) scale 2^e`` in
    the forward pass, ``dL/dw = dL/dw_q`` in the backward pass (straight-through).

    With a layer of :func:`quantize`'s report, ``fake_quantize_weight(W, layer.weight_exp + 6,
    layer.weight_scale)`` is that layer's ``W_hat`` exactly. Shapes: any; output like ``w``."""
    return _StraightThrough.apply(w, int(exponent), float(scale))


# ---------------------------------------------------------------------- per-node mappings
def _scalar(value) -> Optional[float]:
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 else None
    return float(value)


def _population_reason(node: Population) -> Optional[str]:
    p, name = node.params, node.model.name
    if name not in ("lif", "cuba_lif"):
        return f"neuron model {name!r} has no Loihi CUBA counterpart (mapped: lif, cuba_lif)"
    numeric = ("tau_mem", "v_threshold", "v_leak", "r") + (("tau_syn", "w_in") if name == "cuba_lif" else ())
    per_neuron = [f for f in numeric if _scalar(getattr(p, f)) is None]
    if per_neuron:
        return f"per-neuron parameters {per_neuron} are not mapped (one value per population)"
    problems = []
    if p.reset != "zero":
        problems.append(f"reset={p.reset!r} (Loihi resets v to 0: use reset='zero')")
    if _scalar(p.v_leak) != 0.0:
        problems.append(f"v_leak={_scalar(p.v_leak)} (Loihi's leak is towards 0)")
    if not p.input_same_step:
        problems.append("input_same_step=False (Loihi integrates this step's input)")
    if _scalar(p.v_threshold) <= 0:
        problems.append(f"v_threshold={_scalar(p.v_threshold)} (must be > 0)")
    return "; ".join(problems) or None


def _row_delays(node: Dense) -> Optional[torch.Tensor]:
    """The per-output delays ``[out]`` of a Dense whose synapses onto a neuron share one delay."""
    if node.delays is None:
        return torch.zeros(node.out_features, dtype=torch.long)
    values = torch.tensor(node.delays.values)
    if node.delays.uniform:
        return values.expand(node.out_features).clone()
    per_synapse = values[node.delays.group]
    return per_synapse[:, 0] if bool((per_synapse == per_synapse[:, :1]).all()) else None


def _dense_reason(node: Dense) -> Optional[str]:
    problems = []
    if node.bias is not None:
        problems.append("a bias (Loihi's bias acts on the voltage, not on the synaptic input)")
    delays = _row_delays(node)
    if delays is None:
        problems.append("delays that differ between the synapses onto one neuron (Loihi: one per output neuron)")
    elif int(delays.max()) > MAX_DELAY:
        problems.append(f"a delay of {int(delays.max())} steps (Loihi: 0..{MAX_DELAY})")
    return ("has " + " and ".join(problems)) if problems else None


@dataclass(frozen=True)
class _PopulationMap:
    i_decay: int
    v_decay: int
    gain: float                  # k: volts of membrane per unit of float input
    a_syn: float                 # float current decay (0 for lif)
    a_mem: float
    threshold: float
    refractory: int


@LOIHI.register(Population, supports=_population_reason)
def _map_population(name: str, node: Population, dt: float) -> _PopulationMap:
    p = node.params
    tau_mem, r = _scalar(p.tau_mem), _scalar(p.r)
    a_mem = decay_factor(tau_mem, dt, p.integration)
    v_decay = min(max(round(DECAY_UNITY * (1.0 - a_mem)), 0), DECAY_UNITY - 1)
    if node.model.name == "lif":
        return _PopulationMap(DECAY_UNITY, v_decay, (1.0 - a_mem) * r, 0.0, a_mem,
                              _scalar(p.v_threshold), p.refractory_steps)
    tau_syn = _scalar(p.tau_syn)
    a_syn = decay_factor(tau_syn, dt, p.integration)
    c = exact_current_coefficient(tau_mem, tau_syn, dt) if p.integration == "exact" else dt / tau_mem
    i_decay = min(max(round(DECAY_UNITY * (1.0 - a_syn)), 1), DECAY_UNITY)
    return _PopulationMap(i_decay, v_decay, c * r * _scalar(p.w_in), a_syn, a_mem,
                          _scalar(p.v_threshold), p.refractory_steps)


@LOIHI.register(Dense, supports=_dense_reason)
def _map_dense(name: str, node: Dense, dt: float) -> Tuple[torch.Tensor, torch.Tensor]:
    return node.weight.detach().to(torch.float64).clone(), _row_delays(node)


LOIHI.register(Conv2d, supports=conv_reason)(map_conv)
LOIHI.register(Flatten)(map_flatten)


# ---------------------------------------------------------------------- report
@dataclass(frozen=True)
class LayerReport:
    """One Dense or Conv2d: target population, exponent, ``weight_scale`` (``W_hat = (m << (e + 6))
    weight_scale``, float weight units per integer unit) and the relative weight errors."""

    population: str
    weight_exp: int
    weight_scale: float
    max_rel_error: float
    rms_rel_error: float


@dataclass(frozen=True)
class PopulationReport:
    """One population: ``volts_per_unit`` s (v = s v_int), the integer parameters, the relative
    threshold error ``(64 v_th_mant s - v_threshold) / v_threshold`` and the absolute errors of
    the per-step decay factors (``|(1 - i_decay/4096) - a_syn|``, the same for v)."""

    volts_per_unit: float
    params: LoihiCubaParams
    threshold_rel_error: float
    current_decay_error: float
    voltage_decay_error: float


@dataclass(frozen=True)
class QuantizationReport:
    """Errors introduced by :func:`quantize` (see the module docstring). ``spike_agreement``:
    fraction of equal spike entries over every population (None without inputs);
    ``population_agreement`` per population; ``spike_counts``: (float, quantised) spikes;
    ``latency_steps``: steps by which each population of the quantised network lags the float one
    (0 everywhere with ``timing="engine"``)."""

    layers: Dict[str, LayerReport]
    populations: Dict[str, PopulationReport]
    spike_agreement: Optional[float] = None
    population_agreement: Dict[str, float] = field(default_factory=dict)
    spike_counts: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    warnings: Tuple[str, ...] = ()
    latency_steps: Dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- structure
def _reads_spikes(graph: Graph, source: str) -> bool:
    """A graph input, a population, or a Flatten of one (Loihi synapses carry spikes)."""
    if source not in graph.nodes:
        return True
    node = graph.nodes[source]
    if isinstance(node, Flatten):
        return all(e.source not in graph.nodes or isinstance(graph.nodes[e.source], Population)
                   for e in graph.in_edges(source))
    return isinstance(node, Population)


def _structure_problems(graph: Graph) -> List[Tuple[str, str, str]]:
    """Dense nodes must feed exactly one population and read spikes; populations read Dense or
    Conv2d only; Conv2d and Flatten rules in :func:`.quantize_conv.conv_structure_problems`."""
    problems = []
    for name, node in graph.nodes.items():
        ins = graph.in_edges(name)
        if isinstance(node, Dense):
            targets = {e.target for e in graph.edges if e.source == name}
            if len(targets) != 1 or not isinstance(graph.nodes[next(iter(targets))], Population):
                problems.append((name, "Dense", f"feeds {sorted(targets) or 'nothing'}; it must feed exactly one "
                                 "population (its weights are scaled to that population's voltage)"))
            bad = [e.source for e in ins if not _reads_spikes(graph, e.source)]
            if bad:
                problems.append((name, "Dense", f"reads {bad}, which are not populations (Loihi synapses carry spikes)"))
        elif isinstance(node, Population):
            bad = [e.source for e in ins if e.source not in graph.nodes
                   or not isinstance(graph.nodes[e.source], SYNAPSE_TYPES)]
            if bad:
                problems.append((name, "Population", f"reads {bad} directly; a population is fed through Dense or "
                                 "Conv2d nodes only"))
    return problems + conv_structure_problems(graph)


def _edge_kinds(graph: Graph, name: str) -> set:
    """Whether each input of synapse ``name`` arrives through a back-edge (directly, or on the
    way into the Flatten it reads): ``{True}``, ``{False}`` or both."""
    kinds = set()
    for e in graph.in_edges(name):
        flat = e.source in graph.nodes and isinstance(graph.nodes[e.source], Flatten)
        through = graph.in_edges(e.source) if flat else []
        kinds.add(e.back or any(f.back for f in through))
    return kinds


def _check(graph: Graph, timing: str) -> None:
    problems = []
    for name, node in graph.nodes.items():
        fn, reason = (None, refusal(node)) if refusal(node) else LOIHI.entry(node)
        if fn is None:
            problems.append((name, type(node).__name__, reason))
        elif timing == "loihi" and isinstance(node, SYNAPSE_TYPES):
            if _edge_kinds(graph, name) == {True, False}:
                kind = type(node).__name__
                problems.append((name, kind, "reads both forward edges and back-edges; on Loihi a synapse "
                                 f"has one latency (split it into two {kind} nodes)"))
    problems += _structure_problems(graph)
    if problems:
        raise UnsupportedNodesError(LOIHI.name, problems)


# ---------------------------------------------------------------------- scales
def _smallest_exponent(w_real: torch.Tensor) -> int:
    """The smallest e in 0..7 with ``round(max|w_real| / 2^e) <= 127`` (7 when none)."""
    largest = float(w_real.abs().max()) if w_real.numel() else 0.0
    for e in range(WEIGHT_EXP_RANGE[0], WEIGHT_EXP_RANGE[1] + 1):
        if largest / 2.0 ** e < WEIGHT_MANT_RANGE[1] + 0.5:
            return e
    return WEIGHT_EXP_RANGE[1]


def _candidate(pop: _PopulationMap, weights: Dict[str, torch.Tensor], top_exp: int, max_exp: int,
               per_channel: Dict[str, bool], shape):
    """(s, v_th_mant, {synapse: (m, e)}, worst-case |u|) for the largest weight at exponent
    ``top_exp``; ``per_channel[name]``: a conv (bound per output channel), ``shape``: the population's."""
    largest = max(float(w.abs().max()) if w.numel() else 0.0 for w in weights.values()) * pop.gain
    if largest == 0.0:
        s = pop.threshold / (2 ** THRESHOLD_SHIFT * 2 ** 10)
    else:
        s = largest / (WEIGHT_MANT_RANGE[1] * 2.0 ** (top_exp + ACTIVATION_SHIFT))
    v_th = max(1, round(pop.threshold / (2 ** THRESHOLD_SHIFT * s)))
    mapped, worst = {}, 0.0
    for name, w in weights.items():
        w_real = pop.gain * w / (2 ** ACTIVATION_SHIFT * s)
        e = min(_smallest_exponent(w_real), max_exp)
        m = weight_mantissa(w_real, e)
        mapped[name] = (m, e)
        worst = worst + neuron_bounds(m, e, per_channel[name], shape)
    worst_u = float(torch.as_tensor(worst).max()) * DECAY_UNITY / pop.i_decay
    return s, v_th, mapped, worst_u


def _choose(name: str, pop: _PopulationMap, weights: Dict[str, torch.Tensor], warnings: List[str], max_exp: int,
            per_channel: Dict[str, bool], shape):
    for top in range(max_exp, WEIGHT_EXP_RANGE[0] - 1, -1):
        s, v_th, mapped, worst_u = _candidate(pop, weights, top, max_exp, per_channel, shape)
        if v_th <= _MAX_V_TH_MANT and worst_u < UV_LIMIT:
            return s, v_th, mapped
    if v_th > _MAX_V_TH_MANT:
        warnings.append(f"population {name!r}: v_th_mant {v_th} clipped to {_MAX_V_TH_MANT} (threshold too "
                        "large for the weights)")
        v_th = _MAX_V_TH_MANT
    if worst_u >= UV_LIMIT:
        warnings.append(f"population {name!r}: the worst-case current {worst_u:.3g} exceeds 2^23 at the "
                        "smallest exponent; u may wrap around if many inputs fire together")
    return s, v_th, mapped


def _relative_errors(w: torch.Tensor, w_hat: torch.Tensor) -> Tuple[float, float]:
    scale, norm = float(w.abs().max()), float(w.norm())
    diff = w_hat - w
    return (float(diff.abs().max()) / scale if scale else 0.0, float(diff.norm()) / norm if norm else 0.0)


# ---------------------------------------------------------------------- quantize
def _latencies(graph: Graph, timing: str) -> Dict[str, int]:
    """Each Dense's / Conv2d's latency: 1 when fed by forward edges under ``"loihi"`` timing, else 0
    (fed through back-edges, directly or through a Flatten)."""
    return {name: int(timing == "loihi" and _edge_kinds(graph, name) != {True})
            for name, node in graph.nodes.items() if isinstance(node, SYNAPSE_TYPES)}


def _lags(graph: Graph, latency: Dict[str, int], warnings: List[str]) -> Dict[str, int]:
    """Steps by which each node of the quantised network lags the float one: the latencies summed
    along the paths from the inputs (back-edges included: a back-edge shifts both networks alike,
    and the Dense it feeds has latency 0, so a loop adds nothing). Where paths into a node differ,
    the largest, with a warning."""
    lag: Dict[str, int] = {name: 0 for name in graph.inputs}
    for _ in range(len(graph.nodes) + 1):          # a fixed point: loops add no latency
        changed = False
        for name in graph.nodes:
            known = [lag[e.source] for e in graph.in_edges(name) if e.source in lag]
            value = (max(known) if known else 0) + latency.get(name, 0)
            if lag.get(name) != value:
                lag[name], changed = value, True
        if not changed:
            break
    for name in graph.nodes:
        values = sorted({lag[e.source] for e in graph.in_edges(name)})
        if len(values) > 1:
            warnings.append(f"node {name!r}: its inputs lag the float network by {values} steps; its "
                            "spikes are compared at the largest lag")
    return {name: lag[name] for name in graph.nodes}


def quantize(sim: Simulator, inputs: Optional[torch.Tensor] = None, timing: str = "loihi",
             max_weight_exp: int = WEIGHT_EXP_RANGE[1]) -> Tuple[Simulator, QuantizationReport]:
    """The fixed-point Loihi version of ``sim`` (same node names, edges, outputs, ``dt``) and a
    :class:`QuantizationReport`. ``inputs`` (optional, ``[T, batch, ...]`` or a dict, as for
    :meth:`Simulator.run`): run both networks from rest and report their spike agreement.
    ``timing``: ``"loihi"`` (one step of latency per layer, as Lava runs the netx export) or
    ``"engine"`` (the float network's timing); see the module docstring. ``max_weight_exp``
    (0..7): the largest weight exponent used; 1 for :func:`~neurosim.hardware.loihi.to_netx`,
    whose files hold ``m << e`` as one integer in [-256, 254].

    Raises :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every node that
    cannot be mapped (and why) before anything is built."""
    if not isinstance(sim, Simulator):
        raise TypeError(f"quantize takes a neurosim Simulator (a graph and its dt), got {type(sim).__name__}")
    if timing not in ("loihi", "engine"):
        raise ValueError(f"quantize: timing must be 'loihi' or 'engine', got {timing!r}")
    if isinstance(max_weight_exp, bool) or max_weight_exp not in range(WEIGHT_EXP_RANGE[0], WEIGHT_EXP_RANGE[1] + 1):
        raise ValueError(f"quantize: max_weight_exp must be an int in {list(WEIGHT_EXP_RANGE)}, got {max_weight_exp!r}")
    graph, dt = sim.graph, sim.dt
    _check(graph, timing)
    latency = _latencies(graph, timing)
    maps = LOIHI.map_nodes(graph, context=dt)
    incoming = {n: [e.source for e in graph.in_edges(n)] for n, node in graph.nodes.items()
                if isinstance(node, Population)}
    warnings: List[str] = []
    new_nodes, layers, populations = {}, {}, {}
    for pop_name, dense_names in incoming.items():
        pop = maps[pop_name]
        weights = {d: maps[d][0] for d in dense_names}
        per_channel = {d: isinstance(maps[d][1], ConvGeometry) for d in dense_names}
        shape = graph.nodes[pop_name].out_shape
        s, v_th, mapped = _choose(pop_name, pop, weights, warnings, max_weight_exp, per_channel, shape)
        params = LoihiCubaParams(i_decay=pop.i_decay, v_decay=pop.v_decay, v_th_mant=v_th,
                                 refractory_delay=pop.refractory)
        new_nodes[pop_name] = Population("loihi_cuba", graph.nodes[pop_name].out_shape, params)
        a_syn_q = 1.0 - pop.i_decay / DECAY_UNITY
        populations[pop_name] = PopulationReport(
            volts_per_unit=s, params=params,
            threshold_rel_error=(2 ** THRESHOLD_SHIFT * v_th * s - pop.threshold) / pop.threshold,
            current_decay_error=abs(a_syn_q - pop.a_syn),
            voltage_decay_error=abs((1.0 - pop.v_decay / DECAY_UNITY) - pop.a_mem))
        for d, (m, e) in mapped.items():
            weight_scale = s / pop.gain
            w_hat = m * 2.0 ** (e + ACTIVATION_SHIFT) * weight_scale
            max_rel, rms_rel = _relative_errors(weights[d], w_hat)
            layers[d] = LayerReport(pop_name, e, weight_scale, max_rel, rms_rel)
            if per_channel[d]:
                new_nodes[d] = loihi_conv(m, e, maps[d][1], latency[d])
                continue
            delays = maps[d][1]
            new_nodes[d] = LoihiDense(m.to(torch.int8), e, delays if int(delays.max()) > 0 else 0, latency=latency[d])
    for name, node in graph.nodes.items():
        if isinstance(node, Flatten):
            new_nodes[name] = Flatten(maps[name])
    quantized = Graph()
    for name, shape in graph.inputs.items():
        quantized.add_input(name, shape)
    for name in graph.nodes:
        quantized.add(name, new_nodes[name])
    for e in graph.edges:
        quantized.connect(e.source, e.target, e.port, e.back)
    if graph.outputs:
        quantized.add_output(*graph.outputs)
    qsim = Simulator(quantized, dt=dt, schedule=sim.schedule)
    lags = _lags(graph, latency, warnings)
    report = QuantizationReport(layers, populations, warnings=tuple(warnings),
                                latency_steps={n: lags[n] for n in incoming})
    if inputs is not None:
        report = _with_agreement(report, sim, qsim, inputs, list(incoming))
    return qsim, report


def _with_agreement(report: QuantizationReport, sim: Simulator, qsim: Simulator, inputs, names) -> QuantizationReport:
    """The report with the spike agreement of ``sim`` and ``qsim`` on ``inputs`` (no gradient)."""
    with torch.no_grad():
        float_rec = sim.run(inputs, monitors=[Monitor(n, "spikes") for n in names]).records
        fixed_rec = qsim.run(inputs, monitors=[Monitor(n, "spikes") for n in names]).records
    equal, total, per_pop, counts = 0, 0, {}, {}
    for n in names:
        lag = report.latency_steps.get(n, 0)
        a, b = float_rec[n]["spikes"], fixed_rec[n]["spikes"].to(float_rec[n]["spikes"].dtype)
        a, b = a[: a.shape[0] - lag], b[lag:]
        same = int((a == b).sum())
        per_pop[n] = same / a.numel() if a.numel() else 1.0
        counts[n] = (int(a.sum()), int(b.sum()))
        equal, total = equal + same, total + a.numel()
    return QuantizationReport(report.layers, report.populations, equal / total if total else 1.0, per_pop, counts,
                              report.warnings, report.latency_steps)
