"""Transformer encoders for sequence classification: a conventional one and a spiking one (Spikformer).

Input: a sequence of ``L = seq_len`` tokens per sample, either token ids ``[batch, L]``
(``vocab_size`` set; floats holding integers are accepted, as a Simulator hands them over) or
feature vectors ``[batch, L, in_features]`` (``in_features`` set). Output: class logits
``[batch, num_classes]``.

Conventional reference, :class:`Transformer` (pre-norm encoder, Vaswani et al. 2017 / ViT)::

    X_0 = E(x) + P                                   E: embedding or linear projection, P [L, D] learnt
    X'  = X + MHA(LN(X)),   X'' = X' + W_2 GELU(W_1 LN(X') + b_1) + b_2          (per layer)
    MHA(Z) = W_o concat_h softmax(Q_h K_h^T / sqrt(d_h)) V_h,  [Q, K, V] = Z W_qkv + b
    logits = W_c mean_tokens(LN(X_N)) + b_c

with the attention computed by ``torch.nn.functional.scaled_dot_product_attention``.

Spiking variant, :class:`SpikingTransformer`, after Spikformer (Zhou et al. 2023, "Spikformer:
When Spiking Neural Network Meets Transformer", ICLR). One call is one time step ``t``; the input
is presented for ``T`` steps and every ``SN`` is a LIF :class:`~neurosim.Population` whose
membrane carries over the steps (``norm`` is BatchNorm, LayerNorm or nothing: ``config.norm``)::

    S_0[t]  = SN_in(norm(E(x[t])) + P)                                      spikes [B, L, D]
    Q = SN_q(norm(S W_q)),  K = SN_k(norm(S W_k)),  V = SN_v(norm(S W_v))   spikes, heads [B, H, L, d_h]
    SSA'(S) = SN_attn(Q K^T V * s)              no softmax; s = attn_scale (0.125 in the paper),
                                                SN_attn with threshold attn_threshold (0.5)
    SSA(S)  = SN_proj(norm(SSA'(S) W_o + b_o))
    S'  = S + SSA(S),   S'' = S' + SN_2(norm(SN_1(norm(S' W_1)) W_2))       (per layer)
    y[t] = W_c mean_tokens(S_N[t]) + b_c                                    logits [B, C] per step

decoded as ``mean_t y[t]`` (the paper's average over time steps). As in Spikformer, the shortcuts
add spikes, so a layer's output counts spikes (0, 1, 2, ...) rather than being binary; Q, K, V
are binary, so ``Q K^T V`` needs no multiplications (counts and sums) and, with no softmax, is
computed as ``Q (K^T V)`` when that is cheaper (``d_h < L``), linear in L. Every LIF is
``v[t] = v[t-1] a + (1 - a) I[t]``, spike ``H(v - v_th)``, reset to zero; the defaults
``tau_mem = 2e-3`` s with ``integration="euler"`` and ``dt = 1e-3`` s give ``a = 1/2``, the
SpikingJelly ``LIFNode(tau=2.0)`` of the paper.

The spiking model is a stateful module (``model(x, state, dt) -> (y, new_state)``, state
:class:`SpikingTransformerState`, every membrane ``[batch, ...]``) for ``Block(mode="hybrid")``;
the conventional one is stateless, for ``Block(mode="analog")`` or ``"hybrid"``
(:func:`transformer_block` builds either).

Shapes: ``[batch, L]`` or ``[batch, L, in_features]`` -> ``[batch, num_classes]`` (per step).

Example::

    >>> cfg = TransformerConfig(seq_len=8, num_classes=3, in_features=4, d_model=16, num_heads=2)
    >>> g = Graph.sequential((8, 4), ("former", transformer_block(SpikingTransformer(cfg))))
    >>> logits = Simulator(g, dt=1e-3).run(x.expand(4, *x.shape)).output.mean(0)   # T = 4 steps
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.neurons import LIFParams
from neurosim.population import Population

__all__ = ["TransformerConfig", "Transformer", "SelfAttention", "EncoderLayer", "SpikingTransformer",
           "SpikingSelfAttention", "SpikingEncoderLayer", "SpikingTransformerState", "spike_driven_attention",
           "TokenNorm", "transformer_block", "NORMS"]

_WHERE = "plugins/transformer.py"
NORMS = ("batch", "layer", "none")


def _check_int(owner: str, name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}.{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of both variants.

    seq_len: tokens per sample L; num_classes: C; exactly one of ``in_features`` (real-valued
    tokens) and ``vocab_size`` (token ids); d_model: D; num_heads: H (D divisible by H);
    num_layers: N; mlp_hidden: width of the MLP; dropout: conventional model only.
    Spiking variant: norm ("batch" after the paper, "layer", "none"); LIF tau_mem [s],
    v_threshold, attn_threshold (of SN_attn) [V], reset, integration; attn_scale s; surrogate."""

    seq_len: int
    num_classes: int
    in_features: Optional[int] = None
    vocab_size: Optional[int] = None
    d_model: int = 32
    num_heads: int = 4
    num_layers: int = 2
    mlp_hidden: int = 64
    dropout: float = 0.0
    norm: str = "batch"
    tau_mem: float = 2e-3
    v_threshold: float = 1.0
    attn_threshold: float = 0.5
    attn_scale: float = 0.125
    reset: str = "zero"
    integration: str = "euler"
    surrogate: str = "arctan"

    def __post_init__(self):
        owner = f"{_WHERE}: TransformerConfig"
        for name in ("seq_len", "num_classes", "d_model", "num_heads", "num_layers", "mlp_hidden"):
            _check_int(owner, name, getattr(self, name))
        if (self.in_features is None) == (self.vocab_size is None):
            raise ValueError(f"{owner}: give exactly one of in_features (real-valued tokens) and vocab_size "
                             f"(token ids), got in_features={self.in_features!r}, vocab_size={self.vocab_size!r}")
        for name in ("in_features", "vocab_size"):
            if getattr(self, name) is not None:
                _check_int(owner, name, getattr(self, name))
        if self.d_model % self.num_heads:
            raise ValueError(f"{owner}: d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if self.norm not in NORMS:
            raise ValueError(f"{owner}.norm must be one of {list(NORMS)}, got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{owner}.dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("tau_mem", "v_threshold", "attn_threshold", "attn_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{owner}.{name} must be a finite number > 0, got {value!r}")
        self.lif_params()                         # reset / integration checked by LIFParams

    @property
    def in_shape(self) -> Tuple[int, ...]:
        """Per-sample input shape: ``(L,)`` for token ids, ``(L, in_features)`` otherwise."""
        return (self.seq_len,) if self.vocab_size is not None else (self.seq_len, self.in_features)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    def lif_params(self, v_threshold: Optional[float] = None) -> LIFParams:
        try:
            return LIFParams(tau_mem=float(self.tau_mem), v_threshold=float(v_threshold or self.v_threshold),
                             reset=self.reset, integration=self.integration)
        except ValueError as error:
            raise ValueError(f"{_WHERE}: TransformerConfig: {error}") from None


# ---------------------------------------------------------------------- shared parts
class TokenNorm(nn.Module):
    """Normalisation of token features ``[batch, L, F]`` over F: ``"batch"`` (BatchNorm1d on
    the ``batch * L`` tokens), ``"layer"`` (LayerNorm) or ``"none"`` (identity)."""

    def __init__(self, kind: str, features: int):
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"{_WHERE}: TokenNorm: kind must be one of {list(NORMS)}, got {kind!r}")
        self.kind = kind
        self.norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}.get(kind, lambda f: nn.Identity())(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "batch":
            return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return self.norm(x)


class _TokenInput(nn.Module):
    """``E(x)``: token embedding or linear projection to D, with input checks (shape, ids)."""

    def __init__(self, cfg: TransformerConfig, owner: str):
        super().__init__()
        self.cfg, self.owner = cfg, owner
        if cfg.vocab_size is not None:
            self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        else:
            self.embed = nn.Linear(cfg.in_features, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if not isinstance(x, torch.Tensor) or x.dim() != len(cfg.in_shape) + 1 or tuple(x.shape[1:]) != cfg.in_shape:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{_WHERE}: {self.owner}: input must be [batch, *{list(cfg.in_shape)}] "
                             f"({'token ids' if cfg.vocab_size else 'features'}), got {got}")
        if cfg.vocab_size is None:
            return self.embed(x)
        ids = x.long()
        bad = (ids < 0) | (ids >= cfg.vocab_size) | (x != ids) if x.is_floating_point() else (ids < 0) | (ids >= cfg.vocab_size)
        if bool(bad.any()):
            raise ValueError(f"{_WHERE}: {self.owner}: token ids must be integers in [0, vocab_size) = "
                             f"[0, {cfg.vocab_size}), got values in [{x.min().item()}, {x.max().item()}]")
        return self.embed(ids)


# ---------------------------------------------------------------------- conventional
class SelfAttention(nn.Module):
    """Multi-head self-attention ``[B, L, D] -> [B, L, D]``:
    ``W_o concat_h softmax(Q_h K_h^T / sqrt(d_h)) V_h`` through ``F.scaled_dot_product_attention``."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    """Pre-norm encoder layer: ``X' = X + MHA(LN(X)); X'' = X' + MLP(LN(X'))``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.num_heads, cfg.dropout)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.mlp_hidden), nn.GELU(),
                                 nn.Linear(cfg.mlp_hidden, cfg.d_model), nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Conventional encoder classifier (see the module docstring): ``[B, *in_shape] -> [B, C]``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if not isinstance(cfg, TransformerConfig):
            raise TypeError(f"{_WHERE}: Transformer needs a TransformerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.input = _TokenInput(cfg, "Transformer")
        self.pos = nn.Parameter(0.02 * torch.randn(cfg.seq_len, cfg.d_model))
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln(h).mean(1))


# ---------------------------------------------------------------------- spiking
def spike_driven_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Spikformer's attention current without softmax: ``Q K^T V * s``.

    ``q, k, v``: ``[..., L, d_h]`` (spikes in the model; any values here). Computed as
    ``(Q K^T) V`` or, when ``d_h < L``, ``Q (K^T V)`` (equal by associativity; ``L d_h^2``
    instead of ``L^2 d_h`` MACs). Returns ``[..., L, d_h]``."""
    if q.shape[-1] < q.shape[-2]:
        return (q @ (k.transpose(-2, -1) @ v)) * scale
    return ((q @ k.transpose(-2, -1)) @ v) * scale


def _lif(cfg: TransformerConfig, shape, v_threshold: Optional[float] = None) -> Population:
    return Population("lif", shape, cfg.lif_params(v_threshold), surrogate=cfg.surrogate)


class _LinearNormLIF(nn.Module):
    """``SN(norm(x W + b))`` on tokens ``[B, L, F_in] -> [B, L, F_out]`` spikes; state: LIFState."""

    def __init__(self, cfg: TransformerConfig, f_in: int, f_out: int, bias: Optional[bool] = None):
        super().__init__()
        self.linear = nn.Linear(f_in, f_out, bias=cfg.norm == "none" if bias is None else bias)
        self.norm = TokenNorm(cfg.norm, f_out)
        self.lif = _lif(cfg, (cfg.seq_len, f_out))

    def forward(self, x, state, dt):
        return self.lif.step(self.norm(self.linear(x)), state, dt)


class AttentionState(NamedTuple):
    """LIF states (``LIFState``, fields ``[batch, L, D]``) of SN_q, SN_k, SN_v, SN_attn, SN_proj."""

    q: tuple
    k: tuple
    v: tuple
    attn: tuple
    proj: tuple


class SpikingSelfAttention(nn.Module):
    """Spiking self-attention (SSA) of Spikformer on spikes ``[B, L, D]``, one step:
    ``SN_proj(norm(SN_attn(Q K^T V * s) W_o + b_o))`` with spiking Q, K, V (module docstring)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.q, self.k, self.v = (_LinearNormLIF(cfg, d, d) for _ in range(3))
        self.attn_lif = _lif(cfg, (cfg.seq_len, d), cfg.attn_threshold)
        self.proj = _LinearNormLIF(cfg, d, d, bias=True)

    def initial_state(self, batch_size, device=None, dtype=None) -> AttentionState:
        pops = (self.q.lif, self.k.lif, self.v.lif, self.attn_lif, self.proj.lif)
        return AttentionState(*(p.initial_state(batch_size, device, dtype) for p in pops))

    def forward(self, s: torch.Tensor, state: AttentionState, dt: float):
        b, n, d = s.shape
        h, dh = self.cfg.num_heads, self.cfg.head_dim
        q, sq = self.q(s, state.q, dt)
        k, sk = self.k(s, state.k, dt)
        v, sv = self.v(s, state.v, dt)
        heads = [t.view(b, n, h, dh).transpose(1, 2) for t in (q, k, v)]
        current = spike_driven_attention(*heads, self.cfg.attn_scale).transpose(1, 2).reshape(b, n, d)
        a, sa = self.attn_lif.step(current, state.attn, dt)
        y, sp = self.proj(a, state.proj, dt)
        return y, AttentionState(sq, sk, sv, sa, sp)


class EncoderLayerState(NamedTuple):
    """attn: :class:`AttentionState`; hidden, out: LIF states of the spiking MLP."""

    attn: AttentionState
    hidden: tuple
    out: tuple


class SpikingEncoderLayer(nn.Module):
    """``S' = S + SSA(S); S'' = S' + SN_2(norm(SN_1(norm(S' W_1)) W_2))`` (spike shortcuts)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.attn = SpikingSelfAttention(cfg)
        self.fc1 = _LinearNormLIF(cfg, cfg.d_model, cfg.mlp_hidden)
        self.fc2 = _LinearNormLIF(cfg, cfg.mlp_hidden, cfg.d_model)

    def initial_state(self, batch_size, device=None, dtype=None) -> EncoderLayerState:
        return EncoderLayerState(self.attn.initial_state(batch_size, device, dtype),
                                 self.fc1.lif.initial_state(batch_size, device, dtype),
                                 self.fc2.lif.initial_state(batch_size, device, dtype))

    def forward(self, s, state: EncoderLayerState, dt: float):
        a, sa = self.attn(s, state.attn, dt)
        s = s + a
        hidden, sh = self.fc1(s, state.hidden, dt)
        out, so = self.fc2(hidden, state.out, dt)
        return s + out, EncoderLayerState(sa, sh, so)


class SpikingTransformerState(NamedTuple):
    """input: LIFState of SN_in (``[batch, L, D]``); layers: one :class:`EncoderLayerState` per layer."""

    input: tuple
    layers: tuple


class SpikingTransformer(nn.Module):
    """Spikformer encoder classifier, a stateful module (see the module docstring).

    ``forward(x, state=None, dt=1e-3) -> (logits [B, C], new_state)``: one time step of ``dt``
    seconds from ``state`` (resting when None); decode a run by averaging the logits over time."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if not isinstance(cfg, TransformerConfig):
            raise TypeError(f"{_WHERE}: SpikingTransformer needs a TransformerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.input = _TokenInput(cfg, "SpikingTransformer")
        self.input_norm = TokenNorm(cfg.norm, cfg.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(cfg.seq_len, cfg.d_model))
        self.input_lif = _lif(cfg, (cfg.seq_len, cfg.d_model))
        self.layers = nn.ModuleList(SpikingEncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.head = nn.Linear(cfg.d_model, cfg.num_classes)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> SpikingTransformerState:
        if dtype is None:
            dtype = self.head.weight.dtype
        if device is None:
            device = self.head.weight.device
        return SpikingTransformerState(self.input_lif.initial_state(batch_size, device, dtype),
                                       tuple(layer.initial_state(batch_size, device, dtype) for layer in self.layers))

    def encode(self, x: torch.Tensor, state: Optional[SpikingTransformerState] = None, dt: float = 1e-3):
        """One step up to the last layer: ``(S_N [B, L, D] spike counts, new_state)``."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        s, s_in = self.input_lif.step(self.input_norm(self.input(x)) + self.pos, state.input, dt)
        layer_states = []
        for layer, layer_state in zip(self.layers, state.layers):
            s, new = layer(s, layer_state, dt)
            layer_states.append(new)
        return s, SpikingTransformerState(s_in, tuple(layer_states))

    def forward(self, x: torch.Tensor, state: Optional[SpikingTransformerState] = None, dt: float = 1e-3):
        s, state = self.encode(x, state, dt)
        return self.head(s.mean(1)), state


def transformer_block(model: nn.Module, mode: Optional[str] = None):
    """``model`` (:class:`Transformer` or :class:`SpikingTransformer`) as a graph node
    ``in_shape -> (num_classes,)``; ``mode`` defaults to ``"hybrid"``."""
    from .block import Block
    if not isinstance(model, (Transformer, SpikingTransformer)):
        raise TypeError(f"{_WHERE}: transformer_block needs a Transformer or SpikingTransformer, "
                        f"got {type(model).__name__}")
    return Block(model, model.cfg.in_shape, model.cfg.num_classes, mode=mode or "hybrid")
