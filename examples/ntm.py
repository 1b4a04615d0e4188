"""Neural Turing Machine, LSTM controller vs spiking (recurrent LIF) controller, and an LSTM
without memory, on the copy task or associative recall (Graves, Wayne & Danihelka 2014).

Task (``--task``, default ``copy``; one task per run, ``neurosim compare ntm --task recall`` for
the other), from :mod:`neurosim.datasets.tasks`:

* ``copy``: ``l`` random ``W``-bit vectors (``l`` uniform in ``1..length``), a delimiter, then
  ``l`` blank steps during which the vectors must come out again;
* ``recall``: 2..``items`` items of ``item_len`` vectors each; after a query item, output the
  item that followed it.

Variants (every one trained on the same sequences, in the same order, for the same number of
Adam steps with the same batch, learning rate and gradient clipping):

* ``NTM, LSTM controller`` (conventional): :class:`~neurosim.plugins.ntm.NTM`, ``controller="lstm"``;
* ``NTM, spiking controller`` (``kind="hybrid"``): the same memory and heads driven by a recurrent
  LIF population (``controller="lif"``); memory, addressing and the heads' inputs stay analog
  (the heads read the controller's spikes *and* membranes), so the variant is a hybrid;
* ``LSTM, no memory`` (conventional): ``nn.LSTM`` + linear readout with at least as many
  parameters as the NTM with LSTM controller: what memory adds.

Loss, per batch: ``BCE(sigmoid(y_t), b_t)`` averaged over the recall steps' bits only. Metric:
**bit accuracy** on held-out sequences, ``mean 1[(y_t > 0) == b_t]`` over every recall bit
(chance 0.5, higher is better); ``extra`` adds the bit errors per sequence (the figure of
Graves et al.'s learning curves are in bits per sequence) and the bit accuracy on sequences twice
as long as any seen in training (copy: ``2 * length`` vectors; recall: ``2 * items`` items), which
a net that learnt to use its memory handles better than one that memorised in its state.

Cost of the spiking variant, per test sequence of ``T`` steps: spikes ``sum_t |s_t|`` of the
controller; synops ``= spikes x fan-out`` with ``fan-out = hidden + head_outputs + W`` (each spike
feeds ``W_rec``, the head layer and the output layer: the spike halves of ``[s_t, v_t]``); MACs:
everything ``torch.utils.flop_counter`` counts in a run (``W_in`` on the analog ``[x_t, r_{t-1}]``,
the membrane halves of the head and output layers, the memory reads) minus the dense equivalent of
those spike-driven products, ``T x hidden x fan-out``.

Shapes: inputs ``x [T, batch, W + 1]`` (copy) or ``[T, batch, W + 2]`` (recall), outputs
``[T, batch, W]`` logits, targets ``[L, batch, W]``, masks ``[T, batch]`` (True on recall steps).

Example::

    >>> from neurosim.examples import ntm
    >>> from neurosim.examples.common import parse_example_args
    >>> result = ntm.run(parse_example_args(ntm, ["--quick", "--threads", "1"]))
    >>> [(v.name, round(v.metric, 3)) for v in result.variants]

Command line: ``python examples/ntm.py [--quick | --full] [--task recall] [--seed N]``.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters, module_macs_per_sample,
                                      run_cli, seed_everything, wall_seconds, positive_float, positive_int)

NAME = "ntm"
TITLE = "Neural Turing Machine: LSTM vs spiking (LIF) controller, and an LSTM without memory (copy / recall)"
TASKS = ("copy", "recall")
GRAD_CLIP = 10.0          # max global gradient norm, every variant

PRESETS = {
    # a few seconds on one thread: sequences of at most 3 vectors of 4 bits
    "quick": {"task": "copy", "epochs": 2, "train_samples": 640, "batch": 32, "lr": 2e-2, "width": 4, "length": 3,
              "items": 3, "item_len": 1, "memory_slots": 8, "memory_width": 6, "hidden": 32,
              "val_samples": 128, "test_samples": 256},
    # about 1-2 minutes for the three variants on 2 cores
    "default": {"task": "copy", "epochs": 4, "train_samples": 3840, "batch": 64, "lr": 1e-2, "width": 6,
                "length": 5, "items": 4, "item_len": 2, "memory_slots": 16, "memory_width": 8, "hidden": 64,
                "val_samples": 256, "test_samples": 512},
    # Graves et al. 2014's sizes (copy: 8 bits, lengths 1..20, 128 x 20 memory, 100 controller units;
    # recall: items of 3 six-bit vectors, 2..6 items); hours on a CPU
    "full": {"task": "copy", "epochs": 50, "train_samples": 12800, "batch": 32, "lr": 1e-3, "width": 8,
             "length": 20, "items": 6, "item_len": 3, "memory_slots": 128, "memory_width": 20, "hidden": 100,
             "val_samples": 512, "test_samples": 1024},
}


_INT_FLAGS = ("epochs", "train_samples", "batch", "width", "length", "items", "item_len", "memory_slots",
              "memory_width", "hidden", "val_samples", "test_samples")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The example's own flags (each ``None`` by default: the preset fills it)."""
    parser.add_argument("--task", choices=TASKS, default=None, help="copy (default) or associative recall")
    parser.add_argument("--epochs", type=positive_int, default=None, help="passes over the training sequences")
    parser.add_argument("--train-samples", type=positive_int, default=None, help="training sequences")
    parser.add_argument("--batch", type=positive_int, default=None, help="sequences per Adam step")
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    parser.add_argument("--width", type=positive_int, default=None, help="bits per vector W")
    parser.add_argument("--length", type=positive_int, default=None, help="copy: longest training sequence")
    parser.add_argument("--items", type=positive_int, default=None, help="recall: most items per sequence (>= 2)")
    parser.add_argument("--item-len", type=positive_int, default=None, help="recall: vectors per item")
    parser.add_argument("--memory-slots", type=positive_int, default=None, help="memory rows N")
    parser.add_argument("--memory-width", type=positive_int, default=None, help="memory row width")
    parser.add_argument("--hidden", type=positive_int, default=None, help="controller size (LSTM units, LIF neurons)")
    parser.add_argument("--val-samples", type=positive_int, default=None, help="validation sequences (per epoch)")
    parser.add_argument("--test-samples", type=positive_int, default=None, help="held-out test sequences")


