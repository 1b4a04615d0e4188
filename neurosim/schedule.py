"""One run of a :class:`~neurosim.run_plan.RunPlan`: the schedule of neurosim, block by block.

The schedule (documented in :mod:`neurosim.simulator`) at step ``t``::

    x[port] = sum over the port's in-edges, in the order they were added, of
                source output at step t        (feed-forward edge; a graph input reads inputs[t])
                source output at step t - 1    (back-edge; the state's ``previous`` at t = 0)
    output[name], state[name] = node.step(x, state[name], dt)

A :class:`Run` holds what one call of ``Simulator.run`` works on (the sequences computed so far,
the states, the monitors) and advances the plan's blocks in order. A block without a loop runs
over the whole sequence in one call when its node allows it (stateless, or a fused
``step_sequence``); every other block is stepped. Both ways read their inputs through the same
two functions: :meth:`Run.sequence` (what an edge delivers over the whole run, back-edges
shifted by one step) and :meth:`Run.port_inputs` (the sum per port).

Sequences read by a stepped block from outside it are split once into per-step views
(``unbind``) before the loop, so the backward pass gathers their gradient in one node (cost
O(T)); indexing ``seq[t]`` in the loop would make T select nodes, each filling a whole
``[T, batch, ...]`` gradient (cost O(T^2)). The per-step outputs of a stepped block are kept only
for the nodes read outside the block, returned, or counted: without autograd they are written
into one preallocated ``[T, batch, ...]`` tensor; with autograd collected and stacked once
(writing into a preallocated tensor would add a copy node per step whose backward again costs
O(T^2)).
"""
from __future__ import annotations

import contextlib

from typing import Any, Callable, Dict, List, Set

import torch

__all__ = ["Run"]


