"""DDP worker for tests/training/test_distributed.py (launched with torchrun, 2 processes, gloo).

Each rank trains the tiny classifier on its half of every global batch and writes its final
weights (and the batch sizes it saw) to ``OUT/rank{r}.pt``. ``train(...)`` with the defaults and
``world_size=1`` is the single-process reference the test compares against.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import build_classifier, poisson_two_class  # noqa: E402

from neurosim.training import (Trainer, atomic_save, cleanup, membrane_cross_entropy,  # noqa: E402
                               setup_distributed, wrap_ddp)

GLOBAL_BATCH, SAMPLES, EPOCHS = 16, 48, 2


def loss_fn(v, y):
    return membrane_cross_entropy(v, y, mode="max")


def train(model, sim):
    """Fit ``model`` (the simulator or its DDP wrapper); returns the per-step local batch sizes."""
    sizes = []

    def recording_loss(v, y):
        sizes.append(int(v.shape[1]))
        return loss_fn(v, y)

    opt = torch.optim.SGD(sim.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, opt, recording_loss, seed=5, progress=False)
    trainer.fit(trainer.make_loader(poisson_two_class(n=SAMPLES, seed=2), GLOBAL_BATCH), epochs=EPOCHS)
    return sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ctx = setup_distributed()
    try:
        sim = build_classifier(seed=0)
        model = wrap_ddp(sim, ctx)
        sizes = train(model, sim)
        state = {k: v.detach().cpu() for k, v in sim.state_dict().items()}
        atomic_save({"weights": state, "batch_sizes": sizes, "world_size": ctx.world_size,
                     "backend": ctx.backend}, os.path.join(args.out, f"rank{ctx.rank}.pt"))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
