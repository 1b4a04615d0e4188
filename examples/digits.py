"""8x8 digits: a conventional CNN, the same CNN as a spiking network trained by BPTT, and the
trained CNN converted to a spiking network (three routes to one classifier).

Data: scikit-learn's bundled 8x8 digits (:class:`neurosim.datasets.Digits`, intensities
``x = pixel / 16`` in [0, 1]), the stratified split with split seed 0: 1437 training images,
360 held-out test images (the same for every ``--seed``; the seed moves the initial weights and
the batch order). Chance is 10 %.

Variants (one :class:`~neurosim.plugins.cnn.CNNConfig`, ``[conv3x3 -> act -> avgpool2] x 2 ->
linear``, see ``plugins/cnn.py`` for the equations):

* ``"CNN"`` (conventional): :class:`~neurosim.plugins.cnn.ConventionalCNN`, ReLU, cross-entropy on
  the logits.
* ``"spiking CNN"`` (spiking): :func:`~neurosim.plugins.cnn.spiking_cnn` in a
  :class:`neurosim.Simulator` (LIF populations, LI readout), the image as a constant current for
  ``T = --steps`` steps (direct coding), trained by BPTT with surrogate gradients on
  ``membrane_cross_entropy(v, y, mode="max")``, i.e. logits ``z_c = max_t v[t, c]``; prediction
  ``argmax_c z_c``.
* ``"spiking CNN, Loihi-ready"`` (spiking): the spiking CNN in the form Loihi runs, so that the
  report can quantise it to the fixed-point Loihi model, write its netx file and run that on
  Lava: no pooling, no biases, reset to zero, a LIF readout (``CNNConfig(pool=1, bias=False,
  reset="zero", readout="lif")``, channels ``--loihi-channels``), and Poisson spike input
  (``p = x r dt`` per step with ``r = --input-rate`` Hz, a fresh draw per batch; the test input
  is one fixed draw). Trained by BPTT on ``spike_count_cross_entropy`` (logits = output spike
  counts / 2) for ``T = --loihi-steps`` steps; prediction ``argmax_c`` of the counts. Its input is
  spikes, so every layer's work is synops.
* ``"converted CNN"`` (converted): the trained CNN through :func:`neurosim.plugins.convert`
  (IF neurons, threshold balancing at the 99.9th percentile of the training activations, direct
  coding), no extra training, run for ``T = --convert-steps`` steps; prediction ``argmax_c`` of
  the output spike counts.

The three trained variants use the same budget: ``--epochs`` passes over the 1437 images in the same
seeded batch order, batch ``--batch-size``, Adam with a one-cycle learning-rate schedule peaking
at ``--lr``. ``history`` holds per epoch the mean training loss over the epoch's batches and the
test accuracy after the epoch (monitoring only: the reported model is the last one, no model
selection). The converted variant has no training of its own: its history is the source CNN's.

Operations (per test sample): the CNN's MACs from ``torch.utils.flop_counter``; for the spiking
variants, spikes and synops (active inputs x fan-out) from ``Simulator.run(count_ops=True)``
(:func:`~neurosim.examples.common.measure_simulator`), except that the first convolution
``conv0`` receives the analog image every step (direct coding): its work is counted as dense
MACs (``T x`` the MACs of one conv0 call, as the simulator runs it), not as synops.

Run: ``python examples/digits.py [--quick | --full] [--seed N] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters, measure_simulator,
                                      module_macs_per_sample, run_cli, seed_everything, wall_seconds, positive_float,
                                      positive_int, int_list)
from neurosim.examples.common import train_epochs as shared_train_epochs

NAME = "digits"
TITLE = "8x8 digits (scikit-learn): CNN vs spiking CNN (BPTT; also in the form Loihi runs) vs CNN converted to spikes"

PRESETS = {
    "quick": {"epochs": 3, "batch_size": 32, "lr": 2e-2, "channels": (8, 16), "steps": 6, "convert_steps": 24,
              "loihi_channels": (4, 8), "loihi_steps": 8, "input_rate": 500.0},
    "default": {"epochs": 12, "batch_size": 32, "lr": 2e-2, "channels": (16, 32), "steps": 8, "convert_steps": 32,
                "loihi_channels": (8, 16), "loihi_steps": 16, "input_rate": 500.0},
    "full": {"epochs": 40, "batch_size": 32, "lr": 1e-2, "channels": (32, 64), "steps": 16, "convert_steps": 128,
             "loihi_channels": (16, 32), "loihi_steps": 32, "input_rate": 500.0},
}

DT = 1e-3            # [s] simulation step of both spiking variants
SPLIT_SEED = 0       # the train/test split is fixed; --seed moves weights and batch order
PERCENTILE = 99.9    # threshold balancing of the converted CNN (Rueckauer et al. 2017)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The digits flags (``default=None``: the preset fills them)."""
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs of CNN and spiking CNN")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size")
    parser.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (Adam, one-cycle)")
    parser.add_argument("--channels", type=int_list, default=None, help="conv channels per block, e.g. 16,32")
    parser.add_argument("--steps", type=positive_int, default=None, help="time steps T of the spiking CNN")
    parser.add_argument("--convert-steps", type=positive_int, default=None,
                        help="time steps T of the converted CNN")
    parser.add_argument("--loihi-channels", type=int_list, default=None,
                        help="conv channels of the Loihi-ready spiking CNN, e.g. 8,16")
    parser.add_argument("--loihi-steps", type=positive_int, default=None,
                        help="time steps T of the Loihi-ready spiking CNN")
    parser.add_argument("--input-rate", type=positive_float, default=None,
                        help="Poisson rate [Hz] of a white pixel for the Loihi-ready spiking CNN (<= 1/dt)")


