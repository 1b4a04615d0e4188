"""ANN-to-SNN conversion: a trained ReLU stack becomes IF (or LIF) populations in a Simulator.

Method: rate-based conversion with data-based threshold balancing (Diehl et al. 2015, "Fast-
classifying, high-accuracy spiking deep networks through weight and threshold balancing";
Rueckauer et al. 2017, "Conversion of continuous-valued deep networks to efficient event-driven
networks", reset by subtraction and robust percentile normalisation). Read SpikingJelly's
``ann2snn`` and Sinabs' ``from_model`` for the same idea in other shapes; this is our own code.

The model is an ``nn.Sequential`` (nested ones are flattened) cut into *stages*, each one
weighted layer (``Linear`` / ``Conv2d``, optional ``BatchNorm1d/2d`` right after it folded in),
any ``AvgPool2d`` / ``Flatten`` around it, and the ``ReLU`` that ends it; the last stage may end
without a ReLU (the classifier). ``Dropout`` and ``Identity`` are dropped (eval semantics). Each
stage ``l`` becomes engine nodes (``Dense`` / ``Conv2d`` / ``AvgPool2d`` / ``Flatten``) feeding one
population of ``if`` neurons in place of the ReLU::

    ANN:   a_l = ReLU(W_l a_{l-1} + b_l)
    SNN:   v_l[t] = v_l[t-1] + W'_l s_{l-1}[t] + b'_l          (IF, r = 1/dt, so dt r = 1)
           s_l[t] = H(v_l[t] - 1);  v_l[t] <- v_l[t] - s_l[t]   (reset by subtraction, threshold 1)

Threshold balancing: ``lambda_l`` is the ``percentile`` (default 99.9, Rueckauer et al.) of all
elements of ``a_l`` over the calibration data (the classifier: of ``max(z_L, 0)``), nearest-rank
(numpy's ``method="inverted_cdf"``); ``lambda_0`` is 1 for direct coding and the maximum input for
Poisson coding. Then, with firing rates ``r_l = (spikes per step) ~ a_l / lambda_l`` (at most 1)::

    W'_l = W_l lambda_{l-1} / lambda_l,       b'_l = b_l / lambda_l

Biases: the engine's ``Dense`` / ``Conv2d`` bias is a current added at *every* step, so ``b'_l``
is a charge per step: the ANN bias divided by the layer's scale ``lambda_l`` (no ``dt`` factor,
since ``dt r = 1``); over ``T`` steps it adds ``T b_l / lambda_l``, as the ANN bias adds ``b_l`` to
an activation read as ``lambda_l`` times a rate.

Batch norm (eval statistics) is folded into the layer before it, per output channel ``c``::

    g_c = gamma_c / sqrt(var_c + eps);   W'[c] = g_c W[c];   b'_c = g_c (b_c - mean_c) + beta_c

Input (``encoding``): ``"direct"``, the input ``x`` as a constant current every step
(``neurosim.direct_encode``); ``"poisson"``, Bernoulli spikes with probability ``x / lambda_0``
per step (``x >= 0``). :func:`encode_input` makes either from a batch; :func:`accuracy_vs_steps`
measures classification accuracy by output spike counts after each number of steps.

``neuron="lif"`` puts LIF neurons (``tau_mem``, exact integration, ``r = 1 / (1 - exp(-dt /
tau_mem))`` so that a step adds the same charge as IF) in place of IF; the leak loses charge, so
expect lower accuracy than IF at long ``tau_mem``-relative run lengths.

Refused, in one :class:`UnsupportedLayersError` listing every offending layer and why, before
any calibration runs: MaxPool (spikes are not maxima of rates), activations other than ReLU,
batch norm not right after its layer, two weighted layers without a ReLU between them, grouped /
dilated / non-zero-padded convolutions, pools with ``ceil_mode`` or a divisor override, and any
other module type (including containers with their own ``forward``).

Shapes: ``model`` maps ``[N, *input_shape] -> [N, classes]``; the Simulator maps
``[T, batch, *input_shape] -> [T, batch, classes]`` (output spikes).

Example::

    >>> sim = convert(ann, x_train[:500], percentile=99.9)          # IF populations, dt = 1 ms
    >>> accuracy_vs_steps(sim, x_test, y_test, steps=[25, 50, 100])  # {25: ..., 50: ..., 100: ...}
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

import neurosim as ns

__all__ = ["convert", "fold_batch_norm", "encode_input", "accuracy_vs_steps", "nearest_rank_percentile",
           "ConversionInfo", "UnsupportedLayersError", "ENCODINGS", "NEURONS"]

ENCODINGS = ("direct", "poisson")
NEURONS = ("if", "lif")
_WEIGHTED = (nn.Linear, nn.Conv2d)
_SKIPPED = (nn.Dropout, nn.Identity)


class UnsupportedLayersError(ValueError):
    """Layers :func:`convert` cannot map; ``problems`` holds ``(layer path, type name, reason)``."""

    def __init__(self, problems: List[Tuple[str, str, str]]):
        self.problems = list(problems)
        lines = "\n  - ".join(f"layer {path!r} ({kind}): {why}" for path, kind, why in self.problems)
        super().__init__(f"convert: cannot map {len(self.problems)} layer(s) to spiking nodes:\n  - {lines}")


@dataclass(frozen=True)
class ConversionInfo:
    """What :func:`convert` did, attached to the returned Simulator as ``sim.conversion``.

    ``scales``: population node -> ``lambda_l``; ``layers``: engine node -> source layer path(s);
    ``input_scale``: ``lambda_0``; ``output``: the output population's node name."""

    encoding: str
    neuron: str
    percentile: float
    input_scale: float
    scales: Dict[str, float]
    layers: Dict[str, str]
    output: str


