"""The Brian2 backend: :func:`to_brian2` builds a Brian2 ``Network`` from a neurosim
:class:`~neurosim.Simulator`; :func:`run_brian2` runs it and returns spikes (and state traces)
in neurosim's recording format, ``[T, batch, *shape]``, so the two compare directly.

Mapping (the registry ``BRIAN2``; the user's network is only read, weights are copied):

=======================  ================================================  ==========================
neurosim                 Brian2                                            refused
=======================  ================================================  ==========================
Population (8 models)    ``NeuronGroup`` (:mod:`.brian2_equations`)        subtract_delayed reset;
                                                                           exact cuba_lif, tau_syn = tau_mem
Dense ``[out, in]``      ``Synapses`` ``on_pre: <port>_in_post += w``,     bias
                         one per non-zero weight, ``delay = d dt``
Sparse ``[nnz]``         the same, one per stored synapse                  bias
graph input -> Dense     ``SpikeGeneratorGroup`` (values must be 0 or 1)
graph input -> port      ``TimedArray`` added to ``<port>_in`` each step
spikes / traces          ``SpikeMonitor`` / ``StateMonitor``
=======================  ================================================  ==========================

Other nodes (Conv2d, pooling, Delay, plug-in blocks), a projection not fed by one spiking
population or one graph input, or not feeding population ports, are refused: every problem of
the network in one :class:`~neurosim.hardware.registry.UnsupportedNodesError`, before anything
is built.

Schedule. Brian2's default order (all updates, then all thresholds, then all propagation)
gives every feed-forward edge one step of latency that neurosim does not have. So every object
is placed in Brian2's ``"groups"`` slot with an explicit ``order`` that replays neurosim's step:
generators, then for each population in topological order: external currents into ``p_in``,
the jump of the input (``input_same_step=True``), state update, threshold, reset, the held input
or late jump, then the synapses of its feed-forward out-edges (so a spike of step t reaches a
downstream population in step t, after ``d`` more steps with delay ``d``). Synapses on a path
with a back-edge propagate at the end of the step: they act from step t + 1 (+ d), neurosim's
back-edge timing. Monitors sample at the end of the step (jumped currents right after the jump,
where neurosim's stored value lives). A graph input spike at index k is a generator spike at
``k dt``; an input current ``x[k]`` is read by ``TimedArray`` at ``t = k dt``.

Batch: one Brian2 network of ``batch x N`` neurons per population; sample ``b`` uses neurons
``b N .. (b + 1) N - 1`` and its own copy of every synapse (a neuron is ``b N + flat index``).

Brian2 runs in float64 with the code-generation target ``target`` (default ``"numpy"``, set only
while building and running; Brian2's global preferences are restored after). Example::

    >>> result = run_brian2(sim, {"x": spikes}, monitors={"pop": ("v",)})
    >>> torch.equal(result.outputs["pop"], sim.run(spikes).outputs["pop"])
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from neurosim.population import Population
from neurosim.projections import Dense, Sparse
from neurosim.validation import check_time_first_inputs

from .brian2_equations import model_equations, refusal
from .registry import Backend, UnsupportedNodesError

__all__ = ["BRIAN2", "Brian2Network", "Brian2Result", "to_brian2", "run_brian2"]

BRIAN2 = Backend("brian2")


class Synapse(NamedTuple):
    """The synapses of one projection as numpy arrays ``[n]``: pre, post, weight, delay steps."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay: np.ndarray


class Brian2Network(NamedTuple):
    """What :func:`to_brian2` builds: the Brian2 ``network``, its ``groups`` (population name ->
    NeuronGroup), ``spike_monitors`` and ``state_monitors`` (population -> {variable: monitor}),
    the ``batch`` size, ``dt`` [s], the number of input ``steps`` (None without inputs), the
    populations' ``shapes`` and their ``equations`` (:class:`~.brian2_equations.ModelEquations`)."""

    network: Any
    groups: Dict[str, Any]
    spike_monitors: Dict[str, Any]
    state_monitors: Dict[str, Dict[str, Any]]
    batch: int
    dt: float
    steps: Optional[int]
    shapes: Dict[str, Tuple[int, ...]]
    equations: Dict[str, Any]


class Brian2Result(NamedTuple):
    """outputs: population -> spikes ``[T, batch, *shape]`` (LI: its v); records: population ->
    {variable: ``[T, batch, *shape]``}, as :class:`~neurosim.SimulationResult` has them."""

    outputs: Dict[str, torch.Tensor]
    records: Dict[str, Dict[str, torch.Tensor]]


