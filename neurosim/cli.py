"""The ``neurosim`` command line: ``simulate``, ``train`` and ``info``.

    neurosim simulate CONFIG [--out DIR] [--steps N] [--seed S]
    neurosim train CONFIG [--out DIR] [--epochs N]
    neurosim info

``simulate`` builds the network of a YAML/TOML config (see :mod:`neurosim.config`), encodes the
inputs, runs the Simulator, streams the monitored variables to an HDF5 recording and draws a
raster plot and state traces. ``train`` trains the network on the built-in synthetic rate
patterns with surrogate gradients and writes checkpoints. ``info`` prints versions, devices and
which optional backends import.

Errors: the whole config is checked before anything runs (:func:`neurosim.config.load_run_config`).
A bad config (or a bad option) exits with status 2 and one line on stderr,
``neurosim: error: <file>: <key.path>: <what is wrong>``; :func:`main` turns every
``ConfigError`` into that line, and nothing else: an error while running is a bug or an
environment problem and keeps its traceback (exit status 1). Streamed recordings appear only
when the run succeeds.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from typing import Any, Dict, List, Optional

import torch

__all__ = ["main", "simulate", "train", "info"]

_BACKENDS = ["norse", "brian2", "tonic", "nir", "nirtorch", "torch_geometric", "h5py", "matplotlib",
             "lava", "lava.lib.dl.netx", "snntorch", "spikingjelly"]


def info() -> Dict[str, Any]:
    """Versions of Python, torch and neurosim, the devices, and which optional backends import."""
    import neurosim
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    backends = {}
    for name in _BACKENDS:
        try:
            module = importlib.import_module(name)
            backends[name] = getattr(module, "__version__", "available")
        except Exception as e:  # an optional backend may fail in many ways; report, never crash
            backends[name] = f"not available ({type(e).__name__})"
    return {"neurosim": neurosim.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "devices": devices, "threads": torch.get_num_threads(),
            "backends": backends}


def _recording_paths(recording: str, specs) -> List[str]:
    """One file per monitor: ``recording`` itself for one monitor, else ``<root>_<node><ext>``."""
    if len(specs) == 1:
        return [recording]
    root, ext = os.path.splitext(recording)
    return [f"{root}_{spec.node}{ext}" for spec in specs]


def simulate(config_path: str, out_dir: Optional[str] = None, steps: Optional[int] = None,
             seed: Optional[int] = None, quiet: bool = False) -> Dict[str, Any]:
    """Run the simulation a config describes; returns a summary dict (rates, file paths).

    The whole config is checked first (:func:`neurosim.config.load_run_config`; a bad one raises
    ``ConfigError`` before anything runs). The recordings are streamed under temporary names and
    appear only when the run succeeds; a run that raises leaves no file behind
    (:func:`neurosim.monitor.closing_monitors`). ``steps``/``seed`` override the config's."""
    from .config import encode_inputs, load_run_config
    from .monitor import Monitor, closing_monitors
    from .plot import plot_recording
    from .simulator import Simulator

    run = load_run_config(config_path, overrides={"steps": steps, "seed": seed})
    dt, steps, batch, seed = run.settings
    sim = Simulator(run.graph, dt=dt)
    out_dir = out_dir or run.output.dir
    recording = os.path.join(out_dir, run.output.recording)
    os.makedirs(os.path.dirname(os.path.abspath(recording)), exist_ok=True)
    inputs = encode_inputs(run.inputs, run.graph, run.settings, torch.Generator().manual_seed(seed))
    monitors = [Monitor(spec.node, spec.variables, spec.every, path=file)
                for spec, file in zip(run.monitors, _recording_paths(recording, run.monitors))]
    with closing_monitors(monitors), torch.no_grad():
        result = sim.run(inputs, monitors=monitors, count_ops=True)
    summary = {"steps": steps, "dt": dt, "batch": batch, "recordings": [m.path for m in monitors], "rates_hz": {}, "plots": []}
    for name, node in run.graph.nodes.items():
        if node.emits_spikes and name in result.ops:
            n_neurons = torch.Size(node.out_shape).numel()
            summary["rates_hz"][name] = result.ops[name]["spikes"] / (n_neurons * batch * steps * dt)
    summary["synops"] = sum(v.get("synops", 0.0) for v in result.ops.values())
    if run.output.plots:
        for m in monitors:
            png = os.path.splitext(m.path)[0] + ".png"
            plot_recording(m.path, png)
            summary["plots"].append(png)
    if not quiet:
        print(f"simulated {steps} steps of {dt * 1e3:g} ms (batch {batch}) from {config_path}")
        for name, rate in summary["rates_hz"].items():
            print(f"  {name}: mean firing rate {rate:.2f} Hz")
        print(f"  synaptic operations: {summary['synops']:.0f}")
        for p in summary["recordings"] + summary["plots"]:
            print(f"  wrote {p}")
    return summary


