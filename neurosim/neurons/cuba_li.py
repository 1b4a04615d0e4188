"""Current-based leaky integrator, a non-spiking readout with a synaptic current (NIR ``CubaLI``).

Continuous dynamics (NIR's equations; i in amperes, r in ohms)::

    tau_syn di/dt = -i + w_in S          S: the input, a train of pulses (as for CubaLIF)
    tau_mem dv/dt = (v_leak - v) + r i

No threshold, no reset: the output of a step is the membrane v (the registered model has
``spiking=False``). It is :mod:`neurosim.neurons.cuba_lif` without the threshold, with the same
input convention (``x[t]`` is a current increment, ``i += w_in x``) and the same discretisation,
shared code included, so a ``cuba_li`` readout and a ``cuba_lif`` below threshold give the very
same membrane::

    i[t] = a_syn i[t-1] + w_in x[t]
    v[t] = v_leak + (v[t-1] - v_leak) a_mem + c r i_drive

``integration="exact"``: a_syn = exp(-dt/tau_syn), a_mem = exp(-dt/tau_mem),
c = tau_syn (a_syn - a_mem) / (tau_syn - tau_mem) (exact between pulses, singularity-free at
tau_syn = tau_mem); ``"euler"``: a = 1 - dt/tau, c = dt/tau_mem. ``i_drive = i[t]`` when
``input_same_step`` (the input of step t moves v at step t), else ``i[t-1]``.

Shapes: input, output and every state field ``[batch, *shape]``; parameters are floats or tensors
that broadcast against ``shape``.

Example::

    >>> readout = Population("cuba_li", 10, CubaLIParams(tau_syn=5e-3, tau_mem=20e-3))
    >>> v, state = readout.step(currents, readout.initial_state(8), dt=1e-3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

from .base import INTEGRATIONS, NeuronModel, check_choice, check_fields_positive, default_spike_fn, register_neuron_model
from .cuba_lif import current_and_membrane

Scalar = Union[float, torch.Tensor]

__all__ = ["CubaLIParams", "CubaLIState", "cuba_li_step", "cuba_li_initial_state", "CubaLI"]


@dataclass(frozen=True)
class CubaLIParams:
    """CubaLI parameters (SI units). ``tau_*`` [s], ``v_leak`` [V], ``r`` [Ohm], ``w_in`` [1]."""

    tau_syn: Scalar = 5e-3
    tau_mem: Scalar = 10e-3
    r: Scalar = 1.0
    v_leak: Scalar = 0.0
    w_in: Scalar = 1.0
    integration: str = "exact"
    input_same_step: bool = True

    def __post_init__(self):
        check_fields_positive(self, ("tau_syn", "tau_mem"))
        check_choice(self.integration, INTEGRATIONS, "CubaLIParams.integration")


class CubaLIState(NamedTuple):
    """v: membrane [V]; i: synaptic current [A] (after the last step's input)."""

    v: torch.Tensor
    i: torch.Tensor


def cuba_li_initial_state(params: CubaLIParams, shape, batch_size: int, device=None,
                          dtype=torch.float32) -> CubaLIState:
    """Resting state: v = v_leak, no synaptic current."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=dtype)
    return CubaLIState(v=z + params.v_leak, i=z)


def cuba_li_step(x: torch.Tensor, state: CubaLIState, p: CubaLIParams, dt: float,
                 spike_fn=default_spike_fn):
    """One CubaLI step (module docstring). Returns (v, new_state); ``spike_fn`` is unused."""
    i, v = current_and_membrane(x, state.v, state.i, p, dt)
    return v, CubaLIState(v=v, i=i)


CubaLI = register_neuron_model(NeuronModel(
    name="cuba_li", params_type=CubaLIParams, state_type=CubaLIState, step=cuba_li_step,
    initial_state=cuba_li_initial_state, spiking=False, time_constants=("tau_syn", "tau_mem")))
