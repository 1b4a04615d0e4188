"""Graph neural networks: PyG's GCN / GAT as the conventional reference, and a spiking GCN.

Both models hold one fixed graph (``edge_index``, ``num_nodes``) given at construction and map
the features of all its nodes to per-node class scores. The normalised adjacency of Kipf &
Welling (2017) is computed once, by PyG's ``gcn_norm``::

    A_hat = D^-1/2 (A + I) D^-1/2,   D_ii = 1 + sum_j A_ij,   A_ij = 1 for an edge j -> i

Conventional reference, :class:`GNN` (``layer="gcn"``, PyG's ``GCNConv``; Kipf & Welling 2017)::

    H_0 = X;  H_{l+1} = ReLU(A_hat dropout(H_l) W_l + b_l);  the last layer without ReLU

or ``layer="gat"`` (PyG's ``GATConv``, Velickovic et al. 2018): multi-head attention over each
node's neighbours (self-loops added), the heads concatenated, ELU between layers, one head in
the last layer.

Spiking variant, :class:`SpikingGCN`, after SpikingGCN (Zhu et al. 2022, "Spiking Graph
Convolutional Networks", IJCAI). Each time step t the node features are encoded as spikes, the
spikes are sent along the graph's edges (a PyG ``MessagePassing`` with the GCN weights:
:class:`SpikePropagation`) and integrated by LIF populations; layer by layer::

    S_0[t] = encode(X, t)                          (Bernoulli, deterministic rate, or direct)
    I_l[t] = (A_hat S_l[t]) W_l + b_l              (spike messages over the edges, then a Linear)
    S_{l+1}[t], state_l = LIF_l(I_l[t], state_l)   (neurosim Populations, surrogate gradients)

The last population is a LIF (``readout="spikes"``: decode by spike counts,
``sum_t S_L[t]``) or a leaky integrator (``readout="membrane"``: its membrane ``v[t]``).
With Bernoulli encoding ``E[S_0[t]] = X``, so the first layer's input current equals the GCN's
first pre-activation ``A_hat X W_0 + b_0`` on average. Zhu et al. propagate the real-valued
features first (``A_hat^K X``) and encode the result as spikes for one LIF layer; here the
messages on the edges are the spikes themselves in every layer, so the propagation is event
driven (a silent node sends nothing). Dropout is not applied in the spiking model.

Encodings (``GNNConfig.encoding``), ``p = clamp(X, 0, 1)`` read as a spike probability per step:

* ``"bernoulli"``: ``S_0[t] = 1[u < p]``, ``u ~ U(0, 1)`` drawn from torch's global generator
  (seed it with ``torch.manual_seed``, as for dropout);
* ``"rate"``: deterministic, ``S_0[t] = floor(phi[t-1] + p)``, ``phi[t] = phi[t-1] + p - S_0[t]``
  (``phi[0] = 0``, so ``sum_{t<T} S_0[t] = floor(T p)`` up to rounding); ``phi`` is the state;
* ``"direct"``: ``S_0[t] = X`` as it is (spikes encoded upstream, or real-valued currents).

The gradient passes straight through the encoding (``dS_0/dX = 1`` on ``0 < X < 1``).

Shapes (the convention of both models): the per-step input is ``[batch, num_nodes, in_features]``
-> ``[batch, num_nodes, num_classes]``, ``batch`` being the number of feature sets on the one
graph (``1`` for a transductive task such as Cora); a 2-d ``[num_nodes, in_features]`` input is
accepted as ``batch = 1`` and gives ``[num_nodes, num_classes]`` (conventional model only). In a
neurosim ``Graph`` the node is ``gnn_block(model)``, a ``Block`` with
``in_shape = (num_nodes, in_features)`` and ``out_shape = (num_nodes, num_classes)``, so a run
takes inputs ``[T, batch, num_nodes, in_features]``. The spiking model is a stateful module
(``initial_state`` / ``model(x, state, dt) -> (y, new_state)``), its state a
:class:`SpikingGCNState` of ``[batch, ...]`` tensors.

Example::

    >>> cfg = GNNConfig(in_features=1433, hidden=16, num_classes=7)
    >>> snn = SpikingGCN(cfg, data.edge_index, data.num_nodes)
    >>> g = Graph.sequential((data.num_nodes, 1433), ("gcn", gnn_block(snn)))
    >>> out = Simulator(g, dt=1e-3).run(data.x.expand(20, 1, -1, -1)).output   # [20, 1, N, 7]
    >>> counts = out.sum(0)                                                      # [1, N, 7]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from neurosim.neurons import LIFParams, LIParams
from neurosim.population import Population

from .block import Block

__all__ = ["GNNConfig", "GNN", "SpikingGCN", "SpikingGCNState", "SpikePropagation", "gcn_adjacency",
           "gnn_block", "LAYERS", "ENCODINGS", "READOUTS"]

LAYERS = ("gcn", "gat")
ENCODINGS = ("bernoulli", "rate", "direct")
READOUTS = ("spikes", "membrane")
_WHERE = "plugins/gnn.py"


@dataclass(frozen=True)
class GNNConfig:
    """Sizes and settings of both models.

    in_features, hidden, num_classes: feature sizes (hidden units per layer, per head for GAT);
    num_layers: graph-convolution layers (>= 1); layer: ``"gcn"`` or ``"gat"`` (conventional
    model only); heads: GAT attention heads of the hidden layers; dropout: probability
    (conventional model only). Spiking model: tau_mem [s] and v_threshold [V] of the LIF
    populations, reset (a LIF reset mode), encoding (see the module docstring), readout
    (``"spikes"``: LIF output, ``"membrane"``: leaky-integrator membrane), surrogate (a
    registered surrogate name), tau_readout [s] of the membrane readout."""

    in_features: int
    num_classes: int
    hidden: int = 16
    num_layers: int = 2
    layer: str = "gcn"
    heads: int = 8
    dropout: float = 0.5
    tau_mem: float = 5e-3
    v_threshold: float = 1.0
    reset: str = "subtract"
    encoding: str = "bernoulli"
    readout: str = "spikes"
    surrogate: str = "fast_sigmoid"
    tau_readout: float = 10e-3

    def __post_init__(self):
        for name in ("in_features", "num_classes", "hidden", "num_layers", "heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{_WHERE}: GNNConfig.{name} must be an int >= 1, got {value!r}")
        for name, choices in (("layer", LAYERS), ("encoding", ENCODINGS), ("readout", READOUTS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{_WHERE}: GNNConfig.{name} must be one of {list(choices)}, "
                                 f"got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{_WHERE}: GNNConfig.dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("tau_mem", "v_threshold", "tau_readout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{_WHERE}: GNNConfig.{name} must be > 0, got {getattr(self, name)!r}")

    def sizes(self) -> Tuple[Tuple[int, int], ...]:
        """``(in, out)`` features of each layer: in_features -> hidden -> ... -> num_classes."""
        dims = [self.in_features] + [self.hidden] * (self.num_layers - 1) + [self.num_classes]
        return tuple(zip(dims[:-1], dims[1:]))


def _check_graph(edge_index, num_nodes, who: str) -> torch.Tensor:
    """``edge_index`` must be an integer tensor ``[2, E]`` with entries in ``[0, num_nodes)``."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"{_WHERE}: {who}: num_nodes must be an int >= 1, got {num_nodes!r}")
    if not isinstance(edge_index, torch.Tensor) or edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool \
            or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        got = f"{edge_index.dtype} {list(edge_index.shape)}" if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"{_WHERE}: {who}: edge_index must be an integer tensor [2, num_edges], got {got}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{_WHERE}: {who}: edge_index has node ids in [{int(edge_index.min())}, "
                         f"{int(edge_index.max())}], outside [0, num_nodes) = [0, {num_nodes})")
    return edge_index.long()


