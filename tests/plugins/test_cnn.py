"""CNN family (plugins/cnn.py): conventional reference and spiking variant.

The spiking graph is checked against a hand-unrolled loop of torch's own conv / pool / linear
functions and the LIF / LI equations written in the module docstring.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.plugins import Block
from neurosim.plugins.cnn import CNNConfig, ConventionalCNN, copy_cnn_weights, spiking_cnn
from neurosim.plugins.convert import UnsupportedLayersError, convert
from neurosim.training import membrane_cross_entropy

DT = 1e-3


def bars(n, seed=0):
    """Seeded 3-class task on 8x8 images: a horizontal bar, a vertical bar or the diagonal."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.2 * torch.rand(n, 1, 8, 8, generator=g)
    pos = torch.randint(1, 7, (n,), generator=g)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] += 0.8
        elif y[i] == 1:
            x[i, 0, :, pos[i]] += 0.8
        else:
            x[i, 0].diagonal().add_(0.8)
    return x, y


CFG = CNNConfig(in_shape=(1, 8, 8), channels=(4, 8), num_classes=3)


def test_config_checks_its_sizes():
    assert CFG.feature_shape(0) == (4, 4, 4) and CFG.features == 8 * 2 * 2
    for kwargs, match in [({"in_shape": (8, 8)}, "in_shape"), ({"kernel_size": 4}, "odd"),
                          ({"channels": (4, 4, 4, 4)}, "below 1 pixel"), ({"pooling": "sum"}, "pooling"),
                          ({"readout": "if"}, "readout"), ({"tau_mem": 0.0}, "tau_mem"),
                          ({"channels": ()}, "channels"), ({"num_classes": 0}, "num_classes")]:
        with pytest.raises(ValueError, match=match):
            CNNConfig(**kwargs)


def test_conventional_forward_backward_and_in_a_graph():
    torch.manual_seed(0)
    net = ConventionalCNN(CFG)
    x, _ = bars(5)
    y = net(x)
    assert y.shape == (5, 3)
    y.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    g = ns.Graph.sequential(CFG.in_shape, ("cnn", Block(net, CFG.in_shape, 3, mode="analog")))
    out = ns.Simulator(g, dt=DT).run(x.unsqueeze(0)).output
    torch.testing.assert_close(out[0], net(x))


def reference_run(net, x_seq, cfg, dt):
    """The spiking CNN unrolled by hand from the module docstring's equations."""
    a = math.exp(-dt / cfg.tau_mem)
    a_out = math.exp(-dt / cfg.tau_readout)
    v = [None] * len(cfg.channels)
    v_out, outs = None, []
    for x in x_seq:
        h = x
        for i in range(len(cfg.channels)):
            conv = getattr(net, f"conv{i}")
            current = F.conv2d(h, conv.weight, conv.bias, padding=cfg.kernel_size // 2)
            v[i] = current if v[i] is None else a * v[i] + current       # (1 - a) r = 1, v starts at 0
            s = (v[i] > cfg.v_threshold).to(x.dtype)
            v[i] = v[i] - s * cfg.v_threshold
            h = F.avg_pool2d(s, cfg.pool)
        current = F.linear(h.flatten(1), net.fc.weight, net.fc.bias)
        v_out = current if v_out is None else a_out * v_out + current
        outs.append(v_out)
    return torch.stack(outs)


def test_spiking_graph_matches_a_hand_unrolled_reference_and_trains_through_simulator():
    torch.manual_seed(0)
    net = ConventionalCNN(CFG).double()
    graph = copy_cnn_weights(net, spiking_cnn(CFG, dt=DT).double())
    with torch.no_grad():                 # larger weights: many spikes in the comparison
        for m in (net.conv0, net.conv1):
            m.weight.mul_(3.0)
    copy_cnn_weights(net, graph)
    sim = ns.Simulator(graph, dt=DT)
    x, y = bars(6)
    x_seq = ns.direct_encode(x.double(), 12)
    run = sim.run(x_seq, monitors=[ns.Monitor("lif0", variables=("output",)),
                                   ns.Monitor("lif1", variables=("output",))])
    for name in ("lif0", "lif1"):
        rate = run.records[name]["output"].mean()
        assert 0.02 < rate < 0.9, (name, rate)
    with torch.no_grad():
        torch.testing.assert_close(run.output, reference_run(net, x_seq, CFG, DT), rtol=1e-10, atol=1e-10)
    # backward through the surrogate reaches every parameter
    loss = membrane_cross_entropy(sim.run(x_seq).output, y)
    loss.backward()
    for name, p in sim.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_adam_reduces_the_loss_of_both_variants():
    x, y = bars(48, seed=1)
    torch.manual_seed(0)
    net = ConventionalCNN(CFG)
    opt = torch.optim.Adam(net.parameters(), 3e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses

    torch.manual_seed(0)
    sim = ns.Simulator(spiking_cnn(CFG, dt=DT), dt=DT)
    opt = torch.optim.Adam(sim.parameters(), 2e-2)
    x_seq, losses = ns.direct_encode(x, 8), []
    for _ in range(12):
        loss = membrane_cross_entropy(sim.run(x_seq).output, y, mode="max")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_variants_lif_readout_max_pooling_and_conversion_route():
    cfg = CNNConfig(in_shape=(2, 6, 6), channels=(3,), pool=2, pooling="max", readout="lif", num_classes=4)
    graph = spiking_cnn(cfg)
    assert isinstance(graph.nodes["pool0"], ns.MaxPool2d) and graph.nodes["out"].model.name == "lif"
    x = torch.rand(7, 3, 2, 6, 6, generator=torch.Generator().manual_seed(0)) * 5
    out = ns.Simulator(graph, dt=DT).run(x).output
    assert out.shape == (7, 3, 4) and set(out.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(UnsupportedLayersError, match="pool0"):
        convert(ConventionalCNN(cfg), x[0])
    # average pooling: the conventional CNN converts directly
    x, _ = bars(16)
    torch.manual_seed(0)        # a random classifier may never be positive on 16 samples (refused)
    sim = convert(ConventionalCNN(CFG), x)
    kinds = [type(n).__name__ for n in sim.graph.nodes.values()]
    assert kinds == ["Conv2d", "Population", "AvgPool2d", "Conv2d", "Population", "AvgPool2d", "Flatten",
                     "Dense", "Population"]
    with pytest.raises(TypeError, match="CNNConfig"):
        spiking_cnn({"channels": (4,)})
    with pytest.raises(ValueError, match="conv0"):
        copy_cnn_weights(ConventionalCNN(CNNConfig(channels=(5, 8), num_classes=3)), spiking_cnn(CFG))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_spiking_cnn_on_cuda():
    torch.manual_seed(0)
    net = ConventionalCNN(CFG)
    graph = copy_cnn_weights(net, spiking_cnn(CFG))
    x, y = bars(4)
    x_seq = ns.direct_encode(x, 6)
    cpu = ns.Simulator(graph, dt=DT).run(x_seq).output
    sim = ns.Simulator(graph.to("cuda"), dt=DT)
    out = sim.run(x_seq.to("cuda")).output
    membrane_cross_entropy(out, y.to("cuda")).backward()
    assert out.device.type == "cuda" and graph.nodes["conv0"].weight.grad is not None
    torch.testing.assert_close(out.to("cpu"), cpu, rtol=1e-4, atol=1e-4)
