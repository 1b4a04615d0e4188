"""End-to-end memory network (Sukhbaatar et al. 2015) vs its spiking variant on bAbI-style
generated stories: task 1 (single supporting fact) or task 2 (two supporting facts).

Data (``--task``, default 1; one task per run, ``neurosim compare memnet --task 2`` for the
other): :class:`neurosim.datasets.tasks.BabiTasks`, stories of 2..``sentences`` sentences about four
people moving between six places (task 2: also picking up and dropping three objects), stored
newest sentence first; question ``"where is <person>"`` / ``"where is the <object>"``; the answer
is one of the six places, so chance is 1/6. Training, validation and test stories come from three
different seeds, and test stories that also occur in the training set are dropped (held out).
These are bAbI-*style* stories generated here, not the real bAbI files (Weston et al. 2015).

Variants (same stories, same order, same number of Adam steps, batch, learning rate, gradient
clipping; the same sizes: embedding ``d``, ``K`` hops, position encoding and temporal vectors):

* ``MemN2N`` (conventional): :class:`~neurosim.plugins.memnet.MemN2N`, logits ``W u^{K+1}``;
* ``spiking MemN2N`` (``kind="hybrid"``): :class:`~neurosim.plugins.memnet.SpikingMemN2N`, the
  story and question presented for ``timesteps`` steps to LIF word encoders and LIF sentence
  encoders; the hops (``p = softmax(u^T m)``, ``o = sum_i p_i c_i``) run every step on those spike
  trains and stay analog (softmax attention), an LI readout integrates ``W u(t)``; the answer is
  ``argmax`` of the readout membrane at the last step, trained with the cross-entropy of it.
  Sentence-encoder gain 25 and readout time constant 5 ms (``SPIKE_GAIN``, ``READOUT_TAU``, the
  plug-in's other defaults: LIF ``tau_mem`` 5 ms, word drive 3 thresholds, ``dt`` 1 ms).

Loss: cross-entropy over the vocabulary (as in the paper). Metric: **answer accuracy** on the
held-out stories (higher is better, chance 1/6).

Cost of the spiking variant per story (``T = timesteps`` steps): spikes of the word, memory and
question encoders; synops = spikes x fan-out, with fan-out ``(K + 1) d`` for a story word (its
embedding row in every ``E_k``), ``d`` for a question word, ``S + 1`` for a question-encoder neuron
(the first hop's ``S`` scores and the residual ``u + o``) and, for a memory-encoder neuron of table
``k``, 1 per use (a score ``u^T m_i`` when ``k < K``, an output ``o += p_i c_i`` when ``k >= 1``).
MACs: the dense answer layer, ``T V d`` (softmax exponentials not counted). The conventional
variant's MACs are what ``torch.utils.flop_counter`` counts (hops and answer layer; embedding
lookups are gathers, not MACs).

Shapes: stories ``[B, S, L]``, questions ``[B, L]``, answers ``[B]`` (int64 word indices, 0 =
padding); logits / readouts ``[B, V]``.

Example::

    >>> from neurosim.examples import memnet
    >>> from neurosim.examples.common import parse_example_args
    >>> result = memnet.run(parse_example_args(memnet, ["--quick", "--threads", "1"]))

Command line: ``python examples/memnet.py [--quick | --full] [--task 2] [--seed N]``.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import Callable, Dict, Iterator, List

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.examples.common import (ExampleResult, PaperFigure, VariantResult, count_parameters,
                                      module_macs_per_sample, run_cli, seed_everything, wall_seconds, positive_float, positive_int)

NAME = "memnet"
TITLE = "End-to-end memory network vs spiking memory network on bAbI-style tasks 1 and 2"
TASKS = (1, 2)
GRAD_CLIP = 40.0           # the paper's gradient-norm clip, every variant
# Spiking variant: sentence-encoder current per unit of embedding (MemNetConfig.gain). With the
# embeddings' N(0, 0.1^2) initialisation the plug-in's default gain of 4 leaves the memory encoders
# almost silent and the network learns slowly; 25 makes them fire from the first step.
SPIKE_GAIN = 25.0
# LI readout time constant [s] (MemNetConfig.readout_tau): with dt = 1 ms the membrane reaches
# 1 - exp(-T dt / tau) of its drive within the T presentation steps (0.86 for T = 10).
READOUT_TAU = 5e-3

PRESETS = {
    # seconds on one thread (the tests)
    "quick": {"task": 1, "epochs": 6, "train_samples": 384, "batch": 32, "lr": 3e-2, "sentences": 4,
              "embed_dim": 16, "hops": 2, "timesteps": 6, "val_samples": 128, "test_samples": 512},
    # about a minute for both variants on 2 cores; 1000 training stories as bAbI's "1k" set
    "default": {"task": 1, "epochs": 20, "train_samples": 1000, "batch": 32, "lr": 1e-2, "sentences": 8,
                "embed_dim": 20, "hops": 3, "timesteps": 10, "val_samples": 200, "test_samples": 1000},
    # the paper's bAbI setting: 1k stories, d = 20, 3 hops, 100 epochs (and longer stories here)
    "full": {"task": 1, "epochs": 100, "train_samples": 1000, "batch": 32, "lr": 5e-3, "sentences": 20,
             "embed_dim": 20, "hops": 3, "timesteps": 20, "val_samples": 1000, "test_samples": 1000},
}
_INT_FLAGS = ("epochs", "train_samples", "batch", "sentences", "embed_dim", "hops", "timesteps", "val_samples",
              "test_samples")

# Sukhbaatar et al. 2015, Table 1 (bAbI 1k training stories per task, 3 hops, d = 20): test error
# 0.6 % (task 1) and 17.6 % (task 2) with bag-of-words sentences, 0.1 % and 21.6 % with position
# encoding.
_PAPER = {1: [("MemN2N, BoW", 1 - 0.006), ("MemN2N, PE", 1 - 0.001)],
          2: [("MemN2N, BoW", 1 - 0.176), ("MemN2N, PE", 1 - 0.216)]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The example's own flags (each ``None`` by default: the preset fills it)."""
    parser.add_argument("--task", type=int, choices=TASKS, default=None,
                        help="bAbI-style task: 1 single supporting fact (default), 2 two supporting facts")
    parser.add_argument("--epochs", type=positive_int, default=None, help="passes over the training stories")
    parser.add_argument("--train-samples", type=positive_int, default=None, help="training stories")
    parser.add_argument("--batch", type=positive_int, default=None, help="stories per Adam step")
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    parser.add_argument("--sentences", type=positive_int, default=None, help="most sentences per story (memory slots)")
    parser.add_argument("--embed-dim", type=positive_int, default=None, help="embedding size d")
    parser.add_argument("--hops", type=positive_int, default=None, help="memory hops K")
    parser.add_argument("--timesteps", type=positive_int, default=None,
                        help="spiking variant: steps each story is presented")
    parser.add_argument("--val-samples", type=positive_int, default=None, help="validation stories (per epoch)")
    parser.add_argument("--test-samples", type=positive_int, default=None, help="held-out test stories (before "
                                                                                 "dropping repeats of training ones)")


