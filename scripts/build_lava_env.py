#!/usr/bin/env python3
"""Build the separate Lava environment (lava-nc 0.10.0, lava-dl 0.6.0) reproducibly.

Lava declares Python 3.10, torch 2.3 and numpy < 2; it runs on Python 3.11 with torch 2.13.0 in a
virtual environment of its own, never in the main ``.venv``. The steps, each failing loudly with
the step's name:

1. ``python3.11 -m venv DIR``;
2. fetch every wheel pinned in ``requirements/lava.txt`` into a wheel cache (``pip download
   --no-deps``; the ``lava-*`` pins with ``--ignore-requires-python``);
3. install from that cache only (``--no-index --no-deps``): torch first, then the other pins, then
   ``lava-nc`` and ``lava-dl`` with ``--ignore-requires-python``;
4. patch two import-time problems of Lava on this stack, idempotently (see :data:`PATCHES`):
   ``lava/magma/compiler/var_model.py`` uses a ``ByteEncoder()`` instance as a dataclass default,
   which Python 3.11 rejects because the class is unhashable (fix: ``@dataclass(unsafe_hash=True)``,
   which keeps it mutable and the fields' semantics unchanged); ``lava/lib/dl/slayer/__init__.py``
   imports ``object_detection`` (which needs torchvision, absent here) eagerly, and netx imports
   slayer (fix: ``slayer.obd`` is imported on first attribute access instead);
5. smoke import ``lava.lib.dl.netx`` and ``lava.magma.core.run_configs``;
6. write a stamp file; a later call with the same key finds it and returns at once.

Where: ``$LAVA_ENV`` if set, else ``${XDG_CACHE_HOME:-~/.cache}/neurosim/lava-env-KEY``, where KEY
is a hash of ``requirements/lava.txt`` and this script, so an edit to either gives a new
environment and a CI cache of that folder stays valid exactly as long as its inputs; the stale
environments of other keys in that cache are then deleted. The wheels are kept in
``~/.cache/neurosim/lava-wheels`` (cache that folder too in CI). The last line printed on stdout is
the environment's folder.

Exit status: 0 built or found; 3 the environment cannot be built on this machine (no Python 3.11,
or pip reports that the package registry cannot be reached); 1 any other failure (a real error,
a wrong pin included).

Usage::

    python3 scripts/build_lava_env.py            # or: make lava-env
    LAVA_ENV=.venv-lava python3 scripts/build_lava_env.py
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements" / "lava.txt"
CANNOT_BUILD = 3  # exit status: this machine cannot build the environment (not a test pass)
SMOKE_IMPORT = "import lava.lib.dl.netx, lava.magma.core.run_configs"

# (file inside site-packages, text to find, replacement, text present once patched)
PATCHES = [
    ("lava/magma/compiler/var_model.py",
     "@dataclass\nclass ByteEncoder:",
     "@dataclass(unsafe_hash=True)  # neurosim: hashable, so Python 3.11 accepts it as a default\n"
     "class ByteEncoder:",
     "@dataclass(unsafe_hash=True)"),
    ("lava/lib/dl/slayer/__init__.py",
     "from . import object_detection as obd\n",
     "",
     "def __getattr__(name):  # neurosim"),
]
# Appended to slayer/__init__.py with the second patch: obd, which needs torchvision, on first use.
SLAYER_LAZY_OBD = '''

def __getattr__(name):  # neurosim: obd needs torchvision; import it on first use, not with netx
    if name == "obd":
        import importlib
        return importlib.import_module(".object_detection", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
'''


class BuildError(RuntimeError):
    """A build step failed; ``status`` is the exit status to report."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def read_pins(path: Path) -> list[str]:
    """The ``name==version`` lines of a requirements file; any other non-comment line is an error."""
    if not path.is_file():
        raise BuildError(f"{path}: requirements file not found")
    pins = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+", line):
            raise BuildError(f"{path}:{number}: {line!r} is not an exact pin name==version")
        pins.append(line)
    names = [pin.split("==")[0].lower() for pin in pins]
    for required in ("torch", "lava-nc", "lava-dl"):
        if required not in names:
            raise BuildError(f"{path}: no pin for {required}")
    return pins


