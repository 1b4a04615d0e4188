"""Surrogate gradients for the spike non-linearity.

The forward pass of a spike is the Heaviside step ``s = H(x)`` of the distance to threshold
``x = v - v_threshold``; its derivative is zero almost everywhere, so training replaces it in the
backward pass by the derivative ``g(x)`` of a smooth *primitive* ``p(x)`` with ``p(x) -> H(x)``
as the scale grows. Each surrogate is a small dataclass with ``primitive`` and ``grad`` and is
registered by name; :func:`spike` is the one spike function that all neuron models call.

Registered here (``scale`` is the steepness, in 1/volt when x is in volt):

==================  ===========================================  ======================================
name                primitive p(x)                               grad g(x)
==================  ===========================================  ======================================
``fast_sigmoid``    x*k / (2 (1 + k|x|)) + 1/2  (SuperSpike)      k / (2 (1 + k|x|)^2)
``arctan``          arctan(pi k x / 2) / pi + 1/2                k / (2 (1 + (pi k x / 2)^2))
``sigmoid``         sigmoid(k x)                                 k sigmoid(k x) (1 - sigmoid(k x))
``triangle``        piecewise quadratic, 0 below -1/k, 1 above   max(0, k (1 - k|x|))
``slayer``          Laplace CDF: 1/2 + sign(x)(1 - e^{-k|x|})/2  k/2 * exp(-k |x|)   (SLAYER's PDF)
==================  ===========================================  ======================================

Example::

    >>> s = spike(v - 1.0, surrogate="arctan", scale=2.0)
    >>> register_surrogate("my_gauss", MyGauss)   # a dataclass with primitive and grad
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Dict, Type

import torch

from .validation import check_number, is_plain_number

__all__ = [
    "Surrogate", "FastSigmoid", "ArcTan", "Sigmoid", "Triangle", "SlayerExponential",
    "register_surrogate", "get_surrogate", "available_surrogates", "spike", "SpikeFunction",
    "spike_above", "bound_surrogate", "heaviside",
]


@dataclass(frozen=True)
class Surrogate:
    """Base class: a smooth ``primitive(x)`` approximating H(x) and its derivative ``grad(x)``.

    ``scale`` (k) sets the steepness; larger k means a narrower, taller gradient."""

    scale: float = 10.0

    def __post_init__(self):
        check_number(self.scale, f"{type(self).__name__}.scale", positive=True)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018): g(x) = k / (2 (1 + k|x|)^2)."""

    def primitive(self, x):
        k = self.scale
        return 0.5 * k * x / (1.0 + k * x.abs()) + 0.5

    def grad(self, x):
        k = self.scale
        if torch.is_grad_enabled():              # a backward with create_graph: keep it differentiable
            return 0.5 * k / (1.0 + k * x.abs()) ** 2
        d = x.abs().mul_(k).add_(1.0)            # 1 + k|x|, then in place (no pow, fewer buffers)
        return d.mul_(d).reciprocal_().mul_(0.5 * k)


@dataclass(frozen=True)
class ArcTan(Surrogate):
    """Arctan (Fang et al. 2021): g(x) = k / (2 (1 + (pi k x / 2)^2))."""

    scale: float = 2.0

    def primitive(self, x):
        return torch.atan(0.5 * math.pi * self.scale * x) / math.pi + 0.5

    def grad(self, x):
        k = self.scale
        return 0.5 * k / (1.0 + (0.5 * math.pi * k * x) ** 2)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic: g(x) = k sigmoid(kx) (1 - sigmoid(kx))."""

    def primitive(self, x):
        return torch.sigmoid(self.scale * x)

    def grad(self, x):
        s = torch.sigmoid(self.scale * x)
        return self.scale * s * (1.0 - s)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (Esser et al. 2016; Bellec et al. 2018): g(x) = max(0, k (1 - k|x|))."""

    scale: float = 1.0

    def primitive(self, x):
        k = self.scale
        y = k * x
        left = 0.5 * (1.0 + y) ** 2          # -1 <= y < 0
        right = 1.0 - 0.5 * (1.0 - y) ** 2   # 0 <= y <= 1
        inner = torch.where(y < 0, left, right)
        return torch.where(y < -1, torch.zeros_like(y), torch.where(y > 1, torch.ones_like(y), inner))

    def grad(self, x):
        k = self.scale
        return torch.clamp(k * (1.0 - k * x.abs()), min=0.0)


@dataclass(frozen=True)
class SlayerExponential(Surrogate):
    """SLAYER's spike-escape density (Shrestha & Orchard 2018): g(x) = (k/2) exp(-k|x|)."""

    scale: float = 5.0

    def primitive(self, x):
        k = self.scale
        # Laplace CDF written per side so that autograd's derivative at x = 0 is k/2, not 0
        upper = 1.0 - 0.5 * torch.exp(-k * x.clamp(min=0.0))
        lower = 0.5 * torch.exp(k * x.clamp(max=0.0))
        return torch.where(x >= 0, upper, lower)

    def grad(self, x):
        k = self.scale
        return 0.5 * k * torch.exp(-k * x.abs())


_REGISTRY: Dict[str, Type[Surrogate]] = {}


