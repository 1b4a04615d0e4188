"""Conv1d against torch.nn.functional.conv1d; exact synaptic-operation counts; shapes checked."""
import pytest
import torch
import torch.nn.functional as F

import neurosim as ns


@pytest.mark.parametrize("stride, padding, dilation, groups, bias", [
    (1, 0, 1, 1, False), (2, 3, 1, 2, True), (3, 2, 2, 4, True), (1, 4, 3, 1, False)])
def test_matches_torch_conv1d(stride, padding, dilation, groups, bias):
    torch.manual_seed(0)
    conv = ns.Conv1d((4, 23), 8, 3, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    if bias:
        with torch.no_grad():
            conv.bias.uniform_(-1, 1)
    x = (torch.rand(6, 3, 4, 23) < 0.3).float()
    want = F.conv1d(x.reshape(18, 4, 23), conv.weight, conv.bias, stride, padding, dilation, groups)
    y = conv.forward_sequence(x)
    assert y.shape == (6, 3, *conv.out_shape) and torch.allclose(y.reshape(18, *conv.out_shape), want, atol=1e-6)
    assert conv.out_shape == tuple(want.shape[1:])


def test_count_ops_is_the_number_of_synaptic_events():
    """Brute force: a spike at (c, l) reaches every weight-connected output (o, j) once."""
    torch.manual_seed(1)
    conv = ns.Conv1d((4, 15), 6, 4, stride=2, padding=2, dilation=2, groups=2)
    x = (torch.rand(3, 4, 15) < 0.4).float()
    events = 0
    for b, c, l in x.nonzero().tolist():
        probe = torch.zeros(1, 4, 15)
        probe[0, c, l] = 1.0
        reach = F.conv1d(probe, torch.ones_like(conv.weight), None, 2, 2, 2, 2)
        events += int((reach != 0).sum())
    ops = conv.count_ops(x, conv.step(x, None, 0.0)[0])
    assert int(ops["synops"]) == events
    assert int(ops["macs"]) == 3 * 6 * conv.out_shape[1] * 2 * 4


def test_weight_dtype_is_kept_and_in_a_simulator():
    w = torch.randn(2, 3, 5, dtype=torch.float64)
    conv = ns.Conv1d((3, 10), 2, 5, padding=2, weight=w)
    assert conv.weight.dtype == torch.float64 and torch.equal(conv.weight, w)
    g = ns.Graph.sequential((3, 10), ("conv", conv), ("lif", ns.Population("lif", (2, 10)))).double()
    x = (torch.rand(8, 2, 3, 10) < 0.5).double()
    out = ns.Simulator(g, dt=1e-3).run(x).output
    assert out.shape == (8, 2, 2, 10) and out.dtype == torch.float64


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="does not fit"):
        ns.Conv1d((2, 4), 3, 7)
    with pytest.raises(ValueError, match="groups"):
        ns.Conv1d((3, 10), 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"\(channels, length\)"):
        ns.Conv1d((3, 10, 10), 4, 3)
    with pytest.raises(ValueError, match="weight must have shape"):
        ns.Conv1d((3, 10), 4, 3, weight=torch.ones(4, 3, 2))