# ---------------------------------------------------------------------- structure
def _leaves(module: nn.Module, path: str) -> List[Tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _leaves(child, f"{path}.{name}" if path else name)
        return out
    return [(path or type(module).__name__, module)]


def _layer_problem(m: nn.Module) -> Optional[str]:
    """Why a layer of a supported type cannot be mapped as configured, else None."""
    if isinstance(m, nn.Conv2d):
        if m.groups != 1:
            return f"groups={m.groups}: only groups=1 is mapped"
        if tuple(m.dilation) != (1, 1):
            return f"dilation={m.dilation}: only dilation 1 is mapped"
        if m.padding_mode != "zeros":
            return f"padding_mode={m.padding_mode!r}: only zero padding is mapped"
        if isinstance(m.padding, str) and m.padding == "same" and any(k % 2 == 0 for k in m.kernel_size):
            return "padding='same' with an even kernel is asymmetric: give the padding as ints"
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode:
            return "ceil_mode=True is not mapped"
        if m.divisor_override is not None:
            return "divisor_override is not mapped"
        if not m.count_include_pad and m.padding not in (0, (0, 0)):
            return "count_include_pad=False with padding is not mapped"
    if isinstance(m, nn.Flatten) and (m.start_dim != 1 or m.end_dim != -1):
        return f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}): only start_dim=1, end_dim=-1"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and (m.running_mean is None or m.running_var is None):
        return "track_running_stats=False: no statistics to fold"
    return None


_WHY_NOT = {
    nn.MaxPool2d: "max pooling of spike trains is not the max of rates: use AvgPool2d",
    nn.MaxPool1d: "max pooling is not mapped: use AvgPool2d",
    nn.AdaptiveMaxPool2d: "max pooling is not mapped: use AvgPool2d",
}