def register_surrogate(name: str, cls: Type[Surrogate]) -> None:
    """Register a surrogate class under ``name`` (a dataclass subclass of :class:`Surrogate`)."""
    if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
        raise TypeError(f"register_surrogate({name!r}): {cls!r} is not a subclass of Surrogate")
    _REGISTRY[name] = cls


def available_surrogates() -> list:
    """Names of all registered surrogates, sorted."""
    return sorted(_REGISTRY)


def get_surrogate(name_or_obj, scale: float | None = None) -> Surrogate:
    """Return a :class:`Surrogate` instance from a registered name (optionally with ``scale``),
    or the instance itself."""
    if isinstance(name_or_obj, Surrogate):
        return name_or_obj
    try:
        cls = _REGISTRY[name_or_obj]
    except KeyError:
        raise KeyError(f"unknown surrogate {name_or_obj!r}; registered: {available_surrogates()}") from None
    return cls() if scale is None else cls(scale=scale)


for _name, _cls in [("fast_sigmoid", FastSigmoid), ("superspike", FastSigmoid), ("arctan", ArcTan),
                    ("sigmoid", Sigmoid), ("triangle", Triangle), ("slayer", SlayerExponential)]:
    register_surrogate(_name, _cls)


def heaviside(x: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """``H(x - threshold)``: 1 where ``x > threshold``, else 0 (NaN gives 0), in ``x``'s dtype.

    One comparison written straight into a new tensor of ``x``'s dtype, instead of
    ``(x - threshold > 0).to(x.dtype)`` (a difference, a bool mask and a copy: three tensors, two
    of them temporaries). The same spikes: for IEEE floats ``x - threshold > 0`` exactly when
    ``x > threshold`` (the difference of two different floats is never rounded to zero, and a NaN
    or ``inf - inf`` compares false either way); only with denormals flushed to zero
    (``torch.set_flush_denormal(True)``) could a difference below 1.2e-38 have differed.
    Checked on every float16 and bfloat16 value and next to the threshold in float32/float64
    (``tests/test_heaviside.py``). ``threshold``: a plain number; a tensor or a bool raises
    ``TypeError``. Shapes: any; output of ``x``'s shape."""
    if not is_plain_number(threshold):
        raise TypeError(f"heaviside: threshold must be a plain number, got {type(threshold).__name__}")
    return torch.gt(x, threshold, out=torch.empty_like(x))


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward, surrogate backward: s = H(x); ds/dx := surrogate.grad(x).

    ``apply(x, surrogate)`` takes the distance to threshold x. ``apply(v, surrogate, threshold)``
    (a plain number) takes the membrane itself: the same s = H(v - threshold) and gradient
    surrogate.grad(v - threshold) (the distance computed by the same operation in the forward and
    again in the backward, so the same values bit for bit), but the tensor kept for the backward
    is v, which the model keeps anyway, instead of a new tensor v - threshold per step (in a
    recurrent training loop at T = 1000, with the other changes of issue 9, the peak memory went from
    642 MB to 539-597 MB). The forward is one comparison into a tensor of x's dtype
    (:func:`heaviside`): no difference, bool mask or cast per call."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate, threshold=None):
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.threshold = surrogate, threshold
        return heaviside(x, 0.0 if threshold is None else threshold)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if ctx.threshold is not None:
            x = x - ctx.threshold
        return grad_output * ctx.surrogate.grad(x), None, None


def spike(x: torch.Tensor, surrogate: Surrogate | str = "fast_sigmoid", scale: float | None = None) -> torch.Tensor:
    """Spike non-linearity s = H(x) (1 where x > 0) with the named surrogate gradient.

    Shapes: any; output has the shape and dtype of ``x``. Without autograd the forward is a plain
    comparison (no graph is recorded)."""
    sg = get_surrogate(surrogate, scale)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return heaviside(x)
    return SpikeFunction.apply(x, sg)


def spike_above(v: torch.Tensor, threshold: float, surrogate: Surrogate) -> torch.Tensor:
    """``spike(v - threshold, surrogate)`` for a plain-number ``threshold``: the same spikes and
    gradients, one autograd node and one saved ``[batch, ...]`` tensor fewer per call (the
    backward keeps ``v``, see :class:`SpikeFunction`). Shapes: any; output of ``v``'s shape and dtype."""
    if not is_plain_number(threshold):
        raise TypeError(f"spike_above: threshold must be a plain number, got {type(threshold).__name__}")
    if not (torch.is_grad_enabled() and v.requires_grad):
        return heaviside(v, threshold)
    return SpikeFunction.apply(v, surrogate, threshold)


def bound_surrogate(spike_fn):
    """The :class:`Surrogate` that ``spike_fn`` applies when it is :func:`spike` with only its
    surrogate (and scale) bound (``functools.partial(spike, surrogate=...)``, as a Population
    passes), else None (an arbitrary callable: the caller must call it)."""
    if not isinstance(spike_fn, functools.partial) or spike_fn.func is not spike or spike_fn.args:
        return None
    keywords = spike_fn.keywords
    if not keywords.keys() <= {"surrogate", "scale"}:
        return None
    return get_surrogate(keywords.get("surrogate", "fast_sigmoid"), keywords.get("scale"))
