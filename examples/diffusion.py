"""DDPM on the 8x8 digits: a conventional conv denoiser against the same layout with LIF neurons.

Data: scikit-learn's 8x8 digits, the fixed stratified split of :class:`neurosim.datasets.Digits`
(split seed 0: 1437 training, 360 held-out images), intensities ``x`` in [0, 1] mapped to
``x0 = 2 x - 1`` in [-1, 1] for the diffusion model.

Model (``plugins/diffusion.py``; every schedule computation is diffusers'): ``N = 100`` training
timesteps, Ho et al.'s linear beta schedule rescaled to 100 steps (``beta`` from 1e-3 to 0.2, so
``alpha_bar_N ~ 5e-5`` and ``x_N`` is noise), ``DDPMScheduler`` for the loss and for ancestral
sampling with ``--inference-steps`` steps. The loss is ``|| target - f(x_t, t) ||^2`` with
``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps``; the target follows
``--prediction-type`` (``"sample"``: ``x0``, which trains better than ``"epsilon"`` at this tiny
size; ``"epsilon"``: ``eps`` as in Ho et al.).

Variants, trained on the same data with the same budget (``--epochs`` passes in the same seeded
batch order and with the same noise and timestep draws, batch ``--batch-size``, Adam with a
one-cycle schedule peaking at ``--lr``), then sampled from the same initial noise:

* ``"DDPM, CNN denoiser"``: :class:`~neurosim.plugins.diffusion.ConvDenoiser` (SiLU).
* ``"DDPM, spiking denoiser"``: :class:`~neurosim.plugins.diffusion.SpikingConvDenoiser`, two LIF
  layers and an LI readout run for ``--sim-steps`` steps per denoiser call (BPTT, surrogate
  gradients).

Figures (``metric``: sample quality, higher is better): a digits classifier (scikit-learn
``LogisticRegression``, ``C = 0.3``, fitted on the training images inside the example) gives
``metric = mean_i max_c p(c | sample_i)``. References, the same for both variants:
``real_test_confidence`` (the classifier on the 360 real test images, an upper reference) and
``noise_confidence`` (on the sampler's starting point, ``N(0, 1)`` noise clipped to [-1, 1]:
the lower reference, reported as ``chance``). ``nn_distance``: the mean over samples of the L2
distance (64 pixels, intensity units in [0, 1]) to the nearest training image;
``real_test_nn_distance`` the same for the real test images (what a perfect sampler would get,
roughly). History per epoch: ``train_loss`` (mean over the epoch's batches) and ``val_loss``,
the denoising loss on the 360 test images with fixed noise and timesteps.

Operations, per generated sample (one sampling run = ``--inference-steps`` denoiser calls):

* conventional: ``macs_per_sample`` = the denoiser's MACs per call (``torch.utils.flop_counter``)
  x calls; ``time_steps`` = calls (the sampler is sequential).
* spiking: the denoiser runs as its own loop (not in a ``neurosim.Simulator``), so spikes and
  synops are counted from its spike tensors ``s1, s2 [T, B, hidden, S, S]`` (``forward(...,
  return_spikes=True)``) during the actual sampling run::

      spikes  = sum s1 + sum s2
      synops  = sum_{k, c, i, j} s1[k, c, i, j] F_mid(i, j) + s2[k, c, i, j] F_out(i, j)
      F(i, j) = C_out x #{3x3 kernel taps of (i, j) that land inside the S x S map}

  (``C_out`` = hidden for ``conv_mid``, channels for ``conv_out``; zero padding: border pixels
  reach fewer outputs). ``macs_per_sample``: the analog part, ``conv_in`` on the noisy image and
  the timestep MLP, once per call (their current is reused for all ``--sim-steps`` steps).
  ``time_steps`` = calls x sim steps; ``raster``: the first sample's first LIF layer over the
  whole sampling run.

The spiking denoiser is not exported (``deploy_note``): it is one plug-in stateful module with a
timestep-embedding MLP inside, driven by diffusers' sampler outside any engine graph.

Images: ``ExampleResult.images["samples_<variant slug>.png"]``, a grid of up to 64 samples per
variant (PNG bytes, matplotlib), also written to ``--out`` when given.

Run: ``python examples/diffusion.py [--quick | --full] [--seed N] [--out DIR] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters, module_macs_per_sample,
                                      run_cli, seed_everything, train_epochs, wall_seconds, positive_float,
                                      positive_int)

NAME = "diffusion"
TITLE = "DDPM on 8x8 digits: conventional conv denoiser vs spiking (LIF) denoiser"

PRESETS = {
    "quick": {"epochs": 4, "batch_size": 32, "lr": 1e-2, "hidden": 16, "sim_steps": 4, "inference_steps": 25,
              "samples": 48, "prediction_type": "sample"},
    "default": {"epochs": 20, "batch_size": 32, "lr": 1e-2, "hidden": 32, "sim_steps": 4, "inference_steps": 50,
                "samples": 128, "prediction_type": "sample"},
    "full": {"epochs": 200, "batch_size": 32, "lr": 5e-3, "hidden": 64, "sim_steps": 8, "inference_steps": 100,
             "samples": 512, "prediction_type": "sample"},
}

SPLIT_SEED = 0
NUM_TRAIN_TIMESTEPS = 100
BETAS = (1e-3, 0.2)          # Ho et al.'s 1e-4 .. 0.02 over 1000 steps, rescaled to 100 steps
CLASSIFIER_C = 0.3           # inverse L2 strength of the quality classifier
GRID = 64                    # samples shown per PNG grid
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The diffusion flags (``default=None``: the preset fills them)."""
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs of both denoisers")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size")
    parser.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (Adam, one-cycle)")
    parser.add_argument("--hidden", type=positive_int, default=None, help="feature maps of the denoisers")
    parser.add_argument("--sim-steps", type=positive_int, default=None,
                        help="simulation steps per call of the spiking denoiser")
    parser.add_argument("--inference-steps", type=positive_int, default=None,
                        help=f"DDPM sampling steps (at most {NUM_TRAIN_TIMESTEPS})")
    parser.add_argument("--samples", type=positive_int, default=None, help="samples generated per variant")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, default=None,
                        help="what the denoiser predicts (diffusers' prediction_type)")


