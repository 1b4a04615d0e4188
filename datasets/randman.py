"""Randman: the random-manifold spike-timing benchmark of Zenke & Vogels (2021), "The remarkable
robustness of surrogate gradient learning for instilling complex function in spiking neural
networks", Neural Computation 33(4). Generated, seeded; nothing is downloaded.

Each class ``c`` owns a random smooth map from a ``d``-dimensional latent cube to ``nb_units``
spike times (``d`` = ``dim_manifold``). For unit ``j`` and latent point ``z`` in [0, 1]^d::

    f_cj(z) = sum_{k=1..d} sum_{n=1..N} a_cjkn n^(-alpha) sin(2 pi (n b_cjkn z_k + p_cjkn))

with ``a, b, p ~ U(0, 1)`` drawn once from ``manifold_seed``: a random function whose Fourier
amplitudes fall as ``n^-alpha`` (larger ``alpha`` = smoother manifold; derivative bound
``|df/dz_k| <= 2 pi sum_n n^(1 - alpha)``). ``N`` is the smallest n with ``n^-alpha < prec``
(at most ``max_terms``). Each ``f_cj`` is rescaled to [0, 1] by its minimum and maximum over
``n_reference`` latent points drawn from ``manifold_seed`` (a property of the manifold, so sets
drawn with different ``seed`` share the same scale); values outside are clipped. A sample of
class c is a uniform latent point ``z``; unit j spikes exactly once, at step::

    k_j = min(floor(u_cj(z) * nb_steps), nb_steps - 1),    u = rescaled f in [0, 1]

Shapes: a sample is ``(spikes [nb_steps, nb_units] float32, one 1 per unit, label int64)``;
``times`` holds all spike steps ``[len, nb_units]`` int64, ``latents`` the points ``[len, d]``.
Collate with :func:`neurosim.training.data.time_first_collate` (``data.collate``) to
``[nb_steps, batch, nb_units]``. ``nb_samples`` is per class; samples are shuffled.

Example::

    >>> data = Randman(nb_classes=4, nb_units=20, nb_steps=50, dim_manifold=1, nb_samples=100)
    >>> x, y = data[0]                 # x: [50, 20], x.sum(0) == 1 everywhere; y in 0..3
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from neurosim.training.data import time_first_collate
from neurosim.validation import check_int, check_number

__all__ = ["Randman", "RandomManifold"]


class RandomManifold:
    """One smooth random map ``[0, 1]^d -> R^units`` (the equation in the module docstring).

    Draws ``a, b, p`` ``[units, d, N]`` from ``generator``; :meth:`__call__` maps latents
    ``z [M, d]`` to ``f [M, units]`` (float64)."""

    def __init__(self, units: int, dim: int, alpha: float, generator: torch.Generator,
                 prec: float = 1e-3, max_terms: int = 1000):
        n_terms = min(max_terms, int(math.floor(prec ** (-1.0 / alpha))) + 1)
        shape = (units, dim, n_terms)
        self.amp = torch.rand(shape, generator=generator, dtype=torch.float64)
        self.freq = torch.rand(shape, generator=generator, dtype=torch.float64)
        self.phase = torch.rand(shape, generator=generator, dtype=torch.float64)
        n = torch.arange(1, n_terms + 1, dtype=torch.float64)
        self.spectrum = n ** (-alpha)                           # [N]
        self.n = n

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(torch.float64)                                  # [M, d]
        out = []
        for zc in z.split(256):                                  # bounded memory: [256, units, d, N]
            arg = 2 * math.pi * (self.n * self.freq * zc[:, None, :, None] + self.phase)
            out.append((self.amp * self.spectrum * torch.sin(arg)).sum(dim=(-1, -2)))
        return torch.cat(out) if out else z.new_zeros((0, self.amp.shape[0]))      # [M, units]


class Randman(Dataset):
    """Randman spike-timing classification (see the module docstring for the construction).

    Args: ``nb_classes`` (>= 2), ``nb_units`` (neurons), ``nb_steps`` (time steps T),
    ``dim_manifold`` (latent dimension d), ``alpha`` (> 0, spectral fall-off: smoothness),
    ``nb_samples`` (per class), ``seed`` (the latent samples), ``manifold_seed`` (the manifolds:
    keep it equal for training and test sets), ``prec`` and ``max_terms`` (series length),
    ``n_reference`` (latent points used to fix each unit's time scale).
    """

    def __init__(self, nb_classes: int = 10, nb_units: int = 100, nb_steps: int = 100, dim_manifold: int = 1,
                 alpha: float = 2.0, nb_samples: int = 100, seed: int = 0, manifold_seed: int = 0,
                 prec: float = 1e-3, max_terms: int = 1000, n_reference: int = 1000):
        where = "datasets/randman.py Randman"
        self.nb_classes = check_int(nb_classes, f"{where}: nb_classes", minimum=2)
        self.nb_units = check_int(nb_units, f"{where}: nb_units", minimum=1)
        self.nb_steps = check_int(nb_steps, f"{where}: nb_steps", minimum=1)
        self.dim_manifold = check_int(dim_manifold, f"{where}: dim_manifold", minimum=1)
        self.alpha = check_number(alpha, f"{where}: alpha", positive=True)
        self.nb_samples = check_int(nb_samples, f"{where}: nb_samples", minimum=1)
        check_int(seed, f"{where}: seed", minimum=0)
        check_int(manifold_seed, f"{where}: manifold_seed", minimum=0)
        prec = check_number(prec, f"{where}: prec", positive=True, below=1.0)
        max_terms = check_int(max_terms, f"{where}: max_terms", minimum=1)
        n_reference = check_int(n_reference, f"{where}: n_reference", minimum=2)

        mgen = torch.Generator().manual_seed(manifold_seed)
        self.manifolds = [RandomManifold(self.nb_units, self.dim_manifold, self.alpha, mgen, prec, max_terms)
                          for _ in range(self.nb_classes)]
        ref = torch.rand((n_reference, self.dim_manifold), generator=mgen, dtype=torch.float64)
        values = [m(ref) for m in self.manifolds]                            # each [n_reference, units]
        self.low = torch.stack([v.min(0).values for v in values])            # [classes, units]
        span = torch.stack([v.max(0).values for v in values]) - self.low
        self.span = torch.where(span > 0, span, torch.ones_like(span))

        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(self.nb_classes).repeat_interleave(self.nb_samples)
        order = torch.randperm(len(labels), generator=gen)
        self.labels = labels[order]
        self.latents = torch.rand((len(labels), self.dim_manifold), generator=gen, dtype=torch.float64)
        self.times = torch.empty((len(labels), self.nb_units), dtype=torch.int64)
        for c in range(self.nb_classes):
            rows = self.labels == c
            self.times[rows] = self.spike_times(self.latents[rows], c)

    def spike_times(self, z: torch.Tensor, label: int) -> torch.Tensor:
        """Spike steps of class ``label`` at latents ``z [M, d]`` in [0, 1]: ``[M, nb_units]`` int64."""
        z = torch.as_tensor(z, dtype=torch.float64)
        if z.dim() != 2 or z.shape[1] != self.dim_manifold:
            raise ValueError(f"datasets/randman.py Randman.spike_times: z must be [M, {self.dim_manifold}], "
                             f"got {tuple(z.shape)}")
        check_int(label, "datasets/randman.py Randman.spike_times: label", minimum=0, maximum=self.nb_classes - 1)
        u = ((self.manifolds[label](z) - self.low[label]) / self.span[label]).clamp(0.0, 1.0)
        return torch.floor(u * self.nb_steps).clamp(max=self.nb_steps - 1).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        spikes = torch.zeros((self.nb_steps, self.nb_units), dtype=torch.float32)
        spikes[self.times[index], torch.arange(self.nb_units)] = 1.0
        return spikes, self.labels[index]

    @property
    def collate(self):
        """Time-first collate: B samples -> ``([nb_steps, B, nb_units], [B])``."""
        return time_first_collate
