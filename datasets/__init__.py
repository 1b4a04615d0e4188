"""neurosim.datasets: data read from a local root or generated (nothing downloads at run time).

* :mod:`.synthetic`: rate patterns for the CLI's training demo;
* :mod:`.digits`: scikit-learn's bundled 8x8 digits as rate, latency or delta spike trains;
* :mod:`.randman`: the random-manifold spike-timing benchmark (Zenke & Vogels 2021);
* :mod:`.graphs`: Cora and CiteSeer through PyG's Planetoid from a local root;
* :mod:`.tasks`: copy and associative-recall tasks, bAbI-style stories, N-way K-shot episodes;
* :mod:`.events`: N-MNIST, SHD, DVS Gesture and POKER-DVS through tonic from a local root, and the
  real DVS Gesture clips (``GestureClips``);
* :mod:`.shapes`: a synthetic DVS-like moving-shapes event stream (tonic structured arrays);
* :mod:`.transforms`: events to ``[T, P, H, W]`` frames (tonic's transforms) and ``pad_collate``.

The event modules import tonic on first use of one of their names, so importing
``neurosim.datasets`` stays cheap.
"""

import importlib

from .digits import Digits, load_digit_images
from .shapes import SHAPES, MovingShapes
from .randman import Randman, RandomManifold
from .synthetic import RatePatterns
from .tasks import AssociativeRecall, BabiTasks, CopyTask, Episode, EpisodeSampler, Vocabulary, sequence_collate

__all__ = ["RatePatterns", "Digits", "load_digit_images", "Randman", "RandomManifold", "CopyTask", "AssociativeRecall", "BabiTasks", "Vocabulary", "Episode", "EpisodeSampler",
           "sequence_collate", "MovingShapes", "SHAPES", "NMNIST", "SHD", "DVSGesture", "POKERDVS", "GestureClips", "EVENT_DATASETS", "read_bs2",
           "EventFrames", "frames", "pad_collate"]

_LAZY = {**{name: "events" for name in ("NMNIST", "SHD", "DVSGesture", "POKERDVS", "GestureClips", "EVENT_DATASETS",
                                         "read_bs2")},
         **{name: "transforms" for name in ("EventFrames", "frames", "pad_collate")}}


def __getattr__(name: str):
    """An event dataset or transform, importing its module (and tonic) on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
