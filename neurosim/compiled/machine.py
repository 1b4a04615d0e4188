"""The compiled time loop: one numba function that runs a block of nodes for ``T`` steps.

A block (see :mod:`neurosim.simulator` for the schedule) is lowered to a program
(:mod:`neurosim.compiled.program`): an int64 node table (one row per node, columns in
:mod:`neurosim.compiled.kinds`), an edge table, a monitor table, and four tables of arrays. An
array table holds one row ``(address, d0, d1, d2)`` per array: the data pointer and the shape
of a contiguous CPU tensor that the program keeps alive, viewed here without a copy
(``numba.carray``). Passing addresses rather than numba typed lists keeps the machine's
signature the same for every program (one compilation, cached on disk) and costs nothing per
call::

    F2: 2D arrays [batch, n] of the state's dtype (outputs, states, port sums, weight tables)
    F3: 3D arrays (sequences [T, batch, n] read from outside, recorded outputs and variables,
        delay rings [D, batch, n])
    P:  1D arrays of the state's dtype (one value per neuron, synapse weights, biases)
    IX: 1D int64 arrays (CSR structure, delay values, ring heads, fixed-point parameters)
    I2, I3: int64 2D and 3D arrays: the integer lane (:mod:`neurosim.compiled.kinds`) of the
        fixed-point models: their outputs, states, weight tables and delay rings

``like`` (an empty array of the state's dtype) and ``ints`` (an empty int64 array) give the
element types. Step ``t`` runs the schedule of :mod:`neurosim.schedule` exactly::

    for q in nodes (feed-forward order):
        x[port] = sum over the port's in-edges, in order, of
                  the outside sequence at t | a node's output of this step | of the step before
        node q's kernel: out, state <- step(x, state)    (out: the node's recorded sequence
                                                          at t, or its output buffer)
        monitored arrays -> their sequences at t
    last outputs <- outputs, for the unrecorded nodes read by back-edges (a recorded node's
    last output is its sequence at t - 1)

A port with one in-edge reads its source in place; with several, they are added in order into
the port's scratch buffer (``a + b + c`` = ``(a + b) + c``, as ``Run.port_inputs``). A port
reads the tables of its lane (``PORT0_LANE``): the same functions, compiled once per element type.
"""
from __future__ import annotations

from numba import carray, njit, types
from numba.extending import intrinsic

from . import kinds as K
from .neuron_kernels import (alif_kernel, coba_lif_kernel, cuba_li_kernel, cuba_lif_kernel, if_kernel,
                             integrator_kernel, li_kernel, lif_kernel)
from .integer_kernels import loihi_cuba_kernel, loihi_events
from .neuron_kernels_more import adex_kernel, izhikevich_kernel
from .synapse_kernels import (add_bias, delay_line, dense_events, dense_events_grouped, group_elements,
                              sparse_events)

__all__ = ["run_program"]


@intrinsic
def _pointer(typingctx, address, like):
    """The int64 ``address`` as a pointer to elements of ``like``'s dtype."""
    pointer = types.CPointer(like.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))
    return pointer(address, like), codegen


@njit(cache=True, inline="always", error_model="numpy")
def _m(table, k, like):
    """Array ``k`` of a 2D table."""
    return carray(_pointer(table[k, 0], like), (table[k, 1], table[k, 2]))


@njit(cache=True, inline="always", error_model="numpy")
def _s(table, k, like):
    """Array ``k`` of a 3D table."""
    return carray(_pointer(table[k, 0], like), (table[k, 1], table[k, 2], table[k, 3]))


@njit(cache=True, inline="always", error_model="numpy")
def _v(table, k, like):
    """Array ``k`` of a 1D table."""
    return carray(_pointer(table[k, 0], like), (table[k, 1],))


@njit(cache=True, error_model="numpy")
def _source(t, edges, e, F2, F3, like):
    """What edge ``e`` delivers at step t. A recorded node's output lives in its sequence
    (written there in place), so its current and last values are read from that sequence."""
    kind, index, record = edges[e, 0], edges[e, 1], edges[e, 2]
    if kind == K.SOURCE_SEQUENCE:
        return _s(F3, index, like)[t]
    if record >= 0:
        if kind == K.SOURCE_CURRENT:
            return _s(F3, record, like)[t]
        if t > 0:
            return _s(F3, record, like)[t - 1]
    return _m(F2, index, like)


