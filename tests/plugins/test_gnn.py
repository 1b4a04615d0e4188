"""GNN family (plugins/gnn.py): PyG GCN / GAT and the spiking GCN (Zhu et al. 2022)."""
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.utils import stochastic_blockmodel_graph

import neurosim as ns
from neurosim.plugins.gnn import (GNN, GNNConfig, SpikePropagation, SpikingGCN, SpikingGCNState, gcn_adjacency,
                                  gnn_block)

PLANETOID = Path("/work/shared/data/planetoid")

# a tiny undirected graph: 0-1, 1-2, 2-3, 0-2; node 4 isolated (only its self-loop)
TINY_EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 0, 2], [1, 0, 2, 1, 3, 2, 2, 0]])


def dense_a_hat(edge_index, n, dtype=torch.float64):
    """D^-1/2 (A + I) D^-1/2 by hand, A_ij = 1 for an edge j -> i."""
    a = torch.zeros(n, n, dtype=dtype)
    a[edge_index[1], edge_index[0]] = 1.0
    a = a + torch.eye(n, dtype=dtype)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def sbm_task(seed=0, per_class=20, classes=3, features=9):
    """A stochastic block model with informative binary features: feature f votes for class f % C."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)                                     # stochastic_blockmodel_graph draws globally
    probs = [[0.3 if i == j else 0.02 for j in range(classes)] for i in range(classes)]
    edge_index = stochastic_blockmodel_graph([per_class] * classes, probs)
    y = torch.arange(classes).repeat_interleave(per_class)
    match = (torch.arange(features)[None, :] % classes) == y[:, None]
    x = (torch.rand(len(y), features, generator=g) < torch.where(match, 0.5, 0.15)).float()
    train = torch.rand(len(y), generator=g) < 0.5
    return x, y, edge_index, train


def accuracy(scores, y, mask):
    return (scores[mask].argmax(-1) == y[mask]).float().mean().item()


# ---------------------------------------------------------------------- construction and bad input
def test_bad_config_graph_and_input_raise_naming_the_file():
    with pytest.raises(ValueError, match=r"plugins/gnn.py.*GNNConfig.layer"):
        GNNConfig(4, 2, layer="sage")
    with pytest.raises(ValueError, match=r"GNNConfig.hidden"):
        GNNConfig(4, 2, hidden=0)
    with pytest.raises(ValueError, match=r"GNNConfig.encoding"):
        GNNConfig(4, 2, encoding="poisson")
    cfg = GNNConfig(4, 2)
    with pytest.raises(ValueError, match=r"plugins/gnn.py: SpikingGCN: edge_index has node ids"):
        SpikingGCN(cfg, TINY_EDGES, 3)
    with pytest.raises(ValueError, match=r"GNN: edge_index must be an integer tensor \[2, num_edges\]"):
        GNN(cfg, TINY_EDGES.float(), 5)
    with pytest.raises(ValueError, match=r"GNN: input must be .*\[batch, 5, 4\], got \[2, 5, 3\]"):
        GNN(cfg, TINY_EDGES, 5)(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"Block\(GNN\).*\[2, 5, 3\]"):       # Block checks before any step
        ns.plugins.Block(GNN(cfg, TINY_EDGES, 5), (5, 3), (5, 2), mode="analog")


# ---------------------------------------------------------------------- against dense references
DIRECTED_EDGES = torch.tensor([[0, 0, 1, 3], [1, 2, 2, 2]])   # j -> i: node i hears node j, not back


@pytest.mark.parametrize("edges", [TINY_EDGES, DIRECTED_EDGES], ids=["undirected", "directed"])
def test_spike_messages_equal_dense_normalised_adjacency_times_s_w(edges):
    torch.manual_seed(0)
    n, f = 5, 3
    model = SpikingGCN(GNNConfig(f, 2, hidden=4), edges, n).double()
    s = (torch.rand(2, n, f) < 0.5).double()                  # [batch, nodes, features] spikes
    a_hat = dense_a_hat(edges, n)
    w, b = model.linears[0].weight, model.linears[0].bias
    expected = a_hat @ s @ w.T + b                            # D^-1/2 (A+I) D^-1/2 S W + b
    torch.testing.assert_close(model.propagate(s, 0), expected, rtol=1e-12, atol=1e-12)   # sparse product
    model.sparse = False                                                                  # edge by edge
    torch.testing.assert_close(model.propagate(s, 0), expected, rtol=1e-12, atol=1e-12)
    index, weight = gcn_adjacency(edges, n, torch.float64)
    for spikes in (s, s[0]):                                 # edge-list path, batched and not
        torch.testing.assert_close(SpikePropagation()(spikes, index, weight), a_hat @ spikes, rtol=1e-12, atol=1e-12)
    # node 4 is isolated: it only hears itself, with weight 1 / (1 + 0)
    torch.testing.assert_close(model.propagation(s, index, weight)[:, 4], s[:, 4])


def test_one_step_membrane_is_the_lif_update_of_the_propagated_spikes():
    """A direct-encoded spike input, thresholds out of reach: v[1] = (1 - exp(-dt/tau)) (A_hat S W0 + b0)."""
    torch.manual_seed(1)
    n, f, dt, tau = 5, 3, 1e-3, 4e-3
    cfg = GNNConfig(f, 2, hidden=4, encoding="direct", tau_mem=tau, v_threshold=1e9)
    model = SpikingGCN(cfg, TINY_EDGES, n).double()
    s = (torch.rand(1, n, f) < 0.5).double()
    y, state = model(s, model.initial_state(1, dtype=torch.float64), dt)
    current = dense_a_hat(TINY_EDGES, n) @ s @ model.linears[0].weight.T + model.linears[0].bias
    torch.testing.assert_close(state.layers[0].v, (1 - math.exp(-dt / tau)) * current, rtol=1e-12, atol=1e-12)
    assert torch.equal(y, torch.zeros_like(y))


def test_gcn_equals_the_dense_kipf_welling_formula():
    torch.manual_seed(2)
    n, f = 5, 3
    model = GNN(GNNConfig(f, 2, hidden=4), TINY_EDGES, n).double().eval()
    x = torch.randn(3, n, f, dtype=torch.float64)
    a_hat = dense_a_hat(TINY_EDGES, n)
    (c0, c1) = model.convs
    expected = a_hat @ torch.relu(a_hat @ x @ c0.lin.weight.T + c0.bias) @ c1.lin.weight.T + c1.bias
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model(x[1]), expected[1], rtol=1e-10, atol=1e-10)


def test_rate_encoding_gives_floor_t_p_spikes_and_bernoulli_has_mean_p():
    n, f, steps = 5, 3, 20
    p = torch.tensor([0.0, 0.25, 0.625]).expand(1, n, f)     # dyadic: no rounding in the accumulator
    model = SpikingGCN(GNNConfig(f, 2, encoding="rate"), TINY_EDGES, n)
    phase = model.initial_state(1).phase
    for t in range(steps):
        s, phase = model.encode(p, phase)
        # the deterministic rate code of plugins/block.py: s[t] = floor((t + 1) p) - floor(t p)
        assert torch.equal(s, torch.floor((t + 1) * p) - torch.floor(t * p)), t
    torch.manual_seed(3)
    bern = SpikingGCN(GNNConfig(f, 2), TINY_EDGES, n)
    s, _ = bern.encode(torch.full((200, n, f), 0.3), None)
    assert set(s.unique().tolist()) == {0.0, 1.0} and abs(s.mean().item() - 0.3) < 0.02


# ---------------------------------------------------------------------- forward / backward, Simulator
@pytest.mark.parametrize("layer", ["gcn", "gat"])
def test_conventional_forward_backward(layer):
    torch.manual_seed(4)
    model = GNN(GNNConfig(3, 2, hidden=4, heads=2, layer=layer), TINY_EDGES, 5)
    out = model(torch.rand(2, 5, 3))
    assert out.shape == (2, 5, 2)
    out.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("readout", ["spikes", "membrane"])
def test_spiking_gcn_in_a_simulator_matches_stepping_and_backpropagates(readout):
    torch.manual_seed(5)
    n, f, steps, dt = 5, 3, 12, 1e-3
    cfg = GNNConfig(f, 2, hidden=6, encoding="rate", readout=readout, tau_mem=2e-3, v_threshold=0.05)
    model = SpikingGCN(cfg, TINY_EDGES, n)
    block = gnn_block(model)
    assert block.emits_spikes == (readout == "spikes")
    sim = ns.Simulator(ns.Graph.sequential((n, f), ("gcn", block)), dt=dt)
    x = torch.rand(2, n, f).expand(steps, -1, -1, -1)          # [T, batch, nodes, features]
    result = sim.run(x, monitors=[ns.Monitor("gcn", variables=("output",))], count_ops=True)
    out = result.output
    assert out.shape == (steps, 2, n, 2) and torch.isfinite(out).all()
    state, by_hand = model.initial_state(2), []
    for t in range(steps):
        y, state = model(x[t], state, dt)
        by_hand.append(y)
    torch.testing.assert_close(out, torch.stack(by_hand), rtol=0, atol=0)
    assert isinstance(result.state.nodes["gcn"], SpikingGCNState)
    if readout == "spikes":
        assert set(out.unique().tolist()) <= {0.0, 1.0} and out.sum() > 0
        assert result.ops["gcn"]["spikes"] == out.sum()
    # dense MACs of the two Linears per sample and step: N (F H + H C)
    assert result.ops["gcn"]["macs"] == steps * 2 * n * (f * 6 + 6 * 2)
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_conventional_gcn_as_an_analog_block_in_a_graph():
    torch.manual_seed(6)
    model = GNN(GNNConfig(3, 2, hidden=4), TINY_EDGES, 5).eval()
    sim = ns.Simulator(ns.Graph.sequential((5, 3), ("gcn", gnn_block(model))), dt=1e-3)
    x = torch.rand(4, 2, 5, 3)
    expected = torch.stack([model(x[t]) for t in range(4)])
    torch.testing.assert_close(sim.run(x).output, expected)
    hybrid = ns.Simulator(ns.Graph.sequential((5, 3), ("gcn", gnn_block(model, mode="hybrid"))), dt=1e-3)
    torch.testing.assert_close(hybrid.run(x).output, expected)     # time folded into the batch


# ---------------------------------------------------------------------- training on an SBM
def test_gcn_and_spiking_gcn_learn_a_stochastic_block_model_above_chance():
    x, y, edge_index, train = sbm_task()
    n, f = x.shape
    test = ~train
    cfg = GNNConfig(f, 3, hidden=16, dropout=0.2, tau_mem=2e-3, v_threshold=0.5)

    torch.manual_seed(0)
    gcn = GNN(cfg, edge_index, n)
    opt = torch.optim.Adam(gcn.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(gcn(x)[train], y[train])
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    gcn.eval()
    acc_gcn = accuracy(gcn(x), y, test)

    torch.manual_seed(0)
    snn = SpikingGCN(cfg, edge_index, n)
    sim = ns.Simulator(ns.Graph.sequential((n, f), ("gcn", gnn_block(snn))), dt=1e-3)
    steps = 8
    inputs = x.expand(steps, 1, n, f)                           # Bernoulli-encoded inside the block
    opt = torch.optim.Adam(snn.parameters(), lr=0.05)
    snn_losses = []
    for _ in range(30):
        counts = sim.run(inputs).output.sum(0)[0]                # spike counts [N, C]
        loss = F.cross_entropy(counts[train] * (4.0 / steps), y[train])
        opt.zero_grad(); loss.backward(); opt.step()
        snn_losses.append(loss.item())
    with torch.no_grad():
        counts = sim.run(x.expand(32, 1, n, f)).output.sum(0)[0]
    acc_snn = accuracy(counts + 1e-3 * torch.rand_like(counts), y, test)   # random tie-break
    print(f"SBM test accuracy: GCN {acc_gcn:.2f}, spiking GCN {acc_snn:.2f} (chance 0.33); "
          f"loss GCN {losses[0]:.3f}->{losses[-1]:.3f}, SNN {snn_losses[0]:.3f}->{snn_losses[-1]:.3f}")
    assert losses[-1] < 0.5 * losses[0] and snn_losses[-1] < 0.8 * snn_losses[0]
    assert acc_gcn > 0.7 and acc_snn > 0.6


def test_gat_loss_decreases_with_adam():
    x, y, edge_index, train = sbm_task(seed=1)
    torch.manual_seed(0)
    gat = GNN(GNNConfig(x.shape[1], 3, hidden=4, heads=2, layer="gat", dropout=0.0), edge_index, x.shape[0])
    opt = torch.optim.Adam(gat.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(gat(x)[train], y[train])
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ---------------------------------------------------------------------- Cora, devices
@pytest.mark.skipif(not (PLANETOID / "Cora" / "raw").is_dir(), reason="no local Planetoid copy")
def test_cora_one_forward_pass_of_both_variants(tmp_path):
    from torch_geometric.datasets import Planetoid
    shutil.copytree(PLANETOID / "Cora", tmp_path / "Cora")     # PyG writes processed/ beside raw/
    data = Planetoid(str(tmp_path), "Cora")[0]
    n, f = data.num_nodes, data.num_features
    assert (n, f) == (2708, 1433)
    cfg = GNNConfig(f, 7, hidden=16)
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in ("gcn", "gat"):
            out = GNN(GNNConfig(f, 7, hidden=8, heads=2, layer=layer), data.edge_index, n).eval()(data.x)
            assert out.shape == (n, 7) and torch.isfinite(out).all()
        sim = ns.Simulator(ns.Graph.sequential((n, f), ("gcn", gnn_block(SpikingGCN(cfg, data.edge_index, n)))),
                           dt=1e-3)
        spikes = sim.run(data.x.expand(3, 1, n, f)).output
    assert spikes.shape == (3, 1, n, 7) and set(spikes.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(7)
    cfg = GNNConfig(3, 2, hidden=4, encoding="rate", tau_mem=2e-3, v_threshold=0.3)
    x = torch.rand(6, 2, 5, 3)
    for model in (GNN(cfg, TINY_EDGES, 5).eval(), SpikingGCN(cfg, TINY_EDGES, 5)):
        outs = []
        for device in ("cpu", "cuda"):
            sim = ns.Simulator(ns.Graph.sequential((5, 3), ("gcn", gnn_block(model.to(device)))), dt=1e-3)
            out = sim.run(x.to(device)).output
            out.sum().backward()
            outs.append(out.detach().cpu())
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-4)
