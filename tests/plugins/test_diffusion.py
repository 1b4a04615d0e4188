"""Diffusion family (plugins/diffusion.py): diffusers' schedulers around conventional and spiking denoisers."""
import importlib.util
import math
import sys

import pytest
import torch

import diffusers
import neurosim as ns
from neurosim.plugins.diffusion import (ConvDenoiser, DiffusionConfig, SpikingConvDenoiser, UNetDenoiser,
                                        denoiser_block, make_scheduler, pack_input, sample, training_loss,
                                        unpack_input)

CFG = DiffusionConfig(image_size=8, channels=1, hidden=16, time_dim=16, num_train_timesteps=100)
DENOISERS = [ConvDenoiser, UNetDenoiser, SpikingConvDenoiser]


def toy_images(n: int = 256, seed: int = 0) -> torch.Tensor:
    """8x8 images in [-1, 1]: sklearn's digits when sklearn is installed, else seeded blobs."""
    if importlib.util.find_spec("sklearn") is not None:
        from sklearn.datasets import load_digits
        images = torch.tensor(load_digits().images[:n], dtype=torch.float32)[:, None] / 8.0 - 1.0
        return images.clamp(-1, 1)
    g = torch.Generator().manual_seed(seed)
    centre = torch.randint(2, 6, (n, 2), generator=g).float()
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    d2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    return (2 * torch.exp(-d2 / 3.0) - 1)[:, None]


def ho_alpha_bar(config: DiffusionConfig) -> torch.Tensor:
    """alpha_bar_t = prod (1 - beta_s), betas linear in [beta_start, beta_end] (Ho et al. 2020, sec. 4)."""
    betas = torch.linspace(config.beta_start, config.beta_end, config.num_train_timesteps, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


class Recorder(torch.nn.Module):
    """Wraps a denoiser and keeps every (x_t, t) it was called with."""

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser, self.calls = denoiser, []

    def forward(self, x, t):
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return self.denoiser(x, t)


# ---------------------------------------------------------------------------------------------- schedulers
def test_the_schedulers_are_diffusers_own_classes():
    ddpm, ddim = make_scheduler(CFG), make_scheduler(CFG, "ddim")
    assert isinstance(ddpm, diffusers.DDPMScheduler) and type(ddpm) is diffusers.DDPMScheduler
    assert isinstance(ddim, diffusers.DDIMScheduler) and type(ddim) is diffusers.DDIMScheduler
    assert type(ddpm).__module__ == "diffusers.schedulers.scheduling_ddpm"
    assert type(ddim).__module__ == "diffusers.schedulers.scheduling_ddim"
    assert ddpm.config.num_train_timesteps == CFG.num_train_timesteps
    # the schedule is diffusers' linear one, equal to Ho et al.'s computed here
    assert torch.allclose(ddpm.alphas_cumprod.double(), ho_alpha_bar(CFG), rtol=1e-6)
    # diffusers imports torchvision whenever it is installed; the project must leave it absent
    assert "torchvision" not in sys.modules


def test_add_noise_made_the_noisy_input(monkeypatch):
    scheduler = make_scheduler(CFG)
    calls = []
    original = scheduler.add_noise
    monkeypatch.setattr(scheduler, "add_noise", lambda *a: calls.append(a) or original(*a))
    denoiser = Recorder(ConvDenoiser(CFG))
    x0 = toy_images(16)
    out = training_loss(denoiser, scheduler, x0, torch.Generator().manual_seed(3))
    assert len(calls) == 1 and len(denoiser.calls) == 1
    seen_x, seen_t = denoiser.calls[0]
    assert torch.equal(seen_t, out.timesteps) and torch.equal(seen_x, out.noisy)
    assert torch.equal(seen_x, original(x0, out.noise, out.timesteps))       # scheduler.add_noise itself
    ab = ho_alpha_bar(CFG)[out.timesteps].float()[:, None, None, None]        # Ho et al. eq. 4
    assert torch.allclose(seen_x, ab.sqrt() * x0 + (1 - ab).sqrt() * out.noise, atol=1e-5)
    assert out.timesteps.min() >= 0 and out.timesteps.max() < CFG.num_train_timesteps
    assert len(set(out.timesteps.tolist())) > 4                                # t drawn per sample
    assert abs(out.noise.std().item() - 1) < 0.15
    # the same generator seed gives the same draw; another seed another one
    again = training_loss(denoiser, make_scheduler(CFG), x0, torch.Generator().manual_seed(3))
    other = training_loss(denoiser, make_scheduler(CFG), x0, torch.Generator().manual_seed(4))
    assert torch.equal(again.noise, out.noise) and not torch.equal(other.noise, out.noise)


def test_the_loss_target_follows_the_prediction_type():
    x0 = toy_images(8)
    denoiser = Recorder(ConvDenoiser(CFG))
    out = training_loss(denoiser, make_scheduler(CFG), x0, torch.Generator().manual_seed(0))
    prediction = denoiser.denoiser(*denoiser.calls[0])
    assert torch.equal(out.target, out.noise)
    assert torch.allclose(out.loss, ((prediction - out.noise) ** 2).mean())
    v_cfg = DiffusionConfig(prediction_type="v_prediction")
    out = training_loss(ConvDenoiser(v_cfg), make_scheduler(v_cfg), x0, torch.Generator().manual_seed(0))
    ab = ho_alpha_bar(v_cfg)[out.timesteps].float()[:, None, None, None]      # v = sqrt(ab) eps - sqrt(1-ab) x0
    assert torch.allclose(out.target, ab.sqrt() * out.noise - (1 - ab).sqrt() * x0, atol=1e-5)


# ---------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("cls", DENOISERS, ids=lambda c: c.__name__)
def test_a_few_adam_steps_reduce_the_loss(cls):
    torch.manual_seed(0)
    images = toy_images(256)
    denoiser, scheduler = cls(CFG), make_scheduler(CFG)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=3e-3 if cls is UNetDenoiser else 1e-2)

    def held_out_loss():        # the same noise and timesteps before and after training
        with torch.no_grad():
            return training_loss(denoiser, scheduler, images[:64], torch.Generator().manual_seed(123)).loss.item()

    before, g = held_out_loss(), torch.Generator().manual_seed(1)
    for _ in range(25):
        batch = images[torch.randint(0, len(images), (32,), generator=g)]
        loss = training_loss(denoiser, scheduler, batch, g).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    assert before > 0.9 and after < 0.75 * before, (before, after)


