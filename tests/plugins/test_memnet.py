"""End-to-end memory network (plugins/memnet.py): position encoding and a hop against values
computed by hand, the whole network against a word-by-word reference loop, both variants in a
Simulator, and the single-supporting-fact toy task (a bAbI-style generator made here)."""
import math

import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.plugins.block import Block
from neurosim.plugins.memnet import (MemN2N, MemNetConfig, SpikingMemN2N, SpikingMemNetState, memory_hop, pack,
                                     position_encoding)

# vocabulary: 0 pad, persons 1..4, verbs 5 ("went") 6 ("moved"), locations 7..10, 11 "where", 12 "is"
PERSONS, LOCATIONS, WHERE, IS = 4, 4, 11, 12


def babi_single_fact(gen, batch, sentences=4):
    """Single supporting fact (bAbI task 1, reduced): ``sentences`` facts "P went/moved L" about
    distinct persons; the question "where is P" asks about one of them; the answer is L."""
    persons = torch.argsort(torch.rand(batch, PERSONS, generator=gen), dim=1)[:, :sentences] + 1
    places = torch.randint(0, LOCATIONS, (batch, sentences), generator=gen) + 7
    verbs = torch.randint(5, 7, (batch, sentences), generator=gen)
    story = torch.stack([persons, verbs, places], dim=2)                        # [B, S, 3]
    asked = torch.randint(0, sentences, (batch,), generator=gen)
    rows = torch.arange(batch)
    who = persons[rows, asked]
    question = torch.stack([torch.full_like(who, WHERE), torch.full_like(who, IS), who], dim=1)
    return story, question, places[rows, asked]


def tiny(**kw):
    return MemNetConfig(vocab_size=13, sentences=4, sentence_len=3, embed_dim=16, hops=2, **kw)


# ---------------------------------------------------------------------- by hand
def test_position_encoding_by_hand():
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J); J = 2, d = 2: j = 1 -> 0.5, 0.5; j = 2 -> k/2
    assert torch.allclose(position_encoding(2, 2), torch.tensor([[0.5, 0.5], [0.5, 1.0]]))
    l = position_encoding(3, 4)
    assert abs(l[0, 3].item() - ((1 - 1 / 3) - (4 / 4) * (1 - 2 / 3))) < 1e-6


def test_memory_hop_by_hand():
    u = torch.tensor([[1.0, 0.0]])
    m = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    c = torch.tensor([[[2.0, 0.0], [0.0, 4.0]]])
    new_u, p = memory_hop(u, m, c)
    p0 = math.e / (math.e + 1)
    assert torch.allclose(p, torch.tensor([[p0, 1 - p0]]), atol=1e-6)
    assert torch.allclose(new_u, torch.tensor([[1 + 2 * p0, 4 * (1 - p0)]]), atol=1e-6)


@pytest.mark.parametrize("encoding,temporal", [("bow", False), ("position", True)])
def test_matches_a_word_by_word_reference(encoding, temporal):
    torch.manual_seed(0)
    cfg = tiny(encoding=encoding, temporal=temporal)
    net = MemN2N(cfg)
    if temporal:
        with torch.no_grad():
            net.embeddings.temporal.normal_()
    story, question, _ = babi_single_fact(torch.Generator().manual_seed(3), 2)
    story[0, 1, 1] = 0                                                             # a padded word
    E = [t.weight.detach() for t in net.embeddings.tables]
    W = net.embeddings.answer.weight.detach()
    L, d = cfg.sentence_len, cfg.embed_dim

    def l(j, k):                                   # j, k counted from 1, as in the paper
        return 1.0 if encoding == "bow" else (1 - j / L) - (k / d) * (1 - 2 * j / L)

    def sentence(table, words):
        return torch.tensor([sum(l(j + 1, k + 1) * table[int(w), k].item() for j, w in enumerate(words))
                             for k in range(d)])

    for b in range(2):
        u = sentence(E[0], question[b])
        for hop in range(cfg.hops):
            m = torch.stack([sentence(E[hop], s) for s in story[b]])
            c = torch.stack([sentence(E[hop + 1], s) for s in story[b]])
            if temporal:
                m = m + net.embeddings.temporal[hop].detach()
                c = c + net.embeddings.temporal[hop + 1].detach()
            scores = [float(u @ m[i]) for i in range(cfg.sentences)]
            z = sum(math.exp(s) for s in scores)
            u = u + sum(math.exp(s) / z * c[i] for i, s in enumerate(scores))
        got = net(story[b:b + 1], question[b:b + 1])[0].detach()
        assert torch.allclose(got, W @ u, atol=1e-5)


