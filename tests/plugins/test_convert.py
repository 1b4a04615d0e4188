"""ANN-to-SNN conversion (plugins/convert.py).

The references are outside the code under test: the ANN itself (torch's own layers, batch norm
in eval mode), numpy's percentile for the threshold scales, and the IF rate equation
``count_T = T a / lambda`` within one spike for the first layer under constant input.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import neurosim as ns
from neurosim.plugins.convert import (UnsupportedLayersError, accuracy_vs_steps, convert, encode_input,
                                      fold_batch_norm, nearest_rank_percentile)

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits():
    """sklearn's bundled 8x8 digits (no download), scaled to [0, 1], a seeded 1300 / 497 split."""
    d = sklearn_datasets.load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:1300]], y[perm[:1300]], x[perm[1300:]], y[perm[1300:]]


def train(net, x, y, steps, lr=2e-2, seed=0):
    """Full-batch Adam (seeded: dropout draws from torch's generator)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def trained_mlp(digits):
    x_tr, y_tr, x_te, y_te = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    train(net, x_tr, y_tr, steps=150)
    with torch.no_grad():
        ann_acc = (net(x_te).argmax(1) == y_te).float().mean().item()
    return net, ann_acc


STEPS = 100   # the stated number of steps for the 2-point criterion


def test_converted_mlp_within_two_points_of_ann_and_improves_with_steps(digits, trained_mlp):
    x_tr, _, x_te, y_te = digits
    net, ann_acc = trained_mlp
    assert ann_acc > 0.93                                    # the ANN really learnt the task
    sim = convert(net, x_tr, percentile=99.9)
    acc = accuracy_vs_steps(sim, x_te, y_te, steps=[2, 5, 25, STEPS])
    assert acc[STEPS] >= ann_acc - 0.02, (ann_acc, acc)
    assert acc[2] < acc[5] < acc[STEPS], acc                   # more steps, better accuracy
    assert acc[2] < ann_acc - 0.1                               # too few steps really lose accuracy
    # the per-T readout of one long run equals separate shorter runs (causality)
    assert accuracy_vs_steps(sim, x_te, y_te, steps=[5])[5] == acc[5]


def test_poisson_input_and_lif_neurons_also_convert(digits, trained_mlp):
    x_tr, _, x_te, y_te = digits
    net, ann_acc = trained_mlp
    sim = convert(net, x_tr, encoding="poisson")
    assert sim.conversion.input_scale == pytest.approx(float(x_tr.max()))
    g = torch.Generator().manual_seed(0)
    spikes = encode_input(sim, x_te[:4], 50, generator=g)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    acc = accuracy_vs_steps(sim, x_te[:200], y_te[:200], steps=[10, 200], generator=g)
    assert acc[200] > ann_acc - 0.06 and acc[200] > acc[10], acc
    lif = convert(net, x_tr, neuron="lif", tau_mem=0.5)
    assert lif.graph.nodes["lif0"].model.name == "lif"
    acc_lif = accuracy_vs_steps(lif, x_te[:200], y_te[:200], steps=[100])
    assert acc_lif[100] > 0.85, acc_lif


def test_scales_are_numpy_percentiles_and_bias_is_divided_by_the_scale(digits, trained_mlp):
    x_tr, *_ = digits
    net, _ = trained_mlp
    sim = convert(net, x_tr, percentile=99.0)
    with torch.no_grad():
        a1 = torch.relu(net[0](x_tr))
        z2 = torch.relu(net[3](a1))
    lam1 = np.percentile(a1.numpy(), 99.0, method="inverted_cdf")
    lam2 = np.percentile(z2.numpy(), 99.0, method="inverted_cdf")
    assert sim.conversion.scales == pytest.approx({"if0": lam1, "output": lam2}, rel=1e-6)
    fc0, fc1 = sim.graph.nodes["fc0"], sim.graph.nodes["fc1"]
    torch.testing.assert_close(fc0.weight, net[0].weight / lam1)            # lambda_0 = 1 (direct)
    torch.testing.assert_close(fc0.bias, net[0].bias / lam1)
    torch.testing.assert_close(fc1.weight, net[3].weight * lam1 / lam2)
    torch.testing.assert_close(fc1.bias, net[3].bias / lam2)
    values = torch.rand(1001, generator=torch.Generator().manual_seed(1))
    for p in (0.05, 12.5, 50.0, 99.9, 100.0):
        assert float(nearest_rank_percentile(values, p)) == pytest.approx(
            float(np.percentile(values.numpy(), p, method="inverted_cdf")))


def small_cnn(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU()),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(24, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))
    net = net.to(dtype)
    with torch.no_grad():                       # non-trivial statistics and affine parameters
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def test_batch_norm_folding_gives_the_same_ann_outputs_and_leaves_the_model_alone():
    net = small_cnn()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-12, atol=1e-12)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    # and the folding matters: dropping the batch norms gives other outputs
    plain = nn.Sequential(*[m for m in net.modules() if not isinstance(m, (nn.Sequential, nn.BatchNorm1d,
                                                                           nn.BatchNorm2d))])
    with torch.no_grad():
        assert not torch.allclose(plain(x), net(x), atol=1e-3)


def test_first_layer_spike_counts_follow_the_ann_activation():
    """IF with reset by subtraction under constant input c = a / lambda in [0, 1] fires
    floor-ish(T c) spikes; above 1 it fires every step: |count - T min(c, 1)| <= 1."""
    net = small_cnn()
    g = torch.Generator().manual_seed(3)
    calib, x = torch.rand(64, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(5, 1, 8, 8, generator=g,
                                                                                   dtype=torch.float64)
    sim = convert(net, calib, percentile=99.9)
    assert [n for n in sim.graph.nodes] == ["conv0", "if0", "pool0", "conv1", "if1", "pool1", "flat0",
                                            "fc0", "if2", "fc1", "output"]
    steps = 200
    run = sim.run(encode_input(sim, x, steps), monitors=[ns.Monitor("if0", variables=("output",))])
    counts = run.records["if0"]["output"].sum(0)
    with torch.no_grad():
        a = torch.relu(net[1](net[0](x)))
    expected = steps * (a / sim.conversion.scales["if0"]).clamp(max=1.0)
    assert (counts - expected).abs().max() <= 1.0 + 1e-9
    assert counts.sum() > 100 and (counts == 0).any()           # active and silent neurons
    # the whole network approximates the ANN's class scores
    out = run.output.sum(0) / steps * sim.conversion.scales["output"]
    with torch.no_grad():
        logits = torch.relu(net(x))
    assert (out - logits).abs().max() < 0.25 * float(logits.max())


def test_unsupported_layers_are_listed_in_one_error_before_calibration():
    def never():
        raise AssertionError("calibration data was read")
        yield

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.Sigmoid(),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4, 4), nn.BatchNorm1d(4), nn.BatchNorm1d(4), nn.Tanh(),
                          nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    with pytest.raises(UnsupportedLayersError) as info:
        convert(model, never())
    found = {path: kind for path, kind, _ in info.value.problems}
    assert found == {"2": "MaxPool2d", "4": "Sigmoid", "9": "BatchNorm1d", "10": "Tanh", "13": "Linear"}
    message = str(info.value)
    assert "AvgPool2d" in message and "not ReLU" in message and "without a ReLU between" in message
    with pytest.raises(UnsupportedLayersError, match="groups=2"):
        convert(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.ReLU()), never())

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(UnsupportedLayersError, match="container with its own forward"):
        convert(Custom(), never())


def test_bad_arguments_are_refused():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():                      # every layer active on positive inputs
        net[0].weight.uniform_(0.1, 1.0)
        net[2].weight.uniform_(0.1, 1.0)
    x = torch.rand(10, 3)
    for kwargs, match in [({"percentile": 0}, "percentile"), ({"percentile": 101}, "percentile"),
                          ({"encoding": "latency"}, "encoding"), ({"neuron": "alif"}, "neuron"),
                          ({"dt": -1.0}, "dt")]:
        with pytest.raises(ValueError, match=match):
            convert(net, x, **kwargs)
    with pytest.raises(ValueError, match="poisson"):
        convert(net, x - 1.0, encoding="poisson")
    with pytest.raises(ValueError, match="empty"):
        convert(net, [])
    with pytest.raises(ValueError, match="never active"):
        dead = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        with torch.no_grad():
            dead[0].weight.fill_(-1.0)
            dead[0].bias.fill_(-1.0)
        convert(dead, x)
    sim = convert(net, [(x[:5], None), (x[5:], None)])        # batches of (x, y) pairs
    with pytest.raises(ValueError, match="steps"):
        accuracy_vs_steps(sim, x, torch.zeros(10, dtype=torch.long), steps=[0])
    with pytest.raises(ValueError, match="labels"):
        accuracy_vs_steps(sim, x, torch.zeros(9, dtype=torch.long), steps=[5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_conversion_on_cuda():
    net = small_cnn(dtype=torch.float32).cuda()
    x = torch.rand(32, 1, 8, 8, device="cuda")
    sim = convert(net, x)
    out = sim.run(encode_input(sim, x, 20)).output
    assert out.device.type == "cuda" and out.shape == (20, 32, 3)
    cpu = convert(small_cnn(dtype=torch.float32), x.to("cpu"))
    assert sim.conversion.scales == pytest.approx(cpu.conversion.scales, rel=1e-4)
