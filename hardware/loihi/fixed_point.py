"""The fixed-point Loihi 2 CUBA neuron (``"loihi_cuba"``) and its integer synapse (:class:`LoihiDense`).

A neuron model like the others (a frozen params dataclass, a state NamedTuple, a pure step),
registered as ``"loihi_cuba"`` when :mod:`neurosim.hardware.loihi` is imported, so
``Population("loihi_cuba", n, LoihiCubaParams(...))`` runs in the :class:`~neurosim.Simulator`.
Everything is an integer; ``dt`` is not used (the decays were computed for a time step, see
:func:`neurosim.hardware.loihi.quantize`).

The integer update of one step, for every neuron (bit widths of Loihi; ``//`` truncates toward
zero, ``x // 4096 = sign(x) (|x| >> 12)``)::

    1. current   u' = (u (4096 - i_decay)) // 4096 + x          x = sum of (w_int << 6), see below
                 24-bit wrap-around:  u' > 2^23   ->  u' - 2^24
                                      u' <= -2^23 ->  u' + 2^24
    2. voltage   v' = clip((v (4096 - v_decay)) // 4096 + u' + bias,  -(2^23 - 1), 2^23 - 1)
                 bias = bias_mant << bias_exp
    3. refractory: a neuron with r > 0 keeps v' = v (u still integrates) and cannot spike
    4. threshold s = (v' > v_th_mant << 6)  and not refractory
    5. reset     v' = 0 where s (u is not reset); r' = refractory_delay where s, else max(r - 1, 0)

Products are formed in int64 (|u| < 2^23 times a factor <= 4096 stays below 2^35); u and v are
stored as int32. ``i_decay = 4096`` makes u forget at once (u' = x: a plain LIF); ``0`` keeps it.

Synapse (:class:`LoihiDense`): an 8-bit signed mantissa ``m`` in [-128, 127] per synapse and one
exponent ``e`` in [0, 7] per layer, ``w_int = m << e``. One presynaptic spike adds
``w_int << 6`` to the current; the layer outputs
``x[t, j] = sum_i (w_int[j, i] << 6) s[t - latency - delay_j, i]`` (int64, exact: computed as a
float64 matmul of integers < 2^53), with ``latency`` 1 (Loihi's pipeline: one step per layer)
or 0 (on a loop closed by a back-edge), and optional axonal delays, one per output neuron,
0..62 steps. In lava-dl's
netx format the weight is stored as ``2 m`` (an even integer in [-256, 254]) with exponent
``e - 1``; the product is the same.

What this follows, and how sure it is (Lava 0.10 ``lava/proc/lif/models.py``,
``AbstractPyLifModelFixed`` / ``PyLifModelBitAcc``, read from its public source; not run here):

* confirmed by reading: steps 1, 2, 4, 5 and their order; the truncation toward zero of the
  decays; u *wraps* at 24 bits (it is not saturated) and v is *clipped* to +-(2^23 - 1); Lava's
  ``du``/``dv`` registers relate as ``i_decay = du + 1`` and ``v_decay = dv`` (so Lava can express
  i_decay 1..4096 and v_decay 0..4095 only); ``vth`` is 17-bit unsigned, ``bias_mant`` 13-bit
  signed, ``bias_exp`` 0..7; the input is shifted left by 6 in the neuron (here in the synapse:
  the same sum).
* confirmed by running Lava (``tests/hardware/loihi/test_lava_env.py``, ``test_netx_lava.py``):
  the order of the update, the thresholds and resets, the decays at the edges, and the timing:
  Lava's Dense sends at step t + 1 what reached it at step t, so every layer adds one step of
  latency. :class:`LoihiDense` models it with ``latency=1`` (the default); a synapse on a
  recurrent loop closed by a graph back-edge takes ``latency=0``, because the back-edge already
  is that one step (it reads the previous step's spikes).
* not modelled: the refractory period is not part of Lava's fixed-point LIF (step 3 follows
  Lava's floating-point ``LIFRefractory``: v frozen for ``refractory_delay`` steps after a spike;
  netx files from lava-dl carry ``refDelay = 1``, which is no refractory period at all); Lava's
  16-bit ``a_in`` port is not wrapped here (x is not wrapped: keep ``|x| < 2^15 << 6``).

Shapes: input x and every state field ``[batch, *shape]``; parameters are ints or integer-valued
tensors broadcasting against ``shape``.

Example::

    >>> import neurosim.hardware.loihi
    >>> p = LoihiCubaParams(i_decay=1024, v_decay=256, v_th_mant=100)
    >>> fc = LoihiDense(torch.randint(-128, 128, (10, 20)), weight_exp=2)
    >>> g = Graph.sequential(20, ("fc", fc), ("lif", Population("loihi_cuba", 10, p)))
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from neurosim.neurons.base import NeuronModel, register_neuron_model
from neurosim.node import Node, state_device_dtype
from neurosim.projections.delay import Delay

__all__ = ["LoihiCubaParams", "LoihiCubaState", "loihi_cuba_step", "loihi_cuba_initial_state",
           "LoihiCuba", "LoihiDense", "DECAY_UNITY", "UV_LIMIT", "ACTIVATION_SHIFT", "THRESHOLD_SHIFT",
           "MAX_DELAY", "decay", "wrap_current", "clip_voltage", "single_int_value"]

DECAY_UNITY = 4096            # decays are fractions of 2^12
UV_LIMIT = 2 ** 23            # u and v are 24-bit signed
ACTIVATION_SHIFT = 6          # synaptic input is MSB-aligned by 6 bits
THRESHOLD_SHIFT = 6           # threshold mantissa is MSB-aligned by 6 bits
MAX_DELAY = 62                # axonal delay range 0..62 steps
WEIGHT_MANT_RANGE = (-128, 127)
WEIGHT_EXP_RANGE = (0, 7)

#: integer fields are annotated ``int`` so that they count as discrete (never trainable,
#: :func:`neurosim.neurons.base.continuous_fields`); a per-neuron integer tensor is accepted too
IntParam = int

#: field -> (minimum, maximum) of LoihiCubaParams
PARAM_RANGES = {"i_decay": (0, DECAY_UNITY), "v_decay": (0, DECAY_UNITY), "v_th_mant": (0, 2 ** 17 - 1),
                "bias_mant": (-2 ** 12, 2 ** 12 - 1), "bias_exp": (0, 7), "refractory_delay": (0, 2 ** 31 - 1)}


def check_integer_range(value, low: int, high: int, where: str) -> None:
    """``value`` (an int or a tensor) must hold whole numbers in ``[low, high]``; raises
    ``TypeError``/``ValueError`` naming ``where`` and the offending value otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, torch.Tensor)):
        raise TypeError(f"{where} must be an int or an integer tensor, got {type(value).__name__} {value!r}")
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{where} must hold integers, got dtype {value.dtype}")
        v = value.detach()
        if v.numel() == 0:
            return
        if v.is_floating_point() and not bool((v == v.round()).all()):
            raise ValueError(f"{where} must hold whole numbers, got non-integer values")
        lo, hi = float(v.min()), float(v.max())
        if lo < low or hi > high:
            raise ValueError(f"{where} must lie in [{low}, {high}], got values in [{lo:g}, {hi:g}]")
    elif not low <= value <= high:
        raise ValueError(f"{where} must lie in [{low}, {high}], got {value}")


