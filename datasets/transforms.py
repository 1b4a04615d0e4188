"""Event-to-tensor transforms built on ``tonic.transforms``, and a padding collate for time-first batches.

:func:`frames` builds an :class:`EventFrames` callable that turns one tonic structured event
array (fields ``x``, [``y``], ``t`` in µs, ``p``) into a float tensor of frames, in this order:

1. ``denoise`` (µs): ``tonic.transforms.Denoise(filter_time)``: an event at ``(x, y, t)`` is kept
   only when one of its 4 neighbours ``(x+-1, y)``, ``(x, y+-1)`` had an event in
   ``(t - filter_time, t]`` (tonic counts every pixel as active at t = 0, so in the first
   ``filter_time`` any event with a neighbour on the sensor is kept);
2. ``time_jitter`` (µs): ``tonic.transforms.TimeJitter(std, clip_negative=True,
   sort_timestamps=True)``: ``t <- t + N(0, std^2)`` (NumPy's global generator; events with
   ``t < 0`` are dropped, then the events are sorted by time);
3. ``spatial_factor`` f: ``tonic.transforms.Downsample``: ``x <- floor(f x)``, ``y <- floor(f y)``,
   so a ``W x H`` sensor becomes ``(floor((W-1) f) + 1) x (floor((H-1) f) + 1)`` (``out_sensor_size``);
4. binning with ``tonic.transforms.ToFrame`` (events counted per polarity and pixel):

   * ``time_window`` w (µs): bins ``[k w, (k+1) w)``, ``k = 0 .. T-1``, counted from t = 0 (not
     from the first event), ``T = ceil(t_end / w)`` with ``t_end = duration`` when given (events
     with ``t >= duration`` are dropped, so every sample has the same T) else ``t_last + 1``
     (every event is kept; T varies from sample to sample: use :func:`pad_collate`);
   * ``n_time_bins`` n: tonic's own slicing: width ``w = (t_last - t_first) // n`` (integer µs),
     bins ``[t_first + k w, t_first + (k+1) w)``; the events from ``t_first + n w`` on (at least
     the last one) fall outside every bin;

5. ``binary=True`` clips the counts to 1 (one spike per pixel and bin).

The events must be sorted by ``t`` (as every recording here is). Output: ``float32`` tensor ``[T, P, H, W]`` (``[T, P, W]`` for events without a ``y`` field, as
SHD's, whose ``sensor_size`` is ``(700, 1, 1)``); ``P`` = ``sensor_size[2]``. A sample left with no event (after
denoising, say) gives zero frames of the expected shape (tonic would give ``[1, P, W, H]``).

Example::

    >>> to_frames = frames((34, 34, 2), time_window=10_000, duration=300_000, binary=True)
    >>> x = to_frames(events)                              # [30, 2, 34, 34], 0/1
    >>> loader = DataLoader(NMNIST(root, transform=to_frames), batch_size=32, collate_fn=pad_collate)
    >>> xb, yb, lengths = next(iter(loader))               # [T_max, 32, 2, 34, 34], [32], [32]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import tonic.transforms as tt
import torch
from torch.nn.utils.rnn import pad_sequence

from neurosim.validation import check_int, check_number

__all__ = ["EventFrames", "frames", "pad_collate", "check_events", "downsampled_size"]


def check_events(events, where: str) -> np.ndarray:
    """``events`` must be a 1-D NumPy structured array with fields ``x``, ``t`` and ``p`` (and
    optionally ``y``); returns it. Raises ``TypeError`` / ``ValueError`` naming what is wrong."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(f"{where}: events must be a NumPy structured array (fields x, y, t, p), "
                        f"got {type(events).__name__}")
    missing = [f for f in ("x", "t", "p") if f not in events.dtype.names]
    if missing or events.ndim != 1:
        raise ValueError(f"{where}: events must be 1-D with fields x, t, p (y optional); "
                         f"missing {missing}, shape {events.shape}")
    return events


