"""The sections of one example's ``neurosim compare`` report, as blocks for :mod:`neurosim.report_render`.

:func:`example_blocks` ``(data, images)`` reads the dict of
:func:`neurosim.report_figures.aggregate` (with ``data["deployment"]`` filled by
:func:`neurosim.report_deploy.deploy`, one entry per variant) and the report's PNG file names,
and returns the blocks in this order: header, summary table, test metric beside the published
figures, training curves, energy, latency, rasters, the example's own images, deployment.
:func:`summary_blocks` builds the ``--all`` summary across examples.

Example::

    >>> blocks = example_blocks(data, ["metric.png", "curves.png"])
    >>> print(to_markdown(blocks))
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from .report_figures import SPIKING_KINDS, best_variant
from .report_render import Block, fmt, pm

__all__ = ["example_blocks", "summary_blocks", "SUMMARY_HEADER", "summary_rows"]

SUMMARY_HEADER = ["variant", "kind", "metric", "params", "time steps", "spikes/sample", "synops/sample",
                  "MACs/sample", "energy/sample (45 nm)", "train s"]
_PJ = 1e12
_NOTE = 120          # characters of a deployment row's note kept in the table (the rest is listed below it)


def summary_rows(data: Dict[str, Any]) -> List[List[str]]:
    """One row per variant: the summary table (metric as mean ± std over seeds)."""
    rows = []
    for v in data["variants"]:
        energy = v["energy_per_sample"]["cmos45nm"]
        rows.append([v["name"], v["kind"], pm(v["metric"]), fmt(v["params"]["mean"]), fmt(v["time_steps"]["mean"]),
                     pm(v["spikes_per_sample"]), pm(v["synops_per_sample"]), pm(v["macs_per_sample"]),
                     f"{fmt(energy['mean'] * 1e9)} nJ", pm(v["train_seconds"], 3)])
    return rows


def _header(data: Dict[str, Any]) -> List[Block]:
    seeds = ", ".join(map(str, data["seeds"]))
    chance = "" if data["chance"] is None else f"; chance level {fmt(data['chance'])}"
    direction = "higher is better" if data["higher_is_better"] else "lower is better"
    budget = ", ".join(f"{k} = {v}" for k, v in data["budget"].items()) or "-"
    blocks: List[Block] = [
        ("h1", f"neurosim compare {data['example']}" + (f": {data['title']}" if data.get("title") else "")),
        ("p", f"Task: {data['task']}. Metric: {data['metric_name']} ({direction}){chance}. "
              f"Budget '{data['size']}' ({budget}), the same for every variant; seeds {seeds}; "
              f"figures are mean ± sample std over seeds."),
    ]
    run = data.get("run", {})
    if run:
        blocks.append(("p", f"Run: {fmt(run.get('wall_seconds'), 3)} s wall in total, {run.get('threads')} torch "
                            f"thread(s), load average {run.get('load_average', '-')} at the start, "
                            f"{run.get('created', '')}."))
    return blocks


def _metric_section(data: Dict[str, Any], images: Sequence[str]) -> List[Block]:
    blocks: List[Block] = [("h2", f"{data['metric_name']} beside the published figures")]
    if "metric.png" in images:
        blocks.append(("img", "metric.png", f"{data['metric_name']}: bars are the mean over seeds, error bars "
                       "the std, dots single seeds; dashed lines the published figures, dotted the chance level"))
    ours = [[f"{v['name']} (ours, {v['kind']})", pm(v["metric"]), "this run",
             f"'{data['size']}' budget (above), {len(data['seeds'])} seed(s)"] for v in data["variants"]]
    refs = [[r["model"], fmt(r["value"]), r["source"], r["setting"]] for r in data["references"]]
    blocks.append(("table", ["model", data["metric_name"], "source", "setting / budget"], ours + refs))
    if not refs:
        blocks.append(("p", "The example quotes no published figure for this task."))
    if data["notes"]:
        blocks.append(("list", data["notes"]))
    return blocks


def _energy_section(data: Dict[str, Any], images: Sequence[str]) -> List[Block]:
    from neurosim.metrics import ENERGY_PRESETS
    blocks: List[Block] = [("h2", "Energy estimate"),
                           ("p", f"Energy per inference: spiking, converted and hybrid variants "
                                 f"E = {data['energy_formula']['spiking']}; conventional variants "
                                 f"E = {data['energy_formula']['conventional']}. MACs of a spiking variant are "
                                 "the dense operations that remain (analog blocks, input layers). Order-of-magnitude "
                                 "figures: no memory traffic, static power or neuron updates.")]
    rows = []
    for name, model in data["energy_models"].items():
        e = ENERGY_PRESETS[name]
        rows.append([name, f"{e['e_synop'] * _PJ:g} pJ", f"{e['e_spike'] * _PJ:g} pJ", f"{e['e_mac'] * _PJ:g} pJ",
                     model["hardware"], model["source"] + (f" (caveat: {model['caveat']})" if model["caveat"] else "")])
    blocks.append(("table", ["model", "e_AC / e_synop", "e_spike", "e_MAC", "hardware assumed", "source"], rows))
    conventional = best_variant(data, spiking=False)
    header = ["variant", "kind"] + [f"{m} [nJ/sample]" for m in data["energy_models"]]
    if conventional is not None:
        header.append(f"45 nm: {conventional['name']} / variant")
    table = []
    for v in data["variants"]:
        row = [v["name"], v["kind"]] + [pm(v["energy_per_sample"][m], scale=1e9) for m in data["energy_models"]]
        if conventional is not None:
            mine = v["energy_per_sample"]["cmos45nm"]["mean"]
            ref = conventional["energy_per_sample"]["cmos45nm"]["mean"]
            row.append(f"{fmt(ref / mine, 3)}x" if mine else "-")
        table.append(row)
    blocks.append(("table", header, table))
    if "energy.png" in images:
        blocks.append(("img", "energy.png", "energy per sample of each variant under each energy model (log scale)"))
    return blocks


def _latency_section(data: Dict[str, Any]) -> List[Block]:
    rows = [[v["name"], v["kind"], fmt(v["time_steps"]["mean"]), pm(v["seconds_per_sample"], 3, scale=1e3),
             pm(v["train_seconds"], 3)] for v in data["variants"]]
    return [("h2", "Latency and wall time"),
            ("p", "Latency in simulation steps of one inference (1 for a conventional network); wall times on this "
                  "machine's CPU (inference over a test batch divided by its size)."),
            ("table", ["variant", "kind", "time steps", "inference ms/sample", "train s"], rows)]


def _deployment_section(data: Dict[str, Any]) -> List[Block]:
    blocks: List[Block] = [("h2", "Deployment")]
    deployment = data.get("deployment")
    if deployment is None:
        return blocks + [("p", "Not run (--no-deploy).")]
    blocks.append(("p", "Each trained spiking variant that is a neurosim Simulator of engine nodes, first seed, on "
                        "its test input, through every backend; spikes compared with neurosim's own run "
                        "(exact = same step, same neuron; the fixed-point Loihi model runs one step later per "
                        "layer, which is shifted out before comparing)."))
    for v in data["variants"]:
        if v["kind"] not in SPIKING_KINDS:
            continue
        entry = deployment.get(v["name"])
        blocks.append(("h3", v["name"]))
        if entry is None:
            blocks.append(("p", f"Not exported: {v['deploy_note'] or 'the example gave no simulator'}."))
            continue
        rows, details = [], []
        for r in entry["rows"]:
            lines = [line.strip(" -") for line in (r["reason"] or "").splitlines() if line.strip(" -")]
            note = lines[0] if lines else ""
            if len(lines) > 1 or len(note) > _NOTE:
                details += [f"{r['backend']}: {line}" for line in (lines if len(note) > _NOTE else lines[1:])]
                note = (note[:_NOTE] + "...") if len(note) > _NOTE else note
                note += " (details below)"
            rows.append([r["backend"], r["network"], r["status"],
                         "-" if r["exact"] is None else f"{r['exact']} / {r['total']}",
                         "-" if r["within_one"] is None else str(r["within_one"]),
                         "-" if r["differing"] is None else str(r["differing"]),
                         fmt(r["membrane_error"], 3), fmt(r["wall_s"], 3), note])
        blocks.append(("p", f"Input: {entry['steps']} steps x {entry['batch']} samples; "
                            f"{fmt(entry['wall_s'], 3)} s for the whole section."))
        blocks.append(("table", ["backend", "compared", "status", "exact spikes / total", "within 1 step", "differing",
                                 "membrane max err", "wall s", "note"], rows))
        if details:
            blocks.append(("list", details))
    return blocks


def example_blocks(data: Dict[str, Any], images: Sequence[str]) -> List[Block]:
    """Every section of one example's report (see the module docstring)."""
    blocks = _header(data)
    blocks += [("h2", "Summary"), ("table", SUMMARY_HEADER, summary_rows(data))]
    blocks += _metric_section(data, images)
    blocks.append(("h2", "Training curves"))
    if "curves.png" in images:
        blocks.append(("img", "curves.png", "per-epoch curves, mean over seeds (band: ± std over seeds)"))
    blocks += _energy_section(data, images)
    blocks += _latency_section(data)
    rasters = [(v, f"raster_{v['file_stem']}.png") for v in data["variants"] if v["kind"] in SPIKING_KINDS]
    if rasters:
        blocks.append(("h2", "Spike rasters (one test sample, first seed)"))
        for v, name in rasters:
            if name in images:
                blocks.append(("img", name, f"{v['name']}: spikes of one test sample"))
            else:
                blocks.append(("p", f"{v['name']}: " + (f"raster not drawn: {v['raster_error']}"
                                                        if v.get("raster_error") else "the example returned no raster.")))
    extra = [n for n in data.get("images", []) if n in images]
    if extra:
        blocks.append(("h2", "Figures of the example"))
        blocks += [("img", n, n[len("image_"):-len(".png")].replace("_", " ")) for n in extra]
    return blocks + _deployment_section(data)


def summary_blocks(entries: Sequence[Dict[str, Any]], size: str) -> List[Block]:
    """The ``--all`` page: one row per example (``entries`` from ``neurosim.compare.summary_entry``)."""
    rows = []
    for e in entries:
        if e.get("error"):
            rows.append([e["example"], "-", "-", "-", "-", "-", "-", "-", f"failed: {e['error']}"])
            continue
        rows.append([e["example"], e["metric_name"], e["conventional"] or "-", pm(e["conventional_metric"]),
                     e["spiking"] or "-", pm(e["spiking_metric"]),
                     "-" if e["energy_ratio"] is None else f"{fmt(e['energy_ratio'], 3)}x",
                     pm(e["spikes_per_sample"]), e.get("report") or "-"])
    header = ["example", "metric", "best conventional", "metric", "best spiking", "metric",
              "energy conventional / spiking (45 nm)", "spikes/sample", "report"]
    return [("h1", "neurosim compare --all"),
            ("p", f"Budget '{size}'; metrics are mean ± std over seeds; energy per sample with the 45 nm CMOS "
                  "figures (Horowitz 2014): spiking = synops x 0.9 pJ + MACs x 4.6 pJ, conventional = MACs x 4.6 pJ."),
            ("table", header, rows)]
