"""Few-shot classification of 8x8 digits, 5-way K-shot episodes: MAML and prototypical networks on
a conventional encoder against the same two learners on a spiking encoder.

Data: scikit-learn's bundled digits (1797 images, :func:`neurosim.datasets.digits.load_digit_images`),
flattened to 64 intensities in [0, 1]. Protocol: **disjoint classes**, as in Vinyals et al. (2016)
and Snell et al. (2017): meta-training episodes come from the digits ``0-4`` only, test episodes
from the digits ``5-9`` only, so every test class is new to the learner. With ten classes the
meta-training set is enlarged the way Omniglot's is (Santoro et al. 2016): each training digit
rotated by 90, 180 and 270 degrees is a class of its own (``--rotations 4``: 20 meta-training
classes). Episodes (:class:`neurosim.datasets.tasks.EpisodeSampler`): N = 5 classes, K support
and ``queries`` query images per class, labels relabelled 0..4 in random order.

Variants (all: ``iterations`` outer steps of Adam, ``lr``, on ``meta_batch`` episodes each, the
same episodes in the same order; the same test episodes):

* ``MAML`` (Finn et al. 2017): classifier ``64 -> hidden -> ReLU -> 5``; inner loop
  ``theta' = theta - alpha grad L_support(theta)`` (``inner_steps`` steps, second order unless
  ``--first-order``), outer loss the query cross-entropy of ``theta'``;
* ``ProtoNet`` (Snell et al. 2017): encoder ``64 -> hidden -> ReLU -> embed``, logits the
  negative squared distances to the class means of the support embeddings;
* ``MAML, spiking encoder``: the classifier is a neurosim Simulator ``Dense -> LIF -> Dense -> LI``
  run for ``steps`` steps on the image as a constant input current, logits the time-mean LI
  membrane (:func:`~neurosim.plugins.protonet.spiking_encoder` with ``readout="membrane"``,
  ``embed_dim = 5``, wrapped as a module by :class:`~neurosim.plugins.maml.SimulatorReadout`);
  the inner and outer gradients are surrogate gradients through the time loop; its inner step
  is ``spiking_inner_lr`` (2.0 against 1.0: the membrane logits are smaller than the MLP's);
* ``ProtoNet, spiking encoder``: ``Dense -> LIF -> Dense -> LIF``, embedding = spike counts of
  the last population, logits scaled by ``1 / steps`` (distances of counts grow as ``steps^2``).

Metric: mean query accuracy over ``test_episodes`` test episodes with ``shots`` = K (the final
parameters, no model selection); ``extra["ci95"]`` is the 95 % confidence half-width
``1.96 * std / sqrt(episodes)`` as the papers report it. ``history`` has one entry per
``eval_every`` outer steps: ``train_loss`` (mean outer loss over them), ``train_accuracy`` and
``test_accuracy`` (on a fixed set of ``monitor_episodes`` test episodes).

Costs per sample (one query image): conventional MACs by ``torch.utils.flop_counter`` (MAML: the
adapted classifier; ProtoNet: the encoder, the distance to 5 prototypes added). Spiking: spikes
and synops from ``measure_simulator``; the first Dense receives the analog image (a current),
so its work counts as MACs (``steps * 64 * hidden`` per image, dense), not as synops.
MAML's adaptation (inner steps on the support set) costs extra and is not in the per-sample
figures; its wall time is ``extra["adapt_seconds_per_episode"]``.

Run: ``python examples/fewshot.py [--quick | --full] [--shots 1] [--threads 2]``.
"""
from __future__ import annotations

import copy
import math
import sys
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch.func import functional_call

from neurosim.examples.common import (ExampleResult, VariantResult, count_parameters,
                                      measure_simulator, module_macs_per_sample, run_cli, seed_everything,
                                      wall_seconds)

NAME = "fewshot"
TITLE = "Few-shot 5-way digits (disjoint classes): MAML and ProtoNet, conventional vs spiking encoder"
N_WAY = 5
TRAIN_CLASSES = (0, 1, 2, 3, 4)
TEST_CLASSES = (5, 6, 7, 8, 9)
VARIANTS = ("MAML", "ProtoNet", "MAML, spiking encoder", "ProtoNet, spiking encoder")

PRESETS = {
    "quick": {"shots": 5, "iterations": 40, "eval_every": 20, "meta_batch": 2, "test_episodes": 20,
              "monitor_episodes": 5, "steps": 4, "inner_steps": 3},
    "default": {"shots": 5, "iterations": 400, "eval_every": 40, "meta_batch": 4, "test_episodes": 200,
                "monitor_episodes": 20, "steps": 8, "inner_steps": 3},
    "full": {"shots": 5, "iterations": 4000, "eval_every": 200, "meta_batch": 8, "test_episodes": 600,
             "monitor_episodes": 50, "steps": 16, "inner_steps": 5},
}
_DEFAULTS = {"queries": 5, "test_queries": 15, "lr": 3e-3, "inner_lr": 1.0, "spiking_inner_lr": 2.0,
             "hidden": 64, "embed": 32, "rotations": 4, "first_order": False, "tau_mem": 5e-3, "v_threshold": 0.25, "gain": 8.0}
