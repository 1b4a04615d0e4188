"""When the event-driven path pays: a small cost model shared by Dense and Sparse.

The event path touches ``fan_out`` synapses per non-zero input; the dense path (a matmul for
Dense, a CSR sparse-matrix product for Sparse) streams every synapse once and does one
multiply-add per synapse and input row. In units of one event-path synapse read from cache::

    memory     = 1 + table_bytes / cache_bytes        (event-path gathers slow down out of cache)
    event_cost = memory x active x fan_out + event_overhead
    dense_cost = synapses x (memory x per_synapse + per_mac x rows)

``active`` = non-zero inputs in the call, ``rows`` = input rows of the call (batch, or T x batch
when a whole sequence is propagated at once), ``synapses`` = in x out (Dense) or nnz (Sparse),
``fan_out`` = out (Dense) or the synapses gathered per active input (Sparse), ``table_bytes``
= the bytes of the weight table the event path gathers from. The event path is taken when
``event_cost < dense_cost``. In density terms (``density = active / (rows x in)``; ``fill =
synapses / (in x fan_out)``, 1 for Dense, mean / padded fan-out for Sparse) and for layers
large enough that ``event_overhead`` does not matter, the crossover is

    density* = fill x (per_synapse / rows + per_mac / memory)

high for a single row (the dense path is then a memory-bound matrix-vector product: the event
path wins up to densities of ~1), falling towards ``fill x per_mac / memory`` for many rows
(a compute-bound matrix product, whose speed does not depend on the table fitting in cache
while the event path's random row gathers do). ``event_overhead`` (the event path's fixed cost:
nonzero, offsets, allocation, ~0.1 ms) keeps small layers on the dense path.

How the constants (:data:`EVENT_COSTS`) were chosen: ``python -m
benchmarks.bench_event_threshold --fit`` on the project's 2-core CPU (2 threads, torch 2.13,
float32; 1024 and 4096 neurons, Sparse p = 0.02, rows 1 / 16 / 64 / 1000, densities 0.5 % ..
30 %; indicative, the machine was shared). Measured crossovers, Dense 1024 / 4096: > 30 % /
> 30 % at 1 row, ~25 % / ~28 % at 16 rows, ~18 % / ~10 % at 64, ~17 % / ~6.5 % at 1000 (issue 5
reported 8-9 % for 4096 at 1000 rows). Per synapse, the event gathers cost 0.08 ns (1024, 4 MB
table) and 0.25 ns (4096, 64 MB) while the matmul costs 0.014 ns per multiply-add at both
sizes: hence the memory factor, ``cache_bytes = 25 MB`` solving 0.25 / 0.08 = (1 + 64 / C) /
(1 + 4 / C); then ``per_mac = 0.21`` (from the 1000-row crossovers of both sizes) and
``per_synapse = 3`` (16 and 64 rows). Sparse 1024 (fill 0.54) / 4096 (fill 0.71): ~30 % / > 30 %
at 1 row, ~3 % / ~6 % at 16 rows, ~2 % / ~3.5 % at 64, ~2 % / ~1.3 % at 1000, fitted by
``per_synapse = 1``, ``per_mac = 0.025``, ``event_overhead = 1.5e4`` (the fit's 1.6e4) and no
memory factor (its tables are small). Near a crossover both paths cost about the same, so a
constant off by ~20 % costs little. With these constants the path chosen cost at most 1.2 x the
faster one at 122 of the grid's 125 points (worst 1.41: Dense 1024, 16 rows, 30 %, where the
crossover of the two sizes differs most; 1.32: Sparse 1024, 1 row, 20 %; 1.29: Dense 4096,
64 rows, 12 %), in one run on the shared machine; rerun the benchmark to check a machine. CUDA has no measurement yet: its entries are a documented
default (the CPU constants), to be replaced once the benchmark has run on a GPU (there,
``count_nonzero`` is one host synchronisation per call, as before). Devices without an entry
use the CPU constants.

A user's ``event_threshold=`` (a density in [0, 1]) replaces the model: event path when
``active < event_threshold x rows x in``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict

__all__ = ["EventCost", "EVENT_COSTS", "event_cost_for", "event_path_pays"]


@dataclass(frozen=True)
class EventCost:
    """Costs in units of one event-path synapse (a gather and an add).

    per_synapse: streaming one synapse through the dense path once (the memory-bound part).
    per_mac: one multiply-add of the dense path per input row (the compute-bound part).
    event_overhead: the event path's fixed cost per call.
    cache_bytes: the table size at which event-path gathers cost twice their in-cache cost
    (``math.inf``: no memory factor)."""

    per_synapse: float
    per_mac: float
    event_overhead: float = 0.0
    cache_bytes: float = math.inf

    def __post_init__(self):
        for name in ("per_synapse", "per_mac", "event_overhead"):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ValueError(f"EventCost.{name} must be >= 0, got {value!r}")
        if not self.cache_bytes > 0.0:
            raise ValueError(f"EventCost.cache_bytes must be > 0, got {self.cache_bytes!r}")


#: ``(kind, device type) -> EventCost``; kind is ``"dense"`` or ``"sparse"``.
EVENT_COSTS: Dict[tuple, EventCost] = {
    ("dense", "cpu"): EventCost(per_synapse=3.0, per_mac=0.21, event_overhead=3e5, cache_bytes=25e6),
    ("sparse", "cpu"): EventCost(per_synapse=1.0, per_mac=0.025, event_overhead=1.5e4),
}
EVENT_COSTS[("dense", "cuda")] = EVENT_COSTS[("dense", "cpu")]      # not measured yet
EVENT_COSTS[("sparse", "cuda")] = EVENT_COSTS[("sparse", "cpu")]    # not measured yet


def event_cost_for(kind: str, device_type: str) -> EventCost:
    """The constants of ``kind`` (``"dense"``/``"sparse"``) on ``device_type`` (CPU's if unknown)."""
    if (kind, "cpu") not in EVENT_COSTS:
        raise ValueError(f"event_cost_for: kind must be one of "
                         f"{sorted({k for k, _ in EVENT_COSTS})}, got {kind!r}")
    return EVENT_COSTS.get((kind, device_type), EVENT_COSTS[(kind, "cpu")])


def event_active_limit(rows: int, fan_out: float, synapses: int, cost: EventCost,
                       table_bytes: float = 0.0) -> float:
    """The number of active inputs below which the event path pays: ``event_path_pays(active, ...)``
    is ``active < limit`` with ``limit = (synapses x (memory x cost.per_synapse + cost.per_mac x
    rows) - cost.event_overhead) / (memory x fan_out)``, ``memory = 1 + table_bytes /
    cost.cache_bytes`` (``+-inf`` when ``fan_out`` is 0). It depends only on the call's shape and
    the projection's structure, so a projection computes it once per shape."""
    memory = 1.0 + table_bytes / cost.cache_bytes
    margin = synapses * (memory * cost.per_synapse + cost.per_mac * rows) - cost.event_overhead
    if fan_out <= 0:
        return math.inf if margin > 0 else -math.inf
    return margin / (memory * fan_out)


def event_path_pays(active: int, rows: int, fan_out: float, synapses: int, cost: EventCost,
                    table_bytes: float = 0.0) -> bool:
    """True when ``memory x active x fan_out + cost.event_overhead < synapses x (memory x
    cost.per_synapse + cost.per_mac x rows)``, ``memory = 1 + table_bytes / cost.cache_bytes``.

    active: non-zero inputs of the call; rows: input rows; fan_out: synapses gathered per active
    input; synapses: synapses the dense path streams; table_bytes: size of the table the event
    path gathers from. Pure: no tensors, no device sync."""
    return active < event_active_limit(rows, fan_out, synapses, cost, table_bytes)
