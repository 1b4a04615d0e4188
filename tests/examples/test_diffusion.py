"""examples/diffusion.py end to end at the quick budget, on the real bundled 8x8 digits."""
import io
import math

import pytest
import torch
import torch.nn.functional as F

from neurosim.examples import diffusion
from neurosim.examples.common import parse_example_args

QUICK = ["--quick", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion")
    result, samples = diffusion.run_with_samples(parse_example_args(diffusion, QUICK + ["--out", str(out)]))
    return result, samples, out


def test_samples_have_the_image_shape_and_range(run):
    result, samples, _ = run
    n = diffusion.PRESETS["quick"]["samples"]
    assert list(samples) == [v.name for v in result.variants]
    for x in samples.values():
        assert x.shape == (n, 1, 8, 8) and torch.isfinite(x).all()
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert x.std() > 0.2                    # not a constant image


def test_the_conventional_denoiser_beats_the_noise_reference(run):
    result, samples, _ = run
    conventional = result.variants[0]
    assert conventional.kind == "conventional" and result.higher_is_better
    noise = conventional.extra["noise_confidence"]
    assert result.chance == noise
    assert conventional.metric > noise, (conventional.metric, noise)
    assert conventional.metric < conventional.extra["real_test_confidence"] + 0.1
    # nearest-neighbour distance, recomputed here; the samples are nearer the training set than noise is
    train = diffusion.load_images()[0].flatten(1).double()
    nearest = lambda x: float(torch.cdist(x.flatten(1).double(), train).min(1).values.mean())
    x = diffusion.to_intensity(samples[conventional.name])
    noise_images = diffusion.to_intensity(torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert math.isclose(conventional.extra["nn_distance"], nearest(x), rel_tol=1e-9)
    assert conventional.extra["nn_distance"] < nearest(noise_images)
    assert conventional.extra["real_test_nn_distance"] < conventional.extra["nn_distance"]


def test_images_decode_as_png_and_are_written_to_out(run):
    from PIL import Image
    result, _, out = run
    assert sorted(result.images) == ["samples_ddpm_cnn_denoiser.png", "samples_ddpm_spiking_denoiser.png"]
    for name, data in result.images.items():
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG" and min(image.size) > 100
        assert (out / name).read_bytes() == data
    assert not [p for p in out.iterdir() if p.name.startswith(".")]       # no temporary files left


def test_histories_and_spiking_counts(run):
    result, _, _ = run
    preset = diffusion.PRESETS["quick"]
    for v in result.variants:
        assert set(v.history) == {"train_loss", "val_loss"}
        assert all(len(c) == preset["epochs"] for c in v.history.values()), v.name
        assert v.history["val_loss"][-1] < v.history["val_loss"][0], v.name
        assert v.simulator is None
    spiking = result.variants[1]
    assert spiking.deploy_note and result.variants[0].deploy_note == ""
    calls, steps = preset["inference_steps"], preset["sim_steps"]
    assert spiking.kind == "spiking" and spiking.time_steps == calls * steps
    assert spiking.spikes_per_sample > 0 and spiking.raster.any()
    assert spiking.raster.dtype == torch.bool and spiking.raster.shape[0] == calls * steps
    # every spike reaches at least 4 and at most 9 kernel taps of both next layers
    hidden = preset["hidden"]
    assert 4 * hidden <= spiking.synops_per_sample / spiking.spikes_per_sample <= 9 * hidden
    # analog part per call: conv_in (hidden x 9 per pixel) and the time MLP (16 x hidden + hidden x hidden)
    per_call = 64 * hidden * 9 + 16 * hidden + hidden * hidden
    assert math.isclose(spiking.macs_per_sample, calls * per_call, rel_tol=1e-9)


def test_synops_of_a_hand_made_spike_pattern():
    from neurosim.plugins.diffusion import DiffusionConfig, SpikingConvDenoiser
    counter = diffusion.SpikeCounter(SpikingConvDenoiser(DiffusionConfig(hidden=3)))
    fan = counter.fan_mid
    assert fan[0, 0] == 3 * 4 and fan[0, 3] == 3 * 6 and fan[3, 3] == 3 * 9
    assert fan.sum() == 3 * F.conv2d(torch.ones(1, 1, 8, 8), torch.ones(1, 1, 3, 3), padding=1).sum()


def test_same_seed_same_figures():
    argv = QUICK + ["--epochs", "1", "--batch-size", "256", "--hidden", "4", "--inference-steps", "5", "--samples", "8"]
    first, again = (diffusion.run(parse_example_args(diffusion, argv)) for _ in range(2))
    assert [v.metric for v in first.variants] == [v.metric for v in again.variants]
    assert [v.history for v in first.variants] == [v.history for v in again.variants]
    other = diffusion.run(parse_example_args(diffusion, argv + ["--seed", "1"]))
    assert [v.history for v in other.variants] != [v.history for v in first.variants]


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--prediction-type", "noise"], ["--samples", "x"],
                                  ["--bogus"]])
def test_bad_flags_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_example_args(diffusion, argv)
    assert exit_info.value.code == 2


def test_a_bad_budget_is_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(diffusion, "load_images", lambda: pytest.fail("loaded data before checking the budget"))
    args = parse_example_args(diffusion, QUICK + ["--inference-steps", "101"])
    with pytest.raises(ValueError, match="--inference-steps"):
        diffusion.run(args)
    (tmp_path / "file").write_text("x")
    args = parse_example_args(diffusion, QUICK + ["--out", str(tmp_path / "file")])
    with pytest.raises(ValueError, match="not a folder"):
        diffusion.run(args)
