"""neurosim.hardware.loihi: Intel Loihi 2 in fixed point.

* :mod:`.fixed_point`: the integer CUBA neuron (registered as ``"loihi_cuba"`` on import) and
  :class:`LoihiDense`, the 8-bit mantissa / shared exponent synapse with axonal delays;
* :mod:`.quantize`: :func:`quantize` maps a trained float network (Dense -> LIF / CubaLIF) to
  them and reports the error it introduced; :func:`fake_quantize_weight` is the straight-through
  weight quantiser for quantisation-aware training.

Importing this package registers the model; the engine never imports it.
"""
from .fixed_point import (LoihiCuba, LoihiCubaParams, LoihiCubaState, LoihiDense, loihi_cuba_initial_state,
                          loihi_cuba_step)
from .quantize import (LayerReport, PopulationReport, QuantizationReport, fake_quantize_weight, quantize,
                       weight_mantissa)

__all__ = ["LoihiCuba", "LoihiCubaParams", "LoihiCubaState", "LoihiDense", "loihi_cuba_initial_state",
           "loihi_cuba_step", "quantize", "QuantizationReport", "LayerReport", "PopulationReport",
           "fake_quantize_weight", "weight_mantissa"]