class Run:
    """One simulation of ``steps`` steps.

    graph, plan, dt: the network, its :class:`RunPlan` and the time step (seconds);
    inputs: input name -> ``[T, batch, ...]``; state: the initial :class:`NetworkState`;
    watched: node -> monitors recording it; count_ops: also count operations per node.
    After :meth:`run_all`: ``seqs`` (input and kept node output sequences), ``states`` (final
    node states), ``ops`` (counts) and :meth:`final_previous`."""

    def __init__(self, graph, plan, dt: float, inputs: Dict[str, torch.Tensor], state, steps: int,
                 watched: Dict[str, List], count_ops: bool, backend: str = "torch"):
        self.nodes, self.plan, self.dt, self.steps = graph.nodes, plan, dt, steps
        self.backend = backend
        #: node -> ("compiled" | "torch", why), filled by :meth:`run_all`
        self.placement: Dict[str, tuple] = {}
        self.seqs: Dict[str, torch.Tensor] = dict(inputs)
        self.last: Dict[str, torch.Tensor] = {}       # last output of nodes whose sequence is not kept
        self.states: Dict[str, Any] = dict(state.nodes)
        self.previous: Dict[str, torch.Tensor] = state.previous
        self.watched, self.count_ops = watched, count_ops
        self.ops: Dict[str, Dict[str, float]] = {}

    def run_all(self) -> None:
        """Advance every block of the plan over the whole sequence, in the plan's order: on the
        compiled machine where the backend allows it (:mod:`neurosim.compiled.placement`), else
        on the torch path."""
        from .compiled.placement import run_block_compiled
        from .compiled.training import compiled_kernels
        outputs = set(self.plan.outputs)
        # backend="torch": the fused LIF kernel in torch ops too (elsewhere the caller's choice holds)
        with compiled_kernels(False) if self.backend == "torch" else contextlib.nullcontext():
            for (names, loop), read_outside in zip(self.plan.blocks, self.plan.read_outside):
                keep = set(names) if self.count_ops else (read_outside | outputs) & set(names)
                if run_block_compiled(self, names, loop, keep, self.backend):
                    continue
                if loop or not self._run_whole(names[0]):
                    self._run_stepped(names, keep)

    def add_ops(self, name: str, counts) -> None:
        """Add one call's operation counts of node ``name`` to :attr:`ops`."""
        _add_ops(self.ops, name, counts)

    def final_previous(self) -> Dict[str, torch.Tensor]:
        """Each back-edge source's output at the last step (the next run's ``previous``)."""
        return {n: (self.seqs[n][-1] if n in self.seqs else self.last[n]) for n in self.plan.back_sources}

    # ------------------------------------------------------------------ reading inputs
    def sequence(self, source: str, back: bool) -> torch.Tensor:
        """What an edge from ``source`` delivers at steps 0..T-1, ``[T, batch, ...]``: the source's
        output sequence, or for a back-edge that sequence shifted by one step, starting with the
        state's previous output."""
        x = self.seqs[source]
        return torch.cat([self.previous[source].unsqueeze(0), x[:-1]], 0) if back else x

    def port_inputs(self, name: str, read: Callable[[str, bool], torch.Tensor]):
        """``x`` for node ``name``: per input port, the sum of ``read(source, back)`` over its
        in-edges in the order they were added; one tensor for a one-port node, else a tuple in
        ``input_ports`` order. ``read`` gives whole sequences or one step's values."""
        xs = []
        for port_edges in self.plan.ports[name]:
            total = None
            for source, back in port_edges:
                x = read(source, back)
                total = x if total is None else total + x
            xs.append(total)
        return xs[0] if len(xs) == 1 else tuple(xs)

    # ------------------------------------------------------------------ blocks
    def _run_whole(self, name: str) -> bool:
        """Run a node without a loop over all T at once: a stateless node in one call, a stateful
        one through its fused ``step_sequence``. False (nothing done) when it must be stepped."""
        node = self.nodes[name]
        mons = self.watched.get(name, ())
        fused = NotImplemented
        if node.supports_sequence and not any(m.needs_state for m in mons):
            x = self.port_inputs(name, self.sequence)
            fused = node.step_sequence(x, self.states[name], self.dt)
        if fused is not NotImplemented:
            out, self.states[name] = fused
        elif node.stateless:
            x = self.port_inputs(name, self.sequence)
            out = node.forward_sequence(x)
        else:
            return False
        for m in mons:
            for t in range(self.steps):
                m.record(t, {"output": out[t]})
        self.seqs[name] = out
        if self.count_ops:
            _add_ops(self.ops, name, node.count_ops(x, out))
        return True

    def _run_stepped(self, names: List[str], keep: Set[str]) -> None:
        """Advance the nodes ``names`` (in feed-forward order) together, one step at a time.
        Only the output sequences of ``keep`` are stored; the others live for one step."""
        in_block = set(names)
        nodes = [self.nodes[n] for n in names]
        last = {n: self.previous[n] for n in names if n in self.previous}    # outputs at step t - 1
        outside = {}                                                          # (source, back) -> per-step views
        for name in names:
            for port_edges in self.plan.ports[name]:
                for source, back in port_edges:
                    if source not in in_block and (source, back) not in outside:
                        outside[source, back] = self.sequence(source, back).unbind(0)
        t, current = 0, {}

        def read(source, back):
            if source in in_block:
                return last[source] if back else current[source]
            return outside[source, back][t]

        record = _Recorder(keep, self.steps)
        ins = {n: [] for n in names} if self.count_ops else None
        dt, states, watched = self.dt, self.states, self.watched
        for t in range(self.steps):
            current = {}
            for name, node in zip(names, nodes):
                x = self.port_inputs(name, read)
                y, states[name] = node.step(x, states[name], dt)
                current[name] = y
                record(name, t, y)
                if ins is not None:
                    ins[name].append(x)
                for m in watched.get(name, ()):
                    m.record(t, _values(y, states[name]))
            last.update(current)
        for name, node in zip(names, nodes):
            if name not in keep:
                self.last[name] = last[name]
                continue
            self.seqs[name] = record.sequence(name)
            if ins is not None:
                x = ins[name]
                x = torch.stack(x) if isinstance(x[0], torch.Tensor) else tuple(torch.stack(p) for p in zip(*x))
                _add_ops(self.ops, name, node.count_ops(x, self.seqs[name]))


class _Recorder:
    """The per-step outputs of the nodes in ``keep``: without autograd written into one
    preallocated ``[T, batch, ...]`` tensor per node (one copy in memory); with autograd kept in
    a list and stacked once at the end."""

    def __init__(self, keep: Set[str], steps: int):
        self.keep, self.steps = keep, steps
        self.grad = torch.is_grad_enabled()
        self.store: Dict[str, Any] = {}

    def __call__(self, name: str, t: int, y: torch.Tensor) -> None:
        if name not in self.keep:
            return
        if self.grad:
            self.store.setdefault(name, []).append(y)
            return
        if t == 0:
            self.store[name] = y.new_empty((self.steps, *y.shape))
        self.store[name][t] = y

    def sequence(self, name: str) -> torch.Tensor:
        out = self.store[name]
        return torch.stack(out) if self.grad else out


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