def _unsupported_reason(m: nn.Module) -> str:
    for kind, why in _WHY_NOT.items():
        if isinstance(m, kind):
            return why
    activations = (nn.Sigmoid, nn.Tanh, nn.GELU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.SiLU, nn.Softmax,
                   nn.Softplus, nn.PReLU, nn.Hardtanh, nn.SELU, nn.LogSoftmax, nn.Mish, nn.Hardswish)
    if isinstance(m, activations):
        return "not ReLU: IF rates approximate ReLU only"
    if len(list(m.children())):
        return "a container with its own forward: only nn.Sequential stacks are mapped"
    return ("no spiking counterpart (supported: Linear, Conv2d, BatchNorm1d/2d, ReLU, AvgPool2d, "
            "Flatten, Dropout, Identity)")


@dataclass
class _Stage:
    ops: List[Tuple[str, nn.Module]]       # (path, module) in order: pools, flatten, one weighted layer
    relu: Optional[str] = None             # path of the ReLU that ends the stage (None: the classifier)


def _fold(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of ``layer`` with ``bn`` (eval statistics) folded in (see the module docstring)."""
    folded = copy.deepcopy(layer)
    with torch.no_grad():
        gain = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        folded.weight.copy_(layer.weight * gain.reshape(-1, *([1] * (layer.weight.dim() - 1))))
        new_bias = gain * (bias - bn.running_mean) + shift
        if folded.bias is None:
            folded.bias = nn.Parameter(new_bias.to(layer.weight.dtype))
        else:
            folded.bias.copy_(new_bias)
    return folded


def _plan(model: nn.Module) -> List[_Stage]:
    """Cut ``model`` into stages, folding batch norm; every problem collected into one error."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert: model must be a torch.nn.Module (an nn.Sequential), got {type(model).__name__}")
    problems: List[Tuple[str, str, str]] = []
    stages: List[_Stage] = []
    ops: List[Tuple[str, nn.Module]] = []
    for path, m in _leaves(model, ""):
        kind = type(m).__name__
        supported = _WEIGHTED + _SKIPPED + (nn.ReLU, nn.AvgPool2d, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d)
        if type(m) not in supported and not (isinstance(m, supported) and not len(list(m.children()))):
            problems.append((path, kind, _unsupported_reason(m)))
            continue
        why = _layer_problem(m)
        if why:
            problems.append((path, kind, why))
            continue
        if isinstance(m, _SKIPPED):
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            want = nn.Linear if isinstance(m, nn.BatchNorm1d) else nn.Conv2d
            last = ops[-1] if ops else None
            if last is None or not isinstance(last[1], want) or getattr(last[1], "_ns_folded", False):
                problems.append((path, kind, f"batch norm must come right after a {want.__name__} to be folded"))
                continue
            if last[1].weight.shape[0] != m.num_features:
                problems.append((path, kind, f"{m.num_features} features after a layer of {last[1].weight.shape[0]}"))
                continue
            folded = _fold(last[1], m)
            folded._ns_folded = True
            ops[-1] = (f"{last[0]}+{path}", folded)
        elif isinstance(m, nn.ReLU):
            if not any(isinstance(op, _WEIGHTED) for _, op in ops):
                problems.append((path, kind, "a ReLU without a Linear/Conv2d before it (since the last ReLU)"))
                continue
            stages.append(_Stage(ops, path))
            ops = []
        else:
            if isinstance(m, _WEIGHTED) and any(isinstance(op, _WEIGHTED) for _, op in ops):
                problems.append((path, kind, "two weighted layers without a ReLU between them: fold them first"))
                continue
            ops.append((path, m))
    if ops:
        if any(isinstance(op, _WEIGHTED) for _, op in ops):
            stages.append(_Stage(ops, None))
        else:
            for path, m in ops:
                problems.append((path, type(m).__name__, "after the last ReLU without a weighted layer: "
                                 "no neurons to read it out"))
    if not problems and not stages:
        problems.append(("<model>", type(model).__name__, "no Linear/Conv2d layer to convert"))
    if problems:
        raise UnsupportedLayersError(problems)
    return stages