# ---------------------------------------------------------------------- both variants in a graph
def test_conventional_forward_backward_and_analog_block():
    torch.manual_seed(0)
    cfg = tiny()
    net = MemN2N(cfg)
    story, question, answer = babi_single_fact(torch.Generator().manual_seed(0), 5)
    logits = net(story, question)
    assert logits.shape == (5, 13)
    F.cross_entropy(logits, answer).backward()
    assert all(p.grad is not None for p in net.parameters())
    sim = ns.Simulator(ns.Graph.sequential(cfg.packed_size, ("memnet", Block(net, cfg.packed_size, 13, mode="analog"))),
                       dt=1e-3)
    y = sim.run(pack(story, question).float().unsqueeze(0)).output                # T = 1
    assert torch.allclose(y[0], logits, atol=1e-6)


@pytest.mark.parametrize("readout", ["li", "lif"])
def test_spiking_forward_backward_in_a_simulator(readout):
    torch.manual_seed(0)
    cfg = tiny(readout=readout)
    net = SpikingMemN2N(cfg)
    story, question, answer = babi_single_fact(torch.Generator().manual_seed(0), 3)
    block = Block(net, cfg.packed_size, 13, mode="hybrid", emits_spikes=readout == "lif")
    sim = ns.Simulator(ns.Graph.sequential(cfg.packed_size, ("memnet", block)), dt=1e-3)
    x = pack(story, question).float().unsqueeze(0).expand(12, -1, -1)             # [T=12, B, S*L+L]
    mon = ns.Monitor("memnet", variables=("output",))
    result = sim.run(x, monitors=[mon], count_ops=True)
    y = result.output
    assert y.shape == (12, 3, 13)
    assert torch.allclose(y, net.run(story, question, 12), atol=1e-6)          # the Block steps it
    state = result.state.nodes["memnet"]
    assert isinstance(state, SpikingMemNetState)
    assert state.memories.v.shape == (3, cfg.hops + 1, 4, 16)
    if readout == "lif":
        assert set(y.unique().tolist()) <= {0.0, 1.0}
        loss = F.cross_entropy(y.sum(0), answer)
    else:
        loss = F.cross_entropy(y[-1], answer)
    loss.backward()
    grad = net.embeddings.tables[1].weight.grad                                 # through the encoder spikes
    assert grad is not None and grad.abs().sum() > 0
    assert float(result.ops["memnet"]["macs"]) > 0


def test_bad_input_raises_before_work():
    cfg = tiny()
    net, spiking = MemN2N(cfg), SpikingMemN2N(cfg)
    story, question, _ = babi_single_fact(torch.Generator().manual_seed(0), 2)
    with pytest.raises(ValueError, match=r"MemN2N story: word indices must lie in \[0, vocab_size=13\)"):
        net(story + 20, question)
    with pytest.raises(ValueError, match="MemN2N: story must be"):
        net(story[:, :3], question)
    with pytest.raises(ValueError, match="SpikingMemN2N: packed input must be"):
        spiking(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="SpikingMemN2N: word indices must be whole numbers"):
        spiking(pack(story, question).float() + 0.5)
    with pytest.raises(ValueError, match="MemNetConfig.encoding"):
        tiny(encoding="lstm")


def _train(net, logits_fn, steps, lr):
    opt = torch.optim.Adam(net.parameters(), lr)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        story, question, answer = babi_single_fact(gen, 32)
        loss = F.cross_entropy(logits_fn(story, question), answer)
        opt.zero_grad()
        loss.backward()
        opt.step()
    story, question, answer = babi_single_fact(torch.Generator().manual_seed(7), 500)
    with torch.no_grad():
        return (logits_fn(story, question).argmax(-1) == answer).float().mean().item()


def test_conventional_learns_single_supporting_fact():
    """Chance is 1/4 (four locations). 100 Adam steps (batch 32): held-out accuracy > 0.9
    (measured 1.00)."""
    torch.manual_seed(0)
    net = MemN2N(tiny())
    accuracy = _train(net, net, 100, 3e-2)
    assert accuracy > 0.9, accuracy


def test_spiking_learns_single_supporting_fact():
    """Spiking encoders and LI readout, 10 steps per story, 150 Adam steps (batch 32): held-out
    accuracy > 0.5 (chance 0.25; measured 0.75)."""
    torch.manual_seed(0)
    net = SpikingMemN2N(tiny())
    accuracy = _train(net, lambda s, q: net.run(s, q, 10)[-1], 150, 3e-2)
    assert accuracy > 0.5, accuracy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_both_variants():
    cfg = tiny()
    story, question, answer = (t.cuda() for t in babi_single_fact(torch.Generator().manual_seed(0), 4))
    net, spiking = MemN2N(cfg).cuda(), SpikingMemN2N(cfg).cuda()
    F.cross_entropy(net(story, question), answer).backward()
    sim = ns.Simulator(ns.Graph.sequential(cfg.packed_size, ("m", Block(spiking, cfg.packed_size, 13))), dt=1e-3)
    y = sim.run(pack(story, question).float().unsqueeze(0).expand(5, -1, -1)).output
    assert y.device.type == "cuda"
    F.cross_entropy(y[-1], answer).backward()
