"""Writing a ``neurosim compare`` report folder: the PNGs, the deployment section, the documents,
and the final rename into place.

* :func:`write_figures` ``(folder, data, first, deploy, backends, bar)``: every PNG (metric, curves,
  energy, one raster per spiking variant, the example's own images) and, with ``deploy``, the
  deployment rows of each spiking variant that has a simulator (:func:`neurosim.report_deploy.deploy`);
* :func:`write_documents`: ``report.md``, ``report.html`` (PNGs embedded) and ``report.json``;
* :func:`commit_folder` ``(tmp, target)``: the finished temporary folder becomes ``target``; an
  existing ``target`` is moved aside first and deleted only after the rename succeeded.

Example::

    >>> images = write_figures(tmp, data, results[0], True, ("saved", "nir"), bar)
    >>> write_documents(tmp, data, images); commit_folder(tmp, "out/compare/digits")
"""
from __future__ import annotations

import json
import math
import os
import shutil
from typing import Any, Dict, Sequence

__all__ = ["write_figures", "write_documents", "commit_folder", "jsonable", "safe_name", "write_bytes"]


def safe_name(name: str) -> str:
    """``name`` as a file-name stem: letters, digits, ``-`` and ``_`` kept, anything else ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "variant"


def jsonable(value):
    """Plain JSON values (non-finite floats become None, unknown objects their str)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)
        return number if math.isfinite(number) else None
    except (TypeError, ValueError):
        return str(value)


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (inside the temporary report folder, which is renamed as a whole)."""
    with open(path, "wb") as f:
        f.write(data)


def write_figures(folder: str, data: Dict[str, Any], first, deploy: bool, backends: Sequence[str],
                  bar) -> Dict[str, bytes]:
    """The PNGs and the deployment section into ``folder`` (the temporary folder) and ``data``;
    returns the PNGs by file name."""
    from neurosim.report_deploy import deploy as run_deploy
    from neurosim.report_figures import SPIKING_KINDS
    from neurosim.report_plots import curves_png, energy_png, metric_png, raster_png
    images = {"metric.png": metric_png(data), "curves.png": curves_png(data), "energy.png": energy_png(data)}
    stems = set()
    for entry, v in zip(data["variants"], first.variants):
        stem = safe_name(v.name)
        while stem in stems:
            stem += "_"
        stems.add(stem)
        entry["file_stem"] = stem
        if v.kind in SPIKING_KINDS and v.raster is not None:
            try:
                images[f"raster_{stem}.png"] = raster_png(v.raster, f"{v.name}: one test sample (seed {first.seed})")
            except (ValueError, TypeError) as e:     # a malformed raster costs its figure, not the run
                entry["raster_error"] = str(e)
    data["images"] = []
    for name, png in first.images.items():
        file = f"image_{safe_name(name)}.png"
        images[file] = bytes(png)
        data["images"].append(file)
    data["deployment"] = None
    if deploy:
        data["deployment"] = {}
        for entry, v in zip(data["variants"], first.variants):
            if v.kind in SPIKING_KINDS and v.simulator is not None:
                bar.set_postfix_str(f"{data['example']}: deploying {v.name}")
                data["deployment"][v.name] = run_deploy(v.simulator, v.deploy_inputs, backends,
                                                        os.path.join(folder, "deploy"), entry["file_stem"])
    data["files"] = sorted(images)
    for name, png in images.items():
        write_bytes(os.path.join(folder, name), png)
    return images


def write_documents(folder: str, data: Dict[str, Any], images: Dict[str, bytes]) -> None:
    """report.md, report.html (the PNGs embedded) and report.json into ``folder``."""
    from neurosim.report_render import to_html, to_markdown
    from neurosim.report_sections import example_blocks
    blocks = example_blocks(data, list(images))
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as f:
        f.write(to_markdown(blocks))
    with open(os.path.join(folder, "report.html"), "w", encoding="utf-8") as f:
        f.write(to_html(blocks, images, f"neurosim compare {data['example']}"))
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
        json.dump(jsonable(data), f, indent=1)


def commit_folder(tmp: str, target: str) -> None:
    """Rename the finished ``tmp`` folder to ``target``, replacing an existing one only now."""
    from neurosim.atomic import temp_name
    old = None
    if os.path.exists(target):
        old = temp_name(target) + ".old"
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
