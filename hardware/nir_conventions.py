"""How NIR's continuous neuron equations become neurosim's discrete ones, per source library.

NIR leaves the time step, the reset mode and the integration scheme implicit. neurosim's exporter
writes them (the *discretisation contract*) as JSON under ``metadata["neurosim"]`` of every
neuron node, and the graph's ``dt`` under the graph's own ``metadata["neurosim"]``; the importer
reads them back. Files from other libraries carry no contract; a :class:`Convention` states what
that library means (found by reading and running snnTorch 1.0.0 and Norse 1.1.0):

============  =======  ===========================  ===============================================
convention    dt       tau in the file              integration, reset, input
============  =======  ===========================  ===============================================
neurosim      file     tau [s]                      as written in the contract (no contract:
                                                    exact, reset to v_reset, same step; warns)
snntorch      1e-4     dt / (1 - beta), r = tau/dt  Euler (``v = beta v + I``); reset
                                                    ``subtract_delayed`` (its default
                                                    ``reset_delay=True``); Synaptic: w_in = tau_syn
                                                    /dt means an increment of 1 per input
norse         1e-3     dt * tau (norse issue 411)   Euler; reset to v_reset = 0 (never written);
                                                    LIFCell adds the input to i at once (w_in 1)
============  =======  ===========================  ===============================================

Every library fires on ``v - v_threshold > 0`` with the input reaching the membrane in the same
step (``input_same_step=True``). ``CubaLI`` is read like ``CubaLIF`` (its tau and w_in the same
way) and ``I`` like ``IF``; neither library exports them (nor ``Threshold`` or ``Conv1d``).

Example::

    >>> contract = read_contract(nir_node)              # {} for a file from elsewhere
    >>> params, assumed = neuron_params("lif", nir_node, CONVENTIONS["snntorch"], dt=1e-4, reset=None)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from neurosim.neurons import CubaLIFParams, CubaLIParams, IFParams, IntegratorParams, LIFParams, LIParams
from neurosim.neurons.base import RESETS

__all__ = ["Convention", "CONVENTIONS", "CONTRACT_KEY", "write_contract", "read_contract",
           "neuron_params", "as_array", "as_value"]

#: the metadata key of neurosim's contract, in nodes and in the graph
CONTRACT_KEY = "neurosim"


@dataclass(frozen=True)
class Convention:
    """What a library means by a NIR neuron node.

    ``default_dt`` [s]: the time step it assumes; ``integration``/``reset``: neurosim's names of
    its scheme and reset (None: from the contract); ``tau_times_dt``: the file holds dt * tau
    (Norse) instead of tau; ``w_in_is_euler_gain``: the file's CubaLIF ``w_in`` is NIR's
    continuous input weight, so one input adds ``w_in dt / tau_syn`` to i (snnTorch), instead
    of adding ``w_in`` directly (neurosim, Norse)."""

    name: str
    default_dt: Optional[float]
    integration: Optional[str]
    reset: Optional[str]
    tau_times_dt: bool = False
    w_in_is_euler_gain: bool = False
    note: str = ""


CONVENTIONS: Dict[str, Convention] = {
    "neurosim": Convention("neurosim", None, None, None),
    "snntorch": Convention("snntorch", 1e-4, "euler", "subtract_delayed", w_in_is_euler_gain=True,
                           note="snnTorch's default reset_mechanism='subtract' with reset_delay=True"),
    "norse": Convention("norse", 1e-3, "euler", "value", tau_times_dt=True,
                        note="Norse's reset to v_reset = 0 (v_reset is never written)"),
}

#: what a metadata-free file is assumed to mean under convention="neurosim"
NIR_DEFAULTS = {"integration": "exact", "reset": "value", "refractory_steps": 0, "input_same_step": True}


def as_array(value) -> np.ndarray:
    """A NIR field (numpy array, torch tensor or number) as a float64 numpy array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)     # a writable copy


def as_value(array: np.ndarray, shape: Tuple[int, ...], where: str):
    """A parameter for neurosim: a float when every element is equal, else a default-dtype tensor
    broadcast to ``shape``; raises naming ``where`` when it does not broadcast."""
    array = np.asarray(array, dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{where}: empty parameter array")
    try:
        broadcast = np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{where}: parameter of shape {array.shape} does not broadcast to the "
                         f"population shape {shape}") from None
    flat = array.reshape(-1)
    if np.all(flat == flat[0]):
        return float(flat[0])
    return torch.as_tensor(np.array(broadcast), dtype=torch.get_default_dtype())


def write_contract(params, model: str, dt: float) -> Dict[str, str]:
    """The metadata of an exported neuron node: ``{"neurosim": json}`` with the model name, ``dt``
    [s] and every discrete choice of ``params`` (integration, reset, refractory_steps,
    input_same_step) plus the meanings neurosim gives r, v_leak, v_reset and w_in."""
    contract: Dict[str, Any] = {"model": model, "dt": dt,
                                "meaning": "tau dv/dt = (v_leak - v) + r I; v_reset: value reset to, "
                                           "or subtract (v_threshold - v_reset); CubaLIF w_in: "
                                           "increment of i per unit input"}
    for name in ("integration", "reset", "refractory_steps", "input_same_step"):
        if hasattr(params, name):
            value = getattr(params, name)
            contract[name] = bool(value) if isinstance(value, (bool, np.bool_)) else value
    return {CONTRACT_KEY: json.dumps(contract, sort_keys=True)}


