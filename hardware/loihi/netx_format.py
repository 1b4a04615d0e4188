"""lava-dl's netx HDF5 layout: the facts both :func:`to_netx` and :func:`from_netx` rely on, and a
careful reader of its datasets.

Facts, from lava-dl 0.6.0's reader (``lava/lib/dl/netx/hdf5.py``, ``netx/utils.py``,
``netx/blocks/process.py``) and writer (``slayer/block/base.py``), each checked by running Lava
(``tests/hardware/loihi/test_netx_lava.py``):

* groups ``layer/0 .. layer/n-1`` run in order; every value is a dataset, none an attribute;
  ``layer/i/type`` is an ``S10`` array of shape (1,) (a scalar string is read too):
  ``input``, ``dense`` (``weight [out, in]``), ``dense_rec`` (+ ``weight_rec [out, out]``),
  ``conv`` (PyTorch weight layout ``[out, in / groups, k_h, k_w]``; ``stride``, ``padding``,
  ``dilation`` as (H, W) or one int; ``groups``), ``flatten``. ``shape`` is (C, H, W) or (n,)
  in the file (Lava reverses it to (W, H, C)). Pool, convT, unpool, average, concat and complex
  layers are not loadable (Lava raises NotImplementedError for them).
* ``neuron``: ``type`` ``CUBA`` (or ``LOIHI``) as a scalar string; integer ``iDecay``,
  ``vDecay`` (4096 = 1.0), ``vThMant``, ``refDelay``, ``gradedSpike``. Lava builds its fixed-point
  LIF with ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``; ``refDelay`` is not used (Lava's
  LIF has no refractory period). An optional ``bias`` dataset of the layer becomes the LIF's
  ``bias_mant`` with ``bias_exp = 6``.
* arithmetic: a neuron spikes when ``v > vThMant << 6``; each input spike adds ``weight << 6`` to
  the current (``weight`` read with ``.astype(int)``); only the voltage resets. The reader fits
  each layer's integer weights into a mantissa and an exponent (``optimize_weight_bits``): exact
  for layers with a positive weight and every weight in [-256, 254] (measured: every integer of
  that range; 255 is clipped to 254 in a mixed-sign layer), wrong for layers without a positive
  weight (measured: -1 -> 0, -256 -> -255; an all-zero layer raises OverflowError).
* ``delay``: dense layers only, one value per output neuron (an int, or ``[out]``), clamped to
  0..62 with a warning; a recurrent layer with delays loses its weight exponent and gives the
  recurrent synapse the same delays (Lava's ``RecurrentDense``), so it is not written here.
* timing: every dense or conv layer adds one step (Lava's synapses send at t + 1), delays add
  ``delay[j]`` more; an ``input`` layer with a neuron group takes the input in the same step;
  ``flatten`` adds nothing; recurrent feedback takes one step.

neurosim adds one dataset, ``neurosim_sha256`` at the root (an ``S64`` SHA-256 of every dataset
under ``layer``), which Lava's reader ignores and :func:`from_netx` checks when present.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Iterator, Optional

import numpy as np

__all__ = ["NetxFileError", "CHECKSUM_KEY", "LOADABLE_TYPES", "UNLOADABLE_TYPES", "NEURON_TYPES",
           "NETX_WEIGHT_RANGE", "content_digest", "text_dataset", "reading"]

CHECKSUM_KEY = "neurosim_sha256"
LOADABLE_TYPES = ("input", "dense", "dense_rec", "conv", "flatten")
UNLOADABLE_TYPES = ("pool", "convT", "unpool", "average", "concat", "dense_comp")
NEURON_TYPES = ("CUBA", "LOIHI")
#: integer weights the netx reader reproduces exactly (in a layer that has a positive weight)
NETX_WEIGHT_RANGE = (-256, 254)


class NetxFileError(ValueError):
    """A netx file that cannot be read as it is; the message names the file, the layer and the key."""


def text_dataset(value: str) -> np.ndarray:
    """A layer ``type`` as slayer writes it: an ``S10`` array of shape (1,)."""
    return np.array([value.encode("ascii")], dtype="S10")


def content_digest(layers) -> str:
    """SHA-256 over every dataset under the h5py group ``layers``: for each, in sorted path order,
    its path, dtype, shape and little-endian bytes."""
    digest = hashlib.sha256()

    def visit(name, obj):
        if hasattr(obj, "dtype") and hasattr(obj, "shape"):
            data = np.asarray(obj[()])
            if data.dtype.kind in "iuf" and data.dtype.byteorder == ">":
                data = data.astype(data.dtype.newbyteorder("<"))
            digest.update(f"{name}|{data.dtype.str}|{data.shape}|".encode())
            digest.update(data.tobytes() if data.dtype.kind != "O" else repr(data.tolist()).encode())

    paths = []
    layers.visit(lambda name: paths.append(name))
    for name in sorted(paths):
        visit(name, layers[name])
    return digest.hexdigest()


@contextlib.contextmanager
def reading(path: str, where: str, what: str = "reading") -> Iterator[None]:
    """Turn any error while reading ``where`` (h5py's OSError, KeyError, TypeError...) into a
    :class:`NetxFileError` naming the file and the key."""
    try:
        yield
    except NetxFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError,
            UnicodeDecodeError, OverflowError, MemoryError) as error:
        raise NetxFileError(f"netx file {path!r}: {where}: {what} failed ({type(error).__name__}: {error})") \
            from None


def read_dataset(group, key: str, path: str, where: str, file_size: int, required: bool = True) -> Optional[np.ndarray]:
    """``group[key][()]`` as a numpy value, refusing a dataset larger than the file (a damaged
    header must not make the reader allocate more than the file holds)."""
    with reading(path, f"{where}/{key}"):
        if key not in group:
            if required:
                raise NetxFileError(f"netx file {path!r}: {where}/{key}: missing key {key!r}")
            return None
        dataset = group[key]
        if not hasattr(dataset, "shape"):
            raise NetxFileError(f"netx file {path!r}: {where}/{key}: expected a dataset, found a group")
        size = int(np.prod(dataset.shape, dtype=np.int64)) * max(1, dataset.dtype.itemsize)
        if size > file_size:
            raise NetxFileError(f"netx file {path!r}: {where}/{key}: declares {size} bytes, more than the "
                                f"file's {file_size} (damaged)")
        return np.asarray(dataset[()])


def read_text(group, key: str, path: str, where: str, file_size: int) -> str:
    """A string dataset: an ``S`` array of shape (1,) or a scalar (fixed or variable length)."""
    value = read_dataset(group, key, path, where, file_size)
    with reading(path, f"{where}/{key}", "decoding the text"):
        if value.shape not in ((), (1,)):
            raise NetxFileError(f"netx file {path!r}: {where}/{key}: expected one string, got shape {value.shape}")
        item = value.reshape(()).item()
        text = item.decode("ascii") if isinstance(item, bytes) else item
        if not isinstance(text, str):
            raise NetxFileError(f"netx file {path!r}: {where}/{key}: expected a string, got {type(item).__name__}")
        return text


def file_size(path: str) -> int:
    return os.path.getsize(path)
