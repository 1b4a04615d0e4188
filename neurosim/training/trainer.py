"""``Trainer``: epochs of BPTT with evaluation, progress bars, its own seeded RNG and resumable checkpoints.

One training step on a batch ``(inputs, targets)``::

    result = model(inputs, monitors=monitors)          # Simulator.run, or its DDP wrapper
    loss   = loss_fn(result.outputs[output], targets) + regularizer(result)
    optimizer.zero_grad(); loss.backward(); clip(grad_clip); optimizer.step()

Batches are time first: ``inputs`` ``[T, B, ...]`` (or a dict name -> ``[T, B, ...]``), the layout
:meth:`neurosim.Simulator.run` takes; with ``time_first=False`` they are ``[B, T, ...]`` and are
transposed. :meth:`Trainer.make_loader` builds loaders in the trainer's layout whose order is
drawn from the trainer's generator. Inputs are cast to the dtype of the model's parameters (e.g. uint8 spike
tensors to float32).

**Reproducibility.** The trainer draws random numbers only from its own ``torch.Generator``
(``trainer.generator``, seeded with ``seed``), which orders the batches of :meth:`make_loader`;
constructing and fitting a trainer leaves torch's, NumPy's and Python's global RNGs untouched.
Given the same initial model and data, two trainers with the same seed produce bit-identical
weights. Randomness that the trainer does not own (a dataset that draws noise when indexed, a
plain ``DataLoader(shuffle=True)``, dropout in a plug-in module) comes from the global RNGs:
seed those yourself (``torch.manual_seed``, ``np.random.seed``, ``random.seed``) before building
the run, or better give such code a generator of its own (e.g. ``poisson_encode(...,
generator=g)``).

Every epoch ends with a checkpoint (when ``checkpoint_dir`` is set) holding the model, optimizer
(and scheduler) state, the epoch count, the history, the trainer's generator and the current
states of the global RNGs (as tensors and plain types, loadable with ``torch.load(...,
weights_only=True)``). :meth:`resume` restores all of them, the global RNGs included (on purpose:
that is what makes randomness drawn from them continue where the interrupted run stopped), so
training N epochs, stopping, resuming in a new process and training to M gives the same weights
as training M epochs in one go.

**Distributed.** Pass a ``DistributedDataParallel``-wrapped simulator (see
:mod:`neurosim.training.distributed`) and loaders made with ``rank``/``world_size``
(:meth:`make_loader` fills them in). Every rank seeds its generator identically (the shards of
every global batch must come from the same permutation); epoch metrics are summed over
ranks; rank 0 alone writes checkpoints and shows progress.

Example::

    >>> trainer = Trainer(sim, torch.optim.Adam(sim.parameters(), 1e-3),
    ...                   lambda v, y: membrane_cross_entropy(v, y), seed=0, checkpoint_dir="ckpt")
    >>> history = trainer.fit(trainer.make_loader(train_ds, 32), epochs=10,
    ...                       val_loader=trainer.make_loader(val_ds, 256, shuffle=False))
    >>> Trainer(sim2, opt2, loss_fn, seed=0).fit(loader, epochs=20, resume_from="ckpt/last.pt")
"""
from __future__ import annotations

import math
import os
import random
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..atomic import atomic_path
from ..simulator import Simulator
from ..validation import check_int, check_number
from .data import make_loader

__all__ = ["Trainer", "atomic_save", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 1
_CHECKPOINT_KEYS = ("format", "epoch", "seed", "model", "optimizer", "scheduler", "rng", "history")


def atomic_save(obj: Any, path) -> str:
    """``torch.save(obj)`` to a temporary file in ``path``'s directory, fsync, then ``os.replace``.

    A crash at any point leaves either the previous file or the complete new one, never a
    truncated file; the temporary file is removed on failure.

    Example::

        >>> atomic_save({"w": torch.zeros(3)}, "ckpt/last.pt")
    """
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


# ---------------------------------------------------------------------------- RNG states as tensors
def _python_rng_state() -> Dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_python_rng_state(s: Dict[str, Any]) -> None:
    random.setstate((int(s["version"]), tuple(int(v) for v in s["state"].tolist()), s["gauss"]))


def _numpy_rng_state() -> Dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_rng_state(s: Dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                         s["cached_gaussian"]))