@njit(cache=True, error_model="numpy")
def _copy(source, target):
    batch, n = source.shape
    for b in range(batch):
        source_b = source[b]
        target_b = target[b]
        for j in range(n):
            target_b[j] = source_b[j]


@njit(cache=True, error_model="numpy")
def _port(t, edges, start, end, scratch, F2, F3, like):
    """The input of one port at step t: its only source in place, or the ordered sum."""
    if end - start == 1:
        return _source(t, edges, start, F2, F3, like)
    total = _m(F2, scratch, like)
    _copy(_source(t, edges, start, F2, F3, like), total)
    batch, n = total.shape
    for e in range(start + 1, end):
        other = _source(t, edges, e, F2, F3, like)
        for b in range(batch):
            other_b = other[b]
            total_b = total[b]
            for j in range(n):
                total_b[j] = total_b[j] + other_b[j]
    return total


@njit(cache=True, error_model="numpy")
def _projection(c, x, out, F2, F3, P, IX, like, ints):
    """Dense / Sparse / Delay: propagate into the group buffer, then the delay line and bias.

    Flags: FLAG0 = delay groups (0: no delay line), FLAG1 = has a bias, FLAG2 = per-synapse
    groups (Dense column table, Delay element groups)."""
    kind, groups, has_bias, grouped = c[K.KIND], c[K.FLAG0], c[K.FLAG1], c[K.FLAG2]
    e, i, p = c[K.EXTRA], c[K.INT], c[K.PARAM]
    z = out if groups == 0 else _m(F2, e + 1, like)
    if kind == K.DENSE:
        if grouped:
            dense_events_grouped(x, _m(F2, e, like), _v(IX, i, ints), z)
        else:
            dense_events(x, _m(F2, e, like), z)
    elif kind == K.SPARSE:
        sparse_events(x, _v(IX, i, ints), _v(IX, i + 1, ints), _v(P, p, like), z)
    else:
        group_elements(x, _v(IX, i, ints), groups, z)
    if groups > 0:
        delay_line(z, _v(IX, i + 2, ints), _s(F3, c[K.SEQ], like), _v(IX, i + 3, ints), out)
    if has_bias:
        add_bias(out, _v(P, p + 1, like))


@njit(cache=True, error_model="numpy")
def _neuron(c, x0, x1, out, F2, P, like):
    """The kernel of a population (argument order: :mod:`neurosim.compiled.lower_neurons`)."""
    kind, s, p = c[K.KIND], c[K.STATE], c[K.PARAM]
    f0, f1, f2, f3 = c[K.FLAG0], c[K.FLAG1], c[K.FLAG2], c[K.FLAG3]
    if kind == K.LIF:
        lif_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), out,
                   _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                   _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), f0, f1, f2)
    elif kind == K.COBA_LIF:
        coba_lif_kernel(x0, x1, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), _m(F2, s + 3, like),
                        out, _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                        _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), _v(P, p + 7, like),
                        _v(P, p + 8, like), _v(P, p + 9, like), f0, f1, f2, f3)
    elif kind == K.CUBA_LIF:
        cuba_lif_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), out,
                        _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                        _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), _v(P, p + 7, like),
                        _v(P, p + 8, like), f0, f1, f2)
    elif kind == K.IF:
        if_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), out,
                  _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like), f0, f1, f2)
    elif kind == K.LI:
        li_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), out,
                  _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like), f2)
    elif kind == K.CUBA_LI:
        cuba_li_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), out, _v(P, p, like), _v(P, p + 1, like),
                       _v(P, p + 2, like), _v(P, p + 3, like), _v(P, p + 4, like), _v(P, p + 5, like), f2)
    elif kind == K.INTEGRATOR:
        integrator_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), out, _v(P, p, like), f2)
    elif kind == K.ALIF:
        alif_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), _m(F2, s + 3, like), out,
                    _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                    _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), _v(P, p + 7, like), f0, f1, f2)
    elif kind == K.IZHIKEVICH:
        izhikevich_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), out,
                          _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                          _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), _v(P, p + 7, like),
                          _v(P, p + 8, like), f2)
    elif kind == K.ADEX:
        adex_kernel(x0, _m(F2, s, like), _m(F2, s + 1, like), _m(F2, s + 2, like), _m(F2, s + 3, like), out,
                    _v(P, p, like), _v(P, p + 1, like), _v(P, p + 2, like), _v(P, p + 3, like),
                    _v(P, p + 4, like), _v(P, p + 5, like), _v(P, p + 6, like), _v(P, p + 7, like),
                    _v(P, p + 8, like), _v(P, p + 9, like), f1, f2)


