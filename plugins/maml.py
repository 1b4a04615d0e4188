"""MAML (Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
Networks") over any ``torch.nn.Module``, a neurosim :class:`~neurosim.Simulator` included.

The model is never copied: every forward pass with other parameters is
``torch.func.functional_call(model, params, args)``. For task ``i`` with support set
``(Xs_i, Ys_i)`` and query set ``(Xq_i, Yq_i)``, ``K`` inner steps of size ``alpha`` and a
loss ``L``::

    theta_0       = theta
    theta_{k+1}   = theta_k - alpha * grad_theta_k L(f(theta_k; Xs_i), Ys_i)       k = 0 .. K-1
    meta loss     = (1/n) sum_i L(f(theta_K^i; Xq_i), Yq_i)
    theta        <- outer optimiser step on d(meta loss)/d(theta)

Second order (``first_order=False``) differentiates through the inner gradients
(``torch.autograd.grad(..., create_graph=True)``): for one step
``d/dtheta = (I - alpha H_s)^T grad L_q(theta_1)``, ``H_s`` the Hessian of the support loss.
First order (FOMAML, ``first_order=True``) treats the inner gradients as constants:
``d/dtheta = grad L_q(theta_K)``. Both give the same adapted *values*.

Spiking networks: the inner gradients are surrogate gradients (BPTT through the Simulator's
time loop). :class:`SimulatorReadout` wraps a Simulator as ``[batch, ...] -> [batch, ...]``
(encode, run, decode the output sequence) so classification losses apply unchanged; trainable
population parameters (``trainable=("tau_mem", ...)``) are parameters like any other, adapted
in the inner loop (give time constants, in seconds, their own small step with
``MAMLConfig.param_lr``). A Simulator can also be used directly: ``functional_call(sim, params,
(x,))`` returns its :class:`~neurosim.SimulationResult`, and ``loss_fn`` then receives that.

Second order through spiking populations: the inner loop runs inside
:func:`neurosim.higher_order_gradients`, so the fused LIF kernel (``lif`` populations, trainable
parameters, refractory periods and late input included) rebuilds its stepped computation under autograd when a backward asks for a
graph, and its second derivative is the stepped ``lif_step``'s; every registered surrogate's
gradient is differentiable again (tested against its primitive's second derivative).

Shapes: ``support_x``/``query_x`` are whatever the model takes (a tensor, or a tuple of positional
arguments); ``loss_fn(output, y) -> scalar``.

Example::

    >>> maml = MAML(model, nn.functional.mse_loss, MAMLConfig(inner_lr=0.01, inner_steps=1))
    >>> out = maml.meta_step([(xs, ys, xq, yq), ...])      # one outer Adam step
    >>> fast = maml.adapt(xs_new, ys_new)                  # adapted parameters for a new task
    >>> pred = maml.forward(xq_new, fast)
"""
from __future__ import annotations

import contextlib

import dataclasses
import math
import numbers
from typing import Callable, Dict, Iterable, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.func import functional_call

from neurosim.higher_order import higher_order_gradients

__all__ = ["MAMLConfig", "MAML", "MetaStepResult", "SimulatorReadout", "adapt", "meta_loss",
           "model_params", "READOUTS"]

READOUTS = ("count", "mean", "max", "last")


