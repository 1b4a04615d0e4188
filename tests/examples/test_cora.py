"""examples/cora.py: the quick preset end to end on the real Cora (standard Planetoid split), the
spike / synop counting on a graph small enough to count by hand, the rate code, and bad flags."""
import math
from types import SimpleNamespace

import pytest
import torch

from neurosim.examples import cora
from neurosim.examples.common import parse_example_args, shared_data

QUICK = ["--quick", "--threads", "1"]
HAVE_CORA = (shared_data("planetoid") / "Cora" / "raw" / "ind.cora.graph").is_file()
needs_cora = pytest.mark.skipif(not HAVE_CORA, reason=f"no Planetoid copy in {shared_data('planetoid')}")


@pytest.fixture(scope="module")
def result():
    return cora.run(parse_example_args(cora, QUICK))


@needs_cora
def test_every_variant_well_above_chance_on_real_cora(result):
    assert math.isclose(result.chance, 1 / 7) and result.higher_is_better
    assert result.budget["train_nodes"] == 140 and result.budget["val_nodes"] == 500
    assert result.budget["test_nodes"] == 1000
    assert [(v.name, v.kind) for v in result.variants] == [
        ("GCN", "conventional"), ("GAT", "conventional"), ("spiking GCN", "spiking")]
    epochs = cora.PRESETS["quick"]["epochs"]
    for v in result.variants:
        assert v.metric > 0.5, (v.name, v.metric)
        assert set(v.history) == {"train_loss", "train_accuracy", "val_accuracy"}
        assert all(len(curve) == epochs for curve in v.history.values()), v.name
        assert v.history["train_loss"][-1] < v.history["train_loss"][0], v.name
        # the reported parameters are those of the earliest best validation epoch
        val = v.history["val_accuracy"]
        assert v.extra["best_epoch"] == val.index(max(val)), v.name
        assert v.seconds_per_sample > 0 and v.train_seconds > 0
        assert (v.macs_per_sample > 0) == (v.kind == "conventional"), v.name


@needs_cora
def test_spiking_gcn_spikes_and_counts_synops(result):
    gcn, gat, snn = result.variants
    steps, hidden = cora.PRESETS["quick"]["steps"], cora.PRESETS["quick"]["hidden"]
    assert gcn.spikes_per_sample is None and gcn.time_steps == 1 and gcn.params == snn.params
    assert snn.time_steps == steps and snn.spikes_per_sample > 0
    # every spike reaches at least its own node's next layer (the self loop): synops >= spikes x width
    assert snn.synops_per_sample >= snn.spikes_per_sample * 7
    assert snn.raster.dtype == torch.bool and snn.raster.shape == (steps, hidden) and snn.raster.any()
    assert snn.macs_per_sample == 0 and snn.extra["dense_macs_as_implemented"] > gcn.macs_per_sample
    assert snn.simulator is None and "NIR" in snn.deploy_note


@needs_cora
def test_same_seed_same_metrics(result):
    again = cora.run(parse_example_args(cora, QUICK))
    assert [v.metric for v in again.variants] == [v.metric for v in result.variants]
    assert again.variants[2].spikes_per_sample == result.variants[2].spikes_per_sample


def test_synops_are_spikes_times_degree_times_fan_out():
    """A path graph 0 - 1 - 2 with spikes fixed by hand: each spike of node j reaches (deg_j + 1)
    nodes x F_out currents of the next layer."""
    from neurosim.plugins.gnn import GNNConfig, SpikingGCN
    edges = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    data = SimpleNamespace(edge_index=edges, num_nodes=3, test_mask=torch.tensor([False, True, False]))
    torch.manual_seed(0)
    model = SpikingGCN(GNNConfig(2, 3, hidden=4, encoding="direct", readout="membrane", v_threshold=1e9),
                       edges, 3)                                     # a threshold no neuron reaches
    x = torch.zeros(2, 1, 3, 2)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = x[1, 0, 1, 0] = 1.0              # t=0: nodes 0, 1; t=1: node 1
    scores, spikes, synops, dense, raster = cora._count_spikes(model, x, data, SimpleNamespace())
    degree_plus_one = {0: 2, 1: 3, 2: 2}
    assert spikes == 3
    assert synops == (degree_plus_one[0] + 2 * degree_plus_one[1]) * 4    # hidden layer silent
    assert scores.shape == (3, 3) and raster.shape == (2, 4) and not raster.any()


def test_rate_code_is_bernoulli_of_rate_times_features():
    x = torch.zeros(50, 40)
    x[:, :20] = 1.0
    s = cora._rate_code(x, 0.25, 200, torch.Generator().manual_seed(0))
    assert s.shape == (200, 1, 50, 40) and set(s.unique().tolist()) == {0.0, 1.0}
    assert s[..., 20:].sum() == 0                                    # silent features stay silent
    assert abs(float(s[..., :20].mean()) - 0.25) < 0.01               # 200000 draws: std 0.001
    again = cora._rate_code(x, 0.25, 200, torch.Generator().manual_seed(0))
    assert torch.equal(s, again)


def test_bad_flags_are_refused():
    with pytest.raises(SystemExit) as err:
        parse_example_args(cora, ["--quick", "--dataset", "PubMed"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        parse_example_args(cora, ["--quick", "--epochs", "many"])
    assert err.value.code == 2
    for flag, value in (("--epochs", "0"), ("--input-rate", "1.5"), ("--dropout", "1.0")):
        with pytest.raises(ValueError, match=flag):
            cora.run(parse_example_args(cora, QUICK + [flag, value, "--data-root", "/nonexistent"]))


def test_missing_data_root_says_where_the_files_go(tmp_path):
    from neurosim.datasets.graphs import MissingDatasetError
    with pytest.raises(MissingDatasetError, match="raw"):
        cora.run(parse_example_args(cora, QUICK + ["--data-root", str(tmp_path)]))
