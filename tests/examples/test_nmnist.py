"""examples/nmnist.py at its quick budget on the real N-MNIST subset in ../shared: both variants
above chance, the spiking CNN really spikes and is deployable, histories per epoch, determinism,
and bad flags."""
import json
import math
from pathlib import Path

import pytest
import torch

from neurosim.examples import nmnist
from neurosim.examples.common import parse_example_args

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "events" / "nmnist"
QUICK = ["--quick", "--threads", "1", "--data-root", str(DATA)]


@pytest.fixture(scope="module")
def quick():
    args = parse_example_args(nmnist, QUICK)
    return args, nmnist.run(args)


def test_both_variants_learn_the_real_recordings(quick):
    args, result = quick
    assert result.chance == 0.1 and result.size == "quick" and result.metric_name == "test accuracy"
    by_name = {v.name: v for v in result.variants}
    assert sorted(by_name) == ["frame-cnn", "spiking-cnn"]
    assert by_name["frame-cnn"].kind == "conventional" and by_name["spiking-cnn"].kind == "spiking"
    for v in result.variants:
        assert v.metric > 0.2, (v.name, v.metric)                    # chance 0.1, 100 test samples
        assert len(v.history["train_loss"]) == len(v.history["test_accuracy"]) == args.epochs
        assert v.metric == v.history["test_accuracy"][-1]
        assert v.history["train_loss"][-1] < math.log(10)             # below the loss of a uniform guess
        assert v.params > 0 and v.train_seconds > 0 and v.seconds_per_sample > 0
    assert result.references and all(0.9 < r.value <= 1 for r in result.references)
    json.dumps(result.figures())                                     # the report's figures are JSON-able


def test_the_spiking_cnn_spikes_counts_synops_and_is_deployable(quick):
    args, result = quick
    spiking = {v.name: v for v in result.variants}["spiking-cnn"]
    steps = round(args.duration_ms / args.bin_ms)
    assert spiking.time_steps == steps and result.budget["spiking_steps"] == steps
    assert spiking.spikes_per_sample > 0 and spiking.raster.dtype == torch.bool
    assert spiking.raster.shape[0] == steps and spiking.raster.any()
    # every input spike reaches at least 8 channels x 4 output positions of the first 3x3 conv
    assert spiking.synops_per_sample >= 32 * spiking.extra["input_events_per_sample"] > 0
    assert spiking.macs_per_sample == 0                              # every projection is event-driven
    sim, x = spiking.simulator, spiking.deploy_inputs
    assert tuple(x.shape) == (steps, 4, 2, 17, 17) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert type(sim).__name__ == "Simulator" and tuple(sim.run(x).output.shape) == (steps, 4, 10)
    conventional = {v.name: v for v in result.variants}["frame-cnn"]
    assert conventional.time_steps == 1 and conventional.macs_per_sample > 0 and conventional.spikes_per_sample is None
    assert conventional.simulator is None and conventional.deploy_note


def test_the_same_seed_gives_the_same_figures(quick):
    _, first = quick
    again = nmnist.run(parse_example_args(nmnist, QUICK))
    for a, b in zip(first.variants, again.variants):
        assert a.metric == b.metric and a.history == b.history and a.spikes_per_sample == b.spikes_per_sample


def test_bad_flags_and_values_are_refused():
    with pytest.raises(SystemExit) as stop:
        parse_example_args(nmnist, ["--epochs", "two"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        parse_example_args(nmnist, ["--no-such-flag"])
    assert stop.value.code == 2
    with pytest.raises(ValueError, match="--channels must be two positive ints"):
        nmnist.run(parse_example_args(nmnist, QUICK + ["--channels", "8"]))
    with pytest.raises(ValueError, match="--spatial-factor must be in"):
        nmnist.run(parse_example_args(nmnist, QUICK + ["--spatial-factor", "1.5"]))
    with pytest.raises(ValueError, match="asked for 2000 recordings"):
        nmnist.run(parse_example_args(nmnist, QUICK + ["--train-samples", "2000"]))
    with pytest.raises(FileNotFoundError, match="NMNIST/Train"):
        nmnist.run(parse_example_args(nmnist, ["--quick", "--data-root", "/nonexistent/nmnist"]))
