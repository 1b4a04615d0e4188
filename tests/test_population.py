"""Population: one wrapper for every model; trainable parameters; validation."""
import dataclasses

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


def _registered_fields():
    """(model name, field, default) for every field of every registered model's params dataclass."""
    for name in ns.available_neuron_models():
        params_type = ns.get_neuron_model(name).params_type
        for f in dataclasses.fields(params_type):
            yield name, f.name, getattr(params_type(), f.name)


@pytest.mark.parametrize("model, field, default", list(_registered_fields()))
def test_trainable_accepts_exactly_the_float_fields(model, field, default):
    """Continuous (float) fields become parameters a backward pass reaches; discrete ones (int
    refractory steps, str modes, bool flags) are refused up front, naming field, model and the
    allowed fields. The kind is read from each field's default value, not from the code's rule."""
    if isinstance(default, float):
        pop = ns.Population(model, 3, trainable=(field,))
        assert isinstance(getattr(pop, field), torch.nn.Parameter)
        x = tuple(torch.ones(2, 3) for _ in pop.input_ports)
        out, state = pop.step(x if len(x) > 1 else x[0], pop.initial_state(2), 1e-4)
        (out.sum() + sum(s.sum() for s in state)).backward()          # reaches the parameter, no error
        assert getattr(pop, field).grad is not None
    else:
        assert isinstance(default, (int, str, bool)), (model, field, default)
        allowed = [f for m, f, d in _registered_fields() if m == model and isinstance(d, float)]
        with pytest.raises(ValueError) as info:
            ns.Population(model, 3, trainable=(field,))
        message = str(info.value)
        assert f"Population({model!r}): cannot train {field!r}, a discrete parameter" in message
        assert f"trainable parameters: {allowed}" in message


def test_every_model_has_a_discrete_field_and_lif_refuses_refractory_steps():
    """The parametrised test above is not vacuous: each model has discrete fields to refuse."""
    for name in ns.available_neuron_models():
        params = ns.get_neuron_model(name).params_type()
        assert any(not isinstance(getattr(params, f.name), float) for f in dataclasses.fields(params)), name
    with pytest.raises(ValueError, match="cannot train 'refractory_steps'"):
        ns.Population("lif", 3, trainable=("refractory_steps",))
    with pytest.raises(TypeError, match="sequence of parameter names"):
        ns.Population("lif", 3, trainable="tau_mem")
