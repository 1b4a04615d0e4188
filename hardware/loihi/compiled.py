"""The fixed-point Loihi model on neurosim's compiled time loop (``Simulator(backend=...)``).

Registers, when :mod:`neurosim.hardware.loihi` is imported, the lowerings that let the compiled
machine (:mod:`neurosim.compiled`) run a ``loihi_cuba`` population and a :class:`LoihiDense`
(its axonal delays and latency included) in integer arithmetic: the kernels are
:mod:`neurosim.compiled.integer_kernels`, the reference is the torch step
(:func:`~neurosim.hardware.loihi.fixed_point.loihi_cuba_step`, ``LoihiDense.synaptic_input``),
and ``tests/compiled/test_loihi.py`` checks that spikes, states and sums are identical.

Tables, in the kernels' argument order:

* ``loihi_cuba``: int64 ``[n]`` parameters ``(4096 - i_decay, 4096 - v_decay,
  bias_mant << bias_exp, v_th_mant << 6)``; flag ``refractory_delay``; state ``(u, v, refractory)``
  as int64 ``[batch, n]`` copies, given back as int32. The spikes are in torch's default dtype,
  as the torch step gives them, so the population runs compiled only in a block of that dtype.
* ``LoihiDense``: the int64 weight table ``[in, out]`` of ``m << (e + 6)``, the undelayed sums
  ``[batch, out]`` and the group buffer ``[batch, G out]``; integer tables ``(element groups,
  -, delay values, ring head, status)``; the ring ``[D, batch, out]`` of the int64 ``DelayState``.
  A ``Conv2d`` synapse (:class:`~neurosim.hardware.loihi.conv.LoihiConv2d`) stays on torch.
"""
from __future__ import annotations

import torch

from neurosim.compiled import kinds as K
from neurosim.compiled.lower_projections import delay_parts
from neurosim.compiled.lowering import LoweredNode, NotLowerable, register_neuron_lowering, register_node_lowering

from .fixed_point import ACTIVATION_SHIFT, DECAY_UNITY, THRESHOLD_SHIFT, LoihiCubaParams, LoihiDense

__all__ = ["lower_loihi_cuba", "lower_loihi_dense"]


def _per_neuron_int(value, shape, where: str) -> torch.Tensor:
    """An int parameter, or an integer-valued tensor (a Population keeps tensors as float
    buffers), as a contiguous int64 ``[prod(shape)]`` array."""
    n = int(torch.Size(shape).numel())
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu":
            raise NotLowerable(f"{where} is on {value.device}; the compiled path runs on the CPU")
        value = value.detach()
        return value.round().to(torch.int64).expand(shape).reshape(-1).contiguous()
    return torch.full((n,), int(value), dtype=torch.int64)


@register_neuron_lowering("loihi_cuba")
def lower_loihi_cuba(p: LoihiCubaParams, dt, shape, dtype):
    """``(kind, int64 parameter tables, flags)`` of a ``loihi_cuba`` population (see the module
    docstring); ``dt`` is not used (the decays already are per step)."""
    if dtype != torch.get_default_dtype():
        raise NotLowerable(f"loihi_cuba gives its spikes in torch's default dtype "
                           f"({torch.get_default_dtype()}), not the block's {dtype}")
    ints = lambda name: _per_neuron_int(getattr(p, name), shape, f"loihi_cuba.{name}")  # noqa: E731
    tables = [DECAY_UNITY - ints("i_decay"), DECAY_UNITY - ints("v_decay"),
              ints("bias_mant") * 2 ** ints("bias_exp"), ints("v_th_mant") * 2 ** THRESHOLD_SHIFT]
    return K.LOIHI_CUBA, [t.contiguous() for t in tables], (int(p.refractory_delay),)


@register_node_lowering(LoihiDense)
def lower_loihi_dense(node: LoihiDense, state, dt, batch, dtype) -> LoweredNode:
    """A :class:`LoihiDense` with its latency and axonal delays (see the module docstring)."""
    if node.weight_mant.device.type != "cpu":
        raise NotLowerable(f"LoihiDense weight is on {node.weight_mant.device}; the compiled path runs on the CPU")
    weight_t = (node.weight_int() * 2 ** ACTIVATION_SHIFT).t().contiguous()
    n_out = node.out_features
    undelayed = torch.zeros(batch, n_out, dtype=torch.int64)
    status = torch.zeros(1, dtype=torch.int64)
    empty = torch.zeros(0, dtype=torch.int64)
    if node.delay_line is None:
        groups, group, values, head, rings, buffer, finish = 0, empty, empty, empty, [], [undelayed], lambda: state
    else:
        delays = node.delay_line.delays
        groups, values, head, rings, buffer, finish = delay_parts(delays, state, batch, n_out, torch.int64,
                                                                  "LoihiDense")
        group = (torch.zeros(n_out, dtype=torch.int64) if delays.group is None
                 else delays.group.reshape(-1).to(torch.int64).contiguous())
        buffer = [undelayed] + buffer

    def inexact():
        count = int(status[0])
        return None if count == 0 else (f"LoihiDense received {count} input values that are not whole numbers "
                                        "(the torch path sums them in float64)")
    return LoweredNode(kind=K.LOIHI_DENSE, ints=[group, empty, values, head, status], extra2=[weight_t] + buffer,
                       extra3=rings, flags=(groups,), finish=finish, out_lane=K.LANE_INT, inexact=inexact)
