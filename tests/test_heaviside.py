"""``heaviside(x, threshold)`` (the forward of every spike) gives exactly the spikes of
``(x - threshold > 0).to(x.dtype)``, the form it replaced: on every float16 and bfloat16 value, on
float32/float64 values next to the threshold, on signed zeros, infinities and NaN; in ``x``'s
dtype and shape, with and without autograd."""
import math

import pytest
import torch

from neurosim.surrogate import get_surrogate, heaviside, spike, spike_above

THRESHOLDS = [0.0, 1.0, 0.7, -0.3, 1e-7, 2 ** -24 - 2 ** -47, 2 ** -24 + 2 ** -40, 1 - 2 ** -30, 3e-8,
              1e-40, 65504.0, 65519.0, 7e4, -2.5e-3]


def distance_form(x, threshold):
    return ((x - threshold) > 0).to(x.dtype)


def special(dtype):
    return torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan], dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_half_precision_value_spikes_as_the_distance_form(dtype):
    x = torch.arange(2 ** 16, dtype=torch.int32).to(torch.int16).view(dtype)   # every bit pattern
    for th in THRESHOLDS:
        s = heaviside(x, th)
        assert s.dtype == dtype and s.shape == x.shape
        assert torch.equal(s, distance_form(x, th)), th


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_next_to_the_threshold_spike_as_the_distance_form(dtype):
    for th in THRESHOLDS + [5e-324, 1.5e-45]:
        near = [torch.tensor(th, dtype=dtype)]
        for direction in (math.inf, -math.inf):
            u = near[0]
            for _ in range(4):
                u = torch.nextafter(u, torch.tensor(direction, dtype=dtype))
                near.append(u)
        x = torch.cat([torch.stack(near), special(dtype), torch.randn(1000, dtype=dtype) * (abs(th) + 1e-3) + th])
        s = heaviside(x, th)
        assert s.dtype == dtype
        assert torch.equal(s, distance_form(x, th)), th
        assert s[0] == 0 and s[1:5].tolist() == [1.0] * 4 and s[5:9].tolist() == [0.0] * 4, th


def test_the_default_threshold_is_zero_and_nan_never_spikes():
    x = torch.tensor([-1.0, -0.0, 0.0, 1e-45, 2.0, math.nan, math.inf])
    assert heaviside(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("grad", [False, True])
def test_spike_functions_forward_through_heaviside(grad):
    """``spike`` and ``spike_above``, with autograd (SpikeFunction) and without, spike as the
    distance form, in x's dtype."""
    sg = get_surrogate("fast_sigmoid")
    x = torch.cat([torch.randn(200, dtype=torch.float64), special(torch.float64)]).requires_grad_(grad)
    for th in (0.0, 0.4, -1e-3):
        want = distance_form(x.detach(), th)
        for s in (spike(x - th, sg), spike_above(x, th, sg)):
            assert s.dtype == torch.float64 and s.requires_grad == grad
            assert torch.equal(s.detach(), want)


@pytest.mark.parametrize("threshold", [torch.tensor(0.5), True, "0.5", None])
def test_a_threshold_that_is_not_a_plain_number_is_refused(threshold):
    with pytest.raises(TypeError, match="heaviside: threshold must be a plain number"):
        heaviside(torch.zeros(3), threshold)
