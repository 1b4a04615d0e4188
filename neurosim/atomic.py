"""Crash-safe file writing: write under a temporary name next to the target, then rename.

``os.replace`` is atomic on POSIX within one file system, so readers see either the old file or
the complete new one, never a truncated file. The temporary file's data is fsynced *before* the
rename, so after a power loss the final name never points at a file whose data was not yet on
disk. On any exception the temporary file is removed.

Two ways to use it, with the same fsync-then-rename rule:

* :func:`atomic_path`, a context manager, when the file is written within one block;
* :func:`commit` / :func:`discard`, when the temporary file lives longer than one block (a
  streaming :class:`neurosim.Monitor` keeps its HDF5 file open across several runs).

Example::

    >>> with atomic_path("ckpt/last.pt") as tmp:
    ...     torch.save(state, tmp)
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

__all__ = ["temp_name", "atomic_path", "commit", "discard"]


def temp_name(path) -> str:
    """A fresh hidden temporary name next to ``path`` (``dir/.name.<random>.tmp``), not created."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")


def commit(tmp, path, fsync: bool = True) -> str:
    """Make the closed temporary file ``tmp`` the file ``path``: fsync its data, then rename.

    ``fsync=False`` skips the fsync (for files that are cheap to recreate, such as plots).
    Returns ``path``. A missing ``tmp`` raises ``FileNotFoundError`` (from the rename)."""
    tmp, path = os.fspath(tmp), os.fspath(path)
    if fsync and os.path.exists(tmp):
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)
    return path


def discard(tmp) -> None:
    """Delete the temporary file ``tmp`` if it exists (never raises for a missing file)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.fspath(tmp))


@contextlib.contextmanager
def atomic_path(path, fsync: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success :func:`commit` it (fsync, rename) to ``path``.

    Creates ``path``'s folder if needed; on an exception the temporary file is deleted and the
    exception propagates (an existing ``path`` is left untouched)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        commit(tmp, path, fsync)
    except BaseException:
        discard(tmp)
        raise
