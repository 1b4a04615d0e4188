"""Block: every mode inside a graph with spiking populations on both sides (forward, backward, the
step and layer schedules), the rate code against its equations, MAC counts against the analytic
count, explicit state for stateful modules, and bad input named before any step runs."""
from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import nn

import neurosim as ns
from neurosim.plugins import Block, module_macs


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 12))


def sandwich(block, dtype=torch.float32):
    """input 10 -> Dense -> LIF 30 -> block -> Dense -> LIF 5: populations on both sides."""
    torch.manual_seed(1)
    g = ns.Graph.sequential(10, ("fc", ns.Dense(10, 30, weight=torch.rand(30, 10) * 2)),
                            ("lif", ns.Population("lif", 30)), ("blk", block),
                            ("fc2", ns.Dense(12, 5, weight=torch.rand(5, 12) * 3)), ("out", ns.Population("lif", 5)))
    return g.to(dtype)


def spikes(steps=40, batch=3, n=10, seed=2, dtype=torch.float32):
    return (torch.rand(steps, batch, n, generator=torch.Generator().manual_seed(seed)) < 0.3).to(dtype)


def run(graph, x, schedule="layer", **kwargs):
    return ns.Simulator(graph, schedule=schedule).run(x, monitors=[ns.Monitor("blk", "output"),
                                                                    ns.Monitor("out", "spikes")], **kwargs)


MODES = [("analog", {}), ("hybrid", {}), ("rate", {"window": 5}), ("rate", {"window": 5, "encoding": "poisson"})]


@pytest.mark.parametrize("mode,options", MODES, ids=["analog", "hybrid", "rate", "poisson"])
def test_forward_and_backward_through_populations_on_both_sides(mode, options):
    g = sandwich(Block(mlp(), 30, 12, mode=mode, **options))
    out = ns.Simulator(g).run(spikes()).output
    assert out.shape == (40, 3, 5) and 0 < int(out.sum()) < out.numel()
    out.sum().backward()
    upstream, module = g.nodes["fc"].weight.grad, g.nodes["blk"].module[0].weight.grad
    assert upstream is not None and float(upstream.abs().sum()) > 0, "no gradient reached the upstream Dense"
    assert module is not None and float(module.abs().sum()) > 0, "no gradient reached the module"


@pytest.mark.parametrize("mode,options", MODES, ids=["analog", "hybrid", "rate", "poisson"])
def test_step_and_layer_schedules_give_the_same_results(mode, options):
    """float64: identical to rounding (the layer schedule multiplies [T*batch] rows at once, the
    step schedule [batch] rows per step, so BLAS may sum in another order); spikes identical."""
    g = sandwich(Block(mlp().double(), 30, 12, mode=mode, **options), torch.float64)
    x = spikes(dtype=torch.float64)
    a, b = run(g, x, "step").records, run(g, x, "layer").records
    torch.testing.assert_close(a["blk"]["output"], b["blk"]["output"], rtol=0, atol=1e-12)
    assert torch.equal(a["out"]["spikes"], b["out"]["spikes"]) and int(a["out"]["spikes"].sum()) > 0
    if mode == "rate":
        assert torch.equal(a["blk"]["output"], b["blk"]["output"])


def test_rate_mode_follows_its_equations():
    """counts over W steps -> rates -> module -> r = clamp(f, 0, 1) -> floor((j+1) r) - floor(j r)
    spikes in the next window; nothing in the first window (latency W)."""
    w = 4
    module = nn.Linear(3, 2)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.25, 2.0]]))
        module.bias.copy_(torch.tensor([0.1, -0.2]))
    block = Block(module, 3, 2, mode="rate", window=w)
    assert block.latency == w and block.emits_spikes
    x = spikes(12, 2, 3, seed=5)
    y, state = block.step_sequence(x, block.initial_state(2), 1e-3)
    expected = torch.zeros(12, 2, 2)
    for k in range(2):                                   # windows 0 and 1 drive windows 1 and 2
        rates = x[k * w:(k + 1) * w].sum(0) / w
        r = (rates @ module.weight.T + module.bias).clamp(0, 1).detach()
        for j in range(w):
            expected[(k + 1) * w + j] = torch.floor((j + 1) * r) - torch.floor(j * r)
    assert torch.equal(y.detach(), expected) and int(expected.sum()) > 0
    assert int(state.step) == 12 and torch.equal(state.counts, torch.zeros(2, 3))
    # the same run in uneven pieces, carrying the state, gives the same spikes
    pieces, state = [], block.initial_state(2)
    for lo, hi in ((0, 3), (3, 9), (9, 12)):
        part, state = block.step_sequence(x[lo:hi], state, 1e-3)
        pieces.append(part)
    assert torch.equal(torch.cat(pieces).detach(), expected)


def test_poisson_rate_mode_fires_at_the_rate_and_is_seeded():
    module = nn.Linear(4, 6)
    with torch.no_grad():
        module.weight.zero_()
        module.bias.copy_(torch.linspace(0.0, 1.0, 6))
    x = torch.zeros(2000 + 20, 1, 4)
    a = Block(module, 4, 6, mode="rate", window=20, encoding="poisson", seed=3)
    y, _ = a.step_sequence(x, a.initial_state(1), 1e-3)
    rates = y[20:, 0].mean(0)
    torch.testing.assert_close(rates, torch.linspace(0.0, 1.0, 6), atol=0.04, rtol=0)
    y2, _ = a.step_sequence(x, a.initial_state(1), 1e-3)
    b = Block(module, 4, 6, mode="rate", window=20, encoding="poisson", seed=4)
    y3, _ = b.step_sequence(x, b.initial_state(1), 1e-3)
    assert torch.equal(y, y2) and not torch.equal(y, y3)


