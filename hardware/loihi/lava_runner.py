"""Run a netx file on Lava's CPU simulation; a script for the separate Lava environment.

Not part of the ``neurosim.hardware`` API and never imported by it: it runs *inside* the
environment that ``scripts/build_lava_env.py`` builds (lava-nc 0.10.0, lava-dl 0.6.0, numpy < 2),
driven by a subprocess from the main environment::

    $LAVA_ENV/bin/python hardware/loihi/lava_runner.py \\
        --netx net.net --input spikes.npy [--steps T] --out result.npz [--netx ... --input ... --out ...]

(several networks in one process: Lava's start-up is paid once)

What it does, in Lava's own terms:

1. ``net = lava.lib.dl.netx.hdf5.Network(net_config=FILE, input_shape=...)``: lava-dl's reader
   builds one block process per layer of the file (``net.layers``; an ``input`` layer without a
   ``neuron`` group makes no block, so the first dense layer receives the input directly; the
   input's shape is passed for files whose first layer is a conv). An ``input`` layer *with* a
   neuron group does not run: Lava 0.10 raises ``NotImplementedError: No subcompiler exists for
   ... PyInputModel`` (measured, with and without ``select_sub_proc_model``);
2. the input ``[T_in, *shape]`` (time first, integers; 0/1 for unary spikes; ``shape`` in
   neurosim's order, (n,) or (C, H, W)) is padded with zeros to ``T`` steps and served by
   ``lava.proc.io.source.RingBuffer(data=[*shape reversed, T])`` (Lava's (W, H, C) order)
   connected to ``net.inp``: at step t = 1..T the source sends slice t - 1;
3. every layer's neuron spikes ``net.layers[i].neuron.s_out`` go to a
   ``lava.proc.io.sink.RingBuffer(buffer=T)``, and its voltage ``neuron.v`` is probed with
   ``lava.proc.monitor.process.Monitor`` (read after the step, i.e. after the reset of neurons
   that spiked);
4. ``net.run(RunSteps(T), Loihi2SimCfg(select_tag="fixed_pt"))``, then ``net.stop()``.

Output ``.npz`` (written under a temporary name, then renamed), for layer i = 0..L-1 in file
order of the blocks: ``spikes_i`` int32 ``[T, *shape_i]``, ``voltage_i`` int32 ``[T, *shape_i]``
(Lava's 24-bit ``v``, threshold ``vThMant << 6``), both in neurosim's axis order ((n,) or
(C, H, W): Lava's (W, H, C) reversed), ``block_i`` the block class name (``Dense``, ``Conv``,
``Input``, ...); and ``steps`` (T), ``num_layers`` (L).

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

# Run as a script, Python puts this folder first on sys.path, where neurosim's ``lava.py`` (the
# to_lava backend) would shadow the real ``lava`` package: drop it.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]

import numpy as np  # noqa: E402


def load_atomic():
    """neurosim's ``atomic.py`` by file path (stdlib only), without importing neurosim here."""
    path = Path(__file__).resolve().parents[2] / "neurosim" / "atomic.py"
    spec = importlib.util.spec_from_file_location("neurosim_atomic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_input(path: Path, steps: int) -> np.ndarray:
    """The input spikes ``[T_in, *shape]`` from ``path``, checked, zero-padded to ``[steps, *shape]``."""
    if not path.is_file():
        raise ValueError(f"{path}: input file not found")
    spikes = np.load(path, allow_pickle=False)
    if spikes.ndim not in (2, 4):
        raise ValueError(f"{path}: input must be [T, n] or [T, C, H, W] (time first), got shape {spikes.shape}")
    if spikes.shape[0] > steps:
        raise ValueError(f"{path}: input has {spikes.shape[0]} steps, more than --steps {steps}")
    if not np.issubdtype(spikes.dtype, np.number) or not np.all(np.isfinite(spikes)) \
            or not np.array_equal(spikes, np.round(spikes)):
        raise ValueError(f"{path}: input must hold integers (spike counts or graded values)")
    padded = np.zeros((steps, *spikes.shape[1:]), dtype=np.int32)
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
    # the input shape in Lava's (W, H, C) order: used by Lava only when the file has no input layer
    net = netx.hdf5.Network(net_config=str(netx_path), input_shape=tuple(spikes.shape[1:][::-1]))
    if tuple(net.inp.shape) != tuple(spikes.shape[1:][::-1]):
        raise ValueError(f"{netx_path}: network input shape {tuple(net.inp.shape[::-1])} (neurosim's order) does "
                         f"not match the input's {tuple(spikes.shape[1:])}")
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
            result[f"spikes_{index}"] = sink.data.get().T.astype(np.int32)      # [W, H, C, T] -> [T, C, H, W]
            shape = tuple(layer.neuron.s_out.shape)
            voltage = np.asarray(monitor.get_data()[layer.neuron.name]["v"]).reshape(steps, *shape)
            axes = (0, *range(len(shape), 0, -1))
            result[f"voltage_{index}"] = voltage.transpose(axes).astype(np.int32)
            result[f"block_{index}"] = np.array(type(layer).__name__)
    finally:
        net.stop()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run netx files on Lava (fixed_pt CPU).")
    parser.add_argument("--netx", type=Path, required=True, action="append", help="netx HDF5 file")
    parser.add_argument("--input", type=Path, required=True, action="append",
                        help=".npy spikes [T_in, *shape], one per --netx")
    parser.add_argument("--steps", type=int, action="append",
                        help="time steps to run, >= T_in (default T_in), one per --netx or none")
    parser.add_argument("--out", type=Path, required=True, action="append", help=".npz file to write, one per --netx")
    args = parser.parse_args(argv)
    jobs = len(args.netx)
    try:
        if len(args.input) != jobs or len(args.out) != jobs or (args.steps and len(args.steps) != jobs):
            raise ValueError("give one --input, --out (and --steps, if any) per --netx")
        checked = []
        for index in range(jobs):                   # every job's files are checked before Lava starts
            if not args.netx[index].is_file():
                raise ValueError(f"{args.netx[index]}: netx file not found")
            t_in = np.load(args.input[index], allow_pickle=False).shape[0] if args.input[index].is_file() else 0
            steps = args.steps[index] if args.steps else t_in
            if steps < 1:
                raise ValueError(f"--steps must be >= 1, got {steps}")
            checked.append((args.netx[index], read_input(args.input[index], steps), args.out[index]))
        atomic = load_atomic()
        for netx_path, spikes, out in checked:
            result = run_netx(netx_path, spikes)
            with atomic.atomic_path(out) as tmp:
                with open(tmp, "wb") as handle:  # a file object: np.savez would append .npz to a name
                    np.savez(handle, **result)
    except ValueError as error:
        print(f"lava_runner: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
