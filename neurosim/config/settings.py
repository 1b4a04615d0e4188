"""The scalar settings of a run: the top-level ``dt``, ``steps``, ``batch``, ``seed`` and the
``output`` section (where the recording and plots go)."""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, NamedTuple

from ..validation import check_number
from .schema import FLAG, INTEGER, POSITIVE_INTEGER, Rule, accepting, check_keys, field, is_name, name, section

OUTPUT_KEYS = ("dir", "recording", "plots")

SECONDS = Rule(functools.partial(check_number, positive=True), "a finite number of seconds > 0")
FILE_NAME = accepting(lambda v: is_name(v) and os.path.basename(v) != "", "a file name")


class RunSettings(NamedTuple):
    """dt: time step [s]; steps: time steps per run; batch: samples per run; seed: RNG seed."""

    dt: float
    steps: int
    batch: int
    seed: int


def config_dt(config: Dict[str, Any], path) -> float:
    """The checked top-level ``dt`` in seconds: a finite number > 0 (default 1e-3)."""
    return field(config, "dt", 1e-3, path, "", SECONDS)


def run_settings(config: Dict[str, Any], path) -> RunSettings:
    """The top-level scalars, checked: ``dt`` a finite number > 0 (default 1e-3 s); ``steps``
    (200) and ``batch`` (1) integers > 0; ``seed`` (0) an integer. Booleans are not integers."""
    return RunSettings(
        dt=config_dt(config, path),
        steps=field(config, "steps", 200, path, "", POSITIVE_INTEGER),
        batch=field(config, "batch", 1, path, "", POSITIVE_INTEGER),
        seed=field(config, "seed", 0, path, "", INTEGER))


class OutputSettings(NamedTuple):
    """dir: output folder; recording: HDF5 file name in it; plots: draw a PNG per recording."""

    dir: str
    recording: str
    plots: bool


def output_settings(config: Dict[str, Any], path) -> OutputSettings:
    """The checked ``output`` section (defaults ``out``, ``recording.h5``, ``true``)."""
    output = section(config, "output", path)
    check_keys(output, OUTPUT_KEYS, path, "output")
    return OutputSettings(
        dir=field(output, "dir", "out", path, "output", name("a folder name")),
        recording=field(output, "recording", "recording.h5", path, "output", FILE_NAME),
        plots=field(output, "plots", True, path, "output", FLAG))