def fold_batch_norm(model: nn.Module) -> nn.Sequential:
    """A new ``nn.Sequential`` equal to ``model`` in eval mode, with every ``BatchNorm1d/2d`` folded
    into the ``Linear``/``Conv2d`` before it (equations in the module docstring) and ``Dropout`` /
    ``Identity`` dropped. ``model`` is not changed. Raises :class:`UnsupportedLayersError` for a
    model :func:`convert` cannot map."""
    stages = _plan(model)
    layers = []
    for stage in stages:
        layers += [copy.deepcopy(m) if not getattr(m, "_ns_folded", False) else m for _, m in stage.ops]
        if stage.relu is not None:
            layers.append(nn.ReLU())
    for m in layers:
        if hasattr(m, "_ns_folded"):
            del m._ns_folded
    return nn.Sequential(*layers).eval()


# ---------------------------------------------------------------------- calibration
def nearest_rank_percentile(values: torch.Tensor, percentile: float) -> torch.Tensor:
    """The nearest-rank ``percentile`` of all elements of ``values``: the ``k``-th smallest with
    ``k = ceil(p / 100 * n)`` (at least 1), as numpy's ``percentile(..., method="inverted_cdf")``.
    Works on any device and size (``torch.kthvalue``). Returns a 0-d tensor."""
    flat = values.reshape(-1)
    if flat.numel() == 0:
        raise ValueError("nearest_rank_percentile: no values")
    k = max(1, min(flat.numel(), math.ceil(percentile / 100.0 * flat.numel() - 1e-9)))
    return flat.kthvalue(k).values


def _batches(data) -> Iterable[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        yield data
        return
    for item in data:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"convert: calibration_data must be a tensor [N, ...] or yield tensors or (x, y) "
                            f"pairs, got an item of type {type(x).__name__}")
        yield x


