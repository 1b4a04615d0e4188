"""End-to-end memory network (Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory
Networks", NIPS), conventional and spiking, for question answering over short stories.

Inputs are integer word indices (0 = padding): a story ``[batch, S, L]`` (S sentences of L words)
and a question ``[batch, L]``. With ``K`` hops and the paper's *adjacent* weight tying there are
``K + 1`` embedding matrices ``E_1 .. E_{K+1}`` (``V x d``): hop k reads memories with
``A^k = E_k`` and outputs with ``C^k = E_{k+1}``, and the question is embedded with ``B = E_1``
(section 2.2). A sentence ``x_i = (x_i1 .. x_iL)`` becomes one vector (section 4.1)::

    bag of words       m_i = sum_j A x_ij
    position encoding  m_i = sum_j l_j * A x_ij,  l_kj = (1 - j/L) - (k/d)(1 - 2j/L)  (j, k from 1)

plus, with ``temporal=True``, a learnt vector per memory slot, ``m_i += T_A(i)``, ``c_i += T_C(i)``.
Each hop (eqs. 1-2 and section 2.2)::

    p_i = softmax_i(u^T m_i),   o = sum_i p_i c_i,   u <- u + o

and the answer is ``a^ = softmax(W u)`` after the last hop (``W`` a separate ``d -> V`` layer here;
the paper's adjacent scheme ties ``W^T = C^K``; this file keeps it free, which the paper's
layer-wise variant also does). :class:`MemN2N` returns the logits ``W u``.

Spiking variant (:class:`SpikingMemN2N`, a stateful module stepped once per time step): the same
embeddings and the same hops, between spiking encoders and a spiking readout:

* word encoder: one LIF neuron per word slot of the story and question, driven by a constant
  current ``drive`` while the slot holds a word (``x_ij != 0``), so every word is a regular spike
  train ``z_ij(t)``; feeding one-hot word spikes through the embedding matrix is the lookup
  ``A x_ij z_ij(t)``, which is what is computed;
* sentence encoders: LIF populations ``[K + 1, S, d]`` (memories) and ``[d]`` (question) driven by
  ``gain * sum_j l_j * E_k x_ij z_ij(t)`` (+ ``T_A``): the sentence vectors become spike trains
  ``m^k_i(t)``, ``u(t)``;
* the hops above run every step on those spike trains (``c^k_i(t) = m^{k+1}_i(t)``);
* readout: ``W u(t)`` drives a leaky-integrator population (``"li"``, membrane = answer logits;
  default) or a LIF population (``readout="lif"``: answer spikes, decode by counting).

Shapes: ``MemN2N(story [B, S, L], question [B, L]) -> [B, V]``; packed, ``[B, S*L + L]`` (see
:func:`pack`) for a :class:`~neurosim.plugins.Block`; ``SpikingMemN2N(x [B, S*L + L], state, dt)
-> ([B, V], state)`` per step, ``x`` the packed indices (as floats, the same every step).

Example::

    >>> cfg = MemNetConfig(vocab_size=14, sentences=4, sentence_len=3, embed_dim=16, hops=2)
    >>> logits = MemN2N(cfg)(story, question)                                    # [B, 14]
    >>> block = Block(SpikingMemN2N(cfg), cfg.packed_size, cfg.vocab_size, mode="hybrid")
    >>> g = Graph.sequential(cfg.packed_size, ("memnet", block))
    >>> x = pack(story, question).float().expand(20, -1, -1)                     # [T=20, B, S*L+L]
    >>> v = Simulator(g, dt=1e-3).run(x).output                                  # [20, B, 14]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
from torch import nn

from neurosim.neurons.li import LIParams
from neurosim.neurons.lif import LIFParams
from neurosim.population import Population

__all__ = ["MemNetConfig", "MemN2N", "SpikingMemN2N", "SpikingMemNetState", "position_encoding",
           "embed_sentences", "memory_hop", "pack", "unpack", "ENCODINGS", "READOUTS"]

ENCODINGS = ("bow", "position")
READOUTS = ("li", "lif")


@dataclass(frozen=True)
class MemNetConfig:
    """Sizes of an end-to-end memory network: ``vocab_size`` V (index 0 is padding),
    ``sentences`` S (memory slots), ``sentence_len`` L (words per sentence and per question),
    ``embed_dim`` d, ``hops`` K, ``encoding`` ``"bow"`` or ``"position"``, ``temporal``: learnt
    per-slot vectors. Spiking variant: ``tau_mem`` [s] and ``v_threshold`` [V] of the encoders,
    ``drive`` (word-encoder current, in thresholds), ``gain`` (sentence-encoder current per unit
    of embedding), ``readout_tau`` [s], ``readout`` ``"li"`` or ``"lif"``."""

    vocab_size: int
    sentences: int
    sentence_len: int
    embed_dim: int = 20
    hops: int = 3
    encoding: str = "position"
    temporal: bool = True
    tau_mem: float = 5e-3
    v_threshold: float = 1.0
    drive: float = 3.0
    gain: float = 4.0
    readout_tau: float = 20e-3
    readout: str = "li"

    def __post_init__(self):
        for name in ("vocab_size", "sentences", "sentence_len", "embed_dim", "hops"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MemNetConfig.{name} must be an int >= 1, got {value!r}")
        if self.vocab_size < 2:
            raise ValueError(f"MemNetConfig.vocab_size must be >= 2 (index 0 is padding), got {self.vocab_size}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"MemNetConfig.encoding must be one of {list(ENCODINGS)}, got {self.encoding!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"MemNetConfig.readout must be one of {list(READOUTS)}, got {self.readout!r}")
        for name in ("tau_mem", "v_threshold", "drive", "gain", "readout_tau"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MemNetConfig.{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def packed_size(self) -> int:
        """Length of a packed story + question, ``S * L + L``."""
        return (self.sentences + 1) * self.sentence_len


# ---------------------------------------------------------------------- pure parts
def position_encoding(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """``l_kj = (1 - j/L) - (k/d)(1 - 2j/L)`` with j = 1..L, k = 1..d (section 4.1): ``[L, d]``."""
    j = torch.arange(1, length + 1, device=device, dtype=dtype or torch.get_default_dtype()).unsqueeze(1)
    k = torch.arange(1, dim + 1, device=device, dtype=j.dtype).unsqueeze(0)
    return (1 - j / length) - (k / dim) * (1 - 2 * j / length)


def embed_sentences(embedding: nn.Embedding, words: torch.Tensor, encoding: str,
                    weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sentence vectors ``sum_j l_j * E x_j`` (``l_j = 1`` for bag of words): words ``[..., L]``
    (long) -> ``[..., d]``. ``weights [..., L]`` multiplies each word's embedding (the spiking
    variant passes its word spikes ``z_j(t)``)."""
    e = embedding(words)                                                        # [..., L, d]
    if weights is not None:
        e = e * weights.unsqueeze(-1)
    if encoding == "position":
        e = e * position_encoding(words.shape[-1], e.shape[-1], e.device, e.dtype)
    return e.sum(-2)