def _check_args(args) -> None:
    """Refuse a bad budget (from a preset or a caller) before any work."""
    from neurosim.validation import check_int, check_number
    for name in ("epochs", "batch_size", "steps", "convert_steps", "loihi_steps"):
        check_int(getattr(args, name), f"examples/digits.py: --{name.replace('_', '-')}", minimum=1)
    check_number(args.lr, "examples/digits.py: --lr", positive=True)
    if not 0 < args.input_rate * DT <= 1:
        raise ValueError(f"examples/digits.py: --input-rate {args.input_rate} Hz gives a spike probability "
                         f"{args.input_rate * DT:g} per {DT:g} s step; it must be in (0, 1]")
    for name in ("channels", "loihi_channels"):
        channels = tuple(getattr(args, name)) if not isinstance(getattr(args, name), int) else (getattr(args, name),)
        if not channels:
            raise ValueError(f"examples/digits.py: --{name.replace('_', '-')} names no conv block")
        for c in channels:
            check_int(c, f"examples/digits.py: --{name.replace('_', '-')}", minimum=1)
        setattr(args, name, channels)


def load_images() -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed split as tensors: ``x_train [1437, 1, 8, 8]``, ``y_train [1437]``, ``x_test
    [360, 1, 8, 8]``, ``y_test [360]`` (float32 intensities in [0, 1], int64 labels)."""
    from neurosim.datasets import Digits
    train = Digits("train", encoding="image", seed=SPLIT_SEED)
    test = Digits("test", encoding="image", seed=SPLIT_SEED)
    return train.images.unsqueeze(1), train.labels, test.images.unsqueeze(1), test.labels


def train_epochs(params, batch_loss: Callable, evaluate: Callable, n_train: int, args,
                 order: torch.Generator) -> Tuple[Dict[str, List[float]], float]:
    """The shared training budget of the trained variants: :func:`neurosim.examples.common.train_epochs`
    with ``args.epochs``, ``args.batch_size`` and ``args.lr``; history ``{"train_loss",
    "test_accuracy"}`` per epoch and the training wall time [s] (evaluation excluded)."""
    return shared_train_epochs(params, batch_loss, evaluate, n_train, args.epochs, args.batch_size, args.lr, order)


def spiking_counts(sim, inputs: torch.Tensor, input_node: str = "conv0"):
    """:func:`measure_simulator` on ``inputs [T, batch, 1, 8, 8]``, with the work of ``input_node``
    (the projection fed by the analog, direct-coded image) moved from synops to dense MACs.
    Returns ``(measurement, synops_per_sample, macs_per_sample)``."""
    from neurosim.metrics import summarize_ops
    m = measure_simulator(sim, inputs)
    with torch.no_grad():
        per_node = summarize_ops(sim.run(inputs, count_ops=True), sim=sim).per_node
    first = per_node.get(input_node, {})
    batch = inputs.shape[1]
    synops = m.synops_per_sample - first.get("synops", 0.0) / batch
    macs = m.macs_per_sample + first.get("macs", 0.0) / batch
    return m, synops, macs


def _membrane_prediction(v: torch.Tensor) -> torch.Tensor:
    """``argmax_c max_t v[t, b, c]`` of an LI readout ``[T, B, C] -> [B]``."""
    return v.max(0).values.argmax(-1)


def run(args) -> ExampleResult:
    """Train and measure the three variants (module docstring) on one seed."""
    import neurosim as ns
    from neurosim.plugins.cnn import CNNConfig, ConventionalCNN, spiking_cnn
    from neurosim.plugins.convert import accuracy_vs_steps, convert
    from neurosim.training import membrane_cross_entropy
    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = CNNConfig(in_shape=(1, 8, 8), channels=args.channels, num_classes=10)
    x_train, y_train, x_test, y_test = load_images()
    n_train, n_test = len(y_train), len(y_test)
    variants = []

    # ---------------------------------------------------------------- conventional CNN
    seed_everything(args.seed)
    cnn = ConventionalCNN(config)

    def cnn_accuracy():
        cnn.eval()
        with torch.no_grad():
            acc = (cnn(x_test).argmax(-1) == y_test).float().mean()
        cnn.train()
        return acc

    cnn_history, cnn_seconds = train_epochs(
        cnn.parameters(), lambda idx: F.cross_entropy(cnn(x_train[idx]), y_train[idx]), cnn_accuracy,
        n_train, args, torch.Generator().manual_seed(args.seed))
    cnn.eval()
    with torch.no_grad(), wall_seconds() as t:
        cnn_acc = float((cnn(x_test).argmax(-1) == y_test).float().mean())
    variants.append(VariantResult(
        name="CNN", kind="conventional", metric=cnn_acc, params=count_parameters(cnn), time_steps=1,
        train_seconds=cnn_seconds, seconds_per_sample=t[0] / n_test,
        macs_per_sample=module_macs_per_sample(cnn, x_test[:64]), history=cnn_history))

    # ---------------------------------------------------------------- spiking CNN (BPTT)
    seed_everything(args.seed)
    sim = ns.Simulator(spiking_cnn(config, dt=DT), dt=DT)

    def snn_accuracy():
        with torch.no_grad():
            v = sim.run(ns.direct_encode(x_test, args.steps)).output
        return (_membrane_prediction(v) == y_test).float().mean()

    snn_history, snn_seconds = train_epochs(
        sim.parameters(),
        lambda idx: membrane_cross_entropy(sim.run(ns.direct_encode(x_train[idx], args.steps)).output,
                                           y_train[idx], mode="max"),
        snn_accuracy, n_train, args, torch.Generator().manual_seed(args.seed))
    test_inputs = ns.direct_encode(x_test, args.steps)
    with torch.no_grad(), wall_seconds() as t:
        snn_acc = float((_membrane_prediction(sim.run(test_inputs).output) == y_test).float().mean())
    m, synops, macs = spiking_counts(sim, test_inputs)
    variants.append(VariantResult(
        name="spiking CNN", kind="spiking", metric=snn_acc, params=count_parameters(sim), time_steps=args.steps,
        train_seconds=snn_seconds, seconds_per_sample=t[0] / n_test, macs_per_sample=macs,
        spikes_per_sample=m.spikes_per_sample, synops_per_sample=synops, history=snn_history, raster=m.raster,
        simulator=sim, deploy_inputs=ns.direct_encode(x_test[:4], args.steps).clone()))

    # ---------------------------------------------------------------- Loihi-ready spiking CNN
    variants.append(_loihi_ready_variant(args, x_train, y_train, x_test, y_test))

    # ---------------------------------------------------------------- converted CNN
    with wall_seconds() as t:
        converted = convert(cnn, x_train, percentile=PERCENTILE, encoding="direct", neuron="if", dt=DT)
    convert_seconds = t[0]
    checkpoints = sorted({max(1, args.convert_steps // 4), max(1, args.convert_steps // 2), args.convert_steps})
    with wall_seconds() as t:
        by_steps = accuracy_vs_steps(converted, x_test, y_test, checkpoints)
    m, synops, macs = spiking_counts(converted, ns.direct_encode(x_test, args.convert_steps))
    variants.append(VariantResult(
        name="converted CNN", kind="converted", metric=by_steps[args.convert_steps],
        params=count_parameters(converted), time_steps=args.convert_steps,
        train_seconds=cnn_seconds + convert_seconds, seconds_per_sample=t[0] / n_test, macs_per_sample=macs,
        spikes_per_sample=m.spikes_per_sample, synops_per_sample=synops,
        history={k: list(v) for k, v in cnn_history.items()}, raster=m.raster, simulator=converted,
        deploy_inputs=ns.direct_encode(x_test[:4], args.convert_steps).clone(),
        extra={"conversion_seconds": convert_seconds,
               **{f"accuracy_at_{steps}_steps": acc for steps, acc in by_steps.items()}}))

    return ExampleResult(
        example=NAME, task="8x8 digits, 10 classes (scikit-learn), 1437 train / 360 test images",
        metric_name="test accuracy", higher_is_better=True, chance=0.1, seed=args.seed, size=args.size,
        budget={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                "channels": list(args.channels), "steps": args.steps, "convert_steps": args.convert_steps,
                "loihi_channels": list(args.loihi_channels), "loihi_steps": args.loihi_steps,
                "input_rate_hz": args.input_rate,
                "optimizer": "Adam, one-cycle schedule", "dt": DT, "percentile": PERCENTILE},
        variants=variants, references=[],
        notes=["No published figure for a spiking CNN on scikit-learn's 8x8 digits that we are sure of; "
               "none is quoted.",
               "Test accuracy on the 360 held-out images of the fixed stratified split (split seed 0); the "
               "per-epoch test accuracy is monitoring only (the last model is reported).",
               "The converted CNN is the trained CNN after conversion (no training of its own): its curves "
               "are the CNN's, its train time the CNN's plus the conversion.",
               "Spiking CNN and converted CNN: conv0 gets the analog image every step (direct coding), so its "
               "work counts as dense MACs; synops are the event-driven layers' active inputs x fan-out.",
               "The Loihi-ready spiking CNN (no pooling or biases, reset to zero, LIF readout, Poisson input) "
               "is the variant Loihi can run; the others use pooling, biases, subtractive reset or analog "
               "input, which Loihi's synapses and neurons do not have."])


def _loihi_ready_variant(args, x_train, y_train, x_test, y_test) -> VariantResult:
    """Train and measure the Loihi-ready spiking CNN (module docstring) with the shared budget."""
    import neurosim as ns
    from neurosim.plugins.cnn import CNNConfig, spiking_cnn
    from neurosim.training import spike_count_cross_entropy
    config = CNNConfig(in_shape=(1, 8, 8), channels=args.loihi_channels, num_classes=10, pool=1, bias=False,
                       reset="zero", readout="lif")
    seed_everything(args.seed)
    sim = ns.Simulator(spiking_cnn(config, dt=DT), dt=DT)
    draws = torch.Generator().manual_seed(args.seed + 1)             # the training input's Poisson draws

    def encode(x, generator):
        return ns.poisson_encode(x, args.loihi_steps, DT, max_rate=args.input_rate, generator=generator)

    test_inputs = encode(x_test, torch.Generator().manual_seed(SPLIT_SEED))   # one fixed test draw

    def accuracy():
        with torch.no_grad():
            return (sim.run(test_inputs).output.sum(0).argmax(-1) == y_test).float().mean()

    history, seconds = train_epochs(
        sim.parameters(),
        lambda idx: spike_count_cross_entropy(sim.run(encode(x_train[idx], draws)).output, y_train[idx], scale=0.5),
        accuracy, len(y_train), args, torch.Generator().manual_seed(args.seed))
    with torch.no_grad(), wall_seconds() as t:
        acc = float(accuracy())
    m = measure_simulator(sim, test_inputs)
    return VariantResult(
        name="spiking CNN, Loihi-ready", kind="spiking", metric=acc, params=count_parameters(sim),
        time_steps=args.loihi_steps, train_seconds=seconds, seconds_per_sample=t[0] / len(y_test),
        macs_per_sample=m.macs_per_sample, spikes_per_sample=m.spikes_per_sample,
        synops_per_sample=m.synops_per_sample, history=history, raster=m.raster, simulator=sim,
        deploy_inputs=test_inputs[:, :4].clone())


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