def _check_number(value, name: str, low: float, high: float, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            not ((value > low) if low_open else (value >= low)) or value > high:
        raise ValueError(f"convert: {name} must be a number in {'(' if low_open else '['}{low}, {high}], got {value!r}")
    return float(value)


# ---------------------------------------------------------------------- conversion
def _engine_node(module: nn.Module, in_shape, weight=None, bias=None) -> ns.Node:
    if isinstance(module, nn.Linear):
        node = ns.Dense(module.in_features, module.out_features, bias=bias is not None, weight=weight)
    elif isinstance(module, nn.Conv2d):
        padding = module.padding
        if isinstance(padding, str):
            padding = (0, 0) if padding == "valid" else tuple(k // 2 for k in module.kernel_size)
        node = ns.Conv2d(in_shape, module.out_channels, tuple(module.kernel_size), tuple(module.stride),
                         tuple(padding), bias=bias is not None, weight=weight)
    elif isinstance(module, nn.AvgPool2d):
        return ns.AvgPool2d(in_shape, module.kernel_size, module.stride, module.padding)
    else:
        return ns.Flatten(in_shape)
    if bias is not None:
        with torch.no_grad():
            node.bias.data = bias.detach().clone().to(node.weight.dtype)
    return node


def _population(shape, neuron: str, dt: float, tau_mem: float) -> ns.Population:
    if neuron == "if":
        return ns.Population("if", shape, ns.IFParams(r=1.0 / dt, v_threshold=1.0, reset="subtract"))
    a = math.exp(-dt / tau_mem)
    return ns.Population("lif", shape, ns.LIFParams(tau_mem=tau_mem, v_threshold=1.0, r=1.0 / (1.0 - a),
                                                    reset="subtract", integration="exact"))


def convert(model: nn.Module, calibration_data, percentile: float = 99.9, encoding: str = "direct",
            neuron: str = "if", dt: float = 1e-3, tau_mem: float = 20e-3) -> ns.Simulator:
    """Convert the ReLU stack ``model`` to a :class:`neurosim.Simulator` of IF (or LIF) populations.

    ``calibration_data``: a tensor ``[N, *input_shape]`` or an iterable of such batches (or of
    ``(x, y)`` pairs), run through the ANN (eval semantics, without gradient) to find each layer's
    scale ``lambda_l``, the ``percentile`` (in (0, 100]) of its activations. ``encoding``:
    ``"direct"`` or ``"poisson"`` (how :func:`encode_input` will present inputs; Poisson needs
    ``x >= 0``). ``neuron``: ``"if"`` or ``"lif"`` (``tau_mem`` seconds). ``dt``: the
    Simulator's step [s]. Equations: the module docstring.

    The model is read, never changed (weights are copied); the returned Simulator is on the
    device and dtype of the model's weights and carries a :class:`ConversionInfo` as
    ``sim.conversion``. Raises :class:`UnsupportedLayersError` listing every layer that cannot be
    mapped, and ``ValueError`` for bad arguments or a layer never active on the calibration data,
    before building anything."""
    percentile = _check_number(percentile, "percentile", 0.0, 100.0)
    if encoding not in ENCODINGS:
        raise ValueError(f"convert: encoding must be one of {list(ENCODINGS)}, got {encoding!r}")
    if neuron not in NEURONS:
        raise ValueError(f"convert: neuron must be one of {list(NEURONS)}, got {neuron!r}")
    dt = _check_number(dt, "dt", 0.0, math.inf)
    tau_mem = _check_number(tau_mem, "tau_mem", 0.0, math.inf)
    stages = _plan(model)
    reference = next((m.weight for s in stages for _, m in s.ops if isinstance(m, _WEIGHTED)))

    # calibration: the folded ANN, stage by stage, on every batch
    activations: List[List[torch.Tensor]] = [[] for _ in stages]
    inputs_max, input_shape, seen = 0.0, None, 0
    with torch.no_grad():
        for x in _batches(calibration_data):
            if x.dim() < 2 or x.shape[0] == 0:
                raise ValueError(f"convert: calibration_data batches must be [N, *input_shape] with N >= 1, "
                                 f"got shape {tuple(x.shape)}")
            if input_shape is None:
                input_shape = tuple(x.shape[1:])
            elif tuple(x.shape[1:]) != input_shape:
                raise ValueError(f"convert: calibration batches have input shapes {input_shape} and "
                                 f"{tuple(x.shape[1:])}")
            x = x.to(device=reference.device, dtype=reference.dtype)
            if encoding == "poisson" and float(x.min()) < 0:
                raise ValueError("convert: encoding='poisson' needs inputs >= 0 (rates), the calibration "
                                 f"data reach {float(x.min()):g}")
            inputs_max = max(inputs_max, float(x.max()))
            seen += x.shape[0]
            h = x
            for k, stage in enumerate(stages):
                try:
                    for _, m in stage.ops:
                        h = m(h)
                except RuntimeError as error:
                    raise ValueError(f"convert: layer {stage.ops[0][0]!r} fails on the calibration data "
                                     f"(input shape {list(input_shape)}): {error}") from None
                h = torch.relu(h)
                activations[k].append(h)
    if input_shape is None:
        raise ValueError("convert: calibration_data is empty")
    input_scale = 1.0 if encoding == "direct" else inputs_max
    if input_scale <= 0:
        raise ValueError("convert: encoding='poisson' needs some positive inputs in calibration_data")

    # build the graph
    g = ns.Graph().add_input("input", input_shape)
    previous, prev_scale, shape = "input", input_scale, input_shape
    scales, layers, counters = {}, {}, {}
    for k, stage in enumerate(stages):
        scale = float(nearest_rank_percentile(torch.cat(activations[k]), percentile))
        if scale <= 0:
            scale = float(torch.cat(activations[k]).max())
        if scale <= 0:
            where = stage.relu or stage.ops[-1][0]
            raise ValueError(f"convert: layer {where!r} is never active on the calibration data "
                             f"({seen} samples): no scale to balance its threshold")
        for path, m in stage.ops:
            kind = {nn.Linear: "fc", nn.Conv2d: "conv", nn.AvgPool2d: "pool", nn.Flatten: "flat"}[
                next(t for t in (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten) if isinstance(m, t))]
            name = f"{kind}{counters.get(kind, 0)}"
            counters[kind] = counters.get(kind, 0) + 1
            if isinstance(m, _WEIGHTED):
                weight = m.weight.detach() * (prev_scale / scale)
                bias = None if m.bias is None else m.bias.detach() / scale
                node = _engine_node(m, shape, weight, bias)
            else:
                node = _engine_node(m, shape)
            g.add(name, node).connect(previous, name)
            layers[name] = path.replace("+", " + ")
            previous, shape = name, node.out_shape
        name = f"{neuron}{k}" if stage.relu is not None else "output"
        g.add(name, _population(shape, neuron, dt, tau_mem)).connect(previous, name)
        layers[name] = stage.relu or "(output, no ReLU)"
        scales[name] = scale
        previous, prev_scale = name, scale
    g.to(device=reference.device)
    sim = ns.Simulator(g, dt=dt)
    sim.conversion = ConversionInfo(encoding, neuron, percentile, input_scale, scales, layers, previous)
    return sim


# ---------------------------------------------------------------------- evaluation
def encode_input(sim: ns.Simulator, x: torch.Tensor, steps: int,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The input sequence ``[steps, batch, *input_shape]`` for a converted ``sim`` from a batch
    ``x [batch, *input_shape]``: ``x`` every step (direct) or Bernoulli spikes with probability
    ``clamp(x / lambda_0, 0, 1)`` per step (Poisson; ``generator`` on ``x``'s device)."""
    info = getattr(sim, "conversion", None)
    if not isinstance(info, ConversionInfo):
        raise ValueError("encode_input: sim was not made by convert() (it has no .conversion)")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"encode_input: steps must be an int >= 1, got {steps!r}")
    if info.encoding == "direct":
        return ns.direct_encode(x, steps)
    p = (x / info.input_scale).clamp(0.0, 1.0)
    u = torch.rand((steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def accuracy_vs_steps(sim: ns.Simulator, data: torch.Tensor, labels: torch.Tensor, steps: Sequence[int],
                      batch_size: int = 512, generator: Optional[torch.Generator] = None) -> Dict[int, float]:
    """Accuracy of the converted ``sim`` on ``data [N, *input_shape]`` / ``labels [N]`` after each
    number of time steps in ``steps``, read out by output spike counts::

        prediction_T = argmax_c sum_{t < T} s_out[t, c]       (ties: the lowest class index)

    One run of ``max(steps)`` steps per batch (the network is causal, so the first ``T`` steps are
    a run of ``T`` steps). Returns ``{T: accuracy in [0, 1]}``."""
    steps = [steps] if isinstance(steps, int) else list(steps)
    if not steps or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in steps):
        raise ValueError(f"accuracy_vs_steps: steps must be ints >= 1, got {steps!r}")
    if data.shape[0] != labels.shape[0]:
        raise ValueError(f"accuracy_vs_steps: {data.shape[0]} samples but {labels.shape[0]} labels")
    longest = max(steps)
    index = torch.tensor([t - 1 for t in steps], device=data.device)
    correct = torch.zeros(len(steps), device=data.device)
    with torch.no_grad():
        for start in range(0, data.shape[0], batch_size):
            x, y = data[start:start + batch_size], labels[start:start + batch_size].to(data.device)
            out = sim.run(encode_input(sim, x, longest, generator)).output        # [T, B, C]
            counts = out.cumsum(0).index_select(0, index)                         # [len(steps), B, C]
            correct += (counts.argmax(-1) == y.unsqueeze(0)).sum(-1).to(correct.dtype)
    return {t: float(c) / data.shape[0] for t, c in zip(steps, correct)}