def memory_hop(u: torch.Tensor, m: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One hop: ``p = softmax_i(u^T m_i)``, ``o = sum_i p_i c_i``; returns ``(u + o, p)``.
    u ``[B, d]``, m and c ``[B, S, d]`` -> ``[B, d]``, p ``[B, S]``."""
    p = torch.softmax(torch.einsum("bd,bsd->bs", u, m), dim=-1)
    return u + torch.einsum("bs,bsd->bd", p, c), p


def pack(story: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
    """``story [B, S, L]``, ``question [B, L]`` -> ``[B, S*L + L]`` (one tensor for a Block)."""
    if story.dim() != 3 or question.dim() != 2 or story.shape[0] != question.shape[0] \
            or story.shape[2] != question.shape[1]:
        raise ValueError(f"memnet.pack: need story [B, S, L] and question [B, L], got "
                         f"{list(story.shape)} and {list(question.shape)}")
    return torch.cat([story.reshape(story.shape[0], -1), question], dim=1)


def unpack(packed: torch.Tensor, cfg: MemNetConfig, where: str = "memnet") -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack`, checked: ``[B, S*L + L]`` (integer-valued, in ``[0, V)``) ->
    ``(story [B, S, L], question [B, L])`` as int64."""
    if packed.dim() != 2 or packed.shape[1] != cfg.packed_size:
        raise ValueError(f"{where}: packed input must be [batch, S*L + L = {cfg.packed_size}], "
                         f"got {list(packed.shape)}")
    idx = check_indices(packed, cfg, where)
    n = cfg.sentences * cfg.sentence_len
    return idx[:, :n].reshape(-1, cfg.sentences, cfg.sentence_len), idx[:, n:]


def check_indices(words: torch.Tensor, cfg: MemNetConfig, where: str) -> torch.Tensor:
    """Word indices as int64; raises unless every entry is an integer in ``[0, vocab_size)``."""
    if words.is_floating_point():
        if not torch.equal(words, words.round()):
            raise ValueError(f"{where}: word indices must be whole numbers, got non-integer values")
        words = words.long()
    elif words.dtype == torch.bool or words.is_complex():
        raise TypeError(f"{where}: word indices must be an integer tensor, got {words.dtype}")
    words = words.long()
    if words.numel() and (int(words.min()) < 0 or int(words.max()) >= cfg.vocab_size):
        raise ValueError(f"{where}: word indices must lie in [0, vocab_size={cfg.vocab_size}), got "
                         f"[{int(words.min())}, {int(words.max())}]")
    return words


class _Embeddings(nn.Module):
    """``E_1 .. E_{K+1}`` (adjacent tying, padding row 0 kept at zero), temporal vectors
    ``T_1 .. T_{K+1}`` ``[S, d]`` and the answer layer ``W``; shared by both variants."""

    def __init__(self, cfg: MemNetConfig):
        super().__init__()
        self.cfg = cfg
        self.tables = nn.ModuleList(nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=0)
                                    for _ in range(cfg.hops + 1))
        for table in self.tables:
            nn.init.normal_(table.weight, std=0.1)
            with torch.no_grad():
                table.weight[0].zero_()
        self.temporal = nn.Parameter(torch.zeros(cfg.hops + 1, cfg.sentences, cfg.embed_dim)) if cfg.temporal else None
        self.answer = nn.Linear(cfg.embed_dim, cfg.vocab_size, bias=False)

    def memories(self, story, weights=None) -> torch.Tensor:
        """``[B, K + 1, S, d]``: the story embedded with every ``E_k`` (+ ``T_k``)."""
        m = torch.stack([embed_sentences(t, story, self.cfg.encoding, weights) for t in self.tables], dim=1)
        return m + self.temporal if self.temporal is not None else m

    def question(self, question, weights=None) -> torch.Tensor:
        """``u = B q`` with ``B = E_1``: ``[B, d]``."""
        return embed_sentences(self.tables[0], question, self.cfg.encoding, weights)


