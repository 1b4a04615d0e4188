"""A whole run config, read and checked from top to bottom before anything runs."""
from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional

import torch

from ..graph import Graph
from .files import load_config
from .inputs import input_specs
from .monitors import MonitorSpec, monitor_specs
from .network import build_graph
from .schema import check_keys
from .settings import OutputSettings, RunSettings, output_settings, run_settings
from .train import check_trainable, train_settings

TOP_LEVEL_KEYS = ("dt", "steps", "batch", "seed", "network", "input", "monitors", "output", "train")


class RunConfig(NamedTuple):
    """A config checked from top to bottom by :func:`load_run_config`."""

    path: str
    settings: RunSettings
    graph: Graph
    inputs: Dict[str, Dict[str, Any]]
    monitors: List[MonitorSpec]
    output: OutputSettings
    train: Optional[Dict[str, Any]]


def load_run_config(path, overrides: Optional[Dict[str, Any]] = None, train: bool = False) -> RunConfig:
    """Read the config at ``path`` and check all of it before anything runs (see
    :mod:`neurosim.config`); the only error raised for a bad config is :class:`ConfigError`.

    ``overrides`` replace top-level keys (``{"steps": 100}``; ``None`` values are ignored) and are
    checked like them. ``train=True`` requires the ``train`` section (it is checked whenever it
    is present), and the graph must then suit :func:`check_trainable`. The graph's random
    initial weights are drawn under ``seed`` without touching torch's global RNG."""
    path = os.fspath(path)
    config = load_config(path)
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    check_keys(config, TOP_LEVEL_KEYS, path, "")
    settings = run_settings(config, path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        graph = build_graph(config, path)
    inputs = input_specs(config, graph, path)
    monitors = monitor_specs(config, graph, path)
    output = output_settings(config, path)
    spec = train_settings(config, path) if train or "train" in config else None
    if train:
        check_trainable(graph, spec, path)
    return RunConfig(path, settings, graph, inputs, monitors, output, spec)