def _check_args(args) -> None:
    """Refuse a bad budget (from a preset or a caller) before any work."""
    from neurosim.validation import check_choice, check_int, check_number
    where = "examples/diffusion.py"
    for name in ("epochs", "batch_size", "hidden", "sim_steps", "samples"):
        check_int(getattr(args, name), f"{where}: --{name.replace('_', '-')}", minimum=1)
    check_int(args.inference_steps, f"{where}: --inference-steps", minimum=1, maximum=NUM_TRAIN_TIMESTEPS)
    check_number(args.lr, f"{where}: --lr", positive=True)
    check_choice(args.prediction_type, PREDICTION_TYPES, f"{where}: --prediction-type")
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"{where}: --out {args.out!r} exists and is not a folder")


def load_images() -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed split: ``x_train [1437, 1, 8, 8]``, ``y_train [1437]``, ``x_test [360, 1, 8, 8]``,
    ``y_test [360]``; intensities in [0, 1] (float32), labels int64."""
    from neurosim.datasets import Digits
    train = Digits("train", encoding="image", seed=SPLIT_SEED)
    test = Digits("test", encoding="image", seed=SPLIT_SEED)
    return train.images.unsqueeze(1), train.labels, test.images.unsqueeze(1), test.labels


def slug(name: str) -> str:
    """``"DDPM, CNN denoiser"`` -> ``"ddpm_cnn_denoiser"`` (for file names)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# ------------------------------------------------------------------------------------- quality figures
class QualityJudge:
    """The sample-quality figures: a logistic-regression digits classifier fitted on
    ``x_train [N, 1, 8, 8]`` (intensities in [0, 1]) and the training set for nearest neighbours.

    ``confidence(x) = mean_i max_c p(c | x_i)``; ``nn_distance(x) = mean_i min_j ||x_i - x_train_j||_2``
    (64 pixels, intensity units). Both take ``x [B, 1, 8, 8]`` in [0, 1]."""

    def __init__(self, x_train: torch.Tensor, y_train: torch.Tensor, seed: int):
        from sklearn.linear_model import LogisticRegression
        self.train = x_train.flatten(1)
        self.model = LogisticRegression(C=CLASSIFIER_C, max_iter=5000, random_state=seed)
        self.model.fit(self.train.numpy(), y_train.numpy())

    def confidence(self, x: torch.Tensor) -> float:
        return float(self.model.predict_proba(x.flatten(1).double().numpy()).max(1).mean())

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float(self.model.score(x.flatten(1).double().numpy(), y.numpy()))

    def nn_distance(self, x: torch.Tensor) -> float:
        return float(torch.cdist(x.flatten(1).double(), self.train.double()).min(1).values.mean())