@njit(cache=True, error_model="numpy")
def _output(t, c, T2, T3, like):
    """Where node ``c`` writes step t: its recorded sequence at t, or its output buffer."""
    return _s(T3, c[K.RECORD], like)[t] if c[K.RECORD] >= 0 else _m(T2, c[K.OUT], like)


@njit(cache=True, error_model="numpy")
def _fixed_point(t, c, edges, F2, F3, I2, I3, IX, like, ints):
    """A node of the integer lane (``kind >= INTEGER_KINDS``), argument order of
    :mod:`neurosim.hardware.loihi.compiled`."""
    kind, s, i, e = c[K.KIND], c[K.STATE], c[K.INT], c[K.EXTRA]
    if kind == K.LOIHI_CUBA:
        x = _port(t, edges, c[K.PORT0], c[K.PORT0_END], c[K.SCRATCH0], I2, I3, ints)
        loihi_cuba_kernel(x, _m(I2, s, ints), _m(I2, s + 1, ints), _m(I2, s + 2, ints), _output(t, c, F2, F3, like),
                          _v(IX, i, ints), _v(IX, i + 1, ints), _v(IX, i + 2, ints), _v(IX, i + 3, ints),
                          c[K.FLAG0])
    else:                                                  # LOIHI_DENSE: spikes in, int64 sums out
        x = _port(t, edges, c[K.PORT0], c[K.PORT0_END], c[K.SCRATCH0], F2, F3, like)
        out = _output(t, c, I2, I3, ints)
        weight, status, groups = _m(I2, e, ints), _v(IX, i + 4, ints), c[K.FLAG0]
        if groups == 0:
            loihi_events(x, weight, out, status)
        else:                                              # latency + axonal delay per output
            undelayed, grouped = _m(I2, e + 1, ints), _m(I2, e + 2, ints)
            loihi_events(x, weight, undelayed, status)
            group_elements(undelayed, _v(IX, i, ints), groups, grouped)
            delay_line(grouped, _v(IX, i + 2, ints), _s(I3, c[K.SEQ], ints), _v(IX, i + 3, ints), out)


@njit(cache=True, error_model="numpy")
def run_program(steps, nodes, edges, monitors, F2, F3, P, IX, I2, I3, like, ints):
    """Run the program for ``steps`` steps (see the module docstring); everything in place."""
    count = nodes.shape[0]
    for t in range(steps):
        for q in range(count):
            c = nodes[q]
            kind = c[K.KIND]
            if kind >= K.INTEGER_KINDS:
                _fixed_point(t, c, edges, F2, F3, I2, I3, IX, like, ints)
            else:
                x0 = _port(t, edges, c[K.PORT0], c[K.PORT0_END], c[K.SCRATCH0], F2, F3, like)
                out = _output(t, c, F2, F3, like)
                if kind == K.IDENTITY:
                    _copy(x0, out)
                elif kind >= K.DENSE:
                    _projection(c, x0, out, F2, F3, P, IX, like, ints)
                else:
                    x1 = x0
                    if c[K.PORT1_END] > c[K.PORT1]:
                        x1 = _port(t, edges, c[K.PORT1], c[K.PORT1_END], c[K.SCRATCH1], F2, F3, like)
                    _neuron(c, x0, x1, out, F2, P, like)
            for m in range(c[K.MONITOR], c[K.MONITOR_END]):
                if monitors[m, 2] == K.LANE_INT:
                    _copy(_m(I2, monitors[m, 0], ints), _s(I3, monitors[m, 1], ints)[t])
                else:
                    _copy(_m(F2, monitors[m, 0], like), _s(F3, monitors[m, 1], like)[t])
        for q in range(count):
            if nodes[q, K.LAST] >= 0 and nodes[q, K.RECORD] < 0:
                if nodes[q, K.OUT_LANE] == K.LANE_INT:
                    _copy(_m(I2, nodes[q, K.OUT], ints), _m(I2, nodes[q, K.LAST], ints))
                else:
                    _copy(_m(F2, nodes[q, K.OUT], like), _m(F2, nodes[q, K.LAST], like))
