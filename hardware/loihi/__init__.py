"""neurosim.hardware.loihi: Intel Loihi 2 in fixed point.

* :mod:`.fixed_point`: the integer CUBA neuron (registered as ``"loihi_cuba"`` on import) and
  :class:`LoihiDense`, the 8-bit mantissa / shared exponent synapse with axonal delays;
* :mod:`.conv`: :class:`LoihiConv2d`, the integer convolution synapse;
* :mod:`.netx`: :func:`to_netx` / :func:`from_netx`, lava-dl's netx HDF5 files (layout facts in
  :mod:`.netx_format`); :mod:`.netx_lava` runs such a file on Lava's own simulation;
* :mod:`.compiled`: the lowerings that run ``loihi_cuba`` and :class:`LoihiDense` on the
  compiled time loop (``Simulator(backend="auto" | "compiled")``), in the same integers;
* :mod:`.quantize`: :func:`quantize` maps a trained float network (Dense or Conv2d, Flatten -> LIF / CubaLIF) to
  them and reports the error it introduced; :func:`fake_quantize_weight` is the straight-through
  weight quantiser for quantisation-aware training.

Importing this package registers the model; the engine never imports it.
"""
from .fixed_point import (LoihiCuba, LoihiCubaParams, LoihiCubaState, LoihiDense, loihi_cuba_initial_state,
                          loihi_cuba_step)
from .conv import LoihiConv2d
from . import specs  # noqa: F401  (registers LoihiDense, LoihiConv2d for neurosim.save / neurosim.load)
from . import compiled  # noqa: F401  (registers loihi_cuba and LoihiDense with the compiled time loop)
from .netx import from_netx, to_netx
from .netx_format import NetxFileError
from .quantize import (LayerReport, PopulationReport, QuantizationReport, fake_quantize_weight, quantize,
                       weight_mantissa)

__all__ = ["LoihiConv2d", "to_netx", "from_netx", "NetxFileError", "LoihiCuba", "LoihiCubaParams", "LoihiCubaState", "LoihiDense", "loihi_cuba_initial_state",
           "loihi_cuba_step", "quantize", "QuantizationReport", "LayerReport", "PopulationReport",
           "fake_quantize_weight", "weight_mantissa"]
