"""Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401), conventional and spiking.

A controller reads an input ``x_t`` and the previous read vectors, and emits the parameters of
read and write heads over a memory matrix ``M [batch, N, W]`` (N slots of width W). Every head
addresses the memory the same way (paper section 3.3, eqs. 5-9)::

    content   w^c_i = softmax_i(beta K(k, M_i)),   K(u, v) = u.v / (|u| |v|)   (cosine)
    gate      w^g   = g w^c + (1 - g) w_{t-1}
    shift     w~_i  = sum_j w^g_j s_{(i - j) mod N},   s over shifts -R..R    (circular convolution)
    sharpen   w_i   = w~_i^gamma / sum_j w~_j^gamma

with ``beta = softplus(.) >= 0``, ``g = sigmoid(.)``, ``s = softmax(.)`` over the ``2R + 1`` shifts
and ``gamma = 1 + softplus(.) >= 1``. A write head also emits an erase vector ``e = sigmoid(.)`` and
an add vector ``a = tanh(.)`` (eqs. 3-4); a read head returns ``r = sum_i w_i M_i`` (eq. 2)::

    M_t(i) = M_{t-1}(i) (1 - w_i e) + w_i a

Order within a step (one choice the paper leaves open, written down here): the controller runs on
``[x_t, r_{t-1}]``; the write heads address ``M_{t-1}`` and write, one after the other, giving
``M_t``; the read heads address ``M_t`` and read ``r_t``; the output is
``y_t = W_y [h_t, r_t] + b_y``. Memory starts at the constant ``1e-6`` (Collier & Beel 2018 found
constant initialisation the most reliable), head weightings at slot 0, read vectors at zero.

Two controllers drive the same :class:`NTMMemory` (heads and memory, one class):

* ``controller="lstm"``: ``torch.nn.LSTMCell(input + reads, hidden)``, ``h_t`` its hidden state;
* ``controller="lif"``: a recurrent LIF :class:`~neurosim.Population` of ``hidden`` neurons,
  ``I_t = W_in [x_t, r_{t-1}] + W_rec s_{t-1}``, spikes ``s_t`` and membrane ``v_t`` of
  neurosim's LIF step (surrogate gradient); the heads and the output read ``h_t = [s_t, v_t]``
  (spikes and the membrane after reset), so the same differentiable memory is driven by a
  spiking network.

The whole state is explicit (:class:`NTMState`) and the module follows the stateful-module
protocol of :class:`~neurosim.plugins.Block`: ``ntm(x, state, dt) -> (y, new_state)``, one call
per time step, so ``Block(NTM(cfg), cfg.input_size, cfg.output_size, mode="hybrid")`` runs it
inside a simulation graph. ``dt`` [s] matters only to the LIF controller.

Shapes: ``x [batch, input_size] -> y [batch, output_size]`` per step; ``NTM.run`` maps
``[T, batch, input_size] -> [T, batch, output_size]``.

Example::

    >>> cfg = NTMConfig(input_size=6, output_size=4, memory_slots=8, memory_width=6, hidden=32)
    >>> ntm = NTM(cfg)
    >>> y = ntm.run(torch.rand(9, 2, 6))                     # [9, 2, 4] logits
    >>> g = Graph.sequential(6, ("ntm", Block(ntm, 6, 4, mode="hybrid")))
    >>> out = Simulator(g, dt=1e-3).run(torch.rand(9, 2, 6)).output   # the same values
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.neurons.lif import LIFParams
from neurosim.population import Population

__all__ = ["NTMConfig", "NTMState", "NTMMemory", "NTM", "content_weights", "interpolate",
           "circular_shift", "sharpen", "address", "erase_add", "read_memory", "CONTROLLERS"]

CONTROLLERS = ("lstm", "lif")
MEMORY_INIT = 1e-6


@dataclass(frozen=True)
class NTMConfig:
    """Sizes of an NTM. ``memory_slots`` N and ``memory_width`` W of ``M [batch, N, W]``;
    ``hidden``: controller size (LSTM units or LIF neurons); ``shift_range`` R: shifts -R..R;
    ``controller``: ``"lstm"`` or ``"lif"``; ``tau_mem`` [s], ``v_threshold`` [V]: the LIF
    controller's neurons (reset by subtraction)."""

    input_size: int
    output_size: int
    memory_slots: int = 16
    memory_width: int = 8
    hidden: int = 64
    read_heads: int = 1
    write_heads: int = 1
    shift_range: int = 1
    controller: str = "lstm"
    tau_mem: float = 5e-3
    v_threshold: float = 1.0

    def __post_init__(self):
        for name in ("input_size", "output_size", "memory_slots", "memory_width", "hidden", "read_heads",
                     "write_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NTMConfig.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.shift_range, bool) or not isinstance(self.shift_range, int) or self.shift_range < 0:
            raise ValueError(f"NTMConfig.shift_range must be an int >= 0, got {self.shift_range!r}")
        if 2 * self.shift_range + 1 > self.memory_slots:
            raise ValueError(f"NTMConfig.shift_range: 2 R + 1 = {2 * self.shift_range + 1} shifts exceed "
                             f"memory_slots = {self.memory_slots}")
        if self.controller not in CONTROLLERS:
            raise ValueError(f"NTMConfig.controller must be one of {list(CONTROLLERS)}, got {self.controller!r}")
        if not self.tau_mem > 0 or not self.v_threshold > 0:
            raise ValueError(f"NTMConfig.tau_mem and v_threshold must be > 0, got {self.tau_mem!r}, "
                             f"{self.v_threshold!r}")


class NTMState(NamedTuple):
    """memory ``[batch, N, W]``; read_weights ``[batch, read_heads, N]``; write_weights
    ``[batch, write_heads, N]``; reads ``[batch, read_heads * W]`` (``r_{t-1}``); controller: the
    LSTM's ``(h, c)`` ``[batch, hidden]`` each, or the LIF population's state and its last spikes
    ``(LIFState, s [batch, hidden])``."""

    memory: torch.Tensor
    read_weights: torch.Tensor
    write_weights: torch.Tensor
    reads: torch.Tensor
    controller: tuple


# ---------------------------------------------------------------------- addressing (pure functions)
def content_weights(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``w^c_i = softmax_i(beta cos(k, M_i))`` (eq. 5-6). memory ``[B, N, W]``, key ``[B, H, W]``,
    beta ``[B, H]`` (>= 0) -> ``[B, H, N]``."""
    similarity = F.cosine_similarity(memory.unsqueeze(1), key.unsqueeze(2), dim=-1, eps=eps)   # [B, H, N]
    return torch.softmax(beta.unsqueeze(-1) * similarity, dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``w^g = g w^c + (1 - g) w_{t-1}`` (eq. 7). weights ``[B, H, N]``, gate ``[B, H]`` in [0, 1]."""
    g = gate.unsqueeze(-1)
    return g * w_content + (1 - g) * w_prev


def circular_shift(w: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``w~_i = sum_j w_j s_{(i - j) mod N}`` (eq. 8): circular convolution with the shift weighting
    ``shift [B, H, 2R + 1]`` over offsets ``-R..R`` (entry ``R + k`` weighs a move by ``+k`` slots).
    w ``[B, H, N]`` -> ``[B, H, N]``."""
    radius = (shift.shape[-1] - 1) // 2
    if shift.shape[-1] != 2 * radius + 1 or shift.shape[-1] > w.shape[-1]:
        raise ValueError(f"ntm.circular_shift: shift weighting must have 2R + 1 <= N entries, got "
                         f"{shift.shape[-1]} for N = {w.shape[-1]}")
    rolled = torch.stack([torch.roll(w, k, dims=-1) for k in range(-radius, radius + 1)], dim=-1)  # [B, H, N, 2R+1]
    return (rolled * shift.unsqueeze(-2)).sum(-1)


def sharpen(w: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``w_i = w~_i^gamma / sum_j w~_j^gamma`` (eq. 9). w ``[B, H, N]``, gamma ``[B, H]`` (>= 1)."""
    powered = (w + eps) ** gamma.unsqueeze(-1)
    return powered / powered.sum(-1, keepdim=True)


def address(memory, w_prev, key, beta, gate, shift, gamma) -> torch.Tensor:
    """The whole addressing chain: content -> interpolation -> shift -> sharpening; ``[B, H, N]``."""
    return sharpen(circular_shift(interpolate(content_weights(memory, key, beta), w_prev, gate), shift), gamma)


def erase_add(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """``M(i) <- M(i) (1 - w_i e) + w_i a`` (eqs. 3-4), for one head: memory ``[B, N, W]``,
    w ``[B, N]``, erase ``[B, W]`` in [0, 1], add ``[B, W]``."""
    w = w.unsqueeze(-1)
    return memory * (1 - w * erase.unsqueeze(1)) + w * add.unsqueeze(1)


def read_memory(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``r = sum_i w_i M(i)`` (eq. 2): memory ``[B, N, W]``, w ``[B, H, N]`` -> ``[B, H, W]``."""
    return torch.bmm(w, memory)


# ---------------------------------------------------------------------- heads + memory
class NTMMemory(nn.Module):
    """Read and write heads over the memory, driven by controller features ``h [B, features]``.

    One linear layer maps ``h`` to every head's raw parameters: per head ``k`` (W), ``beta`` (1),
    ``g`` (1), ``s`` (2R + 1), ``gamma`` (1), plus ``e`` and ``a`` (W each) for a write head.
    ``forward(h, memory, read_w, write_w) -> (reads [B, Hr * W], memory, read_w, write_w)``."""

    def __init__(self, cfg: NTMConfig, features: int):
        super().__init__()
        self.cfg = cfg
        width, shifts = cfg.memory_width, 2 * cfg.shift_range + 1
        self.address_size = width + 3 + shifts
        self.write_size = self.address_size + 2 * width
        self.heads = nn.Linear(features, cfg.read_heads * self.address_size + cfg.write_heads * self.write_size)

    def _split(self, raw: torch.Tensor):
        """raw ``[B, H, address_size]`` -> activated key, beta, g, s, gamma."""
        width = self.cfg.memory_width
        key = raw[..., :width]
        beta = F.softplus(raw[..., width])
        gate = torch.sigmoid(raw[..., width + 1])
        gamma = 1 + F.softplus(raw[..., width + 2])
        shift = torch.softmax(raw[..., width + 3:self.address_size], dim=-1)
        return key, beta, gate, shift, gamma

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """Memory at 1e-6, every weighting on slot 0: ``(memory, read_w, write_w)``."""
        cfg = self.cfg
        memory = torch.full((batch_size, cfg.memory_slots, cfg.memory_width), MEMORY_INIT, device=device, dtype=dtype)
        slot0 = torch.zeros(cfg.memory_slots, device=device, dtype=dtype)
        slot0[0] = 1
        return (memory, slot0.expand(batch_size, cfg.read_heads, -1).clone(),
                slot0.expand(batch_size, cfg.write_heads, -1).clone())

    def forward(self, h, memory, read_w, write_w):
        cfg = self.cfg
        raw = self.heads(h)
        batch = h.shape[0]
        n_read = cfg.read_heads * self.address_size
        read_raw = raw[:, :n_read].reshape(batch, cfg.read_heads, self.address_size)
        write_raw = raw[:, n_read:].reshape(batch, cfg.write_heads, self.write_size)
        key, beta, gate, shift, gamma = self._split(write_raw[..., :self.address_size])
        new_write_w = []
        for head in range(cfg.write_heads):
            sl = slice(head, head + 1)
            w = address(memory, write_w[:, sl], key[:, sl], beta[:, sl], gate[:, sl], shift[:, sl], gamma[:, sl])
            erase = torch.sigmoid(write_raw[:, head, self.address_size:self.address_size + cfg.memory_width])
            add = torch.tanh(write_raw[:, head, self.address_size + cfg.memory_width:])
            memory = erase_add(memory, w[:, 0], erase, add)
            new_write_w.append(w)
        write_w = torch.cat(new_write_w, dim=1)
        read_w = address(memory, read_w, *self._split(read_raw))
        reads = read_memory(memory, read_w).reshape(batch, cfg.read_heads * cfg.memory_width)
        return reads, memory, read_w, write_w


# ---------------------------------------------------------------------- the machine
class NTM(nn.Module):
    """A Neural Turing Machine with an LSTM or a recurrent LIF controller (``cfg.controller``);
    see the module docstring for the equations. Stateful-module protocol:
    ``initial_state(batch, device, dtype) -> NTMState`` and ``forward(x, state, dt) -> (y, state)``."""

    def __init__(self, cfg: NTMConfig):
        super().__init__()
        if not isinstance(cfg, NTMConfig):
            raise TypeError(f"NTM: cfg must be an NTMConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        controller_in = cfg.input_size + cfg.read_heads * cfg.memory_width
        if cfg.controller == "lstm":
            self.lstm = nn.LSTMCell(controller_in, cfg.hidden)
            features = cfg.hidden
        else:
            self.lif = Population("lif", cfg.hidden, LIFParams(tau_mem=cfg.tau_mem, v_threshold=cfg.v_threshold,
                                                               reset="subtract"))
            self.w_in = nn.Linear(controller_in, cfg.hidden)
            self.w_rec = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
            with torch.no_grad():      # currents of a few thresholds: the membrane reaches ~(1 - a) r I
                self.w_in.weight.mul_(8.0)
                self.w_in.bias.fill_(1.0)
                self.w_rec.weight.mul_(2.0)
            features = 2 * cfg.hidden
        self.memory = NTMMemory(cfg, features)
        self.out = nn.Linear(features + cfg.read_heads * cfg.memory_width, cfg.output_size)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> NTMState:
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None or not dtype.is_floating_point else dtype
        memory, read_w, write_w = self.memory.initial_state(batch_size, device, dtype)
        reads = torch.zeros(batch_size, self.cfg.read_heads * self.cfg.memory_width, device=device, dtype=dtype)
        zeros = torch.zeros(batch_size, self.cfg.hidden, device=device, dtype=dtype)
        if self.cfg.controller == "lstm":
            controller = (zeros, zeros.clone())
        else:
            controller = (self.lif.initial_state(batch_size, device, dtype), zeros)
        return NTMState(memory, read_w, write_w, reads, controller)

    def _check(self, x, state) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.cfg.input_size:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"NTM: input must be [batch, input_size={self.cfg.input_size}], got {got}")
        if not isinstance(state, NTMState):
            raise TypeError(f"NTM: state must be an NTMState (from initial_state), got {type(state).__name__}")
        want = (x.shape[0], self.cfg.memory_slots, self.cfg.memory_width)
        if tuple(state.memory.shape) != want:
            raise ValueError(f"NTM: state.memory must be [batch, N, W] = {list(want)}, got {list(state.memory.shape)}")

    def controller_step(self, x, state: NTMState, dt: float):
        """The controller on ``[x_t, r_{t-1}]``: ``(features h_t, new controller state)``."""
        inp = torch.cat([x, state.reads], dim=-1)
        if self.cfg.controller == "lstm":
            h, c = self.lstm(inp, state.controller)
            return h, (h, c)
        lif_state, spikes_prev = state.controller
        current = self.w_in(inp) + self.w_rec(spikes_prev)
        spikes, lif_state = self.lif.step(current, lif_state, dt)
        return torch.cat([spikes, lif_state.v], dim=-1), (lif_state, spikes)

    def forward(self, x: torch.Tensor, state: Optional[NTMState] = None,
                dt: float = 1e-3) -> Tuple[torch.Tensor, NTMState]:
        """One time step: ``x [batch, input_size]`` -> ``(y [batch, output_size], new NTMState)``."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        self._check(x, state)
        h, controller = self.controller_step(x, state, dt)
        reads, memory, read_w, write_w = self.memory(h, state.memory, state.read_weights, state.write_weights)
        y = self.out(torch.cat([h, reads], dim=-1))
        return y, NTMState(memory, read_w, write_w, reads, controller)

    def run(self, x_seq: torch.Tensor, state: Optional[NTMState] = None, dt: float = 1e-3):
        """``[T, batch, input_size] -> [T, batch, output_size]`` by stepping (the final state is
        dropped; use :meth:`forward` to keep it)."""
        if not isinstance(x_seq, torch.Tensor) or x_seq.dim() != 3:
            got = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
            raise ValueError(f"NTM.run: input must be [T, batch, input_size], got {got}")
        ys = []
        for x in x_seq:
            y, state = self(x, state, dt)
            ys.append(y)
        return torch.stack(ys)

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.cfg, f.name)!r}" for f in dataclasses.fields(self.cfg))
