"""The on-disk cache of the compiled machine, kept in step with every kernel source.

numba caches each compiled function on disk (``cache=True``), next to its source file
(``__pycache__``) or, where that is read-only, in numba's user-wide cache folder (or
``NUMBA_CACHE_DIR``). It keys a function's cache on *its own* file only; the machine
(:mod:`neurosim.compiled.machine`) has the kernels of other files compiled into it, so an edited
kernel would otherwise still run its old code from the machine's cache. :func:`check_cache`
(called once per process, before the first compiled run) hashes the sources of the machine and
of every kernel module and, when the hash differs from the one stamped beside the cache, empties
the machine's cache entries (numba's ``flush``) so the next run compiles afresh, then stamps the
new hash. A first compilation takes tens of seconds; loading from the cache well under a second.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..atomic import atomic_path

__all__ = ["KERNEL_MODULES", "sources_hash", "check_cache"]

#: the modules whose code ends up inside the compiled machine and the kernels outside it (the
#: whole-sequence gather, the fused LIF training kernel), which inline functions of the others
KERNEL_MODULES = ("kinds", "neuron_kernels", "neuron_kernels_more", "synapse_kernels", "integer_kernels", "machine",
                  "sequence_kernels", "training_kernels", "threads")
_CHECKED = False


def sources_hash() -> str:
    """SHA-256 of the sources of :data:`KERNEL_MODULES` (the ones that exist), in order."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in KERNEL_MODULES:
        path = here / f"{name}.py"
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def check_cache() -> None:
    """Flush the machine's cached compilations when any kernel source changed (see the module
    docstring). Once per process; a cache folder that cannot be written is left alone (numba
    then compiles in memory)."""
    global _CHECKED
    if _CHECKED:
        return
    _CHECKED = True
    import importlib
    from . import machine
    modules = [importlib.import_module(f"{__package__}.{name}") for name in KERNEL_MODULES]
    dispatchers = {id(d): d for module in modules for d in vars(module).values()
                   if getattr(d, "_cache", None) is not None}.values()
    stamp = Path(machine.run_program._cache.cache_path) / "neurosim-kernels.sha256"
    wanted = sources_hash()
    try:
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return
        for dispatcher in dispatchers:
            dispatcher._cache.flush()
        os.makedirs(stamp.parent, exist_ok=True)
        with atomic_path(stamp) as tmp:
            Path(tmp).write_text(wanted + "\n")
    except OSError:
        return