def downsampled_size(sensor_size: Sequence[int], spatial_factor: float) -> Tuple[int, int, int]:
    """Sensor size ``(W', H', P)`` after ``x <- floor(f x)``: ``W' = floor((W - 1) f) + 1``
    (likewise H; P unchanged). ``f = 1`` returns the size itself."""
    w, h, p = sensor_size
    return (int(math.floor((w - 1) * spatial_factor)) + 1, int(math.floor((h - 1) * spatial_factor)) + 1, p)


@dataclass(frozen=True)
class EventFrames:
    """Events -> frames, as described in the module docstring; build it with :func:`frames`.

    ``sensor_size`` ``(W, H, P)`` of the input events; ``out_sensor_size`` after downsampling;
    ``frame_shape`` ``(P, H', W')`` of one output frame (``(P, W')`` for events without ``y``)."""

    sensor_size: Tuple[int, int, int]
    time_window: Optional[float] = None
    n_time_bins: Optional[int] = None
    duration: Optional[float] = None
    denoise: Optional[float] = None
    time_jitter: Optional[float] = None
    spatial_factor: float = 1.0
    binary: bool = False

    def __post_init__(self):
        where = "EventFrames"
        size = tuple(self.sensor_size) if isinstance(self.sensor_size, (tuple, list)) else None
        if size is None or len(size) != 3:
            raise ValueError(f"{where}: sensor_size must be (width, height, polarities), got {self.sensor_size!r}")
        object.__setattr__(self, "sensor_size", tuple(check_int(n, f"{where}: sensor_size", 1) for n in size))
        if (self.time_window is None) == (self.n_time_bins is None):
            raise ValueError(f"{where}: give exactly one of time_window (µs) and n_time_bins, "
                             f"got time_window={self.time_window!r}, n_time_bins={self.n_time_bins!r}")
        if self.time_window is not None:
            check_number(self.time_window, f"{where}: time_window", positive=True, unit="µs")
        else:
            check_int(self.n_time_bins, f"{where}: n_time_bins", 1)
            if self.duration is not None:
                raise ValueError(f"{where}: duration applies to time_window binning only "
                                 "(n_time_bins uses tonic's first-to-last-event span)")
        if self.duration is not None:
            check_number(self.duration, f"{where}: duration", positive=True, unit="µs")
        for name in ("denoise", "time_jitter"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), f"{where}: {name}", positive=True, unit="µs")
        check_number(self.spatial_factor, f"{where}: spatial_factor", positive=True)
        if self.spatial_factor > 1:
            raise ValueError(f"{where}: spatial_factor must be in (0, 1] (downsampling), got {self.spatial_factor}")
        if not isinstance(self.binary, bool):
            raise TypeError(f"{where}: binary must be True or False, got {self.binary!r}")

    @property
    def out_sensor_size(self) -> Tuple[int, int, int]:
        return downsampled_size(self.sensor_size, self.spatial_factor)

    @property
    def frame_shape(self) -> Tuple[int, int, int]:
        w, h, p = self.out_sensor_size
        return (p, h, w)

    @property
    def steps(self) -> Optional[int]:
        """T when every sample gets the same number of frames (``duration`` or ``n_time_bins``), else None."""
        if self.n_time_bins is not None:
            return self.n_time_bins
        return None if self.duration is None else math.ceil(self.duration / self.time_window)

    def _event_transforms(self):
        steps = []
        if self.denoise is not None:
            steps.append(tt.Denoise(filter_time=self.denoise))
        if self.time_jitter is not None:
            steps.append(tt.TimeJitter(std=self.time_jitter, clip_negative=True, sort_timestamps=True))
        if self.spatial_factor != 1.0:
            steps.append(tt.Downsample(spatial_factor=self.spatial_factor))
        return steps

    def __call__(self, events) -> torch.Tensor:
        events = check_events(events, "EventFrames")
        if self.sensor_size[2] == 1:
            events = events.copy()           # tonic's ToFrame zeroes p in place for a 1-polarity sensor
        for step in self._event_transforms():
            if len(events) == 0:
                break
            events = step(events)
        if self.time_window is not None:
            end = self.duration if self.duration is not None else (float(events["t"].max()) + 1 if len(events) else 1.0)
            events = events[events["t"] < end]
            n = math.ceil(end / self.time_window)
            to_frame = tt.ToFrame(sensor_size=self.out_sensor_size, time_window=self.time_window,
                                  start_time=0, end_time=end, include_incomplete=True)
        else:
            n = self.n_time_bins
            to_frame = tt.ToFrame(sensor_size=self.out_sensor_size, n_time_bins=self.n_time_bins)
        if len(events) == 0:
            p, h, w = self.frame_shape
            out = torch.zeros((n, p, h, w) if "y" in events.dtype.names else (n, p, w))
        else:
            out = torch.as_tensor(np.asarray(to_frame(events)), dtype=torch.float32)
            if out.shape[0] != n:            # float rounding of the window count: cut or pad to n
                out = out[:n] if out.shape[0] > n else torch.cat([out, out.new_zeros((n - out.shape[0], *out.shape[1:]))])
        return out.clamp_(max=1.0) if self.binary else out