for _preset in PRESETS.values():
    for _k, _v in _DEFAULTS.items():
        _preset.setdefault(_k, _v)

DT = 1e-3                       # simulation step [s]


def add_arguments(parser) -> None:
    """The example's own flags (each ``default=None``: the preset fills it)."""
    parser.add_argument("--shots", type=int, default=None, help="K, support images per class (1 or 5)")
    parser.add_argument("--queries", type=int, default=None, help="query images per class, meta-training")
    parser.add_argument("--test-queries", type=int, default=None, help="query images per class, test episodes")
    parser.add_argument("--iterations", type=int, default=None, help="outer (meta) steps, every variant")
    parser.add_argument("--eval-every", type=int, default=None, help="outer steps per history entry")
    parser.add_argument("--meta-batch", type=int, default=None, help="episodes per outer step")
    parser.add_argument("--test-episodes", type=int, default=None, help="test episodes for the metric")
    parser.add_argument("--monitor-episodes", type=int, default=None, help="test episodes for the history")
    parser.add_argument("--lr", type=float, default=None, help="outer Adam learning rate")
    parser.add_argument("--inner-lr", type=float, default=None, help="MAML inner SGD step alpha")
    parser.add_argument("--spiking-inner-lr", type=float, default=None,
                        help="MAML inner step of the spiking classifier (its membrane logits are smaller)")
    parser.add_argument("--inner-steps", type=int, default=None, help="MAML inner steps")
    parser.add_argument("--first-order", action="store_true", default=None, help="first-order MAML")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units of every encoder")
    parser.add_argument("--embed", type=int, default=None, help="ProtoNet embedding size")
    parser.add_argument("--rotations", type=int, choices=(1, 2, 4), default=None,
                        help="meta-training classes per training digit (rotations by 360/r degrees)")
    parser.add_argument("--steps", type=int, default=None, help="time steps of the spiking encoders")
    parser.add_argument("--tau-mem", type=float, default=None, help="LIF membrane time constant [s]")
    parser.add_argument("--v-threshold", type=float, default=None, help="LIF threshold")
    parser.add_argument("--gain", type=float, default=None, help="initial weight scale of the spiking encoders")


def _check_args(args) -> None:
    """Every numeric flag in range, before any work."""
    for name in ("shots", "queries", "test_queries", "iterations", "eval_every", "meta_batch", "test_episodes",
                 "monitor_episodes", "inner_steps", "hidden", "embed", "steps"):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"examples/fewshot.py: --{name.replace('_', '-')} must be an int >= 1, got {value!r}")
    for name in ("lr", "inner_lr", "spiking_inner_lr", "tau_mem", "v_threshold", "gain"):
        if not getattr(args, name) > 0:
            raise ValueError(f"examples/fewshot.py: --{name.replace('_', '-')} must be > 0, got {getattr(args, name)!r}")
    if args.iterations % args.eval_every:
        raise ValueError(f"examples/fewshot.py: --iterations ({args.iterations}) must be a multiple of "
                         f"--eval-every ({args.eval_every})")
    if args.shots + max(args.queries, args.test_queries) > 150:
        raise ValueError("examples/fewshot.py: --shots + --queries must stay <= 150 (images per digit class)")


# ----------------------------------------------------------------------------- data

