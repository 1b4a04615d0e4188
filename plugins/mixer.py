"""MLP-Mixer (attention-free) for sequence / patch classification: conventional and spiking.

Input: ``S = num_tokens`` tokens (patches) of ``in_features`` values, ``[batch, S, in_features]``
(:func:`patchify` cuts images into such patches). Output: class logits ``[batch, num_classes]``.

Conventional reference, :class:`Mixer` (Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP
Architecture for Vision"), with ``X [S, C]`` per sample::

    X_0 = x W_in + b_in                                          per-token ("per-patch") linear, C channels
    U   = X + W_2 GELU(W_1 LN(X) + b_1) + b_2                   token mixing: W_1 [D_S, S], W_2 [S, D_S],
                                                                 acting along the token axis (per channel)
    Y   = U + GELU(LN(U) W_3 + b_3) W_4 + b_4                   channel mixing: W_3 [C, D_C], W_4 [D_C, C]
    logits = W_c mean_tokens(LN(X_N)) + b_c

Spiking variant, :class:`SpikingMixer`: the same mixing with a LIF population (``SN``, a
:class:`~neurosim.Population`, membrane carried over the steps) after each mixing linear layer
and at the input of each mixing block, one call per time step ``t``::

    X_0[t] = x[t] W_in + b_in                                    real-valued residual stream [B, S, C]
    A = SN_a(norm(X));   H = SN_h(W_1 A + b_1);   X = X + W_2 H + b_2          token mixing
    B = SN_b(norm(X));   G = SN_g(B W_3 + b_3);   X = X + G W_4 + b_4          channel mixing
    y[t] = W_c mean_tokens(SN_out(norm(X_N))) + b_c              logits per step, decoded as mean_t y[t]

Skip connections: on the membrane side (the "membrane shortcut" of MS-ResNet, Hu et al. 2021,
also used by the Spike-driven Transformer, Yao et al. 2023), not on spikes. The residual stream
``X`` carries the real-valued input currents and each branch adds its output current to it; each
branch reads the stream through its own LIF. Why: (1) every mixing linear layer then reads
binary spikes (``A, H, B, G`` are 0/1), so each is a pure accumulate of weight rows, the
event-driven synaptic operation of neuromorphic hardware; adding spike trains (the SEW / Spikformer
shortcut, see :mod:`.transformer`) gives counts 0, 1, 2, ... that grow with depth and need real
multiplications downstream; (2) the identity path of the stream carries gradients through depth
without passing a surrogate derivative at every block. The stream is recomputed every step from
the input; all memory is in the LIF membranes (state :class:`SpikingMixerState`).

LIFs: ``v[t] = v[t-1] a + (1 - a) I[t]``, spike ``H(v - v_th)``, reset; with the defaults
(``tau_mem = 2e-3`` s, Euler, ``dt = 1e-3`` s) ``a = 1/2``.

Shapes: ``[batch, S, in_features] -> [batch, num_classes]`` (per step).

Example::

    >>> cfg = MixerConfig(num_tokens=16, in_features=12, num_classes=10)
    >>> x = patchify(images, patch=4)                        # [B, 3, 16, 16] -> [B, 16, 48]
    >>> block = mixer_block(SpikingMixer(cfg))             # Block(mode="hybrid"), (16, 12) -> 10
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.neurons import LIFParams
from neurosim.population import Population

from .transformer import NORMS, TokenNorm

__all__ = ["MixerConfig", "Mixer", "MixerLayer", "SpikingMixer", "SpikingMixerLayer", "SpikingMixerState",
           "patchify", "mixer_block"]

_WHERE = "plugins/mixer.py"


@dataclass(frozen=True)
class MixerConfig:
    """Sizes of both variants.

    num_tokens: S; in_features: values per token; num_classes: C_out; channels: C; token_hidden:
    D_S; channel_hidden: D_C; num_layers: N. Spiking variant: norm ("layer", "batch", "none"),
    LIF tau_mem [s], v_threshold [V], reset, integration, surrogate."""

    num_tokens: int
    in_features: int
    num_classes: int
    channels: int = 32
    token_hidden: int = 16
    channel_hidden: int = 64
    num_layers: int = 2
    norm: str = "layer"
    tau_mem: float = 2e-3
    v_threshold: float = 1.0
    reset: str = "zero"
    integration: str = "euler"
    surrogate: str = "arctan"

    def __post_init__(self):
        owner = f"{_WHERE}: MixerConfig"
        for name in ("num_tokens", "in_features", "num_classes", "channels", "token_hidden", "channel_hidden",
                     "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}.{name} must be an int >= 1, got {value!r}")
        if self.norm not in NORMS:
            raise ValueError(f"{owner}.norm must be one of {list(NORMS)}, got {self.norm!r}")
        for name in ("tau_mem", "v_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{owner}.{name} must be a finite number > 0, got {value!r}")
        self.lif_params()

    @property
    def in_shape(self):
        return (self.num_tokens, self.in_features)

    def lif_params(self) -> LIFParams:
        try:
            return LIFParams(tau_mem=float(self.tau_mem), v_threshold=float(self.v_threshold), reset=self.reset,
                             integration=self.integration)
        except ValueError as error:
            raise ValueError(f"{_WHERE}: MixerConfig: {error}") from None


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Non-overlapping ``patch x patch`` patches: ``[B, C, H, W] -> [B, (H/p)(W/p), C p p]``
    (row-major patch order; each patch flattened channel-first, as ``F.unfold`` does)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{_WHERE}: patchify: images must be [batch, channels, height, width], got {got}")
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1 or images.shape[2] % patch or images.shape[3] % patch:
        raise ValueError(f"{_WHERE}: patchify: patch={patch!r} must be an int >= 1 dividing height and width "
                         f"{list(images.shape[2:])}")
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def _check_input(x, cfg: MixerConfig, owner: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != cfg.in_shape:
        got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{_WHERE}: {owner}: input must be [batch, num_tokens, in_features] = "
                         f"[batch, {cfg.num_tokens}, {cfg.in_features}], got {got}")


# ---------------------------------------------------------------------- conventional
class MixerLayer(nn.Module):
    """One Mixer layer ``[B, S, C] -> [B, S, C]``: token mixing then channel mixing, each
    ``LN -> Linear -> GELU -> Linear`` with a skip connection."""

    def __init__(self, cfg: MixerConfig):
        super().__init__()
        c, s = cfg.channels, cfg.num_tokens
        self.ln_token, self.ln_channel = nn.LayerNorm(c), nn.LayerNorm(c)
        self.token_fc1, self.token_fc2 = nn.Linear(s, cfg.token_hidden), nn.Linear(cfg.token_hidden, s)
        self.channel_fc1, self.channel_fc2 = nn.Linear(c, cfg.channel_hidden), nn.Linear(cfg.channel_hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.ln_token(x).transpose(1, 2)                              # [B, C, S]: mix along tokens
        x = x + self.token_fc2(F.gelu(self.token_fc1(t))).transpose(1, 2)
        return x + self.channel_fc2(F.gelu(self.channel_fc1(self.ln_channel(x))))


class Mixer(nn.Module):
    """Conventional MLP-Mixer classifier (module docstring): ``[B, S, in_features] -> [B, C_out]``."""

    def __init__(self, cfg: MixerConfig):
        super().__init__()
        if not isinstance(cfg, MixerConfig):
            raise TypeError(f"{_WHERE}: Mixer needs a MixerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.stem = nn.Linear(cfg.in_features, cfg.channels)
        self.layers = nn.ModuleList(MixerLayer(cfg) for _ in range(cfg.num_layers))
        self.ln = nn.LayerNorm(cfg.channels)
        self.head = nn.Linear(cfg.channels, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.cfg, "Mixer")
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln(h).mean(1))


# ---------------------------------------------------------------------- spiking
class SpikingMixerLayerState(NamedTuple):
    """LIF states (``LIFState``) of SN_a ``[B, S, C]``, SN_h ``[B, C, D_S]``, SN_b ``[B, S, C]``,
    SN_g ``[B, S, D_C]``."""

    token_in: tuple
    token_hidden: tuple
    channel_in: tuple
    channel_hidden: tuple


class SpikingMixerLayer(nn.Module):
    """Spiking token and channel mixing on the stream ``X [B, S, C]`` (module docstring), one step."""

    def __init__(self, cfg: MixerConfig):
        super().__init__()
        c, s, p = cfg.channels, cfg.num_tokens, cfg.lif_params()
        self.norm_token, self.norm_channel = TokenNorm(cfg.norm, c), TokenNorm(cfg.norm, c)
        self.token_fc1, self.token_fc2 = nn.Linear(s, cfg.token_hidden), nn.Linear(cfg.token_hidden, s)
        self.channel_fc1, self.channel_fc2 = nn.Linear(c, cfg.channel_hidden), nn.Linear(cfg.channel_hidden, c)
        lif = lambda shape: Population("lif", shape, p, surrogate=cfg.surrogate)  # noqa: E731
        self.lif_token_in, self.lif_token_hidden = lif((s, c)), lif((c, cfg.token_hidden))
        self.lif_channel_in, self.lif_channel_hidden = lif((s, c)), lif((s, cfg.channel_hidden))

    def initial_state(self, batch_size, device=None, dtype=None) -> SpikingMixerLayerState:
        pops = (self.lif_token_in, self.lif_token_hidden, self.lif_channel_in, self.lif_channel_hidden)
        return SpikingMixerLayerState(*(p.initial_state(batch_size, device, dtype) for p in pops))

    def forward(self, x: torch.Tensor, state: SpikingMixerLayerState, dt: float):
        a, s_a = self.lif_token_in.step(self.norm_token(x), state.token_in, dt)            # [B, S, C]
        h, s_h = self.lif_token_hidden.step(self.token_fc1(a.transpose(1, 2)), state.token_hidden, dt)
        x = x + self.token_fc2(h).transpose(1, 2)
        b, s_b = self.lif_channel_in.step(self.norm_channel(x), state.channel_in, dt)
        g, s_g = self.lif_channel_hidden.step(self.channel_fc1(b), state.channel_hidden, dt)
        return x + self.channel_fc2(g), SpikingMixerLayerState(s_a, s_h, s_b, s_g)


class SpikingMixerState(NamedTuple):
    """layers: one :class:`SpikingMixerLayerState` per layer; out: LIFState of SN_out ``[B, S, C]``."""

    layers: tuple
    out: tuple


class SpikingMixer(nn.Module):
    """Spiking MLP-Mixer classifier, a stateful module (module docstring).

    ``forward(x, state=None, dt=1e-3) -> (logits [B, C_out], new_state)``, one step of ``dt`` s."""

    def __init__(self, cfg: MixerConfig):
        super().__init__()
        if not isinstance(cfg, MixerConfig):
            raise TypeError(f"{_WHERE}: SpikingMixer needs a MixerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.stem = nn.Linear(cfg.in_features, cfg.channels)
        self.layers = nn.ModuleList(SpikingMixerLayer(cfg) for _ in range(cfg.num_layers))
        self.norm_out = TokenNorm(cfg.norm, cfg.channels)
        self.lif_out = Population("lif", (cfg.num_tokens, cfg.channels), cfg.lif_params(), surrogate=cfg.surrogate)
        self.head = nn.Linear(cfg.channels, cfg.num_classes)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> SpikingMixerState:
        device = self.head.weight.device if device is None else device
        dtype = self.head.weight.dtype if dtype is None else dtype
        return SpikingMixerState(tuple(layer.initial_state(batch_size, device, dtype) for layer in self.layers),
                                 self.lif_out.initial_state(batch_size, device, dtype))

    def forward(self, x: torch.Tensor, state: Optional[SpikingMixerState] = None, dt: float = 1e-3):
        _check_input(x, self.cfg, "SpikingMixer")
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        h, layer_states = self.stem(x), []
        for layer, layer_state in zip(self.layers, state.layers):
            h, new = layer(h, layer_state, dt)
            layer_states.append(new)
        s, s_out = self.lif_out.step(self.norm_out(h), state.out, dt)
        return self.head(s.mean(1)), SpikingMixerState(tuple(layer_states), s_out)


def mixer_block(model: nn.Module, mode: Optional[str] = None):
    """``model`` (:class:`Mixer` or :class:`SpikingMixer`) as a graph node
    ``(num_tokens, in_features) -> (num_classes,)``; ``mode`` defaults to ``"hybrid"``."""
    from .block import Block
    if not isinstance(model, (Mixer, SpikingMixer)):
        raise TypeError(f"{_WHERE}: mixer_block needs a Mixer or SpikingMixer, got {type(model).__name__}")
    return Block(model, model.cfg.in_shape, model.cfg.num_classes, mode=mode or "hybrid")
