"""The backward pass through a stepped block costs O(T), not O(T^2).

A stepped block that read ``seq[t]`` from a sequence computed outside it made one select node per
step; each one's backward zero-fills a whole ``[T, batch, n]`` gradient and adds it up, so the
backward grew with T^2. These tests count autograd nodes and the elements the backward fills and
accumulates (no timing)."""
import collections
import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import neurosim as ns

#: autograd nodes that take one step (or a few) out of a whole sequence
STEP_READS = {"SelectBackward0", "SliceBackward0", "IndexBackward0", "AsStridedBackward0", "NarrowBackward0"}


def loop_graph(n=8):
    """x -> fc -> pop <-> rec, fc -> skip ~> pop: a loop read by a feed-forward edge and by a
    back-edge from outside it."""
    torch.manual_seed(0)
    g = ns.Graph().add_input("x", n)
    g.add("fc", ns.Dense(n, n, weight=torch.rand(n, n)))
    g.add("pop", ns.Population("lif", n, ns.LIFParams(tau_mem=5e-3)))
    g.add("rec", ns.Dense(n, n, weight=torch.randn(n, n) * 0.3))
    g.add("skip", ns.Dense(n, n, weight=torch.rand(n, n)))
    g.chain("x", "fc", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
    g.connect("fc", "skip").connect("skip", "pop", back=True)
    return g.add_output("pop")


def stepped_population_graph(n=8):
    """x -> fc -> pop with a monitor on v: pop has no loop but is stepped (the monitor needs
    its state every step)."""
    torch.manual_seed(0)
    return ns.Graph.sequential(n, ("fc", ns.Dense(n, n, weight=torch.rand(n, n))),
                               ("pop", ns.Population("lif", n, ns.LIFParams(tau_mem=5e-3))))


CASES = {"loop": (loop_graph, ()), "monitored": (stepped_population_graph, ("v",))}


def loss(case, steps):
    make, variables = CASES[case]
    sim = ns.Simulator(make())
    x = (torch.rand(steps, 2, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    monitors = [ns.Monitor("pop", variables)] if variables else []
    return sim.run(x, monitors=monitors).outputs["pop"].sum()


def node_types(root):
    seen, stack, counts = set(), [root.grad_fn], collections.Counter()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        counts[type(fn).__name__] += 1
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return counts


@pytest.mark.parametrize("case", sorted(CASES))
def test_steps_are_not_read_one_select_at_a_time(case):
    counts = {steps: node_types(loss(case, steps)) for steps in (10, 20)}
    reads = {steps: sum(c[k] for k in STEP_READS) for steps, c in counts.items()}
    assert counts[20]["SpikeFunctionBackward"] == 2 * counts[10]["SpikeFunctionBackward"] == 20
    assert reads[20] == reads[10], f"step-indexing autograd nodes grow with T: {reads}"


def gradient_elements(case, steps):
    """Elements the backward zero-fills and accumulates (aten::zero_, fill_, add_)."""
    out = loss(case, steps)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        out.backward()
    return sum(math.prod(e.input_shapes[0]) for e in prof.events()
               if e.name in ("aten::zero_", "aten::fill_", "aten::add_") and e.input_shapes and e.input_shapes[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_work_grows_linearly_with_the_number_of_steps(case):
    short, long = gradient_elements(case, 15), gradient_elements(case, 60)
    assert short > 0
    # linear: 4x for 4x the steps (plus a constant); quadratic: 16x
    assert long <= 5 * short, f"backward work grows like T^2: {short} elements at T=15, {long} at T=60"
