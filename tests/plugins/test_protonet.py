"""Prototypical networks (plugins/protonet.py): prototypes and logits against explicit loops,
5-way 1-shot episodes from a synthetic clustered dataset learnt above chance by a conventional MLP
encoder and by a spiking encoder (spike counts; membrane), the encoders inside a Simulator, and
bad input refused before any work."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import neurosim as ns
from neurosim.plugins import Block
from neurosim.plugins.protonet import (ProtoNet, ProtoNetConfig, conv_encoder, mlp_encoder, proto_logits,
                                       prototypes, spiking_encoder)


def clustered(seed=0, classes=40, per=20, informative=16, distractors=0, within=0.5, noise=2.0):
    """Class centroids ~ N(0, I) in ``informative`` dims, samples at ``within`` around them, plus
    ``distractors`` dims of pure noise (std ``noise``) that an encoder must learn to ignore."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, informative, generator=g)
    x = centres.repeat_interleave(per, 0) + within * torch.randn(classes * per, informative, generator=g)
    x = torch.cat([x, noise * torch.randn(classes * per, distractors, generator=g)], 1)
    return x, torch.arange(classes).repeat_interleave(per)


def episode(x, y, classes, g, n_way=5, k_shot=1, n_query=5):
    chosen = classes[torch.randperm(len(classes), generator=g)[:n_way]]
    xs, ys, xq, yq = [], [], [], []
    for label, c in enumerate(chosen):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)[:k_shot + n_query]]
        xs.append(x[idx[:k_shot]]), xq.append(x[idx[k_shot:]])
        ys += [label] * k_shot
        yq += [label] * n_query
    return torch.cat(xs), torch.tensor(ys), torch.cat(xq), torch.tensor(yq)


def evaluate(net, x, y, classes, n=30):
    g = torch.Generator().manual_seed(123)
    loss = acc = 0.0
    with torch.no_grad():
        for _ in range(n):
            l, a = net.loss(*episode(x, y, classes, g))
            loss, acc = loss + float(l) / n, acc + float(a) / n
    return loss, acc


