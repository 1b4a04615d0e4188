"""Projections: the nodes that carry spikes between populations (dense, sparse, conv, delays)."""
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d, conv_output_size
from .conv1d import Conv1d
from .delay import (Delay, DelayedProjection, DelayState, SynapticDelay, check_delay, delay_initial_state,
                    delay_sequence, delay_step)
from .dense import Dense, event_driven_linear
from .sparse import Sparse, sparse_linear

__all__ = ["Dense", "event_driven_linear", "Sparse", "sparse_linear", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d",
           "Flatten", "conv_output_size", "Delay", "DelayState", "DelayedProjection", "SynapticDelay",
           "check_delay", "delay_initial_state", "delay_step", "delay_sequence"]