def _check_args(args) -> None:
    """Raise ``ValueError`` naming the bad setting before any work (for a hand-built Namespace)."""
    if getattr(args, "task", None) not in TASKS:
        raise ValueError(f"examples/memnet.py: task must be one of {list(TASKS)}, got {getattr(args, 'task', None)!r}")
    for name in _INT_FLAGS:
        value = getattr(args, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"examples/memnet.py: {name} must be an int >= 1, got {value!r}")
    if not isinstance(args.lr, (int, float)) or not args.lr > 0:
        raise ValueError(f"examples/memnet.py: lr must be > 0, got {args.lr!r}")
    if args.sentences < 2:
        raise ValueError(f"examples/memnet.py: sentences must be >= 2, got {args.sentences}")


# ---------------------------------------------------------------------- data
def _stories(args, n: int, seed: int):
    from neurosim.datasets.tasks import BabiTasks
    return BabiTasks(task=args.task, n_samples=n, sentences=args.sentences, min_sentences=2, sentence_len=5,
                     newest_first=True, seed=seed)


def _keys(data) -> List[tuple]:
    return [tuple(s.flatten().tolist()) + tuple(q.tolist()) for s, q in zip(data.stories, data.questions)]


def held_out(test, train) -> torch.Tensor:
    """Indices of the test stories (story + question) that do not occur in ``train``."""
    seen = set(_keys(train))
    return torch.tensor([i for i, key in enumerate(_keys(test)) if key not in seen], dtype=torch.long)


