"""The neuron-model protocol, its registry and shared discretisation helpers.

A neuron model is three things in one file (ARCHITECTURE.md rule 1):

* a frozen ``...Params`` dataclass with NIR names and SI units (seconds, volts, ohms, amperes)
  that also states its discretisation (``integration``, ``reset``, ``refractory_steps``,
  ``input_same_step`` where they apply);
* a ``...State`` NamedTuple of tensors shaped ``[batch, *shape]``;
* a pure ``..._step(x, state, params, dt, spike_fn) -> (output, new_state)``.

:class:`NeuronModel` bundles them with an ``initial_state`` function and is registered by name
so :class:`neurosim.Population` and configuration files can refer to ``"lif"``, ``"adex"``, ...

Reset modes (applied in the step where the spike happens):

* ``"zero"``: v <- 0
* ``"value"``: v <- v_reset
* ``"subtract"``: v <- v - (v_threshold - v_reset)   (the usual "subtract threshold" when v_reset = 0)
* ``"subtract_delayed"``: nothing happens in the step of the spike; the *next* step subtracts
  ``v_threshold - v_reset`` after integrating, undecayed (snnTorch's default neuron,
  ``reset_mechanism="subtract", reset_delay=True``)::

      v[t] = integrate(v[t-1], I[t]) - H(v[t-1] - v_threshold) (v_threshold - v_reset)

  The stored v is the membrane before any reset, so ``H(v[t-1] - v_threshold)`` is the spike of
  step t-1 (a constant: no gradient flows through the late reset, as in snnTorch).
"""
from __future__ import annotations

import math
import typing
import warnings
from dataclasses import dataclass, fields
from typing import Callable, Dict, Optional, Tuple

import torch

from ..surrogate import spike as _spike
from ..validation import check_choice, check_int, check_number, check_positive

__all__ = ["NeuronModel", "register_neuron_model", "get_neuron_model", "available_neuron_models",
           "INTEGRATIONS", "RESETS", "decay_factor", "apply_reset", "delayed_reset", "check_positive",
           "check_choice", "check_time_step", "check_steps", "check_fields_positive", "default_spike_fn",
           "as_tensor_param", "continuous_fields", "scalar_operand"]

INTEGRATIONS = ("exact", "euler")
RESETS = ("zero", "subtract", "value", "subtract_delayed")


def default_spike_fn(x: torch.Tensor) -> torch.Tensor:
    """H(x) with the default (fast sigmoid) surrogate gradient."""
    return _spike(x)


@dataclass(frozen=True)
class NeuronModel:
    """A registered neuron model: params type, state type, pure step and initial state.

    ``initial_state(params, shape, batch_size, device, dtype) -> State``;
    ``step(x, state, params, dt, spike_fn) -> (output, new_state)`` where ``x`` is the input
    current for single-port models or a tuple in ``input_ports`` order for multi-port models.
    ``output`` is the spike tensor for spiking models and the membrane potential for ``LI``.

    ``sequence`` (optional) is a fused kernel for T steps at once,
    ``sequence(x_seq, state, params, dt, surrogate) -> (output_seq, final_state)``, that must
    give the same results as stepping ``step`` (tested); it may return ``NotImplemented`` for
    settings it does not cover, and the caller then steps ``step``.
    """

    name: str
    params_type: type
    state_type: type
    step: Callable
    initial_state: Callable
    spiking: bool = True
    input_ports: Tuple[str, ...] = ("input",)
    time_constants: Tuple[str, ...] = ()
    sequence: Optional[Callable] = None

    def validate(self, params, dt: float, where: str = "") -> None:
        """Check ``params`` against ``dt`` before any step runs (tau > 0, dt < tau, choices)."""
        if not isinstance(params, self.params_type):
            raise TypeError(f"{where or self.name}: params must be {self.params_type.__name__}, "
                            f"got {type(params).__name__}")
        for name in self.time_constants:
            check_time_step(getattr(params, name), dt, f"{where or self.name}.{name}")


_MODELS: Dict[str, NeuronModel] = {}


def register_neuron_model(model: NeuronModel) -> NeuronModel:
    """Register ``model`` under ``model.name`` (case-insensitive) and return it."""
    _MODELS[model.name.lower()] = model
    return model


def get_neuron_model(name_or_model) -> NeuronModel:
    """Look a model up by registered name, or return a :class:`NeuronModel` unchanged."""
    if isinstance(name_or_model, NeuronModel):
        return name_or_model
    key = str(name_or_model).lower()
    if key not in _MODELS:
        raise KeyError(f"unknown neuron model {name_or_model!r}; registered: {available_neuron_models()}")
    return _MODELS[key]


def available_neuron_models() -> list:
    return sorted(_MODELS)


def as_tensor_param(value, like: torch.Tensor):
    """A parameter as a float (kept as is) or a tensor moved to ``like``'s device and dtype."""
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=like.dtype) if value.device != like.device or value.dtype != like.dtype else value
    return value


def _values(value):
    return value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)


def check_steps(value, where: str) -> int:
    """``value`` must be a whole number >= 0 (e.g. refractory steps; ``3.0`` is accepted as 3).

    Raises ``ValueError``: ``"{where} must be an integer >= 0, got {value!r}"``."""
    return check_int(value, where, minimum=0, integral_float=True)


