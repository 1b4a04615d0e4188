"""The Simulator: the only time loop of neurosim.

Schedule of one step ``t`` (fixed, after Brian2's update / threshold / propagate / reset)::

    for name in topological order (feed-forward edges):
        x[port] = sum over in-edges on port of
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
recurrent parts and replaces T small matmuls by one large one elsewhere. Both schedules give
identical results (tested).

Example::

    >>> sim = Simulator(graph, dt=1e-3)
    >>> result = sim.run(spikes)                  # spikes: [T, batch, *input_shape]
    >>> out, state, records = result.outputs, result.state, result.records
    >>> more = sim.run(spikes2, state=state)      # continue where the first run stopped
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, NamedTuple, Optional

import torch
from torch import nn

from .graph import Graph, plan_components

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

    def __init__(self, graph: Graph, dt: float = 1e-3, schedule: str = "auto"):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(f"Simulator schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"Simulator dt must be a positive number of seconds, got {dt!r}")
        graph.validate()
        self.graph, self.dt, self.schedule = graph, float(dt), schedule
        self.order = graph.topological_order()
        for name in self.order:
            graph.nodes[name].validate(self.dt, f"node {name!r}")
        if schedule == "step":
            self.blocks = [(list(self.order), True)]
        else:
            self.blocks = plan_components(graph, self.order)
        self.back_sources = sorted({e.source for e in graph.edges if e.back})
        # per stepped block: nodes whose whole output sequence is read outside the block (the
        # graph's outputs are added per run, since they may be marked after the Simulator is built)
        self._kept = {}
        for names, loop in self.blocks:
            inside = set(names)
            self._kept[tuple(names)] = {n for n in names if any(
                e.source == n and e.target not in inside for e in graph.edges)}
        # per node, per port: list of (source, back) edges, resolved once
        self._inputs = {n: [[(e.source, e.back) for e in graph.edges if e.target == n and e.port == p]
                            for p in graph.nodes[n].input_ports] for n in self.order}

    # ------------------------------------------------------------------ state
    def initial_state(self, batch_size: int, device=None, dtype=None) -> NetworkState:
        """Every node's resting state and zero previous outputs for the back-edge sources."""
        nodes = {n: self.graph.nodes[n].initial_state(batch_size, device, dtype) for n in self.order}
        dtype = dtype or torch.float32
        previous = {n: torch.zeros((batch_size, *self.graph.nodes[n].out_shape), device=device, dtype=dtype)
                    for n in self.back_sources}
        return NetworkState(nodes, previous)

    # ------------------------------------------------------------------ checks
    def _check_inputs(self, inputs) -> Dict[str, torch.Tensor]:
        names = list(self.graph.inputs)
        if isinstance(inputs, torch.Tensor):
            if len(names) != 1:
                raise ValueError(f"the graph has inputs {names}; pass a dict name -> [T, batch, ...] tensor")
            inputs = {names[0]: inputs}
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a tensor or a dict of tensors, got {type(inputs).__name__}")
        missing, unknown = set(names) - set(inputs), set(inputs) - set(names)
        if missing or unknown:
            raise ValueError(f"inputs: missing {sorted(missing)}, unknown {sorted(unknown)} (graph inputs: {names})")
        steps = set()
        for name, x in inputs.items():
            want = self.graph.inputs[name]
            if not isinstance(x, torch.Tensor) or x.dim() != len(want) + 2 or tuple(x.shape[2:]) != want:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"input {name!r}: expected a [T, batch, {', '.join(map(str, want))}] "
                                 f"tensor (time first), got {got}")
            if x.shape[0] == 0:
                raise ValueError(f"input {name!r} has no time steps (T = 0)")
            steps.add(tuple(x.shape[:2]))
        if len(steps) != 1:
            raise ValueError(f"all inputs need the same [T, batch]; got {sorted(steps)}")
        if all(x.is_floating_point() for x in inputs.values()):
            return inputs
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.get_default_dtype())
        return {name: x if x.is_floating_point() else x.to(dtype) for name, x in inputs.items()}

    def _check_state(self, state: NetworkState, batch: int) -> None:
        """The state must hold every node and match the inputs' batch size."""
        if not isinstance(state, NetworkState):
            raise TypeError(f"state must be a NetworkState (from initial_state or a previous run), got {type(state).__name__}")
        missing = [n for n in self.order if n not in state.nodes] + [n for n in self.back_sources if n not in state.previous]
        if missing:
            raise ValueError(f"state has no entry for {missing}; was it made for another graph?")
        for name, node_state in list(state.nodes.items()) + list(state.previous.items()):
            tensors = [node_state] if isinstance(node_state, torch.Tensor) else [
                t for t in (node_state or ()) if isinstance(t, torch.Tensor)]
            if tensors and (tensors[0].dim() == 0 or tensors[0].shape[0] != batch):
                got = tensors[0].shape[0] if tensors[0].dim() else 0
                raise ValueError(f"state of {name!r} has batch size {got} but the inputs have batch size {batch}")

    # ------------------------------------------------------------------ running
    def run(self, inputs, state: Optional[NetworkState] = None, monitors: Iterable = (),
            count_ops: bool = False) -> SimulationResult:
        """Simulate ``T`` steps of the inputs ``[T, batch, ...]`` from ``state`` (resting if None).

        Returns a :class:`SimulationResult` (outputs, final state, monitor records, op counts)."""
        inputs = self._check_inputs(inputs)
        first = next(iter(inputs.values()))
        steps, batch = first.shape[:2]
        if state is None:
            state = self.initial_state(batch, first.device, first.dtype)
        else:
            self._check_state(state, batch)
        monitors = list(monitors)
        names = [m.name for m in monitors]
        if len(set(names)) != len(names) or len(set(map(id, monitors))) != len(monitors):
            raise ValueError(f"monitor names must be unique and each monitor passed once, got {names}")
        watched: Dict[str, List] = {}
        for m in monitors:
            if m.node not in self.graph.nodes:
                raise ValueError(f"monitor {m.name!r} watches unknown node {m.node!r} (nodes: {self.order})")
        for m in monitors:
            m.start(self, steps, batch)
            watched.setdefault(m.node, []).append(m)

        output_names = self.graph.output_names()
        seqs: Dict[str, torch.Tensor] = dict(inputs)
        last_outputs: Dict[str, torch.Tensor] = {}     # last step of nodes whose sequence is not kept
        node_states = dict(state.nodes)
        ops: Dict[str, Dict[str, float]] = {}
        for names, loop in self.blocks:  # a monitor rolls back a run that raised here at its next start/close
            if not loop:
                self._run_single(names[0], seqs, node_states, state.previous, steps, watched, count_ops, ops)
            else:
                kept = set(names) if count_ops else self._kept[tuple(names)] | set(output_names)
                self._run_stepped(names, kept, seqs, last_outputs, node_states, state.previous, steps,
                                  watched, count_ops, ops)

        previous = {n: (seqs[n][-1] if n in seqs else last_outputs[n]) for n in self.back_sources}
        records = {m.name: m.finish() for m in monitors}
        outputs = {n: seqs[n] for n in output_names}
        return SimulationResult(outputs, NetworkState(node_states, previous), records, ops)

    forward = run

    def _port_sequence(self, name, port_edges, seqs, previous):
        """Sum of one port's inputs over the whole sequence (all sources already computed)."""
        total = None
        for src, back in port_edges:
            x = seqs[src]
            if back:
                x = torch.cat([previous[src].unsqueeze(0), x[:-1]], 0)
            total = x if total is None else total + x
        return total

    def _run_single(self, name, seqs, node_states, previous, steps, watched, count_ops, ops):
        node = self.graph.nodes[name]
        xs = [self._port_sequence(name, pe, seqs, previous) for pe in self._inputs[name]]
        mons = watched.get(name, ())
        fused = NotImplemented
        if node.supports_sequence and not any(m.needs_state for m in mons):
            fused = node.step_sequence(xs[0] if len(xs) == 1 else tuple(xs), node_states[name], self.dt)
        if fused is not NotImplemented or node.stateless:
            if fused is not NotImplemented:
                out, node_states[name] = fused
            else:
                out = node.forward_sequence(xs[0])
            for m in mons:
                for t in range(steps):
                    m.record(t, {"output": out[t]})
        else:
            st, outs, dt = node_states[name], [], self.dt
            single = len(xs) == 1
            for t in range(steps):
                x = xs[0][t] if single else tuple(x[t] for x in xs)
                y, st = node.step(x, st, dt)
                outs.append(y)
                for m in mons:
                    m.record(t, _values(y, st))
            node_states[name] = st
            out = torch.stack(outs)
        seqs[name] = out
        if count_ops:
            _add_ops(ops, name, node.count_ops(xs[0] if len(xs) == 1 else tuple(xs), out))

    def _run_stepped(self, names, kept, seqs, last_outputs, node_states, previous, steps, watched, count_ops, ops):
        """Advance a block with a loop one step at a time. Only the output sequences in ``kept``
        (read outside the block, returned, or counted) are stacked; the others live for one step."""
        in_block = set(names)
        nodes = [self.graph.nodes[n] for n in names]
        last = {n: previous[n] for n in names if n in previous}    # outputs of step t-1 in this block
        outs = {n: [] for n in names if n in kept}
        ins = {n: [] for n in names} if count_ops else None
        dt = self.dt
        for t in range(steps):
            current = {}
            for name, node in zip(names, nodes):
                xs = []
                for port_edges in self._inputs[name]:
                    total = None
                    for src, back in port_edges:
                        if back:
                            x = last[src] if src in in_block else (seqs[src][t - 1] if t > 0 else previous[src])
                        else:
                            x = current[src] if src in in_block else seqs[src][t]
                        total = x if total is None else total + x
                    xs.append(total)
                x = xs[0] if len(xs) == 1 else tuple(xs)
                y, node_states[name] = node.step(x, node_states[name], dt)
                current[name] = y
                if name in outs:
                    outs[name].append(y)
                if ins is not None:
                    ins[name].append(x)
                for m in watched.get(name, ()):
                    m.record(t, _values(y, node_states[name]))
            last.update(current)
        for name, node in zip(names, nodes):
            if name not in outs:
                last_outputs[name] = last[name]
                continue
            seqs[name] = torch.stack(outs[name])
            if count_ops:
                x = ins[name]
                x = torch.stack(x) if isinstance(x[0], torch.Tensor) else tuple(torch.stack(p) for p in zip(*x))
                _add_ops(ops, name, node.count_ops(x, seqs[name]))


def _values(output, state) -> Dict[str, torch.Tensor]:
    values = {"output": output}
    if state is not None and hasattr(state, "_asdict"):
        values.update(state._asdict())
    return values


def _add_ops(ops, name, counts):
    if counts:
        entry = ops.setdefault(name, {})
        for k, v in counts.items():
            entry[k] = entry.get(k, 0.0) + float(v)
