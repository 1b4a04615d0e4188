"""MLP-Mixer family (plugins/mixer.py): conventional Mixer and spiking Mixer with membrane shortcuts."""
import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.plugins.block import Block
from neurosim.plugins.mixer import Mixer, MixerConfig, MixerLayer, SpikingMixer, mixer_block, patchify

S, F_IN, C = 6, 4, 3


def _cfg(**kw):
    base = dict(num_tokens=S, in_features=F_IN, num_classes=C, channels=8, token_hidden=5, channel_hidden=16,
                num_layers=2)
    base.update(kw)
    return MixerConfig(**base)


def _task(n=64, seed=0):
    """Class = the largest of the first three features averaged over the tokens."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, S, F_IN, generator=g)
    return x, x[..., :C].mean(1).argmax(1)


def _sim(model):
    return ns.Simulator(ns.Graph.sequential((S, F_IN), ("mixer", mixer_block(model))), dt=1e-3)


# ---------------------------------------------------------------------- checks
@pytest.mark.parametrize("kw, key", [(dict(channels=0), "channels"), (dict(norm="group"), "norm"),
                                     (dict(tau_mem=-1.0), "tau_mem"), (dict(integration="rk4"), "integration")])
def test_config_rejects_bad_values(kw, key):
    with pytest.raises(ValueError, match=key) as info:
        _cfg(**kw)
    assert "plugins/mixer.py" in str(info.value)


def test_bad_input_raises_naming_the_shapes():
    for model in (Mixer(_cfg()), SpikingMixer(_cfg())):
        name = type(model).__name__
        with pytest.raises(ValueError, match=rf"plugins/mixer.py: {name}: input must be .*\[batch, 6, 4\], got \[2, 5, 4\]"):
            model(torch.zeros(2, S - 1, F_IN))
    with pytest.raises(ValueError, match=r"Block\(SpikingMixer\).*\[2, 6, 3\]"):
        Block(SpikingMixer(_cfg()), (S, 3), C)


def test_patchify_matches_slicing():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)
    assert patches.shape == (2, 6, 12)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(patches[:, i * 3 + j], images[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(2, 12))
    with pytest.raises(ValueError, match="patchify: patch=3"):
        patchify(images, 3)


# ---------------------------------------------------------------------- equations
def test_mixer_layer_equals_its_equation():
    torch.manual_seed(0)
    layer = MixerLayer(_cfg()).double()
    x = torch.randn(2, S, 8, dtype=torch.float64)

    def ln(z, m):
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + m.eps) * m.weight + m.bias

    gelu = lambda z: 0.5 * z * (1 + torch.erf(z / 2 ** 0.5))  # noqa: E731
    u = x.clone()
    t = ln(x, layer.ln_token)
    for c in range(8):                                     # token mixing, channel by channel
        hidden = gelu(layer.token_fc1.weight @ t[:, :, c].T + layer.token_fc1.bias[:, None])      # [D_S, B]
        u[:, :, c] += (layer.token_fc2.weight @ hidden + layer.token_fc2.bias[:, None]).T
    y = u + gelu(ln(u, layer.ln_channel) @ layer.channel_fc1.weight.T + layer.channel_fc1.bias) \
        @ layer.channel_fc2.weight.T + layer.channel_fc2.bias
    torch.testing.assert_close(layer(x), y, rtol=1e-12, atol=1e-12)


def test_spiking_mixer_one_step_equals_its_equation():
    """From rest, with a = 1/2 (tau_mem = 2 dt, Euler) and no norm, each SN spikes where I/2 > v_th."""
    torch.manual_seed(1)
    cfg = _cfg(norm="none", num_layers=1, v_threshold=0.25)
    model = SpikingMixer(cfg)
    x = 2.0 * torch.randn(3, S, F_IN)
    layer = model.layers[0]
    sn = lambda i: (0.5 * i > cfg.v_threshold).float()     # noqa: E731
    X = x @ model.stem.weight.T + model.stem.bias
    A = sn(X)
    H = sn(torch.einsum("ds,bsc->bcd", layer.token_fc1.weight, A) + layer.token_fc1.bias)
    X = X + torch.einsum("sd,bcd->bsc", layer.token_fc2.weight, H) + layer.token_fc2.bias[:, None]
    Bs = sn(X)
    G = sn(Bs @ layer.channel_fc1.weight.T + layer.channel_fc1.bias)
    X = X + G @ layer.channel_fc2.weight.T + layer.channel_fc2.bias
    expected = sn(X).mean(1) @ model.head.weight.T + model.head.bias
    y, _ = model(x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    for spikes in (A, H, Bs, G):
        assert 0 < spikes.sum() < spikes.numel()


def test_every_mixing_layer_reads_binary_spikes():
    """The membrane shortcut: all four mixing linear layers of every block read 0/1 spikes,
    over several steps (a spike shortcut would hand them counts 0, 1, 2, ...)."""
    torch.manual_seed(2)
    model = SpikingMixer(_cfg(norm="layer"))
    seen = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
             for layer in model.layers for m in (layer.token_fc1, layer.token_fc2, layer.channel_fc1, layer.channel_fc2)]
    state = None
    for _ in range(5):
        _, state = model(torch.randn(4, S, F_IN), state)
    for h in hooks:
        h.remove()
    assert len(seen) == 5 * 4 * 2
    assert all(set(t.unique().tolist()) <= {0.0, 1.0} for t in seen)
    assert sum(t.sum() for t in seen) > 0


# ---------------------------------------------------------------------- both variants
def test_forward_backward_both_variants():
    torch.manual_seed(3)
    x, y = _task(8)
    for model in (Mixer(_cfg()), SpikingMixer(_cfg())):
        if isinstance(model, SpikingMixer):
            state, out = None, 0
            for _ in range(4):
                logits, state = model(x, state)
                out = out + logits / 4
        else:
            out = model(x)
        assert out.shape == (8, C)
        F.cross_entropy(out, y).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        assert model.stem.weight.grad.abs().sum() > 0


def test_spiking_variant_in_simulator_equals_manual_steps_and_continues(steps_like_its_module):
    torch.manual_seed(4)
    model = SpikingMixer(_cfg())
    sim = _sim(model)
    x = torch.randn(6, 3, S, F_IN)
    steps_like_its_module(sim, model, x, split=2)


def test_macs_equal_the_analytic_count():
    cfg = _cfg()
    per_layer = 2 * cfg.channels * S * cfg.token_hidden + 2 * S * cfg.channels * cfg.channel_hidden
    per_sample = S * F_IN * cfg.channels + cfg.num_layers * per_layer + cfg.channels * C
    for model in (Mixer(cfg), SpikingMixer(cfg)):
        ops = _sim(model).run(torch.randn(3, 5, S, F_IN), count_ops=True).ops
        assert float(ops["mixer"]["macs"]) == 3 * 5 * per_sample, type(model).__name__


def test_conventional_in_graph_equals_direct_call():
    torch.manual_seed(5)
    model = Mixer(_cfg())
    x = torch.randn(2, 3, S, F_IN)
    for mode in ("analog", "hybrid"):
        out = ns.Simulator(ns.Graph.sequential((S, F_IN), ("m", mixer_block(model, mode))), dt=1e-3).run(x).output
        torch.testing.assert_close(out, model(x.reshape(6, S, F_IN)).reshape(2, 3, C))


# ---------------------------------------------------------------------- training
def test_training_reduces_loss_conventional(adam_losses):
    torch.manual_seed(6)
    x, y = _task()
    model = Mixer(_cfg())
    losses = adam_losses(lambda: F.cross_entropy(model(x), y), model.parameters())
    assert losses[-1] < 0.6 * losses[0], losses


def test_training_reduces_loss_spiking_through_simulator(adam_losses):
    torch.manual_seed(7)
    x, y = _task()
    sim = _sim(SpikingMixer(_cfg()))
    xs = x.unsqueeze(0).expand(4, *x.shape)
    losses = adam_losses(lambda: F.cross_entropy(sim.run(xs).output.mean(0), y), sim.parameters(), lr=3e-2)
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_spiking_variant_on_cuda():
    torch.manual_seed(8)
    model = SpikingMixer(_cfg()).cuda()
    x, y = _task(8)
    out = _sim(model).run(x.cuda().unsqueeze(0).expand(3, *x.shape)).output.mean(0)
    assert out.device.type == "cuda"
    F.cross_entropy(out, y.cuda()).backward()
    assert model.stem.weight.grad.device.type == "cuda"