def frames(sensor_size, *, time_window: Optional[float] = None, n_time_bins: Optional[int] = None,
           duration: Optional[float] = None, denoise: Optional[float] = None, time_jitter: Optional[float] = None,
           spatial_factor: float = 1.0, binary: bool = False) -> EventFrames:
    """An :class:`EventFrames` transform (denoise -> time jitter -> downsample -> bin -> clip), see
    the module docstring for every step. Times are in µs. Raises ``ValueError`` for a bad setting
    (both or neither of ``time_window`` / ``n_time_bins``, a non-positive time, ``spatial_factor``
    outside (0, 1]).

    Shapes: events ``[N]`` -> ``[T, P, H', W']`` float32 (``[T, P, W']`` for a 1-D sensor)."""
    return EventFrames(sensor_size=sensor_size, time_window=time_window, n_time_bins=n_time_bins, duration=duration,
                       denoise=denoise, time_jitter=time_jitter, spatial_factor=spatial_factor, binary=binary)


def pad_collate(batch, pad_value: float = 0.0):
    """Collate ``(x [T_i, ...], label)`` samples of different lengths into a time-first batch.

    Every ``x`` is padded at the end of time with ``pad_value`` up to ``T_max = max_i T_i``
    (``torch.nn.utils.rnn.pad_sequence``): ``out[t, i] = x_i[t]`` for ``t < T_i``, else
    ``pad_value``. Returns ``(inputs [T_max, B, ...] float32, labels [B] int64, lengths [B]
    int64)`` with ``lengths[i] = T_i``. Use ``functools.partial(pad_collate, pad_value=v)`` for
    another pad value. Raises ``ValueError`` for an empty batch, a sample with no time step, or
    samples whose shapes after the time axis differ, naming the sample."""
    if not isinstance(batch, (list, tuple)) or not batch:
        raise ValueError("pad_collate: batch must be a non-empty list of (frames, label) pairs")
    xs, labels = [], []
    for i, sample in enumerate(batch):
        if not isinstance(sample, (list, tuple)) or len(sample) != 2:
            raise ValueError(f"pad_collate: sample {i} must be a (frames, label) pair, got {type(sample).__name__}")
        x = torch.as_tensor(np.asarray(sample[0]) if isinstance(sample[0], np.ndarray) else sample[0])
        if x.dim() < 1 or x.shape[0] < 1:
            raise ValueError(f"pad_collate: sample {i} has frames of shape {tuple(x.shape)}; need [T >= 1, ...]")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise ValueError(f"pad_collate: sample {i} has frames [T, {', '.join(map(str, x.shape[1:]))}], "
                             f"sample 0 [T, {', '.join(map(str, xs[0].shape[1:]))}]; only T may differ")
        xs.append(x.to(torch.float32))
        labels.append(int(sample[1]))
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64)
    inputs = pad_sequence(xs, batch_first=False, padding_value=float(pad_value))
    return inputs, torch.tensor(labels, dtype=torch.int64), lengths
