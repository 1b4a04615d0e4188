"""examples/fewshot.py: the quick preset end to end on the bundled digits (5-way 5-shot, disjoint
meta-train / test classes), the class split, the spiking encoders' counts and deployability,
determinism, and bad flags."""
import pytest
import torch

import neurosim as ns
from neurosim.examples import fewshot
from neurosim.examples.common import parse_example_args

QUICK = ["--quick", "--threads", "1"]


@pytest.fixture(scope="module")
def result():
    return fewshot.run(parse_example_args(fewshot, QUICK))


def test_every_variant_clearly_above_chance(result):
    assert result.chance == 0.2 and result.higher_is_better
    assert [v.name for v in result.variants] == list(fewshot.VARIANTS)
    preset = fewshot.PRESETS["quick"]
    entries = preset["iterations"] // preset["eval_every"]
    for v in result.variants:
        assert v.metric > 0.35, (v.name, v.metric)
        assert 0 < v.extra["ci95"] < 0.2, (v.name, v.extra["ci95"])
        assert v.extra["test_episodes"] == preset["test_episodes"]
        assert set(v.history) == {"train_loss", "train_accuracy", "test_accuracy"}
        assert all(len(curve) == entries for curve in v.history.values()), v.name
        assert v.train_seconds > 0 and v.seconds_per_sample > 0 and v.macs_per_sample > 0


def test_spiking_encoders_spike_and_are_deployable(result):
    steps, hidden = fewshot.PRESETS["quick"]["steps"], fewshot.PRESETS["quick"]["hidden"]
    for v in result.variants:
        if v.kind == "conventional":
            assert v.spikes_per_sample is None and v.time_steps == 1 and v.simulator is None
            continue
        assert v.kind == "spiking" and v.time_steps == steps
        assert v.spikes_per_sample > 0 and v.synops_per_sample > 0, v.name
        # the analog image into the first Dense is counted as dense MACs, the rest is event driven
        assert v.macs_per_sample == steps * 64 * hidden, v.name
        assert v.raster.dtype == torch.bool and v.raster.shape == (steps, hidden) and v.raster.any(), v.name
        assert isinstance(v.simulator, ns.Simulator)
        assert v.deploy_inputs.shape[0] == steps and v.deploy_inputs.shape[1] <= 4
        assert v.deploy_inputs.shape[2:] == (64,)
        with torch.no_grad():                   # the deployed simulator is the trained one: it runs
            out = v.simulator.run(v.deploy_inputs).output
        assert out.shape[:2] == v.deploy_inputs.shape[:2] and torch.isfinite(out).all()


def test_meta_train_and_test_classes_are_disjoint():
    (x_tr, y_tr), (x_te, y_te) = fewshot._data(4)
    assert set((y_tr % 10).tolist()) == set(fewshot.TRAIN_CLASSES)
    assert set(y_te.tolist()) == set(fewshot.TEST_CLASSES)
    assert len(set(y_tr.tolist())) == 20 and x_tr.shape == (4 * x_tr.shape[0] // 4, 64)
    # class 10 + d is digit d turned by 90 degrees
    first = x_tr[y_tr == 0][0].reshape(8, 8)
    assert torch.equal(x_tr[y_tr == 10][0].reshape(8, 8), torch.rot90(first, 1, dims=(0, 1)))
    assert float(x_tr.min()) >= 0 and float(x_tr.max()) <= 1


def test_same_seed_same_metric(result, monkeypatch):
    monkeypatch.setattr(fewshot, "VARIANTS", ("ProtoNet", "ProtoNet, spiking encoder"))
    again = fewshot.run(parse_example_args(fewshot, QUICK))
    first = {v.name: v.metric for v in result.variants}
    assert {v.name: v.metric for v in again.variants} == {n: first[n] for n in fewshot.VARIANTS}


def test_bad_flags_are_refused():
    with pytest.raises(SystemExit) as err:
        parse_example_args(fewshot, ["--quick", "--rotations", "3"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        parse_example_args(fewshot, ["--quick", "--shots", "one"])
    assert err.value.code == 2
    for flag, value in (("--shots", "0"), ("--eval-every", "7"), ("--lr", "-1")):
        with pytest.raises(ValueError, match=flag):
            fewshot.run(parse_example_args(fewshot, QUICK + [flag, value]))
