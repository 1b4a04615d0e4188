"""Run saved neurosim networks as Lava processes (:func:`to_lava`); a script for the Lava environment.

Not part of the ``neurosim.hardware`` API: it runs *inside* the environment that
``scripts/build_lava_env.py`` builds (lava-nc 0.10.0, numpy < 2, torch 2.13.0, h5py), driven by a
subprocess from the main environment (:mod:`neurosim.hardware.loihi.lava_process_run`)::

    $LAVA_ENV/bin/python hardware/loihi/lava_process_runner.py \\
        --network net.h5 --input spikes.npy --steps T --out result.npz \\
        [--network net2.h5 --input spikes2.npy --steps T2 --out result2.npz ...]

neurosim is not installed in that environment (it is cached and shared between checkouts, so it
holds nothing of any one checkout): :func:`import_neurosim` imports it from this checkout, the
``neurosim`` package from the repository root and ``neurosim.hardware`` from ``hardware/``, the
``package-dir`` mapping of ``pyproject.toml``.

For each ``--network`` (a file written by ``neurosim.save``) with its ``--input`` (``.npy``, time
first ``[T_in, *shape]`` 0/1 spikes for the graph's single input of shape ``(n,)`` or
``(C, H, W)``, zero-padded to ``--steps``) and ``--out``:

1. ``neurosim.load``, then ``to_lava`` (:mod:`neurosim.hardware.loihi.lava`);
2. the input is served by ``lava.proc.io.source.RingBuffer(data=spikes.T)`` (Lava's order:
   ``[n, T]`` or ``[W, H, C, T]``): at step t = 1..T it sends row t - 1 of the input, which
   neurosim sees at its step t - 1 (0-based);
3. every population's ``s_out`` goes to a ``lava.proc.io.sink.RingBuffer`` and its ``v`` is
   probed with a ``Monitor`` (read after the step, after the reset of neurons that spiked: the
   ``v`` of neurosim's state);
4. ``run(RunSteps(T), Loihi2SimCfg(select_tag="fixed_pt"))``, then ``stop()``.

Output ``.npz`` (written under a temporary name, then renamed): ``spikes_<node>`` and
``voltage_<node>`` int32 ``[T, *shape]`` for every population, in neurosim's axis order (a
``(C, H, W)`` population's Lava ``[W, H, C, T]`` transposed back), and ``steps``.

Exit status: 0 on success; 2 for bad arguments or a bad file (the message names the file), before
any Lava process is built; 1 for anything else (an unsupported network included: the message
lists its nodes).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Python puts this script's folder first on sys.path, where neurosim's own lava.py would shadow the
# real Lava package: take it off before anything imports lava
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]


def import_neurosim(root: Path = ROOT):
    """Import ``neurosim`` and ``neurosim.hardware`` from the checkout at ``root`` (not installed).

    ``neurosim`` comes from ``root/neurosim`` (``root`` goes first on ``sys.path``), and the
    subpackage ``neurosim.hardware`` from ``root/hardware``, as setuptools' ``package-dir`` maps it.
    An installed neurosim elsewhere is not used. Returns the ``neurosim`` module."""
    sys.path.insert(0, str(root))
    import neurosim
    if Path(neurosim.__file__).resolve().parent != (root / "neurosim").resolve():
        raise ImportError(f"neurosim was imported from {neurosim.__file__}, not from {root}")
    if "neurosim.hardware" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "neurosim.hardware", root / "hardware" / "__init__.py",
            submodule_search_locations=[str(root / "hardware")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["neurosim.hardware"] = module
        spec.loader.exec_module(module)
        neurosim.hardware = module
    return neurosim


def read_input(path: Path, steps: int, shape) -> np.ndarray:
    """The input spikes ``[T_in, *shape]`` from ``path``, checked (0/1), zero-padded to ``[steps, *shape]``."""
    shape = tuple(int(n) for n in shape)
    if not path.is_file():
        raise ValueError(f"{path}: input file not found")
    try:
        spikes = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npy array ({error})") from None
    if spikes.ndim != 1 + len(shape) or tuple(spikes.shape[1:]) != shape:
        raise ValueError(f"{path}: input must be [T, {', '.join(map(str, shape))}] (time first), got shape "
                         f"{spikes.shape}")
    if spikes.shape[0] > steps:
        raise ValueError(f"{path}: input has {spikes.shape[0]} steps, more than --steps {steps}")
    if not np.issubdtype(spikes.dtype, np.number) or not np.isin(spikes, (0, 1)).all():
        raise ValueError(f"{path}: input must hold 0/1 spikes")
    padded = np.zeros((steps, *shape), dtype=np.int32)
    padded[: spikes.shape[0]] = spikes.astype(np.int32)
    return padded


def load_network(neurosim, path: Path):
    """``neurosim.load(path)``, which must have exactly one graph input, of shape ``(n,)`` or ``(C, H, W)``."""
    if not path.is_file():
        raise ValueError(f"{path}: network file not found")
    import neurosim.hardware.loihi  # noqa: F401  (registers the loihi_cuba model and LoihiDense)
    from neurosim.hardware.saved import SavedNetworkError
    try:
        sim = neurosim.load(path)
    except SavedNetworkError as error:
        raise ValueError(str(error)) from None
    inputs = sim.graph.inputs
    if len(inputs) != 1 or len(next(iter(inputs.values()))) not in (1, 3):
        raise ValueError(f"{path}: the network must have one graph input of shape (n,) or (C, H, W), "
                         f"has {dict(inputs)}")
    return sim


def to_neurosim_order(lava_array: np.ndarray, steps: int, shape) -> np.ndarray:
    """A time-first Lava record ``[T, *lava_shape]`` (any layout holding ``T x prod(shape)`` values
    in that order) as neurosim's ``[T, *shape]``: the neuron axes reversed, int32."""
    lava = np.asarray(lava_array).reshape(steps, *reversed(tuple(shape)))
    return lava.transpose(0, *range(lava.ndim - 1, 0, -1)).astype(np.int32)


