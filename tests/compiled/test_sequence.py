"""A stateless Dense outside any loop on the compiled whole-sequence kernel, against the torch
event path (the same sums, bit for bit for spikes) and the cases that stay on torch."""
import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.compiled.sequence_kernels import event_sequence, tile_columns
from neurosim.neurons import LIFParams


def _graph(n_in, n_out, dtype, bias=False, event_driven=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = (torch.rand(n_out, n_in, generator=g, dtype=dtype) - 0.3) * 0.5
    graph = ns.Graph().add_input("x", n_in)
    graph.add("fc", ns.Dense(n_in, n_out, weight=w, bias=bias, event_driven=event_driven))
    if bias:
        graph.nodes["fc"].bias.data = torch.rand(n_out, generator=g, dtype=dtype)
    graph.add("pop", ns.Population("lif", n_out, LIFParams(r=20.0)).to(dtype))
    graph.connect("x", "fc").connect("fc", "pop")
    graph.add_output("pop", "fc")
    return graph


def _spikes(steps, batch, n, p, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g) < p).to(dtype)


def _both(graph, x, **run):
    with torch.no_grad():
        ref = ns.Simulator(graph, 1e-3, backend="torch").run(x, **run)
        sim = ns.Simulator(graph, 1e-3, backend="compiled")
        got = sim.run(x, **run)
    return ref, got, sim


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [False, True])
def test_spikes_give_the_torch_event_path_bit_for_bit(dtype, bias):
    graph = _graph(300, 700, dtype, bias=bias)
    x = _spikes(90, 3, 300, 0.05, dtype)
    ref, got, sim = _both(graph, x, count_ops=True)
    assert sim.placement["fc"] == ("compiled", "") and sim.placement["pop"] == ("compiled", "")
    assert got.outputs["fc"].dtype == dtype
    assert torch.equal(ref.outputs["fc"], got.outputs["fc"])
    assert torch.equal(ref.outputs["pop"], got.outputs["pop"]) and ref.outputs["pop"].sum() > 0
    assert ref.ops == got.ops


def test_graded_values_agree_to_rounding_and_every_row_and_tile_is_covered():
    torch.manual_seed(2)
    x = torch.rand(50, 40, dtype=torch.float64) * (torch.rand(50, 40) < 0.2)
    x[7] = 0                                        # a row without any active input
    weight_t = torch.randn(40, 1000, dtype=torch.float64)
    z = torch.from_numpy(event_sequence(x.numpy(), weight_t.numpy(), int(torch.count_nonzero(x)), threads=2))
    torch.testing.assert_close(z, x @ weight_t, rtol=1e-12, atol=1e-12)
    assert torch.equal(z[7], torch.zeros(1000, dtype=torch.float64))
    assert tile_columns(50, 1000, 8, threads=2) == 448 and tile_columns(100_000, 4096, 4) == 64
    one = torch.from_numpy(event_sequence(x.numpy(), weight_t.numpy(), int(torch.count_nonzero(x)), threads=1))
    assert torch.equal(z, one)


def test_monitored_output_is_recorded():
    graph = _graph(64, 32, torch.float32)
    x = _spikes(40, 2, 64, 0.1, torch.float32)
    records = {}
    for backend in ("torch", "compiled"):
        with torch.no_grad():
            sim = ns.Simulator(graph, 1e-3, backend=backend)
            records[backend] = sim.run(x, monitors=[ns.Monitor("fc", "output", name="fc")]).records["fc"]["output"]
        assert sim.placement["fc"][0] == backend
    assert torch.equal(records["torch"], records["compiled"])


def test_dense_matmul_training_and_delays_stay_on_torch():
    x = _spikes(40, 2, 64, 0.1, torch.float32)
    dense = _graph(64, 32, torch.float32, event_driven=False)
    with torch.no_grad():
        sim = ns.Simulator(dense, 1e-3, backend="compiled")
        sim.run(x)
    assert sim.placement["fc"][0] == "torch"
    trained = _graph(64, 32, torch.float32)
    sim = ns.Simulator(trained, 1e-3, backend="auto")
    out = sim.run(x).outputs["pop"]
    assert sim.placement["fc"][0] == "torch" and out.requires_grad
    ref, got, sim = _both(_graph(64, 32, torch.float32), x.double().float())
    assert sim.placement["fc"][0] == "compiled"


def test_where_torch_would_take_the_matmul_the_compiled_gather_still_runs_below_its_density():
    """A 2048 x 2048 Dense over 1000 rows at 14 % density: torch's cost model (fitted for its own,
    slower event path) picks the dense matmul there; the compiled gather is faster up to
    COMPILED_EVENT_DENSITY and runs. Its sums are the event path's: equal to the matmul to
    rounding, and bit for bit torch's with ``event_driven=True``."""
    from neurosim.compiled.sequence import COMPILED_EVENT_DENSITY
    graph = _graph(2048, 2048, torch.float32, event_driven="auto")
    fc = graph.nodes["fc"]
    x = _spikes(1000, 1, 2048, 0.14, torch.float32)
    assert 0.14 < COMPILED_EVENT_DENSITY and not fc.use_event_path(x.reshape(-1, 2048))   # torch: matmul
    ref, got, sim = _both(graph, x)
    assert sim.placement["fc"] == ("compiled", "")
    torch.testing.assert_close(got.outputs["fc"], ref.outputs["fc"], rtol=1e-5, atol=1e-5)
    fc.event_driven = True
    with torch.no_grad():
        events = ns.Simulator(graph, 1e-3, backend="torch").run(x)
    assert torch.equal(events.outputs["fc"], got.outputs["fc"])
    fc.event_driven = False                                  # forced dense: compiled stays on torch
    with torch.no_grad():
        sim = ns.Simulator(graph, 1e-3, backend="compiled")
        dense = sim.run(x)
    assert sim.placement["fc"][0] == "torch" and torch.equal(dense.outputs["fc"], ref.outputs["fc"])
