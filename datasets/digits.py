"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes) as spike trains.

No download: the images ship inside scikit-learn (``sklearn.datasets.load_digits``). Pixel values
(integers 0..16) are scaled to intensities ``x = pixel / 16`` in [0, 1]. The train/test split is
stratified by class and fixed by ``seed`` (``sklearn.model_selection.train_test_split``), so
``Digits("train", seed=s)`` and ``Digits("test", seed=s)`` never share an image.

Encodings (all through :mod:`neurosim.coding`; ``T`` = ``steps``):

* ``"rate"``: :func:`~neurosim.coding.poisson_encode`, rate ``x * max_rate`` Hz, step ``dt`` s,
  so P(spike in a step) = ``x * max_rate * dt``. Sample ``i`` draws its spikes from a generator
  seeded with ``(seed, i)``: the same index always gives the same spikes, in any order.
  Shape ``[T, 1, 8, 8]``.
* ``"latency"``: :func:`~neurosim.coding.latency_encode` (linear): one spike per pixel at step
  ``round((1 - x)(T - 1))``, pixels with ``x = 0`` stay silent. Shape ``[T, 1, 8, 8]``.
* ``"delta"``: :func:`~neurosim.coding.delta_encode` over a *scan* of the image. The time axis is
  the scan position: with ``scan="rows"`` a line sensor of 8 pixels (one per column) sweeps the
  image from the top row (t = 0) to the bottom row (t = T - 1); the row seen at step t is the
  image linearly interpolated at row position ``7 t / (T - 1)`` (``T = 8`` gives the rows
  themselves). The reference starts at 0 (a blank sensor), so the first row emits ON events for
  its ink. ``scan="cols"`` sweeps the columns left to right instead (the sensor is one column).
  Shape ``[T, 2, 8]``: channel 0 = ON counts, 1 = OFF counts, then the 8 sensor pixels.
* ``"image"``: the static intensities ``[1, 8, 8]`` for conventional models (no time axis).

``flatten=True`` flattens everything after the time axis (``[T, 64]``, ``[T, 16]``, ``[64]``).

Batches: ``DataLoader(data, batch_size=B, collate_fn=data.collate)`` gives time-first inputs
``[T, B, ...]`` (``"image"``: ``[B, 1, 8, 8]``) and int64 labels ``[B]``.

Example::

    >>> train = Digits("train", encoding="rate", steps=20, max_rate=200.0, dt=1e-3)
    >>> x, y = train[0]                     # x: [20, 1, 8, 8] float32 0/1, y: int64 in 0..9
    >>> loader = torch.utils.data.DataLoader(train, batch_size=32, collate_fn=train.collate)
    >>> xb, yb = next(iter(loader))         # xb: [20, 32, 1, 8, 8], yb: [32]
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from neurosim.coding import delta_encode, latency_encode, poisson_encode
from neurosim.training.data import time_first_collate
from neurosim.validation import check_choice, check_int, check_number

__all__ = ["Digits", "load_digit_images"]

ENCODINGS = ("rate", "latency", "delta", "image")