@dataclass(frozen=True)
class LoihiCubaParams:
    """Integer parameters of the Loihi CUBA neuron (ranges checked at construction).

    ``i_decay``, ``v_decay``: decays of u and v in 1/4096 per step, 0..4096;
    ``v_th_mant``: threshold mantissa 0..2^17-1 (spike when v > v_th_mant << 6);
    ``bias_mant`` (-4096..4095) << ``bias_exp`` (0..7): constant added to v every step;
    ``refractory_delay``: steps after a spike with v frozen (0: none);
    ``graded_spike``: must be False (binary spikes only; graded spikes are not modelled)."""

    i_decay: IntParam = 4096
    v_decay: IntParam = 0
    v_th_mant: IntParam = 100
    bias_mant: IntParam = 0
    bias_exp: IntParam = 0
    refractory_delay: int = 0
    graded_spike: bool = False

    def __post_init__(self):
        for f in fields(self):
            if f.name in PARAM_RANGES:
                check_integer_range(getattr(self, f.name), *PARAM_RANGES[f.name], f"LoihiCubaParams.{f.name}")
        if isinstance(self.refractory_delay, torch.Tensor):
            raise TypeError("LoihiCubaParams.refractory_delay must be an int (one value for the population)")
        if self.graded_spike is not False:
            raise ValueError("LoihiCubaParams.graded_spike must be False: only binary spikes are modelled")


class LoihiCubaState(NamedTuple):
    """u: current, v: voltage (int32, 24-bit values); refractory: steps left (int32, 0 when free)."""

    u: torch.Tensor
    v: torch.Tensor
    refractory: torch.Tensor


def loihi_cuba_initial_state(params: LoihiCubaParams, shape, batch_size: int, device=None,
                             dtype=None) -> LoihiCubaState:
    """u = v = 0, not refractory, int32 ``[batch, *shape]`` (``dtype`` is ignored: integer state)."""
    z = torch.zeros((batch_size, *shape), device=device, dtype=torch.int32)
    return LoihiCubaState(u=z, v=z, refractory=z)