def to_intensity(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] -> intensities [0, 1]: ``(x + 1) / 2``, clipped."""
    return ((x + 1) / 2).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------- spiking counts
def fan_out_map(size: int, out_channels: int, kernel: int = 3) -> torch.Tensor:
    """``F(i, j)``: outputs one input pixel of a same-padded ``kernel x kernel`` convolution reaches,
    ``out_channels x`` the number of kernel taps inside the ``size x size`` map; ``[size, size]``."""
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    taps = F.conv2d(ones, torch.ones(1, 1, kernel, kernel, dtype=torch.float64), padding=kernel // 2)
    return taps[0, 0] * out_channels


class SpikeCounter(nn.Module):
    """Wraps a :class:`~neurosim.plugins.diffusion.SpikingConvDenoiser` for sampling: returns its
    prediction and adds up, over every call, the spikes and synops of its two LIF layers (module
    docstring) and the first sample's first-layer spikes (``raster_steps``, a list of
    ``[T, neurons]`` bool). ``[B, C, S, S], [B] -> [B, C, S, S]``."""

    def __init__(self, denoiser: nn.Module):
        super().__init__()
        self.denoiser = denoiser
        cfg = denoiser.config
        self.fan_mid = fan_out_map(cfg.image_size, cfg.hidden)
        self.fan_out = fan_out_map(cfg.image_size, cfg.channels)
        self.spikes, self.synops, self.calls = 0.0, 0.0, 0
        self.raster_steps: List[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        v, (s1, s2) = self.denoiser(x, t, return_spikes=True)
        self.spikes += float(s1.sum() + s2.sum())
        self.synops += float((s1.sum(2).double() * self.fan_mid).sum() + (s2.sum(2).double() * self.fan_out).sum())
        self.calls += 1
        self.raster_steps.append(s1[:, 0].flatten(1).bool())
        return v


def _input_macs(denoiser: nn.Module, x: torch.Tensor, t: torch.Tensor) -> float:
    """MACs per sample of the spiking denoiser's analog part, ``conv_in(x) + W_t e(t)``."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        denoiser.cell.input_current(x, t)
    return counter.get_total_flops() / 2 / x.shape[0]


# ------------------------------------------------------------------------------------- training, sampling
def train_denoiser(denoiser: nn.Module, scheduler, x_train: torch.Tensor, x_val: torch.Tensor, args
                   ) -> Tuple[Dict[str, List[float]], float]:
    """The shared budget (module docstring) on images in [-1, 1] ``[N, 1, 8, 8]``. The batch order
    comes from a generator seeded ``args.seed``, the noise and timesteps from one seeded
    ``args.seed + 1``; ``val_loss`` uses fixed draws (seed ``10_000 + args.seed``) every epoch.
    Returns ``({"train_loss": [...], "val_loss": [...]}, training seconds)``."""
    from neurosim.plugins.diffusion import training_loss
    noise = torch.Generator().manual_seed(args.seed + 1)

    def val_loss():
        with torch.no_grad():
            return training_loss(denoiser, scheduler, x_val, torch.Generator().manual_seed(10_000 + args.seed)).loss

    return train_epochs(denoiser.parameters(), lambda idx: training_loss(denoiser, scheduler, x_train[idx], noise).loss,
                        val_loss, x_train.shape[0], args.epochs, args.batch_size, args.lr,
                        torch.Generator().manual_seed(args.seed), metric="val_loss")


