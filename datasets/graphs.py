"""Citation graphs (Cora, CiteSeer) through PyG's ``Planetoid``, from a local root, never downloaded.

``root`` holds PyG's Planetoid layout: ``<root>/<name>/raw/ind.<name lower>.{x, tx, allx, y, ty,
ally, graph, test.index}`` (the files of Kipf & Welling's repository, as ``torch_geometric``
downloads them). PyG writes a ``processed/`` folder beside ``raw/`` on first use, so the raw files
are first copied into a working folder (``work_dir``, default a folder per dataset under
``~/.cache/neurosim/planetoid``): the root itself is only read and may be read-only.

``planetoid(name, root)`` returns PyG's ``Data`` with the standard public split (``train_mask``:
20 nodes per class, ``val_mask``: 500, ``test_mask``: 1000), as in Kipf & Welling (2017):

====  ======  =====  ========  =======
name  nodes   edges  features  classes
====  ======  =====  ========  =======
Cora  2708    10556  1433      7
CiteSeer 3327 9104   3703      6
====  ======  =====  ========  =======

Example::

    >>> data = planetoid("Cora", "../shared/data/planetoid")
    >>> data.x.shape, int(data.train_mask.sum())
    (torch.Size([2708, 1433]), 140)
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

__all__ = ["planetoid", "PLANETOID_NAMES", "RAW_SUFFIXES", "MissingDatasetError"]

PLANETOID_NAMES = ("Cora", "CiteSeer")
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


class MissingDatasetError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says where and how."""


def _raw_files(name: str):
    return [f"ind.{name.lower()}.{suffix}" for suffix in RAW_SUFFIXES]


def planetoid(name: str, root, work_dir: Optional[os.PathLike] = None):
    """PyG's Planetoid ``name`` (``"Cora"`` or ``"CiteSeer"``) read from ``root`` (see the module
    docstring), public split. Raises :class:`MissingDatasetError` naming every missing file and
    where to get them, before anything is copied."""
    if name not in PLANETOID_NAMES:
        raise ValueError(f"planetoid: name must be one of {list(PLANETOID_NAMES)}, got {name!r}")
    raw = Path(root) / name / "raw"
    missing = [f for f in _raw_files(name) if not (raw / f).is_file()]
    if missing:
        raise MissingDatasetError(
            f"planetoid({name!r}): {len(missing)} raw file(s) missing in {raw}: {missing}. Put the files of "
            "https://github.com/kimiyoung/planetoid/tree/master/data (ind.<name>.*) there, in PyG's layout "
            f"<root>/{name}/raw/; neurosim never downloads them")
    work = Path(work_dir) if work_dir is not None else Path.home() / ".cache" / "neurosim" / "planetoid"
    target = work / name / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for f in _raw_files(name):
        source, copy = raw / f, target / f
        if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
            tmp = copy.with_name(copy.name + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, copy)                       # a crash never leaves half a raw file
    from torch_geometric.datasets import Planetoid
    return Planetoid(str(work), name, split="public")[0]
