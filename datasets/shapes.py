"""Moving shapes: a synthetic DVS-like event stream (no download), as tonic structured arrays.

A small event camera of ``W x H`` pixels and two polarities (``sensor_size = (W, H, 2)``, tonic's
convention) watches one bright shape of class ``c`` moving over a dark background. Everything
below is drawn from a NumPy generator seeded by ``(seed, index)``, so sample ``i`` is the same
in any order, in any process, and for any ``n_samples``; its label is ``c = i mod K``
(``K = len(shapes)``: balanced classes).

Scene (pixel units, time in seconds, ``t_k = k * dt_render``, ``k = 0..N``, ``N = duration / dt_render``)::

    centre    m(t) = m_0 + u t, reflected at the walls [r, W - 1 - r] x [r, H - 1 - r]
    m_0 ~ U(wall box),   u = s (cos phi, sin phi),   s ~ U(speed_min, speed_max) px/s,  phi ~ U(0, 2 pi)
    size      r ~ U(size_min, size_max) px (half-width);   orientation: axis-aligned
    coverage  a(q, t) = sigmoid(-d_c(q - m(t)) / edge_width)        (anti-aliased edge)
    intensity I(q, t) = I_bg + (I_fg - I_bg) a(q, t)                 (bg, fg: background, foreground)

with the signed distances ``d_c(x, y)`` (negative inside; ``w = r / 3`` the width of the arms)::

    square  max(|x|, |y|) - r             disc   sqrt(x^2 + y^2) - r
    cross   min(max(|x| - r, |y| - w), max(|x| - w, |y| - r))
    bar     max(|x| - r, |y| - w)         ring   |sqrt(x^2 + y^2) - 2r/3| - w/2

DVS pixel (Lichtsteiner, Posch & Delbruck 2008): each pixel ``q`` keeps a reference
log-intensity ``R_q`` (set to ``L_q(0)`` at the start: the sensor is adapted to the first image)
and emits an event each time ``L = log I`` moves a contrast threshold ``C_q`` away from it::

    C_q = C (1 + threshold_sigma * n_q),   n_q ~ N(0, 1)   (pixel mismatch; floored at C / 10)
    between t_{k-1} and t_k:  while L_q(t_k) - R_q >= C_q:  ON  event, R_q += C_q
                              while R_q - L_q(t_k) >= C_q:  OFF event, R_q -= C_q

The ``j``-th event of a step is stamped where the linear interpolation of ``L`` between
``t_{k-1}`` and ``t_k`` crosses its level ``R + j C_q`` (resp. ``R - j C_q``). Sensor noise:
background-activity events, a Poisson process of ``noise_rate`` Hz per pixel, uniform in time and
of random polarity. Timestamps are integer microseconds in ``[0, duration)``, sorted.

Events: a structured array with fields ``x, y, t, p`` (int64 each, tonic's N-MNIST dtype
:data:`DTYPE`; ``p = 1`` ON, ``0`` OFF), built by ``tonic.io.make_structured_array``, so tonic's
transforms apply (``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)`` gives
``[T, 2, H, W]`` counts).

Shapes: a sample is ``(events [n_events] structured, label int)``, or ``(transform(events), label)``.

Example::

    >>> data = MovingShapes(100, sensor_size=(32, 32, 2), duration=100_000, seed=0,
    ...                     transform=tonic.transforms.ToFrame((32, 32, 2), n_time_bins=10))
    >>> frames, label = data[0]         # frames [10, 2, 32, 32] counts; label in 0..3 ("square"...)
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from torch.utils.data import Dataset

from neurosim.validation import check_int, check_number

__all__ = ["MovingShapes", "SHAPES", "DTYPE", "signed_distance"]

SHAPES = ("square", "disc", "cross", "bar", "ring")

#: tonic's N-MNIST event dtype: x, y, t (microseconds), p (1 = ON, 0 = OFF).
DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])

_WHERE = "datasets/shapes.py MovingShapes"


def signed_distance(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """``d_c(x, y)`` of the module docstring (pixels; < 0 inside) for half-size ``r``."""
    w = r / 3.0
    ax, ay = np.abs(x), np.abs(y)
    if shape == "square":
        return np.maximum(ax, ay) - r
    if shape == "disc":
        return np.hypot(x, y) - r
    if shape == "cross":
        return np.minimum(np.maximum(ax - r, ay - w), np.maximum(ax - w, ay - r))
    if shape == "bar":
        return np.maximum(ax - r, ay - w)
    if shape == "ring":
        return np.abs(np.hypot(x, y) - 2.0 * r / 3.0) - w / 2.0
    raise ValueError(f"datasets/shapes.py signed_distance: shape must be one of {list(SHAPES)}, got {shape!r}")


def _reflect(p: np.ndarray, low: float, high: float) -> np.ndarray:
    """Positions of a point bouncing between ``low`` and ``high`` (triangle wave)."""
    span = high - low
    if span <= 0:
        return np.full_like(p, low)
    q = np.mod(p - low, 2.0 * span)
    return low + np.where(q > span, 2.0 * span - q, q)


class MovingShapes(Dataset):
    """Moving-shapes event streams (module docstring for the generative model).

    Args: ``n_samples``; ``sensor_size`` ``(W, H, 2)``; ``duration`` in microseconds; ``seed``;
    ``transform`` (callable on the structured events, e.g. a tonic transform); ``shapes`` (class
    names from :data:`SHAPES`, label = position); ``dt_render`` [us] rendering step; ``size``
    ``(min, max)`` half-size [px]; ``speed`` ``(min, max)`` [px/s]; ``contrast_threshold`` C (log
    units); ``threshold_sigma`` (relative pixel mismatch); ``noise_rate`` [Hz per pixel];
    ``intensity`` ``(I_bg, I_fg)`` (positive); ``edge_width`` [px]."""

    def __init__(self, n_samples: int, sensor_size: Tuple[int, int, int] = (32, 32, 2), duration: int = 100_000,
                 seed: int = 0, transform: Optional[Callable] = None,
                 shapes: Sequence[str] = ("square", "disc", "cross", "bar"), dt_render: int = 1000,
                 size: Tuple[float, float] = (4.0, 7.0), speed: Tuple[float, float] = (100.0, 250.0),
                 contrast_threshold: float = 0.25, threshold_sigma: float = 0.05, noise_rate: float = 0.5,
                 intensity: Tuple[float, float] = (0.2, 1.0), edge_width: float = 0.5):
        self.n_samples = check_int(n_samples, f"{_WHERE}: n_samples", minimum=1)
        if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) != 3:
            raise ValueError(f"{_WHERE}: sensor_size must be (width, height, 2), got {sensor_size!r}")
        w = check_int(sensor_size[0], f"{_WHERE}: sensor_size width", minimum=4)
        h = check_int(sensor_size[1], f"{_WHERE}: sensor_size height", minimum=4)
        check_int(sensor_size[2], f"{_WHERE}: sensor_size polarities", minimum=2, maximum=2)
        self.sensor_size = (w, h, 2)
        self.duration = check_int(duration, f"{_WHERE}: duration (microseconds)", minimum=1)
        self.seed = check_int(seed, f"{_WHERE}: seed", minimum=0)
        if transform is not None and not callable(transform):
            raise TypeError(f"{_WHERE}: transform must be callable or None, got {type(transform).__name__}")
        self.transform = transform
        if isinstance(shapes, str) or len(shapes) < 2 or len(set(shapes)) != len(shapes) \
                or any(s not in SHAPES for s in shapes):
            raise ValueError(f"{_WHERE}: shapes must be at least 2 distinct names from {list(SHAPES)}, "
                             f"got {shapes!r}")
        self.shapes = tuple(shapes)
        self.dt_render = check_int(dt_render, f"{_WHERE}: dt_render (microseconds)", minimum=1,
                                   maximum=self.duration)
        self.size = self._range(size, "size", w, h)
        self.speed = self._range(speed, "speed")
        self.contrast_threshold = check_number(contrast_threshold, f"{_WHERE}: contrast_threshold", positive=True)
        self.threshold_sigma = check_number(threshold_sigma, f"{_WHERE}: threshold_sigma", nonnegative=True)
        self.noise_rate = check_number(noise_rate, f"{_WHERE}: noise_rate", nonnegative=True, unit="Hz")
        if not isinstance(intensity, (tuple, list)) or len(intensity) != 2:
            raise ValueError(f"{_WHERE}: intensity must be (background, foreground), got {intensity!r}")
        self.intensity = tuple(check_number(v, f"{_WHERE}: intensity", positive=True) for v in intensity)
        self.edge_width = check_number(edge_width, f"{_WHERE}: edge_width", positive=True)

    @staticmethod
    def _range(value, name: str, *fits: int) -> Tuple[float, float]:
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{_WHERE}: {name} must be (min, max), got {value!r}")
        low = check_number(value[0], f"{_WHERE}: {name} min", nonnegative=True)
        high = check_number(value[1], f"{_WHERE}: {name} max", nonnegative=True)
        if high < low or (name == "size" and (low <= 0 or 2 * high + 2 > min(fits))):
            raise ValueError(f"{_WHERE}: {name} must be 0 < min <= max"
                             + (f" with 2 max + 2 <= {min(fits)} (the sensor)" if fits else "") + f", got {value!r}")
        return low, high

    @property
    def num_classes(self) -> int:
        return len(self.shapes)

    def __len__(self) -> int:
        return self.n_samples

    def label(self, index: int) -> int:
        """Class of sample ``index``: ``index mod len(shapes)``."""
        return index % len(self.shapes)

    def __getitem__(self, index):
        if not isinstance(index, (int, np.integer)) or not -self.n_samples <= index < self.n_samples:
            raise IndexError(f"{_WHERE}: index {index!r} out of range for {self.n_samples} samples")
        index = int(index) % self.n_samples
        events = self.events(index)
        label = self.label(index)
        return (self.transform(events) if self.transform is not None else events), label

    def scene(self, index: int, rng: np.random.Generator):
        """Draw the motion of sample ``index``: ``(centres [N + 1, 2] px, r px)`` at ``t_k``."""
        w, h, _ = self.sensor_size
        r = rng.uniform(*self.size)
        low, high = np.array([r, r]), np.array([w - 1 - r, h - 1 - r])
        m0 = rng.uniform(low, high)
        phi = rng.uniform(0.0, 2.0 * np.pi)
        u = rng.uniform(*self.speed) * np.array([np.cos(phi), np.sin(phi)])
        t = np.arange(self.duration // self.dt_render + 1) * (self.dt_render * 1e-6)        # seconds
        path = m0 + t[:, None] * u
        centres = np.stack([_reflect(path[:, i], low[i], high[i]) for i in range(2)], axis=1)
        return centres, r

    def log_intensity(self, index: int, centres: np.ndarray, r: float) -> np.ndarray:
        """``L(q, t_k) = log I`` ``[N + 1, H, W]`` of the shape of sample ``index`` on ``centres``."""
        w, h, _ = self.sensor_size
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        d = signed_distance(self.shapes[self.label(index)], xs[None] - centres[:, 0, None, None],
                            ys[None] - centres[:, 1, None, None], r)
        cover = 0.5 * (1.0 + np.tanh(-d / (2.0 * self.edge_width)))                    # sigmoid(-d / width)
        bg, fg = self.intensity
        return np.log(bg + (fg - bg) * cover)

    def events(self, index: int) -> np.ndarray:
        """The structured events of sample ``index`` (module docstring), sorted by ``t``."""
        import tonic
        rng = np.random.default_rng([self.seed, index])
        centres, r = self.scene(index, rng)
        logi = self.log_intensity(index, centres, r)                                    # [N + 1, H, W]
        w, h, _ = self.sensor_size
        c = np.maximum(self.contrast_threshold * (1.0 + self.threshold_sigma * rng.standard_normal((h, w))),
                       self.contrast_threshold / 10.0)
        # R = R_0 + C q: the reference moves by whole thresholds; q_k = q_{k-1} + trunc(z_k - q_{k-1})
        z = (logi - logi[0]) / c                                                        # [N + 1, H, W]
        q = np.zeros_like(z)
        for k in range(1, z.shape[0]):
            q[k] = q[k - 1] + np.trunc(z[k] - q[k - 1])
        dq = np.diff(q, axis=0).astype(np.int64)                                        # signed events per step
        ik, iy, ix = np.nonzero(dq)
        counts = np.abs(dq[ik, iy, ix])
        sign = np.repeat(np.sign(dq[ik, iy, ix]), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        j = np.arange(1, counts.sum() + 1) - starts                                      # j-th event of its step
        pk, py, px = (np.repeat(v, counts) for v in (ik, iy, ix))
        level = q[pk, py, px] + sign * j                                                # crossed level, in C
        prev, now = z[pk, py, px], z[pk + 1, py, px]
        change = now - prev
        frac = np.where(change != 0, (level - prev) / np.where(change != 0, change, 1.0), 1.0)
        xs, ys = [px], [py]
        ts, ps = [(pk + np.clip(frac, 0.0, 1.0)) * self.dt_render], [(sign > 0).astype(np.int64)]
        n_noise = rng.poisson(self.noise_rate * w * h * self.duration * 1e-6)
        xs.append(rng.integers(0, w, n_noise)), ys.append(rng.integers(0, h, n_noise))
        ts.append(rng.uniform(0.0, self.duration, n_noise)), ps.append(rng.integers(0, 2, n_noise))
        t = np.minimum(np.floor(np.concatenate(ts)).astype(np.int64), self.duration - 1)
        order = np.argsort(t, kind="stable")
        x, y, p = (np.concatenate(v).astype(np.int64)[order] for v in (xs, ys, ps))
        return tonic.io.make_structured_array(x, y, t[order], p, dtype=DTYPE)
