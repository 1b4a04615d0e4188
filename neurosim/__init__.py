"""neurosim: a neuromorphic-first simulator for spiking neural networks on PyTorch.

Core objects: :class:`Graph` (named nodes and edges), :class:`Population` (any registered neuron
model), :class:`Threshold`, projections (:class:`Dense`, :class:`Sparse`, :class:`Conv2d`, delays), and the
:class:`Simulator`, the only time loop. Encoders/decoders live in :mod:`neurosim.coding`,
recording in :mod:`neurosim.monitor`, training in :mod:`neurosim.training`; :func:`save` and
:func:`load` write and read a whole network (graph, ``dt``, weights) as one HDF5 file."""
from .graph import Edge, Graph, GraphError
from .neurons import *  # noqa: F401,F403
from .node import Node
from .population import Population
from .threshold import Threshold
from .projections import *  # noqa: F401,F403
from .simulator import NetworkState, SimulationResult, Simulator
from .surrogate import available_surrogates, get_surrogate, register_surrogate, spike
from .higher_order import higher_order_gradients
from .coding import *  # noqa: F401,F403
from .monitor import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .plasticity import *  # noqa: F401,F403

__version__ = "0.1.0"


def save(sim, path):
    """Write the Simulator ``sim`` (graph, ``dt``, schedule, weights) to the HDF5 file ``path``.

    See :func:`neurosim.hardware.saved.save` (imported here on first use, so that the engine
    never imports a backend at import time). Returns ``path``."""
    from neurosim.hardware.saved import save as save_network
    return save_network(sim, path)


def load(path):
    """Read a network written by :func:`save` into a new :class:`Simulator` that gives the same
    spikes bit for bit; see :func:`neurosim.hardware.saved.load` for the errors it raises."""
    from neurosim.hardware.saved import load as load_network
    return load_network(path)
