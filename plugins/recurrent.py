"""Recurrent baselines: torch's LSTM and GRU, and their spiking partner, a recurrent LIF network.

Conventional reference (torch's own layers, PyTorch's equations). LSTM (Hochreiter &
Schmidhuber 1997, with the forget gate of Gers, Schmidhuber & Cummins 2000), per layer::

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        f_t = sigma(W_if x_t + ... )
    g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)        o_t = sigma(W_io x_t + ... )
    c_t = f_t * c_{t-1} + i_t * g_t                           h_t = o_t * tanh(c_t)

GRU (Cho et al. 2014)::

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        z_t = sigma(W_iz x_t + ... )
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Layer ``l > 0`` reads ``h_t`` of layer ``l - 1``; a linear readout gives per-step logits
``y_t = W_y h_t^{(L)} + b_y``. Two forms with the same parameters:

* :class:`RecurrentClassifier`: ``nn.LSTM`` / ``nn.GRU`` over the whole sequence (cuDNN on GPU),
  ``[T, batch, input] -> [T, batch, output]``; for a plain training loop.
* :class:`RecurrentCell`: one ``nn.LSTMCell`` / ``nn.GRUCell`` per layer, one call per time step,
  its state explicit (:class:`LSTMState` ``(h, c)`` or :class:`GRUState` ``h``, ``[batch, layers,
  hidden]`` each). It follows :class:`~neurosim.plugins.Block`'s stateful-module protocol
  (``cell(x, state, dt) -> (y, new_state)``), so ``Block(cell, input, output, mode="hybrid")``
  (:func:`recurrent_block`) runs it inside a simulation graph next to spiking populations, and
  BPTT / truncated BPTT go through the Simulator like for any other node.
  ``RecurrentCell(config, share=classifier)`` uses the classifier's very Parameters (no copy), so
  both forms give the same outputs (tested against ``nn.LSTM`` / ``nn.GRU``).

Spiking partner (:func:`recurrent_lif`): a recurrent network of LIF neurons made of engine
nodes, trained by BPTT with surrogate gradients (Neftci, Mostafa & Zenke 2019; the recurrent
SNN baseline of Bellec et al. 2018 without adaptation). Per layer ``l`` (``s^{(0)} = x``)::

    I_t^{(l)} = W_in^{(l)} s_t^{(l-1)} + W_rec^{(l)} s_{t-1}^{(l)}       (Dense, and Dense on a back-edge)
    v_t^{(l)}, s_t^{(l)} = LIF(v_{t-1}^{(l)}, I_t^{(l)})                  (tau_mem, v_threshold, reset)
    u_t = LI(u_{t-1}, W_out s_t^{(L)})                                    (leaky-integrator readout, tau_readout)

with neurosim's LIF discretisation (``v_t = a v_{t-1} + (1 - a) r I_t``, ``a = exp(-dt/tau_mem)``,
spike ``s_t = H(v_t - v_threshold)``, see ``neurosim/neurons/lif.py``). The readout membrane
``u [T, batch, output]`` (volts) is the network's output; classify with
:func:`neurosim.training.membrane_cross_entropy`.

Shapes: inputs time first ``[T, batch, input_size]``; outputs ``[T, batch, output_size]``.

Example::

    >>> cfg = RecurrentConfig(input_size=4, hidden_size=32, output_size=2, cell="gru")
    >>> clf = RecurrentClassifier(cfg)
    >>> logits, hx = clf(torch.rand(20, 8, 4))                         # [20, 8, 2]
    >>> g = Graph.sequential(4, ("rnn", recurrent_block(cfg, share=clf)))
    >>> same = Simulator(g).run(torch.rand(20, 8, 4)).output           # the same model, stepped
    >>> snn = Simulator(recurrent_lif(cfg, seed=0), dt=1e-3)
    >>> u = snn.run((torch.rand(20, 8, 4) < 0.2).float()).output      # readout membrane [20, 8, 2]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import nn

from neurosim.graph import Graph
from neurosim.neurons.li import LIParams
from neurosim.neurons.lif import LIFParams
from neurosim.population import Population
from neurosim.projections import Dense

from .block import Block

__all__ = ["RecurrentConfig", "RecurrentClassifier", "RecurrentCell", "LSTMState", "GRUState",
           "recurrent_block", "recurrent_lif", "CELLS"]

CELLS = ("lstm", "gru")
_SEQUENCE = {"lstm": nn.LSTM, "gru": nn.GRU}
_STEP = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}


def _positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RecurrentConfig.{name} must be an int >= 1, got {value!r}")


def _positive_number(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"RecurrentConfig.{name} must be a number > 0, got {value!r}")


@dataclass(frozen=True)
class RecurrentConfig:
    """Sizes of a recurrent classifier and its spiking partner.

    ``input_size``, ``hidden_size``, ``output_size`` (classes), ``num_layers``; ``cell``:
    ``"lstm"`` or ``"gru"`` (conventional form); ``bias``: biases in the gates and the readout.
    Spiking partner: ``tau_mem`` [s] and ``v_threshold`` [V] of the LIF neurons, ``reset``
    (a LIF reset mode), ``tau_readout`` [s] of the LI readout; its weights are drawn
    ``N(0, scale^2 / fan_in)`` with ``input_scale`` (feed-forward), ``recurrent_scale``
    (back-edges) and ``output_scale`` (readout): weights are volts at steady state, so these set
    how hard the inputs drive the neurons towards threshold."""

    input_size: int
    hidden_size: int = 32
    output_size: int = 2
    num_layers: int = 1
    cell: str = "lstm"
    bias: bool = True
    tau_mem: float = 20e-3
    v_threshold: float = 1.0
    reset: str = "subtract"
    tau_readout: float = 20e-3
    input_scale: float = 10.0
    recurrent_scale: float = 1.0
    output_scale: float = 1.0

    def __post_init__(self):
        for name in ("input_size", "hidden_size", "output_size", "num_layers"):
            _positive_int(getattr(self, name), name)
        if self.cell not in CELLS:
            raise ValueError(f"RecurrentConfig.cell must be one of {list(CELLS)}, got {self.cell!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"RecurrentConfig.bias must be a bool, got {self.bias!r}")
        for name in ("tau_mem", "v_threshold", "tau_readout", "input_scale", "output_scale"):
            _positive_number(getattr(self, name), name)
        if isinstance(self.recurrent_scale, bool) or not isinstance(self.recurrent_scale, (int, float)) \
                or self.recurrent_scale < 0:
            raise ValueError(f"RecurrentConfig.recurrent_scale must be a number >= 0, got {self.recurrent_scale!r}")
        LIFParams(tau_mem=self.tau_mem, v_threshold=self.v_threshold, reset=self.reset)   # checks reset


def _check_config(config, where: str) -> RecurrentConfig:
    if not isinstance(config, RecurrentConfig):
        raise TypeError(f"{where}: config must be a RecurrentConfig, got {type(config).__name__}")
    return config


class RecurrentClassifier(nn.Module):
    """``nn.LSTM`` / ``nn.GRU`` (``config.cell``) over the whole sequence and a linear readout.

    ``forward(x, hx=None) -> (logits, hx)``: ``x [T, batch, input_size]``, ``logits [T, batch,
    output_size]`` (one per step; take ``logits[-1]`` to classify a sequence), ``hx`` torch's
    state (``(h, c)``, ``[layers, batch, hidden]`` each, for the LSTM; ``h`` for the GRU), to carry
    over chunks of a long sequence (detach it for truncated BPTT)."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = _check_config(config, "RecurrentClassifier")
        self.rnn = _SEQUENCE[config.cell](config.input_size, config.hidden_size, config.num_layers,
                                          bias=config.bias)
        self.readout = nn.Linear(config.hidden_size, config.output_size, bias=config.bias)

    def forward(self, x: torch.Tensor, hx=None):
        if x.dim() != 3 or x.shape[-1] != self.config.input_size:
            raise ValueError(f"RecurrentClassifier: x must be [T, batch, input_size={self.config.input_size}], "
                             f"got {tuple(x.shape)}")
        h, hx = self.rnn(x, hx)
        return self.readout(h), hx


