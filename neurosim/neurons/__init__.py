"""Neuron models: each a params dataclass, a state NamedTuple and a pure step function,
registered by name for :class:`neurosim.Population`."""
from .base import (NeuronModel, available_neuron_models, get_neuron_model, register_neuron_model)
from .lif import LIF, LIFParams, LIFState, lif_step