@torch.no_grad()
def accuracy(logits_fn, data, index: torch.Tensor, batch: int = 500) -> float:
    """``mean 1[argmax logits == answer]`` over the stories ``index``."""
    correct = 0
    for start in range(0, len(index), batch):
        i = index[start:start + batch]
        correct += int((logits_fn(data.stories[i], data.questions[i]).argmax(-1) == data.answers[i]).sum())
    return correct / len(index)


# ---------------------------------------------------------------------- training
def train(model: nn.Module, logits_fn, train_data, val_data, args, seed: int):
    """Adam on the answer cross-entropy, ``args.epochs`` passes over ``train_data`` in an order drawn
    from ``seed`` (the same for every variant). Returns ``(history, train_seconds)``."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    order_gen = torch.Generator().manual_seed(seed)
    history: Dict[str, List[float]] = {"train_loss": [], "val_accuracy": []}
    val_index = torch.arange(len(val_data))
    seconds = 0.0
    for _ in range(args.epochs):
        order = torch.randperm(len(train_data), generator=order_gen)
        losses = []
        with wall_seconds() as t:
            model.train()
            for start in range(0, len(order), args.batch):
                i = order[start:start + args.batch]
                loss = F.cross_entropy(logits_fn(train_data.stories[i], train_data.questions[i]), train_data.answers[i])
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()
                losses.append(loss.item())
        seconds += t[0]
        model.eval()
        history["train_loss"].append(sum(losses) / len(losses))
        history["val_accuracy"].append(accuracy(logits_fn, val_data, val_index))
    return history, seconds


@contextlib.contextmanager
def recording_spikes(net) -> Iterator[Dict[str, List[torch.Tensor]]]:
    """Within the block, every step of the word, memory and question encoders of ``net`` (a
    :class:`SpikingMemN2N`) appends its spikes to ``records[name]`` (detached); the populations are
    left as they were afterwards. For measuring only: the spikes stay inside the module otherwise."""
    pops = {"words": net.word_encoder, "memories": net.memory_encoder, "question": net.question_encoder}
    records: Dict[str, List[torch.Tensor]] = {name: [] for name in pops}
    for name, pop in pops.items():
        def step(x, state, dt, _step=pop.step, _out=records[name]):
            spikes, new_state = _step(x, state, dt)
            _out.append(spikes.detach())
            return spikes, new_state
        pop.step = step                                 # an instance attribute shadows the method
    try:
        yield records
    finally:
        for pop in pops.values():
            del pop.step


@torch.no_grad()
def spiking_costs(net, story, question, steps: int):
    """Spikes and synops per story (module docstring) and a raster ``[T, neurons]`` of story 0
    (word encoder, question encoder, then the memory encoder of table 1, at most 256 neurons)."""
    cfg = net.cfg
    with recording_spikes(net) as rec:
        net.run(story, question, steps)
    words = torch.stack(rec["words"])                     # [T, B, S + 1, L]
    memories = torch.stack(rec["memories"])               # [T, B, K + 1, S, d]
    q = torch.stack(rec["question"])                      # [T, B, d]
    batch, K, d, S = story.shape[0], cfg.hops, cfg.embed_dim, cfg.sentences
    use = torch.tensor([float(k < K) + float(k >= 1) for k in range(K + 1)])      # uses of table k's spikes
    synops = (words[:, :, :-1].sum() * (K + 1) * d + words[:, :, -1].sum() * d + q.sum() * (S + 1)
              + (memories.sum(dim=(0, 1, 3, 4)) * use).sum())
    spikes = words.sum() + memories.sum() + q.sum()
    raster = torch.cat([words[:, 0].flatten(1), q[:, 0], memories[:, 0, 0].flatten(1)], dim=1)[:, :256].bool()
    return float(spikes) / batch, float(synops) / batch, raster


def run(args) -> ExampleResult:
    """Train both variants on the same stories and measure them (module docstring)."""
    from neurosim.datasets.tasks import BABI_PLACES
    from neurosim.plugins.memnet import MemN2N, MemNetConfig, SpikingMemN2N, pack
    _check_args(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    seed = int(args.seed)
    seed_everything(seed)
    base = 1000 * seed
    train_data = _stories(args, args.train_samples, base + 1)
    val_data = _stories(args, args.val_samples, base + 2)
    test_data = _stories(args, args.test_samples, base + 3)
    test_index = held_out(test_data, train_data)
    if len(test_index) == 0:
        raise ValueError("examples/memnet.py: every test story also occurs in the training set; use longer stories")
    cfg = MemNetConfig(vocab_size=len(train_data.vocab), sentences=args.sentences, sentence_len=5,
                       embed_dim=args.embed_dim, hops=args.hops, gain=SPIKE_GAIN, readout_tau=READOUT_TAU)
    probe = test_index[:min(64, len(test_index))]
    story, question = test_data.stories[probe], test_data.questions[probe]
    T = args.timesteps

    variants = []
    for name, kind in (("MemN2N", "conventional"), ("spiking MemN2N", "hybrid")):
        torch.manual_seed(seed)
        if kind == "conventional":
            model = MemN2N(cfg)
            logits_fn = model
        else:
            model = SpikingMemN2N(cfg)
            logits_fn = lambda s, q, m=model: m.run(s, q, T)[-1]
        history, train_seconds = train(model, logits_fn, train_data, val_data, args, seed)
        model.eval()
        with torch.no_grad(), wall_seconds() as t:
            logits_fn(story, question)
        result = dict(name=name, kind=kind, metric=accuracy(logits_fn, test_data, test_index),
                      params=count_parameters(model), time_steps=1, train_seconds=train_seconds,
                      seconds_per_sample=t[0] / len(probe), history=history)
        if kind == "conventional":
            result["macs_per_sample"] = module_macs_per_sample(model, pack(story, question))
        else:
            spikes, synops, raster = spiking_costs(model, story, question, T)
            result.update(time_steps=T, spikes_per_sample=spikes, synops_per_sample=synops, raster=raster,
                          macs_per_sample=float(T * cfg.vocab_size * cfg.embed_dim),
                          deploy_note="plug-in module SpikingMemN2N: the word-embedding lookups and the softmax "
                                      "attention hops have no NIR mapping (only its encoders and readout are "
                                      "neuron populations)")
        variants.append(VariantResult(**result))

    answers = test_data.answers[test_index]
    majority = float(torch.bincount(answers).max()) / len(answers)
    what = {1: "bAbI-style task 1, single supporting fact", 2: "bAbI-style task 2, two supporting facts"}[args.task]
    budget = {k: getattr(args, k) for k in ("task",) + _INT_FLAGS + ("lr",)}
    budget.update(adam_steps=args.epochs * math.ceil(args.train_samples / args.batch), grad_clip=GRAD_CLIP,
                  held_out_test_stories=len(test_index))
    notes = [
        f"{what}: stories of 2..{args.sentences} sentences generated by neurosim.datasets.BabiTasks "
        "(bAbI-style, not the real bAbI files); answers are one of "
        f"{len(BABI_PLACES)} places (chance {1 / len(BABI_PLACES):.3f}; the most frequent answer is "
        f"{majority:.3f} of the test set).",
        f"Test: {len(test_index)} held-out stories ({args.test_samples - len(test_index)} repeats of training "
        f"stories dropped); both variants: {budget['adam_steps']} Adam steps (lr {args.lr}, batch {args.batch}, "
        f"gradient norm clipped at {GRAD_CLIP}), d = {args.embed_dim}, {args.hops} hops, position encoding, "
        "temporal vectors, adjacent weight tying.",
        f"Spiking variant: each story presented for {T} steps; synops = encoder spikes x fan-out; MACs: the dense "
        "answer layer only; the attention hops are analog (kind 'hybrid').",
        "Paper figures: Sukhbaatar et al. 2015, real bAbI with 1k training stories per task and up to 50 "
        "sentences, 100 epochs of SGD; ours are generated bAbI-style stories and a reduced budget.",
    ]
    references = [PaperFigure(model=m, value=v, source="Sukhbaatar et al. 2015, End-To-End Memory Networks, Table 1",
                              setting=f"real bAbI task {args.task}, 1k training stories, 3 hops, d = 20; "
                                      "checked against third-party copies of the table, not the paper")
                  for m, v in _PAPER[args.task]]
    return ExampleResult(example=NAME, task=what, metric_name="answer accuracy", higher_is_better=True,
                         chance=1 / len(BABI_PLACES), seed=seed, size=args.size, budget=budget, variants=variants,
                         references=references, notes=notes)


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
