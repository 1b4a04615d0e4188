"""``leaky_integrate`` writes its final sum into its own decayed term: the same values and
gradients bit for bit as the out-of-place formula written out here, on every branch (plain
numbers, per-neuron and trainable parameters), the arguments never written to, and the usual
broadcasting and type promotion where the terms differ in shape or dtype."""
import pytest
import torch

from neurosim.neurons.base import decay_factor
from neurosim.neurons.lif import leaky_integrate

B, N, DT = 3, 7, 1e-3


def reference(v, current, tau, v_leak, r, integration):
    """``v_leak + (v - v_leak) a + (1 - a) r I``, out of place, with the terms the code leaves out
    where they add 0 or multiply by 1 (the same operations, so the same rounding)."""
    a = decay_factor(tau, DT, integration)
    drive = (1.0 - a) * (current if isinstance(r, float) and r == 1.0 else r * current)
    if isinstance(v_leak, float) and v_leak == 0.0:
        return v * a + drive
    return v_leak + (v - v_leak) * a + drive


CASES = {
    "numbers": lambda dt: dict(tau=8e-3, v_leak=0.0, r=1.0),
    "leak_and_r": lambda dt: dict(tau=8e-3, v_leak=-0.2, r=1.7),
    "per_neuron": lambda dt: dict(tau=torch.linspace(4e-3, 9e-3, N, dtype=dt), v_leak=torch.linspace(-0.3, 0.1, N, dtype=dt),
                                  r=torch.linspace(0.5, 2.0, N, dtype=dt)),
    "trainable_tau": lambda dt: dict(tau=torch.full((N,), 6e-3, dtype=dt, requires_grad=True), v_leak=0.0, r=1.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("integration", ["exact", "euler"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_leaky_integrate_equals_the_out_of_place_formula_bit_for_bit(case, integration, dtype):
    g = torch.Generator().manual_seed(3)
    v = torch.randn(B, N, generator=g, dtype=dtype).requires_grad_(True)
    current = torch.randn(B, N, generator=g, dtype=dtype).requires_grad_(True)
    p = CASES[case](dtype)
    kept = v.detach().clone(), current.detach().clone()
    out = leaky_integrate(v, current, p["tau"], p["v_leak"], p["r"], DT, integration)
    ref = reference(v, current, p["tau"], p["v_leak"], p["r"], integration)
    assert torch.equal(v.detach(), kept[0]) and torch.equal(current.detach(), kept[1]), "an argument was written to"
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert torch.equal(out, ref)
    wrt = [v, current] + [t for t in (p["tau"],) if isinstance(t, torch.Tensor) and t.requires_grad]
    w = torch.linspace(-1.0, 2.0, B * N, dtype=dtype).reshape(B, N)
    grads = torch.autograd.grad((out * w).sum(), wrt, create_graph=True)
    ref_grads = torch.autograd.grad((ref * w).sum(), wrt, create_graph=True)
    for ga, gb in zip(grads, ref_grads):
        assert ga.abs().max() > 0
        assert torch.equal(ga, gb)
    if len(wrt) == 3:    # second derivative through a trained time constant (d2 out / d tau dv)
        (gga,) = torch.autograd.grad(grads[0].sum(), p["tau"])
        (ggb,) = torch.autograd.grad(ref_grads[0].sum(), p["tau"])
        assert gga.abs().max() > 0 and torch.equal(gga, ggb)


@pytest.mark.parametrize("shapes", [((B, N), (1, N)), ((1, N), (B, N)), ((N,), (B, N))])
def test_terms_of_different_shapes_broadcast_as_out_of_place(shapes):
    v = torch.randn(shapes[0], dtype=torch.float64)
    current = torch.randn(shapes[1], dtype=torch.float64)
    kept = v.clone(), current.clone()
    for p in (CASES["numbers"](torch.float64), CASES["leak_and_r"](torch.float64)):
        out = leaky_integrate(v, current, p["tau"], p["v_leak"], p["r"], DT, "exact")
        assert torch.equal(v, kept[0]) and torch.equal(current, kept[1]), "an argument was written to"
        ref = reference(v, current, p["tau"], p["v_leak"], p["r"], "exact")
        assert out.shape == ref.shape == torch.broadcast_shapes(shapes[0], shapes[1])
        assert torch.equal(out, ref)


def test_terms_of_different_dtypes_promote_as_out_of_place():
    v = torch.randn(B, N, dtype=torch.float32)
    current = torch.randn(B, N, dtype=torch.float64)
    for p in (CASES["numbers"](torch.float64), CASES["leak_and_r"](torch.float64)):
        out = leaky_integrate(v, current, p["tau"], p["v_leak"], p["r"], DT, "euler")
        ref = reference(v, current, p["tau"], p["v_leak"], p["r"], "euler")
        assert out.dtype == ref.dtype == torch.float64
        assert torch.equal(out, ref)
