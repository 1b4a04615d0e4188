"""examples/digits.py end to end at the quick budget, on the real bundled 8x8 digits."""
import math

import pytest
import torch

import neurosim as ns
from neurosim.examples import digits
from neurosim.examples.common import parse_example_args

QUICK = ["--quick", "--threads", "1"]


@pytest.fixture(scope="module")
def result():
    return digits.run(parse_example_args(digits, QUICK))


def conv_macs(channels, size=8, kernel=9, classes=10):
    """MACs of [conv3x3 (same) -> pool2] x L -> linear on one image, counted by hand."""
    total, c_in = 0, 1
    for c in channels:
        total += size * size * c * c_in * kernel
        size, c_in = size // 2, c
    return total + c_in * size * size * classes


def test_every_variant_beats_chance_on_the_held_out_images(result):
    assert result.chance == 0.1 and result.higher_is_better
    assert [(v.name, v.kind) for v in result.variants] == [
        ("CNN", "conventional"), ("spiking CNN", "spiking"), ("spiking CNN, Loihi-ready", "spiking"),
        ("converted CNN", "converted")]
    for v in result.variants:
        assert v.metric > 0.5, (v.name, v.metric)
    cnn, snn, loihi, conv = result.variants
    assert cnn.params == snn.params == conv.params      # one architecture, three routes
    epochs = digits.PRESETS["quick"]["epochs"]
    for v in result.variants:
        assert set(v.history) == {"train_loss", "test_accuracy"}
        assert all(len(curve) == epochs for curve in v.history.values()), v.name
    for name in ("CNN", "spiking CNN", "spiking CNN, Loihi-ready"):
        losses = next(v for v in result.variants if v.name == name).history["train_loss"]
        assert losses[-1] < losses[0], (name, losses)


def test_operation_counts(result):
    cnn, snn, loihi, conv = result.variants
    channels = digits.PRESETS["quick"]["channels"]
    assert cnn.time_steps == 1 and cnn.spikes_per_sample is None
    assert math.isclose(cnn.macs_per_sample, conv_macs(channels), rel_tol=1e-9)
    first_layer = 8 * 8 * channels[0] * 9          # conv0 on the analog image, once per step
    for v, steps in ((snn, digits.PRESETS["quick"]["steps"]), (conv, digits.PRESETS["quick"]["convert_steps"])):
        assert v.time_steps == steps
        assert v.spikes_per_sample > 0 and v.synops_per_sample > 0, v.name
        assert math.isclose(v.macs_per_sample, steps * first_layer, rel_tol=1e-9), v.name
        assert v.raster.dtype == torch.bool and v.raster.shape[0] == steps and v.raster.any(), v.name
        assert v.seconds_per_sample > 0 and v.train_seconds > 0
    assert conv.metric == conv.extra[f"accuracy_at_{conv.time_steps}_steps"]
    # Poisson spike input: every layer is event-driven, conv0's synops are input spikes x 3x3 x C0 (edges fewer)
    c0 = digits.PRESETS["quick"]["loihi_channels"][0]
    input_spikes = float(loihi.deploy_inputs.sum()) / loihi.deploy_inputs.shape[1]
    assert loihi.macs_per_sample == 0 and loihi.time_steps == digits.PRESETS["quick"]["loihi_steps"]
    assert loihi.spikes_per_sample > 0 and loihi.synops_per_sample > 0.3 * input_spikes * 9 * c0


def test_the_loihi_ready_variant_quantises_to_the_fixed_point_model(result):
    from neurosim.hardware.loihi import quantize
    loihi = result.variants[2]
    assert set(loihi.deploy_inputs.unique().tolist()) <= {0.0, 1.0}      # spikes, as Loihi's input layer
    _, report = quantize(loihi.simulator, inputs=loihi.deploy_inputs, timing="engine", max_weight_exp=1)
    assert report.spike_agreement > 0.95 and not report.warnings
    for name, (float_count, fixed_count) in report.spike_counts.items():
        assert abs(float_count - fixed_count) <= 0.1 * max(float_count, 10), name


def test_spiking_variants_are_deployable_engine_graphs(result):
    for v in result.variants[1:]:
        assert isinstance(v.simulator, ns.Simulator) and v.deploy_note == ""
        x = v.deploy_inputs
        assert x.shape[0] == v.time_steps and 1 <= x.shape[1] <= 4 and tuple(x.shape[2:]) == (1, 8, 8)
        with torch.no_grad():
            assert v.simulator.run(x).output.shape == (v.time_steps, x.shape[1], 10)


def test_same_seed_same_figures():
    argv = QUICK + ["--epochs", "1", "--batch-size", "256", "--channels", "4,8", "--steps", "3", "--convert-steps", "8",
                    "--loihi-channels", "2,4", "--loihi-steps", "3"]
    first = digits.run(parse_example_args(digits, argv))
    again = digits.run(parse_example_args(digits, argv))
    assert [v.metric for v in first.variants] == [v.metric for v in again.variants]
    assert [v.history["train_loss"] for v in first.variants] == [v.history["train_loss"] for v in again.variants]
    other = digits.run(parse_example_args(digits, argv + ["--seed", "1"]))
    assert [v.history["train_loss"] for v in other.variants] != [v.history["train_loss"] for v in first.variants]


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--channels", "8,x"], ["--lr", "-1"], ["--bogus"], ["--loihi-channels", ""],
                                  ["--quick", "--full"]])
def test_bad_flags_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_example_args(digits, argv)
    assert exit_info.value.code == 2


def test_a_bad_budget_from_code_is_refused_before_training(monkeypatch):
    args = parse_example_args(digits, QUICK)
    args.steps = 0
    monkeypatch.setattr(digits, "load_images", lambda: pytest.fail("loaded data before checking the budget"))
    with pytest.raises(ValueError, match="--steps"):
        digits.run(args)
    args = parse_example_args(digits, QUICK + ["--input-rate", "2000"])      # p = 2 per 1 ms step
    with pytest.raises(ValueError, match="--input-rate"):
        digits.run(args)