# ---------------------------------------------------------------------------- node mappings
def _population_refusal(node: Population) -> Optional[str]:
    return refusal(node.model.name, node.params)


def _no_bias(node) -> Optional[str]:
    return "a bias (a constant current) is not mapped; use a population parameter" if node.bias is not None else None


def _delay_steps(node, shape) -> np.ndarray:
    """Per-synapse delays in steps, ``shape`` (``[out, in]`` Dense, ``[nnz]`` Sparse)."""
    if node.delays is None:
        return np.zeros(shape, dtype=np.int64)
    return node.delays.steps(shape).cpu().numpy()


@BRIAN2.register(Population, supports=_population_refusal)
def _population(name: str, node: Population, context) -> Any:
    return model_equations(node.model.name, node.params)


@BRIAN2.register(Dense, supports=_no_bias)
def _dense(name: str, node: Dense, context) -> Synapse:
    weight = node.weight.detach().cpu().to(torch.float64).numpy()
    post, pre = np.nonzero(weight)
    return Synapse(pre, post, weight[post, pre], _delay_steps(node, weight.shape)[post, pre])


@BRIAN2.register(Sparse, supports=_no_bias)
def _sparse(name: str, node: Sparse, context) -> Synapse:
    weight = node.weight.detach().cpu().to(torch.float64).numpy()
    keep = weight != 0
    return Synapse(node.pre.cpu().numpy()[keep], node.post.cpu().numpy()[keep], weight[keep],
                   _delay_steps(node, weight.shape)[keep])


# ---------------------------------------------------------------------------- structure
def _structure_problems(graph) -> List[Tuple[str, str, str]]:
    """Projections that are not ``(spiking population | graph input) -> projection -> population
    ports``, and spiking outputs read by something other than a projection."""
    problems = []
    for name, node in graph.nodes.items():
        ins, outs = graph.in_edges(name), [e for e in graph.edges if e.source == name]
        kind = type(node).__name__
        if isinstance(node, (Dense, Sparse)):
            sources = [e.source for e in ins]
            source = graph.nodes[sources[0]] if len(ins) == 1 and sources[0] in graph.nodes else None
            if len(ins) != 1 or not (sources[0] in graph.inputs or (
                    isinstance(source, Population) and source.emits_spikes)):
                problems.append((name, kind, f"a projection must be fed by exactly one spiking population or "
                                             f"graph input, got {sources}"))
            bad = [e.target for e in outs if not isinstance(graph.nodes[e.target], Population)]
            if bad:
                problems.append((name, kind, f"a projection must feed population ports, it feeds {bad}"))
        elif isinstance(node, Population):
            bad = [e.target for e in outs if not isinstance(graph.nodes[e.target], (Dense, Sparse))]
            if bad:
                problems.append((name, kind, f"a population's output must go through a Dense or Sparse "
                                             f"projection, it feeds {bad} directly"))
    return problems


def _check_network(graph) -> None:
    problems = []
    for name, node in graph.nodes.items():
        fn, reason = BRIAN2.entry(node)
        if fn is None:
            problems.append((name, type(node).__name__, reason))
    problems.extend(_structure_problems(graph))
    position = {name: k for k, name in enumerate(graph.nodes)}
    problems.sort(key=lambda problem: position[problem[0]])      # stable: a node's reasons together
    if problems:
        raise UnsupportedNodesError(BRIAN2.name, problems)


# ---------------------------------------------------------------------------- inputs and state
def _check_inputs(graph, inputs) -> Tuple[Dict[str, torch.Tensor], int, int]:
    """``{input name: [T, batch, *shape] float64}``, T, batch; raises naming the input."""
    inputs, steps, batch = check_time_first_inputs(inputs, graph.inputs, "run_brian2")
    converted = {}
    for name, x in inputs.items():
        x = x.detach().cpu().to(torch.float64)
        feeds_projection = any(isinstance(graph.nodes[e.target], (Dense, Sparse))
                               for e in graph.edges if e.source == name)
        if feeds_projection and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"run_brian2: input {name!r} feeds a projection, so it is a spike train "
                             "(a SpikeGeneratorGroup) and must hold only 0 and 1")
        converted[name] = x
    return converted, steps, batch


