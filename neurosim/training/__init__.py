"""Training: losses, firing-rate regularisers, (truncated) BPTT, the Trainer with checkpoints, DDP."""
__all__ = []
