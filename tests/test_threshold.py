"""Threshold: stateless H(x - v_threshold) with the engine's surrogate gradient (NIR Threshold)."""
import pytest
import torch

import neurosim as ns


def test_forward_is_the_strict_heaviside_like_population():
    th = ns.Threshold(4, v_threshold=torch.tensor([0.0, 0.5, 1.0, -1.0]))
    x = torch.tensor([[0.0, 0.5, 1.5, -0.5], [0.1, 0.4, 1.0, -1.0]])
    s, state = th.step(x, None, 1e-3)
    assert state is None and torch.equal(s, torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]))
    # a LIF population driven to exactly its threshold does not fire either (v > thr)
    pop = ns.Population("if", 1, ns.IFParams(r=1000.0, v_threshold=1.0))
    spikes, _ = pop.step(torch.ones(1, 1), pop.initial_state(1), 1e-3)
    assert float(spikes) == 0.0 and float(th.step(torch.ones(1, 4), None, 0.0)[0][0, 2]) == 0.0


@pytest.mark.parametrize("name", ["fast_sigmoid", "arctan", "triangle"])
def test_backward_is_the_surrogate_gradient(name):
    th = ns.Threshold((2, 3), v_threshold=0.3, surrogate=name, surrogate_scale=2.0)
    x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    s, _ = th.step(x, None, 1e-3)
    s.sum().backward()
    assert torch.allclose(x.grad, ns.get_surrogate(name, 2.0).grad(x.detach() - 0.3))


def test_trainable_threshold_gets_a_gradient_and_counts_spikes():
    th = ns.Threshold(3, v_threshold=torch.tensor([0.2, 0.4, 0.6]), trainable=True)
    x = torch.rand(7, 3, generator=torch.Generator().manual_seed(1))
    s, _ = th.step(x, None, 0.0)
    s.sum().backward()
    assert th.v_threshold.grad is not None and th.v_threshold.grad.abs().sum() > 0
    assert th.count_ops(x, s)["spikes"] == s.sum()


def test_in_a_simulator_sequence():
    g = ns.Graph.sequential(5, ("acc", ns.Population("integrator", 5, ns.IntegratorParams(r=1000.0))),
                            ("th", ns.Threshold(5, v_threshold=2.5)))
    x = torch.rand(20, 2, 5, generator=torch.Generator().manual_seed(2))
    out = ns.Simulator(g, dt=1e-3).run(x).output
    assert out.sum() > 0 and torch.equal(out, (torch.cumsum(x, 0) > 2.5).float())   # dt r = 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="does not broadcast"):
        ns.Threshold(3, v_threshold=torch.ones(4))
    with pytest.raises(TypeError, match="v_threshold"):
        ns.Threshold(3, v_threshold="1")
    with pytest.raises(ValueError, match="NaN"):
        ns.Threshold(3, v_threshold=float("nan"))
