"""The numbers the compiled machine uses for node kinds, reset modes and config columns.

One place for the integers shared by the lowering (Python, :mod:`neurosim.compiled.lowering`)
and the machine (numba, :mod:`neurosim.compiled.machine`). A node of the compiled program is
one row of an int64 table ``nodes[q, column]``; the columns are named here.
"""
from __future__ import annotations

# ---------------------------------------------------------------- node kinds
LIF, CUBA_LIF, IF, LI, CUBA_LI, INTEGRATOR, ALIF, COBA_LIF = 1, 2, 3, 4, 5, 6, 7, 8
IZHIKEVICH, ADEX = 9, 10
DENSE, SPARSE, DELAY, IDENTITY = 20, 21, 22, 23
#: kinds from here on keep their state, weights and rings in the integer tables (I2, I3, IX)
INTEGER_KINDS = 30
LOIHI_CUBA, LOIHI_DENSE = 30, 31

# ---------------------------------------------------------------- reset modes (neurons.base.RESETS)
RESET_ZERO, RESET_SUBTRACT, RESET_VALUE, RESET_DELAYED = 0, 1, 2, 3
RESET_CODES = {"zero": RESET_ZERO, "subtract": RESET_SUBTRACT, "value": RESET_VALUE,
               "subtract_delayed": RESET_DELAYED}

# ---------------------------------------------------------------- columns of the node table
KIND = 0          # one of the kinds above
OUT = 1           # F2 index of the node's output buffer [batch, n_out] (this step)
LAST = 2          # F2 index of the copy of the last step's output (read by back-edges), or -1
RECORD = 3        # F3 index of the [T, batch, n_out] sequence the output is written to, or -1
PORT0 = 4         # edges[PORT0:PORT0_END] feed port 0 (summed in order)
PORT0_END = 5
PORT1 = 6         # edges of port 1 (two-port models), empty range otherwise
PORT1_END = 7
SCRATCH0 = 8      # F2 index of the buffer a port with several in-edges is summed into
SCRATCH1 = 9
STATE = 10        # F2 index of the node's first state array (its State fields, in order)
PARAM = 11        # P index of its first parameter array
INT = 12          # IX index of its first integer table
EXTRA = 13        # F2 index of its first extra 2D array (weights, group buffers)
SEQ = 14          # F3 index of its first extra 3D array (delay rings)
MONITOR = 15      # monitors[MONITOR:MONITOR_END]: (F2 source, F3 target) copied after the step
MONITOR_END = 16
FLAG0, FLAG1, FLAG2, FLAG3 = 17, 18, 19, 20
OUT_LANE = 21     # LANE_FLOAT: OUT, LAST, RECORD index F2 / F3; LANE_INT: I2 / I3
PORT0_LANE = 22   # the lane port 0 reads (its edges index F2 / F3, or I2 / I3)
PORT1_LANE = 23
COLUMNS = 24

# ---------------------------------------------------------------- lanes
# Values travel in one of two lanes: the block's float dtype, or int64 (fixed-point models: the
# integer sums of a LoihiDense, a loihi_cuba population's state).
LANE_FLOAT, LANE_INT = 0, 1

# ---------------------------------------------------------------- edge table
# edges[e] = (source kind, index, record), indices into the tables of the port's lane: SOURCE_SEQUENCE reads F3[index][t] (a sequence from
# outside the block), SOURCE_CURRENT reads F2[index] (a node of the block, this step),
# SOURCE_LAST reads F2[index] (a node of the block, the step before: a back-edge); for a
# recorded node (record = its F3 sequence) both read that sequence at t, and t - 1 for t > 0.
SOURCE_SEQUENCE, SOURCE_CURRENT, SOURCE_LAST = 0, 1, 2

# ---------------------------------------------------------------- monitor table
# monitors[m] = (source 2D index, target 3D index, lane)
