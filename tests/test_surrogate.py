"""Every registered surrogate: Heaviside forward, backward = autograd of its smooth primitive."""
import math
from dataclasses import dataclass

import pytest
import torch

from neurosim import Population
from neurosim import surrogate as sg_module
from neurosim.surrogate import (FastSigmoid, SpikeFunction, Surrogate, available_surrogates, get_surrogate,
                                register_surrogate, spike)

# A grid over [-3, 3] in float64 that avoids x = 0 and the triangle's kinks at +-1/k.
GRID = torch.linspace(-3.0, 3.0, 600, dtype=torch.float64)
SCALES = (0.5, 1.0, 3.0, 10.0)


def mismatches(names, grid=GRID, scales=SCALES, atol=1e-5):
    """[(name, scale, max |error|)] where SpikeFunction's backward differs from d primitive / dx."""
    bad = []
    for name in names:
        for scale in scales:
            sg = get_surrogate(name, scale)
            x = grid.clone().requires_grad_(True)
            (backward,) = torch.autograd.grad(SpikeFunction.apply(x, sg).sum(), x)
            x2 = grid.clone().requires_grad_(True)
            (reference,) = torch.autograd.grad(sg.primitive(x2).sum(), x2)
            err = float((backward - reference).abs().max())
            if not (err <= atol + 1e-5 * float(reference.abs().max())):
                bad.append((name, scale, err))
    return bad


def test_backward_equals_autograd_of_primitive_for_every_registered_surrogate():
    names = available_surrogates()
    assert {"fast_sigmoid", "arctan", "sigmoid", "triangle", "slayer"} <= set(names)
    assert mismatches(names) == []


def test_backward_at_zero():
    """x = 0 is where a primitive written with sign() or abs() has the wrong autograd derivative."""
    assert mismatches(available_surrogates(), grid=torch.zeros(1, dtype=torch.float64)) == []


def test_forward_is_exactly_heaviside():
    x = torch.tensor([-1e30, -2.0, -1e-7, 0.0, 1e-7, 2.0, 1e30, float("inf"), -float("inf")])
    expected = (x > 0).float()
    assert expected[3] == 0                                   # H(0) = 0: no spike exactly at threshold
    for name in available_surrogates():
        assert torch.equal(spike(x, name), expected), name                  # no-grad path
        xg = x.clone().requires_grad_(True)
        out = spike(xg, name)
        assert out.grad_fn is not None and torch.equal(out.detach(), expected), name
        assert out.dtype == x.dtype
        out64 = SpikeFunction.apply(x.double().requires_grad_(True), get_surrogate(name))
        assert out64.dtype == torch.float64 and torch.equal(out64.detach(), expected.double())


def _half_max_width_and_peak(name, scale):
    x = GRID.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(spike(x, name, scale=scale).sum(), x)
    width = float((g >= 0.5 * g.max()).sum()) * float(GRID[1] - GRID[0])
    return width, float(g.max())


def test_scale_sets_the_gradient_width():
    for name in available_surrogates():
        wide, low = _half_max_width_and_peak(name, 1.0)
        narrow, high = _half_max_width_and_peak(name, 4.0)
        assert narrow < 0.5 * wide, (name, wide, narrow)          # width ~ 1/k
        assert high > 2.0 * low, (name, low, high)                # peak ~ k


@dataclass(frozen=True)
class GaussCDF(Surrogate):
    """p(x) = (1 + erf(k x / sqrt 2)) / 2;  g(x) = k exp(-(k x)^2 / 2) / sqrt(2 pi)."""

    scale: float = 4.0

    def primitive(self, x):
        return 0.5 * (1.0 + torch.erf(self.scale * x / math.sqrt(2.0)))

    def grad(self, x):
        return self.scale * torch.exp(-0.5 * (self.scale * x) ** 2) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class WrongGrad(GaussCDF):
    def grad(self, x):
        return 2.0 * super().grad(x)


@pytest.fixture
def private_registry(monkeypatch):
    """Registrations made in a test disappear afterwards."""
    monkeypatch.setattr(sg_module, "_REGISTRY", dict(sg_module._REGISTRY))


def test_user_registered_surrogate_is_checked_too(private_registry):
    register_surrogate("test_gauss_cdf", GaussCDF)
    register_surrogate("test_wrong_grad", WrongGrad)
    names = available_surrogates()
    assert "test_gauss_cdf" in names and "test_wrong_grad" in names
    bad = {name for name, _, _ in mismatches(names)}
    assert bad == {"test_wrong_grad"}                          # the check catches a wrong backward
    pop = Population("lif", 3, surrogate="test_gauss_cdf", surrogate_scale=2.0)
    assert isinstance(pop.surrogate, GaussCDF) and pop.surrogate.scale == 2.0


def test_registering_a_non_surrogate_raises(private_registry):
    for thing in (object, FastSigmoid(), lambda x: x, "fast_sigmoid"):
        with pytest.raises(TypeError, match="not a subclass of Surrogate"):
            register_surrogate("bad", thing)
    assert "bad" not in available_surrogates()


def test_unknown_name_lists_the_registered_ones():
    for call in (lambda: get_surrogate("no_such_surrogate"),
                 lambda: spike(torch.zeros(2, requires_grad=True), "no_such_surrogate"),
                 lambda: Population("lif", 2, surrogate="no_such_surrogate")):
        with pytest.raises(KeyError, match="no_such_surrogate") as info:
            call()
        for name in available_surrogates():
            assert name in str(info.value)


def test_non_positive_scale_raises():
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        for name in available_surrogates():
            with pytest.raises(ValueError, match="scale"):
                get_surrogate(name, scale)
        with pytest.raises(ValueError, match="scale"):
            spike(torch.zeros(2, requires_grad=True), "arctan", scale=scale)
        with pytest.raises(ValueError, match="scale"):
            Population("lif", 2, surrogate="triangle", surrogate_scale=scale)


@pytest.mark.parametrize("name", available_surrogates())
def test_second_derivative_equals_the_primitives_for_every_registered_surrogate(name):
    """A backward with create_graph (MAML's second order) differentiates the surrogate again:
    d/dx of the spike's backward is g'(x), the primitive's second derivative."""
    sg = get_surrogate(name)
    x = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(x, sg).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(g.sum(), x)
    p = x.detach().clone().requires_grad_(True)
    (gp,) = torch.autograd.grad(sg.primitive(p).sum(), p, create_graph=True)
    (reference,) = torch.autograd.grad(gp.sum(), p)
    torch.testing.assert_close(second, reference, rtol=1e-9, atol=1e-12)