def gcn_adjacency(edge_index: torch.Tensor, num_nodes: int, dtype: Optional[torch.dtype] = None):
    """The GCN normalisation ``A_hat = D^-1/2 (A + I) D^-1/2`` as edges, by PyG's ``gcn_norm``.

    Returns ``(edge_index [2, E + num_nodes], edge_weight [E + num_nodes])`` with the self-loops
    added; an edge ``j -> i`` carries ``A_hat_ij = 1 / sqrt(D_ii D_jj)``."""
    edge_index = _check_graph(edge_index, num_nodes, "gcn_adjacency")
    return gcn_norm(edge_index, None, num_nodes, add_self_loops=True,
                    dtype=dtype or torch.get_default_dtype())


class _Adjacency:
    """``gcn_adjacency`` of a model's fixed ``edge_index``, computed once per dtype and device.

    Derived from the connectivity only (never from trainable values), so a cached entry never goes
    stale; the key holds the edge tensor's identity, so ``.to(device)`` (a new buffer) recomputes."""

    def __init__(self):
        self._cache: dict = {}

    def __call__(self, edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype, sparse: bool = False):
        """``(index, weight)`` of :func:`gcn_adjacency`, or (``sparse=True``) ``A_hat`` as a
        torch sparse COO matrix ``[num_nodes, num_nodes]``, rows the targets."""
        key = (id(edge_index), edge_index.device, dtype)
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            index, weight = gcn_adjacency(edge_index, num_nodes, dtype)
            matrix = torch.sparse_coo_tensor(index.flip(0), weight, (num_nodes, num_nodes),
                                             check_invariants=True).coalesce()
            self._cache[key] = (edge_index, index, weight, matrix)
        entry = self._cache[key]
        return entry[3] if sparse else entry[1:3]