def test_spiking_denoiser_forward_and_backward():
    torch.manual_seed(0)
    denoiser = SpikingConvDenoiser(CFG)
    x, t = toy_images(8), torch.arange(8) * 12
    eps, (s1, s2) = denoiser(x, t, return_spikes=True)
    assert eps.shape == x.shape and s1.shape == s2.shape == (CFG.sim_steps, 8, CFG.hidden, 8, 8)
    for s in (s1, s2):          # binary spikes at a moderate rate
        assert set(s.unique().tolist()) <= {0.0, 1.0} and 0.02 < s.mean().item() < 0.8
    assert eps.unique().numel() > 100                                # a membrane, not spikes
    assert not torch.allclose(denoiser(x, t), denoiser(x, t.flip(0)))    # the timestep matters
    eps.pow(2).mean().backward()
    for name, p in denoiser.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", DENOISERS, ids=lambda c: c.__name__)
def test_denoisers_as_blocks_inside_a_simulator(cls):
    torch.manual_seed(0)
    denoiser = cls(CFG)
    x, t = toy_images(4), torch.tensor([0, 5, 50, 99])
    u = pack_input(x, t)
    assert torch.equal(unpack_input(u, CFG.channels)[0], x) and torch.equal(unpack_input(u, 1)[1], t)
    g = ns.Graph.sequential((2, 8, 8), ("denoiser", denoiser_block(denoiser)))
    sim = ns.Simulator(g, dt=CFG.dt)
    steps = CFG.sim_steps
    result = sim.run(u.expand(steps, *u.shape).clone(), count_ops=True)
    out = result.output
    assert out.shape == (steps, 4, 1, 8, 8)
    direct = denoiser(x, t)
    assert torch.allclose(out[-1], direct, atol=1e-5)       # T steps of the block = one denoising call
    if cls is SpikingConvDenoiser:
        assert not torch.allclose(out[0], out[-1])          # the readout integrates over the steps
    else:
        assert torch.allclose(out[0], out[-1])              # analog: the same every step
    assert result.ops["denoiser"]["macs"] > 0
    out[-1].pow(2).mean().backward()
    assert all(p.grad is not None for p in denoiser.parameters())