def train(config_path: str, out_dir: Optional[str] = None, epochs: Optional[int] = None,
          quiet: bool = False) -> Dict[str, Any]:
    """Train the config's network on built-in synthetic rate patterns; returns the metrics.

    The whole config, with its ``train`` section, is checked before anything runs."""
    from torch.utils.data import DataLoader

    from neurosim.datasets import RatePatterns

    from .config import load_run_config
    from .simulator import Simulator
    from .training import Trainer, get_loss, time_first_collate

    run = load_run_config(config_path, train=True)
    dt, steps, _, seed = run.settings
    spec, graph = run.train, run.graph
    (shape,) = graph.inputs.values()
    data_args = dict(n_inputs=shape[0], n_classes=spec["classes"], steps=steps, dt=dt, pattern_seed=seed,
                     rate_low=spec["rate_low"], rate_high=spec["rate_high"])
    n = spec["samples"]
    train_set = RatePatterns(n_samples=n, seed=seed, **data_args)
    val_set = RatePatterns(n_samples=max(32, n // 4), seed=seed + 1, **data_args)
    gen = torch.Generator().manual_seed(seed)
    bs = spec["batch_size"]
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True, generator=gen, collate_fn=time_first_collate)
    val_loader = DataLoader(val_set, batch_size=bs, collate_fn=time_first_collate)
    sim = Simulator(graph, dt=dt)
    optimizer = torch.optim.Adam(sim.parameters(), lr=float(spec["lr"]))
    ckpt = os.path.join(out_dir or run.output.dir, spec["checkpoints"])
    trainer = Trainer(sim, optimizer, get_loss(spec["loss"]), seed=seed, checkpoint_dir=ckpt, progress=not quiet)
    history = trainer.fit(train_loader, epochs=epochs or spec["epochs"], val_loader=val_loader)
    final = history[-1] if history else {}
    if not quiet:
        for i, h in enumerate(history, 1):
            print(f"  epoch {i}: " + ", ".join(f"{k} {v:.4f}" for k, v in h.items() if isinstance(v, float)))
        print(f"  checkpoints in {ckpt}")
    return {"history": history, "final": final, "checkpoint_dir": ckpt}


def _positive_int(text: str) -> int:
    """argparse type: an integer > 0 (a bad value exits with status 2 naming the option)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be an integer > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurosim", description="Simulate and train spiking neural networks.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="run the simulation a YAML/TOML config describes",
                       description="Run a network described in a YAML or TOML file; write an HDF5 recording and plots.")
    s.add_argument("config", help="path to a .yaml/.yml/.toml config")
    s.add_argument("--out", help="output folder (default: the config's output.dir, else ./out)")
    s.add_argument("--steps", type=_positive_int, help="override the number of time steps")
    s.add_argument("--seed", type=int, help="override the random seed")
    t = sub.add_parser("train", help="train a config's network on built-in synthetic data",
                       description="Train with surrogate gradients on built-in rate patterns; checkpoints each epoch.")
    t.add_argument("config")
    t.add_argument("--out", help="output folder for checkpoints")
    t.add_argument("--epochs", type=_positive_int, help="override train.epochs")
    sub.add_parser("info", help="versions, devices and available backends")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from .config import ConfigError
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            for key, value in info().items():
                if isinstance(value, dict):
                    print(f"{key}:")
                    for k, v in value.items():
                        print(f"  {k}: {v}")
                else:
                    print(f"{key}: {value}")
        elif args.command == "simulate":
            simulate(args.config, args.out, args.steps, args.seed)
        else:
            train(args.config, args.out, args.epochs)
    except ConfigError as e:
        print(f"neurosim: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