def run_network(sim, spikes: np.ndarray) -> dict:
    """Run ``sim`` as Lava processes on ``spikes [T, *input shape]``; return the output arrays
    (``spikes_<population>``, ``voltage_<population>``: int32 ``[T, *shape]``, neurosim's order)."""
    from lava.magma.compiler.compiler_graphs import find_processes
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor
    from neurosim.hardware.loihi.lava import to_lava

    steps = spikes.shape[0]
    net = to_lava(sim)
    source = Source(data=np.ascontiguousarray(spikes.T))          # [n, T] or [W, H, C, T]
    net.connect_input(next(iter(sim.graph.inputs)), source.s_out)
    sinks, monitors = {}, {}
    for name, lif in net.neurons.items():
        sinks[name] = Sink(shape=lif.s_out.shape, buffer=steps)
        lif.s_out.connect(sinks[name].a_in)
        monitors[name] = Monitor()
        monitors[name].probe(lif.v, steps)
    reached = {id(p) for p in find_processes(source)}
    unreached = [name for name, p in net.processes.items() if id(p) not in reached]
    if unreached:
        raise RuntimeError(f"nodes {unreached} are not connected to the graph input; Lava would not run them")
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        result = {"steps": np.int64(steps)}
        for name, lif in net.neurons.items():
            shape = tuple(sim.graph.nodes[name].out_shape)
            result[f"spikes_{name}"] = np.ascontiguousarray(sinks[name].data.get().T).astype(np.int32)
            voltage = monitors[name].get_data()[lif.name]["v"]                 # [T, *lava shape]
            result[f"voltage_{name}"] = to_neurosim_order(voltage, steps, shape)
    finally:
        source.stop()
    return result


def parse(argv):
    parser = argparse.ArgumentParser(description="Run saved neurosim networks as Lava processes (fixed_pt CPU).")
    parser.add_argument("--network", type=Path, action="append", required=True, help="file from neurosim.save")
    parser.add_argument("--input", type=Path, action="append", required=True, help=".npy spikes [T_in, *input shape]")
    parser.add_argument("--steps", type=int, action="append", required=True,
                        help="steps to run, >= T_in (once for all networks, or once per network)")
    parser.add_argument("--out", type=Path, action="append", required=True, help=".npz file to write")
    args = parser.parse_args(argv)
    n = len(args.network)
    if len(args.steps) == 1:
        args.steps *= n
    for flag in ("input", "steps", "out"):
        if len(getattr(args, flag)) != n:
            raise ValueError(f"{n} --network but {len(getattr(args, flag))} --{flag}: give one per network")
    for steps in args.steps:
        if steps < 1:
            raise ValueError(f"--steps must be >= 1, got {steps}")
    return args


def main(argv=None) -> int:
    try:
        args = parse(argv)
        neurosim = import_neurosim()
        jobs = []
        for network, inp, steps, out in zip(args.network, args.input, args.steps, args.out):
            sim = load_network(neurosim, network)
            shape = next(iter(sim.graph.inputs.values()))
            jobs.append((sim, read_input(inp, steps, shape), out))
    except ValueError as error:
        print(f"lava_process_runner: {error}", file=sys.stderr)
        return 2
    from neurosim.atomic import atomic_path
    for sim, spikes, out in jobs:
        result = run_network(sim, spikes)
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:  # a file object: np.savez would append .npz to a name
                np.savez(handle, **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
