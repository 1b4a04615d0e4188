"""Markdown and self-contained HTML for ``neurosim compare`` reports.

A report is a list of blocks, built once and written twice:

* ``("h1" | "h2" | "h3", text)``, ``("p", text)``, ``("list", [text, ...])``;
* ``("table", header, rows)``: ``header`` a list of column names, ``rows`` lists of strings;
* ``("img", file name, caption)``: a PNG of the report folder; Markdown links the file, HTML
  embeds the bytes as a ``data:image/png;base64`` URI, so the page needs nothing beside it.

:func:`to_markdown` and :func:`to_html` render blocks; :func:`fmt` and :func:`pm` format numbers.

Example::

    >>> blocks = [("h1", "digits"), ("table", ["variant", "accuracy"], [["cnn", "0.97"]])]
    >>> html_text = to_html(blocks, {}, "digits")
"""
from __future__ import annotations

import base64
import html
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["to_markdown", "to_html", "fmt", "pm", "Block", "CSS"]

Block = Tuple[Any, ...]

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def fmt(value: Optional[float], digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (``-`` for None, engineering form for large)."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    if abs(value) >= min(1000, 10 ** digits):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def pm(stat: Optional[Dict[str, Any]], digits: int = 4, scale: float = 1.0) -> str:
    """``mean ± std`` of a :func:`~neurosim.report_figures.mean_std` dict (``-`` for None; the std
    is left out when there is one seed)."""
    if stat is None:
        return "-"
    mean = fmt(stat["mean"] * scale, digits)
    if len(stat["per_seed"]) < 2:
        return mean
    return f"{mean} ± {fmt(stat['std'] * scale, 2)}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    """The blocks as GitHub-flavoured Markdown (images as links to the PNG files beside it)."""
    out: List[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "list":
            out += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
        elif kind == "img":
            out += [f"![{block[2]}]({block[1]})", ""]
        else:
            raise ValueError(f"to_markdown: unknown block kind {kind!r}")
    return "\n".join(out).rstrip() + "\n"


def to_html(blocks: Sequence[Block], images: Dict[str, bytes], title: str) -> str:
    """The blocks as one HTML page, inline CSS, every image embedded from ``images`` (file name ->
    PNG bytes). Raises ``KeyError`` naming an image block whose file is not in ``images``."""
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{esc(block[1])}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(str(i))}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{esc(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            if block[1] not in images:
                raise KeyError(f"to_html: image {block[1]!r} is not among the report's images {sorted(images)}")
            data = base64.b64encode(images[block[1]]).decode("ascii")
            out.append(f"<figure><img alt='{esc(block[2])}' src='data:image/png;base64,{data}'/>"
                       f"<figcaption>{esc(block[2])}</figcaption></figure>")
        else:
            raise ValueError(f"to_html: unknown block kind {kind!r}")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
