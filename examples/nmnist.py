"""N-MNIST: a frame-based CNN against a spiking CNN that reads the raw events, on real recordings.

Data: the real N-MNIST subset in ``../shared/data/events/nmnist`` (1000 training and 100 test
recordings of Orchard et al. 2015, ATIS camera, 34x34 pixels, 2 polarities, about 0.3 s each:
three saccades over an MNIST digit), read by :class:`neurosim.datasets.events.NMNIST` from
``--data-root``. ``--train-samples`` / ``--test-samples`` take the first n of a fixed, seeded
shuffle of each split. Both variants see the same recordings through
:func:`neurosim.datasets.transforms.frames` (optionally downsampled by ``--spatial-factor``,
``x <- floor(f x)``), cut to the first ``--duration-ms``:

* **conventional** (``frame-cnn``): the events counted into ``--frames`` frames of
  ``duration / frames`` each (3 frames: about one per saccade), stacked as ``2 F`` channels and
  scaled by ``log(1 + count)``; a ReLU CNN (:class:`neurosim.plugins.cnn.ConventionalCNN`):
  ``[conv3x3 -> ReLU -> avgpool2] x 2 -> linear``. Latency 1 step.
* **spiking** (``spiking-cnn``): the events binned at ``--bin-ms`` (one bin per simulation step,
  ``dt = bin``), clipped to one spike per pixel, polarity and bin, into the same layout as engine
  nodes (:func:`neurosim.plugins.cnn.spiking_cnn`): ``[Conv2d -> LIF -> AvgPool2d] x 2 -> Dense
  -> LI`` readout, loss ``cross_entropy(mean_t v_out[t])``, trained by BPTT with surrogate
  gradients. Latency ``T = duration / bin`` steps.

Both get the same channels, epochs, batch, optimiser (Adam, ``--lr``) and seed. The metric is
test accuracy (chance 0.1); ``history`` holds the mean training loss and the test accuracy after
each epoch. Operation counts: the conventional MACs by ``torch.utils.flop_counter``; the spiking
spikes and synops (active input x fan-out) by ``measure_simulator`` over the test set.

Run: ``python examples/nmnist.py [--quick | --full] [--seed N] [--threads 2]``.
"""
from __future__ import annotations

import math
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.examples.common import (ExampleResult, PaperFigure, VariantResult, count_parameters, measure_simulator,
                                      module_macs_per_sample, run_cli, seed_everything, shared_data, wall_seconds)

NAME = "nmnist"
TITLE = "N-MNIST (real 1000/100 subset): frame-based CNN vs spiking CNN on the raw events"

PRESETS = {
    "quick": {"train_samples": 300, "test_samples": 100, "epochs": 2, "batch_size": 10, "lr": 5e-3,
              "bin_ms": 20.0, "duration_ms": 300.0, "frames": 3, "spatial_factor": 0.5, "channels": "8,16",
              "tau_mem_ms": 40.0, "v_threshold": 0.5},
    "default": {"train_samples": 1000, "test_samples": 100, "epochs": 4, "batch_size": 25, "lr": 5e-3,
                "bin_ms": 10.0, "duration_ms": 300.0, "frames": 3, "spatial_factor": 0.5, "channels": "8,16",
                "tau_mem_ms": 40.0, "v_threshold": 0.5},
    "full": {"train_samples": 1000, "test_samples": 100, "epochs": 20, "batch_size": 25, "lr": 2e-3,
             "bin_ms": 5.0, "duration_ms": 300.0, "frames": 3, "spatial_factor": 1.0, "channels": "16,32",
             "tau_mem_ms": 40.0, "v_threshold": 0.5},
}

CHANCE = 0.1
SENSOR = (34, 34, 2)


def add_arguments(parser) -> None:
    """The example's own flags (each ``default=None``: the preset fills it)."""
    g = parser.add_argument_group("nmnist")
    g.add_argument("--data-root", default=None,
                   help="folder holding NMNIST/{Train,Test}/<digit>/*.bin (default ../shared/data/events/nmnist)")
    g.add_argument("--train-samples", type=int, default=None, help="training recordings used (<= 1000 in the subset)")
    g.add_argument("--test-samples", type=int, default=None, help="test recordings used (<= 100 in the subset)")
    g.add_argument("--epochs", type=int, default=None, help="training epochs (both variants)")
    g.add_argument("--batch-size", type=int, default=None, help="batch size (both variants)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (both variants)")
    g.add_argument("--bin-ms", type=float, default=None, help="spiking variant: event bin = simulation step [ms]")
    g.add_argument("--duration-ms", type=float, default=None, help="events used from the start of each recording [ms]")
    g.add_argument("--frames", type=int, default=None, help="conventional variant: frames stacked as channels")
    g.add_argument("--spatial-factor", type=float, default=None, help="downsampling of x, y in (0, 1] (0.5: 17x17)")
    g.add_argument("--channels", default=None, help="conv channels of the two blocks, e.g. 8,16")
    g.add_argument("--tau-mem-ms", type=float, default=None, help="spiking variant: LIF membrane time constant [ms]")
    g.add_argument("--v-threshold", type=float, default=None, help="spiking variant: LIF threshold (input units)")