def read_contract(node, where: str = "") -> Dict[str, Any]:
    """The contract in ``node.metadata`` (a NIR node or graph), ``{}`` when there is none."""
    raw = (getattr(node, "metadata", None) or {}).get(CONTRACT_KEY)
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        contract = json.loads(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: metadata[{CONTRACT_KEY!r}] is not neurosim's JSON contract: {raw!r}") from None
    if not isinstance(contract, dict):
        raise ValueError(f"{where}: metadata[{CONTRACT_KEY!r}] must be a JSON object, got {raw!r}")
    return contract


#: the discrete choices each model has (the others do not apply to it)
MODEL_CHOICES = {
    "lif": tuple(NIR_DEFAULTS), "cuba_lif": tuple(NIR_DEFAULTS),
    "if": ("reset", "refractory_steps", "input_same_step"),
    "li": ("integration", "input_same_step"), "cuba_li": ("integration", "input_same_step"),
    "integrator": ("input_same_step",),
}


def _discrete(contract: Dict[str, Any], convention: Convention, reset: Optional[str],
              assumed: List[str], where: str, keys=tuple(NIR_DEFAULTS)) -> Dict[str, Any]:
    """The discrete choices named in ``keys`` (of integration / reset / refractory_steps /
    input_same_step) for one node; ``reset`` (the caller's override) applies when "reset" is one."""
    if contract:
        choice = {k: contract[k] for k in keys if k in contract}
    elif convention.name == "neurosim":
        choice = {k: NIR_DEFAULTS[k] for k in keys}
        assumed.append(f"{where}: no neurosim contract, assumed " +
                       ", ".join(f"{k}={v!r}" for k, v in choice.items()))
    else:
        every = {"integration": convention.integration, "reset": convention.reset,
                 "refractory_steps": 0, "input_same_step": True}
        choice = {k: every[k] for k in keys}
        if reset is None and "reset" in keys:
            assumed.append(f"{where}: assumed reset={convention.reset!r} ({convention.note}); "
                           "pass reset= to choose another")
    if reset is not None:
        if reset not in RESETS:
            raise ValueError(f"from_nir: reset must be one of {RESETS}, got {reset!r}")
        if "reset" in keys:
            choice["reset"] = reset
    return choice


def _tau(node, field: str, convention: Convention, dt: float) -> np.ndarray:
    tau = as_array(getattr(node, field))
    return tau / dt if convention.tau_times_dt else tau


def neuron_params(model: str, node, convention: Convention, dt: float, reset: Optional[str],
                  shape: Tuple[int, ...], where: str) -> Tuple[Any, List[str]]:
    """The neurosim params of NIR neuron ``node`` (a ``nir.LIF``, ``CubaLIF``, ``IF``, ``LI``,
    ``CubaLI`` or ``I``) read under ``convention`` with time step ``dt`` [s]; returns
    ``(params, assumptions)``.

    LIF / LI: ``tau_mem = tau`` (Norse: ``tau / dt``), ``r``, ``v_leak``, ``v_threshold``,
    ``v_reset`` as written; IF: ``r``, ``v_threshold``, ``v_reset``; I: ``r``. CubaLIF / CubaLI:
    ``w_in`` is multiplied by ``dt / tau_syn`` for snnTorch (its ``w_in = tau_syn / dt`` means
    one unit of input adds 1 to i under Euler). A parameter that does not broadcast to ``shape``
    raises ``ValueError`` naming ``where`` and the NIR key."""
    assumed: List[str] = []
    choice = _discrete(read_contract(node, where), convention, reset, assumed, where, MODEL_CHOICES[model])

    def value(key, array=None):
        return as_value(as_array(getattr(node, key)) if array is None else array, shape, f"{where}, key {key!r}")

    if model == "if":
        return IFParams(r=value("r"), v_threshold=value("v_threshold"), v_reset=value("v_reset"), **choice), assumed
    if model == "integrator":
        return IntegratorParams(r=value("r"), **choice), assumed
    if model == "li":
        return LIParams(tau_mem=value("tau", _tau(node, "tau", convention, dt)), v_leak=value("v_leak"),
                        r=value("r"), **choice), assumed
    if model == "lif":
        return LIFParams(tau_mem=value("tau", _tau(node, "tau", convention, dt)), v_threshold=value("v_threshold"),
                         v_leak=value("v_leak"), v_reset=value("v_reset"), r=value("r"), **choice), assumed
    tau_syn = _tau(node, "tau_syn", convention, dt)
    w_in = as_array(node.w_in)
    if convention.w_in_is_euler_gain:
        w_in = w_in * dt / tau_syn
    synaptic = dict(tau_syn=value("tau_syn", tau_syn), tau_mem=value("tau_mem", _tau(node, "tau_mem", convention, dt)),
                    w_in=value("w_in", w_in), v_leak=value("v_leak"), r=value("r"))
    if model == "cuba_li":
        return CubaLIParams(**synaptic, **choice), assumed
    return CubaLIFParams(**synaptic, v_threshold=value("v_threshold"), v_reset=value("v_reset"), **choice), assumed
