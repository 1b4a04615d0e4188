"""neurosim.datasets: data read from a local root or generated (nothing downloads at run time).

* :mod:`.synthetic`: rate patterns for the CLI's training demo;
* :mod:`.digits`: scikit-learn's bundled 8x8 digits as rate, latency or delta spike trains;
* :mod:`.randman`: the random-manifold spike-timing benchmark (Zenke & Vogels 2021);
* :mod:`.graphs`: Cora and CiteSeer through PyG's Planetoid from a local root;
* :mod:`.tasks`: copy and associative-recall tasks, bAbI-style stories, N-way K-shot episodes.
"""

from .digits import Digits, load_digit_images
from .randman import Randman, RandomManifold
from .synthetic import RatePatterns
from .tasks import AssociativeRecall, BabiTasks, CopyTask, Episode, EpisodeSampler, Vocabulary, sequence_collate

__all__ = ["RatePatterns", "Digits", "load_digit_images", "Randman", "RandomManifold", "CopyTask", "AssociativeRecall", "BabiTasks", "Vocabulary", "Episode", "EpisodeSampler",
           "sequence_collate"]
