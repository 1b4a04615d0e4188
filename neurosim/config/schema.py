"""The checks every config section shares, and :class:`ConfigError`, the one error they raise.

A scalar is checked against a :class:`Rule`: a check of :mod:`neurosim.validation` (integers are
never bools, numbers are finite, bounds) or, for what that module has no check of (names,
flags), a predicate (:func:`accepting`). A failed check becomes ``ConfigError(path, key,
"must be <expected>, got <value>")`` in one place, :func:`checked`, so every scalar message
of a config reads the same whichever check found the problem.

Example::

    >>> field({"steps": 5}, "steps", 200, "net.yaml", "", POSITIVE_INTEGER)
    5
    >>> field({"steps": True}, "steps", 200, "net.yaml", "", POSITIVE_INTEGER)  # doctest: +SKIP
    ConfigError: net.yaml: steps: must be an integer > 0, got True
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Iterable, NamedTuple

from ..validation import check_choice, check_int, check_number


class ConfigError(ValueError):
    """A config problem; the message is ``path: key: message`` (``path: message`` without a key).

    ``path`` is the config file, ``key`` the dotted key path (``network.nodes.lif.params``,
    ``monitors[0].every``) and ``message`` what is wrong."""

    def __init__(self, path, key: str, message: str):
        self.path, self.key, self.message = path, key, message
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


def join(where: str, key) -> str:
    """The key path of ``key`` inside ``where`` (``where.key``; ``key`` alone at the top)."""
    return f"{where}.{key}" if where else str(key)


# ---------------------------------------------------------------------- scalar rules
class Rule(NamedTuple):
    """What a config value must be: ``check(value, where)`` returns the value (converted as
    :mod:`neurosim.validation` converts it) or raises ``ValueError``; ``expected`` ends the
    message ``must be <expected>, got <value>``."""

    check: Callable[[Any, str], Any]
    expected: str


def accepting(ok: Callable[[Any], bool], expected: str) -> Rule:
    """A :class:`Rule` from a predicate, for values :mod:`neurosim.validation` has no check of."""
    def check(value, where: str):
        if not ok(value):
            raise ValueError(f"{where} must be {expected}, got {value!r}")
        return value
    return Rule(check, expected)


def is_name(value) -> bool:
    """A non-empty string: the name of a node, input, port, folder or file."""
    return isinstance(value, str) and bool(value)


def name(expected: str) -> Rule:
    """A non-empty string; ``expected`` says what it names (``"a port name"``)."""
    return accepting(is_name, expected)


def choice(options: Iterable) -> Rule:
    """One of ``options`` (listed sorted in the message)."""
    options = sorted(options)
    return Rule(lambda value, where: check_choice(value, options, where), f"one of {options}")


INTEGER = Rule(check_int, "an integer")
POSITIVE_INTEGER = Rule(functools.partial(check_int, minimum=1), "an integer > 0")
NUMBER = Rule(check_number, "a finite number")
POSITIVE_NUMBER = Rule(functools.partial(check_number, positive=True), "a finite number > 0")
RATE = Rule(functools.partial(check_number, nonnegative=True), "a rate >= 0 in Hz")
FLAG = accepting(lambda value: isinstance(value, bool), "true or false")


def checked(value, path, key: str, rule: Rule):
    """``value`` as ``rule`` returns it, else ``ConfigError(path, key, "must be <expected>, got
    <value>")``: the one place where a failed scalar check becomes a :class:`ConfigError`."""
    try:
        return rule.check(value, key)
    except ValueError:
        raise ConfigError(path, key, f"must be {rule.expected}, got {value!r}") from None


def field(section: Dict[str, Any], key: str, default, path, where: str, rule: Rule):
    """``section[key]`` (``default`` when absent), checked by ``rule`` at ``where.key``."""
    return checked(section.get(key, default), path, join(where, key), rule)


# ---------------------------------------------------------------------- sections and keys
def mapping(value, path, where: str) -> Dict[str, Any]:
    """``value`` itself when it is a mapping (a dict), else a ConfigError at ``where``."""
    if not isinstance(value, dict):
        raise ConfigError(path, where, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def section(config: Dict[str, Any], key: str, path, where: str = "", required: bool = False) -> Dict[str, Any]:
    """The mapping ``config[key]`` ({} when absent or null and not ``required``)."""
    if config.get(key) is None:
        if required:
            raise ConfigError(path, where, f"missing required key {key!r}")
        return {}
    return mapping(config[key], path, join(where, key))


def check_keys(section: Dict[str, Any], allowed, path, where: str) -> None:
    """Raise a :class:`ConfigError` at ``where.key`` for the first key of ``section`` not in
    ``allowed``, naming the keys allowed. The one check of unknown keys for every section."""
    for key in section:
        if key not in allowed:
            raise ConfigError(path, join(where, key), f"unknown key (allowed: {sorted(allowed)})")
