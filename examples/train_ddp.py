"""Distributed data-parallel training with torchrun (gloo on CPU, nccl on GPU).

    torchrun --nproc_per_node=2 examples/train_ddp.py --epochs 3
    python examples/train_ddp.py                      # the same run in one process

Each rank builds the same Dense -> LIF -> Dense -> LI network on built-in Poisson rate patterns,
takes its shard of every global batch (the loss is a mean over the rank's shard, so DDP's gradient
averaging gives the global-batch gradient) and rank 0 checkpoints each epoch. The result matches
the single-process run on the same global batch (tests/training/test_distributed.py checks this).
"""
import argparse
import os

import torch

import neurosim as ns
from neurosim.datasets import RatePatterns
from neurosim.training import Trainer, cleanup, is_main_process, membrane_cross_entropy, setup_distributed, wrap_ddp


def build(n_in=40, hidden=64, classes=3, seed=0) -> ns.Simulator:
    gen = torch.Generator().manual_seed(seed)
    g = ns.Graph.sequential(
        n_in,
        ("fc1", ns.Dense(n_in, hidden, weight=torch.randn(hidden, n_in, generator=gen) * 1.2)),
        ("hidden", ns.Population("lif", hidden, ns.LIFParams(tau_mem=10e-3, v_threshold=0.5))),
        ("fc2", ns.Dense(hidden, classes, weight=torch.randn(classes, hidden, generator=gen) * 0.5)),
        ("out", ns.Population("li", classes, ns.LIParams(tau_mem=20e-3))),
    )
    return ns.Simulator(g, dt=1e-3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (split among ranks)")
    parser.add_argument("--checkpoints", default="out/ddp_checkpoints")
    args = parser.parse_args(argv)
    ctx = setup_distributed() if "WORLD_SIZE" in os.environ else None    # set by torchrun
    try:
        sim = build()
        model = wrap_ddp(sim, ctx) if ctx is not None else sim
        trainer = Trainer(model, torch.optim.Adam(sim.parameters(), 1e-2),
                          lambda v, y: membrane_cross_entropy(v, y, mode="max"),
                          seed=0, checkpoint_dir=args.checkpoints, progress=is_main_process())
        data = dict(n_inputs=40, n_classes=3, steps=60, pattern_seed=0)
        train = trainer.make_loader(RatePatterns(n_samples=384, seed=1, **data), args.batch_size)
        val = trainer.make_loader(RatePatterns(n_samples=96, seed=2, **data), args.batch_size, shuffle=False)
        history = trainer.fit(train, epochs=args.epochs, val_loader=val)
        if is_main_process():
            where = f"{ctx.world_size} processes ({ctx.backend})" if ctx else "1 process"
            print(f"{where}: final {history[-1]}")
    finally:
        if ctx is not None:
            cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