def _check_input(x: torch.Tensor, num_nodes: int, features: int, who: str) -> None:
    if x.dim() not in (2, 3) or tuple(x.shape[-2:]) != (num_nodes, features):
        raise ValueError(f"{_WHERE}: {who}: input must be [batch, num_nodes, in_features] = "
                         f"[batch, {num_nodes}, {features}], got {list(x.shape)}")


class GNN(nn.Module):
    """Conventional GCN or GAT on a fixed graph (see the module docstring).

    ``forward(x)``: ``[batch, num_nodes, in_features]`` (or ``[num_nodes, in_features]``) ->
    ``[batch, num_nodes, num_classes]`` (or ``[num_nodes, num_classes]``), class logits."""

    def __init__(self, config: GNNConfig, edge_index: torch.Tensor, num_nodes: int):
        super().__init__()
        if not isinstance(config, GNNConfig):
            raise TypeError(f"{_WHERE}: GNN: config must be a GNNConfig, got {type(config).__name__}")
        self.config, self.num_nodes = config, num_nodes
        self.register_buffer("edge_index", _check_graph(edge_index, num_nodes, "GNN"))
        self._adjacency = _Adjacency()
        convs = []
        for k, (n_in, n_out) in enumerate(config.sizes()):
            last = k == config.num_layers - 1
            if config.layer == "gcn":
                convs.append(GCNConv(n_in, n_out, normalize=False))
            else:
                n_in = n_in if k == 0 else n_in * config.heads
                convs.append(GATConv(n_in, n_out, heads=1 if last else config.heads, concat=not last,
                                     dropout=config.dropout))
        self.convs = nn.ModuleList(convs)

    def _union_edges(self, batch: int) -> torch.Tensor:
        """``batch`` copies of the graph as one disjoint graph of ``batch * num_nodes`` nodes."""
        offsets = torch.arange(batch, device=self.edge_index.device) * self.num_nodes
        return (self.edge_index.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.num_nodes, self.config.in_features, "GNN")
        single = x.dim() == 2
        h = x.unsqueeze(0) if single else x
        batch = h.shape[0]
        if self.config.layer == "gat":                          # GATConv needs one [nodes, features] graph
            h, edges = h.reshape(batch * self.num_nodes, -1), self._union_edges(batch)
        for k, conv in enumerate(self.convs):
            h = F.dropout(h, self.config.dropout, self.training)
            if self.config.layer == "gcn":
                h = conv(h, *self._adjacency(self.edge_index, self.num_nodes, h.dtype))  # node_dim=-2: batched
            else:
                h = conv(h, edges)
            if k < len(self.convs) - 1:
                h = F.relu(h) if self.config.layer == "gcn" else F.elu(h)
        h = h.reshape(batch, self.num_nodes, -1)
        return h[0] if single else h


