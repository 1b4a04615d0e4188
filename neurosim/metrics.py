"""Operation accounting and energy estimates for spiking networks.

``sim.run(x, count_ops=True)`` fills ``result.ops`` with, per node, the counts of that run:

* populations: ``spikes``  = number of emitted spikes (all samples, all steps);
* projections: ``synops``  = active (non-zero) inputs x fan-out, the synaptic operations an
  event-driven chip performs; ``macs`` = the multiply-accumulates of the same projection
  computed densely (in x out per sample per step), what a GPU does.

:func:`summarize_ops` turns these into totals, per-sample / per-step rates and population firing
rates in Hz; :func:`energy_estimate` multiplies them by energies per operation::

    E_neuromorphic = synops * e_synop + spikes * e_spike            [J]
    E_conventional = macs * e_mac                                   [J]

The energies are order-of-magnitude figures for comparison, not measurements (static power,
neuron updates and memory traffic are not included); see :data:`ENERGY_PRESETS` for sources.

Example::

    >>> result = sim.run(x, count_ops=True)
    >>> report = summarize_ops(result, sim=sim)
    >>> report.firing_rates["hidden"], report.synops_per_sample
    >>> energy_estimate(report).ratio            # conventional / neuromorphic energy
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from .validation import check_int, check_number

__all__ = ["OpsReport", "EnergyEstimate", "summarize_ops", "energy_estimate", "ENERGY_PRESETS"]

#: Energies per operation in joules.
#:
#: ``"loihi"``: e_synop = 23.6 pJ per synaptic spike operation and e_spike = 1.7 pJ per spike
#: sent within a tile (Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
#: Learning", IEEE Micro 38(1), 2018, its table of energy figures ("synaptic spike op (min)"
#: and "within-tile spike energy"); 14 nm). These two values were taken from memory and could
#: not be checked against the paper offline: verify them before quoting energies. e_mac = 4.6 pJ
#: for the conventional comparison (see ``"cmos45nm"``).
#:
#: ``"cmos45nm"``: a 32-bit float multiply-accumulate in 45 nm CMOS at 0.9 V costs
#: 0.9 pJ (add) + 3.7 pJ (multiply) = 4.6 pJ (Horowitz, "Computing's energy problem (and what we
#: can do about it)", ISSCC 2014). A binary spike turns a synaptic operation into an accumulate
#: only, so e_synop = 0.9 pJ (the float add); spikes are not charged separately (e_spike = 0).
ENERGY_PRESETS: Dict[str, Dict[str, float]] = {
    "loihi": {"e_synop": 23.6e-12, "e_spike": 1.7e-12, "e_mac": 4.6e-12},
    "cmos45nm": {"e_synop": 0.9e-12, "e_spike": 0.0, "e_mac": 4.6e-12},
}

_KINDS = ("spikes", "synops", "macs")


@dataclass(frozen=True)
class OpsReport:
    """Operation counts of one run (see :func:`summarize_ops`).

    steps, batch: the run's length and batch size; dt: time step [s] (None when unknown);
    per_node: node -> {"spikes" | "synops" | "macs": count}; spikes, synops, macs: totals over
    nodes, samples and steps; firing_rates: population -> mean rate per neuron [Hz] (empty when
    dt or the population sizes are unknown)."""

    steps: int
    batch: int
    dt: Optional[float]
    per_node: Dict[str, Dict[str, float]]
    spikes: float
    synops: float
    macs: float
    firing_rates: Dict[str, float] = field(default_factory=dict)

    @property
    def spikes_per_sample(self) -> float:
        """Spikes per sample over the whole run: ``spikes / batch``."""
        return self.spikes / self.batch

    @property
    def synops_per_sample(self) -> float:
        """Synaptic operations per sample over the whole run: ``synops / batch``."""
        return self.synops / self.batch

    @property
    def macs_per_sample(self) -> float:
        """Dense MACs per sample over the whole run: ``macs / batch``."""
        return self.macs / self.batch

    @property
    def synops_per_sample_per_step(self) -> float:
        """``synops / (batch * steps)``."""
        return self.synops / (self.batch * self.steps)

    @property
    def macs_per_sample_per_step(self) -> float:
        """``macs / (batch * steps)``: one dense (ANN-like) pass through the projections."""
        return self.macs / (self.batch * self.steps)

    @property
    def activity_ratio(self) -> Optional[float]:
        """``synops / macs``: the fraction of the dense work an event-driven chip does (None if no MACs)."""
        return self.synops / self.macs if self.macs else None

    def as_dict(self) -> dict:
        """Plain values (for JSON / logging)."""
        return {"steps": self.steps, "batch": self.batch, "dt": self.dt, "per_node": self.per_node,
                "spikes": self.spikes, "synops": self.synops, "macs": self.macs,
                "firing_rates_hz": self.firing_rates, "synops_per_sample": self.synops_per_sample,
                "synops_per_sample_per_step": self.synops_per_sample_per_step,
                "macs_per_sample": self.macs_per_sample, "activity_ratio": self.activity_ratio}

    def __str__(self) -> str:
        lines = [f"ops over {self.steps} steps x {self.batch} samples"
                 + (f" (dt = {self.dt:g} s)" if self.dt else "")]
        for name, counts in self.per_node.items():
            parts = [f"{k} {counts[k]:.4g}" for k in _KINDS if k in counts]
            if name in self.firing_rates:
                parts.append(f"rate {self.firing_rates[name]:.3g} Hz")
            lines.append(f"  {name}: " + ", ".join(parts))
        lines.append(f"  total: spikes {self.spikes:.4g}, synops {self.synops:.4g}, macs {self.macs:.4g}")
        return "\n".join(lines)


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of one run in joules (see :func:`energy_estimate`).

    neuromorphic: ``synops e_synop + spikes e_spike``; conventional: ``macs e_mac``; both summed
    over all samples; per_node: node -> {"neuromorphic": J, "conventional": J}."""

    neuromorphic: float
    conventional: float
    batch: int
    e_synop: float
    e_spike: float
    e_mac: float
    per_node: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def neuromorphic_per_sample(self) -> float:
        return self.neuromorphic / self.batch

    @property
    def conventional_per_sample(self) -> float:
        return self.conventional / self.batch

    @property
    def ratio(self) -> Optional[float]:
        """conventional / neuromorphic (None when the neuromorphic energy is 0)."""
        return self.conventional / self.neuromorphic if self.neuromorphic else None

    def __str__(self) -> str:
        ratio = f", ratio {self.ratio:.3g}x" if self.ratio is not None else ""
        return (f"energy per sample: neuromorphic {self.neuromorphic_per_sample * 1e9:.4g} nJ, "
                f"conventional {self.conventional_per_sample * 1e9:.4g} nJ{ratio}")