def test_mac_counts_equal_the_analytic_count():
    """Linear 30->16->12: 30*16 + 16*12 = 672 per sample and call; a conv 2->4 3x3 on 8x8 (pad 1):
    64 positions * 4 * 2 * 9 = 4608. hybrid: T*batch calls; rate: T*batch/W."""
    x = spikes()
    for mode, options, calls in (("hybrid", {}, 40 * 3), ("analog", {}, 40 * 3), ("rate", {"window": 5}, 8 * 3)):
        for schedule in ("step", "layer"):
            ops = run(sandwich(Block(mlp(), 30, 12, mode=mode, **options)), x, schedule, count_ops=True).ops
            assert float(ops["blk"]["macs"]) == calls * 672, (mode, schedule)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    assert module_macs(conv, torch.zeros(1, 2, 8, 8)) == 64 * 4 * 2 * 9
    g = ns.Graph.sequential((2, 8, 8), ("blk", Block(conv, (2, 8, 8), (4, 8, 8))), ("lif", ns.Population("lif", (4, 8, 8))))
    ops = ns.Simulator(g).run(torch.rand(6, 2, 2, 8, 8), count_ops=True).ops
    assert float(ops["blk"]["macs"]) == 6 * 2 * 4608 and "spikes" in ops["lif"]


class CellState(NamedTuple):
    h: torch.Tensor
    c: torch.Tensor


class Cell(nn.Module):
    """An LSTM cell under the stateful-module protocol."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.cell = nn.LSTMCell(n_in, n_hidden)

    def initial_state(self, batch_size, device=None, dtype=None):
        z = torch.zeros(batch_size, self.cell.hidden_size, device=device, dtype=dtype or torch.get_default_dtype())
        return CellState(z, z)

    def forward(self, x, state, dt):
        h, c = self.cell(x, state)
        return h, CellState(h, c)


def test_a_stateful_module_keeps_its_state_in_the_block_state():
    torch.manual_seed(0)
    cell = Cell(30, 12)
    block = Block(cell, 30, 12, mode="hybrid")
    assert not block.stateless
    g = sandwich(block)
    sim, x = ns.Simulator(g), spikes()
    whole = sim.run(x)
    first = sim.run(x[:25])
    second = sim.run(x[25:], state=first.state)
    assert torch.equal(torch.cat([first.output, second.output]), whole.output)
    assert isinstance(whole.state.nodes["blk"], CellState)
    again = sim.run(x)                                    # no hidden state left behind
    assert torch.equal(again.output, whole.output)
    # the same as nn.LSTM over the lif spikes with the cell's weights
    lif = sim.run(x, monitors=[ns.Monitor("lif", "spikes"), ns.Monitor("blk", "output")]).records
    lstm = nn.LSTM(30, 12)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(getattr(cell.cell, name))
    reference, _ = lstm(lif["lif"]["spikes"])
    torch.testing.assert_close(lif["blk"]["output"], reference, atol=1e-6, rtol=1e-5)
    # truncated BPTT: chunks with the state detached in between
    state = None
    for lo in range(0, 40, 10):
        result = sim.run(x[lo:lo + 10], state=state)
        result.output.sum().backward()
        state = ns.NetworkState({k: None if v is None else type(v)(*[t.detach() for t in v]) if isinstance(v, tuple)
                                 else v.detach() for k, v in result.state.nodes.items()},
                                {k: v.detach() for k, v in result.state.previous.items()})
    assert float(cell.cell.weight_ih.grad.abs().sum()) > 0


def test_construction_leaves_the_module_as_it_was():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 12), nn.BatchNorm1d(12))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    Block(net, 30, 12)
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_input_names_the_block_and_the_shapes():
    with pytest.raises(ValueError, match=r"Block\(Linear\): for an input \[batch, \*in_shape\] = \[2, 30\] the module "
                                         r"gives \(2, 11\), not \[batch, \*out_shape\] = \[2, 12\]"):
        Block(nn.Linear(30, 11), 30, 12)
    with pytest.raises(ValueError, match=r"Block\(Linear\): the module fails on an input of shape .* \[2, 20\]"):
        Block(nn.Linear(30, 12), 20, 12)
    with pytest.raises(ValueError, match="mode must be one of"):
        Block(nn.Linear(30, 12), 30, 12, mode="spiking")
    with pytest.raises(ValueError, match="rate mode needs window=W"):
        Block(nn.Linear(30, 12), 30, 12, mode="rate")
    with pytest.raises(ValueError, match="window applies to mode='rate' only"):
        Block(nn.Linear(30, 12), 30, 12, window=3)
    with pytest.raises(ValueError, match="encoding must be one of"):
        Block(nn.Linear(30, 12), 30, 12, mode="rate", window=3, encoding="latency")
    with pytest.raises(ValueError, match="a stateful module"):
        Block(Cell(30, 12), 30, 12, mode="rate", window=3)
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        Block(lambda x: x, 30, 12)
    g = sandwich(Block(mlp(), 30, 12, mode="rate", window=50))
    with pytest.raises(ValueError, match=r"node 'blk' \(Block\(Sequential\)\): a rate window of 50 steps is longer "
                                         r"than the run \(40 steps\)"):
        ns.Simulator(g).run(spikes())


def test_attention_macs_are_counted_on_the_cpu_too():
    """torch's counter has no formula for the CPU attention kernel; the block registers one:
    Q K^T and (.) V are H L S E MACs each."""
    import torch.nn.functional as F

    class Attention(nn.Module):
        def forward(self, x):                       # x [batch, L, H * E] -> heads
            q = x.reshape(x.shape[0], 5, 2, 4).transpose(1, 2)
            return F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape[0], 5, 8)

    assert module_macs(Attention(), torch.zeros(1, 5, 8)) == 2 * (2 * 5 * 5 * 4)