# ---------------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("kind,steps", [("ddpm", 20), ("ddim", 5)])
@pytest.mark.parametrize("cls", DENOISERS, ids=lambda c: c.__name__)
def test_sampling_runs_through_the_scheduler(cls, kind, steps, monkeypatch):
    torch.manual_seed(0)
    scheduler = make_scheduler(CFG, kind)
    calls = []
    original = scheduler.step
    monkeypatch.setattr(scheduler, "step", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    denoiser = Recorder(cls(CFG))
    images = sample(denoiser, scheduler, (3, 1, 8, 8), steps, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 8, 8) and torch.isfinite(images).all()
    assert len(calls) == steps and torch.equal(torch.stack(calls), scheduler.timesteps)
    assert [int(t[0]) for _, t in denoiser.calls] == scheduler.timesteps.tolist()
    assert all(t.shape == (3,) for _, t in denoiser.calls)
    assert scheduler.timesteps[0] > scheduler.timesteps[-1] and int(scheduler.timesteps[-1]) < 100 // steps
    again = sample(denoiser, make_scheduler(CFG, kind), (3, 1, 8, 8), steps, torch.Generator().manual_seed(0))
    assert torch.equal(again, images)


class OracleDenoiser(torch.nn.Module):
    """The exact noise predictor for data that are always ``c``: eps = (x_t - sqrt(ab) c) / sqrt(1 - ab)."""

    def __init__(self, c, alpha_bar):
        super().__init__()
        self.register_buffer("c", c)
        self.register_buffer("alpha_bar", alpha_bar)

    def forward(self, x, t):
        ab = self.alpha_bar[t][:, None, None, None]
        return (x - ab.sqrt() * self.c) / (1 - ab).sqrt()


@pytest.mark.parametrize("kind,steps", [("ddpm", 100), ("ddpm", 10), ("ddim", 10), ("ddim", 3)])
def test_sampling_with_the_exact_noise_predictor_returns_the_data(kind, steps):
    c = toy_images(1)[0]
    oracle = OracleDenoiser(c, ho_alpha_bar(CFG).float())
    images = sample(oracle, make_scheduler(CFG, kind), (2, 1, 8, 8), steps, torch.Generator().manual_seed(0))
    assert torch.allclose(images, c.expand(2, 1, 8, 8), atol=1e-4), (images - c).abs().max()


# ---------------------------------------------------------------------------------------------- errors
def test_bad_input_raises_before_any_work():
    with pytest.raises(ValueError, match="DiffusionConfig.hidden"):
        DiffusionConfig(hidden=0)
    with pytest.raises(ValueError, match="DiffusionConfig.prediction_type"):
        DiffusionConfig(prediction_type="noise")
    with pytest.raises(ValueError, match="make_scheduler: kind"):
        make_scheduler(CFG, "pndm")
    denoiser, scheduler = ConvDenoiser(CFG), make_scheduler(CFG)
    with pytest.raises(ValueError, match=r"training_loss: x0 must be .*\(1, 8, 8\)"):
        training_loss(denoiser, scheduler, torch.zeros(1, 8, 8))
    with pytest.raises(TypeError, match="training_loss: scheduler must be a diffusers scheduler"):
        training_loss(denoiser, object(), toy_images(2))
    with pytest.raises(TypeError, match="training_loss: generator"):
        training_loss(denoiser, scheduler, toy_images(2), generator=0)
    with pytest.raises(ValueError, match=r"ConvDenoiser: x_t must be \[batch, 1, 8, 8\], got \(2, 3, 8, 8\)"):
        training_loss(denoiser, scheduler, torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="training_loss: Lambda returned"):
        training_loss(Lambda(lambda x, t: x[:, :, :4]), scheduler, toy_images(2))
    with pytest.raises(ValueError, match="sample: shape must be four ints"):
        sample(denoiser, scheduler, (2, 8, 8), 5)
    with pytest.raises(ValueError, match=r"sample: num_inference_steps must be an int in \[1, 100\]"):
        sample(denoiser, scheduler, (2, 1, 8, 8), 101)
    with pytest.raises(ValueError, match="unpack_input"):
        unpack_input(torch.zeros(2, 1, 8, 8), 1)


class Lambda(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, t):
        return self.fn(x, t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda():
    device = torch.device("cuda")
    denoiser, scheduler = SpikingConvDenoiser(CFG).to(device), make_scheduler(CFG)
    out = training_loss(denoiser, scheduler, toy_images(8).to(device), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert out.noisy.device.type == "cuda" and math.isfinite(out.loss.item())
    images = sample(denoiser, make_scheduler(CFG, "ddim"), (2, 1, 8, 8), 4, torch.Generator().manual_seed(0))
    assert images.device.type == "cuda" and torch.isfinite(images).all()
