"""The Norse backend: :func:`to_norse` turns a :class:`~neurosim.Simulator` into a
``torch.nn.Module`` that runs the same network on Norse's neuron cells, on any torch device.

Mapping, node by node through the registry ``NORSE`` (ARCHITECTURE.md rules 4 and 12); the
user's network is only read, every weight is copied:

==========================  ===============================  ======================================
neurosim node               Norse / torch counterpart        refused settings (with the reason)
==========================  ===============================  ======================================
Population ``lif``          ``LIFBoxCell``                   ``refractory_steps > 0``
Population ``cuba_lif``     ``LIFCell`` / ``LIFRefracCell``  ``reset="subtract"``
Population ``li``           ``LIBoxCell``                    none
Population ``cuba_li``      ``LICell``                       none
Population ``if``           ``IAFCell``                      ``reset="subtract"``, refractory
Dense                       ``nn.Linear`` (+ uniform delay)  per-synapse delays
Sparse                      ``nn.Linear`` of ``to_dense()``  per-synapse delays
Conv2d                      ``nn.Conv2d``                    none
Conv1d                      ``nn.Conv1d``                    none
Threshold                   Norse's ``threshold(x - v_th)``  none
MaxPool2d, AvgPool2d        ``nn.MaxPool2d``, ``nn.AvgPool2d``  none
Flatten                     ``nn.Flatten(start_dim=1)``      none
Delay                       a shift                          per-element delays
==========================  ===============================  ======================================

Every other node (other neuron models, among them ``integrator``: Norse has no integrator
without threshold and reset; plug-in blocks) is refused. All refusals of a network
come in one :class:`~neurosim.hardware.registry.UnsupportedNodesError`, before anything is built.

Parameter conversion. Norse integrates with forward Euler, ``v <- v + dt/tau' (v_leak' - v + i')``
(``LIFBoxCell``, ``LIBoxCell``), so a neurosim membrane with per-step decay ``a`` (``exp(-dt/tau)``
for ``integration="exact"``, ``1 - dt/tau`` for ``"euler"``) maps exactly with
``1/tau' = (1 - a)/dt`` and input ``i' = r I``:
``v + (1 - a)(v_leak - v + r I) = v_leak + (v - v_leak) a + (1 - a) r I``. The CubaLIF pair
(neurosim: ``i[t] = a_syn i[t-1] + w_in x[t]``, ``v[t] = v_leak + (v - v_leak) a_mem + c r i[t]``)
maps to ``LIFCell`` (``i' <- i' + x'``; Euler ``v``; ``i' <- (1 - dt/tau_syn') i'``) with
``1/tau_syn' = (1 - a_syn)/dt``, ``1/tau_mem' = (1 - a_mem)/dt`` and Norse's current
``i' = g i``, ``g = c r / (1 - a_mem)``, fed ``x' = g w_in x`` (Euler: ``g = r``); CubaLI maps to
``LICell`` (``i' <- i' + x'``; Euler ``v``; ``i' <- (1 - dt/tau_syn') i'``) with the same
conversion. Threshold is Norse's own ``threshold(x - v_th, "super", 100)`` (forward H, 1 where
> 0, as in neurosim). IF maps to
``IAFCell`` (``v <- v + x'``) with ``x' = (dt r) I``, the very product neurosim computes.
Resets: ``"zero"`` is Norse's reset to value with ``v_reset' = 0``; ``"value"`` likewise with
``v_reset``; LIF's ``"subtract"`` uses ``reset_subtract`` (``v - v_th'``) on potentials shifted by
``v_reset`` (``v' = v - v_reset``, ``v_th' = v_th - v_reset``, ``v_leak' = v_leak - v_reset``),
so it subtracts ``v_th - v_reset`` like neurosim. ``input_same_step=False`` (input acting one step
later) is a one-step shift of the node's input. Refractory CubaLIF uses ``LIFRefracCell`` with
``rho_reset = refractory_steps`` (v held, no spike, the current keeps integrating, as in neurosim).

Exactness. The equations are the same; the float operations are not in the same order for the
leaky models (Norse computes ``v + k (u - v)``, neurosim ``u_leak + (v - u_leak) a + b I``), so
their membranes differ in the last bits; IF is the same arithmetic. The tests therefore assert
identical spike trains in float64 (and IF in float32), see ``tests/hardware/test_norse.py``.
Spikes use Norse's ``"super"`` threshold: the forward pass is H(v - v_th) (1 where > 0), as in
neurosim; its surrogate gradient is Norse's SuperSpike ``1/(|x| + 1)^2``, not the Population's.

Schedule: :class:`NorseNetwork` runs its own time loop over ``[T, batch, ...]`` with neurosim's
schedule (:mod:`neurosim.schedule`): each step the nodes in topological order, a port's input the
sum of its in-edges in the order they were added, a back-edge reading the source's output of the
previous step (zero at t = 0).

Example::

    >>> net = to_norse(sim)                      # sim: a neurosim Simulator (graph + dt)
    >>> outputs, state = net(spikes)             # spikes: [T, batch, *input_shape]
    >>> outputs, state = net(more_spikes, state) # continue from the last step
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters
from norse.torch.functional.leaky_integrator import LIParameters, LIState
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters
from norse.torch.functional.lif_refrac import LIFRefracFeedForwardState, LIFRefracParameters
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.functional.threshold import threshold as norse_threshold
from norse.torch.module.iaf import IAFCell
from norse.torch.module.leaky_integrator import LICell
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.lif import LIFCell
from norse.torch.module.lif_box import LIFBoxCell
from norse.torch.module.lif_refrac import LIFRefracCell

from neurosim.graph import _NodeDict
from neurosim.neurons.base import decay_factor
from neurosim.neurons.cuba_lif import _membrane_coefficients
from neurosim.population import Population
from neurosim.projections import AvgPool2d, Conv1d, Conv2d, Delay, Dense, Flatten, MaxPool2d, Sparse
from neurosim.simulator import Simulator
from neurosim.threshold import Threshold
from neurosim.validation import check_time_first_inputs

from .registry import Backend

__all__ = ["to_norse", "NorseNetwork", "NorseNetworkState", "NORSE"]

NORSE = Backend("norse")
_THRESHOLD = "super"   # Norse's threshold method: forward H(x), SuperSpike surrogate backward


class NorseNetworkState(NamedTuple):
    """nodes: node name -> that node's state (Norse cell state, delay buffer, or None);
    previous: back-edge source name -> its output at the last step ``[batch, *out_shape]``."""

    nodes: Dict[str, Any]
    previous: Dict[str, torch.Tensor]


class _Context(NamedTuple):
    dt: float
    dtype: torch.dtype
    device: torch.device


# ---------------------------------------------------------------------- per-node step modules
class _Stateless(nn.Module):
    """A torch layer applied to each step: ``([batch, *in], None) -> ([batch, *out], None)``."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def initial_state(self, batch_size: int, device, dtype):
        return None

    def forward(self, x, state):
        return self.layer(x), state


