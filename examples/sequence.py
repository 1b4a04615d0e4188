"""Sequence classification: transformer, MLP-Mixer and LSTM against their spiking partners.

Data (``--dataset``), a binary sequence ``X in {0, 1}^[T, F]`` per sample and one of ``K`` labels:

* ``randman`` (default): :class:`neurosim.datasets.Randman` (Zenke & Vogels 2021), ``F = units``
  input neurons that each spike once; the class is in the spike *times*. Each seed draws its own
  manifolds (``manifold_seed = seed``), training and test samples from other latent seeds.
* ``shapes``: :class:`neurosim.datasets.MovingShapes` event streams (32 x 32 DVS-like sensor, the
  first ``min(K, 5)`` of its shapes, 100 ms each), through tonic: ``Downsample(spatial_factor=1/4)``
  to 8 x 8, ``ToFrame(n_time_bins=T)``, then ``X[t] = 1[count > 0]`` flattened per time bin
  (``F = 2 * 8 * 8 = 128``).

The six variants see the same samples in the same order, for the same epochs, Adam learning rate
and batch size; each is trained by cross-entropy on its logits ``z [B, K]``. With ``L`` tokens of
``P = T / L`` consecutive steps (``X = [x_1; ...; x_L]``, ``x_l [P, F]``)::

    transformer, MLP-Mixer      tokens  u_l = vec(x_l)  [L, P F]   z = model(u)                    (1 pass)
    spiking transformer / mixer step k = 1..P presents s_k = (x_1[k], ..., x_L[k])  [L, F] spikes,
                                z = (1/P) sum_k model(s_k; membranes carried over)              (P steps)
    LSTM                        h_t = LSTM(h_{t-1}, X[t]),  z = W h_T + b                        (T steps)
    recurrent LIF               I_t = W_in X[t] + W_rec s_{t-1};  LIF;  u_t = LI(W_out s_t),
                                z = max_t u_t  (membrane_cross_entropy, "max")                  (T steps)

so the spiking transformer and mixer receive every token's spikes one step at a time (binary,
event-driven input) and see exactly the information the conventional ones see at once. The
spiking transformer and mixer (both with BatchNorm, ``norm="batch"``: with LayerNorm the spiking
mixer learnt randman's sparse tokens about half as fast) run in a :class:`neurosim.Simulator` as
stateful plug-in Blocks;
their spikes and synaptic operations are counted from their LIF populations and linear layers
(:func:`count_block_ops`): a linear layer whose input holds spike counts (integers >= 0)
costs ``sum(x) * out_features`` synops (one accumulate per spike and target), any other
(real-valued) input ``rows * in * out`` dense MACs; the attention products and the remaining
matmuls are counted as dense MACs too (``torch.utils.flop_counter``). The recurrent LIF is an
engine graph (Dense + LIF with a Dense back-edge, LI readout): measured by ``measure_simulator``
and exportable. Latency (``time_steps``): 1 for the transformer and mixer, ``P`` for their
spiking partners, ``T`` for the LSTM and the recurrent LIF (both step through the sequence).

Chance level: ``1 / K``. ``train_seconds`` includes the test evaluation after each epoch (the
``test_accuracy`` curve). Run: ``python examples/sequence.py [--quick | --full] [--dataset shapes]``.
"""
from __future__ import annotations

import contextlib
import pathlib
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:                                  # installed as neurosim.examples.sequence, or run from examples/
    from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters, measure_simulator,
                                          run_cli, seed_everything, wall_seconds)
except ImportError:                   # pragma: no cover - python examples/sequence.py without an install
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from common import (ExampleResult, VariantResult, count_parameters, measure_simulator, run_cli,  # type: ignore
                        seed_everything, wall_seconds)

NAME = "sequence"
TITLE = "Sequence classification: transformer, MLP-Mixer, LSTM vs spiking transformer, spiking mixer, recurrent LIF"
DATASETS = ("randman", "shapes")
VARIANTS = ("transformer", "mlp-mixer", "lstm", "spiking transformer", "spiking mixer", "recurrent LIF")

