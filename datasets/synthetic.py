"""Built-in synthetic spike data (no files, no downloads), for demos, tests and smoke runs.

``RatePatterns``: each class c has a fixed random subset of "active" input channels that fire
at ``rate_high`` Hz; all other channels fire at ``rate_low`` Hz. Each sample is an independent
Poisson (Bernoulli per step) spike train with P(spike in a step) = rate * dt.

``pattern_seed`` fixes the class templates (keep it equal for training and validation sets) and
``seed`` the samples drawn from them.

Shapes: a sample is ``(spikes [steps, n_inputs] float32, label int64)``; stack samples with
``time_first`` collation to ``[steps, batch, n_inputs]`` for the Simulator.

Example::

    >>> data = RatePatterns(n_samples=256, n_inputs=40, n_classes=2, steps=100, seed=0)
    >>> x, y = data[0]          # x: [100, 40], y: 0 or 1
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["RatePatterns"]


class RatePatterns(Dataset):
    """Class-dependent Poisson rate patterns (see the module docstring). Rates in Hz, dt in s."""

    def __init__(self, n_samples: int = 256, n_inputs: int = 40, n_classes: int = 2, steps: int = 100,
                 dt: float = 1e-3, rate_low: float = 5.0, rate_high: float = 60.0,
                 active_fraction: float = 0.3, seed: int = 0, pattern_seed: int = 0):
        for name, value in [("n_samples", n_samples), ("n_inputs", n_inputs), ("n_classes", n_classes), ("steps", steps)]:
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"RatePatterns.{name} must be a positive int, got {value!r}")
        if n_classes < 2:
            raise ValueError(f"RatePatterns.n_classes must be >= 2, got {n_classes}")
        if not (0 <= rate_low * dt <= 1 and 0 <= rate_high * dt <= 1):
            raise ValueError(f"RatePatterns: rates x dt must lie in [0, 1] (rate_low={rate_low}, "
                             f"rate_high={rate_high} Hz, dt={dt} s)")
        if not 0 < active_fraction <= 1:
            raise ValueError(f"RatePatterns.active_fraction must be in (0, 1], got {active_fraction}")
        pattern_gen = torch.Generator().manual_seed(pattern_seed)
        n_active = max(1, round(active_fraction * n_inputs))
        self.templates = torch.full((n_classes, n_inputs), rate_low * dt)
        for c in range(n_classes):
            self.templates[c, torch.randperm(n_inputs, generator=pattern_gen)[:n_active]] = rate_high * dt
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, n_classes, (n_samples,), generator=gen)
        probs = self.templates[self.labels].unsqueeze(1).expand(n_samples, steps, n_inputs)
        self.spikes = (torch.rand(probs.shape, generator=gen) < probs).float()
        self.dt, self.n_classes, self.n_inputs, self.steps = dt, n_classes, n_inputs, steps

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.spikes[index], self.labels[index]

