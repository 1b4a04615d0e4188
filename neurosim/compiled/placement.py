"""Where each block of a run executes: the compiled machine or the torch path, and why.

``Simulator(..., backend=)``:

* ``"torch"``: every block on the torch path (the reference; autograd).
* ``"compiled"``: every block the compiled machine can run, runs there; the others fall back to
  the torch path, block by block, and one warning per distinct fallback lists the nodes and why.
* ``"auto"`` (default): like ``"compiled"`` for runs that need no gradient and last at least
  :data:`AUTO_MIN_STEPS` steps, the torch path for training and for shorter runs; fallbacks are
  logged (logger ``neurosim``) instead of warned.

A block runs compiled when nothing in it needs a gradient (no grad mode, or no tensor of the
block requiring grad), it holds a time loop (a recurrent block, or a stateful node: a
population, a delayed projection), it is on the CPU, numba imports, and every node lowers
(:mod:`neurosim.compiled.lowering`). A stateless node outside a loop (a Dense, a Conv2d, a
Flatten between layers) has no time loop: the torch path already runs it as one call over all T
(one matmul or one event gather), so it stays there, except a ``Dense`` that takes the event
path: that one runs on a compiled kernel that reads each weight row once
(:mod:`neurosim.compiled.sequence`). The compiled machine does
not record autograd history; its outputs are plain tensors.

``Simulator.placement`` holds, after each run, ``node -> (where, why)`` with ``where`` in
``{"compiled", "torch"}``.
"""
from __future__ import annotations

import logging
import warnings
from typing import Dict, List, Optional, Set, Tuple

import torch

from .cache import check_cache
from .lowering import NotLowerable

__all__ = ["BACKENDS", "compiled_available", "run_block_compiled", "report_placement"]

BACKENDS = ("auto", "torch", "compiled")
#: ``"auto"`` runs shorter runs on the torch path: a compiled run has a fixed cost of about
#: 1-2 ms (lowering the block, the array tables), more than a few torch steps of a small network
#: (``python -m benchmarks.bench_backend_crossover``)
AUTO_MIN_STEPS = 20
_LOG = logging.getLogger("neurosim")
_REPORTED: Set[tuple] = set()
_AVAILABLE: Optional[Tuple[bool, str]] = None


