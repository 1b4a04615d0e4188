"""Brian2 equations for neurosim's neuron models, one builder per model (used by :mod:`.brian2`).

Each builder reads a Population's params dataclass and returns a :class:`ModelEquations`: the
equation text for a Brian2 ``NeuronGroup`` (every continuous parameter becomes a per-neuron
``(constant)`` variable, so scalar and per-neuron tensor parameters map the same way), the
threshold and reset code, the integration method, the refractory period and, per input port, how
the input reaches the model. Variables are dimensionless numbers in neurosim's units (SI for
every model, mV and paper units for Izhikevich); time constants carry Brian2's ``second``.

Equations (``I`` the input of the step, held over it; see each neurosim model's docstring)::

    lif / li   dv/dt = (v_leak - v + r I) / tau_mem                      (li: no threshold)
    if         dv/dt = r I / second
    alif       lif + db/dt = -b / tau_adapt; threshold v > v_threshold + beta b; reset ... b += 1
    cuba_lif   dv/dt = (v_leak - v + r I_syn) / tau_mem;  dI_syn/dt = -I_syn / tau_syn
    coba_lif   dv/dt = (v_leak - v + (g_exc (e_exc - v) + g_inh (e_inh - v)) / g_leak) / tau_mem
               dg_exc/dt = -g_exc / tau_syn_exc;   dg_inh/dt = -g_inh / tau_syn_inh
    izhikevich dv/dt = (0.04 v^2 + 5 v + 140 - u + I) / ms;  du/dt = a (b v - u) / ms   (mV)
    adex       dv/dt = (g_L (E_L - v) + g_L Delta_T exp((v - V_T)/Delta_T) - w + I) / (C second)
               dw/dt = (a (v - E_L) - w) / tau_w

Methods: ``integration="exact"`` -> Brian2 ``"exact"`` (COBA: ``"exponential_euler"``, exact for
conductances frozen over the step, neurosim's exact update), ``"euler"`` -> ``"euler"``; IF,
Izhikevich and AdEx are ``"euler"`` (IF's update is exact for a held input). Resets: zero
``v = 0``, value ``v = v_reset``, subtract ``v -= v_threshold - v_reset`` (ALIF: the threshold in
force, ``v_threshold + beta b``). Refractoriness: Brian2 ``refractory = (n + 1) dt`` for neurosim
``refractory_steps = n`` (v held by ``(unless refractory)``, no spike).

Input ports. Every port ``p`` collects the step's input in a parameter ``p_in`` (synapses add
their weights, external currents their value). Two kinds:

* ``held`` (a current held over the step: lif, li, if, alif, izhikevich, adex): the equations
  read ``p_in`` (``input_same_step=True``) or ``p_held``, last step's input (``False``); after the
  update ``p_held = p_in`` and ``p_in = 0``.
* ``jump`` (cuba_lif's current, coba_lif's conductances): the state variable jumps by
  ``w_in p_in``, before the update (``input_same_step=True``: this step's input acts on this
  step) or after it (``False``: from the next step on, Brian2's own update-then-propagate order).

Refused (with the reason, see :func:`refusal`): ``reset="subtract_delayed"`` (no Brian2 reset
acts one step late) and a CubaLIF with ``tau_syn == tau_mem`` (Brian2's exact solver divides
by ``tau_syn - tau_mem``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

__all__ = ["ModelEquations", "PortInput", "model_equations", "refusal", "MODELS"]


@dataclass(frozen=True)
class PortInput:
    """How the input of one port reaches the model: ``kind`` ``"held"`` or ``"jump"``; ``variable``
    the parameter collecting the step's input (``input_in``); ``target``/``scale`` the jumping
    state variable and its factor (jump ports only)."""

    variable: str
    kind: str
    target: str = ""
    scale: str = "1"


@dataclass(frozen=True)
class ModelEquations:
    """Everything a Brian2 NeuronGroup needs for one Population (see the module docstring).

    ``parameters``: neurosim parameter name -> Brian2 unit name; ``pre_update``/``post_update``:
    code run right before / after the state update each step; ``state_variables``: neurosim
    state field -> Brian2 variable; ``sampled_before_update``: variables whose neurosim value of
    step t is Brian2's right after ``pre_update`` of step t (the jumped currents), all others are
    sampled at the end of the step."""

    equations: str
    parameters: Dict[str, str]
    method: str
    threshold: Optional[str]
    reset: Optional[str]
    refractory_steps: int
    ports: Dict[str, PortInput]
    pre_update: str
    post_update: str
    state_variables: Dict[str, str]
    sampled_before_update: Tuple[str, ...] = ()


def _declare(parameters: Dict[str, str]) -> str:
    return "\n".join(f"{name} : {unit} (constant)" for name, unit in parameters.items())


def _held_port(port: str, input_same_step: bool) -> Tuple[str, str, PortInput, str]:
    """(the symbol the equations read, declarations, PortInput, post-update code) of a held port."""
    collect = f"{port}_in"
    if input_same_step:
        return collect, f"{collect} : 1", PortInput(collect, "held"), f"{collect} = 0"
    held = f"{port}_held"
    return held, f"{collect} : 1\n{held} : 1", PortInput(collect, "held"), f"{held} = {collect}\n{collect} = 0"


def _jump_port(port: str, target: str, scale: str, input_same_step: bool) -> Tuple[str, PortInput, str, str]:
    """(declaration, PortInput, pre-update code, post-update code) of a jump port."""
    collect = f"{port}_in"
    code = f"{target} += {scale} * {collect}\n{collect} = 0"
    return f"{collect} : 1", PortInput(collect, "jump", target, scale), *((code, "") if input_same_step else ("", code))


def _reset_code(reset: str, threshold: str = "v_threshold", reset_to: str = "v_reset") -> str:
    return {"zero": "v = 0", "value": f"v = {reset_to}", "subtract": f"v -= {threshold} - {reset_to}"}[reset]


def _method(p) -> str:
    return "exact" if p.integration == "exact" else "euler"


def _units(p, time_constants) -> Dict[str, str]:
    """Every continuous field of ``p`` (floats or tensors) as a parameter; time constants in s."""
    return {f.name: ("second" if f.name in time_constants else "1") for f in dataclasses.fields(p)
            if isinstance(getattr(p, f.name), (float, int, torch.Tensor)) and not isinstance(getattr(p, f.name), bool)
            and f.name != "refractory_steps"}


def _held_model(p, body: str, time_constants, method: str, threshold: Optional[str], reset: Optional[str],
                state_variables: Dict[str, str], refractory: bool = True) -> ModelEquations:
    """A single-port model whose input is a current held over the step; ``body`` uses ``{I}``."""
    drive, declarations, port, post = _held_port("input", p.input_same_step)
    parameters = _units(p, time_constants)
    equations = "\n".join([body.format(I=drive), declarations, _declare(parameters)])
    return ModelEquations(equations, parameters, method, threshold, reset,
                          p.refractory_steps if refractory else 0, {"input": port}, "", post, state_variables)


def _lif(p) -> ModelEquations:
    return _held_model(p, "dv/dt = (v_leak - v + r * {I}) / tau_mem : 1 (unless refractory)", ("tau_mem",),
                       _method(p), "v > v_threshold", _reset_code(p.reset), {"v": "v"})


def _li(p) -> ModelEquations:
    return _held_model(p, "dv/dt = (v_leak - v + r * {I}) / tau_mem : 1", ("tau_mem",), _method(p), None, None,
                       {"v": "v"}, refractory=False)


def _if(p) -> ModelEquations:
    return _held_model(p, "dv/dt = r * {I} / second : 1 (unless refractory)", (), "euler", "v > v_threshold",
                       _reset_code(p.reset), {"v": "v"})


def _alif(p) -> ModelEquations:
    body = "dv/dt = (v_leak - v + r * {I}) / tau_mem : 1 (unless refractory)\ndb/dt = -b / tau_adapt : 1"
    reset = _reset_code(p.reset, threshold="(v_threshold + beta * b)") + "\nb += 1"
    return _held_model(p, body, ("tau_mem", "tau_adapt"), _method(p), "v > v_threshold + beta * b", reset,
                       {"v": "v", "b": "b"})


def _izhikevich(p) -> ModelEquations:
    body = "dv/dt = (0.04 * v**2 + 5 * v + 140 - u + {I}) / ms : 1\ndu/dt = a * (b * v - u) / ms : 1"
    return _held_model(p, body, (), "euler", "v > v_peak", "v = c\nu += d", {"v": "v", "u": "u"}, refractory=False)


def _adex(p) -> ModelEquations:
    body = ("dv/dt = (g_L * (E_L - v) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w + {I}) / (C * second)"
            " : 1 (unless refractory)\ndw/dt = (a * (v - E_L) - w) / tau_w : 1")
    return _held_model(p, body, ("tau_w",), "euler", "v > V_peak", "v = V_reset\nw += b", {"v": "v", "w": "w"})


def _cuba_lif(p) -> ModelEquations:
    parameters = _units(p, ("tau_syn", "tau_mem"))
    declaration, port, pre, post = _jump_port("input", "I_syn", "w_in", p.input_same_step)
    equations = "\n".join(["dv/dt = (v_leak - v + r * I_syn) / tau_mem : 1 (unless refractory)",
                           "dI_syn/dt = -I_syn / tau_syn : 1", declaration, _declare(parameters)])
    return ModelEquations(equations, parameters, _method(p), "v > v_threshold", _reset_code(p.reset),
                          p.refractory_steps, {"input": port}, pre, post, {"v": "v", "i": "I_syn"},
                          ("I_syn",) if p.input_same_step else ())


def _coba_lif(p) -> ModelEquations:
    parameters = _units(p, ("tau_mem", "tau_syn_exc", "tau_syn_inh"))
    ports, pre, post, declarations = {}, [], [], []
    for port in ("exc", "inh"):
        declaration, ports[port], before, after = _jump_port(port, f"g_{port}", "1", p.input_same_step)
        declarations.append(declaration)
        pre.append(before)
        post.append(after)
    equations = "\n".join([
        "dv/dt = (v_leak - v + (g_exc * (e_exc - v) + g_inh * (e_inh - v)) / g_leak) / tau_mem : 1 (unless refractory)",
        "dg_exc/dt = -g_exc / tau_syn_exc : 1", "dg_inh/dt = -g_inh / tau_syn_inh : 1",
        *declarations, _declare(parameters)])
    method = "exponential_euler" if p.integration == "exact" else "euler"
    return ModelEquations(equations, parameters, method, "v > v_threshold", _reset_code(p.reset),
                          p.refractory_steps, ports, "\n".join(filter(None, pre)), "\n".join(filter(None, post)),
                          {"v": "v", "g_exc": "g_exc", "g_inh": "g_inh"},
                          ("g_exc", "g_inh") if p.input_same_step else ())


#: neurosim model name -> builder(params) -> ModelEquations
MODELS: Dict[str, Callable] = {"lif": _lif, "li": _li, "if": _if, "alif": _alif, "izhikevich": _izhikevich,
                               "adex": _adex, "cuba_lif": _cuba_lif, "coba_lif": _coba_lif}


def refusal(model_name: str, p) -> Optional[str]:
    """Why a population of ``model_name`` with params ``p`` has no exact Brian2 form (None if it has)."""
    if model_name not in MODELS:
        return f"neuron model {model_name!r} has no Brian2 equations here (supported: {sorted(MODELS)})"
    if getattr(p, "reset", None) == "subtract_delayed":
        return "reset='subtract_delayed' (a reset one step late) has no Brian2 counterpart"
    as_float64 = lambda value: torch.as_tensor(value, dtype=torch.float64)       # noqa: E731
    if model_name == "cuba_lif" and p.integration == "exact" and bool(
            torch.any(as_float64(p.tau_syn) == as_float64(p.tau_mem))):
        return "tau_syn == tau_mem: Brian2's exact solver divides by tau_syn - tau_mem"
    return None


def model_equations(model_name: str, p) -> ModelEquations:
    """The :class:`ModelEquations` of a population (call :func:`refusal` first)."""
    return MODELS[model_name](p)