def single_int_value(value) -> Optional[int]:
    """The one value of an int parameter, or of an integer-valued tensor whose entries are all
    equal (Population keeps tensors as float buffers); None when the entries differ or are none."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1)
        return int(flat[0].round()) if flat.numel() and bool((flat == flat[0]).all()) else None
    return int(value)


def _as_int64(value, like: torch.Tensor):
    """An int parameter as is; a tensor one (Population keeps tensors as float buffers) as int64."""
    return value.to(device=like.device, dtype=torch.int64) if isinstance(value, torch.Tensor) else value


def decay(x64: torch.Tensor, decay_value) -> torch.Tensor:
    """``(x (4096 - decay)) // 4096`` truncated toward zero, as Loihi: sign(p) (|p| >> 12). int64 in, out."""
    return torch.div(x64 * (DECAY_UNITY - decay_value), DECAY_UNITY, rounding_mode="trunc")


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit wrap of the current: ``u > 2^23 -> u - 2^24``, ``u <= -2^23 -> u + 2^24``."""
    u = torch.where(u > UV_LIMIT, u - 2 * UV_LIMIT, u)
    return torch.where(u <= -UV_LIMIT, u + 2 * UV_LIMIT, u)


def clip_voltage(v: torch.Tensor) -> torch.Tensor:
    """Saturation of the voltage to ``[-(2^23 - 1), 2^23 - 1]``."""
    return v.clamp(-(UV_LIMIT - 1), UV_LIMIT - 1)


def _integer_input(x: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        return x.to(torch.int64)
    if not bool((x == x.round()).all()):
        raise ValueError("loihi_cuba: the synaptic input must hold integers (sums of w_int << 6, e.g. "
                         "from a LoihiDense); got non-integer values")
    return x.to(torch.int64)


def loihi_cuba_step(x: torch.Tensor, state: LoihiCubaState, p: LoihiCubaParams, dt: float = 0.0,
                    spike_fn=None):
    """One integer step (the numbered update of the module docstring). Returns (spikes, new_state).

    ``x``: the synaptic input ``[batch, *shape]``, already scaled (``sum w_int << 6``); an integer
    tensor, or a float one holding whole numbers. ``spikes`` are 0/1 in the default float dtype
    (exact; no gradient: the integer model is for inference, train with
    :func:`~neurosim.hardware.loihi.quantize.fake_quantize_weight`). ``dt`` and ``spike_fn`` are
    part of the neuron protocol and not used."""
    x64 = _integer_input(x)
    u = wrap_current(decay(state.u.to(torch.int64), _as_int64(p.i_decay, x64)) + x64)
    bias = _as_int64(p.bias_mant, x64) * 2 ** _as_int64(p.bias_exp, x64)
    v_old = state.v.to(torch.int64)
    v = clip_voltage(decay(v_old, _as_int64(p.v_decay, x64)) + u + bias)
    free = state.refractory <= 0
    if p.refractory_delay > 0:
        v = torch.where(free, v, v_old)
    fired = (v > _as_int64(p.v_th_mant, x64) * 2 ** THRESHOLD_SHIFT) & free
    v = torch.where(fired, torch.zeros_like(v), v)
    refractory = torch.where(fired, torch.full_like(state.refractory, p.refractory_delay),
                             (state.refractory - 1).clamp(min=0))
    new_state = LoihiCubaState(u=u.to(torch.int32), v=v.to(torch.int32), refractory=refractory)
    return fired.to(torch.get_default_dtype()), new_state


LoihiCuba = register_neuron_model(NeuronModel(
    name="loihi_cuba", params_type=LoihiCubaParams, state_type=LoihiCubaState, step=loihi_cuba_step,
    initial_state=loihi_cuba_initial_state))


class IntegerSynapse(Node):
    """Shared time handling of Loihi's integer synapses: ``synaptic_input`` (defined by the
    subclass) maps ``[N, *in_shape]`` spikes to ``[N, *out_shape]`` int64 sums, and the optional
    ``delay_line`` (a :class:`~neurosim.projections.delay.Delay` over ``out_shape``, or None)
    delays them by ``latency + delay`` steps, its state an int64 buffer."""

    emits_spikes = False

    def synaptic_input(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """None without a delay line, else the int64 buffer ``[max_delay, batch, *out]``."""
        if self.delay_line is None:
            return None
        device, _ = state_device_dtype(self, device, None)
        return self.delay_line.delays.initial_state(batch_size, self.out_shape, device, torch.int64)

    def step(self, x, state, dt: float):
        z = self.synaptic_input(x)
        return (z, state) if self.delay_line is None else self.delay_line.step(z, state, dt)

    def step_sequence(self, x_seq, state, dt: float):
        t, b = x_seq.shape[:2]
        z = self.synaptic_input(x_seq.reshape(t * b, *x_seq.shape[2:])).reshape(t, b, *self.out_shape)
        return (z, state) if self.delay_line is None else self.delay_line.step_sequence(z, state, dt)

    def forward_sequence(self, x_seq):
        """A whole ``[T, batch, *in]`` sequence at once (for a synapse without a delay line)."""
        t, b = x_seq.shape[:2]
        return self.synaptic_input(x_seq.reshape(t * b, *x_seq.shape[2:])).reshape(t, b, *self.out_shape)


class LoihiDense(IntegerSynapse):
    """Integer all-to-all synapse ``in_features -> out_features`` with Loihi's weight format.

    ``weight_mant``: integer tensor ``[out, in]`` in [-128, 127] (kept as an int8 buffer);
    ``weight_exp``: shared exponent 0..7; ``delay``: int or integer tensor ``[out]`` in 0..62
    (axonal delay per output neuron, steps); ``latency``: 1 (default) as on Loihi, where a layer
    delivers one step after the spike, or 0 for a synapse fed through a graph back-edge (the
    back-edge is the step). Output
    ``x[t, j] = sum_i (m[j, i] << (e + 6)) s[t - latency - d_j, i]``, int64 (see the module
    docstring). Inputs are spikes (0/1, any dtype).

    Shapes: ``[batch, in] -> [batch, out]``."""

    emits_spikes = False

    def __init__(self, weight_mant: torch.Tensor, weight_exp: int = 0, delay=0, latency: int = 1):
        weight_mant = torch.as_tensor(weight_mant)
        if weight_mant.dim() != 2:
            raise ValueError(f"LoihiDense.weight_mant must be a [out, in] tensor, got shape {tuple(weight_mant.shape)}")
        check_integer_range(weight_mant, *WEIGHT_MANT_RANGE, "LoihiDense.weight_mant")
        if isinstance(weight_exp, torch.Tensor) and weight_exp.dim() == 0:
            weight_exp = int(weight_exp)
        check_integer_range(weight_exp, *WEIGHT_EXP_RANGE, "LoihiDense.weight_exp")
        out_features, in_features = weight_mant.shape
        super().__init__({"input": (in_features,)}, (out_features,))
        self.in_features, self.out_features, self.weight_exp = in_features, out_features, int(weight_exp)
        self.register_buffer("weight_mant", weight_mant.detach().to(torch.int8).clone())
        if isinstance(delay, torch.Tensor) and delay.dim() > 0 and tuple(delay.shape) != (out_features,):
            raise ValueError(f"LoihiDense.delay must be an int or a tensor [out] = [{out_features}] "
                             f"(one delay per output neuron), got shape {tuple(delay.shape)}")
        check_integer_range(delay, 0, MAX_DELAY, "LoihiDense.delay")
        if isinstance(latency, bool) or latency not in (0, 1):
            raise ValueError(f"LoihiDense.latency must be 0 or 1 (steps before the axonal delay), got {latency!r}")
        self.latency = int(latency)
        self.delay = (delay.detach().to(torch.int64).clone() if isinstance(delay, torch.Tensor) and delay.dim() > 0
                      else int(delay))
        line = Delay(out_features, self.delay + self.latency)
        self.delay_line = None if line.stateless else line
        self.stateless = self.delay_line is None
        self.supports_sequence = not self.stateless

    @property
    def max_delay(self) -> int:
        """The largest axonal delay (steps), not counting the latency."""
        return int(self.delay.max()) if isinstance(self.delay, torch.Tensor) else self.delay

    def delays(self) -> torch.Tensor:
        """The axonal delay of each output neuron, int64 ``[out]`` (latency not included)."""
        if isinstance(self.delay, torch.Tensor):
            return self.delay.clone()
        return torch.full((self.out_features,), self.delay, dtype=torch.int64)

    def weight_int(self) -> torch.Tensor:
        """``w_int = m << e`` as int64 ``[out, in]``."""
        return self.weight_mant.to(torch.int64) * 2 ** self.weight_exp

    def synaptic_input(self, x2d: torch.Tensor) -> torch.Tensor:
        """``[N, in] -> [N, out]`` int64: ``sum_i (w_int[j, i] << 6) x[n, i]``, undelayed."""
        w = self.weight_mant.to(torch.float64) * float(2 ** (self.weight_exp + ACTIVATION_SHIFT))
        return F.linear(x2d.to(torch.float64), w).to(torch.int64)

    def count_ops(self, x, output):
        """synops = active inputs x fan-out; macs = dense multiply-adds of the same call."""
        rows = x.numel() // self.in_features
        return {"synops": torch.count_nonzero(x.detach()) * self.out_features,
                "macs": torch.tensor(rows * self.in_features * self.out_features)}

    def extra_repr(self) -> str:
        return (f"{self.in_features} -> {self.out_features}, weight_exp={self.weight_exp}, "
                f"max_delay={self.max_delay}, latency={self.latency}")