def _check_args(args) -> None:
    """Raise ``ValueError`` naming the bad setting before any work (for a hand-built Namespace)."""
    if getattr(args, "task", None) not in TASKS:
        raise ValueError(f"examples/ntm.py: task must be one of {list(TASKS)}, got {getattr(args, 'task', None)!r}")
    for name in _INT_FLAGS:
        value = getattr(args, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"examples/ntm.py: {name} must be an int >= 1, got {value!r}")
    if not isinstance(args.lr, (int, float)) or not args.lr > 0:
        raise ValueError(f"examples/ntm.py: lr must be > 0, got {args.lr!r}")
    if args.task == "recall" and args.items < 2:
        raise ValueError(f"examples/ntm.py: items must be >= 2 for recall (the query needs a next item), got {args.items}")
    if args.memory_slots < 3:
        raise ValueError(f"examples/ntm.py: memory_slots must be >= 3 (shifts -1, 0, +1), got {args.memory_slots}")


# ---------------------------------------------------------------------- data
def _dataset(args, n: int, seed: int, longer: bool = False):
    """Copy or recall sequences; ``longer``: twice the training length (fixed), for generalisation."""
    from neurosim.datasets.tasks import AssociativeRecall, CopyTask
    if args.task == "copy":
        length = 2 * args.length if longer else args.length
        return CopyTask(n_samples=n, width=args.width, length=length, min_length=length if longer else 1, seed=seed)
    items = 2 * args.items if longer else args.items
    return AssociativeRecall(n_samples=n, width=args.width, item_len=args.item_len, n_items=items,
                             min_items=items if longer else 2, seed=seed)


def _batch(data, index: torch.Tensor):
    """``(x [T, B, C], target [L, B, W], mask [T, B])`` of the samples ``index``, time first."""
    return (data.inputs[index].transpose(0, 1), data.targets[index].transpose(0, 1),
            data.masks[index].transpose(0, 1))


