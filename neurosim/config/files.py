"""Reading a config file: YAML (``.yaml``, ``.yml``) or TOML (``.toml``) into a dict.

Only data is read (``yaml.safe_load``): no code is executed from a config."""
from __future__ import annotations

import os
import tomllib
from typing import Any, Dict

import yaml

from .schema import ConfigError


def load_config(path) -> Dict[str, Any]:
    """Read a ``.yaml``/``.yml`` or ``.toml`` file into a dict (errors name the file).

    Raises :class:`ConfigError` for a missing file, an unknown extension, a file that does not
    parse, or a top level that is not a mapping."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(path, "", "no such config file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".yaml", ".yml"):
            with open(path) as f:
                data = yaml.safe_load(f)
        elif ext == ".toml":
            with open(path, "rb") as f:
                data = tomllib.load(f)
        else:
            raise ConfigError(path, "", f"unknown config extension {ext!r} (use .yaml, .yml or .toml)")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(path, "", f"cannot parse: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", "the top level must be a mapping")
    return data