def compiled_available() -> Tuple[bool, str]:
    """``(True, "")`` when numba imports, else ``(False, reason)`` (checked once per process)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            import numba  # noqa: F401
            _AVAILABLE = (True, "")
        except Exception as error:  # pragma: no cover - numba is a dependency
            _AVAILABLE = (False, f"numba does not import ({type(error).__name__}: {error})")
    return _AVAILABLE


def _needs_grad(run, names, outside) -> bool:
    if not torch.is_grad_enabled():
        return False
    for n in names:
        node = run.nodes[n]
        if any(p.requires_grad for p in node.parameters()):
            return True
        state = run.states.get(n)
        if state is not None and any(isinstance(s, torch.Tensor) and s.requires_grad for s in state):
            return True
    return any(seq.requires_grad for seq in outside.values())


def _reason_not_compiled(run, names, loop, backend) -> Optional[str]:
    """Why the block stays on the torch path, or None when it may run compiled."""
    if backend == "torch":
        return "backend='torch'"
    if backend == "auto" and run.steps < AUTO_MIN_STEPS:
        return f"auto: a run of fewer than {AUTO_MIN_STEPS} steps is faster on the torch path"
    ok, why = compiled_available()
    if not ok:
        return why
    return None


def run_block_compiled(run, names: List[str], loop: bool, keep: Set[str], backend: str) -> bool:
    """Run the block ``names`` of ``run`` (a :class:`neurosim.schedule.Run`) on the compiled machine
    when it can (see the module docstring) and record the placement of its nodes in
    ``run.placement``. Returns False, having done nothing, when the block must run on the torch
    path."""
    from .program import NotExact, build_block
    reason = _reason_not_compiled(run, names, loop, backend)
    if not loop and run.nodes[names[0]].stateless:
        return _run_stateless(run, names[0], reason)
    outside = {}
    if reason is None:
        inside = set(names)
        for n in names:
            for port in run.plan.ports[n]:
                for source, back in port:
                    if source not in inside and (source, back) not in outside:
                        outside[source, back] = run.sequence(source, back)
        if _needs_grad(run, names, outside):
            reason = "autograd: a tensor of the block requires grad (run under torch.no_grad())"
        elif any(seq.device.type != "cpu" for seq in outside.values()):
            reason = "the inputs are not on the CPU (the compiled path is CPU-only so far)"
    if reason is None:
        check_cache()
        try:
            dtype, batch = _dtype_and_batch(run, names, outside)
            monitored = {n: sorted({v for m in run.watched.get(n, ()) for v in m.sources}) for n in names}
            block = build_block(names, run.nodes, run.plan.ports, run.dt, outside, run.previous, run.states,
                                keep, monitored, run.steps, batch, dtype)
        except NotLowerable as error:
            reason = str(error)
    if reason is not None:
        for n in names:
            run.placement[n] = ("torch", reason)
        return False
    try:
        seqs, last, states, recorded = block.run()
    except NotExact as error:      # the block's own states are untouched: run it on torch instead
        for n in names:
            run.placement[n] = ("torch", f"rerun on torch: {error}")
        return False
    run.seqs.update(seqs)
    run.last.update(last)
    run.states.update(states)
    for n in names:
        run.placement[n] = ("compiled", "")
        for m in run.watched.get(n, ()):
            sources = m.sources
            for t in range(run.steps):
                m.record(t, {s: recorded[n, s][t] for s in sources})
        if run.count_ops:
            x = run.port_inputs(n, run.sequence)
            run.add_ops(n, run.nodes[n].count_ops(x, run.seqs[n]))
    return True


def _run_stateless(run, name: str, reason: Optional[str]) -> bool:
    """A stateless node outside a loop: on the compiled sequence kernel when it applies
    (:mod:`neurosim.compiled.sequence`), else left to the torch path's one call (False)."""
    from .sequence import STATELESS, event_path_active, run_sequence_compiled, why_not_sequence_compiled
    node = run.nodes[name]
    if reason is None:
        if len(run.plan.ports[name]) != 1 or any(m.needs_state for m in run.watched.get(name, ())):
            reason = STATELESS
        else:
            x = run.port_inputs(name, run.sequence)
            reason = why_not_sequence_compiled(node, x)
            active = event_path_active(node, x) if reason is None else None
            reason = STATELESS if reason is None and active is None else reason
    if reason is not None:
        run.placement[name] = ("torch", reason)
        return False
    check_cache()
    out = run_sequence_compiled(node, x, active)
    run.placement[name] = ("compiled", "")
    for m in run.watched.get(name, ()):
        for t in range(run.steps):
            m.record(t, {"output": out[t]})
    run.seqs[name] = out
    if run.count_ops:
        run.add_ops(name, node.count_ops(x, out))
    return True


def _dtype_and_batch(run, names, outside):
    """The block's float dtype (of its first floating state, else of its first floating input,
    else torch's default: the spikes of a fixed-point block) and its batch size."""
    dtype = batch = None
    for n in names:
        state = run.states.get(n)
        for value in (state or ()):
            if isinstance(value, torch.Tensor):
                if batch is None:
                    batch = int(value.shape[getattr(type(state), "batch_axis", 0)])
                if dtype is None and value.is_floating_point():
                    dtype = value.dtype
    for seq in outside.values():
        batch = int(seq.shape[1]) if batch is None else batch
        if dtype is None and seq.is_floating_point():
            dtype = seq.dtype
    if batch is None:
        raise NotLowerable("no state and no input to take the dtype and batch from")
    return dtype or torch.get_default_dtype(), batch


def report_placement(placement: Dict[str, Tuple[str, str]], backend: str, order: List[str]) -> None:
    """One message per distinct fallback: the nodes that ran on the torch path and why, next to
    the ones that ran compiled. A warning for ``backend="compiled"``, a log record for
    ``"auto"``; nothing for ``"torch"`` or when every node ran compiled."""
    if backend == "torch":
        return
    torch_nodes = {n: why for n, (where, why) in placement.items() if where == "torch"}
    from .sequence import STATELESS as expected
    unexpected = {n: why for n, why in torch_nodes.items() if why != expected and not why.startswith("auto:")}
    if not unexpected:
        return
    key = (backend, tuple(sorted(placement.items())))
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    compiled = [n for n in order if placement.get(n, ("", ""))[0] == "compiled"]
    by_reason: Dict[str, List[str]] = {}
    for n in order:
        if n in unexpected:
            by_reason.setdefault(unexpected[n], []).append(n)
    text = (f"neurosim backend={backend!r}: compiled: {compiled or 'none'}; torch: "
            + "; ".join(f"{names} ({why})" for why, names in by_reason.items()))
    if backend == "compiled":
        warnings.warn(text, RuntimeWarning, stacklevel=3)
    else:
        _LOG.info(text)