def _initial_values(name: str, node: Population, state, batch: int, spec) -> Dict[str, np.ndarray]:
    """Brian2 start values ``[batch * N]`` of the population's variables: the model's resting
    state, or the given neurosim state, whose other fields (refractory counters, held inputs) and
    currents that jump before the update (``input_same_step=True``) must be zero: Brian2 has no
    start value for them here."""
    if state is None:
        values = node.initial_state(batch, dtype=torch.float64)
    else:
        if name not in state.nodes:
            raise ValueError(f"run_brian2: the state has no entry for population {name!r}")
        values = state.nodes[name]
        free = [f for f, var in spec.state_variables.items() if var not in spec.sampled_before_update]
        for field, tensor in values._asdict().items():
            if field not in free and bool(tensor.ne(0).any()):
                raise ValueError(f"run_brian2: state of {name!r} field {field!r} must be zero (only {free} "
                                 "can start elsewhere in Brian2)")
            if tuple(tensor.shape) != (batch, *node.out_shape):
                raise ValueError(f"run_brian2: state of {name!r} field {field!r} has shape {tuple(tensor.shape)}, "
                                 f"expected {(batch, *node.out_shape)}")
    return {var: getattr(values, field).detach().cpu().to(torch.float64).reshape(-1).numpy()
            for field, var in spec.state_variables.items()}


def _check_other_state(sim, state) -> None:
    """Projections' delay lines and back-edge outputs must be empty: Brian2 starts without them."""
    if state is None:
        return
    entries = [(f"previous output of {n!r}", t) for n, t in state.previous.items()]
    for n, s in state.nodes.items():
        if n in sim.graph.nodes and not isinstance(sim.graph.nodes[n], Population) and s is not None:
            entries.extend((f"state of {n!r} field {k!r}", t) for k, t in s._asdict().items())
    for what, tensor in entries:
        if bool(tensor.ne(0).any()):
            raise ValueError(f"run_brian2: {what} must be zero (Brian2 starts with no spikes in flight)")


def _per_neuron(value, shape, batch: int) -> np.ndarray:
    """A scalar or tensor parameter broadcast to ``shape`` and tiled over the batch: ``[batch * N]``."""
    t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
    return np.tile(torch.broadcast_to(t.cpu(), shape).reshape(-1).numpy(), batch)


# ---------------------------------------------------------------------------- building
def to_brian2(sim, inputs=None, monitors: Mapping[str, Sequence[str]] = (), state=None,
              batch_size: int = 1, target: str = "numpy") -> Brian2Network:
    """Build the Brian2 network of ``sim`` (a :class:`~neurosim.Simulator`: graph and ``dt``).

    ``inputs``: ``{input name: [T, batch, *shape]}`` (or one tensor), as for ``Simulator.run``;
    None builds the network without drive (``batch_size`` samples). ``monitors``: population ->
    state variables to record (neurosim field names: ``"v"``, ``"b"``, ``"u"``, ``"w"``, ``"i"``,
    ``"g_exc"``, ``"g_inh"``); spikes are always recorded. ``state``: a neurosim
    :class:`~neurosim.NetworkState` to start from (default: rest). Raises
    :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every node that cannot be
    mapped, ``ValueError`` for bad inputs, monitors or state; nothing is built before.
    ``target``: Brian2's code-generation target while building (synapse creation runs code);
    run the network under the same target (:func:`run_brian2` does)."""
    with _codegen_target(target):
        return _build(sim, inputs, monitors, state, batch_size)


def _build(sim, inputs, monitors, state, batch_size: int) -> Brian2Network:
    graph = sim.graph
    graph.validate()
    _check_network(graph)
    if inputs is not None:
        inputs, steps, batch = _check_inputs(graph, inputs)
    else:
        inputs, steps, batch = {}, None, batch_size
    specs = BRIAN2.map_nodes(sim)
    monitors = dict(monitors or {})
    for pop, variables in monitors.items():
        if pop not in graph.nodes or not isinstance(graph.nodes[pop], Population):
            raise ValueError(f"run_brian2: monitor {pop!r} is not a population of the graph")
        unknown = [v for v in variables if v not in specs[pop].state_variables]
        if unknown:
            raise ValueError(f"run_brian2: population {pop!r} has no Brian2 trace of {unknown} "
                             f"(recordable: {list(specs[pop].state_variables)})")
    _check_other_state(sim, state)
    return _Builder(sim, specs, inputs, batch, state).build(monitors, steps)


