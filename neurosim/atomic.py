"""Crash-safe file writing: write under a temporary name next to the target, then rename.

``os.replace`` is atomic on POSIX within one file system, so readers see either the old file or
the complete new one, never a truncated file; on any exception the temporary file is removed.

Example::

    >>> with atomic_path("ckpt/last.pt") as tmp:
    ...     torch.save(state, tmp)
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

__all__ = ["temp_name", "atomic_path"]


def temp_name(path) -> str:
    """A fresh hidden temporary name next to ``path`` (``dir/.name.<random>.tmp``), not created."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_path(path, fsync: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success fsync it and rename it to ``path``.

    Creates ``path``'s folder if needed; on an exception the temporary file is deleted and the
    exception propagates (an existing ``path`` is left untouched)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        if fsync and os.path.exists(tmp):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