def sample_grid_png(images: torch.Tensor, title: str) -> bytes:
    """A PNG of up to :data:`GRID` images ``[B, 1, 8, 8]`` (intensities in [0, 1]) in a square grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    images = images[:GRID, 0]
    side = int(torch.ceil(torch.tensor(images.shape[0] ** 0.5)))
    fig, axes = plt.subplots(side, side, figsize=(side * 0.5, side * 0.5 + 0.3), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < images.shape[0]:
            ax.imshow(images[k].numpy(), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.axis("off")
    fig.suptitle(title, fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _write(folder: str, name: str, data: bytes) -> None:
    from neurosim.atomic import atomic_path
    os.makedirs(folder, exist_ok=True)
    with atomic_path(os.path.join(folder, name)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


# ------------------------------------------------------------------------------------- the example
def run_with_samples(args) -> Tuple[ExampleResult, Dict[str, torch.Tensor]]:
    """:func:`run`, also returning each variant's samples ``[samples, 1, 8, 8]`` in [-1, 1]."""
    from neurosim.plugins.diffusion import ConvDenoiser, DiffusionConfig, SpikingConvDenoiser, make_scheduler, sample
    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = DiffusionConfig(image_size=8, channels=1, hidden=args.hidden, time_dim=16,
                             num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=BETAS[0], beta_end=BETAS[1],
                             prediction_type=args.prediction_type, sim_steps=args.sim_steps)
    x_train, y_train, x_test, y_test = load_images()
    judge = QualityJudge(x_train, y_train, args.seed)
    noise = torch.randn(len(y_test), 1, 8, 8, generator=torch.Generator().manual_seed(20_000 + args.seed))
    references = {"real_test_confidence": judge.confidence(x_test),
                  "noise_confidence": judge.confidence(to_intensity(noise.clamp(-1, 1))),
                  "real_test_nn_distance": judge.nn_distance(x_test),
                  "classifier_test_accuracy": judge.accuracy(x_test, y_test)}
    shape = (args.samples, 1, 8, 8)
    variants, images, samples = [], {}, {}
    for name, cls in (("DDPM, CNN denoiser", ConvDenoiser), ("DDPM, spiking denoiser", SpikingConvDenoiser)):
        seed_everything(args.seed)
        denoiser = cls(config)
        history, train_seconds = train_denoiser(denoiser, make_scheduler(config), 2 * x_train - 1,
                                                2 * x_test - 1, args)
        denoiser.eval()
        spiking = cls is SpikingConvDenoiser
        model = SpikeCounter(denoiser) if spiking else denoiser
        with wall_seconds() as t:
            drawn = sample(model, make_scheduler(config), shape, args.inference_steps,
                           torch.Generator().manual_seed(30_000 + args.seed))
        x = to_intensity(drawn)
        probe_x, probe_t = 2 * x_test[:32] - 1, torch.full((32,), NUM_TRAIN_TIMESTEPS // 2)
        fields = dict(params=count_parameters(denoiser), train_seconds=train_seconds,
                      seconds_per_sample=t[0] / args.samples, history=history,
                      extra={"nn_distance": judge.nn_distance(x), **references})
        if spiking:
            variants.append(VariantResult(
                name=name, kind="spiking", metric=judge.confidence(x),
                time_steps=args.inference_steps * args.sim_steps,
                macs_per_sample=_input_macs(denoiser, probe_x, probe_t) * args.inference_steps,
                spikes_per_sample=model.spikes / args.samples, synops_per_sample=model.synops / args.samples,
                raster=torch.cat(model.raster_steps)[:, :256],
                deploy_note="the spiking denoiser is one plug-in stateful module (SpikingDenoiserCell, with a "
                            "timestep-embedding MLP) driven by diffusers' sampler outside an engine graph: no NIR "
                            "mapping", **fields))
        else:
            variants.append(VariantResult(
                name=name, kind="conventional", metric=judge.confidence(x), time_steps=args.inference_steps,
                macs_per_sample=module_macs_per_sample(denoiser, probe_x, probe_t) * args.inference_steps,
                **fields))
        samples[name] = drawn
        png = f"samples_{slug(name)}.png"
        images[png] = sample_grid_png(x, f"{name} (seed {args.seed})")
        if args.out is not None:
            _write(args.out, png, images[png])

    result = ExampleResult(
        example=NAME, task="DDPM image generation, 8x8 digits (scikit-learn), 1437 training images",
        metric_name="classifier confidence on samples", higher_is_better=True,
        chance=references["noise_confidence"], seed=args.seed, size=args.size,
        budget={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "hidden": args.hidden,
                "sim_steps": args.sim_steps, "inference_steps": args.inference_steps, "samples": args.samples,
                "prediction_type": args.prediction_type, "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
                "betas": list(BETAS), "optimizer": "Adam, one-cycle schedule", "sampler": "DDPM (diffusers)"},
        variants=variants, references=[], images=images,
        notes=[f"Quality: a logistic-regression digits classifier (C={CLASSIFIER_C}, test accuracy "
               f"{references['classifier_test_accuracy']:.3f}) has mean confidence "
               f"{references['real_test_confidence']:.3f} on the real test images (upper reference) and "
               f"{references['noise_confidence']:.3f} on the sampler's starting noise (lower reference, 'chance').",
               f"Nearest-training-image L2 distance of the real test images: "
               f"{references['real_test_nn_distance']:.3f} (intensity units, 64 pixels); see each variant's "
               f"nn_distance.",
               "No published figure for DDPM on scikit-learn's 8x8 digits that we are sure of; none is quoted. "
               "The denoisers are three-layer conv nets, far below the U-Nets of Ho et al. 2020.",
               "time_steps: denoiser calls (x simulation steps per call for the spiking denoiser)."])
    return result, samples


def run(args) -> ExampleResult:
    """Train both denoisers, sample from each and measure (module docstring), on one seed."""
    return run_with_samples(args)[0]


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
