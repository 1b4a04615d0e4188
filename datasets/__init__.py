"""neurosim.datasets: tonic-based event datasets, synthetic data and graph data, all read from a
local root (nothing downloads at run time). Filled by later issues."""

from .synthetic import RatePatterns

__all__ = ["RatePatterns"]
