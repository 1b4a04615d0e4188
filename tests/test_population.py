"""Population: one wrapper for every model; trainable parameters; validation."""
import pytest
import torch

import neurosim as ns


def test_trainable_parameters_are_registered_and_used():
    pop = ns.Population("lif", 5, ns.LIFParams(tau_mem=20e-3, v_threshold=0.5), trainable=("tau_mem", "v_threshold"))
    names = dict(pop.named_parameters())
    assert set(names) == {"tau_mem", "v_threshold"}
    with torch.no_grad():
        pop.v_threshold.fill_(0.25)
    assert pop.params.v_threshold.item() == 0.25


def test_per_neuron_tensor_parameters_broadcast_and_move_as_buffers():
    tau = torch.linspace(5e-3, 50e-3, 4)
    pop = ns.Population("lif", 4, ns.LIFParams(tau_mem=tau))
    assert "tau_mem" in dict(pop.named_buffers())
    state = pop.initial_state(2)
    x = torch.full((2, 4), 0.5)
    s, new = pop.step(x, state, 1e-3)
    expected = 0.5 * (1 - torch.exp(-1e-3 / tau))
    assert torch.allclose(new.v[0], expected)
    bad = ns.Population("lif", 4, ns.LIFParams(tau_mem=torch.ones(3) * 0.01))
    with pytest.raises(ValueError, match="does not broadcast"):
        bad.validate(1e-3, "node 'p'")


def test_bad_population_arguments():
    with pytest.raises(KeyError, match="unknown neuron model 'hodgkin'"):
        ns.Population("hodgkin", 3)
    with pytest.raises(TypeError, match="params must be LIFParams"):
        ns.Population("lif", 3, params=object())
    with pytest.raises(ValueError, match="cannot train 'tau'"):
        ns.Population("lif", 3, trainable=("tau",))
    with pytest.raises(ValueError, match="reset must be one of"):
        ns.LIFParams(reset="hard")
    with pytest.raises(ValueError, match="shape"):
        ns.Population("lif", 0)


def test_surrogate_choice_changes_the_gradient_only():
    x = torch.full((1, 3), 2.0)
    grads, outs = [], []
    for name in ("fast_sigmoid", "arctan"):
        pop = ns.Population("lif", 3, ns.LIFParams(tau_mem=10e-3), surrogate=name)
        inp = x.clone().requires_grad_(True)
        s, _ = pop.step(inp, pop.initial_state(1), 1e-3)
        s.sum().backward()
        outs.append(s.detach()); grads.append(inp.grad.clone())
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_initial_state_follows_device_and_dtype_of_the_request():
    pop = ns.Population("lif", (2, 3), ns.LIFParams(v_leak=-0.1))
    state = pop.initial_state(4, dtype=torch.float64)
    assert state.v.shape == (4, 2, 3) and state.v.dtype == torch.float64
    assert torch.all(state.v == -0.1)