def _data(rotations: int):
    """``(train (x, y), test (x, y))``: ``x [M, 64]`` in [0, 1]; training digits 0-4 with each
    rotation by ``k * 360 / rotations`` degrees as class ``10 k + digit``; test digits 5-9."""
    from neurosim.datasets.digits import load_digit_images
    x, y = load_digit_images()
    train = torch.isin(y, torch.tensor(TRAIN_CLASSES))
    xs, ys = [], []
    for k in range(rotations):
        xs.append(torch.rot90(x[train], k * 4 // rotations, dims=(1, 2)).reshape(-1, 64))
        ys.append(y[train] + 10 * k)
    test = torch.isin(y, torch.tensor(TEST_CLASSES))
    return (torch.cat(xs), torch.cat(ys)), (x[test].reshape(-1, 64), y[test])


def _sampler(data, args, k_shot: int, queries: int, episodes: int, seed: int):
    from neurosim.datasets.tasks import EpisodeSampler
    return EpisodeSampler(data, n_way=N_WAY, k_shot=k_shot, q_queries=queries, episodes=episodes, seed=seed)


# ----------------------------------------------------------------------------- learners

class _ProtoLearner:
    """A prototypical network: ``loss(episode)`` and ``logits(episode)``."""

    def __init__(self, net):
        self.net = net
        self.module = net

    def loss(self, ep):
        logits = self.net(ep.support_x, ep.support_y, ep.query_x)
        return F.cross_entropy(logits, ep.query_y), logits

    def logits(self, ep):
        with torch.no_grad():
            return self.net(ep.support_x, ep.support_y, ep.query_x)


class _MamlLearner:
    """MAML around a ``[batch, 64] -> [batch, 5]`` classifier: ``loss(episode)`` adapts on the
    support and returns the query loss of the adapted parameters (differentiable in the
    meta-parameters), ``logits(episode)`` the adapted query logits."""

    def __init__(self, model, args, inner_lr: float):
        from neurosim.plugins.maml import MAMLConfig, model_params
        self.module = model
        self.config = MAMLConfig(inner_lr=inner_lr, inner_steps=args.inner_steps,
                                 first_order=bool(args.first_order))
        self.names = list(model_params(model))

    def adapt(self, ep):
        from neurosim.plugins.maml import adapt, model_params
        return adapt(self.module, model_params(self.module, self.names), ep.support_x, ep.support_y,
                     F.cross_entropy, self.config)

    def loss(self, ep):
        logits = functional_call(self.module, self.adapt(ep), (ep.query_x,))
        return F.cross_entropy(logits, ep.query_y), logits

    def logits(self, ep, fast=None):
        fast = self.adapt(ep) if fast is None else fast
        with torch.no_grad():
            return functional_call(self.module, {n: p.detach() for n, p in fast.items()}, (ep.query_x,))


def _build(name: str, args):
    """The learner of variant ``name``; its parameters drawn from ``args.seed``."""
    from neurosim.plugins.protonet import ProtoNet, ProtoNetConfig, mlp_encoder, spiking_encoder
    seed_everything(args.seed)
    spiking = dict(in_features=64, hidden=args.hidden, steps=args.steps, dt=DT, tau_mem=args.tau_mem,
                   v_threshold=args.v_threshold, gain=args.gain)
    if name == "MAML":
        return _MamlLearner(mlp_encoder(ProtoNetConfig(in_features=64, hidden=args.hidden, embed_dim=N_WAY)), args, args.inner_lr)
    if name == "ProtoNet":
        return _ProtoLearner(ProtoNet(mlp_encoder(ProtoNetConfig(in_features=64, hidden=args.hidden,
                                                                 embed_dim=args.embed)), N_WAY))
    if name == "MAML, spiking encoder":
        return _MamlLearner(spiking_encoder(ProtoNetConfig(embed_dim=N_WAY, readout="membrane", **spiking),
                                            seed=args.seed), args, args.spiking_inner_lr)
    return _ProtoLearner(ProtoNet(spiking_encoder(ProtoNetConfig(embed_dim=args.embed, readout="count", **spiking),
                                                  seed=args.seed), N_WAY, scale=1.0 / args.steps))


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())


def _evaluate(learner, episodes) -> List[float]:
    """Query accuracy of each episode."""
    return [_accuracy(learner.logits(ep), ep.query_y) for ep in episodes]


def _train(learner, train_data, monitor, args) -> Dict[str, List[float]]:
    """``iterations`` outer Adam steps, each on the mean loss of ``meta_batch`` episodes."""
    sampler = _sampler(train_data, args, args.shots, args.queries, args.iterations * args.meta_batch, args.seed)
    optimizer = torch.optim.Adam([p for p in learner.module.parameters() if p.requires_grad], lr=args.lr)
    history: Dict[str, List[float]] = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}
    losses, accs = [], []
    for step in range(args.iterations):
        total = 0.0
        for _ in range(args.meta_batch):
            ep = sampler.sample()
            loss, logits = learner.loss(ep)
            total = total + loss / args.meta_batch
            accs.append(_accuracy(logits.detach(), ep.query_y))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        losses.append(float(total.detach()))
        if (step + 1) % args.eval_every == 0:
            history["train_loss"].append(sum(losses) / len(losses))
            history["train_accuracy"].append(sum(accs) / len(accs))
            history["test_accuracy"].append(sum(_evaluate(learner, monitor)) / len(monitor))
            losses, accs = [], []
    return history


# ----------------------------------------------------------------------------- measurement

