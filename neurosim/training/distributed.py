"""Distributed data-parallel (DDP) training under ``torchrun``.

Each of ``W`` processes holds a full copy of the simulator, runs it on its share ``B/W`` of every
global batch of ``B`` (see :func:`neurosim.training.make_loader`) and computes the mean loss over
its share. ``DistributedDataParallel`` all-reduces the gradients and divides by ``W``::

    g = (1/W) sum_r (1/(B/W)) sum_{b in shard r} dL_b/dw = (1/B) sum_b dL_b/dw

which is the single-process gradient of the mean loss over the global batch, so every rank
applies the same update and the copies stay identical (up to float summation order).

The backend follows the device: ``nccl`` with one GPU per process (``cuda:LOCAL_RANK``), ``gloo``
on CPU. Launch with::

    torchrun --nproc_per_node=2 train.py

and in ``train.py``::

    ctx = setup_distributed()                  # reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*
    model = wrap_ddp(Simulator(graph), ctx)    # DDP's forward is Simulator.run
    loader = make_loader(ds, 64, torch.Generator().manual_seed(0), rank=ctx.rank,
                         world_size=ctx.world_size)
    Trainer(model, optimizer, loss_fn, seed=0).fit(loader, epochs=3)
    cleanup()
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedContext", "setup_distributed", "cleanup", "wrap_ddp", "unwrap", "is_distributed",
           "is_main_process", "TORCHRUN_ENV"]

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its host, the
    ``device`` it computes on and the process-group ``backend`` ("gloo" or "nccl")."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup_distributed(backend: str | None = None, timeout_s: float = 300.0) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` (all
    required; a missing one raises, naming it). ``backend`` defaults to ``"nccl"`` when CUDA is
    available (device ``cuda:LOCAL_RANK``, made current) and ``"gloo"`` otherwise (device cpu).
    ``timeout_s`` (seconds) bounds every collective. Calling it again in an initialised process
    returns the context without re-initialising.

    Example::

        >>> ctx = setup_distributed()
        >>> ctx.rank, ctx.world_size, ctx.device
    """
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise RuntimeError(f"setup_distributed: environment variables {missing} are not set; launch the script "
                           f"with torchrun (python -m torch.distributed.run --nproc_per_node=N script.py)")
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"setup_distributed: inconsistent RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"setup_distributed: backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("setup_distributed: backend 'nccl' needs CUDA, which is not available")
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"setup_distributed: LOCAL_RANK={local} but only {torch.cuda.device_count()} "
                               "CUDA devices are visible")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
    elif dist.get_rank() != rank or dist.get_world_size() != world:
        raise RuntimeError("setup_distributed: a process group with another rank/world size is already initialised")
    return DistributedContext(rank, world, local, device, dist.get_backend())


def cleanup() -> None:
    """Leave and destroy the default process group (no-op when none is initialised).

    Example::

        >>> try: trainer.fit(loader, 3)
        ... finally: cleanup()
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process.

    Example::

        >>> if is_distributed(): loader = make_loader(ds, 64, g, rank=dist.get_rank(), world_size=dist.get_world_size())
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, and in a single process (the process that writes files and shows progress).

    Example::

        >>> if is_main_process(): print(history[-1])
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap(model: nn.Module) -> nn.Module:
    """The simulator inside a ``DistributedDataParallel`` wrapper (or ``model`` itself).

    Example::

        >>> state = unwrap(model).initial_state(batch_size=8)
    """
    return model.module if isinstance(model, DistributedDataParallel) else model


def wrap_ddp(sim: nn.Module, ctx: DistributedContext | None = None, find_unused_parameters: bool = False,
             **ddp_kwargs) -> DistributedDataParallel:
    """Move ``sim`` to the context's device and wrap it in ``DistributedDataParallel``.

    DDP broadcasts rank 0's parameters and buffers at construction, so all copies start equal.
    Calling the wrapper runs ``Simulator.forward`` (= ``run``), which installs the hooks that
    all-reduce gradients during ``backward``. Every trainable parameter of a neurosim graph is
    used in every step, hence ``find_unused_parameters=False`` (faster); set it True for graphs
    with nodes that can be skipped (it costs an extra traversal of the autograd graph per step).

    Shapes: n/a. Example::

        >>> model = wrap_ddp(Simulator(graph), setup_distributed())
        >>> out = model(x).output            # x: [T, B/W, ...]
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("wrap_ddp: no process group; call setup_distributed() first")
    if isinstance(sim, DistributedDataParallel):
        raise TypeError("wrap_ddp: the model is already wrapped in DistributedDataParallel")
    if not isinstance(sim, nn.Module):
        raise TypeError(f"wrap_ddp: expected a Simulator (nn.Module), got {type(sim).__name__}")
    if not any(p.requires_grad for p in sim.parameters()):
        raise ValueError("wrap_ddp: the simulator has no trainable parameters; there is nothing to synchronise")
    device = ctx.device if ctx is not None else torch.device("cpu")
    sim = sim.to(device)
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(sim, device_ids=device_ids, find_unused_parameters=find_unused_parameters,
                                   **ddp_kwargs)