class LSTMState(NamedTuple):
    """State of a :class:`RecurrentCell` with LSTM cells: hidden ``h`` and cell ``c``,
    ``[batch, layers, hidden]`` each (``h[:, l]`` is ``h_{t}`` of layer ``l``)."""

    h: torch.Tensor
    c: torch.Tensor


class GRUState(NamedTuple):
    """State of a :class:`RecurrentCell` with GRU cells: hidden ``h [batch, layers, hidden]``."""

    h: torch.Tensor


def _share_recurrent(cells: nn.ModuleList, rnn: nn.Module, config: RecurrentConfig) -> None:
    """Make cell ``l`` use the Parameters of layer ``l`` of ``rnn`` (``weight_ih_l{l}`` ...)."""
    kind = _SEQUENCE[config.cell]
    if not isinstance(rnn, kind):
        raise TypeError(f"RecurrentCell: share must be a RecurrentClassifier or an nn.{kind.__name__} "
                        f"(config.cell={config.cell!r}), got {type(rnn).__name__}")
    want = (config.input_size, config.hidden_size, config.num_layers, config.bias)
    got = (rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias)
    if got != want or rnn.batch_first or rnn.bidirectional or getattr(rnn, "proj_size", 0):
        raise ValueError(f"RecurrentCell: share (input, hidden, layers, bias) = {got} (batch_first="
                         f"{rnn.batch_first}, bidirectional={rnn.bidirectional}) does not match the config "
                         f"{want} (time first, one direction, no projection)")
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if config.bias else ())
    for layer, cell in enumerate(cells):
        for name in names:
            setattr(cell, name, getattr(rnn, f"{name}_l{layer}"))