class _Shift(nn.Module):
    """``y[t] = layer(x)[t - delay] (+ bias)``, zero contributions before ``delay`` steps (the
    bias is not delayed, as in neurosim). State: ``[delay, batch, *out_shape]`` in flight."""

    def __init__(self, layer: nn.Module, delay: int, out_shape, bias: Optional[torch.Tensor] = None):
        super().__init__()
        self.layer, self.delay, self.out_shape = layer, delay, tuple(out_shape)
        self.bias = None if bias is None else nn.Parameter(bias)

    def initial_state(self, batch_size: int, device, dtype):
        return torch.zeros((self.delay, batch_size, *self.out_shape), device=device, dtype=dtype)

    def forward(self, x, state):
        z = self.layer(x)
        y = state[0] if self.bias is None else state[0] + self.bias
        return y, torch.cat([state[1:], z.unsqueeze(0)], 0)


def _map_tensors(value, fn):
    """``fn`` applied to every tensor of a (nested) Norse parameter NamedTuple."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_map_tensors(v, fn) for v in value])
    return value


class _NorseNeuron(nn.Module):
    """A Norse cell fed ``input_scale * x`` (one step later when ``input_delayed``).

    State: ``(norse cell state, input held for the next step or None)``. The cell's parameters
    (a NamedTuple, not registered by Norse) follow ``.to()`` / ``.double()`` / ``.cuda()``."""

    def __init__(self, cell: nn.Module, input_scale: torch.Tensor, shape, input_delayed: bool,
                 make_state: Callable[[torch.Tensor, Any], Any]):
        super().__init__()
        self.cell, self.shape, self.input_delayed = cell, tuple(shape), input_delayed
        self.register_buffer("input_scale", input_scale)
        self._make_state = make_state

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.cell.p = _map_tensors(self.cell.p, fn)
        return self

    def initial_state(self, batch_size: int, device, dtype):
        zeros = torch.zeros((batch_size, *self.shape), device=device, dtype=dtype)
        return self._make_state(zeros, self.cell.p), (zeros if self.input_delayed else None)

    def forward(self, x, state):
        cell_state, held = state
        if self.input_delayed:
            x, held = held, x
        y, cell_state = self.cell(self.input_scale * x, cell_state)
        return y, (cell_state, held)


# ---------------------------------------------------------------------- the network module
class NorseNetwork(nn.Module):
    """The exported network: Norse cells and torch layers stepped with neurosim's schedule.

    ``forward(inputs, state=None) -> (outputs, state)``: ``inputs`` a tensor (one graph input)
    or a dict input name -> ``[T, batch, *shape]``, as for ``Simulator.run``; ``outputs`` the
    dict output node -> ``[T, batch, *out_shape]`` (the nodes ``Simulator.run`` returns);
    ``state`` a :class:`NorseNetworkState` (from :meth:`initial_state` or a previous call)."""

    def __init__(self, steps: Dict[str, nn.Module], order: List[str], edges: Dict[str, List[Tuple[str, bool]]],
                 inputs: Dict[str, tuple], outputs: List[str], out_shapes: Dict[str, tuple], dt: float):
        super().__init__()
        self.steps = _NodeDict()          # accepts any node name, also 'pop' or 'items'
        for name, module in steps.items():
            self.steps[name] = module
        self.order, self.edges, self.inputs, self.outputs, self.dt = order, edges, inputs, outputs, dt
        self.out_shapes = out_shapes
        self.back_sources = sorted({s for es in edges.values() for s, back in es if back})

    def _dtype(self) -> torch.dtype:
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    def initial_state(self, batch_size: int, device=None, dtype=None) -> NorseNetworkState:
        """Resting state of every node and zero previous outputs of the back-edge sources."""
        dtype = dtype or self._dtype()
        nodes = {n: self.steps[n].initial_state(batch_size, device, dtype) for n in self.order}
        previous = {n: torch.zeros((batch_size, *self.out_shapes[n]), device=device, dtype=dtype)
                    for n in self.back_sources}
        return NorseNetworkState(nodes, previous)

    def _check_inputs(self, inputs) -> Dict[str, torch.Tensor]:
        inputs, _, _ = check_time_first_inputs(inputs, self.inputs, "NorseNetwork")
        dtype = self._dtype()
        for name, x in inputs.items():
            if x.is_floating_point() and x.dtype != dtype:
                raise TypeError(f"NorseNetwork: input {name!r} is {x.dtype} but the exported network is {dtype}; "
                                f"convert the input or the network (.to({x.dtype}))")
        return {n: x if x.is_floating_point() else x.to(dtype) for n, x in inputs.items()}

    def _check_state(self, state, batch: int) -> None:
        if not isinstance(state, NorseNetworkState):
            raise TypeError(f"NorseNetwork: state must be a NorseNetworkState, got {type(state).__name__}")
        missing = [n for n in self.order if n not in state.nodes] + \
                  [n for n in self.back_sources if n not in state.previous]
        if missing:
            raise ValueError(f"NorseNetwork: state has no entry for {missing}")
        for name, prev in state.previous.items():
            if prev.shape[0] != batch:
                raise ValueError(f"NorseNetwork: previous output of {name!r} has batch size {prev.shape[0]}, "
                                 f"the inputs {batch}")

    def forward(self, inputs, state: Optional[NorseNetworkState] = None):
        inputs = self._check_inputs(inputs)
        first = next(iter(inputs.values()))
        steps, batch = first.shape[:2]
        if state is None:
            state = self.initial_state(batch, first.device, first.dtype)
        else:
            self._check_state(state, batch)
        per_step = {n: x.unbind(0) for n, x in inputs.items()}
        nodes, previous = dict(state.nodes), dict(state.previous)
        recorded = {n: [] for n in self.outputs}
        for t in range(steps):
            current = {}
            for name in self.order:
                x = None
                for source, back in self.edges[name]:
                    value = per_step[source][t] if source in per_step else (
                        previous[source] if back else current[source])
                    x = value if x is None else x + value
                current[name], nodes[name] = self.steps[name](x, nodes[name])
            previous = {n: current[n] for n in self.back_sources}
            for n in self.outputs:
                recorded[n].append(current[n])
        return {n: torch.stack(v) for n, v in recorded.items()}, NorseNetworkState(nodes, previous)

    def extra_repr(self) -> str:
        return f"dt={self.dt}, inputs={self.inputs}, outputs={self.outputs}"


def to_norse(sim: Simulator) -> NorseNetwork:
    """Export ``sim`` (its graph and ``dt``) to a :class:`NorseNetwork` of Norse cells.

    Shapes: the module maps the inputs ``[T, batch, *input_shape]`` of ``sim.run`` to the same
    output dict ``{node: [T, batch, *out_shape]}``. The network is read, never changed: weights
    are copied (training the export leaves ``sim`` untouched). The module holds the parameters'
    dtype and device of the graph (float32 when it has none); move it with ``.to(...)``.

    Raises ``TypeError`` when ``sim`` is not a Simulator, the graph's own ``GraphError`` when it
    cannot run, and one :class:`~neurosim.hardware.registry.UnsupportedNodesError` listing every
    node Norse cannot reproduce exactly, with the reason (see the module docstring's table)."""
    if not isinstance(sim, Simulator):
        raise TypeError(f"to_norse takes a neurosim Simulator (a graph plus its dt), got {type(sim).__name__}")
    graph, order = sim.graph, sim.order          # order: validates the graph and its nodes
    held = next((t for t in list(graph.parameters()) + list(graph.buffers()) if t.is_floating_point()), None)
    context = _Context(sim.dt, held.dtype if held is not None else torch.float32,
                       held.device if held is not None else torch.device("cpu"))
    steps = NORSE.map_nodes(graph, context)
    edges = {n: [(e.source, e.back) for e in graph.in_edges(n)] for n in order}
    return NorseNetwork(steps, order, edges, dict(graph.inputs), graph.output_names(),
                        {n: graph.nodes[n].out_shape for n in order}, sim.dt)


# ---------------------------------------------------------------------- neuron mappings
def _param(value, ctx: _Context) -> torch.Tensor:
    """A copy of a parameter (float or tensor) as a tensor of the export's dtype and device."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=ctx.device, dtype=ctx.dtype).clone()
    return torch.tensor(value, device=ctx.device, dtype=ctx.dtype)


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


def _lif(name, pop, ctx):
    p, dt = pop.params, ctx.dt
    a = decay_factor(_detached(p.tau_mem), dt, p.integration)
    offset = _detached(p.v_reset) if p.reset == "subtract" else 0.0
    v_reset = 0.0 if p.reset == "zero" else _detached(p.v_reset)
    norse_p = LIFBoxParameters(
        tau_mem_inv=_param((1.0 - a) / dt, ctx), v_leak=_param(_detached(p.v_leak) - offset, ctx),
        v_th=_param(_detached(p.v_threshold) - offset, ctx), v_reset=_param(v_reset - offset, ctx),
        method=_THRESHOLD, reset_method=reset_subtract if p.reset == "subtract" else reset_value)
    return _NorseNeuron(LIFBoxCell(norse_p, dt=dt), _param(_detached(p.r), ctx), pop.out_shape,
                        not p.input_same_step, lambda zeros, q: LIFBoxFeedForwardState(v=zeros + q.v_leak))


def _synaptic(p, dt):
    """(detached params, a_syn, a_mem, gain): Norse's current = gain x neurosim's current."""
    detached = dataclasses.replace(p, **{f.name: _detached(getattr(p, f.name)) for f in dataclasses.fields(p)})
    a_syn = decay_factor(detached.tau_syn, dt, p.integration)
    a_mem, c = _membrane_coefficients(detached, dt)
    return detached, a_syn, a_mem, c * detached.r / (1.0 - a_mem)


def _cuba_li(name, pop, ctx):
    p, dt = pop.params, ctx.dt
    detached, a_syn, a_mem, gain = _synaptic(p, dt)
    li_p = LIParameters(tau_syn_inv=_param((1.0 - a_syn) / dt, ctx), tau_mem_inv=_param((1.0 - a_mem) / dt, ctx),
                        v_leak=_param(detached.v_leak, ctx))
    return _NorseNeuron(LICell(li_p, dt=dt), _param(gain * detached.w_in, ctx), pop.out_shape, not p.input_same_step,
                        lambda zeros, q: LIState(v=zeros + q.v_leak, i=zeros))


def _cuba_lif(name, pop, ctx):
    p, dt = pop.params, ctx.dt
    detached, a_syn, a_mem, gain = _synaptic(p, dt)
    lif_p = LIFParameters(
        tau_syn_inv=_param((1.0 - a_syn) / dt, ctx), tau_mem_inv=_param((1.0 - a_mem) / dt, ctx),
        v_leak=_param(detached.v_leak, ctx), v_th=_param(detached.v_threshold, ctx),
        v_reset=_param(0.0 if p.reset == "zero" else detached.v_reset, ctx), method=_THRESHOLD)
    scale = _param(gain * detached.w_in, ctx)
    if p.refractory_steps > 0:
        refractory_p = LIFRefracParameters(lif=lif_p, rho_reset=_param(float(p.refractory_steps), ctx))
        return _NorseNeuron(LIFRefracCell(refractory_p, dt=dt), scale, pop.out_shape, not p.input_same_step,
                            lambda zeros, q: LIFRefracFeedForwardState(
                                LIFFeedForwardState(v=zeros + q.lif.v_leak, i=zeros), rho=zeros))
    return _NorseNeuron(LIFCell(lif_p, dt=dt), scale, pop.out_shape, not p.input_same_step,
                        lambda zeros, q: LIFFeedForwardState(v=zeros + q.v_leak, i=zeros))


def _li(name, pop, ctx):
    p, dt = pop.params, ctx.dt
    a = decay_factor(_detached(p.tau_mem), dt, p.integration)
    norse_p = LIBoxParameters(tau_mem_inv=_param((1.0 - a) / dt, ctx), v_leak=_param(_detached(p.v_leak), ctx))
    return _NorseNeuron(LIBoxCell(norse_p, dt=dt), _param(_detached(p.r), ctx), pop.out_shape,
                        not p.input_same_step, lambda zeros, q: LIBoxState(v=zeros + q.v_leak))


def _if(name, pop, ctx):
    p, dt = pop.params, ctx.dt
    norse_p = IAFParameters(v_th=_param(_detached(p.v_threshold), ctx),
                            v_reset=_param(0.0 if p.reset == "zero" else _detached(p.v_reset), ctx),
                            method=_THRESHOLD)
    return _NorseNeuron(IAFCell(norse_p, dt=dt), _param(dt * _detached(p.r), ctx), pop.out_shape,
                        not p.input_same_step, lambda zeros, q: IAFFeedForwardState(v=zeros))


def _no_refractory(p, cell: str) -> Optional[str]:
    if p.refractory_steps > 0:
        return (f"refractory_steps={p.refractory_steps}: Norse's refractory cell (LIFRefracCell) has a "
                f"synaptic current, which the {cell} model lacks")
    return None


def _no_subtract(p, cell: str) -> Optional[str]:
    if p.reset == "subtract":
        return f"reset='subtract': Norse's {cell} only resets to a value (use reset='zero' or 'value')"
    return None


#: neuron model name -> (checks, each giving why a Population cannot be mapped or None; mapping)
_NEURONS: Dict[str, Tuple[Tuple[Callable[[Any], Optional[str]], ...], Callable]] = {
    "lif": ((lambda p: _no_refractory(p, "current-free LIF (LIFBoxCell)"),), _lif),
    "cuba_lif": ((lambda p: _no_subtract(p, "LIFCell"),), _cuba_lif),
    "li": ((), _li),
    "cuba_li": ((), _cuba_li),
    "if": ((lambda p: _no_subtract(p, "IAFCell"), lambda p: _no_refractory(p, "IF (IAFCell)")), _if),
}


def _population_support(pop: Population) -> Optional[str]:
    entry = _NEURONS.get(pop.model.name)
    if entry is None:
        return (f"neuron model {pop.model.name!r} has no exact Norse counterpart in this backend "
                f"(mapped models: {sorted(_NEURONS)})")
    reasons = [why for why in (check(pop.params) for check in entry[0]) if why]
    return "; ".join(reasons) or None


@NORSE.register(Population, supports=_population_support)
def _population(name, pop, ctx):
    return _NEURONS[pop.model.name][1](name, pop, ctx)


# ---------------------------------------------------------------------- projections and layers
def _uniform_delay_only(node) -> Optional[str]:
    if node.delays is not None and not node.delays.uniform:
        return (f"per-synapse delays (values {list(node.delays.values)}): only one delay for all "
                "synapses maps to a shift")
    return None


def _linear(weight: torch.Tensor, bias: Optional[torch.Tensor], delays, out_features: int) -> nn.Module:
    """``nn.Linear`` holding copies of ``weight [out, in]`` and ``bias``; a :class:`_Shift` around it
    when the projection has a uniform delay."""
    delay = 0 if delays is None else delays.max_delay
    weight = weight.detach()
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None and delay == 0,
                      device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if layer.bias is not None:
            layer.bias.copy_(bias.detach())
    if delay == 0:
        return _Stateless(layer)
    return _Shift(layer, delay, (out_features,), None if bias is None else bias.detach().clone())


@NORSE.register(Dense, supports=_uniform_delay_only)
def _dense(name, node, ctx):
    return _linear(node.weight, node.bias, node.delays, node.out_features)


@NORSE.register(Sparse, supports=_uniform_delay_only)
def _sparse(name, node, ctx):
    """A dense ``nn.Linear`` of :meth:`Sparse.to_dense` (repeated synapses summed)."""
    return _linear(node.to_dense(), node.bias, node.delays, node.out_features)


@NORSE.register(Conv2d)
def _conv2d(name, node, ctx):
    weight = node.weight.detach()
    layer = nn.Conv2d(node.in_channels, node.out_channels, node.kernel_size, node.stride, node.padding,
                      bias=node.bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if node.bias is not None:
            layer.bias.copy_(node.bias.detach())
    return _Stateless(layer)


@NORSE.register(Conv1d)
def _conv1d(name, node, ctx):
    weight = node.weight.detach()
    layer = nn.Conv1d(node.in_channels, node.out_channels, node.kernel_size, node.stride, node.padding,
                      node.dilation, node.groups, bias=node.bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if node.bias is not None:
            layer.bias.copy_(node.bias.detach())
    return _Stateless(layer)


class _NorseThreshold(nn.Module):
    """``threshold(x - v_th, "super", alpha)``: Norse's spike function (forward H, 1 where > 0)."""

    def __init__(self, v_threshold: torch.Tensor, alpha: float = 100.0):
        super().__init__()
        self.register_buffer("v_threshold", v_threshold)
        self.alpha = alpha

    def forward(self, x):
        return norse_threshold(x - self.v_threshold, _THRESHOLD, self.alpha)


@NORSE.register(Threshold)
def _threshold(name, node, ctx):
    return _Stateless(_NorseThreshold(_param(node.v_threshold, ctx)))


@NORSE.register(MaxPool2d)
def _max_pool(name, node, ctx):
    return _Stateless(nn.MaxPool2d(node.kernel_size, node.stride, node.padding))


@NORSE.register(AvgPool2d)
def _avg_pool(name, node, ctx):
    return _Stateless(nn.AvgPool2d(node.kernel_size, node.stride, node.padding))


@NORSE.register(Flatten)
def _flatten(name, node, ctx):
    return _Stateless(nn.Flatten(start_dim=1))


@NORSE.register(Delay, supports=lambda node: None if node.delays.uniform else
                "per-element delays: only one delay for every element maps to a shift")
def _delay(name, node, ctx):
    if node.delays.max_delay == 0:
        return _Stateless(nn.Identity())
    return _Shift(nn.Identity(), node.delays.max_delay, node.out_shape)