def recall_bits(y: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
    """The outputs on the recall steps and their targets, aligned: ``y [T, B, W]`` logits,
    ``target [L, B, W]``, ``mask [T, B]`` -> ``(logits [n, W], bits [n, W])`` with
    ``n = mask.sum()``, sequence by sequence; the k-th True step of sample b is target ``[k, b]``."""
    lengths = mask.sum(0)                                                        # [B]
    valid = torch.arange(target.shape[0], device=mask.device)[:, None] < lengths[None, :]   # [L, B]
    return y.transpose(0, 1)[mask.transpose(0, 1)], target.transpose(0, 1)[valid.transpose(0, 1)]


@torch.no_grad()
def evaluate(model_fn: Callable[[torch.Tensor], torch.Tensor], data, batch: int = 256) -> Dict[str, float]:
    """Bit accuracy ``mean 1[(y > 0) == b]`` over every recall bit of ``data`` and bit errors per
    sequence ``sum 1[(y > 0) != b] / sequences``."""
    correct = total = 0
    errors = 0.0
    for start in range(0, len(data), batch):
        x, target, mask = _batch(data, torch.arange(start, min(start + batch, len(data))))
        logits, bits = recall_bits(model_fn(x), target, mask)
        right = ((logits > 0).float() == bits)
        correct += int(right.sum())
        total += right.numel()
        errors += float((~right).sum())
    return {"bit_accuracy": correct / total, "bit_errors_per_sequence": errors / len(data)}


# ---------------------------------------------------------------------- models
class _BatchFirst(nn.Module):
    """``[B, T, C] -> [B, T, W]`` around a time-first sequence function (for MAC counting)."""

    def __init__(self, owner: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, x):
        return self.fn(x.transpose(0, 1)).transpose(0, 1)


def _ntm(args, controller: str, inputs: int):
    from neurosim.plugins.ntm import NTM, NTMConfig
    return NTM(NTMConfig(input_size=inputs, output_size=args.width, memory_slots=args.memory_slots,
                         memory_width=args.memory_width, hidden=args.hidden, controller=controller))


def _lstm_baseline(args, inputs: int, at_least: int):
    """``nn.LSTM`` + readout, the smallest hidden size with ``>= at_least`` parameters."""
    from neurosim.plugins.recurrent import RecurrentClassifier, RecurrentConfig
    W = args.width
    hidden = 1
    while 4 * hidden * (inputs + hidden + 2) + (hidden + 1) * W < at_least:
        hidden += 1
    config = RecurrentConfig(input_size=inputs, hidden_size=hidden, output_size=W, cell="lstm")
    return RecurrentClassifier(config), config


# ---------------------------------------------------------------------- training
def train(model: nn.Module, model_fn, train_data, val_data, args, seed: int):
    """Adam on the BCE of the recall bits, ``args.epochs`` passes over ``train_data`` in an order
    drawn from ``seed`` (the same for every variant). Returns ``(history, train_seconds)``."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    order_gen = torch.Generator().manual_seed(seed)
    history: Dict[str, List[float]] = {"train_loss": [], "val_bit_accuracy": []}
    seconds = 0.0
    for _ in range(args.epochs):
        order = torch.randperm(len(train_data), generator=order_gen)
        losses = []
        with wall_seconds() as t:
            model.train()
            for start in range(0, len(order), args.batch):
                x, target, mask = _batch(train_data, order[start:start + args.batch])
                logits, bits = recall_bits(model_fn(x), target, mask)
                loss = F.binary_cross_entropy_with_logits(logits, bits)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()
                losses.append(loss.item())
        seconds += t[0]
        model.eval()
        history["train_loss"].append(sum(losses) / len(losses))
        history["val_bit_accuracy"].append(evaluate(model_fn, val_data)["bit_accuracy"])
    return history, seconds


@torch.no_grad()
def controller_spikes(ntm, x: torch.Tensor) -> torch.Tensor:
    """The LIF controller's spikes over a run from the initial state: ``x [T, B, C] -> [T, B, hidden]``."""
    state, spikes = None, []
    for x_t in x:
        _, state = ntm(x_t, state)
        spikes.append(state.controller[1])
    return torch.stack(spikes)


def _timed_inference(model_fn, x) -> float:
    with torch.no_grad(), wall_seconds() as t:
        model_fn(x)
    return t[0] / x.shape[1]


def run(args) -> ExampleResult:
    """Train the three variants on the same sequences and measure them (module docstring)."""
    _check_args(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    seed = int(args.seed)
    seed_everything(seed)
    base = 1000 * seed
    train_data = _dataset(args, args.train_samples, base + 1)
    val_data = _dataset(args, args.val_samples, base + 2)
    test_data = _dataset(args, args.test_samples, base + 3)
    longer_data = _dataset(args, args.test_samples, base + 4, longer=True)
    inputs = train_data.inputs.shape[-1]
    x_probe = test_data.inputs[:min(16, len(test_data))].transpose(0, 1)      # [T, b, C] for MACs / timing
    T = test_data.inputs.shape[1]

    variants = []
    specs = [("NTM, LSTM controller", "conventional", "lstm"), ("NTM, spiking controller", "hybrid", "lif"),
             ("LSTM, no memory", "conventional", None)]
    ntm_params = None
    for name, kind, controller in specs:
        torch.manual_seed(seed)
        if controller is not None:
            model = _ntm(args, controller, inputs)
            model_fn = model.run
            mac_fn = model.run
        else:
            from neurosim.plugins.recurrent import RecurrentCell
            model, config = _lstm_baseline(args, inputs, ntm_params)
            model_fn = lambda x, m=model: m(x)[0]
            cell = RecurrentCell(config, share=model)              # same Parameters, stepped: flop-countable
            mac_fn = lambda x, c=cell: c.run(x)[0]
        params = count_parameters(model)
        if controller == "lstm":
            ntm_params = params
        history, train_seconds = train(model, model_fn, train_data, val_data, args, seed)
        model.eval()
        test = evaluate(model_fn, test_data)
        longer = evaluate(model_fn, longer_data)
        macs = module_macs_per_sample(_BatchFirst(model, mac_fn), x_probe.transpose(0, 1))
        extra = {"bit_errors_per_sequence": test["bit_errors_per_sequence"],
                 "longer_bit_accuracy": longer["bit_accuracy"],
                 "longer_bit_errors_per_sequence": longer["bit_errors_per_sequence"]}
        result = dict(name=name, kind=kind, metric=test["bit_accuracy"], params=params, time_steps=T,
                      train_seconds=train_seconds, seconds_per_sample=_timed_inference(model_fn, x_probe),
                      macs_per_sample=macs, history=history, extra=extra)
        if controller == "lif":
            spikes = controller_spikes(model, test_data.inputs[:256].transpose(0, 1))      # [T, B, H]
            fan_out = args.hidden + model.memory.heads.out_features + args.width
            per_sample = float(spikes.sum()) / spikes.shape[1]
            result.update(spikes_per_sample=per_sample, synops_per_sample=per_sample * fan_out,
                          macs_per_sample=max(0.0, macs - T * args.hidden * fan_out),
                          raster=spikes[:, 0].bool(),
                          deploy_note="the NTM's memory and heads (content and location addressing, softmax, "
                                      "erase/add) are analog and read the controller's membranes: one plug-in "
                                      "module with no NIR mapping (only its LIF controller is spiking)")
            extra["firing_rate_per_step"] = per_sample / (T * args.hidden)
        variants.append(VariantResult(**result))

    what = (f"copy, {args.width}-bit vectors, lengths 1..{args.length}" if args.task == "copy" else
            f"associative recall, items of {args.item_len} {args.width}-bit vectors, 2..{args.items} items")
    longer_what = (f"{2 * args.length} vectors" if args.task == "copy" else f"{2 * args.items} items")
    budget = {k: getattr(args, k) for k in ("task",) + _INT_FLAGS + ("lr",)}
    budget.update(adam_steps=args.epochs * math.ceil(args.train_samples / args.batch), grad_clip=GRAD_CLIP,
                  steps_per_sequence=T)
    notes = [
        f"Task: {what}; metric: bit accuracy on {args.test_samples} held-out sequences (chance 0.5); "
        f"extra.longer_bit_accuracy: the same on sequences of {longer_what}, twice the training length.",
        f"Every variant: the same {len(train_data)} training sequences in the same order, "
        f"{budget['adam_steps']} Adam steps (lr {args.lr}, batch {args.batch}, gradient norm clipped at {GRAD_CLIP}).",
        f"'LSTM, no memory' has at least the NTM's parameter count; memory: {args.memory_slots} x "
        f"{args.memory_width}, one read and one write head.",
        "time_steps: every variant takes one step per sequence element (T steps); the spiking controller needs no "
        "extra steps.",
        "Spiking variant: spikes of the LIF controller; synops = spikes x (hidden + head inputs + outputs); "
        "MACs: the analog rest (input layer on [x_t, r_t-1], membrane read-outs, memory reads).",
        "Graves et al. 2014 (arXiv:1410.5401) report that the NTM learns copy (lengths 1..20, 8 bits) to near-zero "
        "cost and generalises to longer sequences, far better than an LSTM; ours is a much reduced budget "
        "(minutes on a CPU, short sequences), so it shows the trend, not their figures.",
    ]
    return ExampleResult(example=NAME, task=what, metric_name="bit accuracy", higher_is_better=True, chance=0.5,
                         seed=seed, size=args.size, budget=budget, variants=variants, references=[], notes=notes)


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
