"""neurosim.plugins: conventional ``torch.nn.Module`` models as nodes of a simulation graph.

* :class:`Block` (:mod:`.block`): any module as an ``"analog"``, ``"hybrid"`` or ``"rate"`` node;
* one file per model family, each with a conventional reference and a spiking variant.
"""
from .block import Block, RateBlockState, module_macs

__all__ = ["Block", "RateBlockState", "module_macs"]