def continuous_fields(params_type: type) -> Tuple[str, ...]:
    """The fields of a params dataclass that hold continuous values, the ones that can be trained.

    A field is continuous when its annotation admits ``float`` or ``torch.Tensor`` (the models'
    ``Scalar = Union[float, torch.Tensor]``). Fields annotated ``int`` (``refractory_steps``),
    ``str`` (``reset``, ``integration``) or ``bool`` (``input_same_step``) are discrete: they
    choose the discretisation and have no gradient. Authors of new models annotate their fields
    this way.

    Example::

        >>> continuous_fields(LIFParams)
        ('tau_mem', 'v_threshold', 'v_leak', 'v_reset', 'r')
    """
    hints = typing.get_type_hints(params_type)

    def admits_float(hint) -> bool:
        return any(a is float or a is torch.Tensor for a in (typing.get_args(hint) or (hint,)))

    return tuple(f.name for f in fields(params_type) if admits_float(hints.get(f.name)))


def check_fields_positive(params, names) -> None:
    """``check_positive`` on the named fields of a params dataclass that are plain numbers.

    Meant for ``__post_init__``: tensor values (per-neuron or trainable parameters) are skipped
    here, because ``Population.params`` rebuilds the dataclass whenever its tensors are replaced
    and a check on a tensor would synchronise with the device; they are checked once by
    ``NeuronModel.validate``."""
    for name in names:
        value = getattr(params, name)
        if not isinstance(value, torch.Tensor):
            check_positive(value, f"{type(params).__name__}.{name}")


def check_time_step(tau, dt: float, where: str) -> None:
    """tau > 0 (error) and dt < tau (warning: the discretisation is coarse or unstable otherwise)."""
    check_positive(tau, where)
    check_number(dt, "time step dt", positive=True, unit="s")
    if float(_values(tau).min()) <= dt:
        warnings.warn(f"{where} = {float(_values(tau).min()):g} s is not larger than dt = {dt:g} s; "
                      "the dynamics are badly resolved (and forward Euler may be unstable)",
                      RuntimeWarning, stacklevel=3)


_SCALARS: dict = {}


def scalar_operand(value, like: torch.Tensor):
    """A plain number as a cached 0-dim tensor of ``like``'s dtype, for float32/float64 tensors on
    the CPU (else ``value`` unchanged). The product or comparison is the same bit for bit (a CPU
    scalar operand is cast to the op's float32/float64 computation type either way, forward and
    backward), at about 2.5 us less dispatch per operation here; other dtypes compute with the
    unrounded number, so they keep it. Used where a step loop repeats an op with a float factor."""
    if isinstance(value, torch.Tensor) or like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return value
    key = (value, like.dtype)
    t = _SCALARS.get(key)
    if t is None:
        if len(_SCALARS) > 256:
            _SCALARS.clear()
        t = _SCALARS[key] = torch.tensor(value, dtype=like.dtype)
    return t


def decay_factor(tau, dt: float, integration: str):
    """Per-step decay of ``dx/dt = -x / tau``: exp(-dt/tau) (exact) or 1 - dt/tau (forward Euler).

    Returns a float when ``tau`` is a float, else a tensor (differentiable in ``tau``). A tensor
    tau (per-neuron or trainable) is floored at dt / 100 here, so an optimizer step that drives a
    trained time constant to zero or below gives a neuron that forgets within a step instead of
    an overflow to inf/NaN (the gradient is zero below the floor)."""
    if isinstance(tau, torch.Tensor):
        tau = tau.clamp(min=dt / 100.0)
        return torch.exp(-dt / tau) if integration == "exact" else 1.0 - dt / tau
    return math.exp(-dt / tau) if integration == "exact" else 1.0 - dt / tau


def apply_reset(v: torch.Tensor, s: torch.Tensor, reset: str, v_threshold, v_reset) -> torch.Tensor:
    """Membrane after the reset of the neurons that spiked (``s`` = 1), differentiable through v.

    zero: v (1 - s); value: v (1 - s) + v_reset s; subtract: v - (v_threshold - v_reset) s;
    subtract_delayed: v unchanged (the reset comes in the next step, :func:`delayed_reset`)."""
    if reset == "subtract_delayed":
        return v
    if reset == "subtract":
        jump = v_threshold - v_reset
        # one op where the jump is a number; exact either way since s is 0 or 1
        return torch.sub(v, s, alpha=jump) if isinstance(jump, (int, float)) else v - s * jump
    if reset == "zero":
        return torch.addcmul(v, v, s, value=-1.0)    # v - v s, the same values as v (1 - s)
    return v * (1.0 - s) + s * v_reset


def delayed_reset(v_integrated: torch.Tensor, v_previous: torch.Tensor, v_threshold, v_reset) -> torch.Tensor:
    """The late reset of ``"subtract_delayed"``: ``v_integrated - H(v_previous - v_threshold)
    (v_threshold - v_reset)``, where ``v_previous`` is the unreset membrane of the step before.
    The step function H is exact and without gradient (the reset is a detached constant).

    Shapes: ``v_integrated`` and ``v_previous`` ``[batch, *shape]``; thresholds broadcast."""
    fired = (v_previous.detach() > v_threshold).to(v_integrated.dtype)
    return v_integrated - fired * (v_threshold - v_reset)