def _measure(name: str, learner, test_episodes, seconds: float, history, args) -> VariantResult:
    """Test accuracy with its 95 % CI and the per-sample costs of variant ``name``."""
    with wall_seconds() as t_eval:
        accs = _evaluate(learner, test_episodes)
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1))
    extra = {"ci95": 1.96 * std / math.sqrt(len(accs)), "shots": float(args.shots),
             "test_episodes": float(len(accs))}
    ep = test_episodes[0]
    maml = isinstance(learner, _MamlLearner)
    fast = None
    if maml:
        with wall_seconds() as t_adapt:
            fast = learner.adapt(ep)
        extra["adapt_seconds_per_episode"] = t_adapt[0]
    with wall_seconds() as t_inf:
        learner.logits(ep, fast) if maml else learner.logits(ep)
    n_samples = ep.query_x.shape[0]
    common = dict(name=name, metric=mean, params=count_parameters(learner.module), train_seconds=seconds,
                  seconds_per_sample=t_inf[0] / n_samples, history=history, extra=extra)
    if "spiking" not in name:
        encoder = learner.module if maml else learner.net.encoder
        macs = module_macs_per_sample(encoder, ep.query_x) + (0 if maml else N_WAY * args.embed)
        extra["eval_seconds"] = t_eval[0]
        return VariantResult(kind="conventional", time_steps=1, macs_per_sample=macs, **common)
    readout = learner.module if maml else learner.net.encoder          # a SimulatorReadout
    sim = readout.sim
    if maml:                                    # deploy the initialisation adapted to this episode
        sim = copy.deepcopy(sim)
        with torch.no_grad():
            for n, p in sim.named_parameters():
                if "sim." + n in fast:
                    p.copy_(fast["sim." + n].detach())
        x = ep.query_x
    else:
        x = torch.cat([ep.support_x, ep.query_x])
    currents = x.unsqueeze(0).expand(args.steps, *x.shape)          # [T, batch, 64], constant current
    m = measure_simulator(sim, currents, raster_population="lif1")
    # fc1 reads the analog image: measure_simulator counted its nonzero inputs x fan-out as synops;
    # they are multiply-accumulates, and a dense layer on an analog input does all 64 x hidden of them
    fc1_synops = args.steps * float(torch.count_nonzero(x)) * args.hidden / x.shape[0]
    fc1_macs = args.steps * 64 * args.hidden
    extra["eval_seconds"] = t_eval[0]
    return VariantResult(kind="spiking", time_steps=args.steps, macs_per_sample=m.macs_per_sample + fc1_macs,
                         spikes_per_sample=m.spikes_per_sample, synops_per_sample=m.synops_per_sample - fc1_synops,
                         raster=m.raster, simulator=sim, deploy_inputs=currents[:, :4].clone(), **common)


def run(args) -> ExampleResult:
    """Meta-train the four variants on the same episodes and test them on the same test episodes."""
    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_data, test_data = _data(args.rotations)
    test_episodes = list(_sampler(test_data, args, args.shots, args.test_queries, args.test_episodes,
                                  args.seed + 10_000))
    monitor = list(_sampler(test_data, args, args.shots, args.test_queries, args.monitor_episodes,
                            args.seed + 20_000))
    variants = []
    for name in VARIANTS:
        learner = _build(name, args)
        with wall_seconds() as t:
            history = _train(learner, train_data, monitor, args)
        variants.append(_measure(name, learner, test_episodes, t[0], history, args))
    budget = {k: getattr(args, k) for k in PRESETS["default"]}
    budget.update(n_way=N_WAY, train_classes=list(TRAIN_CLASSES), test_classes=list(TEST_CLASSES))
    notes = [f"5-way {args.shots}-shot; disjoint classes: meta-train on digits 0-4 (x{args.rotations} rotations as "
             "extra classes), test on digits 5-9; metric = mean query accuracy of the final parameters over "
             f"{args.test_episodes} test episodes (95% CI in extra['ci95'])",
             "no published figure exists for this task (8x8 digits, 5 training digits); for scale, on Omniglot "
             "5-way (28x28, 4 conv blocks, 60k iterations) MAML reports 98.7% 1-shot / 99.9% 5-shot (Finn et al. "
             "2017) and ProtoNet 98.8% / 99.7% (Snell et al. 2017)",
             "one history entry per eval_every outer steps; test_accuracy there is on a fixed smaller set of "
             "test episodes and is not used to select parameters"]
    if args.size != "full":
        notes.append(f"reduced budget ({args.size} preset)")
    return ExampleResult(example=NAME, task=f"5-way {args.shots}-shot digits (disjoint classes)",
                         metric_name="query accuracy", higher_is_better=True, chance=1.0 / N_WAY,
                         seed=args.seed, size=args.size, budget=budget, variants=variants,
                         notes=notes)


if __name__ == "__main__":
    sys.exit(run_cli(sys.modules[__name__]))