_SPIKING = dict(tau_mem=10e-3, input_scale=40.0, output_scale=1.0)      # recurrent LIF
PRESETS = {
    "quick": dict(dataset="randman", classes=4, units=16, steps=20, tokens=4, train_per_class=30,
                  test_per_class=20, epochs=8, batch_size=20, lr=5e-3, width=32, hidden=128, variants="all",
                  **_SPIKING),
    "default": dict(dataset="randman", classes=10, units=20, steps=30, tokens=6, train_per_class=100,
                    test_per_class=30, epochs=12, batch_size=32, lr=5e-3, width=32, hidden=128, variants="all",
                    **_SPIKING),
    "full": dict(dataset="randman", classes=10, units=100, steps=100, tokens=10, train_per_class=1000,
                 test_per_class=200, epochs=60, batch_size=64, lr=1e-3, width=128, hidden=256, variants="all",
                 **_SPIKING),
}


def add_arguments(parser) -> None:
    """Flags of this example (each filled from the preset when not given)."""
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="randman (default) or shapes")
    parser.add_argument("--classes", type=int, default=None,
                        help="classes K (shapes: at most the 5 shapes, larger values use all 5)")
    parser.add_argument("--units", type=int, default=None, help="randman input units F")
    parser.add_argument("--steps", type=int, default=None, help="time steps T of a sample")
    parser.add_argument("--tokens", type=int, default=None, help="tokens L of the transformer / mixer (divides T)")
    parser.add_argument("--train-per-class", type=int, default=None, help="training samples per class")
    parser.add_argument("--test-per-class", type=int, default=None, help="test samples per class")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (all variants)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (all variants)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (all variants)")
    parser.add_argument("--width", type=int, default=None,
                        help="width of the transformers and mixers (d_model, channels)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units of the LSTM and the recurrent LIF")
    parser.add_argument("--tau-mem", type=float, default=None, help="recurrent LIF membrane time constant [s]")
    parser.add_argument("--input-scale", type=float, default=None,
                        help="recurrent LIF input weights N(0, scale^2 / fan_in) [V]")
    parser.add_argument("--output-scale", type=float, default=None,
                        help="recurrent LIF readout weights N(0, scale^2 / fan_in) [V]")
    parser.add_argument("--variants", default=None,
                        help="comma-separated subset of: " + ", ".join(VARIANTS) + " (default all)")


# ----------------------------------------------------------------------------- data