def _hops(u: torch.Tensor, memories: torch.Tensor) -> torch.Tensor:
    """K hops over ``memories [B, K + 1, S, d]`` (``A^k = [:, k-1]``, ``C^k = [:, k]``)."""
    for k in range(memories.shape[1] - 1):
        u, _ = memory_hop(u, memories[:, k], memories[:, k + 1])
    return u


# ---------------------------------------------------------------------- conventional
class MemN2N(nn.Module):
    """The conventional end-to-end memory network (module docstring): ``forward(story, question)``
    -> answer logits ``[B, V]``; ``forward(packed)`` with one ``[B, S*L + L]`` tensor (for
    ``Block(..., mode="analog")``)."""

    def __init__(self, cfg: MemNetConfig):
        super().__init__()
        if not isinstance(cfg, MemNetConfig):
            raise TypeError(f"MemN2N: cfg must be a MemNetConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.embeddings = _Embeddings(cfg)

    def forward(self, story: torch.Tensor, question: Optional[torch.Tensor] = None) -> torch.Tensor:
        cfg = self.cfg
        if question is None:
            story, question = unpack(story, cfg, "MemN2N")
        else:
            if story.dim() != 3 or tuple(story.shape[1:]) != (cfg.sentences, cfg.sentence_len):
                raise ValueError(f"MemN2N: story must be [batch, S={cfg.sentences}, L={cfg.sentence_len}], "
                                 f"got {list(story.shape)}")
            if question.dim() != 2 or tuple(question.shape) != (story.shape[0], cfg.sentence_len):
                raise ValueError(f"MemN2N: question must be [batch={story.shape[0]}, L={cfg.sentence_len}], "
                                 f"got {list(question.shape)}")
            story, question = check_indices(story, cfg, "MemN2N story"), check_indices(question, cfg, "MemN2N question")
        u = _hops(self.embeddings.question(question), self.embeddings.memories(story))
        return self.embeddings.answer(u)


# ---------------------------------------------------------------------- spiking
class SpikingMemNetState(NamedTuple):
    """LIF states of the word encoder ``[B, S + 1, L]``, memory encoder ``[B, K + 1, S, d]`` and
    question encoder ``[B, d]``, and the readout's state ``[B, V]`` (LI or LIF)."""

    words: tuple
    memories: tuple
    question: tuple
    readout: tuple


class SpikingMemN2N(nn.Module):
    """Spiking encoders and readout around the memory hops (module docstring); stateful-module
    protocol: ``initial_state(batch, device, dtype)``, ``forward(x, state, dt) -> (y, state)``
    with ``x [B, S*L + L]`` packed word indices and ``y [B, V]`` the readout (LI membrane, or
    LIF spikes with ``readout="lif"``)."""

    def __init__(self, cfg: MemNetConfig):
        super().__init__()
        if not isinstance(cfg, MemNetConfig):
            raise TypeError(f"SpikingMemN2N: cfg must be a MemNetConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.embeddings = _Embeddings(cfg)
        lif = LIFParams(tau_mem=cfg.tau_mem, v_threshold=cfg.v_threshold, reset="subtract")
        self.word_encoder = Population("lif", (cfg.sentences + 1, cfg.sentence_len), lif)
        self.memory_encoder = Population("lif", (cfg.hops + 1, cfg.sentences, cfg.embed_dim), lif)
        self.question_encoder = Population("lif", cfg.embed_dim, lif)
        if cfg.readout == "li":
            self.readout = Population("li", cfg.vocab_size, LIParams(tau_mem=cfg.readout_tau))
        else:
            self.readout = Population("lif", cfg.vocab_size, LIFParams(tau_mem=cfg.readout_tau,
                                                                       v_threshold=cfg.v_threshold, reset="subtract"))

    def initial_state(self, batch_size: int, device=None, dtype=None) -> SpikingMemNetState:
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None or not dtype.is_floating_point else dtype
        return SpikingMemNetState(*(pop.initial_state(batch_size, device, dtype) for pop in
                                    (self.word_encoder, self.memory_encoder, self.question_encoder, self.readout)))

    def forward(self, x: torch.Tensor, state: Optional[SpikingMemNetState] = None,
                dt: float = 1e-3) -> Tuple[torch.Tensor, SpikingMemNetState]:
        cfg = self.cfg
        story, question = unpack(x, cfg, "SpikingMemN2N")
        if state is None:
            state = self.initial_state(x.shape[0], x.device, None)
        if not isinstance(state, SpikingMemNetState):
            raise TypeError(f"SpikingMemN2N: state must be a SpikingMemNetState, got {type(state).__name__}")
        dtype = state.readout.v.dtype
        words = torch.cat([story, question.unsqueeze(1)], dim=1)                     # [B, S + 1, L]
        z, words_state = self.word_encoder.step(cfg.drive * cfg.v_threshold * (words != 0).to(dtype),
                                                state.words, dt)
        m_current = cfg.gain * self.embeddings.memories(story, z[:, :-1])           # [B, K + 1, S, d]
        u_current = cfg.gain * self.embeddings.question(question, z[:, -1])         # [B, d]
        m_spikes, memories_state = self.memory_encoder.step(m_current, state.memories, dt)
        u_spikes, question_state = self.question_encoder.step(u_current, state.question, dt)
        u = _hops(u_spikes, m_spikes)
        y, readout_state = self.readout.step(self.embeddings.answer(u), state.readout, dt)
        return y, SpikingMemNetState(words_state, memories_state, question_state, readout_state)

    def run(self, story: torch.Tensor, question: torch.Tensor, steps: int, dt: float = 1e-3) -> torch.Tensor:
        """Present the story and question for ``steps`` steps: ``[steps, B, V]`` readouts."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"SpikingMemN2N.run: steps must be an int >= 1, got {steps!r}")
        x = pack(story, question).to(next(self.parameters()).dtype)
        state, ys = None, []
        for _ in range(steps):
            y, state = self(x, state, dt)
            ys.append(y)
        return torch.stack(ys)