def cache_key() -> str:
    """16 hex digits of SHA-256 over the requirements file and this script."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neurosim"


# pip's words for "the registry cannot be reached" (as opposed to a wrong pin, which is an error)
NO_REGISTRY = ("NewConnectionError", "Failed to establish a new connection", "Network is unreachable",
               "Temporary failure in name resolution", "Name or service not known", "ConnectTimeout",
               "ReadTimeoutError", "ProxyError")


def run_step(step: str, command: list[str], fetching: bool = False) -> None:
    """Run one build command; on failure raise :class:`BuildError` naming the step and command.

    A failed fetch whose output shows that the registry cannot be reached exits with
    :data:`CANNOT_BUILD`; every other failure (a wrong pin included) with 1."""
    print(f"[lava-env] {step}: {' '.join(command)}", file=sys.stderr, flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stdout.splitlines() if "is ignored: it is neither" not in line]
        tail = "\n".join(lines[-25:])
        offline = fetching and any(word in result.stdout for word in NO_REGISTRY)
        reason = "the package registry cannot be reached; " if offline else ""
        raise BuildError(f"step '{step}' failed (exit {result.returncode}): {reason}"
                         f"{' '.join(command)}\n{tail}", CANNOT_BUILD if offline else 1)


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python3.*/site-packages"))
    if len(found) != 1:
        raise BuildError(f"{env}: expected one lib/python3.*/site-packages, found {found}")
    return found[0]


def apply_patches(site: Path) -> None:
    """Apply :data:`PATCHES` in place; a file already patched is left as it is (idempotent)."""
    for relative, old, new, marker in PATCHES:
        path = site / relative
        if not path.is_file():
            raise BuildError(f"patch: {path} not found (is the lava pin right?)")
        text = path.read_text()
        if marker in text:
            continue
        if text.count(old) != 1:
            raise BuildError(f"patch: {path}: expected exactly one {old!r}, found {text.count(old)}")
        text = text.replace(old, new)
        if relative.endswith("slayer/__init__.py"):
            text += SLAYER_LAZY_OBD
        path.write_text(text)
        print(f"[lava-env] patched {path}", file=sys.stderr)


def build(env: Path, key: str, python: str) -> None:
    """Create the environment at ``env`` (see the module docstring for the steps)."""
    pins = read_pins(REQUIREMENTS)
    lava = [pin for pin in pins if pin.lower().startswith("lava-")]
    torch = [pin for pin in pins if pin.lower().startswith("torch==")]
    others = [pin for pin in pins if pin not in lava and pin not in torch]
    if shutil.which(python) is None and not Path(python).is_file():
        raise BuildError(f"interpreter {python!r} not found (Lava's environment needs Python 3.11)",
                         CANNOT_BUILD)
    version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.split()
    if version != ["3", "11"]:
        raise BuildError(f"interpreter {python!r} is Python {'.'.join(version) or '?'}; Lava's "
                         f"environment is pinned for Python 3.11 (pass --python)", CANNOT_BUILD)
    wheels = cache_root() / "lava-wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    run_step("venv", [python, "-m", "venv", "--clear", str(env)])
    pip = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run_step("fetch", pip + ["download", "--no-deps", "-d", str(wheels)] + torch + others,
             fetching=True)
    run_step("fetch lava", pip + ["download", "--no-deps", "--ignore-requires-python",
                                  "-d", str(wheels)] + lava, fetching=True)
    local = ["install", "--quiet", "--no-index", "--no-deps", "--find-links", str(wheels)]
    run_step("install torch", pip + local + torch)
    run_step("install pins", pip + local + others)
    run_step("install lava", pip + local + ["--ignore-requires-python"] + lava)
    apply_patches(site_packages(env))
    run_step("smoke import", [str(env / "bin" / "python"), "-c", SMOKE_IMPORT])
    stamp = env / f".neurosim-lava-{key}"
    (env / ".stamp.tmp").write_text(f"{REQUIREMENTS}\n{key}\n")
    os.replace(env / ".stamp.tmp", stamp)  # the stamp appears whole, and only after every step


def ensure(env: Path, key: str, python: str) -> Path:
    """Return ``env`` built for ``key``: found by its stamp, or (re)built under a file lock."""
    stamp = env / f".neurosim-lava-{key}"
    if stamp.is_file():
        return env
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits, then finds the stamp
        if stamp.is_file():
            return env
        if env.exists() and any(env.iterdir()) and not (env / "pyvenv.cfg").is_file():
            raise BuildError(f"{env} exists and is not a virtual environment; not touching it "
                             f"(set LAVA_ENV to another folder)")
        started = time.monotonic()
        build(env, key, python)
        print(f"[lava-env] built {env} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return env


def prune_stale(current: Path) -> None:
    """Delete the other ``lava-env-*`` folders of the cache that this script built (they carry a
    stamp) for another key: an edit of the pins or the script leaves at most one environment."""
    for folder in current.parent.glob("lava-env-*"):
        if folder != current and folder.is_dir() and any(folder.glob(".neurosim-lava-*")):
            shutil.rmtree(folder)
            print(f"[lava-env] removed the stale environment {folder}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="python3.11", help="interpreter for the venv")
    args = parser.parse_args(argv)
    try:
        key = cache_key()
        default = cache_root() / f"lava-env-{key}"
        env = Path(os.environ.get("LAVA_ENV") or default).expanduser().absolute()
        print(ensure(env, key, args.python))
        if env == default:
            prune_stale(env)
    except BuildError as error:
        print(f"[lava-env] ERROR: {error}", file=sys.stderr)
        return error.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
