"""What every spiking-vs-conventional example returns, and the measurements they share.

An example is one module ``examples/<name>.py`` (installed as ``neurosim.examples.<name>``) with

* ``NAME`` (str), ``TITLE`` (one line), ``PRESETS``: ``{"quick": {...}, "default": {...},
  "full": {...}}``, the budget of each size (``quick`` takes seconds and is what the tests use,
  ``default`` about a minute or two on 2 cores, ``full`` the paper-size run);
* ``add_arguments(parser)``: its own flags, each with ``default=None`` so the preset fills it;
* ``run(args) -> ExampleResult``: trains every variant on the same data and budget, seeded by
  ``args.seed``, and measures them (``args.out`` is a folder it may write figures to);
* ``if __name__ == "__main__": sys.exit(run_cli(sys.modules[__name__]))``.

``neurosim compare EXAMPLE`` (``neurosim/compare.py``) runs ``run`` over seeds and builds the
report from the :class:`ExampleResult` objects; nothing in here knows about the report.

Example::

    >>> from neurosim.examples import digits
    >>> result = digits.run(parse_example_args(digits, ["--quick", "--seed", "0"]))
    >>> [(v.name, v.metric) for v in result.variants]
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import pathlib
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["PaperFigure", "VariantResult", "ExampleResult", "SpikingMeasurement", "SIZES", "example_parser",
           "parse_example_args", "run_cli", "seed_everything", "count_parameters", "module_macs_per_sample",
           "measure_simulator", "wall_seconds", "shared_data", "format_table", "positive_int", "positive_float",
           "int_list", "train_epochs"]

#: The budget sizes every example defines in ``PRESETS``.
SIZES = ("quick", "default", "full")

#: The ``kind`` of a variant: a conventional network, a network trained as an SNN, an ANN converted
#: to an SNN after training, or a mix of spiking and analog blocks.
KINDS = ("conventional", "spiking", "converted", "hybrid")


@dataclass
class PaperFigure:
    """A published figure for the same task, quoted beside ours.

    ``value`` is in the example's metric (accuracy as a fraction 0..1); ``setting`` says what the
    paper's budget was (for example ``"full Cora, 200 epochs, 2-layer GCN"``)."""
    model: str
    value: float
    source: str
    setting: str = ""


@dataclass
class SpikingMeasurement:
    """What :func:`measure_simulator` measures over a batch (all figures per sample)."""
    spikes_per_sample: float
    synops_per_sample: float
    macs_per_sample: float
    time_steps: int
    seconds_per_sample: float
    raster: Optional[torch.Tensor]          # [time_steps, neurons] bool, the first sample
    raster_population: Optional[str]


@dataclass
class VariantResult:
    """One trained variant of an example and its figures.

    * ``metric``: the example's test metric (``ExampleResult.metric_name``), e.g. accuracy in 0..1;
    * ``history``: per-epoch curves, e.g. ``{"train_loss": [...], "val_accuracy": [...]}``;
    * ``params``: trainable parameters;
    * ``time_steps``: latency in simulation steps of one inference (1 for a conventional net);
    * ``train_seconds``: wall time of training; ``seconds_per_sample``: inference wall time;
    * ``spikes_per_sample``, ``synops_per_sample``: spikes and synaptic operations (active input x
      fan-out) of one inference, ``None`` for a conventional variant;
    * ``macs_per_sample``: dense multiply-accumulates of one inference (for a spiking variant,
      the MACs that remain in analog blocks and the input layer, if any; 0 when everything is
      event-driven);
    * ``raster``: ``[time_steps, neurons]`` bool spikes of one test sample (spiking variants);
    * ``simulator`` and ``deploy_inputs``: a trained :class:`neurosim.Simulator` built from engine
      nodes and a ``[T, batch, ...]`` input for it, when the variant can be exported (the report's
      deployment section runs ``neurosim.hardware.conform`` on them); ``None`` otherwise, with
      the reason in ``deploy_note``;
    * ``extra``: any other figure by name (e.g. ``{"nn_distance": 1.9}``).
    """
    name: str
    kind: str
    metric: float
    params: int
    time_steps: int
    train_seconds: float
    seconds_per_sample: float
    macs_per_sample: float
    spikes_per_sample: Optional[float] = None
    synops_per_sample: Optional[float] = None
    history: Dict[str, List[float]] = field(default_factory=dict)
    raster: Optional[torch.Tensor] = None
    simulator: Any = None
    deploy_inputs: Optional[torch.Tensor] = None
    deploy_note: str = ""
    extra: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"VariantResult {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if not math.isfinite(float(self.metric)):
            raise ValueError(f"VariantResult {self.name!r}: metric is {self.metric}")

    def figures(self) -> Dict[str, Any]:
        """The JSON-able figures of this variant (no tensors, no simulator)."""
        skip = {"raster", "simulator", "deploy_inputs"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class ExampleResult:
    """Everything one run of an example (one seed) returns.

    ``metric_name`` names ``VariantResult.metric`` (``"test accuracy"``), ``higher_is_better``
    its direction and ``chance`` its chance level (``None`` when there is none). ``budget`` holds
    the resolved preset (epochs, samples, steps, ...). ``images`` are extra PNG files the example
    wants in the report (name -> PNG bytes, e.g. the diffusion sample grid)."""
    example: str
    task: str
    metric_name: str
    higher_is_better: bool
    chance: Optional[float]
    seed: int
    size: str
    budget: Dict[str, Any]
    variants: List[VariantResult]
    references: List[PaperFigure] = field(default_factory=list)
    images: Dict[str, bytes] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.variants:
            raise ValueError(f"ExampleResult {self.example!r}: no variants")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"ExampleResult {self.example!r}: variant names repeat: {names}")

    def figures(self) -> Dict[str, Any]:
        """The JSON-able figures of this run."""
        return {"example": self.example, "task": self.task, "metric_name": self.metric_name,
                "higher_is_better": self.higher_is_better, "chance": self.chance, "seed": self.seed,
                "size": self.size, "budget": dict(self.budget), "notes": list(self.notes),
                "references": [asdict(r) for r in self.references],
                "variants": [v.figures() for v in self.variants]}


