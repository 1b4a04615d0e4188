"""The fixed-point Loihi model (loihi_cuba, LoihiDense) on the compiled machine against its torch
step: identical spikes, int32 states, int64 sums and delay buffers, over a grid of settings."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.loihi import LoihiCubaParams, LoihiDense

from .test_conformance import _assert_same, _both

N_IN, N = 24, 16


def _spikes(steps, batch, n, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g) < p).float()


def _mantissas(out, inp, seed, low=-60, high=128):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (out, inp), generator=g)


def _per_neuron(low, high, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (N,), generator=g)


CASES = {
    "plain lif (i_decay 4096)": dict(i_decay=4096, v_decay=256, v_th_mant=40),
    "current kept (i_decay 0), bias": dict(i_decay=0, v_decay=128, v_th_mant=300, bias_mant=-50, bias_exp=3),
    "no decays, refractory": dict(i_decay=1, v_decay=0, v_th_mant=200, refractory_delay=3),
    "per-neuron decays and thresholds": dict(i_decay=_per_neuron(1, 4097, 1), v_decay=_per_neuron(0, 4096, 2),
                                             v_th_mant=_per_neuron(10, 400, 3), bias_mant=_per_neuron(-30, 30, 4),
                                             bias_exp=2, refractory_delay=1),
    "saturating": dict(i_decay=16, v_decay=0, v_th_mant=2 ** 17 - 1, bias_mant=4095, bias_exp=7),
}


def _feed_forward(params, delay, exp=3):
    g = ns.Graph().add_input("x", N_IN)
    g.add("fc", LoihiDense(_mantissas(N, N_IN, 5), weight_exp=exp, delay=delay))
    g.add("pop", ns.Population("loihi_cuba", N, LoihiCubaParams(**params)))
    g.connect("x", "fc").connect("fc", "pop")
    g.add_output("pop", "fc")
    return g


def _recurrent(params):
    """input -> LoihiDense (latency 1, delays) -> pop; pop -> LoihiDense (latency 0) -> pop (back-edge)."""
    g = ns.Graph().add_input("x", N_IN)
    g.add("fc", LoihiDense(_mantissas(N, N_IN, 6), weight_exp=2, delay=_per_neuron(0, 4, 7)))
    g.add("pop", ns.Population("loihi_cuba", N, LoihiCubaParams(**params)))
    g.add("rec", LoihiDense(_mantissas(N, N, 8, low=-128, high=100), weight_exp=1, latency=0))
    g.connect("x", "fc").connect("fc", "pop").connect("pop", "rec", back=True).connect("rec", "pop")
    g.add_output("pop")
    return g


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("delay", [0, 2, "per-output"])
def test_feed_forward_grid(case, delay):
    delay = _per_neuron(0, 5, 9) if delay == "per-output" else delay
    g = _feed_forward(CASES[case], delay)
    x = _spikes(120, 2, N_IN, 0.3, seed=1)
    ref, got, sim = _both(g, x)
    assert sim.placement["fc"][0] == "compiled", sim.placement
    assert ref.outputs["fc"].dtype == got.outputs["fc"].dtype == torch.int64
    assert torch.equal(ref.outputs["fc"], got.outputs["fc"])
    _assert_same(ref, got, sim, "pop")
    if case != "saturating":
        assert 0 < ref.outputs["pop"].sum() < ref.outputs["pop"].numel()


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_grid_and_continuation(case):
    g = _recurrent(CASES[case])
    x = _spikes(150, 3, N_IN, 0.25, seed=2)
    ref, got, sim = _both(g, x)
    for node in ("fc", "pop", "rec"):
        assert sim.placement[node][0] == "compiled", (node, sim.placement[node])
    _assert_same(ref, got, sim, "pop")
    ref2, got2, _ = _both(g, x, state=got.state)
    with torch.no_grad():
        torch_only = ns.Simulator(g, 1e-3, backend="torch").run(x, state=ref.state)
    assert torch.equal(torch_only.outputs["pop"], got2.outputs["pop"])
    assert torch.equal(ref2.outputs["pop"], got2.outputs["pop"])


def test_monitors_and_op_counts():
    g = _recurrent(CASES["no decays, refractory"])
    x = _spikes(80, 2, N_IN, 0.3, seed=3)
    records = {}
    for backend in ("torch", "compiled"):
        mons = [ns.Monitor("pop", ["spikes", "u", "v", "refractory"], name="p"), ns.Monitor("rec", "output", name="r")]
        with torch.no_grad():
            sim = ns.Simulator(g, 1e-3, backend=backend)
            result = sim.run(x, monitors=mons, count_ops=True)
        assert sim.placement["pop"][0] == backend
        records[backend] = (result.records, result.ops)
    (ref, ref_ops), (got, got_ops) = records["torch"], records["compiled"]
    for mon, variables in ref.items():
        for var, value in variables.items():
            other = got[mon][var]
            assert value.dtype == other.dtype and torch.equal(value, other), (mon, var)
    assert ref["p"]["u"].dtype == torch.int32
    assert ref_ops == got_ops and ref_ops["pop"]["spikes"] > 0


def test_a_non_integer_input_reruns_the_block_on_torch():
    """A LoihiDense fed graded values: the machine sees they are not whole numbers and the block
    runs on the torch path instead (same results, the placement says why)."""
    g = _feed_forward(CASES["plain lif (i_decay 4096)"], delay=1)
    x = _spikes(60, 1, N_IN, 0.3, seed=4) * 0.5
    with pytest.warns(RuntimeWarning, match="not whole numbers"):
        ref, got, sim = _both(g, x)
    assert sim.placement["fc"][0] == "torch" and "rerun on torch" in sim.placement["fc"][1]
    assert torch.equal(ref.outputs["fc"], got.outputs["fc"])
    assert torch.equal(ref.outputs["pop"], got.outputs["pop"])


def test_a_float_input_with_whole_numbers_feeds_the_population():
    """loihi_cuba fed by a float Dense with integer weights: the machine converts the whole numbers;
    non-integer values keep the population on torch, where the step raises its own error (the run
    stops before the placement is reported)."""
    g = ns.Graph().add_input("x", N_IN)
    g.add("fc", ns.Dense(N_IN, N, weight=(_mantissas(N, N_IN, 11) * 64).float(), event_driven=True))
    g.add("pop", ns.Population("loihi_cuba", N, LoihiCubaParams(i_decay=2048, v_decay=512, v_th_mant=30)))
    g.connect("x", "fc").connect("fc", "pop")
    g.add_output("pop")
    x = _spikes(100, 2, N_IN, 0.3, seed=5)
    ref, got, sim = _both(g, x)
    _assert_same(ref, got, sim, "pop")
    g.nodes["fc"].weight.data += 0.25
    with pytest.raises(ValueError, match="must hold integers"):
        with torch.no_grad():
            ns.Simulator(g, 1e-3, backend="compiled").run(x)