def summarize_ops(result_or_ops, steps: Optional[int] = None, batch: Optional[int] = None, *,
                  sim=None, dt: Optional[float] = None,
                  sizes: Optional[Mapping[str, int]] = None) -> OpsReport:
    """Totals, per-sample rates and firing rates from the op counts of one run.

    ``result_or_ops`` is a :class:`SimulationResult` from ``run(..., count_ops=True)`` (``steps``
    and ``batch`` are then read from its outputs) or its ``ops`` dict (``steps`` and ``batch``
    required). Firing rate of a population of ``n`` neurons::

        rate = spikes / (n * batch * steps * dt)      [Hz]

    with ``dt`` and ``n`` from ``sim`` (its ``dt`` and graph) or from ``dt`` and ``sizes``
    (population -> number of neurons).

    Shapes: counts are scalars; ``OpsReport.per_node`` mirrors ``result.ops``.

    Example::

        >>> report = summarize_ops(sim.run(x, count_ops=True), sim=sim)
        >>> print(report)
    """
    ops = getattr(result_or_ops, "ops", result_or_ops)
    if not isinstance(ops, Mapping):
        raise TypeError(f"summarize_ops: expected a SimulationResult or its ops dict, "
                        f"got {type(result_or_ops).__name__}")
    outputs = getattr(result_or_ops, "outputs", None)
    if outputs is not None:
        if not ops:
            raise ValueError("summarize_ops: the result has no op counts; run with count_ops=True")
        first = next(iter(outputs.values()))
        got_steps, got_batch = int(first.shape[0]), int(first.shape[1])
        for name, value, got in (("steps", steps, got_steps), ("batch", batch, got_batch)):
            if value is not None and value != got:
                raise ValueError(f"summarize_ops: {name}={value} disagrees with the result ({got})")
        steps, batch = got_steps, got_batch
    if steps is None or batch is None:
        raise ValueError("summarize_ops: steps and batch are required when passing an ops dict")
    steps = check_int(steps, "summarize_ops: steps", minimum=1)
    batch = check_int(batch, "summarize_ops: batch", minimum=1)
    per_node: Dict[str, Dict[str, float]] = {}
    for name, counts in ops.items():
        if not isinstance(counts, Mapping):
            raise ValueError(f"summarize_ops: ops[{name!r}] must be a dict of counts, got {type(counts).__name__}")
        entry = {}
        for kind, n in counts.items():      # counts are numbers or 0-d tensors (from count_ops)
            entry[kind] = check_number(float(n), f"summarize_ops: ops[{name!r}][{kind!r}]", nonnegative=True,
                                       what="count")
        per_node[name] = entry
    if sim is not None:
        if dt is not None and not math.isclose(dt, sim.dt):
            raise ValueError(f"summarize_ops: dt={dt} disagrees with sim.dt={sim.dt}")
        dt = sim.dt
    if dt is not None:
        dt = check_number(dt, "summarize_ops: dt", positive=True, what="time step", unit="s")
    sizes = dict(sizes or {})
    for name, n in sizes.items():
        check_int(n, f"summarize_ops: sizes[{name!r}]", minimum=1)
    rates: Dict[str, float] = {}
    for name, counts in per_node.items():
        if "spikes" not in counts or dt is None:
            continue
        n = sizes.get(name)
        if n is None and sim is not None and name in sim.graph.nodes:
            n = math.prod(sim.graph.nodes[name].out_shape)
        if n is not None:
            rates[name] = counts["spikes"] / (n * batch * steps * dt)
    totals = {k: sum(c.get(k, 0.0) for c in per_node.values()) for k in _KINDS}
    return OpsReport(steps=steps, batch=batch, dt=None if dt is None else float(dt), per_node=per_node,
                     spikes=totals["spikes"], synops=totals["synops"], macs=totals["macs"], firing_rates=rates)