# ----------------------------------------------------------------------------- command line

def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``ArgumentTypeError`` otherwise, so argparse exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def int_list(text: str) -> tuple:
    """argparse type: a comma list of integers >= 1, e.g. ``16,32`` -> ``(16, 32)``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers like 16,32, got {text!r}")
    return tuple(positive_int(p) for p in parts)


def example_parser(module) -> argparse.ArgumentParser:
    """The flags every example shares, then the example's own (``module.add_arguments``)."""
    parser = argparse.ArgumentParser(prog=f"examples/{module.NAME}.py", description=module.TITLE)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="tiny budget (seconds; what the tests run)")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="paper-size budget")
    parser.set_defaults(size="default")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default=None, help="folder for figures the example writes (default: none)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    module.add_arguments(parser)
    return parser


def parse_example_args(module, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` and fill every flag left at ``None`` from ``module.PRESETS[size]``.

    Raises ``SystemExit(2)`` (argparse) for a bad flag and ``ValueError`` for a preset that names a
    flag the parser does not have."""
    parser = example_parser(module)
    args = parser.parse_args(list(argv) if argv is not None else None)
    preset = module.PRESETS[args.size]
    for key, value in preset.items():
        if not hasattr(args, key):
            raise ValueError(f"examples/{module.NAME}.py: PRESETS[{args.size!r}] sets {key!r}, "
                             f"which is not one of its flags")
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def run_cli(module, argv: Optional[Sequence[str]] = None) -> int:
    """``python examples/<name>.py [flags]``: run once and print the variants' figures."""
    args = parse_example_args(module, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = module.run(args)
    print(format_table(result))
    return 0


def format_table(result: ExampleResult) -> str:
    """A plain-text table of one run's variants (for the console)."""
    rows = [("variant", "kind", result.metric_name, "params", "steps", "spikes/sample", "synops/sample",
             "MACs/sample", "train s")]
    for v in result.variants:
        rows.append((v.name, v.kind, f"{v.metric:.4g}", f"{v.params:,}", str(v.time_steps),
                     "-" if v.spikes_per_sample is None else f"{v.spikes_per_sample:.4g}",
                     "-" if v.synops_per_sample is None else f"{v.synops_per_sample:.4g}",
                     f"{v.macs_per_sample:.4g}", f"{v.train_seconds:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{result.example}: {result.task} (seed {result.seed}, {result.size} budget"
             + (f", chance {result.chance:.3g}" if result.chance is not None else "") + ")"]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- measurement

def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; returns a ``torch.Generator`` seeded with ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def count_parameters(*modules: nn.Module) -> int:
    """Trainable parameters of the modules (a :class:`neurosim.Simulator` counts its graph's)."""
    seen, total = set(), 0
    for module in modules:
        module = getattr(module, "graph", module)
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def module_macs_per_sample(module: nn.Module, example: torch.Tensor, *call_args) -> float:
    """Multiply-accumulates of ``module(example, *call_args)`` divided by the batch size
    (``example.shape[0]``), counted by ``torch.utils.flop_counter`` (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), counter:
            module(example, *call_args)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / 2 / example.shape[0]


def train_epochs(params, batch_loss: Callable, evaluate: Callable, n_train: int, epochs: int, batch_size: int,
                 lr: float, order: torch.Generator, metric: str = "test_accuracy"):
    """A shared training budget: ``epochs`` passes over ``n_train`` samples in batches of
    ``batch_size`` drawn in the order of ``order`` (a seeded generator), Adam with a one-cycle
    schedule peaking at ``lr``. ``batch_loss(index) -> loss`` for a batch of training indices
    ``[batch]``; ``evaluate() -> float`` after each epoch (not timed). Returns the history
    ``{"train_loss": [mean batch loss per epoch], metric: [evaluate() per epoch]}`` and the
    training wall time [s]."""
    params = list(params)
    optimizer = torch.optim.Adam(params, lr=lr)
    per_epoch = -(-n_train // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * per_epoch)
    history: Dict[str, List[float]] = {"train_loss": [], metric: []}
    seconds = 0.0
    for _ in range(epochs):
        with wall_seconds() as t:
            permutation = torch.randperm(n_train, generator=order)
            losses = []
            for start in range(0, n_train, batch_size):
                loss = batch_loss(permutation[start:start + batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
        seconds += t[0]
        history["train_loss"].append(sum(losses) / len(losses))
        history[metric].append(float(evaluate()))
    return history, seconds


@contextlib.contextmanager
def wall_seconds() -> Iterator[List[float]]:
    """``with wall_seconds() as t: ...``; afterwards ``t[0]`` holds the elapsed wall time in s."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def measure_simulator(sim, inputs: torch.Tensor, raster_population: Optional[str] = None,
                      max_raster_neurons: int = 256) -> SpikingMeasurement:
    """Run ``sim`` on ``inputs`` ``[T, batch, ...]`` without gradient, counting operations.

    spikes/sample and synops/sample are the totals of ``sim.run(..., count_ops=True)`` divided by
    the batch; macs/sample are the dense MACs the run still performs (analog blocks), which is 0
    when every projection is event-driven. The raster is the first sample's spikes of
    ``raster_population`` (default: the population with the most neurons), at most
    ``max_raster_neurons`` of them."""
    from neurosim.metrics import summarize_ops
    from neurosim.population import Population
    if inputs.dim() < 2:
        raise ValueError(f"measure_simulator: inputs must be [T, batch, ...], got shape {tuple(inputs.shape)}")
    populations = [n for n, node in sim.graph.nodes.items() if isinstance(node, Population)]
    if raster_population is None and populations:
        raster_population = max(populations, key=lambda n: math.prod(sim.graph.nodes[n].out_shape))
    if raster_population is not None and raster_population not in populations:
        raise ValueError(f"measure_simulator: {raster_population!r} is not a population of the graph "
                         f"(populations: {populations})")
    monitors = []
    if raster_population is not None:
        from neurosim.monitor import Monitor
        monitors = [Monitor(raster_population, ("spikes",), name="raster")]
    with torch.no_grad(), wall_seconds() as t:
        result = sim.run(inputs, monitors=monitors, count_ops=True)
    report = summarize_ops(result, sim=sim)
    raster = None
    if raster_population is not None:
        spikes = result.records["raster"]["spikes"]
        raster = spikes[:, 0].reshape(spikes.shape[0], -1)[:, :max_raster_neurons].bool()
    macs = sum(c.get("macs", 0.0) for name, c in report.per_node.items()
               if not (name in sim.graph.nodes and isinstance(sim.graph.nodes[name], _event_projection_types())))
    return SpikingMeasurement(spikes_per_sample=report.spikes / report.batch,
                              synops_per_sample=report.synops / report.batch,
                              macs_per_sample=macs / report.batch, time_steps=report.steps,
                              seconds_per_sample=t[0] / report.batch, raster=raster,
                              raster_population=raster_population)


def _event_projection_types():
    """Projections whose work an event-driven chip does as synops (their MACs are the dense
    equivalent, not extra work)."""
    from neurosim.projections import Conv2d, Dense, Sparse
    types = [Dense, Sparse, Conv2d]
    try:
        from neurosim.projections import Conv1d
        types.append(Conv1d)
    except ImportError:
        pass
    return tuple(types)


def shared_data(*parts: str) -> pathlib.Path:
    """A path under the project's shared data folder: ``$NEUROSIM_DATA`` if set, else
    ``<checkout>/../shared/data``. The path is not checked here (loaders raise when it is missing)."""
    root = os.environ.get("NEUROSIM_DATA")
    base = pathlib.Path(root) if root else pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return base.joinpath(*parts)
