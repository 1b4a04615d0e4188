"""Transformer family (plugins/transformer.py): conventional encoder and Spikformer-style encoder."""
import math

import pytest
import torch

import neurosim as ns
from neurosim.plugins.block import Block
from neurosim.plugins.transformer import (SelfAttention, SpikingSelfAttention, SpikingTransformer, Transformer,
                                          TransformerConfig, spike_driven_attention, transformer_block)

L, F_IN, C = 6, 4, 3


def _cfg(**kw):
    base = dict(seq_len=L, num_classes=C, in_features=F_IN, d_model=16, num_heads=2, num_layers=2, mlp_hidden=32)
    base.update(kw)
    return TransformerConfig(**base)


def _task(n=64, seed=0):
    """Class = the largest of the first three features averaged over the tokens."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, L, F_IN, generator=g)
    return x, x[..., :C].mean(1).argmax(1)


def _run(sim, x, steps=4, state=None):
    return sim.run(x.unsqueeze(0).expand(steps, *x.shape), state=state)


# ---------------------------------------------------------------------- config and input checks
@pytest.mark.parametrize("kw, key", [(dict(d_model=15), "num_heads"), (dict(norm="group"), "norm"),
                                     (dict(vocab_size=10), "exactly one"), (dict(attn_scale=0.0), "attn_scale"),
                                     (dict(reset="bogus"), "reset"), (dict(num_layers=True), "num_layers")])
def test_config_rejects_bad_values(kw, key):
    with pytest.raises(ValueError, match=key) as info:
        _cfg(**kw)
    assert "plugins/transformer.py" in str(info.value)


def test_bad_input_raises_naming_the_shapes():
    model = SpikingTransformer(_cfg())
    with pytest.raises(ValueError, match=r"plugins/transformer.py: SpikingTransformer: input must be \[batch, \*\[6, 4\]\]"):
        model(torch.zeros(2, L, F_IN + 1))
    tokens = Transformer(_cfg(in_features=None, vocab_size=5))
    with pytest.raises(ValueError, match=r"token ids must be integers in \[0, vocab_size\) = \[0, 5\)"):
        tokens(torch.full((2, L), 5.0))
    with pytest.raises(ValueError, match="token ids"):
        tokens(torch.full((2, L), 1.5))
    with pytest.raises(ValueError, match=r"Block\(SpikingTransformer\).*\[2, 6, 4\].*\(2, 3\).*\[2, 2\]"):
        Block(model, (L, F_IN), 2, mode="hybrid")      # out_shape 2 but the model gives 3 classes


# ---------------------------------------------------------------------- attention equations
def test_conventional_attention_equals_softmax_reference():
    torch.manual_seed(0)
    d, h = 12, 3
    attn = SelfAttention(d, h).double()
    x = torch.randn(2, 5, d, dtype=torch.float64)
    wq, wk, wv = attn.qkv.weight.split(d)
    bq, bk, bv = attn.qkv.bias.split(d)
    dh = d // h
    heads = []
    for i in range(h):                                     # per head, written out
        sl = slice(i * dh, (i + 1) * dh)
        q = x @ wq[sl].T + bq[sl]
        k = x @ wk[sl].T + bk[sl]
        v = x @ wv[sl].T + bv[sl]
        scores = q @ k.transpose(1, 2) / math.sqrt(dh)
        weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
        heads.append(weights @ v)
    expected = torch.cat(heads, -1) @ attn.proj.weight.T + attn.proj.bias
    torch.testing.assert_close(attn(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("length, dh", [(5, 3), (3, 5)])    # both association orders
def test_spike_driven_attention_equals_its_equation(length, dh):
    g = torch.Generator().manual_seed(1)
    q, k, v = ((torch.rand(2, 2, length, dh, generator=g) < 0.5).float() for _ in range(3))
    s = 0.125
    expected = torch.zeros_like(q)
    for b in range(2):
        for hh in range(2):
            for i in range(length):
                for n in range(dh):
                    expected[b, hh, i, n] = s * sum(q[b, hh, i, m] * k[b, hh, j, m] * v[b, hh, j, n]
                                                    for j in range(length) for m in range(dh))
    assert torch.equal(spike_driven_attention(q, k, v, s), expected)   # integers * 2^-3: exact
    assert expected.sum() > 0


def test_spiking_self_attention_step_follows_the_equation():
    """One step from rest: SN_attn receives Q K^T V * s of the spiking Q, K, V and spikes where
    (1 - a) I > attn_threshold (a = 1/2 for tau_mem = 2 dt, Euler)."""
    torch.manual_seed(2)
    cfg = _cfg(norm="none")
    ssa = SpikingSelfAttention(cfg)
    with torch.no_grad():
        for branch in (ssa.q, ssa.k, ssa.v):
            branch.linear.weight.normal_(0.0, 1.0)          # Q, K, V spike often in the first step
    s = (torch.rand(3, L, cfg.d_model) < 0.5).float()
    state = ssa.initial_state(3)
    seen = {}
    step = ssa.attn_lif.step

    def spy(x, st, dt):
        out = step(x, st, dt)
        seen["current"], seen["spikes"] = x, out[0]
        return out

    ssa.attn_lif.step = spy
    ssa(s, state, 1e-3)
    qkv = [branch.lif.step(branch.norm(branch.linear(s)), st, 1e-3)[0] for branch, st in
           ((ssa.q, state.q), (ssa.k, state.k), (ssa.v, state.v))]
    for t in qkv:
        assert set(t.unique().tolist()) <= {0.0, 1.0}
    q, k, v = (t.view(3, L, 2, 8) for t in qkv)
    expected = torch.einsum("bihm,bjhm,bjhn->bihn", q, k, v).reshape(3, L, 16) * cfg.attn_scale
    torch.testing.assert_close(seen["current"], expected)
    assert torch.equal(seen["spikes"], (0.5 * expected > cfg.attn_threshold).float())
    assert 0 < seen["spikes"].sum() < seen["spikes"].numel()


# ---------------------------------------------------------------------- both variants
def test_forward_backward_both_variants():
    torch.manual_seed(3)
    x, y = _task(8)
    for model in (Transformer(_cfg()), SpikingTransformer(_cfg())):
        if isinstance(model, SpikingTransformer):
            state, out = None, 0
            for _ in range(4):
                logits, state = model(x, state)
                out = out + logits / 4
        else:
            out = model(x)
        assert out.shape == (8, C)
        torch.nn.functional.cross_entropy(out, y).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert model.input.embed.weight.grad.abs().sum() > 0        # the gradient reaches the input layer


def test_token_ids_both_variants():
    torch.manual_seed(4)
    cfg = _cfg(in_features=None, vocab_size=7)
    ids = torch.randint(0, 7, (3, L))
    assert Transformer(cfg)(ids).shape == (3, C)
    model = SpikingTransformer(cfg)
    out_int, _ = model(ids)
    out_float, _ = model(ids.float())                  # what a Simulator hands over
    assert torch.equal(out_int, out_float)
    assert transformer_block(model).in_shape == (L,)


def test_spiking_variant_in_simulator_equals_manual_steps_and_continues(steps_like_its_module):
    torch.manual_seed(5)
    model = SpikingTransformer(_cfg(norm="layer")).eval()
    sim = ns.Simulator(ns.Graph.sequential((L, F_IN), ("former", transformer_block(model))), dt=1e-3)
    x = torch.randn(6, 3, L, F_IN)
    steps_like_its_module(sim, model, x, split=3)


def test_spiking_macs_equal_the_analytic_count():
    cfg = _cfg()
    sim = ns.Simulator(ns.Graph.sequential((L, F_IN), ("former", transformer_block(SpikingTransformer(cfg)))), dt=1e-3)
    d, hm, h, dh = cfg.d_model, cfg.mlp_hidden, cfg.num_heads, cfg.head_dim
    attention = h * L * L * dh * 2 if dh >= L else h * L * dh * dh * 2
    per_layer = 3 * L * d * d + attention + L * d * d + 2 * L * d * hm
    per_sample = L * F_IN * d + cfg.num_layers * per_layer + d * C
    ops = sim.run(torch.randn(4, 5, L, F_IN), count_ops=True).ops
    assert float(ops["former"]["macs"]) == 4 * 5 * per_sample


def test_conventional_model_in_graph_analog_and_hybrid():
    torch.manual_seed(6)
    model = Transformer(_cfg()).eval()
    x = torch.randn(3, 2, L, F_IN)
    for mode in ("analog", "hybrid"):
        sim = ns.Simulator(ns.Graph.sequential((L, F_IN), ("former", transformer_block(model, mode))), dt=1e-3)
        out = sim.run(x).output
        torch.testing.assert_close(out, model(x.reshape(6, L, F_IN)).reshape(3, 2, C))


# ---------------------------------------------------------------------- training
def test_training_reduces_loss_conventional(adam_losses):
    torch.manual_seed(7)
    x, y = _task()
    model = Transformer(_cfg())
    losses = adam_losses(lambda: torch.nn.functional.cross_entropy(model(x), y), model.parameters())
    assert losses[-1] < 0.6 * losses[0], losses


def test_training_reduces_loss_spiking_through_simulator(adam_losses):
    torch.manual_seed(8)
    x, y = _task()
    model = SpikingTransformer(_cfg())                     # norm="batch", as in the paper
    sim = ns.Simulator(ns.Graph.sequential((L, F_IN), ("former", transformer_block(model))), dt=1e-3)
    losses = adam_losses(lambda: torch.nn.functional.cross_entropy(_run(sim, x).output.mean(0), y), sim.parameters())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_spiking_variant_on_cuda():
    torch.manual_seed(9)
    model = SpikingTransformer(_cfg()).cuda()
    sim = ns.Simulator(ns.Graph.sequential((L, F_IN), ("former", transformer_block(model))), dt=1e-3)
    x, y = _task(8)
    out = _run(sim, x.cuda()).output.mean(0)
    assert out.device.type == "cuda"
    torch.nn.functional.cross_entropy(out, y.cuda()).backward()
    assert model.head.weight.grad.device.type == "cuda"
