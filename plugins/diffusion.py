"""Diffusion (DDPM, Ho et al. 2020): diffusers' schedulers around a conventional or a spiking denoiser.

Everything about the noise schedule comes from diffusers (``DDPMScheduler`` for training and
ancestral sampling, ``DDIMScheduler``, Song et al. 2021, for fast sampling); nothing of it is
re-implemented here. With ``alpha_bar_t = prod_{s<=t} (1 - beta_s)`` (the scheduler's
``alphas_cumprod``) the forward process and the loss of Ho et al. (eq. 4 and eq. 14) are::

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,    eps ~ N(0, I)   (scheduler.add_noise)
    L   = E_{x_0, t ~ U{0..N-1}, eps} || eps - eps_theta(x_t, t) ||^2            (training_loss)

and sampling runs ``x_{t-1} = scheduler.step(eps_theta(x_t, t), t, x_t).prev_sample`` from
``x_T ~ N(0, I)`` (:func:`sample`).

Denoisers, each ``denoiser(x_t [B, C, S, S], t [B] int64) -> eps_hat [B, C, S, S]``:

* :class:`ConvDenoiser`: a small conv net, ``h1 = SiLU(conv_in(x) + W_t e(t))``,
  ``h2 = SiLU(conv_mid(h1))``, ``eps_hat = conv_out(h2)``; ``e(t)`` is diffusers' sinusoidal
  ``get_timestep_embedding`` through a two-layer MLP, added per channel.
* :class:`UNetDenoiser`: diffusers' ``UNet2DModel`` at a tiny size (two resolution levels).
* :class:`SpikingConvDenoiser`: the same conv layout with LIF populations instead of SiLU, run
  for ``T = config.sim_steps`` simulation steps per denoising call on the constant input current
  (direct coding), with a non-spiking leaky-integrator (LI) readout whose membrane at the last
  step is the noise prediction::

      I1       = conv_in(x) + W_t e(t)                                  (the same every step)
      s1[k]    = LIF(I1)[k],   s2[k] = LIF(conv_mid(s1[k]))[k]          k = 1..T
      v[k]     = LI(conv_out(s2[k]))[k]                                 eps_hat = v[T]

  LIF/LI are neurosim's ``Population("lif"/"li")`` with exact integration,
  ``v[k] = v[k-1] a + (1 - a) I[k]``, ``a = exp(-dt / tau)``, surrogate gradients (BPTT).

In a graph: the denoiser's input is packed as ``u = [x_t, t]`` along channels (:func:`pack_input`:
a channel holding the timestep), so a denoiser is one :class:`~neurosim.plugins.Block` of shape
``(C + 1, S, S) -> (C, S, S)``: the conventional ones as ``Block(PackedDenoiser(d), ...,
mode="analog")``, the spiking one as ``Block(d.cell, ..., mode="hybrid")`` (a stateful module
whose state holds the three populations' states), see :func:`denoiser_block`. Running that block
for ``T`` steps on a constant ``u`` gives ``d(x_t, t)`` at the last step.

Shapes: images ``[B, C, S, S]`` (``C = config.channels``, ``S = config.image_size``), timesteps
``[B]`` (int64, ``0 <= t < num_train_timesteps``). Data are expected in ``[-1, 1]`` (the
schedulers clip their ``x_0`` estimate to that range, ``clip_sample=True``).

Example::

    >>> cfg = DiffusionConfig(image_size=8, channels=1)
    >>> scheduler, denoiser = make_scheduler(cfg), SpikingConvDenoiser(cfg)
    >>> loss = training_loss(denoiser, scheduler, x0, torch.Generator().manual_seed(0)).loss
    >>> images = sample(denoiser, make_scheduler(cfg, "ddim"), (4, 1, 8, 8), 10, torch.Generator())
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.neurons import LIFParams, LIParams
from neurosim.population import Population

__all__ = ["DiffusionConfig", "make_scheduler", "timestep_embedding", "ConvDenoiser", "UNetDenoiser",
           "SpikingConvDenoiser", "SpikingDenoiserCell", "SpikingDenoiserState", "PackedDenoiser",
           "pack_input", "unpack_input", "denoiser_block", "DiffusionLoss", "training_loss", "sample",
           "SCHEDULERS", "PREDICTION_TYPES"]

SCHEDULERS = ("ddpm", "ddim")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class DiffusionConfig:
    """Sizes of a diffusion model and its schedule.

    ``image_size`` S and ``channels`` C of the images; ``hidden``: feature maps of the denoisers;
    ``time_dim``: width of the sinusoidal timestep embedding; ``num_train_timesteps`` N,
    ``beta_start``, ``beta_end``, ``beta_schedule`` (diffusers' names: "linear", "scaled_linear",
    "squaredcos_cap_v2", "sigmoid") and ``prediction_type`` ("epsilon", "v_prediction", "sample"):
    passed to the diffusers scheduler; ``unet_channels``: the two levels of the tiny UNet2DModel;
    spiking denoiser: ``sim_steps`` T per denoising call, ``dt`` [s], ``tau_mem`` [s] and
    ``v_threshold`` of the LIF layers, ``readout_tau`` [s] of the LI readout."""

    image_size: int = 8
    channels: int = 1
    hidden: int = 16
    time_dim: int = 16
    num_train_timesteps: int = 100
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"
    unet_channels: Tuple[int, int] = (8, 16)
    sim_steps: int = 4
    dt: float = 1e-3
    tau_mem: float = 2e-3
    v_threshold: float = 0.3
    readout_tau: float = 2e-3

    def __post_init__(self):
        for name in ("image_size", "channels", "hidden", "time_dim", "num_train_timesteps", "sim_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DiffusionConfig.{name} must be an int >= 1, got {value!r}")
        if self.time_dim % 2:
            raise ValueError(f"DiffusionConfig.time_dim must be even (sin and cos halves), got {self.time_dim}")
        for name in ("dt", "tau_mem", "v_threshold", "readout_tau", "beta_start", "beta_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DiffusionConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not self.beta_start < self.beta_end < 1:
            raise ValueError(f"DiffusionConfig: need beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"DiffusionConfig.prediction_type must be one of {list(PREDICTION_TYPES)}, "
                             f"got {self.prediction_type!r}")
        levels = self.unet_channels
        if len(levels) != 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in levels):
            raise ValueError(f"DiffusionConfig.unet_channels must be two ints >= 1, got {levels!r}")
        if self.image_size % 2:
            raise ValueError(f"DiffusionConfig.image_size must be even (the UNet halves it once), got {self.image_size}")


# ---------------------------------------------------------------------------------------------- schedule
def make_scheduler(config: DiffusionConfig, kind: str = "ddpm"):
    """diffusers' own ``DDPMScheduler`` (``kind="ddpm"``) or ``DDIMScheduler`` (``"ddim"``) with the
    schedule of ``config`` (N, betas, beta schedule, prediction type; ``clip_sample=True``)."""
    if not isinstance(config, DiffusionConfig):
        raise TypeError(f"make_scheduler: config must be a DiffusionConfig, got {type(config).__name__}")
    if kind not in SCHEDULERS:
        raise ValueError(f"make_scheduler: kind must be one of {list(SCHEDULERS)}, got {kind!r}")
    import diffusers
    cls = diffusers.DDPMScheduler if kind == "ddpm" else diffusers.DDIMScheduler
    return cls(num_train_timesteps=config.num_train_timesteps, beta_start=config.beta_start,
               beta_end=config.beta_end, beta_schedule=config.beta_schedule,
               prediction_type=config.prediction_type, clip_sample=True)


def _check_scheduler(scheduler, where: str) -> None:
    from diffusers.schedulers.scheduling_utils import SchedulerMixin
    if not isinstance(scheduler, SchedulerMixin) or not callable(getattr(scheduler, "add_noise", None)):
        raise TypeError(f"{where}: scheduler must be a diffusers scheduler with add_noise and step "
                        f"(DDPMScheduler, DDIMScheduler), got {type(scheduler).__name__}")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' sinusoidal embedding ``[cos(t w_k), sin(t w_k)]``, ``w_k = 10000^(-k / (dim/2))``,
    of timesteps ``t [B]`` -> ``[B, dim]`` (``flip_sin_to_cos=True``, ``downscale_freq_shift=0``)."""
    from diffusers.models.embeddings import get_timestep_embedding
    return get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0)