class _Builder:
    """Builds the Brian2 objects of one network, each placed in the ``"groups"`` slot with the
    next ``order`` in the sequence of the module docstring's schedule."""

    def __init__(self, sim, specs, inputs, batch: int, state):
        import brian2 as b2
        self.b2, self.graph, self.dt, self.specs, self.inputs, self.batch = b2, sim.graph, sim.dt, specs, inputs, batch
        self.clock = b2.Clock(dt=sim.dt * b2.second, name="neurosim_clock*")
        self.orders = itertools.count()
        self.objects: List[Any] = []
        self.populations = [n for n in sim.order if isinstance(sim.graph.nodes[n], Population)]
        self.groups = {name: self.neuron_group(name, state) for name in self.populations}

    def place(self, obj):
        obj.when, obj.order = "groups", next(self.orders)
        return obj

    def add(self, obj, placed: bool = True):
        self.objects.append(self.place(obj) if placed else obj)
        return obj

    def size(self, name: str) -> int:
        """Neurons per sample of a population or input."""
        return int(np.prod(self.graph.shape_of(name)))

    def neuron_group(self, name: str, state):
        """The NeuronGroup of a population: equations, per-neuron parameters, start values."""
        b2, node, spec = self.b2, self.graph.nodes[name], self.specs[name]
        refractory = (spec.refractory_steps + 1) * self.dt * b2.second if spec.refractory_steps else False
        # without a refractory period the flag would only make Brian2 warn that none was given
        equations = spec.equations if refractory is not False else spec.equations.replace("(unless refractory)", "")
        group = b2.NeuronGroup(self.batch * self.size(name), equations, threshold=spec.threshold,
                               reset=spec.reset, refractory=refractory, method=spec.method, clock=self.clock,
                               namespace={}, name=f"{name}*")
        for param, unit in spec.parameters.items():
            values = _per_neuron(getattr(node.params, param), node.out_shape, self.batch)
            setattr(group, param, values * (b2.second if unit == "second" else 1))
        for var, values in _initial_values(name, node, state, self.batch, spec).items():
            setattr(group, var, values)
        return self.add(group, placed=False)

    def synapses(self, source_group, source: str, projection: str, edge):
        """Synapses of ``projection`` from ``source_group`` onto ``edge``'s target port, one copy
        per sample; returns its ``on_pre`` pathway (to be placed)."""
        conn, n_pre, n_post = self.specs[projection], self.size(source), self.size(edge.target)
        variable = self.specs[edge.target].ports[edge.port].variable
        syn = self.b2.Synapses(source_group, self.groups[edge.target], "w : 1", on_pre=f"{variable}_post += w",
                               clock=self.clock, namespace={}, name=f"{projection}*")
        sample = np.repeat(np.arange(self.batch), len(conn.pre))
        syn.connect(i=np.tile(conn.pre, self.batch) + sample * n_pre,
                    j=np.tile(conn.post, self.batch) + sample * n_post)
        syn.w = np.tile(conn.weight, self.batch)
        if conn.delay.size and conn.delay.max() > 0:
            syn.delay = np.tile(conn.delay, self.batch) * self.dt * self.b2.second
        self.objects.append(syn)
        return syn.pre

    def projections_from(self, source: str):
        """(projection, on a path with a back-edge, edge into the target) per projection fed by ``source``."""
        graph = self.graph
        for e_in in [e for e in graph.edges
                     if e.source == source and isinstance(graph.nodes[e.target], (Dense, Sparse))]:
            for e_out in [e for e in graph.edges if e.source == e_in.target]:
                yield e_in.target, e_in.back or e_out.back, e_out

    def generator(self, name: str) -> None:
        """A SpikeGeneratorGroup for a spike input (spike at index k -> time k dt) and its synapses."""
        b2, n = self.b2, self.size(name)
        steps, neurons = np.nonzero(self.inputs[name].reshape(-1, self.batch * n).numpy())
        group = self.add(b2.SpikeGeneratorGroup(self.batch * n, neurons, steps * self.dt * b2.second,
                                                clock=self.clock, name=f"{name}*"))
        for projection, _, edge in self.projections_from(name):
            self.place(self.synapses(group, name, projection, edge))

    def population_step(self, name: str, monitors) -> Tuple[Dict[str, Any], list]:
        """Schedule one population's step; returns its early monitors and its late pathways."""
        b2, spec, group = self.b2, self.specs[name], self.groups[name]
        for e in self.graph.in_edges(name):
            if e.source in self.inputs:          # an external current, read at t = k dt
                values = self.inputs[e.source].reshape(-1, self.batch * self.size(name)).numpy()
                current = b2.TimedArray(values, dt=self.dt * b2.second, name=f"{e.source}_to_{name}*")
                group.namespace[current.name] = current
                self.place(group.run_regularly(f"{spec.ports[e.port].variable} += {current.name}(t, i)",
                                               clock=self.clock))
        if spec.pre_update:
            self.place(group.run_regularly(spec.pre_update, clock=self.clock))
        early = [spec.state_variables[v] for v in monitors.get(name, ())
                 if spec.state_variables[v] in spec.sampled_before_update]
        records = {}
        if early:
            mon = self.add(b2.StateMonitor(group, early, record=True, clock=self.clock, name=f"{name}_early*"))
            records = dict.fromkeys(early, mon)
        for runner in [group.state_updater, *group.thresholder.values(), *group.resetter.values()]:
            self.place(runner)
        if spec.post_update:
            self.place(group.run_regularly(spec.post_update, clock=self.clock))
        late = []
        for projection, back, edge in self.projections_from(name):
            pathway = self.synapses(group, name, projection, edge)
            late.append(pathway) if back else self.place(pathway)
        return records, late

    def end_monitors(self, name: str, monitors, records: Dict[str, Any]):
        """End-of-step StateMonitor (LI populations always record v, their output) and SpikeMonitor."""
        b2, spec, group, node = self.b2, self.specs[name], self.groups[name], self.graph.nodes[name]
        end = [spec.state_variables[v] for v in monitors.get(name, ())
               if spec.state_variables[v] not in spec.sampled_before_update]
        if not node.emits_spikes and "v" not in end:
            end.append("v")
        if end:
            mon = self.add(b2.StateMonitor(group, end, record=True, clock=self.clock, name=f"{name}_end*"))
            records.update(dict.fromkeys(end, mon))
        return self.add(b2.SpikeMonitor(group, record=True, name=f"{name}_spikes*")) if node.emits_spikes else None

    def build(self, monitors, steps: Optional[int]) -> Brian2Network:
        for name in self.inputs:
            if any(True for _ in self.projections_from(name)):
                self.generator(name)
        state_monitors, late = {}, []
        for name in self.populations:
            state_monitors[name], pathways = self.population_step(name, monitors)
            late.extend(pathways)
        for pathway in late:                     # back-edge paths: at the end, acting from the next step
            self.place(pathway)
        spike_monitors = {}
        for name in self.populations:
            mon = self.end_monitors(name, monitors, state_monitors[name])
            if mon is not None:
                spike_monitors[name] = mon
        shapes = {name: self.graph.nodes[name].out_shape for name in self.populations}
        return Brian2Network(self.b2.Network(*self.objects), self.groups, spike_monitors, state_monitors,
                             self.batch, self.dt, steps, shapes, {n: self.specs[n] for n in self.populations})


