"""The ``train`` section of a config, used by ``neurosim train`` (synthetic rate patterns)."""
from __future__ import annotations

import functools
from typing import Any, Dict

from ..graph import Graph
from ..validation import check_int
from .schema import POSITIVE_INTEGER, POSITIVE_NUMBER, RATE, ConfigError, Rule, check_keys, field, name, section

#: keys of the ``train`` section: name -> (default, Rule)
TRAIN_FIELDS: Dict[str, tuple] = {
    "epochs": (3, POSITIVE_INTEGER),
    "batch_size": (32, POSITIVE_INTEGER),
    "lr": (1e-2, POSITIVE_NUMBER),
    "loss": ("count_cross_entropy", name("a loss name")),
    "samples": (256, POSITIVE_INTEGER),
    "classes": (2, Rule(functools.partial(check_int, minimum=2), "an integer >= 2")),
    "rate_low": (5.0, RATE),
    "rate_high": (60.0, RATE),
    "checkpoints": ("checkpoints", name("a folder name")),
}


def train_settings(config: Dict[str, Any], path) -> Dict[str, Any]:
    """The checked ``train`` section with defaults filled in; the loss must be registered."""
    from ..training import get_loss
    train = section(config, "train", path, required=True)
    check_keys(train, TRAIN_FIELDS, path, "train")
    spec = {key: field(train, key, default, path, "train", rule) for key, (default, rule) in TRAIN_FIELDS.items()}
    try:
        get_loss(spec["loss"])
    except KeyError as e:
        raise ConfigError(path, "train.loss", str(e).strip('"')) from None
    return spec


def check_trainable(graph: Graph, spec: Dict[str, Any], path) -> None:
    """``neurosim train`` needs one 1-D input and a first output node of shape ``(classes,)``."""
    shapes = list(graph.inputs.values())
    if len(shapes) != 1 or len(shapes[0]) != 1:
        raise ConfigError(path, "network.inputs", f"`neurosim train` needs exactly one 1-D input, got "
                                                  f"{ {n: list(s) for n, s in graph.inputs.items()} }")
    out_shape = graph.nodes[graph.output_names()[0]].out_shape
    if out_shape != (spec["classes"],):
        raise ConfigError(path, "train.classes", f"{spec['classes']} classes but the output node has shape {out_shape}")
