"""The ``input`` section of a config: how the spike trains fed to each graph input are made."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from ..graph import Graph
from .schema import NUMBER, RATE, check_keys, choice, field, mapping, section
from .settings import RunSettings


def _poisson(args, shape, settings: RunSettings, generator) -> torch.Tensor:
    from ..coding import poisson_encode
    rates = torch.full((settings.batch, *shape), float(args["rate"]))
    return poisson_encode(rates, settings.steps, settings.dt, generator=generator)


def _constant(args, shape, settings: RunSettings, generator) -> torch.Tensor:
    return torch.full((settings.steps, settings.batch, *shape), float(args["value"]))


#: input encoders: name -> (keys as {key: (default, Rule)}, make), where
#: ``make(args, shape, settings, generator) -> [steps, batch, *shape]``. poisson: independent
#: spikes with P(spike in a step) = rate * dt (rate in Hz); constant: the value every step.
INPUT_ENCODERS: Dict[str, tuple] = {
    "poisson": ({"rate": (20.0, RATE)}, _poisson),
    "constant": ({"value": (1.0, NUMBER)}, _constant),
}


def input_specs(config: Dict[str, Any], graph: Graph, path) -> Dict[str, Dict[str, Any]]:
    """The checked ``input`` section: graph input name -> ``{"encoder": name, <its keys>}``, with
    defaults filled in (an input not listed gets ``poisson`` at 20 Hz)."""
    inputs = section(config, "input", path)
    check_keys(inputs, list(graph.inputs), path, "input")
    specs = {}
    for name in graph.inputs:
        where = f"input.{name}"
        spec = mapping(inputs.get(name) or {}, path, where)
        encoder = field(spec, "encoder", "poisson", path, where, choice(INPUT_ENCODERS))
        keys, _ = INPUT_ENCODERS[encoder]
        check_keys(spec, ["encoder", *keys], path, where)
        specs[name] = {"encoder": encoder, **{key: field(spec, key, default, path, where, rule)
                                              for key, (default, rule) in keys.items()}}
    return specs


def encode_inputs(specs: Dict[str, Dict[str, Any]], graph: Graph, settings: RunSettings,
                  generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """Input sequences ``{name: [steps, batch, *shape]}`` from checked :func:`input_specs`."""
    out = {}
    for name, spec in specs.items():
        args = {k: v for k, v in spec.items() if k != "encoder"}
        out[name] = INPUT_ENCODERS[spec["encoder"]][1](args, graph.inputs[name], settings, generator)
    return out
