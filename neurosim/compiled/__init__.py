"""The compiled execution path: whole time loops in numba, for runs that need no gradient.

The Simulator chooses it per block (``Simulator(..., backend="auto" | "torch" | "compiled")``,
:mod:`neurosim.compiled.placement`). A block is lowered node by node (:mod:`.lowering`, with the
neuron models in :mod:`.lower_neurons` and the projections in :mod:`.lower_projections`) to a
program (:mod:`.program`) that one compiled function runs for all T steps (:mod:`.machine`),
from the per-model kernels (:mod:`.neuron_kernels`), the event-driven propagation and delay
lines (:mod:`.synapse_kernels`) and the fixed-point kernels (:mod:`.integer_kernels`, lowered by
``neurosim.hardware.loihi.compiled``). A ``Dense`` outside any loop runs on a whole-sequence
kernel instead (:mod:`.sequence`, :mod:`.sequence_kernels`). In training, the fused LIF kernel of
``neurosim.neurons.lif_fused`` runs its forward and backward compiled (:mod:`.training`,
:mod:`.training_kernels`); blocks run in Python threads (:mod:`.threads`). numba caches the compiled machine
on disk (next to these files, or in ``NUMBA_CACHE_DIR``), so only the first run after an install
compiles it.
"""
from .lowering import NEURON_LOWERINGS, NODE_LOWERINGS, LoweredNode, NotLowerable, lower_node
from .placement import BACKENDS, compiled_available

__all__ = ["BACKENDS", "compiled_available", "NotLowerable", "LoweredNode", "lower_node", "NODE_LOWERINGS",
           "NEURON_LOWERINGS"]
