"""neurosim.datasets: data read from a local root or generated (nothing downloads at run time).

* :mod:`.synthetic`: rate patterns for the CLI's training demo;
* :mod:`.graphs`: Cora and CiteSeer through PyG's Planetoid from a local root;
* :mod:`.tasks`: copy and associative-recall tasks, bAbI-style stories, N-way K-shot episodes.
"""

from .synthetic import RatePatterns
from .tasks import AssociativeRecall, BabiTasks, CopyTask, Episode, EpisodeSampler, Vocabulary, sequence_collate

__all__ = ["RatePatterns", "CopyTask", "AssociativeRecall", "BabiTasks", "Vocabulary", "Episode", "EpisodeSampler",
           "sequence_collate"]
