"""Convolutional networks: a conventional ReLU CNN and its spiking variant with LIF populations.

Both follow the usual SNN-course layout (e.g. Fang et al. 2021, "Incorporating learnable membrane
time constant to enhance learning of spiking neural networks": conv -> spiking neurons -> pool,
then a dense classifier), sized by one :class:`CNNConfig`. Block ``i`` (``i = 0 .. L-1``, channels
``C_i = config.channels[i]``, kernel ``k``, zero padding ``k // 2`` so the size is kept, pooling
kernel and stride ``p``)::

    conventional:  h_i = pool_p(ReLU(conv_k(h_{i-1}) + b_i)),   y = W_fc flatten(h_{L-1}) + b_fc
    spiking:       I_i[t] = conv_k(s_{i-1}[t]) + b_i              (engine Conv2d, bias per step)
                   s_i[t] = LIF(I_i[t]);  s~_i[t] = pool_p(s_i[t])  (engine LIF Population, pool)
                   v_out[t] = LI(W_fc flatten(s~_{L-1}[t]) + b_fc)  (or LIF spikes: readout="lif")

with the LIF step of :mod:`neurosim.neurons.lif` (``v[t] = a v[t-1] + (1 - a) r I[t]``,
``a = exp(-dt / tau_mem)``, ``r = 1 / (1 - a)`` at the ``dt`` given to :func:`spiking_cnn`, so
one step adds ``I[t]`` at rest as in the usual discrete ``v = beta v + I``; threshold, reset by
subtraction or to zero) and surrogate gradients in the backward pass, so the graph trains by
BPTT through ``Simulator.run``. ``s_{-1}[t]`` is the input at step t (spikes, or a constant
current from ``neurosim.direct_encode``). Average pooling of spikes gives graded values in
``[0, 1]``; max pooling (``pooling="max"``) keeps binary spikes.

``ConventionalCNN`` is an ``nn.Sequential``, so with ``pooling="avg"`` it converts directly with
:func:`neurosim.plugins.convert.convert` (the third route to a spiking CNN).

Shapes: input ``[batch, C, H, W]`` (``config.in_shape = (C, H, W)``) -> ``[batch, num_classes]``
per step; the spiking graph runs ``[T, batch, C, H, W] -> [T, batch, num_classes]``. After block
``i`` the size is ``H_i = floor(H_{i-1} / p)`` (likewise ``W``).

Example::

    >>> cfg = CNNConfig(in_shape=(1, 8, 8), channels=(8, 16), num_classes=10)
    >>> logits = ConventionalCNN(cfg)(torch.rand(4, 1, 8, 8))                    # [4, 10]
    >>> sim = Simulator(spiking_cnn(cfg, dt=1e-3), dt=1e-3)
    >>> v = sim.run(direct_encode(torch.rand(4, 1, 8, 8), steps=16)).output     # [16, 4, 10]
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

import neurosim as ns

__all__ = ["CNNConfig", "ConventionalCNN", "spiking_cnn", "copy_cnn_weights", "POOLINGS", "READOUTS"]

POOLINGS = ("avg", "max")
READOUTS = ("li", "lif")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"CNNConfig.{name} must be an int >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class CNNConfig:
    """Sizes of both CNN variants.

    ``in_shape``: ``(C, H, W)`` of one sample; ``channels``: output channels of each conv block;
    ``kernel_size``: square kernel (odd, padding ``k // 2``); ``pool``: pooling kernel and stride
    after each block (1: none); ``pooling``: ``"avg"`` or ``"max"``; ``num_classes``: outputs;
    ``bias``: conv and linear biases. Spiking variant only: ``tau_mem`` [s], ``v_threshold``,
    ``reset`` (``"subtract"`` or ``"zero"``) of the LIF populations; ``readout``: ``"li"``
    (membrane, ``tau_readout`` [s]) or ``"lif"`` (spikes); ``surrogate`` (a registered name)."""

    in_shape: Tuple[int, int, int] = (1, 8, 8)
    channels: Tuple[int, ...] = (8, 16)
    kernel_size: int = 3
    pool: int = 2
    pooling: str = "avg"
    num_classes: int = 10
    bias: bool = True
    tau_mem: float = 10e-3
    v_threshold: float = 1.0
    reset: str = "subtract"
    readout: str = "li"
    tau_readout: float = 20e-3
    surrogate: str = "fast_sigmoid"

    def __post_init__(self):
        shape = tuple(self.in_shape)
        if len(shape) != 3:
            raise ValueError(f"CNNConfig.in_shape must be (channels, height, width), got {self.in_shape!r}")
        for n in shape:
            _positive_int(n, "in_shape")
        object.__setattr__(self, "in_shape", shape)
        channels = (self.channels,) if isinstance(self.channels, int) else tuple(self.channels)
        if not channels:
            raise ValueError("CNNConfig.channels must name at least one conv block")
        for c in channels:
            _positive_int(c, "channels")
        object.__setattr__(self, "channels", channels)
        _positive_int(self.kernel_size, "kernel_size")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"CNNConfig.kernel_size must be odd (padding k // 2 keeps the size), got {self.kernel_size}")
        _positive_int(self.pool, "pool")
        _positive_int(self.num_classes, "num_classes")
        if self.pooling not in POOLINGS:
            raise ValueError(f"CNNConfig.pooling must be one of {list(POOLINGS)}, got {self.pooling!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"CNNConfig.readout must be one of {list(READOUTS)}, got {self.readout!r}")
        if self.reset not in ("subtract", "zero"):
            raise ValueError(f"CNNConfig.reset must be 'subtract' or 'zero', got {self.reset!r}")
        for name in ("tau_mem", "v_threshold", "tau_readout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"CNNConfig.{name} must be a positive number, got {value!r}")
        h, w = shape[1:]
        for i in range(len(channels)):
            h, w = h // self.pool, w // self.pool
            if min(h, w) < 1:
                raise ValueError(f"CNNConfig: after conv block {i} the {shape[1]}x{shape[2]} input is pooled "
                                 f"below 1 pixel (pool={self.pool}, {len(channels)} blocks)")

    def feature_shape(self, block: int) -> Tuple[int, int, int]:
        """``(C_i, H_i, W_i)`` after conv block ``block`` and its pooling."""
        h, w = self.in_shape[1:]
        for _ in range(block + 1):
            h, w = h // self.pool, w // self.pool
        return (self.channels[block], h, w)

    @property
    def features(self) -> int:
        """Inputs of the linear classifier: ``C_{L-1} H_{L-1} W_{L-1}``."""
        return math.prod(self.feature_shape(len(self.channels) - 1))


class ConventionalCNN(nn.Sequential):
    """The conventional reference: ``[conv -> ReLU -> pool] x L -> flatten -> linear``.

    Children are named ``conv{i}``, ``relu{i}``, ``pool{i}`` (absent when ``pool == 1``),
    ``flatten`` and ``fc``. Shapes: ``[batch, C, H, W] -> [batch, num_classes]`` (logits).
    Place it in a graph with ``Block(ConventionalCNN(cfg), cfg.in_shape, cfg.num_classes,
    mode="analog")``."""

    def __init__(self, config: CNNConfig):
        if not isinstance(config, CNNConfig):
            raise TypeError(f"ConventionalCNN: config must be a CNNConfig, got {type(config).__name__}")
        layers = OrderedDict()
        c_in = config.in_shape[0]
        for i, c in enumerate(config.channels):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c, config.kernel_size, padding=config.kernel_size // 2,
                                           bias=config.bias)
            layers[f"relu{i}"] = nn.ReLU()
            if config.pool > 1:
                pool = nn.AvgPool2d if config.pooling == "avg" else nn.MaxPool2d
                layers[f"pool{i}"] = pool(config.pool)
            c_in = c
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(config.features, config.num_classes, bias=config.bias)
        super().__init__(layers)
        self.config = config


def spiking_cnn(config: CNNConfig, dt: float = 1e-3) -> ns.Graph:
    """The spiking variant as engine nodes: a :class:`neurosim.Graph` with input ``"input"``
    ``(C, H, W)``, nodes ``conv{i}`` (``Conv2d``) -> ``lif{i}`` (LIF ``Population``) ->
    ``pool{i}`` (``AvgPool2d`` / ``MaxPool2d``, absent when ``pool == 1``), then ``flatten``,
    ``fc`` (``Dense``) and ``out`` (``li`` membrane or ``lif`` spikes), equations in the module
    docstring. ``dt`` [s] is the step the graph is meant to run at (it sets ``r = 1 / (1 - a)``);
    give the same ``dt`` to the ``Simulator``. Weights are drawn like torch's layers (use
    :func:`copy_cnn_weights` to start from a trained :class:`ConventionalCNN`)."""
    if not isinstance(config, CNNConfig):
        raise TypeError(f"spiking_cnn: config must be a CNNConfig, got {type(config).__name__}")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0:
        raise ValueError(f"spiking_cnn: dt must be a positive number of seconds, got {dt!r}")

    def lif(shape, tau):
        a = math.exp(-dt / tau)
        return ns.Population("lif", shape, ns.LIFParams(tau_mem=tau, v_threshold=config.v_threshold,
                                                        r=1.0 / (1.0 - a), reset=config.reset),
                             surrogate=config.surrogate)

    g = ns.Graph().add_input("input", config.in_shape)
    previous, shape = "input", config.in_shape
    for i, c in enumerate(config.channels):
        conv = ns.Conv2d(shape, c, config.kernel_size, padding=config.kernel_size // 2, bias=config.bias)
        g.add(f"conv{i}", conv).connect(previous, f"conv{i}")
        g.add(f"lif{i}", lif(conv.out_shape, config.tau_mem)).connect(f"conv{i}", f"lif{i}")
        previous, shape = f"lif{i}", conv.out_shape
        if config.pool > 1:
            pool = (ns.AvgPool2d if config.pooling == "avg" else ns.MaxPool2d)(shape, config.pool)
            g.add(f"pool{i}", pool).connect(previous, f"pool{i}")
            previous, shape = f"pool{i}", pool.out_shape
    g.add("flatten", ns.Flatten(shape)).connect(previous, "flatten")
    g.add("fc", ns.Dense(config.features, config.num_classes, bias=config.bias)).connect("flatten", "fc")
    if config.readout == "li":
        a = math.exp(-dt / config.tau_readout)
        out = ns.Population("li", config.num_classes, ns.LIParams(tau_mem=config.tau_readout, r=1.0 / (1.0 - a)))
    else:
        out = lif(config.num_classes, config.tau_readout)
    return g.add("out", out).connect("fc", "out")


def copy_cnn_weights(source: ConventionalCNN, graph: ns.Graph) -> ns.Graph:
    """Copy the conv and linear weights (and biases) of ``source`` into the nodes of ``graph``
    made by :func:`spiking_cnn` with the same config (``conv{i}`` and ``fc``); returns ``graph``.
    ``source`` is only read. Raises ``ValueError`` naming the first layer whose shape differs."""
    pairs = [(f"conv{i}", getattr(source, f"conv{i}")) for i in range(len(source.config.channels))]
    pairs.append(("fc", source.fc))
    for name, layer in pairs:
        node = graph.nodes[name] if name in graph.nodes else None
        if node is None or tuple(node.weight.shape) != tuple(layer.weight.shape) or \
                (node.bias is None) != (layer.bias is None):
            got = "missing" if node is None else tuple(node.weight.shape)
            raise ValueError(f"copy_cnn_weights: node {name!r} ({got}) does not match layer {name!r} "
                             f"{tuple(layer.weight.shape)}, bias={layer.bias is not None}")
    with torch.no_grad():
        for name, layer in pairs:
            node = graph.nodes[name]
            node.weight.copy_(layer.weight)
            if layer.bias is not None:
                node.bias.copy_(layer.bias)
    return graph
