"""The fused LIF sequence kernel equals stepping lif_step: outputs bit for bit, gradients closely."""
import pytest
import torch

import neurosim as ns
from neurosim.neurons.lif import lif_sequence


@pytest.mark.parametrize("reset", ["subtract", "zero", "value"])
@pytest.mark.parametrize("v_leak", [0.0, -0.2])
@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_fused_equals_stepping(reset, v_leak, integration):
    torch.manual_seed(0)
    params = ns.LIFParams(tau_mem=8e-3, v_threshold=0.6, v_leak=v_leak, v_reset=0.1, r=2.0,
                          reset=reset, integration=integration)
    pop = ns.Population("lif", 50, params, surrogate="arctan")
    x = torch.randn(40, 3, 50) * 0.8
    x_a, x_b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    state = pop.initial_state(3)
    spikes_f, final_f = lif_sequence(x_a, state, pop.params, 1e-3, pop.surrogate)
    outs, st = [], state
    for t in range(x.shape[0]):
        s, st = pop.step(x_b[t], st, 1e-3)
        outs.append(s)
    spikes_s = torch.stack(outs)
    assert spikes_s.sum() > 10, "the comparison needs spikes"
    assert torch.equal(spikes_f, spikes_s)
    assert torch.equal(final_f.v, st.v)
    w = torch.randn_like(spikes_f)
    ((spikes_f * w).sum() + final_f.v.sum()).backward()
    ((spikes_s * w).sum() + st.v.sum()).backward()
    assert torch.allclose(x_a.grad, x_b.grad, rtol=1e-4, atol=1e-6)


def test_fused_kernel_declines_what_it_does_not_cover():
    state = ns.Population("lif", 4).initial_state(1)
    x = torch.zeros(5, 1, 4)
    for params in (ns.LIFParams(refractory_steps=2), ns.LIFParams(input_same_step=False)):
        assert lif_sequence(x, state, params, 1e-3, ns.get_surrogate("sigmoid")) is NotImplemented
    trainable = ns.Population("lif", 4, trainable=("tau_mem",))
    assert trainable.step_sequence(x, state, 1e-3) is NotImplemented


def test_simulator_uses_the_kernel_only_when_unmonitored_and_results_agree():
    torch.manual_seed(1)
    g = ns.Graph.sequential(30, ("fc", ns.Dense(30, 20, weight=torch.rand(20, 30) * 0.3)),
                            ("lif", ns.Population("lif", 20, ns.LIFParams(tau_mem=5e-3, v_threshold=0.5))))
    x = (torch.rand(50, 2, 30) < 0.3).float()
    layer = ns.Simulator(g).run(x)          # fused kernel
    step = ns.Simulator(g, schedule="step").run(x)  # lif_step in the loop
    assert layer.output.sum() > 0
    assert torch.equal(layer.output, step.output)