class RecurrentCell(nn.Module):
    """One time step of a stack of ``nn.LSTMCell`` / ``nn.GRUCell``, state explicit.

    ``forward(x, state, dt) -> (y, new_state)`` with ``x [batch, input_size]``; ``y`` the logits
    ``W_y h_t^{(L)} + b_y [batch, output_size]`` when ``readout`` (default), else the top layer's
    hidden state ``h_t^{(L)} [batch, hidden_size]``; the state an :class:`LSTMState` or
    :class:`GRUState` (``[batch, layers, hidden]``). ``dt`` is ignored (the cell has no time
    constant: one call is one sequence element). Running it over ``x [T, ...]`` from
    :meth:`initial_state` gives what ``nn.LSTM`` / ``nn.GRU`` give with the same weights.

    ``share``: a :class:`RecurrentClassifier` (its recurrent and readout Parameters are used, not
    copied) or an ``nn.LSTM`` / ``nn.GRU`` matching the config (its recurrent Parameters)."""

    def __init__(self, config: RecurrentConfig, readout: bool = True, share: Optional[nn.Module] = None):
        super().__init__()
        self.config = _check_config(config, "RecurrentCell")
        step = _STEP[config.cell]
        sizes = [config.input_size] + [config.hidden_size] * (config.num_layers - 1)
        self.cells = nn.ModuleList(step(n, config.hidden_size, bias=config.bias) for n in sizes)
        self.readout = nn.Linear(config.hidden_size, config.output_size, bias=config.bias) if readout else None
        if isinstance(share, RecurrentClassifier):
            _share_recurrent(self.cells, share.rnn, config)
            if readout:
                if share.config.output_size != config.output_size:
                    raise ValueError(f"RecurrentCell: share has output_size {share.config.output_size}, "
                                     f"the config {config.output_size}")
                self.readout = share.readout
        elif share is not None:
            _share_recurrent(self.cells, share, config)

    @property
    def out_size(self) -> int:
        return self.config.output_size if self.readout is not None else self.config.hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """Zeros ``[batch, layers, hidden]`` (``h``, and ``c`` for the LSTM), torch's default
        ``hx``; ``dtype`` defaults to the parameters' dtype, ``device`` to theirs."""
        p = self.cells[0].weight_ih
        dtype = dtype if dtype is not None and dtype.is_floating_point else p.dtype
        device = p.device if device is None else device
        shape = (batch_size, self.config.num_layers, self.config.hidden_size)
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone()) if self.config.cell == "lstm" else GRUState(zeros)

    def forward(self, x: torch.Tensor, state, dt: float = 1e-3):
        if x.dim() != 2 or x.shape[1] != self.config.input_size:
            raise ValueError(f"RecurrentCell: x must be [batch, input_size={self.config.input_size}], "
                             f"got {tuple(x.shape)}")
        lstm = self.config.cell == "lstm"
        kind = LSTMState if lstm else GRUState
        if not isinstance(state, kind):
            raise TypeError(f"RecurrentCell: state must be a {kind.__name__} (from initial_state), "
                            f"got {type(state).__name__}")
        hs, cs, inp = [], [], x
        for layer, cell in enumerate(self.cells):
            if lstm:
                h, c = cell(inp, (state.h[:, layer], state.c[:, layer]))
                cs.append(c)
            else:
                h = cell(inp, state.h[:, layer])
            hs.append(h)
            inp = h
        new = LSTMState(torch.stack(hs, 1), torch.stack(cs, 1)) if lstm else GRUState(torch.stack(hs, 1))
        y = self.readout(inp) if self.readout is not None else inp
        return y, new

    def run(self, x: torch.Tensor, state=None):
        """Step over ``x [T, batch, input_size]``: ``(y [T, batch, out], final state)``."""
        if x.dim() != 3:
            raise ValueError(f"RecurrentCell.run: x must be [T, batch, input_size], got {tuple(x.shape)}")
        state = self.initial_state(x.shape[1], x.device, x.dtype) if state is None else state
        ys = []
        for x_t in x:
            y, state = self(x_t, state)
            ys.append(y)
        return torch.stack(ys), state