def energy_estimate(report: OpsReport, e_synop: Optional[float] = None, e_mac: Optional[float] = None,
                    e_spike: Optional[float] = None, preset: str = "loihi") -> EnergyEstimate:
    """Energy of a run on an event-driven chip and on conventional dense hardware.

        E_neuromorphic = synops * e_synop + spikes * e_spike        [J]
        E_conventional = macs * e_mac                                [J]

    Energies per operation in joules; those not given come from ``ENERGY_PRESETS[preset]``
    (``"loihi"``: 23.6 pJ/synop, 1.7 pJ/spike, Davies et al. 2018; ``"cmos45nm"``: 0.9 pJ per
    accumulate, 4.6 pJ per 32-bit float MAC, Horowitz 2014). Both are linear in the counts.
    Note ``macs`` counts the dense work of every time step; a non-spiking network that runs once
    per sample costs ``report.macs_per_sample_per_step * e_mac`` per sample.

    Shapes: scalars.

    Example::

        >>> est = energy_estimate(summarize_ops(result, sim=sim), preset="cmos45nm")
        >>> est.neuromorphic_per_sample, est.ratio
    """
    if not isinstance(report, OpsReport):
        raise TypeError(f"energy_estimate: expected an OpsReport (from summarize_ops), got {type(report).__name__}")
    if preset not in ENERGY_PRESETS:
        raise ValueError(f"energy_estimate: unknown preset {preset!r}; available: {sorted(ENERGY_PRESETS)}")
    values = dict(ENERGY_PRESETS[preset])
    for name, value in (("e_synop", e_synop), ("e_mac", e_mac), ("e_spike", e_spike)):
        if value is not None:
            values[name] = check_number(value, f"energy_estimate: {name}", nonnegative=True, what="energy",
                                        unit="J")
    per_node = {}
    for name, c in report.per_node.items():
        neuro = c.get("synops", 0.0) * values["e_synop"] + c.get("spikes", 0.0) * values["e_spike"]
        per_node[name] = {"neuromorphic": neuro, "conventional": c.get("macs", 0.0) * values["e_mac"]}
    return EnergyEstimate(
        neuromorphic=report.synops * values["e_synop"] + report.spikes * values["e_spike"],
        conventional=report.macs * values["e_mac"], batch=report.batch, per_node=per_node, **values)
