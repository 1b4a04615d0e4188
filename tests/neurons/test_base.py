"""Shared discretisation helpers, checks and the model registry of neurosim.neurons.base."""
import dataclasses
import math
import typing
import warnings

import pytest
import torch

import neurosim as ns
from neurosim.neurons import base


@pytest.mark.parametrize("tau", [1e-3, 5e-3, 0.1])
def test_decay_factor_exact_and_euler(tau):
    dt = 1e-4
    assert base.decay_factor(tau, dt, "exact") == pytest.approx(math.exp(-dt / tau), rel=1e-15)
    assert base.decay_factor(tau, dt, "euler") == pytest.approx(1 - dt / tau, rel=1e-15)
    # the two agree to second order in dt / tau
    diff = abs(base.decay_factor(tau, dt, "exact") - base.decay_factor(tau, dt, "euler"))
    assert diff <= 0.51 * (dt / tau) ** 2


def test_decay_factor_of_a_tensor_is_differentiable():
    tau = torch.tensor([2e-3, 20e-3], dtype=torch.float64, requires_grad=True)
    a = base.decay_factor(tau, 1e-3, "exact")
    a.sum().backward()
    # d/dtau exp(-dt/tau) = exp(-dt/tau) dt / tau^2
    expected = torch.exp(-1e-3 / tau.detach()) * 1e-3 / tau.detach() ** 2
    assert torch.allclose(tau.grad, expected)
    assert isinstance(base.decay_factor(0.01, 1e-3, "exact"), float)


def test_apply_reset_modes():
    v = torch.tensor([1.5, 0.4, 2.5])
    s = torch.tensor([1.0, 0.0, 1.0])
    assert torch.equal(base.apply_reset(v, s, "zero", 1.0, -0.2), torch.tensor([0.0, 0.4, 0.0]))
    assert torch.equal(base.apply_reset(v, s, "value", 1.0, -0.2), torch.tensor([-0.2, 0.4, -0.2]))
    # subtract removes v_threshold - v_reset and keeps the overshoot
    assert torch.allclose(base.apply_reset(v, s, "subtract", 1.0, -0.2), torch.tensor([0.3, 0.4, 1.3]))


def test_apply_reset_passes_gradient_through_v():
    v = torch.tensor([1.5, 0.4], requires_grad=True)
    s = torch.tensor([1.0, 0.0])
    base.apply_reset(v, s, "zero", 1.0, 0.0).sum().backward()
    assert torch.equal(v.grad, torch.tensor([0.0, 1.0]))


def test_checks_name_the_field():
    with pytest.raises(ValueError, match=r"X\.tau must be finite and > 0"):
        base.check_positive(0.0, "X.tau")
    with pytest.raises(ValueError, match=r"X\.tau must be finite"):
        base.check_positive(torch.tensor([1.0, float("nan")]), "X.tau")
    with pytest.raises(ValueError, match=r"X\.mode must be one of \['a', 'b'\]"):
        base.check_choice("c", ("a", "b"), "X.mode")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"X\.refractory_steps must be an integer >= 0"):
            base.check_steps(bad, "X.refractory_steps")
    base.check_steps(3, "X.refractory_steps")
    base.check_steps(3.0, "X.refractory_steps")


def test_check_time_step_errors_and_warnings():
    with pytest.raises(ValueError, match="p.tau_mem must be finite and > 0"):
        base.check_time_step(-1e-3, 1e-3, "p.tau_mem")
    with pytest.raises(ValueError, match="time step dt"):
        base.check_time_step(1e-2, 0.0, "p.tau_mem")
    with pytest.warns(RuntimeWarning, match="p.tau_mem = 0.001 s is not larger than dt"):
        base.check_time_step(1e-3, 1e-3, "p.tau_mem")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base.check_time_step(2e-3, 1e-3, "p.tau_mem")


def test_check_fields_positive_skips_tensors():
    p = ns.CubaLIFParams(tau_mem=torch.tensor([-1.0, 1.0]))   # checked later by validate()
    base.check_fields_positive(p, ("tau_syn",))
    with pytest.raises(ValueError, match="CubaLIFParams.tau_syn"):
        ns.CubaLIFParams(tau_syn=0.0)


def test_registry_lookup():
    expected = {"lif", "cuba_lif", "if", "li", "alif", "izhikevich", "adex", "coba_lif"}
    assert expected <= set(ns.available_neuron_models())
    assert ns.get_neuron_model("CUBA_LIF") is ns.CubaLIF
    assert ns.get_neuron_model(ns.AdEx) is ns.AdEx
    with pytest.raises(KeyError, match="unknown neuron model 'hh'; registered: .*adex"):
        ns.get_neuron_model("hh")


def test_validate_rejects_foreign_params_and_checks_tensor_time_constants():
    with pytest.raises(TypeError, match="params must be ALIFParams"):
        ns.ALIF.validate(ns.LIFParams(), 1e-3)
    with pytest.raises(ValueError, match="alif.tau_adapt must be finite and > 0"):
        ns.ALIF.validate(ns.ALIFParams(tau_adapt=torch.tensor([0.1, 0.0])), 1e-3)


@dataclasses.dataclass(frozen=True)
class _MixedParams:
    tau: float = 1.0
    gain: typing.Union[float, torch.Tensor] = 1.0
    weights: torch.Tensor = None
    optional: typing.Optional[float] = None
    steps: int = 0
    mode: str = "a"
    flag: bool = True


def test_continuous_fields_follow_the_annotations():
    """float, Tensor and unions holding either are continuous; int, str and bool are not."""
    assert base.continuous_fields(_MixedParams) == ("tau", "gain", "weights", "optional")
    assert base.continuous_fields(ns.LIFParams) == ("tau_mem", "v_threshold", "v_leak", "v_reset", "r")


def test_tensor_time_constant_driven_negative_does_not_give_nan():
    """An optimizer step can push a trained tau below zero; the step must stay finite."""
    import neurosim as ns
    pop = ns.Population("lif", 3, ns.LIFParams(tau_mem=10e-3), trainable=("tau_mem",))
    with torch.no_grad():
        pop.tau_mem.fill_(-0.05)
    x = torch.ones(2, 3, requires_grad=True)
    s, state = pop.step(x, pop.initial_state(2), 1e-3)
    assert torch.isfinite(state.v).all() and torch.isfinite(s).all()
    (s.sum() + state.v.sum()).backward()
    assert torch.isfinite(x.grad).all()
    # floored at dt/100: a = exp(-100), so v jumps to r I = 1 at once, which is not above threshold 1
    assert torch.allclose(state.v, torch.ones(2, 3), atol=1e-6) and s.sum() == 0
