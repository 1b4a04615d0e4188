"""The figures of a ``neurosim compare`` report: one example's runs over seeds, aggregated.

:func:`aggregate` turns the :class:`~neurosim.examples.common.ExampleResult` of each seed into one
JSON-able dict (what ``report.json`` holds): per variant the test metric's mean, standard deviation
and per-seed values, and the mean over seeds of every other figure (params, time steps,
spikes/sample, synops/sample, MACs/sample, train and inference wall time), the per-epoch
``history`` averaged over seeds, and the energy per sample under each energy model.

Energy per sample (joules), with the per-operation energies of :data:`ENERGY_MODELS`::

    spiking (also converted, hybrid):  E = synops * e_AC + spikes * e_spike + MACs * e_MAC
    conventional:                      E = MACs * e_MAC

``MACs`` of a spiking variant are the dense multiply-accumulates that remain (analog blocks, an
input layer); ``e_spike`` is 0 in the 45 nm model. Computed with
:func:`neurosim.metrics.energy_estimate` on the per-sample counts. Standard deviations are the
sample standard deviation over seeds (``ddof = 1``), 0 for one seed.

Example::

    >>> data = aggregate([digits.run(args_seed0), digits.run(args_seed1)])
    >>> data["variants"][0]["metric"]            # {"mean": ..., "std": ..., "per_seed": [...]}
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["aggregate", "energy_per_sample", "ENERGY_MODELS", "SPIKING_KINDS", "mean_std", "best_variant"]

#: variant kinds whose work is counted as events (synops) rather than MACs
SPIKING_KINDS = ("spiking", "converted", "hybrid")

#: the energy models of the report: preset of :data:`neurosim.metrics.ENERGY_PRESETS`, what each
#: figure assumes and where it comes from
ENERGY_MODELS: Dict[str, Dict[str, str]] = {
    "cmos45nm": {
        "hardware": "45 nm CMOS at 0.9 V, digital logic only (no memory access, no static power)",
        "source": "M. Horowitz, \"Computing's energy problem (and what we can do about it)\", ISSCC 2014",
        "what": "e_AC = 0.9 pJ per 32-bit float add (a synaptic event with a binary spike is an add); "
                "e_MAC = 4.6 pJ per 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add)",
        "caveat": "",
    },
    "loihi": {
        "hardware": "Intel Loihi (14 nm) for the events; MACs at the 45 nm CMOS figure",
        "source": "M. Davies et al., \"Loihi: A Neuromorphic Manycore Processor with On-Chip Learning\", "
                  "IEEE Micro 38(1), 2018",
        "what": "e_synop = 23.6 pJ per synaptic spike operation; e_spike = 1.7 pJ per spike sent within a "
                "tile; e_MAC = 4.6 pJ (Horowitz 2014)",
        "caveat": "the two Loihi figures were recorded from memory in neurosim.metrics and could not be "
                  "checked against the paper offline: verify them before quoting",
    },
}


def mean_std(values: Sequence[float]) -> Dict[str, Any]:
    """``{"mean", "std", "per_seed"}`` of ``values`` (sample std, ddof = 1; 0 for one value)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std: no values")
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "per_seed": vals}


def energy_per_sample(kind: str, macs: float, synops: Optional[float], spikes: Optional[float],
                      preset: str) -> float:
    """Energy of one inference in joules (see the module docstring for the formulas), with the
    energies of ``neurosim.metrics.ENERGY_PRESETS[preset]``."""
    from neurosim.metrics import OpsReport, energy_estimate
    if kind in SPIKING_KINDS:
        counts = {"synops": float(synops or 0.0), "spikes": float(spikes or 0.0), "macs": float(macs)}
    else:
        counts = {"macs": float(macs)}
    report = OpsReport(steps=1, batch=1, dt=None, per_node={"variant": counts}, spikes=counts.get("spikes", 0.0),
                       synops=counts.get("synops", 0.0), macs=counts["macs"])
    est = energy_estimate(report, preset=preset)
    return est.neuromorphic_per_sample + est.conventional_per_sample


