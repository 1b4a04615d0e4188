"""The event-path switch: the pure cost model, the user's threshold, and equal outputs either way."""
import pytest
import torch

from neurosim import Dense, Sparse
from neurosim.projections.event_cost import EVENT_COSTS, EventCost, event_cost_for, event_path_pays

UNIT = EventCost(per_synapse=1.0, per_mac=0.1, event_overhead=0.0)


def test_cost_model_is_the_documented_inequality():
    # 1000 x 1000 Dense, one row: dense costs 1e6 x (1 + 0.1) = 1.1e6 units, each active input 1000
    assert event_path_pays(active=1099, rows=1, fan_out=1000, synapses=10 ** 6, cost=UNIT)
    assert not event_path_pays(active=1100, rows=1, fan_out=1000, synapses=10 ** 6, cost=UNIT)
    # 1000 rows: the crossover density falls to per_synapse / rows + per_mac = 0.101
    assert event_path_pays(active=100_000, rows=1000, fan_out=1000, synapses=10 ** 6, cost=UNIT)
    assert not event_path_pays(active=102_000, rows=1000, fan_out=1000, synapses=10 ** 6, cost=UNIT)
    # the fixed overhead keeps a tiny layer on the dense path even with no input at all
    tiny = EventCost(per_synapse=1.0, per_mac=0.1, event_overhead=1e4)
    assert not event_path_pays(active=0, rows=1, fan_out=10, synapses=100, cost=tiny)
    assert event_path_pays(active=0, rows=1, fan_out=10, synapses=100, cost=UNIT)
    # a table twice the cache size doubles the event cost per synapse (memory = 2): at 1000 rows
    # the crossover falls from 1 / 1000 + 0.1 = 0.101 to 1 / 1000 + 0.1 / 2 = 0.051
    cached = EventCost(per_synapse=1.0, per_mac=0.1, cache_bytes=1e6)
    assert event_path_pays(60_000, 1000, 1000, 10 ** 6, cached, table_bytes=0)
    assert not event_path_pays(60_000, 1000, 1000, 10 ** 6, cached, table_bytes=1e6)
    assert event_path_pays(50_000, 1000, 1000, 10 ** 6, cached, table_bytes=1e6)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_cpu_constants_pick_each_side_at_clearly_separated_points(kind):
    cost = event_cost_for(kind, "cpu")
    n = 4096
    synapses, fan_out = (n * n, n) if kind == "dense" else (int(0.02 * n * n), 0.02 * n / 0.74)
    for rows in (1, 16, 64, 1000):
        assert event_path_pays(int(0.002 * rows * n), rows, fan_out, synapses, cost), rows     # 0.2 %
    table = synapses * 4                                                    # float32 weights
    for rows in (1, 16, 64, 1000):
        assert event_path_pays(int(0.002 * rows * n), rows, fan_out, synapses, cost, table), rows
    for rows in (64, 1000):
        assert not event_path_pays(int(0.5 * rows * n), rows, fan_out, synapses, cost), rows   # 50 %
        assert not event_path_pays(int(0.5 * rows * n), rows, fan_out, synapses, cost, table), rows
    assert not event_path_pays(int(0.9 * 100), 1, 100, 100 * 100, cost)       # small layer, dense input


def test_unknown_device_uses_cpu_constants_and_bad_input_raises():
    assert event_cost_for("dense", "mps") == EVENT_COSTS[("dense", "cpu")]
    assert event_cost_for("sparse", "cuda") == EVENT_COSTS[("sparse", "cuda")]
    with pytest.raises(ValueError, match="kind must be one of"):
        event_cost_for("conv", "cpu")
    with pytest.raises(ValueError, match="per_mac must be >= 0"):
        EventCost(per_synapse=1.0, per_mac=-0.1)
    with pytest.raises(ValueError, match="cache_bytes must be > 0"):
        EventCost(per_synapse=1.0, per_mac=0.1, cache_bytes=0.0)


def _projection(kind, **kwargs):
    gen = torch.Generator().manual_seed(0)
    if kind == "dense":
        return Dense(1024, 1024, weight=torch.randn(1024, 1024, generator=gen) * 0.03, bias=True, **kwargs)
    return Sparse.random(1024, 1024, p=0.1, seed=1, bias=True, **kwargs)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("rows, density, expect_event", [(1, 0.01, True), (256, 0.6, False)])
def test_auto_choice_and_both_paths_agree(kind, rows, density, expect_event):
    node = _projection(kind)
    x = (torch.rand(rows, 1024, generator=torch.Generator().manual_seed(2)) < density).float()
    with torch.no_grad():
        assert node.use_event_path(x) is expect_event
        auto = node.propagate(x)
        node.event_driven = True
        event = node.propagate(x)
        node.event_driven = False
        dense = node.propagate(x)
    assert torch.equal(auto, event if expect_event else dense)     # auto runs exactly the chosen path
    torch.testing.assert_close(event, dense, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_user_threshold_overrides_the_model(kind):
    x = (torch.rand(4, 1024, generator=torch.Generator().manual_seed(3)) < 0.3).float()   # ~30 %
    with torch.no_grad():
        assert _projection(kind, event_threshold=0.5).use_event_path(x)
        assert not _projection(kind, event_threshold=0.1).use_event_path(x)
        assert not _projection(kind, event_threshold=0.0).use_event_path(torch.zeros(4, 1024))
    for bad in (1.5, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="event_threshold must be None or a density"):
            _projection(kind, event_threshold=bad)
    with pytest.raises(ValueError, match="event_driven must be"):
        _projection(kind, event_driven="yes")