def recurrent_block(config: RecurrentConfig, readout: bool = True, share: Optional[nn.Module] = None) -> Block:
    """A :class:`RecurrentCell` in a ``Block(mode="hybrid")``: ``input_size -> output_size``
    (``hidden_size`` without readout), stepped once per time step by the Simulator with its
    ``(h, c)`` in the block's state."""
    cell = RecurrentCell(config, readout=readout, share=share)
    return Block(cell, config.input_size, cell.out_size, mode="hybrid")


def _normal(out: int, fan_in: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(out, fan_in, generator=generator) * (scale / fan_in ** 0.5)


def recurrent_lif(config: RecurrentConfig, seed: Optional[int] = 0) -> Graph:
    """The spiking partner: a Graph of ``num_layers`` recurrent LIF layers and an LI readout.

    Nodes (input ``"input"`` of ``input_size``), for layer ``l = 1..L``: ``"fc{l}"`` (Dense into
    the layer), ``"lif{l}"`` (LIF Population of ``hidden_size``), ``"rec{l}"`` (Dense
    ``hidden -> hidden`` fed by a back-edge from ``"lif{l}"``, so it reads the spikes of step
    ``t - 1``, into ``"lif{l}"``); then ``"fc_out"`` and ``"readout"`` (LI Population of
    ``output_size``, the graph's output: membrane ``[T, batch, output_size]`` in volts). Weights:
    ``N(0, scale^2 / fan_in)`` drawn from a generator seeded by ``seed`` (torch's global RNG
    when None), no biases. See the module docstring for the equations."""
    config = _check_config(config, "recurrent_lif")
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    lif = LIFParams(tau_mem=config.tau_mem, v_threshold=config.v_threshold, reset=config.reset)
    g = Graph().add_input("input", config.input_size)
    source, fan_in = "input", config.input_size
    for layer in range(1, config.num_layers + 1):
        fc, pop, rec = f"fc{layer}", f"lif{layer}", f"rec{layer}"
        g.add(fc, Dense(fan_in, config.hidden_size,
                        weight=_normal(config.hidden_size, fan_in, config.input_scale, gen)))
        g.add(pop, Population("lif", config.hidden_size, lif))
        g.add(rec, Dense(config.hidden_size, config.hidden_size,
                         weight=_normal(config.hidden_size, config.hidden_size, config.recurrent_scale, gen)))
        g.chain(source, fc, pop)
        g.connect(pop, rec, back=True).connect(rec, pop)
        source, fan_in = pop, config.hidden_size
    g.add("fc_out", Dense(fan_in, config.output_size,
                          weight=_normal(config.output_size, fan_in, config.output_scale, gen)))
    g.add("readout", Population("li", config.output_size, LIParams(tau_mem=config.tau_readout)))
    g.chain(source, "fc_out", "readout")
    return g
