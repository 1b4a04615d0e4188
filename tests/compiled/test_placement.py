"""Which blocks run compiled, the fallback to the torch path and its one message."""
import logging
import warnings

import pytest
import torch

import neurosim as ns
from neurosim.compiled import lower_node, NotLowerable
from neurosim.neurons import LIFParams
from neurosim.node import Node


class Doubler(Node):
    """A stateful node the compiled machine does not know (a user's own node)."""

    def __init__(self, n):
        super().__init__({"input": (n,)}, (n,))

    def initial_state(self, batch_size, device=None, dtype=torch.float32):
        return None

    def step(self, x, state, dt):
        return 2 * x, state


def _network(extra=None):
    torch.manual_seed(0)
    g = ns.Graph().add_input("x", 8)
    g.add("fc", ns.Dense(8, 8, weight=torch.rand(8, 8), event_driven=True))
    g.add("pop", ns.Population("lif", 8, LIFParams(r=20.0)))
    g.connect("x", "fc").connect("fc", "pop")
    g.add("rec", ns.Dense(8, 8, weight=torch.rand(8, 8) * 0.3, event_driven=True))
    g.connect("pop", "rec", back=True).connect("rec", "pop")
    if extra is not None:
        g.add("user", extra)
        g.connect("pop", "user")
        g.add("late", ns.Population("lif", 8, LIFParams(r=20.0)))
        g.add("loop", ns.Dense(8, 8, weight=torch.rand(8, 8) * 0.3, event_driven=True))
        g.connect("user", "late").connect("late", "loop", back=True).connect("loop", "late")
        g.add_output("late")
    g.add_output("pop")
    return g


def _x(steps=60):
    return (torch.rand(steps, 2, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()


def test_backend_is_validated():
    with pytest.raises(ValueError, match="backend must be one of"):
        ns.Simulator(_network(), backend="gpu")


def test_auto_compiles_inference_and_keeps_training_on_torch():
    sim = ns.Simulator(_network())
    assert sim.backend == "auto"
    with torch.no_grad():
        out = sim.run(_x())
    assert sim.placement["pop"] == ("compiled", "") and sim.placement["rec"] == ("compiled", "")
    assert sim.placement["fc"] == ("compiled", "")         # an event-driven Dense outside the loop
    loss = sim.run(_x()).output.sum()        # grad mode on, weights require grad: trains on torch
    assert sim.placement["pop"][0] == "torch" and "autograd" in sim.placement["pop"][1]
    loss.backward()
    assert sim.graph.nodes["rec"].weight.grad is not None
    assert torch.equal(out.output, sim.run(_x()).output.detach())


def test_fallback_is_per_block_with_one_warning():
    g = _network(extra=Doubler(8))
    x = _x()
    with torch.no_grad():
        ref = ns.Simulator(g, backend="torch").run(x)
        sim = ns.Simulator(g, backend="compiled")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = sim.run(x)
            again = sim.run(x)                 # the same fallback is not reported twice
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    compiled_part, torch_part = messages[0].split("; torch: ")
    assert torch_part == "['user'] (Doubler has no compiled kernel)"
    assert all(f"'{name}'" in compiled_part for name in ("pop", "rec", "late", "loop")), compiled_part
    assert sim.placement["user"] == ("torch", "Doubler has no compiled kernel")
    for name in ("pop", "rec", "late", "loop"):
        assert sim.placement[name] == ("compiled", ""), name
    for name in ("pop", "late"):
        assert torch.equal(ref.outputs[name], got.outputs[name]) and torch.equal(got.outputs[name], again.outputs[name])


def test_auto_logs_instead_of_warning(caplog):
    g = _network(extra=Doubler(8))
    with torch.no_grad(), caplog.at_level(logging.INFO, logger="neurosim"), warnings.catch_warnings():
        warnings.simplefilter("error")
        ns.Simulator(g).run(_x(40))
    assert any("Doubler has no compiled kernel" in r.getMessage() for r in caplog.records)


def test_unlowerable_settings_name_the_reason():
    pop = ns.Population("lif", 4, LIFParams(tau_mem=torch.full((4,), 0.02, dtype=torch.float64)))
    with pytest.raises(NotLowerable, match="float64 tensor but the state is torch.float32"):
        lower_node(pop, pop.initial_state(1, dtype=torch.float32), 1e-3, 1, torch.float32)
    with pytest.raises(NotLowerable, match="has no compiled kernel"):
        lower_node(ns.Conv2d((1, 5, 5), 2, 3), None, 1e-3, 1, torch.float32)


def test_auto_keeps_short_runs_on_torch():
    from neurosim.compiled.placement import AUTO_MIN_STEPS
    sim = ns.Simulator(_network())
    with torch.no_grad():
        short = sim.run(_x(AUTO_MIN_STEPS - 1))
        assert sim.placement["pop"] == ("torch", f"auto: a run of fewer than {AUTO_MIN_STEPS} steps is faster "
                                                 "on the torch path")
        long = sim.run(_x(AUTO_MIN_STEPS))
        assert sim.placement["pop"] == ("compiled", "")
    assert torch.equal(short.output, long.output[:AUTO_MIN_STEPS - 1])


def test_the_cache_stamp_covers_every_module_compiled_into_the_machine():
    """An edited kernel must flush the machine's cache: every module of the package that the
    machine's code imports (directly or through a kernel module) is hashed by ``check_cache``."""
    import ast
    from pathlib import Path

    from neurosim.compiled import cache

    here = Path(cache.__file__).parent
    pending, seen = ["machine", "sequence_kernels", "training_kernels"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((here / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                pending.extend([node.module] if node.module else [a.name for a in node.names])
    assert seen <= set(cache.KERNEL_MODULES), sorted(seen - set(cache.KERNEL_MODULES))