def train(net, x, y, classes, episodes=40, lr=1e-2):
    opt = torch.optim.Adam(net.parameters(), lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(episodes):
        loss, _ = net.loss(*episode(x, y, classes, g))
        opt.zero_grad()
        loss.backward()
        opt.step()


TRAIN, TEST = torch.arange(30), torch.arange(30, 40)        # held-out classes for evaluation


def test_prototypes_and_logits_against_loops():
    g = torch.Generator().manual_seed(0)
    emb, labels = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.tensor([2, 0, 1, 2, 0, 2, 1])
    protos = prototypes(emb, labels, 3)
    for k in range(3):
        members = [emb[i] for i in range(7) if labels[i] == k]
        torch.testing.assert_close(protos[k], sum(members) / len(members))
    q = torch.randn(4, 3, generator=g, dtype=torch.float64)
    logits = proto_logits(q, protos)
    for m in range(4):
        for k in range(3):
            assert abs(float(logits[m, k]) + sum((float(q[m, j]) - float(protos[k, j])) ** 2 for j in range(3))) < 1e-12


def test_mlp_encoder_learns_5way_1shot_above_chance():
    torch.manual_seed(0)
    x, y = clustered(informative=4, distractors=12)      # a random encoder is near chance here
    net = ProtoNet(mlp_encoder(ProtoNetConfig(in_features=16, hidden=32, embed_dim=16)), n_way=5)
    loss0, acc0 = evaluate(net, x, y, TEST)
    train(net, x, y, TRAIN, episodes=60)
    loss1, acc1 = evaluate(net, x, y, TEST)
    assert acc0 < 0.3 and acc1 > 0.4, (acc0, acc1)       # chance is 0.2 (measured: 0.21 -> 0.52)
    assert loss1 < loss0 - 0.5, (loss0, loss1)


def test_spiking_count_encoder_learns_5way_1shot_above_chance():
    config = ProtoNetConfig(in_features=16, hidden=32, embed_dim=16, steps=16, readout="count")
    x, y = clustered()
    net = ProtoNet(spiking_encoder(config), n_way=5, scale=1.0 / config.steps)
    loss0, acc0 = evaluate(net, x, y, TEST)
    train(net, x, y, TRAIN, episodes=40)
    loss1, acc1 = evaluate(net, x, y, TEST)
    assert acc1 > 0.5 and acc1 > acc0 + 0.1, (acc0, acc1)
    assert loss1 < loss0 - 0.2, (loss0, loss1)


def test_spiking_membrane_encoder_trains():
    config = ProtoNetConfig(in_features=16, hidden=32, embed_dim=16, readout="membrane")
    x, y = clustered(within=0.8)
    net = ProtoNet(spiking_encoder(config), n_way=5)
    loss0, acc0 = evaluate(net, x, y, TEST, n=20)
    train(net, x, y, TRAIN, episodes=30)
    loss1, acc1 = evaluate(net, x, y, TEST, n=20)
    assert acc1 > 0.5 and loss1 < loss0, (acc0, acc1, loss0, loss1)


def test_encoders_inside_a_simulator_forward_and_backward():
    config = ProtoNetConfig(in_features=16, hidden=32, embed_dim=16, steps=12)
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    mlp = mlp_encoder(config)
    sim = ns.Simulator(ns.Graph.sequential(16, ("enc", Block(mlp, 16, 16, mode="analog"))))
    assert torch.equal(sim.run(x.unsqueeze(0)).output[0], mlp(x))
    spiking = spiking_encoder(config)
    emb = spiking(x)
    steps = x.unsqueeze(0).expand(12, 6, 16)
    assert torch.equal(emb, spiking.sim.run(steps).output.sum(0))    # the same Simulator.run
    assert emb.shape == (6, 16) and float(emb.detach().sum()) > 0                 # counts, and the encoder fires
    net = ProtoNet(spiking, n_way=3)
    logits = net(x[:3], torch.tensor([0, 1, 2]), x[3:])
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    conv = conv_encoder(ProtoNetConfig(in_channels=2, hidden=4, embed_dim=3, conv_blocks=2))
    out = ProtoNet(conv, n_way=2)(torch.randn(2, 2, 8, 8), torch.tensor([0, 1]), torch.randn(3, 2, 8, 8))
    out.sum().backward()
    assert out.shape == (3, 2) and conv[0].weight.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_spiking_protonet_on_cuda_matches_cpu():
    config = ProtoNetConfig(in_features=16, hidden=8, embed_dim=4, steps=5, readout="membrane")
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    net = ProtoNet(spiking_encoder(config), n_way=3)
    cpu = net(x[:3], torch.tensor([0, 1, 2]), x[3:])
    gpu = net.to("cuda")(x[:3].cuda(), torch.tensor([0, 1, 2]).cuda(), x[3:].cuda())
    torch.testing.assert_close(gpu.cpu(), cpu.detach(), rtol=1e-4, atol=1e-4)


def test_bad_input_is_refused():
    emb = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"classes \[2\] have no support example"):
        prototypes(emb, torch.tensor([0, 1, 0, 1]), 3)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        prototypes(emb, torch.tensor([0, 1, 2, 1]), 2)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        prototypes(emb, torch.tensor([0.0, 1.0, 0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="must share D"):
        proto_logits(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="n_way must be an int >= 2"):
        ProtoNet(nn.Identity(), n_way=1)
    with pytest.raises(ValueError, match="ProtoNetConfig.readout"):
        ProtoNetConfig(readout="rate")
    with pytest.raises(ValueError, match="ProtoNetConfig.hidden"):
        ProtoNetConfig(hidden=0)
    calls = []
    encoder = nn.Sequential(nn.Linear(3, 2))
    encoder.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match="support_y must be"):
        ProtoNet(encoder, 2)(torch.randn(4, 3), torch.tensor([0, 1]), torch.randn(2, 3))
    with pytest.raises(ValueError, match="same per-sample shape"):
        ProtoNet(encoder, 2)(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 4))
    assert not calls
