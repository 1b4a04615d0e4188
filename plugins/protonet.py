"""Prototypical networks (Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot
Learning") on a conventional encoder and on a spiking encoder.

An encoder ``f`` maps inputs to embeddings in ``R^D``. In an N-way K-shot episode with support
set ``S_c`` for each class ``c = 0 .. N-1``::

    c_k       = (1/|S_k|) sum_{x in S_k} f(x)                    prototype of class k   [N, D]
    logit_k(q) = -|| f(q) - c_k ||^2                              squared Euclidean      [M, N]
    p(y = k | q) = softmax_k(logit(q));   loss = mean_q -log p(y_q | q)

Encoders (sizes from :class:`ProtoNetConfig`):

* conventional: :func:`mlp_encoder` (Linear-ReLU-Linear) or :func:`conv_encoder` (Snell's
  conv3x3-BatchNorm-ReLU-maxpool blocks, tiny), ``[batch, *in] -> [batch, D]``; either can sit in
  a Graph as ``Block(encoder, in_shape, D, mode="analog")``;
* spiking: :func:`spiking_encoder`, a neurosim Graph ``input -> Dense -> LIF -> Dense -> LIF``
  (embedding = spike counts of the last population, ``readout="count"``) or ``... -> Dense ->
  LI`` (embedding = mean membrane, ``readout="membrane"``), run for ``steps`` steps on the input
  as a constant current, wrapped by :class:`~neurosim.plugins.maml.SimulatorReadout` so it is a
  ``[batch, in] -> [batch, D]`` module trained by BPTT with surrogate gradients.

Shapes: support ``[N*K, *in]`` with labels ``[N*K]`` in ``0..N-1``; query ``[M, *in]``;
logits ``[M, N]``.

Example::

    >>> net = ProtoNet(mlp_encoder(ProtoNetConfig(in_features=16)), n_way=5)
    >>> loss, acc = net.loss(xs, ys, xq, yq)                  # one episode
    >>> spiking = ProtoNet(spiking_encoder(ProtoNetConfig(in_features=16)), n_way=5)
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.plugins.maml import SimulatorReadout

__all__ = ["ProtoNetConfig", "ProtoNet", "prototypes", "proto_logits", "mlp_encoder", "conv_encoder",
           "spiking_encoder", "PROTO_READOUTS"]

PROTO_READOUTS = ("count", "membrane")


@dataclasses.dataclass(frozen=True)
class ProtoNetConfig:
    """in_features: input size (MLP and spiking encoders); in_channels: channels (conv encoder);
    hidden: hidden units (channels for the conv encoder); embed_dim: D; conv_blocks: number of
    conv blocks; steps: time steps of the spiking encoder; dt: its time step [s]; tau_mem: its
    LIF membrane time constant [s]; v_threshold: its LIF threshold; gain: its initial weights are
    uniform in ``+-gain / sqrt(fan_in)``, large enough that both layers spike from the start; readout: ``"count"`` (spike
    counts) or ``"membrane"`` (mean LI membrane); surrogate: the spike function's surrogate."""

    in_features: int = 16
    in_channels: int = 1
    hidden: int = 32
    embed_dim: int = 16
    conv_blocks: int = 2
    steps: int = 16
    dt: float = 1e-3
    tau_mem: float = 5e-3
    v_threshold: float = 1.0
    gain: float = 4.0
    readout: str = "count"
    surrogate: str = "fast_sigmoid"

    def __post_init__(self):
        for name in ("in_features", "in_channels", "hidden", "embed_dim", "conv_blocks", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"ProtoNetConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("dt", "tau_mem", "v_threshold", "gain"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"ProtoNetConfig.{name} must be a number > 0, got {value!r}")
        if self.readout not in PROTO_READOUTS:
            raise ValueError(f"ProtoNetConfig.readout must be one of {list(PROTO_READOUTS)}, got {self.readout!r}")


# ---------------------------------------------------------------------- the prototype head
def prototypes(embeddings: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means ``c_k = (1/|S_k|) sum_{i: y_i = k} e_i``.

    Shapes: embeddings ``[N, D]``, labels ``[N]`` (integers in ``0..n_way-1``, every class
    present) -> ``[n_way, D]``."""
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
        raise ValueError(f"prototypes: embeddings must be [N, D], got "
                         f"{tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != embeddings.shape[0] \
            or labels.is_floating_point():
        raise ValueError(f"prototypes: labels must be an integer tensor [N] = [{embeddings.shape[0]}], got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}"
                         f"{' ' + str(labels.dtype) if isinstance(labels, torch.Tensor) else ''}")
    if isinstance(n_way, bool) or not isinstance(n_way, numbers.Integral) or n_way < 1:
        raise ValueError(f"prototypes: n_way must be an int >= 1, got {n_way!r}")
    counts = torch.bincount(labels.long(), minlength=n_way) if labels.numel() else torch.zeros(n_way, dtype=torch.long)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_way):
        raise ValueError(f"prototypes: labels must lie in 0..{n_way - 1}, got {int(labels.min())}..{int(labels.max())}")
    missing = [k for k in range(n_way) if int(counts[k]) == 0]
    if missing:
        raise ValueError(f"prototypes: classes {missing} have no support example (n_way={n_way})")
    sums = embeddings.new_zeros((n_way, embeddings.shape[1])).index_add(0, labels.long(), embeddings)
    return sums / counts.to(embeddings.device, embeddings.dtype).unsqueeze(1)


def proto_logits(query: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """``logit[m, k] = -|| q_m - c_k ||^2`` (squared Euclidean, the Bregman divergence Snell et al.
    found best). Shapes: query ``[M, D]``, protos ``[N, D]`` -> ``[M, N]``."""
    if query.dim() != 2 or protos.dim() != 2 or query.shape[1] != protos.shape[1]:
        raise ValueError(f"proto_logits: query [M, D] and prototypes [N, D] must share D, got "
                         f"{tuple(query.shape)} and {tuple(protos.shape)}")
    return -(query.unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)


class ProtoNet(nn.Module):
    """A prototypical network over ``encoder`` (any ``[batch, *in] -> [batch, D]`` module).

    ``forward(support_x, support_y, query_x) -> logits [M, n_way]``: support and query are embedded
    in one encoder call (one simulation run for a spiking encoder), prototypes are the support
    means, logits the negative squared distances times ``scale`` (a softmax temperature
    ``1/scale``; 1 in Snell et al.; about ``1/steps`` for spike-count embeddings, whose squared
    distances grow as ``steps^2``)."""

    def __init__(self, encoder: nn.Module, n_way: int, scale: float = 1.0):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"ProtoNet: encoder must be a torch.nn.Module, got {type(encoder).__name__}")
        if isinstance(n_way, bool) or not isinstance(n_way, numbers.Integral) or n_way < 2:
            raise ValueError(f"ProtoNet: n_way must be an int >= 2, got {n_way!r}")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
            raise ValueError(f"ProtoNet: scale must be a number > 0, got {scale!r}")
        self.encoder, self.n_way, self.scale = encoder, int(n_way), float(scale)

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        if support_x.shape[1:] != query_x.shape[1:]:
            raise ValueError(f"ProtoNet: support {tuple(support_x.shape)} and query {tuple(query_x.shape)} "
                             "must have the same per-sample shape")
        if support_y.dim() != 1 or support_y.shape[0] != support_x.shape[0]:
            raise ValueError(f"ProtoNet: support_y must be [{support_x.shape[0]}] labels, got {tuple(support_y.shape)}")
        n = support_x.shape[0]
        emb = self.encoder(torch.cat([support_x, query_x]))
        if emb.dim() != 2 or emb.shape[0] != n + query_x.shape[0]:
            raise ValueError(f"ProtoNet: the encoder must give [batch, D], got {tuple(emb.shape)} for a batch of "
                             f"{n + query_x.shape[0]}")
        logits = proto_logits(emb[n:], prototypes(emb[:n], support_y, self.n_way))
        return logits if self.scale == 1.0 else logits * self.scale

    def loss(self, support_x, support_y, query_x, query_y) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(cross-entropy of the query, accuracy of the query)`` for one episode."""
        logits = self(support_x, support_y, query_x)
        return F.cross_entropy(logits, query_y.long()), (logits.argmax(1) == query_y).float().mean()


# ---------------------------------------------------------------------- encoders
def mlp_encoder(config: ProtoNetConfig) -> nn.Module:
    """Conventional encoder ``[batch, in_features] -> [batch, embed_dim]``: Linear-ReLU-Linear."""
    return nn.Sequential(nn.Linear(config.in_features, config.hidden), nn.ReLU(),
                         nn.Linear(config.hidden, config.embed_dim))


def conv_encoder(config: ProtoNetConfig) -> nn.Module:
    """Snell et al.'s encoder at a tiny size: ``conv_blocks`` x (conv 3x3 pad 1, BatchNorm, ReLU,
    maxpool 2), then global average pooling and a Linear to ``embed_dim``.
    ``[batch, in_channels, H, W] -> [batch, embed_dim]`` (H, W >= 2**conv_blocks)."""
    layers, channels = [], config.in_channels
    for _ in range(config.conv_blocks):
        layers += [nn.Conv2d(channels, config.hidden, 3, padding=1), nn.BatchNorm2d(config.hidden), nn.ReLU(),
                   nn.MaxPool2d(2)]
        channels = config.hidden
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(config.hidden, config.embed_dim)]
    return nn.Sequential(*layers)


def spiking_encoder(config: ProtoNetConfig, seed: int = 0) -> SimulatorReadout:
    """Spiking encoder ``[batch, in_features] -> [batch, embed_dim]``.

    Graph: ``x -> Dense(in, hidden) -> LIF(hidden) -> Dense(hidden, D) -> LIF(D)`` with the
    embedding ``e = sum_t s[t]`` (spike counts, ``readout="count"``), or ``... -> LI(D)`` with
    ``e = (1/T) sum_t v[t]`` (mean membrane, ``readout="membrane"``). LIF: exact integration,
    ``tau_mem``, reset by subtraction, surrogate gradients. The input is a constant current for
    ``steps`` steps of ``dt``. Weights are drawn from ``seed``, uniform in
    ``+-gain / sqrt(fan_in)``, ``gain`` times torch's Linear initialisation, so that the
    populations spike from the start: a silent encoder maps every input to the same embedding and
    has no gradient)."""
    import neurosim as ns
    g = torch.Generator().manual_seed(int(seed))

    def weight(n_out, n_in, gain):
        bound = gain / n_in ** 0.5
        return (torch.rand(n_out, n_in, generator=g) * 2 - 1) * bound

    lif = ns.LIFParams(tau_mem=config.tau_mem, v_threshold=config.v_threshold, reset="subtract")
    last = (ns.Population("lif", config.embed_dim, lif, surrogate=config.surrogate) if config.readout == "count"
            else ns.Population("li", config.embed_dim, ns.LIParams(tau_mem=config.tau_mem)))
    graph = ns.Graph.sequential(
        config.in_features,
        ("fc1", ns.Dense(config.in_features, config.hidden, weight=weight(config.hidden, config.in_features, config.gain))),
        ("lif1", ns.Population("lif", config.hidden, lif, surrogate=config.surrogate)),
        ("fc2", ns.Dense(config.hidden, config.embed_dim, weight=weight(config.embed_dim, config.hidden, config.gain))),
        ("out", last))
    sim = ns.Simulator(graph, dt=config.dt)
    return SimulatorReadout(sim, readout="count" if config.readout == "count" else "mean", steps=config.steps)
