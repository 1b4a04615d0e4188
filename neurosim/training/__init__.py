"""Training: losses, firing-rate regularisers, (truncated) BPTT, the Trainer with checkpoints, DDP.

Example::

    >>> from neurosim.training import Trainer, membrane_cross_entropy
    >>> trainer = Trainer(sim, torch.optim.Adam(sim.parameters(), 1e-3),
    ...                   lambda v, y: membrane_cross_entropy(v, y), seed=0)
    >>> trainer.fit(trainer.make_loader(dataset, 32), epochs=5)
"""
from .bptt import BPTTResult, bptt_step, detach_state, tbptt_step
from .data import ShardedBatchSampler, make_loader, time_first_collate
from .distributed import (DistributedContext, cleanup, is_distributed, is_main_process, setup_distributed,
                          unwrap, wrap_ddp)
from .losses import (classification_accuracy, first_spike_cross_entropy, first_spike_times,
                     membrane_cross_entropy, one_hot_counts, spike_count_cross_entropy, spike_count_mse,
                     spike_counts, LOSSES, get_loss)
from .regularizers import (firing_rates, population_rate_penalties, rate_l2_penalty, rate_upper_bound_penalty,
                           spike_l1_penalty)
from .trainer import Trainer, atomic_save

__all__ = [
    # losses
    "spike_counts", "spike_count_cross_entropy", "membrane_cross_entropy", "spike_count_mse", "one_hot_counts",
    "first_spike_times", "first_spike_cross_entropy", "classification_accuracy", "LOSSES", "get_loss",
    # regularisers
    "firing_rates", "rate_l2_penalty", "rate_upper_bound_penalty", "spike_l1_penalty",
    "population_rate_penalties",
    # BPTT
    "detach_state", "tbptt_step", "bptt_step", "BPTTResult",
    # data
    "ShardedBatchSampler", "make_loader", "time_first_collate",
    # trainer
    "Trainer", "atomic_save",
    # distributed
    "DistributedContext", "setup_distributed", "cleanup", "wrap_ddp", "unwrap", "is_distributed",
    "is_main_process",
]