def _move(x, device, dtype):
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype, non_blocking=True)
    if isinstance(x, dict):
        return {k: _move(v, device, dtype) for k, v in x.items()}
    raise TypeError(f"Trainer: batch inputs must be a tensor or a dict of tensors, got {type(x).__name__}")


def _transpose(x):
    if isinstance(x, torch.Tensor):
        if x.dim() < 2:
            raise ValueError(f"Trainer: inputs must have a batch and a time axis, got shape {tuple(x.shape)}")
        return x.transpose(0, 1)
    return {k: _transpose(v) for k, v in x.items()}


def _batch_size(x) -> int:
    first = x if isinstance(x, torch.Tensor) else next(iter(x.values()))
    return int(first.shape[1])


def _sum_over_time(out: torch.Tensor) -> torch.Tensor:
    return out.sum(0)


class Trainer:
    """Fits a :class:`neurosim.Simulator` (optionally DDP-wrapped) by BPTT; see the module docstring.

    Arguments: ``sim``: the simulator or its ``DistributedDataParallel`` wrapper; ``optimizer`` over
    its parameters; ``loss_fn(output [T, B, ...], targets) -> scalar`` (a mean over the batch);
    ``seed``: int seeding ``self.generator`` (the global RNGs are left alone); ``checkpoint_dir``:
    where ``epoch_{n:03d}.pt`` and ``last.pt`` go (None: no checkpoints); ``progress``: tqdm bars
    (also off on a non-tty stream and on ranks > 0); ``time_first``: batch layout (see above);
    ``output``: the output node the loss reads (default: the graph's only output); ``decode(output) -> scores [B, C]`` for accuracy (default:
    sum over time, i.e. spike counts or summed membrane); ``regularizer(result) -> scalar`` added
    to the training loss (not to evaluation losses); ``monitors`` passed to every run;
    ``scheduler`` (stepped once per epoch); ``grad_clip``: max gradient norm (None: no clipping).
    """

    def __init__(self, sim: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable, *, seed: int = 0,
                 checkpoint_dir=None, progress: bool = True, time_first: bool = True,
                 output: Optional[str] = None, decode: Optional[Callable] = None,
                 regularizer: Optional[Callable] = None, monitors: Sequence = (), scheduler=None,
                 grad_clip: Optional[float] = None):
        module = sim.module if isinstance(sim, DistributedDataParallel) else sim
        if not isinstance(module, Simulator):
            raise TypeError(f"Trainer: sim must be a neurosim Simulator (or a DDP-wrapped one), got {type(module).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"Trainer: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        check_int(seed, "Trainer: seed", minimum=0, maximum=2 ** 63 - 1)
        own = {id(p) for p in module.parameters()}
        foreign = sum(1 for g in optimizer.param_groups for p in g["params"] if id(p) not in own)
        if foreign:
            raise ValueError(f"Trainer: the optimizer holds {foreign} parameter(s) that are not the simulator's "
                             "(was it built for another Simulator instance?)")
        outputs = module.graph.output_names()
        if output is None and len(outputs) != 1:
            raise ValueError(f"Trainer: the graph has outputs {outputs}; pass output=<name> for the loss")
        if output is not None and output not in outputs:
            raise ValueError(f"Trainer: output {output!r} is not an output of the graph ({outputs})")
        if grad_clip is not None:
            grad_clip = check_number(grad_clip, "Trainer: grad_clip (max gradient norm, or None)", positive=True)
        for name, fn in (("decode", decode), ("regularizer", regularizer)):
            if fn is not None and not callable(fn):
                raise TypeError(f"Trainer: {name} must be callable or None")

        self.model, self.module = sim, module
        self.optimizer, self.loss_fn, self.scheduler = optimizer, loss_fn, scheduler
        self.seed, self.progress, self.time_first = seed, bool(progress), bool(time_first)
        self.output = output or outputs[0]
        self.decode = decode or _sum_over_time
        self.regularizer, self.monitors = regularizer, tuple(monitors)
        self.grad_clip = grad_clip
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.distributed = isinstance(sim, DistributedDataParallel)
        if self.distributed and not dist.is_initialized():
            raise RuntimeError("Trainer: a DDP-wrapped simulator needs an initialised process group")
        # shard position for the data (0 of 1 unless DDP); only the global rank 0 writes and shows bars
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.is_main = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        self.epoch = 0
        self.history: List[Dict[str, Any]] = []
        # the trainer's only source of randomness, seeded identically on every rank (the shards of
        # a global batch must come from one permutation); the global RNGs are the caller's
        self.generator = torch.Generator().manual_seed(seed)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        """The device of the simulator's parameters (batches are moved there)."""
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the simulator's parameters (inputs are cast to it)."""
        for p in self.module.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    def make_loader(self, dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False):
        """A loader in this trainer's layout and shard: order from ``self.generator`` when
        shuffling (a fixed order otherwise), ``batch_size`` global (divided among DDP ranks).

        Shapes: dataset items ``(x [T, ...], y)``; batches ``([T, b, ...], [b])``
        (``[b, T, ...]`` with ``time_first=False``). Example::

            >>> loader = trainer.make_loader(train_ds, batch_size=32)
        """
        return make_loader(dataset, batch_size, self.generator if shuffle else None, shuffle,
                           self.rank, self.world_size, self.time_first, drop_last)

    def _prepare(self, batch):
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise TypeError("Trainer: every batch must be an (inputs, targets) pair, got "
                            f"{type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else ""))
        inputs, targets = batch
        inputs = _move(inputs, self.device, self.dtype)
        if not self.time_first:
            inputs = _transpose(inputs)
        if isinstance(targets, torch.Tensor):
            targets = targets.to(self.device, non_blocking=True)
        return inputs, targets

    def _is_classification(self, targets) -> bool:
        return isinstance(targets, torch.Tensor) and targets.dim() == 1 and not targets.is_floating_point() \
            and targets.dtype != torch.bool

    def _correct(self, out, targets) -> float:
        if not self._is_classification(targets):
            return float("nan")
        scores = self.decode(out.detach())
        return float((scores.argmax(-1) == targets).sum())

    def _all_sum(self, values: List[float]) -> List[float]:
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def _bar(self, loader, desc):
        disable = True if (not self.progress or not self.is_main) else None   # None: off on a non-tty
        from tqdm.auto import tqdm
        total = len(loader) if hasattr(loader, "__len__") else None
        return tqdm(loader, desc=desc, total=total, disable=disable, leave=False, dynamic_ncols=True)

    # ------------------------------------------------------------------ training
    def train_step(self, inputs, targets):
        """One optimisation step on one batch; returns ``(loss, output)`` (a float, the detached output).

        ``L = loss_fn(out, targets) (+ regularizer(result))``, then zero_grad, backward, optional
        clipping of the global gradient norm to ``grad_clip``, optimizer step.
        Shapes: inputs ``[T, B, ...]`` (already time first, on the device); output ``[T, B, ...]``.

        Example::

            >>> loss, out = trainer.train_step(x, labels)
        """
        self.module.train()
        result = self.model(inputs, monitors=self.monitors)
        out = result.outputs[self.output]
        loss = self.loss_fn(out, targets)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ValueError("Trainer: loss_fn must return a scalar tensor (a mean over the batch)")
        if self.regularizer is not None:
            loss = loss + self.regularizer(result)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        self.optimizer.step()
        return float(loss.detach()), out.detach()

    def train_epoch(self, loader) -> Dict[str, float]:
        """One pass over ``loader`` (one :meth:`train_step` per batch); returns ``{"loss", "accuracy"}``.

        ``loss = (1/N) sum_k B_k L_k`` over the batches of all ranks (the training loss including the
        regulariser); ``accuracy`` as in :meth:`evaluate`, measured on the fly. Does not advance
        ``self.epoch`` and writes no checkpoint (:meth:`fit` does both).

        Example::

            >>> trainer.train_epoch(trainer.make_loader(ds, 32))
            {'loss': 0.52, 'accuracy': 0.81}
        """
        loss_sum = correct = count = 0.0
        bar = self._bar(loader, f"epoch {self.epoch + 1}")
        for batch in bar:
            inputs, targets = self._prepare(batch)
            loss, out = self.train_step(inputs, targets)
            if not math.isfinite(loss):
                raise FloatingPointError(f"Trainer: the training loss became {loss} in epoch {self.epoch + 1}")
            n = _batch_size(inputs)
            loss_sum += loss * n
            correct += self._correct(out, targets)
            count += n
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.close()
        loss_sum, correct, count = self._all_sum([loss_sum, correct, count])
        if count == 0:
            raise ValueError("Trainer: the training loader yielded no batches")
        return {"loss": loss_sum / count, "accuracy": correct / count}

    @torch.no_grad()
    def evaluate(self, loader) -> Dict[str, float]:
        """Mean loss and accuracy over ``loader`` without gradients (no optimizer step).

        ``loss = (1/N) sum_batches B_k loss_fn(out_k, y_k)`` (``loss_fn`` a batch mean, so this is
        the sample mean); ``accuracy = (1/N) sum_b [argmax decode(out_b) == y_b]`` for integer
        labels ``[B]`` (NaN otherwise). With DDP each rank evaluates its shard and the sums are
        all-reduced. Returns ``{"loss", "accuracy", "samples"}``.

        Shapes: batches as for :meth:`fit`; output ``[T, B, C]`` -> ``decode`` -> scores ``[B, C]``.

        Example::

            >>> trainer.evaluate(trainer.make_loader(test_ds, 256, shuffle=False))
            {'loss': 0.41, 'accuracy': 0.88, 'samples': 1000}
        """
        self.module.eval()
        loss_sum = correct = count = 0.0
        for batch in self._bar(loader, "eval"):
            inputs, targets = self._prepare(batch)
            out = self.module.run(inputs, monitors=self.monitors).outputs[self.output]
            n = _batch_size(inputs)
            loss_sum += float(self.loss_fn(out, targets)) * n
            correct += self._correct(out, targets)
            count += n
        self.module.train()
        loss_sum, correct, count = self._all_sum([loss_sum, correct, count])
        if count == 0:
            raise ValueError("Trainer.evaluate: the loader yielded no batches")
        return {"loss": loss_sum / count, "accuracy": correct / count, "samples": int(count)}

    def fit(self, train_loader, epochs: int, val_loader=None, resume_from=None) -> List[Dict[str, Any]]:
        """Train until ``epochs`` epochs are complete in total, then return the history.

        ``epochs`` counts from the start of training, not from this call: after
        ``resume_from=path`` (a checkpoint written after epoch n) it trains epochs n+1 .. epochs,
        so re-running the same command after a crash continues the run. Each epoch: train, evaluate
        ``val_loader`` (if given), step the scheduler, append ``{"epoch", "train_loss",
        "train_accuracy", "val_loss", "val_accuracy"}`` to the history and write
        ``checkpoint_dir/epoch_{n:03d}.pt`` and ``checkpoint_dir/last.pt``.

        Shapes: batches ``(inputs [T, B, ...], targets [B, ...])`` (``[B, T, ...]`` inputs with
        ``time_first=False``).

        Example::

            >>> history = trainer.fit(train_loader, epochs=5, val_loader=val_loader)
            >>> history[-1]["val_accuracy"]
        """
        check_int(epochs, "Trainer.fit: epochs", minimum=0)
        if not hasattr(train_loader, "__iter__"):
            raise TypeError(f"Trainer.fit: train_loader must be iterable, got {type(train_loader).__name__}")
        if val_loader is not None and not hasattr(val_loader, "__iter__"):
            raise TypeError(f"Trainer.fit: val_loader must be iterable, got {type(val_loader).__name__}")
        if resume_from is not None:
            self.resume(resume_from)
        while self.epoch < epochs:
            train = self.train_epoch(train_loader)
            self.epoch += 1
            entry = {"epoch": self.epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"]}
            if val_loader is not None:
                val = self.evaluate(val_loader)
                entry.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            if self.scheduler is not None:
                self.scheduler.step()
            self.history.append(entry)
            if self.checkpoint_dir is not None:
                self.save_checkpoint()
        return list(self.history)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """Everything a resumed run needs, as tensors and plain Python types (weights_only-safe).

        Keys: ``format``, ``epoch`` (completed epochs), ``seed``, ``model`` (the unwrapped
        simulator's state_dict), ``optimizer``, ``scheduler`` (or None), ``history`` and ``rng``:
        ``generator`` (the trainer's, ByteTensor) and the global streams as they are now:
        ``torch`` (ByteTensor), ``python`` ({version, state int64 tensor, gauss}), ``numpy``
        ({name, keys int64 tensor, pos, has_gauss, cached_gaussian}) and ``cuda`` (list of
        ByteTensors) when CUDA is available. Reading them changes nothing.

        Example::

            >>> atomic_save(trainer.state_dict(), "snapshot.pt")
        """
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
               "python": _python_rng_state(), "numpy": _numpy_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"format": CHECKPOINT_FORMAT, "epoch": self.epoch, "seed": self.seed,
                "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "rng": rng, "history": [dict(h) for h in self.history]}

    def save_checkpoint(self, path=None) -> Optional[str]:
        """Write :meth:`state_dict` atomically; by default to ``epoch_{n:03d}.pt`` and ``last.pt`` in
        ``checkpoint_dir``. Only rank 0 writes. Returns the path written (``last.pt`` by default).

        Example::

            >>> trainer.save_checkpoint("run/manual.pt")
        """
        if path is None and self.checkpoint_dir is None:
            raise ValueError("Trainer.save_checkpoint: no path given and no checkpoint_dir set")
        if not self.is_main:
            return None
        state = self.state_dict()
        if path is not None:
            return atomic_save(state, path)
        atomic_save(state, os.path.join(self.checkpoint_dir, f"epoch_{self.epoch:03d}.pt"))
        return atomic_save(state, os.path.join(self.checkpoint_dir, "last.pt"))

    def resume(self, path) -> int:
        """Restore model, optimizer, scheduler, epoch, history and every RNG from a checkpoint.

        The trainer's generator and the global torch (and CUDA), NumPy and Python RNGs are set to
        their states at the end of the checkpointed epoch, so randomness drawn from either
        continues as in an uninterrupted run. Loads with ``torch.load(path, weights_only=True)`` onto the model's device; every rank of a
        DDP run loads the same file. Returns the number of completed epochs.

        Example::

            >>> Trainer(sim, opt, loss_fn).resume("ckpt/last.pt")
            2
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Trainer.resume: no checkpoint file {path!r}")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"Trainer.resume: {path!r} is not a neurosim Trainer checkpoint (format {CHECKPOINT_FORMAT})")
        missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt]
        if missing:
            raise ValueError(f"Trainer.resume: checkpoint {path!r} lacks {missing}")
        if (ckpt["scheduler"] is None) != (self.scheduler is None):
            raise ValueError("Trainer.resume: the checkpoint and this trainer disagree on having a scheduler")
        self.module.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        _set_python_rng_state(rng["python"])
        _set_numpy_rng_state(rng["numpy"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.epoch = int(ckpt["epoch"])
        self.history = [dict(h) for h in ckpt["history"]]
        return self.epoch