def load_digit_images():
    """All 1797 bundled images: ``(x [1797, 8, 8] float32 in [0, 1], y [1797] int64)``, x = pixel / 16."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:        # pragma: no cover - sklearn is a dependency of the project
        raise ImportError("datasets/digits.py needs scikit-learn (pip install scikit-learn), "
                          "whose bundled load_digits holds the images") from err
    bunch = load_digits()
    x = torch.as_tensor(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    y = torch.as_tensor(np.asarray(bunch.target, dtype=np.int64))
    return x, y


class Digits(Dataset):
    """The 8x8 digits, split and encoded as described in the module docstring.

    Args: ``split`` "train" | "test"; ``encoding`` "rate" | "latency" | "delta" | "image";
    ``steps`` T (time steps; >= 2 for "delta"); ``test_fraction`` share of each class held out;
    ``seed`` fixes the split and the Poisson spikes; ``max_rate`` [Hz] and ``dt`` [s] for "rate";
    ``delta_threshold`` (intensity units) and ``scan`` "rows" | "cols" for "delta"; ``flatten``.
    """

    def __init__(self, split: str = "train", encoding: str = "rate", steps: int = 20, test_fraction: float = 0.2,
                 seed: int = 0, max_rate: float = 200.0, dt: float = 1e-3, delta_threshold: float = 0.1,
                 scan: str = "rows", flatten: bool = False):
        where = "datasets/digits.py Digits"
        check_choice(split, ("train", "test"), f"{where}: split")
        check_choice(encoding, ENCODINGS, f"{where}: encoding")
        check_choice(scan, ("rows", "cols"), f"{where}: scan")
        self.steps = check_int(steps, f"{where}: steps", minimum=2 if encoding == "delta" else 1)
        test_fraction = check_number(test_fraction, f"{where}: test_fraction", positive=True, below=1.0)
        self.seed = check_int(seed, f"{where}: seed", minimum=0)
        self.max_rate = check_number(max_rate, f"{where}: max_rate", nonnegative=True, what="rate", unit="Hz")
        self.dt = check_number(dt, f"{where}: dt", positive=True, what="time step", unit="s")
        self.delta_threshold = check_number(delta_threshold, f"{where}: delta_threshold", positive=True)
        if encoding == "rate" and self.max_rate * self.dt > 1.0:
            raise ValueError(f"{where}: max_rate * dt = {self.max_rate * self.dt:g} > 1 (at most one spike "
                             f"per step; max_rate={self.max_rate:g} Hz, dt={self.dt:g} s)")
        from sklearn.model_selection import train_test_split
        images, labels = load_digit_images()
        index = np.arange(len(labels))
        train_idx, test_idx = train_test_split(index, test_size=test_fraction, random_state=self.seed,
                                               stratify=labels.numpy())
        keep = torch.as_tensor(np.sort(train_idx if split == "train" else test_idx))
        self.indices = keep                       # rows of load_digit_images() in this split
        self.images, self.labels = images[keep], labels[keep]
        self.split, self.encoding, self.scan, self.flatten = split, encoding, scan, bool(flatten)
        self.n_classes = 10

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, index: int) -> torch.Tensor:
        """The encoded sample ``index`` (shapes in the module docstring)."""
        x = self.images[index]                                   # [8, 8]
        if self.encoding == "image":
            out = x.unsqueeze(0)                                 # [1, 8, 8]
        elif self.encoding == "rate":
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.indices[index]))
            out = poisson_encode(x.view(1, 1, 8, 8), self.steps, self.dt, max_rate=self.max_rate,
                                 generator=gen)[:, 0]            # [T, 1, 8, 8]
        elif self.encoding == "latency":
            out = latency_encode(x.view(1, 1, 8, 8), self.steps)[:, 0]
        else:
            out = delta_encode(self.scan_signal(x), self.delta_threshold, reference=0.0)[:, 0]   # [T, 8, 2]
            out = out.permute(0, 2, 1).contiguous()              # [T, 2, 8]
        if not self.flatten:
            return out
        return out.flatten() if self.encoding == "image" else out.flatten(1)

    def scan_signal(self, x: torch.Tensor) -> torch.Tensor:
        """The scanned line sensor for "delta": image ``[8, 8]`` -> signal ``[T, 1, 8]``, row (or
        column) position ``7 t / (T - 1)`` at step t, linearly interpolated between lines."""
        lines = x if self.scan == "rows" else x.t()              # [line position, sensor pixel]
        if self.steps == lines.shape[0]:
            sig = lines
        else:
            sig = F.interpolate(lines.t().unsqueeze(0), size=self.steps, mode="linear",
                                align_corners=True)[0].t()       # [T, 8]
        return sig.unsqueeze(1)

    def __getitem__(self, index):
        return self.encode(index), self.labels[index]

    @property
    def collate(self):
        """Collate for a ``DataLoader``: time-first ``[T, B, ...]`` for spike encodings,
        ``[B, ...]`` for ``"image"``."""
        return default_collate if self.encoding == "image" else time_first_collate