def _timesteps(t, batch: int, device) -> torch.Tensor:
    """``t`` (an int, a 0-d or ``[B]`` tensor) as ``[B]`` on ``device``."""
    t = torch.as_tensor(t, device=device)
    return t.reshape(1).expand(batch) if t.dim() == 0 else t


class _TimeMLP(nn.Module):
    """``e(t) = W2 SiLU(W1 emb(t))``: timestep ``[B]`` -> per-channel current ``[B, hidden]``."""

    def __init__(self, time_dim: int, hidden: int):
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.time_dim).to(self.net[0].weight.dtype)
        return self.net(emb)


def _check_images(x: torch.Tensor, t, config: DiffusionConfig, where: str) -> None:
    want = (config.channels, config.image_size, config.image_size)
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != want:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{where}: x_t must be [batch, {', '.join(map(str, want))}], got {got}")
    if t is not None and isinstance(t, torch.Tensor) and t.dim() == 1 and t.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: timesteps t have shape {tuple(t.shape)}, not [batch] = [{x.shape[0]}]")


# ---------------------------------------------------------------------------------------------- conventional
class ConvDenoiser(nn.Module):
    """The conventional reference: three 3x3 convolutions with SiLU and an additive timestep
    embedding (see the module docstring). ``[B, C, S, S], [B] -> [B, C, S, S]``."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        c, h = config.channels, config.hidden
        self.config = config
        self.conv_in = nn.Conv2d(c, h, 3, padding=1)
        self.time = _TimeMLP(config.time_dim, h)
        self.conv_mid = nn.Conv2d(h, h, 3, padding=1)
        self.conv_out = nn.Conv2d(h, c, 3, padding=1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _check_images(x, t, self.config, "ConvDenoiser")
        t = _timesteps(t, x.shape[0], x.device)
        h = F.silu(self.conv_in(x) + self.time(t)[:, :, None, None])
        return self.conv_out(F.silu(self.conv_mid(h)))


class UNetDenoiser(nn.Module):
    """diffusers' ``UNet2DModel`` at a tiny size: two levels of ``config.unet_channels`` feature maps,
    one ResNet block per level, no attention; returns ``.sample``. ``[B, C, S, S], [B] -> [B, C, S, S]``."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        from diffusers import UNet2DModel
        c1, c2 = config.unet_channels
        groups = next(g for g in (4, 2, 1) if c1 % g == 0 and c2 % g == 0)
        self.config = config
        self.unet = UNet2DModel(sample_size=config.image_size, in_channels=config.channels,
                                out_channels=config.channels, block_out_channels=(c1, c2), layers_per_block=1,
                                down_block_types=("DownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=groups)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _check_images(x, t, self.config, "UNetDenoiser")
        return self.unet(x, _timesteps(t, x.shape[0], x.device)).sample


# ---------------------------------------------------------------------------------------------- graph packing
def pack_input(x: torch.Tensor, t) -> torch.Tensor:
    """``u = [x_t, t]``: the image ``[B, C, S, S]`` with one more channel holding its timestep
    (as a float, the same over the map) -> ``[B, C + 1, S, S]``: one input of a graph node."""
    t = _timesteps(t, x.shape[0], x.device).to(x.dtype)
    return torch.cat([x, t[:, None, None, None].expand(x.shape[0], 1, *x.shape[2:])], dim=1)


def unpack_input(u: torch.Tensor, channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_input`: ``[B, C + 1, S, S] -> (x [B, C, S, S], t [B] int64)``."""
    if u.dim() != 4 or u.shape[1] != channels + 1:
        raise ValueError(f"unpack_input: a packed input must be [batch, channels + 1 = {channels + 1}, S, S], "
                         f"got {tuple(u.shape)}")
    return u[:, :channels], u[:, channels, 0, 0].round().long()


class PackedDenoiser(nn.Module):
    """``denoiser`` called on a packed input: ``u [B, C + 1, S, S] -> denoiser(x, t) [B, C, S, S]``,
    so a conventional denoiser is a one-input module for a ``Block``."""

    def __init__(self, denoiser: nn.Module, channels: int):
        super().__init__()
        self.denoiser, self.channels = denoiser, channels

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x, t = unpack_input(u, self.channels)
        return self.denoiser(x, t)


# ---------------------------------------------------------------------------------------------- spiking
class SpikingDenoiserState(NamedTuple):
    """State of :class:`SpikingDenoiserCell`: the two LIF layers' and the LI readout's states."""

    lif1: tuple
    lif2: tuple
    readout: tuple


class SpikingDenoiserCell(nn.Module):
    """One simulation step of the spiking denoiser (stateful-module protocol of ``Block``):
    ``cell(u [B, C + 1, S, S], state, dt) -> (v [B, C, S, S], new_state)`` with ``u`` packed by
    :func:`pack_input`; ``v`` is the LI readout membrane (see the module docstring)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        c, h, s = config.channels, config.hidden, config.image_size
        self.config = config
        self.conv_in = nn.Conv2d(c, h, 3, padding=1)
        self.time = _TimeMLP(config.time_dim, h)
        self.conv_mid = nn.Conv2d(h, h, 3, padding=1)
        self.conv_out = nn.Conv2d(h, c, 3, padding=1)
        lif = LIFParams(tau_mem=config.tau_mem, v_threshold=config.v_threshold, reset="subtract")
        self.lif1 = Population("lif", (h, s, s), lif)
        self.lif2 = Population("lif", (h, s, s), lif)
        self.readout = Population("li", (c, s, s), LIParams(tau_mem=config.readout_tau))
        for conv in (self.conv_in, self.conv_mid):     # He init: ~20-30 % of the LIF neurons spike at first
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")

    def initial_state(self, batch_size: int, device=None, dtype=None) -> SpikingDenoiserState:
        dtype = dtype if dtype is not None else self.conv_in.weight.dtype
        device = device if device is not None else self.conv_in.weight.device
        return SpikingDenoiserState(*(p.initial_state(batch_size, device, dtype)
                                      for p in (self.lif1, self.lif2, self.readout)))

    def input_current(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``I1 = conv_in(x) + W_t e(t)``: the first layer's input current ``[B, hidden, S, S]``."""
        return self.conv_in(x) + self.time(t)[:, :, None, None]

    def step_current(self, current: torch.Tensor, state: SpikingDenoiserState, dt: float):
        """One step from the first layer's current: ``(readout v, new_state, (s1, s2))``."""
        s1, st1 = self.lif1.step(current, state.lif1, dt)
        s2, st2 = self.lif2.step(self.conv_mid(s1), state.lif2, dt)
        v, st3 = self.readout.step(self.conv_out(s2), state.readout, dt)
        return v, SpikingDenoiserState(st1, st2, st3), (s1, s2)

    def forward(self, u: torch.Tensor, state: SpikingDenoiserState, dt: float):
        x, t = unpack_input(u, self.config.channels)
        v, state, _ = self.step_current(self.input_current(x, t), state, dt)
        return v, state


class SpikingConvDenoiser(nn.Module):
    """The spiking variant: :class:`SpikingDenoiserCell` run for ``config.sim_steps`` steps of
    ``config.dt`` on a constant input; the prediction is the readout membrane at the last step.
    ``[B, C, S, S], [B] -> [B, C, S, S]``. ``forward(..., return_spikes=True)`` also returns the
    spikes of both LIF layers ``[T, B, hidden, S, S]`` each (for rates and SynOps)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.cell = SpikingDenoiserCell(config)

    def forward(self, x: torch.Tensor, t, return_spikes: bool = False):
        _check_images(x, t, self.config, "SpikingConvDenoiser")
        t = _timesteps(t, x.shape[0], x.device)
        current = self.cell.input_current(x, t)           # direct coding: the same current each step
        state = self.cell.initial_state(x.shape[0], x.device, x.dtype)
        spikes = []
        for _ in range(self.config.sim_steps):
            v, state, s = self.cell.step_current(current, state, self.config.dt)
            spikes.append(s)
        if return_spikes:
            return v, tuple(torch.stack(layer) for layer in zip(*spikes))
        return v


def denoiser_block(denoiser: nn.Module):
    """``denoiser`` as one :class:`~neurosim.plugins.Block` ``(C + 1, S, S) -> (C, S, S)`` on packed
    inputs: the spiking one's cell in ``"hybrid"`` mode (stateful), a conventional one wrapped in
    :class:`PackedDenoiser` in ``"analog"`` mode."""
    from .block import Block
    config = getattr(denoiser, "config", None)
    if not isinstance(config, DiffusionConfig):
        raise TypeError(f"denoiser_block: {type(denoiser).__name__} has no DiffusionConfig in .config")
    c, s = config.channels, config.image_size
    if isinstance(denoiser, SpikingConvDenoiser):
        return Block(denoiser.cell, (c + 1, s, s), (c, s, s), mode="hybrid")
    return Block(PackedDenoiser(denoiser, c), (c + 1, s, s), (c, s, s), mode="analog")


# ---------------------------------------------------------------------------------------------- loss, sampling
class DiffusionLoss(NamedTuple):
    """loss: the mean squared error (0-d); noisy ``x_t``, noise ``eps``, timesteps ``t`` and
    target: what it was computed from (``[B, C, S, S]``, ``[B, C, S, S]``, ``[B]``, ``[B, C, S, S]``)."""

    loss: torch.Tensor
    noisy: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor
    target: torch.Tensor


def _check_generator(generator, where: str) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{where}: generator must be a torch.Generator or None, got {type(generator).__name__}")


def training_loss(denoiser: nn.Module, scheduler, x0: torch.Tensor,
                  generator: Optional[torch.Generator] = None) -> DiffusionLoss:
    """Ho et al.'s simple loss ``|| target - denoiser(x_t, t) ||^2`` (mean over all elements).

    ``t ~ U{0 .. N-1}`` per sample and ``eps ~ N(0, I)`` drawn from ``generator`` (on its device;
    moved to ``x0``'s), ``x_t = scheduler.add_noise(x0, eps, t)``; the target follows the
    scheduler's ``prediction_type``: ``eps`` ("epsilon"), ``scheduler.get_velocity(x0, eps, t)``
    ("v_prediction") or ``x0`` ("sample"). ``x0``: ``[B, C, S, S]`` in ``[-1, 1]``."""
    where = "training_loss"
    _check_scheduler(scheduler, where)
    _check_generator(generator, where)
    if not isinstance(x0, torch.Tensor) or x0.dim() != 4 or not x0.is_floating_point() or x0.shape[0] < 1:
        got = f"{x0.dtype} {tuple(x0.shape)}" if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise ValueError(f"{where}: x0 must be a floating tensor [batch, channels, height, width], got {got}")
    from diffusers.utils.torch_utils import randn_tensor
    batch = x0.shape[0]
    gen_device = generator.device if generator is not None else x0.device
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator,
                              device=gen_device).to(x0.device)
    noise = randn_tensor(tuple(x0.shape), generator=generator, device=x0.device, dtype=x0.dtype)
    noisy = scheduler.add_noise(x0, noise, timesteps)
    prediction = denoiser(noisy, timesteps)
    if not isinstance(prediction, torch.Tensor) or prediction.shape != x0.shape:
        got = tuple(prediction.shape) if isinstance(prediction, torch.Tensor) else type(prediction).__name__
        raise ValueError(f"{where}: {type(denoiser).__name__} returned {got}, not the image shape {tuple(x0.shape)}")
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(x0, noise, timesteps)
    elif kind == "sample":
        target = x0
    else:
        raise ValueError(f"{where}: unsupported prediction_type {kind!r} of {type(scheduler).__name__}")
    return DiffusionLoss(F.mse_loss(prediction, target), noisy, noise, timesteps, target)


@torch.no_grad()
def sample(denoiser: nn.Module, scheduler, shape, num_inference_steps: int,
           generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
    """Draw images by the reverse process of ``scheduler`` (DDPM ancestral, or DDIM with eta = 0)::

        x ~ N(0, I) * init_noise_sigma
        for t in scheduler.timesteps (after set_timesteps(num_inference_steps)):
            x = scheduler.step(denoiser(scale_model_input(x, t), t), t, x, generator).prev_sample

    ``shape``: ``(B, C, S, S)``; ``device``: where to sample (default: the denoiser's parameters').
    Returns ``x_0`` ``[B, C, S, S]``. Note ``set_timesteps`` changes the scheduler's timesteps (not
    its noise schedule, so training with it afterwards is unaffected)."""
    where = "sample"
    _check_scheduler(scheduler, where)
    _check_generator(generator, where)
    shape = tuple(shape)
    if len(shape) != 4 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(f"{where}: shape must be four ints >= 1 (batch, channels, height, width), got {shape}")
    n_train = scheduler.config.num_train_timesteps
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) \
            or not 1 <= num_inference_steps <= n_train:
        raise ValueError(f"{where}: num_inference_steps must be an int in [1, {n_train}] (the scheduler's "
                         f"num_train_timesteps), got {num_inference_steps!r}")
    param = next((p for p in itertools.chain(denoiser.parameters(), denoiser.buffers()) if p.is_floating_point()), None)
    device = torch.device(device) if device is not None else (param.device if param is not None else torch.device("cpu"))
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    from diffusers.utils.torch_utils import randn_tensor
    scheduler.set_timesteps(num_inference_steps, device=device)
    x = randn_tensor(shape, generator=generator, device=device, dtype=dtype) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        eps = denoiser(model_input, t.reshape(1).expand(shape[0]).to(device))
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x