# ---------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class MAMLConfig:
    """inner_lr: alpha, the inner SGD step; inner_steps: K >= 1; first_order: FOMAML;
    outer_lr: Adam's step for the meta-parameters (when :class:`MAML` makes the optimiser);
    param_lr: ``{parameter name: alpha}`` overrides of the inner step for some parameters
    (e.g. a trained ``tau_mem`` in seconds), stored as sorted ``(name, alpha)`` pairs."""

    inner_lr: float = 0.01
    inner_steps: int = 1
    first_order: bool = False
    outer_lr: float = 1e-3
    param_lr: Tuple[Tuple[str, float], ...] = ()

    def __post_init__(self):
        for name in ("inner_lr", "outer_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"MAMLConfig.{name} must be a finite number > 0, got {value!r}")
        if isinstance(self.inner_steps, bool) or not isinstance(self.inner_steps, numbers.Integral) or self.inner_steps < 1:
            raise ValueError(f"MAMLConfig.inner_steps must be an int >= 1, got {self.inner_steps!r}")
        if not isinstance(self.first_order, bool):
            raise ValueError(f"MAMLConfig.first_order must be a bool, got {self.first_order!r}")
        pairs = dict(self.param_lr) if isinstance(self.param_lr, Mapping) else dict(tuple(self.param_lr))
        for name, value in pairs.items():
            if not isinstance(name, str):
                raise ValueError(f"MAMLConfig.param_lr: keys must be parameter names, got {name!r}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"MAMLConfig.param_lr[{name!r}] must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, "param_lr", tuple(sorted((n, float(v)) for n, v in pairs.items())))

    def lr_of(self, name: str) -> float:
        """The inner step of parameter ``name``: its ``param_lr`` entry, else ``inner_lr``."""
        return dict(self.param_lr).get(name, self.inner_lr)


# ---------------------------------------------------------------------- adapter for a Simulator
class SimulatorReadout(nn.Module):
    """A :class:`~neurosim.Simulator` as a module ``[batch, ...] -> [batch, ...]``.

    ``forward(x)``: with ``steps=T`` the input ``x [batch, *in]`` is a constant current
    (:func:`~neurosim.coding.direct_encode`, ``I[t] = x``); without, ``x`` is already time-first
    ``[T, batch, *in]`` (spikes or currents). The simulator runs from rest and the output
    sequence ``o [T, batch, *out]`` of node ``output`` (default: the graph's only output) is
    decoded by ``readout``:

    ============  =============================================  =======================
    ``"count"``   ``sum_t o[t]``   (spike counts)                 spiking output
    ``"mean"``    ``(1/T) sum_t o[t]``   (mean membrane / rate)   e.g. an ``li`` readout
    ``"max"``     ``max_t o[t]``   (peak membrane)
    ``"last"``    ``o[T-1]``
    callable      ``readout(o)``, any ``[T, batch, ...] -> [batch, ...]``
    ============  =============================================  =======================

    The Simulator is a submodule (``self.sim``), so ``functional_call(readout, params, (x,))``
    with names ``"sim.graph.nodes.<node>.<param>"`` runs it with other parameters. No state is
    kept between calls: each call is a new run from the resting state."""

    def __init__(self, sim: nn.Module, readout="count", steps: Optional[int] = None, output: Optional[str] = None):
        super().__init__()
        from neurosim.simulator import Simulator
        if not isinstance(sim, Simulator):
            raise TypeError(f"SimulatorReadout: sim must be a neurosim Simulator, got {type(sim).__name__}")
        if not callable(readout) and readout not in READOUTS:
            raise ValueError(f"SimulatorReadout: readout must be one of {list(READOUTS)} or a callable, got {readout!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1):
            raise ValueError(f"SimulatorReadout: steps must be an int >= 1 or None, got {steps!r}")
        outputs = sim.graph.output_names()
        if output is not None and output not in outputs:
            raise ValueError(f"SimulatorReadout: output {output!r} is not an output of the graph {outputs}")
        self.sim, self.readout, self.steps, self.output = sim, readout, steps, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SimulatorReadout: x must be a tensor, got {type(x).__name__}")
        if self.steps is not None:
            x = x.unsqueeze(0).expand(self.steps, *x.shape)
        result = self.sim.run(x)
        seq = result.outputs[self.output] if self.output is not None else result.output
        if callable(self.readout):
            return self.readout(seq)
        if self.readout == "count":
            return seq.sum(0)
        if self.readout == "mean":
            return seq.mean(0)
        if self.readout == "max":
            return seq.max(0).values
        return seq[-1]

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}, steps={self.steps}, output={self.output!r}"


# ---------------------------------------------------------------------- functional core
def model_params(model: nn.Module, names: Optional[Iterable[str]] = None) -> Dict[str, torch.Tensor]:
    """``{name: parameter}`` of ``model`` that require grad (all of them, or those in ``names``;
    an unknown or frozen name raises, listing the model's trainable names)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"MAML: model must be a torch.nn.Module, got {type(model).__name__}")
    available = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if names is None:
        if not available:
            raise ValueError(f"MAML: {type(model).__name__} has no parameter that requires grad")
        return available
    names = list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"MAML: {unknown} are not trainable parameters of {type(model).__name__}; "
                         f"its trainable parameters are {sorted(available)}")
    return {n: available[n] for n in names}


def _check_params(model: nn.Module, params, config: MAMLConfig, where: str) -> Dict[str, torch.Tensor]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: params must be a dict {{name: tensor}} (e.g. dict(model.named_parameters())), "
                        f"got {type(params).__name__}")
    known = dict(model.named_parameters())
    unknown = [n for n in params if n not in known]
    if unknown:
        raise ValueError(f"{where}: {unknown} are not parameters of {type(model).__name__}; "
                         f"its parameters are {sorted(known)}")
    for name, value in params.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{where}: params[{name!r}] must be a floating tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        if tuple(value.shape) != tuple(known[name].shape):
            raise ValueError(f"{where}: params[{name!r}] has shape {tuple(value.shape)}, the model's "
                             f"parameter has {tuple(known[name].shape)}")
    stray = [n for n, _ in config.param_lr if n not in params]
    if stray:
        raise ValueError(f"{where}: MAMLConfig.param_lr names {stray}, which are not among the adapted "
                         f"parameters {sorted(params)}")
    return dict(params)


def _args(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _check_call(loss_fn, config, where: str) -> None:
    if not callable(loss_fn):
        raise TypeError(f"{where}: loss_fn must be callable loss_fn(output, y) -> scalar, got {type(loss_fn).__name__}")
    if not isinstance(config, MAMLConfig):
        raise TypeError(f"{where}: config must be a MAMLConfig, got {type(config).__name__}")


def _scalar(loss, where: str) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"{where}: loss_fn must return a scalar tensor, got {got}")
    return loss.reshape(())


def _inner_loop(model, params, support_x, support_y, loss_fn, config) -> Dict[str, torch.Tensor]:
    names = list(params)
    theta = [p if p.requires_grad else p.detach().requires_grad_(True) for p in params.values()]
    lrs = [config.lr_of(n) for n in names]
    args = _args(support_x)
    # second order: the fused neuron kernels keep what a differentiable backward needs
    higher = contextlib.nullcontext() if config.first_order else higher_order_gradients()
    with torch.enable_grad(), higher:
        for _ in range(config.inner_steps):
            out = functional_call(model, dict(zip(names, theta)), args)
            loss = _scalar(loss_fn(out, support_y), "adapt")
            grads = torch.autograd.grad(loss, theta, create_graph=not config.first_order, allow_unused=True)
            new = []
            for p, g, lr in zip(theta, grads, lrs):
                if g is None:                      # not reached by this loss (e.g. an idle readout)
                    new.append(p)
                    continue
                if config.first_order:
                    g = g.detach()
                new.append(p - lr * g)
            theta = new
    return dict(zip(names, theta))


def adapt(model: nn.Module, params: Mapping[str, torch.Tensor], support_x, support_y,
          loss_fn: Callable, config: Optional[MAMLConfig] = None) -> Dict[str, torch.Tensor]:
    """The inner loop: ``K = config.inner_steps`` SGD steps on the support loss from ``params``.

        theta_{k+1}[n] = theta_k[n] - alpha_n * dL(f(theta_k; support_x), support_y)/dtheta_k[n]

    ``alpha_n`` is ``config.inner_lr`` (or ``config.param_lr[n]``). ``params`` maps parameter
    names of ``model`` to tensors (those adapted; the model's other parameters and buffers are
    used as they are). Returns the adapted ``{name: tensor}``: differentiable functions of
    ``params`` (second order: through the inner gradients too; first order: ``theta_K = theta_0
    - sum_k alpha g_k`` with the ``g_k`` detached). Runs with autograd on even under
    ``torch.no_grad()``; parameters that do not require grad are adapted from a detached copy.

    Shapes: ``support_x`` is the model's input (a tensor or a tuple of arguments); ``loss_fn(out,
    support_y)`` a scalar."""
    config = MAMLConfig() if config is None else config
    _check_call(loss_fn, config, "adapt")
    params = _check_params(model, params, config, "adapt")
    return _inner_loop(model, params, support_x, support_y, loss_fn, config)


def meta_loss(model: nn.Module, params: Mapping[str, torch.Tensor], tasks: Sequence, loss_fn: Callable,
              config: Optional[MAMLConfig] = None) -> torch.Tensor:
    """The MAML objective ``(1/n) sum_i L(f(adapt(theta; Xs_i, Ys_i); Xq_i), Yq_i)`` over
    ``tasks``, a sequence of ``(support_x, support_y, query_x, query_y)``; differentiable in
    ``params`` (backward it for the meta-gradient)."""
    config = MAMLConfig() if config is None else config
    _check_call(loss_fn, config, "meta_loss")
    params = _check_params(model, params, config, "meta_loss")
    tasks = _check_tasks(tasks, "meta_loss")
    total = 0.0
    for support_x, support_y, query_x, query_y in tasks:
        fast = _inner_loop(model, params, support_x, support_y, loss_fn, config)
        total = total + _scalar(loss_fn(functional_call(model, fast, _args(query_x)), query_y), "meta_loss")
    return total / len(tasks)


def _check_tasks(tasks, where: str) -> list:
    tasks = list(tasks)
    if not tasks:
        raise ValueError(f"{where}: tasks is empty; give (support_x, support_y, query_x, query_y) tuples")
    for i, task in enumerate(tasks):
        if not isinstance(task, (tuple, list)) or len(task) != 4:
            raise ValueError(f"{where}: task {i} must be (support_x, support_y, query_x, query_y), got "
                             f"{type(task).__name__} of length {len(task) if hasattr(task, '__len__') else '?'}")
    return tasks


# ---------------------------------------------------------------------- learner
class MetaStepResult(NamedTuple):
    """meta_loss: the mean post-adaptation query loss of the batch of tasks (before the step);
    grad_norm: the 2-norm of the meta-gradient over all meta-parameters."""

    meta_loss: float
    grad_norm: float


class MAML:
    """A MAML learner around ``model`` (any module; a :class:`SimulatorReadout` for a spiking one).

    ``adapt_names``: the parameters adapted in the inner loop (default: every trainable
    parameter; a subset gives ANIL-style head-only adaptation). The outer optimiser updates every
    trainable parameter of the model: ``optimizer`` if given, else ``Adam(lr=config.outer_lr)``."""

    def __init__(self, model: nn.Module, loss_fn: Callable, config: Optional[MAMLConfig] = None,
                 optimizer: Optional[torch.optim.Optimizer] = None, adapt_names: Optional[Iterable[str]] = None):
        self.config = MAMLConfig() if config is None else config
        _check_call(loss_fn, self.config, "MAML")
        self.model, self.loss_fn = model, loss_fn
        self.adapt_names = list(model_params(model, adapt_names))
        _check_params(model, model_params(model, self.adapt_names), self.config, "MAML")
        self.optimizer = optimizer if optimizer is not None else torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=self.config.outer_lr)

    def params(self) -> Dict[str, torch.Tensor]:
        """The meta-parameters that the inner loop adapts, ``{name: Parameter}``."""
        return model_params(self.model, self.adapt_names)

    def forward(self, x, params: Optional[Mapping[str, torch.Tensor]] = None):
        """``f(params; x)`` (``functional_call``), or the model itself when ``params`` is None."""
        return self.model(*_args(x)) if params is None else functional_call(self.model, dict(params), _args(x))

    __call__ = forward

    def adapt(self, support_x, support_y) -> Dict[str, torch.Tensor]:
        """Adapted parameters for one task (see :func:`adapt`)."""
        return adapt(self.model, self.params(), support_x, support_y, self.loss_fn, self.config)

    def meta_loss(self, tasks: Sequence) -> torch.Tensor:
        """See :func:`meta_loss`."""
        return meta_loss(self.model, self.params(), tasks, self.loss_fn, self.config)

    def meta_step(self, tasks: Sequence) -> MetaStepResult:
        """One outer step: ``zero_grad``, backward of the meta loss of ``tasks``, ``optimizer.step()``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.meta_loss(tasks)
        loss.backward()
        norms = [p.grad.detach().pow(2).sum() for p in self.model.parameters() if p.grad is not None]
        grad_norm = float(torch.stack(norms).sum().sqrt()) if norms else 0.0
        self.optimizer.step()
        return MetaStepResult(float(loss.detach()), grad_norm)
