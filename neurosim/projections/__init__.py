"""Projections: the nodes that carry spikes between populations (dense, sparse, conv, delays)."""
from .dense import Dense, event_driven_linear
