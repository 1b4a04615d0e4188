"""Neuron models: each a params dataclass, a state NamedTuple and a pure step function,
registered by name for :class:`neurosim.Population`.

==============  ==================  =====================================================
name            params              model
==============  ==================  =====================================================
``lif``         :class:`LIFParams`  leaky integrate-and-fire (NIR LIF)
``cuba_lif``    CubaLIFParams       LIF with an exponential synaptic current (NIR CubaLIF)
``if``          IFParams            integrate-and-fire without leak (NIR IF)
``li``          LIParams            leaky integrator, non-spiking readout (NIR LI)
``cuba_li``     CubaLIParams        LI with an exponential synaptic current (NIR CubaLI)
``integrator``  IntegratorParams    integrator without leak or threshold (NIR I)
``alif``        ALIFParams          LIF with an adaptive threshold (Bellec et al. 2018)
``izhikevich``  IzhikevichParams    Izhikevich (2003), in mV and ms
``adex``        AdExParams          adaptive exponential IF (Brette & Gerstner 2005)
``coba_lif``    CobaLIFParams       conductance-based LIF, ports exc/inh (Vogels & Abbott 2005)
==============  ==================  =====================================================
"""
from .base import (NeuronModel, available_neuron_models, get_neuron_model, register_neuron_model)
from .lif import LIF, LIFParams, LIFState, lif_initial_state, lif_step
from .cuba_lif import CubaLIF, CubaLIFParams, CubaLIFState, cuba_lif_initial_state, cuba_lif_step
from .if_neuron import IF, IFParams, IFState, if_initial_state, if_step
from .li import LI, LIParams, LIState, li_initial_state, li_step
from .cuba_li import CubaLI, CubaLIParams, CubaLIState, cuba_li_initial_state, cuba_li_step
from .integrator import (Integrator, IntegratorParams, IntegratorState, integrator_initial_state,
                         integrator_step)
from .alif import ALIF, ALIFParams, ALIFState, alif_initial_state, alif_step
from .izhikevich import (Izhikevich, IzhikevichParams, IzhikevichState, izhikevich_initial_state,
                         izhikevich_step)
from .adex import AdEx, AdExParams, AdExState, adex_initial_state, adex_step
from .coba_lif import CobaLIF, CobaLIFParams, CobaLIFState, coba_lif_initial_state, coba_lif_step

__all__ = [
    "NeuronModel", "available_neuron_models", "get_neuron_model", "register_neuron_model",
    "LIF", "LIFParams", "LIFState", "lif_initial_state", "lif_step",
    "CubaLIF", "CubaLIFParams", "CubaLIFState", "cuba_lif_initial_state", "cuba_lif_step",
    "IF", "IFParams", "IFState", "if_initial_state", "if_step",
    "LI", "LIParams", "LIState", "li_initial_state", "li_step",
    "CubaLI", "CubaLIParams", "CubaLIState", "cuba_li_initial_state", "cuba_li_step",
    "Integrator", "IntegratorParams", "IntegratorState", "integrator_initial_state", "integrator_step",
    "ALIF", "ALIFParams", "ALIFState", "alif_initial_state", "alif_step",
    "Izhikevich", "IzhikevichParams", "IzhikevichState", "izhikevich_initial_state", "izhikevich_step",
    "AdEx", "AdExParams", "AdExState", "adex_initial_state", "adex_step",
    "CobaLIF", "CobaLIFParams", "CobaLIFState", "coba_lif_initial_state", "coba_lif_step",
]
