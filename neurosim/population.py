"""``Population``: one wrapper for every neuron model (ARCHITECTURE.md rule 2).

A population of ``shape`` neurons of one registered model. Its state is explicit (the model's
State NamedTuple, created by :meth:`initial_state`) and its step is the model's pure step
function. Parameters named in ``trainable`` become ``nn.Parameter`` (scalars, or per-neuron when
the value given is a tensor), so time constants and thresholds can be learnt by BPTT; the other
tensor parameters are buffers that move with ``.to(device)``.

Trained time constants are in seconds (e.g. 0.01), so an optimizer step of size ~lr moves them a
lot: give them their own parameter group with a learning rate around 1e-4 (Adam), e.g.
``Adam([{"params": weights}, {"params": [pop.tau_mem], "lr": 1e-4}], lr=1e-2)``. Time constants
that still reach zero are floored at dt/100 by the step (see ``decay_factor``), never NaN.

Example::

    >>> pop = Population("lif", 128, LIFParams(tau_mem=20e-3), trainable=("tau_mem", "v_threshold"),
    ...                  surrogate="arctan", surrogate_scale=2.0)
    >>> state = pop.initial_state(batch_size=4)
    >>> spikes, state = pop.step(torch.rand(4, 128), state, dt=1e-3)
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Iterable, Optional

import torch
from torch import nn

from .neurons.base import continuous_fields, get_neuron_model
from .node import Node, as_shape, state_device_dtype
from .surrogate import get_surrogate, spike

__all__ = ["Population"]


class Population(Node):
    """``shape`` neurons of ``model`` (a registered name such as ``"lif"`` or a NeuronModel)."""

    def __init__(self, model, shape, params=None, trainable: Iterable[str] = (),
                 surrogate="fast_sigmoid", surrogate_scale: Optional[float] = None):
        self.model = get_neuron_model(model)
        shape = as_shape(shape)
        super().__init__({port: shape for port in self.model.input_ports}, shape)
        self.input_ports = self.model.input_ports
        self.emits_spikes = self.model.spiking
        self.supports_sequence = self.model.sequence is not None
        params = self.model.params_type() if params is None else params
        if not isinstance(params, self.model.params_type):
            raise TypeError(f"Population({self.model.name!r}): params must be "
                            f"{self.model.params_type.__name__}, got {type(params).__name__}")
        self.surrogate = get_surrogate(surrogate, surrogate_scale)
        if isinstance(trainable, str):
            raise TypeError(f"Population({self.model.name!r}): trainable must be a sequence of parameter "
                            f"names, got the string {trainable!r} (write ({trainable!r},))")
        self.trainable = tuple(trainable)
        self._check_trainable(params)
        self._tensor_fields = []
        for name in self.trainable:
            value = getattr(params, name)
            dtype = value.dtype if isinstance(value, torch.Tensor) and value.is_floating_point() else torch.get_default_dtype()
            self.register_parameter(name, nn.Parameter(torch.as_tensor(value, dtype=dtype).detach().clone()))
            self._tensor_fields.append(name)
        for f in dataclasses.fields(params):
            value = getattr(params, f.name)
            if f.name not in self.trainable and isinstance(value, torch.Tensor):
                self.register_buffer(f.name, value.detach().clone() if value.is_floating_point()
                                     else value.detach().to(torch.get_default_dtype()))
                self._tensor_fields.append(f.name)
        self._params = params
        self._params_cache = (None, params)
        self._spike_fn = functools.partial(spike, surrogate=self.surrogate)

    def _check_trainable(self, params) -> None:
        """Every name in ``trainable`` must be a continuous field of the params (float or tensor,
        see :func:`~neurosim.neurons.base.continuous_fields`) holding a number or a tensor."""
        where = f"Population({self.model.name!r})"
        allowed = continuous_fields(type(params))
        field_names = [f.name for f in dataclasses.fields(params)]
        for name in self.trainable:
            if name not in field_names:
                raise ValueError(f"{where}: cannot train {name!r}, not a parameter of {type(params).__name__} "
                                 f"({sorted(field_names)})")
            if name not in allowed:
                raise ValueError(f"{where}: cannot train {name!r}, a discrete parameter of {type(params).__name__} "
                                 f"(got {getattr(params, name)!r}; no gradient exists); trainable parameters: "
                                 f"{list(allowed)}")
            value = getattr(params, name)
            if not isinstance(value, (numbers.Real, torch.Tensor)) or isinstance(value, bool):
                raise ValueError(f"{where}: parameter {name!r} is not numeric, got {type(value).__name__}")

    @property
    def params(self):
        """The params dataclass with the current values of trainable parameters and buffers."""
        if not self._tensor_fields:
            return self._params
        values = {n: getattr(self, n) for n in self._tensor_fields}
        key = tuple(id(v) for v in values.values())     # .to() / .double() replace the tensors
        if self._params_cache[0] != key:
            self._params_cache = (key, dataclasses.replace(self._params, **values))
        return self._params_cache[1]

    def initial_state(self, batch_size: int, device=None, dtype=None):
        device, dtype = state_device_dtype(self, device, dtype)
        return self.model.initial_state(self.params, self.out_shape, batch_size, device, dtype)

    def step(self, x, state, dt: float):
        """One step of the model: ``(output [batch, *shape], new_state)``."""
        return self.model.step(x, state, self.params, dt, self._spike_fn)

    def step_sequence(self, x_seq, state, dt: float):
        """T steps with the model's fused kernel, or ``NotImplemented`` when it does not apply."""
        return self.model.sequence(x_seq, state, self.params, dt, self.surrogate)

    def validate(self, dt: float, where: str) -> None:
        self.model.validate(self.params, dt, where)
        for name in self._tensor_fields:
            value = getattr(self, name)
            try:
                torch.broadcast_shapes(value.shape, self.out_shape)
            except RuntimeError:
                raise ValueError(f"{where}: parameter {name!r} has shape {tuple(value.shape)}, "
                                 f"which does not broadcast to the population shape {self.out_shape}") from None

    def count_ops(self, x, output):
        return {"spikes": output.detach().sum()} if self.emits_spikes else {}

    def extra_repr(self) -> str:
        return f"model={self.model.name!r}, shape={self.out_shape}, trainable={self.trainable}"
