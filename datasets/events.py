"""Event-camera and spiking-audio datasets through tonic 1.7, read from a local root, never downloaded.

Each class is a thin subclass of the tonic dataset of the same name (tonic builds the folder
``<root>/<ClassName>`` from the class name, so the names are kept). Only tonic's existence check
changes: tonic downloads whenever its check fails (it also wants the original archives and, for
N-MNIST, at least 10,000 files); here a missing or incomplete root raises
:class:`MissingDatasetError` (a ``FileNotFoundError``) that names the expected path and layout,
where to obtain the files and whom to cite. Nothing is fetched unless ``download=True`` is passed
explicitly, which hands over to tonic's own download (and its own checks).

=============  ===========================================================  ============  =======
class          layout under ``root`` (as tonic extracts it)                  sensor_size   classes
=============  ===========================================================  ============  =======
NMNIST         ``NMNIST/{Train,Test}/<digit>/<index>.bin`` (5-byte events)   (34, 34, 2)   10
SHD            ``SHD/shd_{train,test}.h5`` (spikes/times [s], spikes/units)  (700, 1, 1)   20
DVSGesture     ``DVSGesture/ibmGesture{Train,Test}/user<NN>_<light>/<c>.npy``  (128, 128, 2) 11
POKERDVS       ``POKERDVS/pips_{train,test}/<cl|he|di|sp>/*.npy``            (35, 35, 2)   4
GestureClips   ``<root>/<k>.bs2``, k = 1..10 (SLAYER's 1.45 s DVS Gesture)  (128, 128, 2) 10
=============  ===========================================================  ============  =======

Samples are ``(events, target)`` with ``events`` a tonic structured array (fields ``x``, ``y``
(not SHD), ``t`` in µs, ``p``) and ``target`` an int class index; ``transform`` is applied to the
events (see :mod:`neurosim.datasets.transforms`).

The N-MNIST byte format (``.bin``, and SLAYER's ``.bs2``) stores each event in 40 bits,
big-endian: byte 0 = x, byte 1 = y, bit 7 of byte 2 = polarity (1 = ON), bits 22..0 of bytes
2..4 = timestamp in µs; tonic's ``read_mnist_file`` decodes it.

Example::

    >>> test = NMNIST("../shared/data/events/nmnist", train=False)     # 100 real recordings
    >>> events, label = test[0]            # events["x"], ["y"] in 0..33, ["t"] in µs, ["p"] 0/1
    >>> clips = GestureClips("../shared/data/events/dvsgesture/slayer_bs2_1450ms")
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import tonic

from .graphs import MissingDatasetError

__all__ = ["NMNIST", "SHD", "DVSGesture", "POKERDVS", "GestureClips", "read_bs2", "BS2_DTYPE",
           "MissingDatasetError", "EVENT_DATASETS"]

#: Field order of :func:`read_bs2` (tonic's ``read_mnist_file`` fills the fields in the order x, y, t, p).
BS2_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])

_NEVER = ("neurosim never downloads; pass download=True to let tonic fetch the files "
          "(network access, several hundred MB)")


class _LocalRoot:
    """Mix-in for a tonic dataset: replace tonic's download-on-missing with a clear error.

    A subclass sets ``SOURCE`` (where the files come from), ``CITATION`` and implements
    ``_layout_problem()`` (``None`` when the split is complete, else what is missing)."""

    SOURCE = ""
    CITATION = ""
    LAYOUT = ""

    def _init_local(self, root, download: bool):
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"{type(self).__name__}: root must be a path (str or os.PathLike), got {type(root).__name__}")
        if not isinstance(download, bool):
            raise TypeError(f"{type(self).__name__}: download must be True or False, got {download!r}")
        self._allow_download = download
        return os.fspath(root)

    def _check_exists(self) -> bool:
        problem = self._layout_problem()
        if problem is None:
            return True
        if getattr(self, "_allow_download", False):
            return super()._check_exists()          # tonic's own check, then its download
        raise MissingDatasetError(
            f"{type(self).__name__}: {problem}. Expected layout under root: {self.LAYOUT}. "
            f"Obtain the files from {self.SOURCE} (cite {self.CITATION}); {_NEVER}")

    def download(self) -> None:
        if not getattr(self, "_allow_download", False):          # never reached: _check_exists raises
            raise MissingDatasetError(f"{type(self).__name__}: refusing to download; {_NEVER}")
        super().download()


def _bad_sizes(files: List[str], record: int = 5) -> List[str]:
    return [f for f in files if os.path.getsize(f) % record]


class NMNIST(_LocalRoot, tonic.datasets.NMNIST):
    """N-MNIST (Orchard et al. 2015) from ``root`` (``<root>/NMNIST/{Train,Test}/<digit>/*.bin``).

    Any number of recordings is accepted (the real 1000 + 100 subset in ``../shared`` too); the
    label is the digit folder. ``first_saccade_only`` keeps events with t < 100 ms, ``stabilize``
    removes the saccade motion (tonic's). Raises :class:`MissingDatasetError` for a missing split
    and ``ValueError`` for a ``.bin`` whose size is not a multiple of 5 bytes (a truncated file).

    Shapes: events ``[N]`` structured (x, y, t [µs], p), ``sensor_size = (34, 34, 2)`` (W, H, P)."""

    SOURCE = "https://data.mendeley.com/datasets/468j46mzdv/1 (Train.zip / Test.zip, unzipped)"
    CITATION = "Orchard et al., Front. Neurosci. 9:437 (2015), doi:10.3389/fnins.2015.00437"
    LAYOUT = "NMNIST/Train/<digit 0-9>/<index>.bin and NMNIST/Test/<digit 0-9>/<index>.bin"

    def __init__(self, root, train: bool = True, first_saccade_only: bool = False, stabilize: bool = False,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 download: bool = False):
        save_to = self._init_local(root, download)
        super().__init__(save_to, train=train, first_saccade_only=first_saccade_only, stabilize=stabilize,
                         transform=transform, target_transform=target_transform)
        bad = _bad_sizes(self.data)
        if bad:
            raise ValueError(f"NMNIST: {len(bad)} file(s) are not a whole number of 5-byte events "
                             f"(truncated?), e.g. {bad[0]}")

    def _layout_problem(self) -> Optional[str]:
        split = Path(self.location_on_system, self.folder_name)
        if not split.is_dir():
            return f"folder {split} does not exist"
        digits = [d for d in split.iterdir() if d.is_dir() and d.name in "0123456789" and len(d.name) == 1]
        if not any(next(d.glob("*.bin"), None) for d in digits):
            return f"folder {split} holds no <digit>/*.bin recording"
        return None


class SHD(_LocalRoot, tonic.datasets.SHD):
    """Spiking Heidelberg Digits (Cramer et al. 2020) from ``<root>/SHD/shd_{train,test}.h5``.

    The HDF5 file (unzipped) holds ``spikes/times`` (per sample, seconds), ``spikes/units``
    (channel 0..699), ``labels`` (0..19), ``extra/keys`` and ``extra/speaker``. Events get
    ``t = times * 1e6`` µs, ``x = units`` and ``p = 1`` (tonic's conversion).

    Shapes: events ``[N]`` structured (t [µs], x, p), ``sensor_size = (700, 1, 1)``."""

    SOURCE = "https://zenkelab.org/datasets/ (shd_train.h5.zip / shd_test.h5.zip, unzipped)"
    CITATION = "Cramer et al., IEEE TNNLS 33(7):2744 (2022), doi:10.1109/TNNLS.2020.3044364"
    LAYOUT = "SHD/shd_train.h5 and SHD/shd_test.h5"
    KEYS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")

    def __init__(self, root, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None, download: bool = False):
        save_to = self._init_local(root, download)
        self._h5 = "shd_train.h5" if train else "shd_test.h5"
        super().__init__(save_to, train=train, transform=transform, target_transform=target_transform)

    def _layout_problem(self) -> Optional[str]:
        path = Path(self.location_on_system, self._h5)
        if not path.is_file():
            return f"file {path} does not exist"
        import h5py
        try:
            with h5py.File(path, "r") as f:
                missing = [k for k in self.KEYS if k not in f]
        except OSError as err:
            return f"file {path} is not a readable HDF5 file ({err})"
        if missing:
            return f"file {path} lacks the dataset(s) {missing}"
        return None


class DVSGesture(_LocalRoot, tonic.datasets.DVSGesture):
    """IBM DVS128 Gesture (Amir et al. 2017) in tonic's preprocessed layout
    (``<root>/DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<class>.npy``, each an
    ``[N, 4]`` array of columns x, y, p, t in ms; tonic converts t to µs). The class is the file
    name (0..10, tonic's ``classes``); ``users`` and ``lighting`` list each sample's recording.

    Shapes: events ``[N]`` structured (x, y, p, t [µs]), ``sensor_size = (128, 128, 2)``."""

    SOURCE = ("tonic's figshare archives ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz "
              "(https://figshare.com/ndownloader/files/38022171 and .../38020584), extracted; "
              "original data https://research.ibm.com/interactive/dvsgesture/")
    CITATION = "Amir et al., CVPR 2017, doi:10.1109/CVPR.2017.781"
    LAYOUT = "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<class>.npy (and ibmGestureTest/...)"

    def __init__(self, root, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None, download: bool = False):
        save_to = self._init_local(root, download)
        super().__init__(save_to, train=train, transform=transform, target_transform=target_transform)

    def _layout_problem(self) -> Optional[str]:
        split = Path(self.location_on_system, self.folder_name)
        if not split.is_dir():
            return f"folder {split} does not exist"
        users = [d for d in split.iterdir() if d.is_dir() and d.name.startswith("user") and "_" in d.name]
        if not any(next(d.glob("*.npy"), None) for d in users):
            return f"folder {split} holds no user<NN>_<lighting>/<class>.npy recording"
        return None


class POKERDVS(_LocalRoot, tonic.datasets.POKERDVS):
    """POKER-DVS (Serrano-Gotarredona & Linares-Barranco 2015) in tonic's layout
    (``<root>/POKERDVS/pips_{train,test}/<symbol>/*.npy``, symbol ``cl``, ``he``, ``di``, ``sp``;
    each file an ``[N, 4]`` array of columns t [µs], x, y, p). The class is the symbol's index in
    ``classes``. tonic loads every file at construction.

    Shapes: events ``[N]`` structured (t [µs], x, y, p), ``sensor_size = (35, 35, 2)``."""

    SOURCE = ("tonic's pips_train.tar.gz / pips_test.tar.gz (shipped in tonic's repository under "
              "tonic/datasets/, not in the 1.7 wheel), extracted; original data "
              "http://www2.imse-cnm.csic.es/caviar/POKERDVS.html")
    CITATION = "Serrano-Gotarredona & Linares-Barranco, Front. Neurosci. 9:481 (2015), doi:10.3389/fnins.2015.00481"
    LAYOUT = "POKERDVS/pips_train/<cl|he|di|sp>/*.npy (and pips_test/...)"

    def __init__(self, root, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None, download: bool = False):
        save_to = self._init_local(root, download)
        super().__init__(save_to, train=train, transform=transform, target_transform=target_transform)

    def _layout_problem(self) -> Optional[str]:
        split = Path(self.location_on_system, self.folder_name)
        if not split.is_dir():
            return f"folder {split} does not exist"
        if not any(next((split / c).glob("*.npy"), None) for c in self.classes if (split / c).is_dir()):
            return f"folder {split} holds no <cl|he|di|sp>/*.npy recording"
        return None


def read_bs2(path) -> np.ndarray:
    """Events of one SLAYER ``.bs2`` file (the N-MNIST 5-byte format, see the module docstring).

    Returns a structured array with fields (x int16, y int16, t int64 [µs], p bool), in file
    order (t never decreases in the real files). Raises ``FileNotFoundError`` for a missing file
    and ``ValueError`` when its size is not a multiple of 5 bytes."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_bs2: no file {path}")
    if os.path.getsize(path) % 5:
        raise ValueError(f"read_bs2: {path} is {os.path.getsize(path)} bytes, not a whole number of 5-byte events")
    return tonic.io.read_mnist_file(path, dtype=BS2_DTYPE)


class GestureClips:
    """The 10 real 1.45 s DVS128 Gesture clips of SLAYER (``<root>/1.bs2 .. 10.bs2``).

    Clip ``k`` holds gesture ``k`` of DVS Gesture's class list (inferred from the data, see
    ``../shared/data/events/dvsgesture/README.md``), so its target is ``k - 1``, an index into
    ``classes`` (tonic's ``DVSGesture.classes``). Samples are ``(events, target)`` like the tonic
    datasets, events read by :func:`read_bs2`, ordered by ``k``.

    Shapes: events ``[N]`` structured (x, y, t [µs], p), ``sensor_size = (128, 128, 2)``."""

    sensor_size = (128, 128, 2)
    classes = list(tonic.datasets.DVSGesture.classes)
    dtype = BS2_DTYPE
    ordering = BS2_DTYPE.names
    SOURCE = ("https://github.com/bamsumit/slayerPytorch, test/test_files/binarySpikeTestFiles/{1..10}.bs2 "
              "(SLAYER's conversion of DVS Gesture)")
    CITATION = "Amir et al., CVPR 2017, doi:10.1109/CVPR.2017.781"

    def __init__(self, root, transform: Optional[Callable] = None, target_transform: Optional[Callable] = None):
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"GestureClips: root must be a path (str or os.PathLike), got {type(root).__name__}")
        root = Path(root)
        files = sorted((p for p in root.glob("*.bs2") if p.stem.isdigit()), key=lambda p: int(p.stem)) \
            if root.is_dir() else []
        if not files:
            raise MissingDatasetError(
                f"GestureClips: no <k>.bs2 clip in {root}. Expected layout: {root}/1.bs2 ... 10.bs2. Obtain "
                f"them from {self.SOURCE} (cite {self.CITATION}); neurosim never downloads them")
        bad = [p.name for p in files if not 1 <= int(p.stem) <= len(self.classes)]
        if bad:
            raise ValueError(f"GestureClips: clip numbers must be 1..{len(self.classes)}, got {bad} in {root}")
        self.root, self.data = root, [str(p) for p in files]
        self.targets = [int(p.stem) - 1 for p in files]
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        events, target = read_bs2(self.data[index]), self.targets[index]
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target


#: Name -> class of every event dataset here.
EVENT_DATASETS = {"nmnist": NMNIST, "shd": SHD, "dvsgesture": DVSGesture, "pokerdvs": POKERDVS,
                  "gesture_clips": GestureClips}