@dataclass
class SequenceData:
    """``x_train [N, T, F]``, ``x_test [M, T, F]`` float32 0/1; ``y_*`` int64; ``classes``; ``task``."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    task: str


def _check_args(args) -> None:
    """Every flag in range before any work (errors name the flag)."""
    for name, low in (("classes", 2), ("units", 1), ("steps", 1), ("tokens", 1), ("train_per_class", 1),
                      ("test_per_class", 1), ("epochs", 1), ("batch_size", 1), ("width", 4), ("hidden", 1)):
        value = getattr(args, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"examples/sequence.py: --{name.replace('_', '-')} must be an integer >= {low}, "
                             f"got {value!r}")
    if args.steps % args.tokens:
        raise ValueError(f"examples/sequence.py: --tokens {args.tokens} must divide --steps {args.steps}")
    for name in ("lr", "tau_mem", "input_scale", "output_scale"):
        value = getattr(args, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
            raise ValueError(f"examples/sequence.py: --{name.replace('_', '-')} must be a finite number > 0, "
                             f"got {value!r}")
    if args.width % 4:
        raise ValueError(f"examples/sequence.py: --width must be a multiple of 4 (4 attention heads), got {args.width}")
    selected(args)


def selected(args) -> List[str]:
    """The variants named by ``--variants`` (``"all"``: every one), in :data:`VARIANTS` order."""
    if args.variants in (None, "all"):
        return list(VARIANTS)
    names = [v.strip() for v in str(args.variants).split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise ValueError(f"examples/sequence.py: --variants: unknown {bad or names}; choose from {list(VARIANTS)}")
    return [v for v in VARIANTS if v in names]


def load_data(args) -> SequenceData:
    """The training and test sequences of ``args.dataset`` (module docstring)."""
    seed = args.seed
    if args.dataset == "randman":
        from neurosim.datasets.randman import Randman
        kw = dict(nb_classes=args.classes, nb_units=args.units, nb_steps=args.steps, dim_manifold=1, alpha=2.0,
                  manifold_seed=seed)
        train = Randman(**kw, nb_samples=args.train_per_class, seed=2 * seed)
        test = Randman(**kw, nb_samples=args.test_per_class, seed=2 * seed + 1)

        def stack(d):
            return torch.stack([d[i][0] for i in range(len(d))]), d.labels.clone()
        (xa, ya), (xb, yb) = stack(train), stack(test)
        task = (f"randman ({args.classes} classes, {args.units} units, {args.steps} steps, 1-d manifolds, "
                f"{len(ya)} train / {len(yb)} test)")
        return SequenceData(xa, ya, xb, yb, args.classes, task)
    import tonic
    from neurosim.datasets.shapes import SHAPES, MovingShapes
    sensor, classes = (32, 32, 2), min(args.classes, len(SHAPES))
    frames = tonic.transforms.Compose([tonic.transforms.Downsample(spatial_factor=0.25),
                                       tonic.transforms.ToFrame((8, 8, 2), n_time_bins=args.steps)])

    def make(n, data_seed):
        data = MovingShapes(n * classes, sensor_size=sensor, duration=100_000, seed=data_seed,
                            transform=frames, shapes=SHAPES[:classes])
        xs, ys = zip(*(data[i] for i in range(len(data))))
        x = torch.as_tensor(np.stack(xs)).float().clamp(max=1.0)     # [N, T, 2, 8, 8] 0/1
        return x.reshape(len(xs), args.steps, -1), torch.as_tensor(ys, dtype=torch.int64)
    xa, ya = make(args.train_per_class, 2 * seed)
    xb, yb = make(args.test_per_class, 2 * seed + 1)
    task = (f"moving shapes ({', '.join(SHAPES[:classes])}; 32x32 DVS events -> 8x8x2 frames, "
            f"{args.steps} bins, {len(ya)} train / {len(yb)} test)")
    return SequenceData(xa, ya, xb, yb, classes, task)


def to_tokens(x: torch.Tensor, tokens: int) -> torch.Tensor:
    """``[B, T, F] -> [B, L, P F]``: token ``l`` is steps ``l P .. l P + P - 1`` flattened."""
    b, t, f = x.shape
    return x.reshape(b, tokens, (t // tokens) * f)


def to_token_steps(x: torch.Tensor, tokens: int) -> torch.Tensor:
    """``[B, T, F] -> [P, B, L, F]``: step ``k`` holds ``x[:, l P + k]`` for every token ``l``."""
    b, t, f = x.shape
    return x.reshape(b, tokens, t // tokens, f).permute(2, 0, 1, 3).contiguous()


# ----------------------------------------------------------------------------- variants

@dataclass
class Variant:
    """A model, its forward ``x [B, T, F] -> logits [B, K]`` and how it is measured."""
    name: str
    kind: str
    module: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    time_steps: int


class _LastLogits(nn.Module):
    """Batch-first view of a :class:`RecurrentClassifier`: ``[B, T, F] -> logits at T [B, K]``."""

    def __init__(self, clf: nn.Module):
        super().__init__()
        self.clf = clf

    def forward(self, x):
        return self.clf(x.transpose(0, 1))[0][-1]


def build_variant(name: str, args, data: SequenceData) -> Variant:
    """One of :data:`VARIANTS`, its weights drawn after ``torch.manual_seed(args.seed)``."""
    from neurosim import Graph, Simulator
    from neurosim.plugins.mixer import Mixer, MixerConfig, SpikingMixer, mixer_block
    from neurosim.plugins.recurrent import RecurrentClassifier, RecurrentConfig, recurrent_lif
    from neurosim.plugins.transformer import SpikingTransformer, Transformer, TransformerConfig, transformer_block
    torch.manual_seed(args.seed)
    t, f, k, L = args.steps, data.x_train.shape[-1], data.classes, args.tokens
    p, w = t // L, args.width
    if name in ("transformer", "spiking transformer"):
        spiking = name.startswith("spiking")
        cfg = TransformerConfig(seq_len=L, num_classes=k, in_features=f if spiking else p * f, d_model=w,
                                num_heads=4, num_layers=1, mlp_hidden=2 * w)
        if not spiking:
            model = Transformer(cfg)
            return Variant(name, "conventional", model, lambda x: model(to_tokens(x, L)), 1)
        sim = Simulator(Graph.sequential(cfg.in_shape, ("former", transformer_block(SpikingTransformer(cfg)))))
        return Variant(name, "spiking", sim, lambda x: sim.run(to_token_steps(x, L)).output.mean(0), p)
    if name in ("mlp-mixer", "spiking mixer"):
        spiking = name.startswith("spiking")
        cfg = MixerConfig(num_tokens=L, in_features=f if spiking else p * f, num_classes=k, channels=w,
                          token_hidden=max(4, L), channel_hidden=2 * w, num_layers=1,
                          norm="batch")                    # BatchNorm: LayerNorm of sparse-input tokens trains slowly
        if not spiking:
            model = Mixer(cfg)
            return Variant(name, "conventional", model, lambda x: model(to_tokens(x, L)), 1)
        sim = Simulator(Graph.sequential(cfg.in_shape, ("mixer", mixer_block(SpikingMixer(cfg)))))
        return Variant(name, "spiking", sim, lambda x: sim.run(to_token_steps(x, L)).output.mean(0), p)
    cfg = RecurrentConfig(input_size=f, hidden_size=args.hidden, output_size=k, cell="lstm", tau_mem=args.tau_mem,
                          tau_readout=20e-3, input_scale=args.input_scale, recurrent_scale=1.0,
                          output_scale=args.output_scale)
    if name == "lstm":
        model = _LastLogits(RecurrentClassifier(cfg))
        return Variant(name, "conventional", model, model, t)
    sim = Simulator(recurrent_lif(cfg, seed=args.seed), dt=1e-3)
    return Variant(name, "spiking", sim, lambda x: sim.run(x.transpose(0, 1)).output.max(0).values, t)


def train(variant: Variant, data: SequenceData, args) -> Dict[str, List[float]]:
    """Adam on cross-entropy for ``args.epochs``; batches in the order drawn from ``args.seed``
    (the same for every variant). Returns ``{"train_loss": [...], "test_accuracy": [...]}``."""
    gen = torch.Generator().manual_seed(args.seed)
    params = [q for q in variant.module.parameters() if q.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    history = {"train_loss": [], "test_accuracy": []}
    n = len(data.y_train)
    for _ in range(args.epochs):
        variant.module.train()
        order, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n, args.batch_size):
            idx = order[start:start + args.batch_size]
            loss = F.cross_entropy(variant.forward(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history["train_loss"].append(total / n)
        history["test_accuracy"].append(evaluate(variant, data.x_test, data.y_test, args.batch_size)[0])
    return history


def evaluate(variant: Variant, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """``(accuracy, seconds per sample)`` of the variant in eval mode without gradient."""
    variant.module.eval()
    correct = 0
    with torch.no_grad(), wall_seconds() as t:
        for start in range(0, len(y), batch_size):
            logits = variant.forward(x[start:start + batch_size])
            correct += int((logits.argmax(1) == y[start:start + batch_size]).sum())
    return correct / len(y), t[0] / len(y)


# ----------------------------------------------------------------------------- operation counts

def _is_count(x: torch.Tensor) -> bool:
    """Integer-valued and non-negative: spikes (0/1) or spike counts (shortcut sums)."""
    return bool((x >= 0).all()) and bool((x == x.round()).all())


@contextlib.contextmanager
def count_block_ops(module: nn.Module, max_raster_neurons: int = 256, raster_of: Optional[nn.Module] = None):
    """Count spikes, synops and dense MACs of a stateful spiking model (every call inside the block).

    Yields a dict filled when the block exits: ``spikes`` (sum over the LIF populations in
    ``module``), ``synops`` (``sum(x) * out_features`` over the linear layers whose input holds spike
    counts), ``macs`` (everything else that ``FlopCounterMode`` counts: linear layers on real
    values, attention products, the head) and ``raster``: the spikes of sample 0 of ``raster_of``
    (a Population in ``module``; default the first one), ``[steps, neurons]`` bool."""
    from torch.utils.flop_counter import FlopCounterMode
    from neurosim.population import Population
    pops = [m for m in module.modules() if isinstance(m, Population)]
    raster_of = raster_of if raster_of is not None else pops[0]
    box = {"spikes": 0.0, "synops": 0.0, "event_macs": 0.0, "raster": []}
    originals = {}

    def wrap(pop):
        step = pop.step

        def counted(x, state, dt):
            out, new = step(x, state, dt)
            box["spikes"] += float(out.sum())
            if pop is raster_of:
                box["raster"].append(out[0].reshape(-1)[:max_raster_neurons].bool())
            return out, new
        return counted

    def pre_hook(linear, inputs):
        x = inputs[0]
        if _is_count(x):
            box["synops"] += float(x.sum()) * linear.out_features
            box["event_macs"] += x.numel() // linear.in_features * linear.in_features * linear.out_features

    for pop in pops:
        originals[pop] = pop.step
        pop.step = wrap(pop)
    hooks = [m.register_forward_pre_hook(pre_hook) for m in module.modules() if isinstance(m, nn.Linear)]
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            yield box
    finally:
        for pop in pops:
            del pop.step                                   # back to the class method
        for h in hooks:
            h.remove()
    box["macs"] = counter.get_total_flops() / 2 - box.pop("event_macs")
    box["raster"] = torch.stack(box["raster"]) if box["raster"] else None


def measure(variant: Variant, data: SequenceData, args) -> dict:
    """Per-sample cost figures of a trained variant on (up to 256) test samples."""
    from neurosim.plugins.block import module_macs
    x = data.x_test[:256]
    variant.module.eval()
    if variant.kind == "conventional":
        example = x[:8]
        macs = module_macs(variant.module, to_tokens(example, args.tokens) if variant.name != "lstm" else example)
        if variant.name == "lstm":                       # FlopCounterMode has no formula for aten.lstm
            cfg = variant.module.clf.config
            macs = args.steps * 4 * cfg.hidden_size * (cfg.input_size + cfg.hidden_size) * len(example) \
                + module_macs(variant.module.clf.readout, torch.zeros(args.steps * len(example), cfg.hidden_size))
        return dict(macs_per_sample=macs / len(example))
    if variant.name == "recurrent LIF":
        m = measure_simulator(variant.module, x.transpose(0, 1), raster_population="lif1")
        return dict(macs_per_sample=m.macs_per_sample, spikes_per_sample=m.spikes_per_sample,
                    synops_per_sample=m.synops_per_sample, raster=m.raster)
    model = next(iter(variant.module.graph.nodes.values())).module
    raster_of = getattr(model, "input_lif", None) or getattr(model, "lif_out", None)
    with torch.no_grad(), count_block_ops(model, raster_of=raster_of) as box:
        variant.forward(x)
    n = len(x)
    return dict(macs_per_sample=box["macs"] / n, spikes_per_sample=box["spikes"] / n,
                synops_per_sample=box["synops"] / n, raster=box["raster"])


# ----------------------------------------------------------------------------- run

def run(args) -> ExampleResult:
    """Train and measure the selected variants on one dataset with one budget (module docstring)."""
    _check_args(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    data = load_data(args)
    results = []
    for name in selected(args):
        variant = build_variant(name, args, data)
        with wall_seconds() as t:
            history = train(variant, data, args)
        accuracy, seconds = evaluate(variant, data.x_test, data.y_test, args.batch_size)
        figures = measure(variant, data, args)
        deploy = {}
        if name == "recurrent LIF":
            deploy = dict(simulator=variant.module, deploy_inputs=data.x_test[:4].transpose(0, 1).contiguous())
        elif variant.kind == "spiking":
            block = next(iter(variant.module.graph.nodes))
            family = type(variant.module.graph.nodes[block].module).__name__
            deploy = dict(deploy_note=f"plug-in Block {block!r} ({family}) has no NIR mapping")
        results.append(VariantResult(name=name, kind=variant.kind, metric=accuracy,
                                     params=count_parameters(variant.module), time_steps=variant.time_steps,
                                     train_seconds=t[0], seconds_per_sample=seconds, history=history,
                                     **figures, **deploy))
    budget = {k: getattr(args, k) for k in PRESETS["default"]}
    notes = [f"same data, order, epochs ({args.epochs}), batch ({args.batch_size}) and Adam lr ({args.lr}) "
             f"for every variant; spiking transformer / mixer: {args.steps // args.tokens} steps of "
             f"{args.tokens} tokens, conventional ones 1 pass over {args.tokens} tokens of "
             f"{args.steps // args.tokens} steps; LSTM and recurrent LIF step through all {args.steps} steps",
             "spiking transformer / mixer: the attention products (Q K^T V) and the head on mean spikes are "
             "counted as dense MACs; BatchNorm (an affine map per channel at inference) is not counted",
             "no paper figure quoted: Zenke & Vogels (2021) report randman accuracies in plots over "
             "many settings; our randman is smaller and trained for far fewer epochs"
             if args.dataset == "randman" else
             "moving shapes is a synthetic DVS-like stream of this project (datasets/shapes.py): no paper figure"]
    return ExampleResult(example=NAME, task=data.task, metric_name="test accuracy", higher_is_better=True,
                         chance=1.0 / data.classes, seed=args.seed, size=args.size, budget=budget,
                         variants=results, references=[], notes=notes)


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