def _check_args(args) -> Tuple[int, ...]:
    for name in ("train_samples", "test_samples", "epochs", "batch_size", "frames"):
        if getattr(args, name) < 1:
            raise ValueError(f"examples/nmnist.py: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("lr", "bin_ms", "duration_ms", "tau_mem_ms", "v_threshold"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"examples/nmnist.py: --{name.replace('_', '-')} must be a positive number, got {value}")
    if not 0 < args.spatial_factor <= 1:
        raise ValueError(f"examples/nmnist.py: --spatial-factor must be in (0, 1], got {args.spatial_factor}")
    try:
        channels = tuple(int(c) for c in str(args.channels).split(","))
    except ValueError:
        channels = ()
    if len(channels) != 2 or min(channels) < 1:
        raise ValueError(f"examples/nmnist.py: --channels must be two positive ints like 8,16, got {args.channels!r}")
    return channels


# ----------------------------------------------------------------------------- data

def _subset(dataset, n: int, seed: int) -> List[int]:
    """The first ``n`` indices of a seeded shuffle (every class keeps about its share)."""
    if n > len(dataset):
        raise ValueError(f"examples/nmnist.py: asked for {n} recordings, the split at {dataset.location_on_system} "
                         f"holds {len(dataset)}")
    return np.random.default_rng(seed).permutation(len(dataset))[:n].tolist()


def load_data(args) -> Dict[str, torch.Tensor]:
    """Read the chosen recordings once and bin them for both variants.

    The events are counted once per ``--bin-ms`` bin (``frames(..., time_window=bin)``); the
    spiking input clips those counts to 1 and the conventional frames sum them over
    ``duration / frames`` (binned separately when that is not a whole number of bins).
    Returns ``spikes_train/test [T, N, 2, H, W]`` (uint8 0/1), ``frames_train/test [N, 2F, H, W]``
    (float32, ``log(1 + count)``) and ``y_train/test [N]`` int64."""
    from neurosim.datasets.events import NMNIST
    from neurosim.datasets.transforms import frames
    root = args.data_root if args.data_root is not None else shared_data("events", "nmnist")
    duration = args.duration_ms * 1e3
    to_counts = frames(SENSOR, time_window=args.bin_ms * 1e3, duration=duration, spatial_factor=args.spatial_factor)
    steps = to_counts.steps
    per_frame = steps // args.frames if steps % args.frames == 0 else None
    to_frames = None if per_frame else frames(SENSOR, time_window=duration / args.frames, duration=duration,
                                              spatial_factor=args.spatial_factor)
    out = {}
    for split, train, n in (("train", True, args.train_samples), ("test", False, args.test_samples)):
        data = NMNIST(root, train=train)
        idx = _subset(data, n, args.seed + (0 if train else 1))
        spikes, stacked, labels = [], [], []
        for i in idx:
            events, label = data[i]
            counts = to_counts(events)                                   # [T, 2, H, W]
            spikes.append(counts.clamp(max=1).to(torch.uint8))
            f = counts.reshape(args.frames, per_frame, *counts.shape[1:]).sum(1) if per_frame else to_frames(events)
            stacked.append(torch.log1p(f.reshape(-1, *f.shape[2:])))     # [2F, H, W], frame-major
            labels.append(label)
        out[f"spikes_{split}"] = torch.stack(spikes, 1)
        out[f"frames_{split}"] = torch.stack(stacked)
        out[f"y_{split}"] = torch.tensor(labels, dtype=torch.int64)
    return out


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# ----------------------------------------------------------------------------- variants

def _config(args, channels, in_channels: int, height: int, width: int):
    from neurosim.plugins.cnn import CNNConfig
    return CNNConfig(in_shape=(in_channels, height, width), channels=channels, kernel_size=3, pool=2,
                     pooling="avg", num_classes=10, tau_mem=args.tau_mem_ms * 1e-3, tau_readout=args.tau_mem_ms * 1e-3,
                     v_threshold=args.v_threshold, reset="subtract", readout="li")


def _train(optimizer, batch_loss, evaluate, n_train: int, args, generator):
    """The budget both variants share: ``args.epochs`` passes in batches of ``args.batch_size``
    (order from ``generator``), one ``optimizer`` step per batch on ``batch_loss(index)``, then
    ``evaluate()``. Returns ``({"train_loss": [...], "test_accuracy": [...]}, wall seconds)``,
    the time including the per-epoch evaluation."""
    history = {"train_loss": [], "test_accuracy": []}
    with wall_seconds() as train_time:
        for _ in range(args.epochs):
            losses = []
            for idx in _batches(n_train, args.batch_size, generator):
                loss = batch_loss(idx)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            history["train_loss"].append(float(np.mean(losses)))
            history["test_accuracy"].append(evaluate())
    return history, train_time[0]


def train_conventional(args, data, channels) -> VariantResult:
    """Train and measure the frame-based ReLU CNN."""
    from neurosim.plugins.cnn import ConventionalCNN
    x_train, y_train, x_test, y_test = data["frames_train"], data["y_train"], data["frames_test"], data["y_test"]
    generator = seed_everything(args.seed)
    model = ConventionalCNN(_config(args, channels, *x_train.shape[1:]))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        model.train()
        return accuracy

    history, train_seconds = _train(optimizer, lambda idx: F.cross_entropy(model(x_train[idx]), y_train[idx]),
                                    evaluate, len(y_train), args, generator)
    model.eval()
    with torch.no_grad(), wall_seconds() as infer_time:
        model(x_test)
    return VariantResult(name="frame-cnn", kind="conventional", metric=history["test_accuracy"][-1],
                         params=count_parameters(model), time_steps=1, train_seconds=train_seconds,
                         seconds_per_sample=infer_time[0] / len(y_test),
                         macs_per_sample=module_macs_per_sample(model, x_test[:8]), history=history,
                         deploy_note="conventional ReLU CNN: not a spiking network")


def _scores(sim, x: torch.Tensor) -> torch.Tensor:
    """Class scores ``mean_t v_out[t]`` ``[B, 10]`` of the spiking CNN on ``x [T, B, ...]``."""
    return sim.run(x).output.mean(0)


def train_spiking(args, data, channels) -> VariantResult:
    """Train the spiking CNN (engine nodes) by BPTT with surrogate gradients, then measure it."""
    import neurosim as ns
    from neurosim.plugins.cnn import spiking_cnn
    x_train, y_train = data["spikes_train"], data["y_train"]
    x_test, y_test = data["spikes_test"].float(), data["y_test"]
    dt = args.bin_ms * 1e-3
    generator = seed_everything(args.seed)
    sim = ns.Simulator(spiking_cnn(_config(args, channels, *x_train.shape[2:]), dt=dt), dt=dt)
    optimizer = torch.optim.Adam(sim.parameters(), lr=args.lr)

    def evaluate() -> float:
        with torch.no_grad():
            return (_scores(sim, x_test).argmax(1) == y_test).float().mean().item()

    history, train_seconds = _train(
        optimizer, lambda idx: F.cross_entropy(_scores(sim, x_train[:, idx].float()), y_train[idx]), evaluate,
        len(y_train), args, generator)
    m = measure_simulator(sim, x_test, raster_population="lif0")
    return VariantResult(name="spiking-cnn", kind="spiking", metric=history["test_accuracy"][-1],
                         params=count_parameters(sim), time_steps=m.time_steps, train_seconds=train_seconds,
                         seconds_per_sample=m.seconds_per_sample, macs_per_sample=m.macs_per_sample,
                         spikes_per_sample=m.spikes_per_sample, synops_per_sample=m.synops_per_sample,
                         history=history, raster=m.raster, simulator=sim, deploy_inputs=x_test[:, :4].clone(),
                         extra={"input_events_per_sample": float(x_test.sum() / x_test.shape[1])})


def run(args) -> ExampleResult:
    """Train both variants on the same recordings and budget, seeded by ``args.seed``."""
    channels = _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(args)
    variants = [train_conventional(args, data, channels), train_spiking(args, data, channels)]
    side = data["frames_train"].shape[-1]
    budget = {k: getattr(args, k) for k in PRESETS["default"]}
    budget["input_size"] = f"{side}x{side}x2"
    budget["spiking_steps"] = int(data["spikes_train"].shape[0])
    notes = [f"real N-MNIST recordings, but a subset: {args.train_samples} training / {args.test_samples} test "
             f"samples of the 60,000 / 10,000, {args.epochs} epoch(s), input {side}x{side}; the papers' figures "
             "are for the full dataset, so ours is a much reduced budget",
             "test accuracy on 100 samples moves in steps of 1 point (binomial spread about +-4 points at 80 %)"]
    references = [PaperFigure(model="SLAYER spiking CNN", value=0.9941,
                              source="Shrestha & Orchard, SLAYER, NeurIPS 2018",
                              setting="full N-MNIST (60,000 train / 10,000 test), 34x34x2-12c5-2a-64c5-2a-10 SNN, "
                                      "1 ms steps over 300 ms; figure quoted from memory, not re-checked against the "
                                      "paper offline")]
    return ExampleResult(example=NAME, task="N-MNIST digit classification (real event recordings)",
                         metric_name="test accuracy", higher_is_better=True, chance=CHANCE, seed=args.seed,
                         size=args.size, budget=budget, variants=variants, references=references, notes=notes)


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
