"""Conv2d, pooling and Flatten: shapes, exact op counts, and a small convolutional SNN."""
import pytest
import torch
import torch.nn.functional as F

from neurosim import Dense, Graph, Population, Simulator
from neurosim.neurons import available_neuron_models
from neurosim.projections import AvgPool2d, Conv2d, Flatten, MaxPool2d


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (0, 1)), (5, 3, 2)])
def test_conv_shape_and_values(kernel, stride, padding):
    conv = Conv2d((2, 11, 9), 4, kernel, stride=stride, padding=padding, bias=True)
    x = (torch.rand(3, 2, 2, 11, 9) < 0.3).float()             # [T, batch, C, H, W]
    y = conv.forward_sequence(x)
    ref = F.conv2d(x.reshape(6, 2, 11, 9), conv.weight, conv.bias, conv.stride, conv.padding)
    assert y.shape == (3, 2, *conv.out_shape)
    assert tuple(ref.shape[1:]) == conv.out_shape
    torch.testing.assert_close(y.reshape(6, *conv.out_shape), ref)


def test_conv_count_ops_exact():
    conv = Conv2d((3, 8, 7), 5, 3, stride=2, padding=1)
    x = (torch.rand(4, 2, 3, 8, 7) < 0.2).float()
    ops = conv.count_ops(x, None)
    # brute force: each active input's fan-out = the number of non-zero weight-gradient entries
    # it produces in a convolution with an all-ones kernel
    ones = torch.ones(5, 3, 3, 3)
    expected = 0
    for idx in x.reshape(-1, 3, 8, 7).nonzero().tolist():
        probe = torch.zeros(1, 3, 8, 7)
        probe[0, idx[1], idx[2], idx[3]] = 1
        expected += int(F.conv2d(probe, ones, stride=2, padding=1).sum())
    assert int(ops["synops"]) == expected
    h, w = conv.out_shape[1:]
    assert int(ops["macs"]) == 8 * 5 * h * w * 3 * 9


def test_pool_and_flatten_shapes():
    mp = MaxPool2d((4, 9, 9), 2)
    assert mp.out_shape == (4, 4, 4)
    ap = AvgPool2d((4, 9, 9), 3, stride=2, padding=1)
    assert ap.out_shape == (4, 5, 5)
    x = torch.rand(2, 3, 4, 9, 9)
    torch.testing.assert_close(mp.forward_sequence(x).reshape(6, 4, 4, 4), F.max_pool2d(x.reshape(6, 4, 9, 9), 2))
    torch.testing.assert_close(ap.forward_sequence(x).reshape(6, 4, 5, 5),
                               F.avg_pool2d(x.reshape(6, 4, 9, 9), 3, 2, 1))
    fl = Flatten((4, 4, 4))
    assert fl.out_shape == (64,)
    z = torch.rand(2, 3, 4, 4, 4)
    torch.testing.assert_close(fl.forward_sequence(z), z.reshape(2, 3, 64))
    torch.testing.assert_close(fl.step(z[0], None, 1e-3)[0], z[0].reshape(3, 64))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="channels, height, width"):
        Conv2d((3, 8), 4, 3)
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d((1, 4, 4), 2, 5)
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2d((1, 4, 4), 2, 0)
    with pytest.raises(ValueError, match="stride"):
        Conv2d((1, 4, 4), 2, 3, stride=0)
    with pytest.raises(ValueError, match="out_channels"):
        Conv2d((1, 4, 4), 0, 3)
    with pytest.raises(ValueError, match="weight must have shape"):
        Conv2d((1, 4, 4), 2, 3, weight=torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match="padding"):
        MaxPool2d((1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="does not fit"):
        AvgPool2d((1, 2, 2), 3)


def test_conv_snn_in_the_simulator_both_schedules():
    readout = "li" if "li" in available_neuron_models() else "lif"
    torch.manual_seed(0)
    conv = Conv2d((2, 12, 12), 4, 3, padding=1)
    pool = MaxPool2d(conv.out_shape, 2)
    flat = Flatten(pool.out_shape)
    g = Graph.sequential((2, 12, 12), ("conv", conv), ("lif1", Population("lif", conv.out_shape)),
                         ("pool", pool), ("flat", flat), ("fc", Dense(flat.out_shape[0], 5)),
                         ("out", Population(readout, 5)))
    x = (torch.rand(10, 3, 2, 12, 12) < 0.3).float()
    with torch.no_grad():
        r_step = Simulator(g, dt=1e-3, schedule="step").run(x, count_ops=True)
        r_layer = Simulator(g, dt=1e-3, schedule="layer").run(x, count_ops=True)
    assert r_step.output.shape == (10, 3, 5)
    torch.testing.assert_close(r_step.output, r_layer.output)
    assert r_step.ops["conv"]["synops"] == r_layer.ops["conv"]["synops"] > 0


def test_a_float64_weight_stays_float64_like_dense_and_sparse():
    w = torch.randn(2, 1, 3, 3, dtype=torch.float64) / 3
    conv = Conv2d((1, 5, 5), 2, 3, weight=w, bias=True)
    assert conv.weight.dtype == conv.bias.dtype == torch.float64 and torch.equal(conv.weight, w)
    x = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    y, _ = conv.step(x, None, 1e-3)
    assert torch.equal(y, torch.nn.functional.conv2d(x, w, conv.bias))
