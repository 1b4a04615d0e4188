"""to_norse for the new nodes with a direct Norse / torch counterpart: CubaLI (Norse's LICell),
Threshold (Norse's threshold function), Conv1d (torch's nn.Conv1d). The integrator has none and
is refused with the reason.

CubaLI's membrane is Norse's arithmetic in another order of float operations, so it is
compared to 1e-12 in float64; spikes (Threshold, and a LIF after the Conv1d) spike for spike."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.norse import to_norse
from neurosim.hardware.registry import UnsupportedNodesError

T, BATCH = 120, 3


def spikes(shape, seed, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, BATCH, *shape, generator=g) < p).double()


def run_both(graph, x, dt=1e-3):
    sim = ns.Simulator(graph, dt=dt)
    with torch.no_grad():
        want = sim.run(x).outputs
        got, _ = to_norse(sim).to(x.dtype)(x)
    assert list(got) == list(want)
    return want, got


@pytest.mark.parametrize("params", [
    ns.CubaLIParams(tau_syn=3e-3, tau_mem=torch.linspace(5e-3, 9e-3, 6, dtype=torch.float64), r=2.0, v_leak=0.1,
                    w_in=1.5),
    ns.CubaLIParams(tau_syn=4e-3, tau_mem=4e-3),                                   # the tau_syn = tau_mem case
    ns.CubaLIParams(integration="euler", input_same_step=False)])
def test_cuba_li_membrane_and_threshold_spikes(params):
    torch.manual_seed(0)
    g = ns.Graph.sequential(8, ("fc", ns.Dense(8, 6, bias=True)), ("readout", ns.Population("cuba_li", 6, params)),
                            ("th", ns.Threshold(6, v_threshold=torch.linspace(-0.05, 0.05, 6))))
    g.add_output("readout", "th")
    g = g.double()
    with torch.no_grad():
        g.nodes["fc"].weight.mul_(4.0)
    want, got = run_both(g, spikes((8,), 1))
    v = want["readout"]
    assert v.abs().max() > 0.1 and torch.allclose(got["readout"], v, rtol=1e-12, atol=1e-12)
    assert torch.equal(got["th"], want["th"]) and 0.05 < float(want["th"].mean()) < 0.95


def test_conv1d_every_option_then_lif():
    torch.manual_seed(3)
    g = ns.Graph.sequential((4, 30), ("conv", ns.Conv1d((4, 30), 6, 5, stride=2, padding=3, dilation=2, groups=2,
                                                        bias=True)),
                            ("lif", ns.Population("lif", (6, 14), ns.LIFParams(tau_mem=5e-3, reset="zero"))))
    g = g.double()
    with torch.no_grad():
        g.nodes["conv"].weight.mul_(5.0)
        g.nodes["conv"].bias.fill_(0.6)
    want, got = run_both(g, spikes((4, 30), 2))
    assert torch.equal(got["lif"], want["lif"]) and 0.03 < float(want["lif"].mean()) < 0.7


def test_integrator_is_refused_with_the_reason():
    g = ns.Graph.sequential(3, ("acc", ns.Population("integrator", 3)))
    with pytest.raises(UnsupportedNodesError, match="integrator") as err:
        to_norse(ns.Simulator(g))
    assert [p[0] for p in err.value.problems] == ["acc"]