# ---------------------------------------------------------------------------- running
@contextlib.contextmanager
def _codegen_target(target: str):
    import brian2 as b2
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    try:
        yield
    finally:
        b2.prefs.codegen.target = previous


def run_brian2(sim, inputs, monitors: Mapping[str, Sequence[str]] = (), state=None,
               target: str = "numpy") -> Brian2Result:
    """Run ``sim``'s network in Brian2 for the T steps of ``inputs`` and return a
    :class:`Brian2Result`: spikes ``[T, batch, *shape]`` per spiking population (0/1, float64;
    an LI population's v), and the traces of ``monitors`` (population -> neurosim state field
    names), each ``[T, batch, *shape]`` in neurosim's units, the values after step t
    (neurosim's state after step t). See :func:`to_brian2` for the arguments and errors."""
    import brian2 as b2

    built = to_brian2(sim, inputs, monitors, state, target=target)
    steps = built.steps
    with _codegen_target(target):
        built.network.run(steps * built.dt * b2.second, namespace={})
    outputs, records = {}, {}

    def shaped(array, name):                                  # [T, batch * N] -> [T, batch, *shape]
        values = torch.from_numpy(np.ascontiguousarray(array))
        return values.reshape(array.shape[0], built.batch, *built.shapes[name])

    for name, group in built.groups.items():
        traces = {var: np.asarray(getattr(mon, var + "_")).T for var, mon in built.state_monitors[name].items()}
        if name in built.spike_monitors:
            mon = built.spike_monitors[name]
            spikes = np.zeros((steps, len(group)))
            spikes[np.round(np.asarray(mon.t_) / built.dt).astype(int), np.asarray(mon.i)] = 1.0
            outputs[name] = shaped(spikes, name)
        else:
            outputs[name] = shaped(traces["v"], name)
        if name in dict(monitors or {}):
            records[name] = {field: shaped(traces[built.equations[name].state_variables[field]], name)
                             for field in monitors[name]}
    return Brian2Result(outputs, records)