class SpikePropagation(MessagePassing):
    """Spike messages over the edges, summed with the GCN weights: ``out = A_hat S``.

    ``out_i = sum_{j -> i} w_ji s_j`` (``w`` from :func:`gcn_adjacency`, self-loops included).
    ``forward(s, edge_index, edge_weight)`` sends one message per edge through PyG's
    ``propagate`` (``message``, then a scatter-add); ``forward(s, adj_t)`` with ``adj_t`` the
    torch sparse matrix ``A_hat`` (``[num_nodes, num_nodes]``, row = target) computes the same
    sums as one sparse-dense product, ``sparse_aggregate`` (about 3x faster on Cora; the spiking
    GCN uses it). Not PyG's ``message_and_aggregate`` hook: defining that one changes the
    keyword arguments PyG's generated ``propagate`` accepts.
    Shapes: ``s [..., num_nodes, features]`` -> the same shape. No parameters."""

    def __init__(self):
        super().__init__(aggr="add", node_dim=-2)

    def forward(self, s: torch.Tensor, edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor] = None):
        if edge_index.layout != torch.strided:
            return self.sparse_aggregate(edge_index, s)
        return self.propagate(edge_index, x=s, edge_weight=edge_weight)

    def message(self, x_j: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        return edge_weight.view(-1, 1) * x_j

    def sparse_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``A_hat x`` as one sparse-dense product, the batch axes folded into the features."""
        n, f = x.shape[-2:]
        lead = x.shape[:-2]
        out = torch.sparse.mm(adj_t, x.movedim(-2, 0).reshape(n, -1))      # [N, batch * F]
        return out.reshape(n, *lead, f).movedim(0, -2)


class SpikingGCNState(NamedTuple):
    """phase: the rate encoder's accumulator ``[batch, num_nodes, in_features]`` (None for the
    other encodings); layers: one population state per layer (``LIFState`` / ``LIState``,
    fields ``[batch, num_nodes, features]``)."""

    phase: Optional[torch.Tensor]
    layers: tuple


class SpikingGCN(nn.Module):
    """Spiking GCN on a fixed graph, a stateful module (see the module docstring).

    ``forward(x, state, dt) -> (y, new_state)``, one time step of ``dt`` seconds:
    ``x [batch, num_nodes, in_features]`` -> ``y [batch, num_nodes, num_classes]``, spikes
    (``readout="spikes"``) or the readout membrane in volts (``"membrane"``). ``sparse``: send
    the spikes as one sparse-dense product (default) or edge by edge through PyG's ``propagate``
    (:class:`SpikePropagation`; the same sums)."""

    def __init__(self, config: GNNConfig, edge_index: torch.Tensor, num_nodes: int, sparse: bool = True):
        super().__init__()
        if not isinstance(config, GNNConfig):
            raise TypeError(f"{_WHERE}: SpikingGCN: config must be a GNNConfig, got {type(config).__name__}")
        self.config, self.num_nodes, self.sparse = config, num_nodes, bool(sparse)
        self.register_buffer("edge_index", _check_graph(edge_index, num_nodes, "SpikingGCN"))
        self._adjacency = _Adjacency()
        self.propagation = SpikePropagation()
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in config.sizes())
        lif = LIFParams(tau_mem=config.tau_mem, v_threshold=config.v_threshold, reset=config.reset)
        pops = []
        for k, (_, n_out) in enumerate(config.sizes()):
            if k == config.num_layers - 1 and config.readout == "membrane":
                pops.append(Population("li", (num_nodes, n_out), LIParams(tau_mem=config.tau_readout)))
            else:
                pops.append(Population("lif", (num_nodes, n_out), lif, surrogate=config.surrogate))
        self.populations = nn.ModuleList(pops)

    @property
    def emits_spikes(self) -> bool:
        return self.config.readout == "spikes"

    def initial_state(self, batch_size: int, device=None, dtype=None) -> SpikingGCNState:
        """Resting populations; a zero encoder phase for ``encoding="rate"``."""
        dtype = dtype if dtype is not None and dtype.is_floating_point else self.linears[0].weight.dtype
        device = device if device is not None else self.linears[0].weight.device
        phase = (torch.zeros((batch_size, self.num_nodes, self.config.in_features), device=device, dtype=dtype)
                 if self.config.encoding == "rate" else None)
        return SpikingGCNState(phase, tuple(p.initial_state(batch_size, device, dtype) for p in self.populations))

    def encode(self, x: torch.Tensor, phase: Optional[torch.Tensor]):
        """Input spikes of one step and the new encoder phase (see the module docstring)."""
        if self.config.encoding == "direct":
            return x, phase
        p = x.clamp(0.0, 1.0)
        if self.config.encoding == "bernoulli":
            s = (torch.rand_like(p) < p).to(p.dtype)
        else:
            total = phase + p
            s = torch.floor(total)
            phase = total - s
        return s.detach() + (p - p.detach()), phase             # value exactly s, gradient of p

    def propagate(self, s: torch.Tensor, layer: int) -> torch.Tensor:
        """``I = (A_hat s) W_layer + b_layer``: spike messages over the edges, then the Linear."""
        adjacency = self._adjacency(self.edge_index, self.num_nodes, s.dtype, sparse=self.sparse)
        return self.linears[layer](self.propagation(s, adjacency) if self.sparse else self.propagation(s, *adjacency))

    def forward(self, x: torch.Tensor, state: SpikingGCNState, dt: float):
        if x.dim() != 3:
            raise ValueError(f"{_WHERE}: SpikingGCN: input must be [batch, num_nodes, in_features] = "
                             f"[batch, {self.num_nodes}, {self.config.in_features}], got {list(x.shape)}")
        _check_input(x, self.num_nodes, self.config.in_features, "SpikingGCN")
        s, phase = self.encode(x, state.phase)
        new_layers = []
        for k, (pop, pop_state) in enumerate(zip(self.populations, state.layers)):
            s, pop_state = pop.step(self.propagate(s, k), pop_state, dt)
            new_layers.append(pop_state)
        return s, SpikingGCNState(phase, tuple(new_layers))


def gnn_block(model: nn.Module, mode: Optional[str] = None) -> Block:
    """``model`` (a :class:`GNN` or :class:`SpikingGCN`) as a neurosim :class:`Block` node.

    in_shape ``(num_nodes, in_features)``, out_shape ``(num_nodes, num_classes)``; mode
    ``"analog"`` by default for a GNN (``"hybrid"`` also works), ``"hybrid"`` for a SpikingGCN
    (a stateful module, stepped once per time step; it emits spikes when ``readout="spikes"``)."""
    if not isinstance(model, (GNN, SpikingGCN)):
        raise TypeError(f"{_WHERE}: gnn_block: model must be a GNN or a SpikingGCN, got {type(model).__name__}")
    shapes = ((model.num_nodes, model.config.in_features), (model.num_nodes, model.config.num_classes))
    if isinstance(model, GNN):
        return Block(model, *shapes, mode=mode or "analog")
    return Block(model, *shapes, mode=mode or "hybrid", emits_spikes=model.emits_spikes)
