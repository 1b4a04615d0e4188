"""Run a netx file on Lava's CPU simulation; a script for the separate Lava environment.

Not part of the ``neurosim.hardware`` API and never imported by it: it runs *inside* the
environment that ``scripts/build_lava_env.py`` builds (lava-nc 0.10.0, lava-dl 0.6.0, numpy < 2),
driven by a subprocess from the main environment::

    $LAVA_ENV/bin/python hardware/loihi/lava_runner.py \\
        --netx net.net --input spikes.npy --steps T --out result.npz

What it does, in Lava's own terms:

1. ``net = lava.lib.dl.netx.hdf5.Network(net_config=FILE)``: lava-dl's reader builds one block
   process per layer of the file (``net.layers``; an ``input`` layer without a ``neuron`` group
   makes no block, so the first dense layer receives the input directly);
2. the input ``[T_in, N_in]`` (time first, integers; 0/1 for unary spikes) is padded with zeros to
   ``T`` steps and served by ``lava.proc.io.source.RingBuffer(data=[N_in, T])`` connected to
   ``net.inp``: at step t = 1..T the source sends column t - 1;
3. every layer's neuron spikes ``net.layers[i].neuron.s_out`` go to a
   ``lava.proc.io.sink.RingBuffer(buffer=T)``, and its voltage ``neuron.v`` is probed with
   ``lava.proc.monitor.process.Monitor`` (read after the step, i.e. after the reset of neurons
   that spiked);
4. ``net.run(RunSteps(T), Loihi2SimCfg(select_tag="fixed_pt"))``, then ``net.stop()``.

Output ``.npz`` (written under a temporary name, then renamed), for layer i = 0..L-1 in file
order of the blocks: ``spikes_i`` int32 ``[T, N_i]``, ``voltage_i`` int32 ``[T, N_i]`` (Lava's 24-bit
``v``, threshold ``vThMant << 6``), ``block_i`` the block class name (``Dense``, ``Input``, ...);
and ``steps`` (T), ``num_layers`` (L).

Timing observed in Lava (see ``tests/hardware/loihi/test_lava_env.py``): Lava's Dense synapse
delivers a spike sent at step t to its neuron at step t + 1, so every layer adds one step of
latency.

Exit status: 0 on success; 2 for bad arguments or bad input (the message names the file and the
problem), before Lava is started.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np


def load_atomic():
    """neurosim's ``atomic.py`` by file path (stdlib only), without importing neurosim here."""
    path = Path(__file__).resolve().parents[2] / "neurosim" / "atomic.py"
    spec = importlib.util.spec_from_file_location("neurosim_atomic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_input(path: Path, steps: int) -> np.ndarray:
    """The input spikes ``[T_in, N_in]`` from ``path``, checked, zero-padded to ``[steps, N_in]``."""
    if not path.is_file():
        raise ValueError(f"{path}: input file not found")
    spikes = np.load(path, allow_pickle=False)
    if spikes.ndim != 2:
        raise ValueError(f"{path}: input must be [T, N] (time first), got shape {spikes.shape}")
    if spikes.shape[0] > steps:
        raise ValueError(f"{path}: input has {spikes.shape[0]} steps, more than --steps {steps}")
    if not np.issubdtype(spikes.dtype, np.number) or not np.all(np.isfinite(spikes)) \
            or not np.array_equal(spikes, np.round(spikes)):
        raise ValueError(f"{path}: input must hold integers (spike counts or graded values)")
    padded = np.zeros((steps, spikes.shape[1]), dtype=np.int32)
    padded[: spikes.shape[0]] = spikes.astype(np.int32)
    return padded


def run_netx(netx_path: Path, spikes: np.ndarray) -> dict:
    """Run the netx network on ``spikes [T, N_in]``; return the arrays of the output file."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    steps = spikes.shape[0]
    net = netx.hdf5.Network(net_config=str(netx_path))
    if tuple(net.inp.shape) != (spikes.shape[1],):
        raise ValueError(f"{netx_path}: network input shape {tuple(net.inp.shape)} does not match "
                         f"the input's {spikes.shape[1]} neurons")
    if net.layers[0].input_message_bits == 0 and not np.isin(spikes, (0, 1)).all():
        raise ValueError(f"{netx_path}: the first layer takes unary spikes; the input must be 0/1")
    source = Source(data=spikes.T.copy())
    source.s_out.connect(net.inp)
    sinks, monitors = [], []
    for layer in net.layers:
        sink = Sink(shape=layer.neuron.s_out.shape, buffer=steps)
        layer.neuron.s_out.connect(sink.a_in)
        monitor = Monitor()
        monitor.probe(layer.neuron.v, steps)
        sinks.append(sink)
        monitors.append(monitor)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        result = {"steps": np.int64(steps), "num_layers": np.int64(len(net.layers))}
        for index, (layer, sink, monitor) in enumerate(zip(net.layers, sinks, monitors)):
            result[f"spikes_{index}"] = sink.data.get().T.astype(np.int32)
            voltage = monitor.get_data()[layer.neuron.name]["v"]
            result[f"voltage_{index}"] = np.asarray(voltage).reshape(steps, -1).astype(np.int32)
            result[f"block_{index}"] = np.array(type(layer).__name__)
    finally:
        net.stop()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run a netx file on Lava (fixed_pt CPU).")
    parser.add_argument("--netx", type=Path, required=True, help="netx HDF5 file")
    parser.add_argument("--input", type=Path, required=True, help=".npy spikes [T_in, N_in]")
    parser.add_argument("--steps", type=int, required=True, help="time steps to run, >= T_in")
    parser.add_argument("--out", type=Path, required=True, help=".npz file to write")
    args = parser.parse_args(argv)
    try:
        if args.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {args.steps}")
        if not args.netx.is_file():
            raise ValueError(f"{args.netx}: netx file not found")
        spikes = read_input(args.input, args.steps)
        result = run_netx(args.netx, spikes)
    except ValueError as error:
        print(f"lava_runner: {error}", file=sys.stderr)
        return 2
    atomic = load_atomic()
    with atomic.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as handle:  # a file object: np.savez would append .npz to a name
            np.savez(handle, **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
