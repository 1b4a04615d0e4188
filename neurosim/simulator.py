"""The Simulator: the only time loop of neurosim.

Schedule of one step ``t`` (fixed, after Brian2's update / threshold / propagate / reset)::

    for name in topological order (feed-forward edges):
        x[port] = sum over the port's in-edges (in the order they were added) of
                    source output at step t        (feed-forward edge; inputs read inputs[t])
                    source output at step t - 1    (back-edge; the state's ``previous`` at t = 0)
        output[name], state[name] = node.step(x, state[name], dt)   # integrate, threshold, reset

Two schedules compute exactly this:

* ``"step"``: the whole graph advances one step at a time.
* ``"layer"``: the graph is cut into blocks (strongly connected components, back-edges included).
  A block without a loop holds one node, which runs over the whole sequence before the next
  block starts: a stateless node (e.g. ``Dense``) in one call on ``[T, batch, ...]`` (one matmul
  for all T), a stateful one (a population) as its own recurrence over T. Blocks with a loop
  advance all their nodes step by step.

``"auto"`` (default) picks ``"layer"``, which is never slower: it does the same per-step work on
recurrent parts and replaces T small matmuls by one large one elsewhere. Both schedules do the
same operations in the same order (a port's inputs are summed by one function,
:mod:`neurosim.schedule`), so they give the same results bit for bit wherever projections
propagate row by row: the event-driven paths and ``Sparse``, per-synapse delays included
(tested). A ``Dense`` matmul (training, or ``event_driven=False``) is one BLAS call over
``T * batch`` rows in the layer schedule and one over ``batch`` rows per step in the step
schedule; BLAS may round these differently in the last bit (~1e-7 relative), and that
difference reaches the states downstream.

Backends (``backend=``, :mod:`neurosim.compiled.placement`): ``"torch"`` runs every block on
the torch path above (autograd, any node); ``"compiled"`` runs each block that holds a time loop
(a recurrent block, a population, a delayed projection) as one compiled numba loop over all T
(:mod:`neurosim.compiled`), and falls back to the torch path block by block, with one warning
naming the nodes and why; ``"auto"`` (default) does what ``"compiled"`` does for runs that need
no gradient and uses the torch path for training, where the fused LIF kernel runs its forward and
backward compiled (:mod:`neurosim.compiled.training`; ``"torch"`` keeps those in torch ops too). The compiled loop does the torch path's
operations in the same order and dtype: the same spikes and states bit for bit (tested per
model), except where a graded (non-spike) value passes a float32 Dense, which torch may sum with
a fused multiply-add (equal to rounding). ``Simulator.placement`` says, after each run, where
every node ran.

The graph may change after the Simulator is built: each run (and :meth:`Simulator.initial_state`)
compares :meth:`Graph.signature` with the one it planned for and, when a node, an input, an
edge or an output was added, validates the graph again and makes a new plan
(:mod:`neurosim.run_plan`). A state from before such a change lacks the new nodes and is
rejected by name; start from ``initial_state`` again.

dtypes are checked before any step: a floating input must have the dtype of the parameters of
the nodes it feeds, and a given state the dtype of its node's parameters (integer inputs are
cast to the parameters' dtype). The error names the input or state entry, the node and the
parameter.

Example::

    >>> sim = Simulator(graph, dt=1e-3)
    >>> result = sim.run(spikes)                  # spikes: [T, batch, *input_shape]
    >>> out, state, records = result.outputs, result.state, result.records
    >>> more = sim.run(spikes2, state=state)      # continue where the first run stopped
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .compiled.placement import BACKENDS, report_placement
from .graph import Graph
from .node import state_device_dtype
from .run_plan import RunPlan, float_parameter, make_plan
from .schedule import Run
from .validation import check_time_first_inputs

__all__ = ["Simulator", "NetworkState", "SimulationResult", "SCHEDULES"]

SCHEDULES = ("auto", "layer", "step")


class NetworkState(NamedTuple):
    """Explicit state of a whole network.

    nodes: node name -> that node's state (a NamedTuple of ``[batch, ...]`` tensors, or None);
    previous: back-edge source name -> its output at the last step (read by back-edges)."""

    nodes: Dict[str, Any]
    previous: Dict[str, torch.Tensor]


class SimulationResult(NamedTuple):
    """outputs: output node -> ``[T, batch, ...]``; state: the final :class:`NetworkState`;
    records: monitor name -> {variable: tensor or file path}; ops: node -> counts (when counted)."""

    outputs: Dict[str, torch.Tensor]
    state: NetworkState
    records: Dict[str, Dict[str, Any]]
    ops: Dict[str, Dict[str, float]]

    @property
    def output(self) -> torch.Tensor:
        """The output sequence when the graph has exactly one output node."""
        if len(self.outputs) != 1:
            raise ValueError(f"the graph has {len(self.outputs)} outputs {list(self.outputs)}; use .outputs[name]")
        return next(iter(self.outputs.values()))


class Simulator(nn.Module):
    """Runs a :class:`Graph` on a fixed time step ``dt`` (seconds); validates everything first."""

    def __init__(self, graph: Graph, dt: float = 1e-3, schedule: str = "auto", backend: str = "auto"):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(f"Simulator schedule must be one of {SCHEDULES}, got {schedule!r}")
        if backend not in BACKENDS:
            raise ValueError(f"Simulator backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        #: after each run: node -> ("compiled" | "torch", why) (see neurosim.compiled.placement)
        self.placement: Dict[str, Tuple[str, str]] = {}
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"Simulator dt must be a positive number of seconds, got {dt!r}")
        self.graph, self.dt, self.schedule = graph, float(dt), schedule
        self._plan = make_plan(graph, self.dt, schedule)

    @property
    def plan(self) -> RunPlan:
        """The run plan of the graph as it is now (made again when the graph changed)."""
        if self.graph.signature() != self._plan.signature:
            self._plan = make_plan(self.graph, self.dt, self.schedule)
        return self._plan

    @property
    def order(self) -> List[str]:
        """Node names in topological order (feed-forward edges)."""
        return self.plan.order

    @property
    def blocks(self) -> List[Tuple[List[str], bool]]:
        """``(names, needs_stepping)`` per block of the schedule, in the order they run."""
        return self.plan.blocks

    @property
    def back_sources(self) -> List[str]:
        """Nodes whose output is read by a back-edge (their last output is part of the state)."""
        return self.plan.back_sources

    # ------------------------------------------------------------------ state
    def initial_state(self, batch_size: int, device=None, dtype=None) -> NetworkState:
        """Every node's resting state and zero previous outputs ``[batch, *out_shape]`` for the
        back-edge sources; ``device``/``dtype`` default to those of each node's parameters
        (float32 for a node without any)."""
        return self._initial_state(self.plan, batch_size, device, dtype)

    def _initial_state(self, plan: RunPlan, batch_size: int, device, dtype) -> NetworkState:
        nodes = self.graph.nodes
        states = {n: nodes[n].initial_state(batch_size, device, dtype) for n in plan.order}
        previous = {}
        for n in plan.back_sources:
            where, kind = state_device_dtype(nodes[n], device, dtype)
            previous[n] = torch.zeros((batch_size, *nodes[n].out_shape), device=where, dtype=kind)
        return NetworkState(states, previous)

    # ------------------------------------------------------------------ checks
    def _check_inputs(self, inputs) -> Dict[str, torch.Tensor]:
        """Shapes (:func:`~neurosim.validation.check_time_first_inputs`); integer spikes are cast to
        the parameters' floating dtype."""
        inputs, _, _ = check_time_first_inputs(inputs, self.graph.inputs)
        if all(x.is_floating_point() for x in inputs.values()):
            return inputs
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.get_default_dtype())
        return {name: x if x.is_floating_point() else x.to(dtype) for name, x in inputs.items()}

    def _check_input_dtypes(self, inputs: Dict[str, torch.Tensor], plan: RunPlan) -> None:
        """Each floating input has the dtype of the first nodes downstream that hold floating
        parameters (``plan.input_readers``; nodes without any, such as ``Flatten``, pass their
        input's dtype on)."""
        for name, x in inputs.items():
            for target in plan.input_readers[name]:
                held = float_parameter(self.graph.nodes[target])
                if held is not None and held[1] != x.dtype:
                    raise TypeError(f"input {name!r} is {x.dtype} but it feeds node {target!r}, whose "
                                    f"parameter {held[0]!r} is {held[1]}; convert the input "
                                    f"(.to({held[1]})) or the graph (.to({x.dtype}))")

    def _check_state(self, state: NetworkState, batch: int, dtype: torch.dtype, plan: RunPlan) -> None:
        """The state must hold every node, match the inputs' batch size and have the dtype of
        its node's parameters (of the inputs, ``dtype``, for a node without floating ones)."""
        if not isinstance(state, NetworkState):
            raise TypeError(f"state must be a NetworkState (from initial_state or a previous run), got {type(state).__name__}")
        missing = [n for n in plan.order if n not in state.nodes] + [n for n in plan.back_sources if n not in state.previous]
        if missing:
            raise ValueError(f"state has no entry for {missing}; was it made for another graph, or before "
                             "nodes were added to this one?")
        entries = [(f"state of {n!r}", n, s) for n, s in state.nodes.items()] + \
                  [(f"previous output of {n!r}", n, s) for n, s in state.previous.items()]
        for what, name, node_state in entries:
            fields = {"": node_state} if isinstance(node_state, torch.Tensor) else (
                node_state._asdict() if hasattr(node_state, "_asdict") else dict(enumerate(node_state or ())))
            tensors = {k: t for k, t in fields.items() if isinstance(t, torch.Tensor)}
            if tensors:
                first = next(iter(tensors.values()))
                axis = getattr(type(node_state), "batch_axis", 0)   # DelayState: [max_delay, batch, ...]
                if first.dim() <= axis or first.shape[axis] != batch:
                    got = first.shape[axis] if first.dim() > axis else 0
                    raise ValueError(f"{what} has batch size {got} but the inputs have batch size {batch}")
            held = float_parameter(self.graph.nodes[name]) if name in self.graph.nodes else None
            want = held[1] if held is not None else dtype
            for field, t in tensors.items():
                if t.is_floating_point() and t.dtype != want:
                    field = f" field {field!r}" if field != "" else ""
                    why = (f"node {name!r} has parameter {held[0]!r} of {want}" if held is not None else
                           f"the inputs are {want} (node {name!r} has no floating parameters)")
                    raise TypeError(f"{what}{field} is {t.dtype} but {why}; make the state with "
                                    f"initial_state(batch, dtype={want})")

    # ------------------------------------------------------------------ running
    def run(self, inputs, state: Optional[NetworkState] = None, monitors: Iterable = (),
            count_ops: bool = False) -> SimulationResult:
        """Simulate ``T`` steps of the inputs ``[T, batch, ...]`` from ``state`` (resting if None).

        ``inputs``: one tensor (a graph with one input) or a dict input name -> tensor, time
        first, all with the same ``[T, batch]``. Everything is checked before the first step:
        shapes, dtypes, the state, the monitors, and the graph itself when it changed since the
        last run (then it is planned again). Returns a :class:`SimulationResult` (outputs, final
        state, monitor records, op counts)."""
        plan = self.plan
        inputs = self._check_inputs(inputs)
        self._check_input_dtypes(inputs, plan)
        first = next(iter(inputs.values()))
        steps, batch = first.shape[:2]
        for name, node in self.graph.nodes.items():
            node.check_run(int(steps), f"node {name!r}")
        if state is None:
            state = self._initial_state(plan, batch, first.device, first.dtype)
        else:
            self._check_state(state, batch, first.dtype, plan)
        monitors = list(monitors)
        names = [m.name for m in monitors]
        if len(set(names)) != len(names) or len(set(map(id, monitors))) != len(monitors):
            raise ValueError(f"monitor names must be unique and each monitor passed once, got {names}")
        watched: Dict[str, List] = {}
        for m in monitors:      # every monitor is checked before any of them opens a file
            m.check(self.graph)
        for m in monitors:
            m.start(self, steps, batch)
            watched.setdefault(m.node, []).append(m)

        run = Run(self.graph, plan, self.dt, inputs, state, steps, watched, count_ops, self.backend)
        run.run_all()  # a monitor rolls back a run that raised here at its next start/close
        self.placement = run.placement
        report_placement(run.placement, self.backend, plan.order)
        records = {m.name: m.finish() for m in monitors}
        outputs = {n: run.seqs[n] for n in plan.outputs}
        return SimulationResult(outputs, NetworkState(run.states, run.final_previous()), records, run.ops)

    forward = run