def _mean_history(histories: List[Dict[str, List[float]]]) -> Dict[str, List[float]]:
    """Per key present in every seed, the epoch-wise mean over seeds (cut to the shortest run)."""
    keys = [k for k in histories[0] if all(k in h for h in histories)]
    out = {}
    for k in keys:
        n = min(len(h[k]) for h in histories)
        out[k] = [sum(float(h[k][i]) for h in histories) / len(histories) for i in range(n)]
    return out


def _optional(values: List[Optional[float]]) -> Optional[Dict[str, Any]]:
    return None if any(v is None for v in values) else mean_std(values)


def aggregate(results: Sequence[Any], title: str = "") -> Dict[str, Any]:
    """One dict of every figure of ``results`` (one ``ExampleResult`` per seed, same example and
    size, the same variants in each). Raises ``ValueError`` naming what differs between seeds."""
    if not results:
        raise ValueError("aggregate: no results")
    first = results[0]
    names = [v.name for v in first.variants]
    for r in results[1:]:
        if r.example != first.example or [v.name for v in r.variants] != names:
            raise ValueError(f"aggregate: seed {r.seed} of {r.example!r} has variants {[v.name for v in r.variants]}, "
                             f"seed {first.seed} of {first.example!r} has {names}")
    variants = []
    for i, name in enumerate(names):
        runs = [r.variants[i] for r in results]
        v0 = runs[0]
        entry: Dict[str, Any] = {
            "name": name, "kind": v0.kind, "metric": mean_std([v.metric for v in runs]),
            "params": mean_std([v.params for v in runs]), "time_steps": mean_std([v.time_steps for v in runs]),
            "macs_per_sample": mean_std([v.macs_per_sample for v in runs]),
            "spikes_per_sample": _optional([v.spikes_per_sample for v in runs]),
            "synops_per_sample": _optional([v.synops_per_sample for v in runs]),
            "train_seconds": mean_std([v.train_seconds for v in runs]),
            "seconds_per_sample": mean_std([v.seconds_per_sample for v in runs]),
            "history": _mean_history([v.history for v in runs]),
            "history_per_seed": [dict(v.history) for v in runs],
            "extra": {k: mean_std([v.extra[k] for v in runs]) for k in v0.extra
                      if all(k in v.extra for v in runs)},
            "deploy_note": v0.deploy_note, "has_simulator": v0.simulator is not None,
            "has_raster": v0.raster is not None,
        }
        entry["energy_per_sample"] = {
            preset: mean_std([energy_per_sample(v.kind, v.macs_per_sample, v.synops_per_sample,
                                                v.spikes_per_sample, preset) for v in runs])
            for preset in ENERGY_MODELS}
        variants.append(entry)
    return {"example": first.example, "title": title, "task": first.task, "metric_name": first.metric_name,
            "higher_is_better": first.higher_is_better, "chance": first.chance, "size": first.size,
            "seeds": [r.seed for r in results], "budget": dict(first.budget),
            "references": [dict(model=p.model, value=p.value, source=p.source, setting=p.setting)
                           for p in first.references],
            "notes": list(first.notes), "variants": variants,
            "energy_models": {k: dict(v) for k, v in ENERGY_MODELS.items()},
            "energy_formula": {"spiking": "synops * e_AC + spikes * e_spike + MACs * e_MAC",
                               "conventional": "MACs * e_MAC"}}


def best_variant(data: Dict[str, Any], spiking: bool) -> Optional[Dict[str, Any]]:
    """The variant with the best mean metric among the spiking kinds (``spiking=True``) or the
    conventional ones; None when there is none of that group."""
    group = [v for v in data["variants"] if (v["kind"] in SPIKING_KINDS) == spiking]
    if not group:
        return None
    key = (lambda v: v["metric"]["mean"]) if data["higher_is_better"] else (lambda v: -v["metric"]["mean"])
    return max(group, key=key)
