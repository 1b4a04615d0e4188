"""neurosim: a neuromorphic-first simulator for spiking neural networks on PyTorch.

Core objects: :class:`Graph` (named nodes and edges), :class:`Population` (any registered neuron
model), projections (:class:`Dense`, :class:`Sparse`, :class:`Conv2d`, delays), and the
:class:`Simulator`, the only time loop. Encoders/decoders live in :mod:`neurosim.coding`,
recording in :mod:`neurosim.monitor`, training in :mod:`neurosim.training`."""
from .graph import Edge, Graph, GraphError
from .neurons import *  # noqa: F401,F403
from .node import Node
from .population import Population
from .projections import *  # noqa: F401,F403
from .simulator import NetworkState, SimulationResult, Simulator
from .surrogate import available_surrogates, get_surrogate, register_surrogate, spike
from .coding import *  # noqa: F401,F403
from .monitor import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .plasticity import *  # noqa: F401,F403

__version__ = "0.1.0"
