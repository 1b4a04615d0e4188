"""The ``neurosim`` command line: ``simulate``, ``train`` and ``info``.

    neurosim simulate CONFIG [--out DIR] [--steps N] [--seed S]
    neurosim train CONFIG [--out DIR] [--epochs N]
    neurosim info

``simulate`` builds the network of a YAML/TOML config (see :mod:`neurosim.config`), encodes the
inputs, runs the Simulator, streams the monitored variables to an HDF5 recording and draws a
raster plot and state traces. ``train`` trains the network on the built-in synthetic rate
patterns with surrogate gradients and writes checkpoints. ``info`` prints versions, devices and
which optional backends import. A bad config exits with status 2 and a message that names the
file and the key.
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


def _encode_inputs(config, graph, steps: int, batch: int, dt: float, path: str, generator) -> Dict[str, torch.Tensor]:
    from .coding import poisson_encode
    from .config import ConfigError
    specs = config.get("input", {})
    inputs = {}
    for name, shape in graph.inputs.items():
        spec = specs.get(name, {"encoder": "poisson", "rate": 20.0})
        where = f"input.{name}"
        encoder = spec.get("encoder", "poisson")
        if encoder == "poisson":
            rate = spec.get("rate", 20.0)
            if not isinstance(rate, (int, float)) or rate < 0:
                raise ConfigError(path, f"{where}.rate", f"must be a rate >= 0 in Hz, got {rate!r}")
            rates = torch.full((batch, *shape), float(rate))
            inputs[name] = poisson_encode(rates, steps, dt, generator=generator)
        elif encoder == "constant":
            value = spec.get("value", 1.0)
            if not isinstance(value, (int, float)):
                raise ConfigError(path, f"{where}.value", f"must be a number, got {value!r}")
            inputs[name] = torch.full((steps, batch, *shape), float(value))
        else:
            raise ConfigError(path, f"{where}.encoder", f"unknown encoder {encoder!r} (poisson, constant)")
    return inputs


def _run_settings(config, path, steps=None, seed=None):
    from .config import ConfigError
    dt = config.get("dt", 1e-3)
    steps = steps if steps is not None else config.get("steps", 200)
    batch = config.get("batch", 1)
    seed = seed if seed is not None else config.get("seed", 0)
    for key, value, ok in [("dt", dt, isinstance(dt, (int, float)) and dt > 0),
                           ("steps", steps, isinstance(steps, int) and steps > 0),
                           ("batch", batch, isinstance(batch, int) and batch > 0),
                           ("seed", seed, isinstance(seed, int))]:
        if not ok:
            raise ConfigError(path, key, f"invalid value {value!r}")
    return float(dt), steps, batch, seed


def simulate(config_path: str, out_dir: Optional[str] = None, steps: Optional[int] = None,
             seed: Optional[int] = None, quiet: bool = False) -> Dict[str, Any]:
    """Run the simulation a config describes; returns a summary dict (rates, file paths)."""
    from .config import ConfigError, build_graph, check_keys, load_config
    from .monitor import Monitor
    from .plot import plot_recording
    from .simulator import Simulator

    config = load_config(config_path)
    check_keys(config, {"dt", "steps", "batch", "seed", "network", "input", "monitors", "output", "train"},
               config_path, "")
    dt, steps, batch, seed = _run_settings(config, config_path, steps, seed)
    torch.manual_seed(seed)
    graph = build_graph(config, config_path)
    sim = Simulator(graph, dt=dt)
    output = config.get("output", {})
    out_dir = out_dir or output.get("dir", "out")
    os.makedirs(out_dir, exist_ok=True)
    recording = os.path.join(out_dir, output.get("recording", "recording.h5"))
    monitor_specs = config.get("monitors") or [{"node": n, "variables": ["output"]} for n in graph.output_names()]
    monitors = []
    for i, spec in enumerate(monitor_specs):
        where = f"monitors[{i}]"
        if not isinstance(spec, dict) or "node" not in spec:
            raise ConfigError(config_path, where, "a monitor needs a 'node'")
        check_keys(spec, {"node", "variables", "every"}, config_path, where)
        if spec["node"] not in graph.nodes:
            raise ConfigError(config_path, f"{where}.node", f"unknown node {spec['node']!r}")
        root, ext = os.path.splitext(recording)
        file = recording if len(monitor_specs) == 1 else f"{root}_{spec['node']}{ext}"
        monitors.append(Monitor(spec["node"], variables=tuple(spec.get("variables", ["output"])),
                                every=int(spec.get("every", 1)), path=file))
    generator = torch.Generator().manual_seed(seed)
    inputs = _encode_inputs(config, graph, steps, batch, dt, config_path, generator)
    with torch.no_grad():
        result = sim.run(inputs, monitors=monitors, count_ops=True)
    for m in monitors:
        m.close()
    summary = {"steps": steps, "dt": dt, "batch": batch, "recordings": [m.path for m in monitors], "rates_hz": {}, "plots": []}
    for name, node in graph.nodes.items():
        if node.emits_spikes and name in result.ops:
            n_neurons = torch.Size(node.out_shape).numel()
            summary["rates_hz"][name] = result.ops[name]["spikes"] / (n_neurons * batch * steps * dt)
    summary["synops"] = sum(v.get("synops", 0.0) for v in result.ops.values())
    if output.get("plots", True):
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
    """Train the config's network on built-in synthetic rate patterns; returns the metrics."""
    from torch.utils.data import DataLoader

    from neurosim.datasets import RatePatterns

    from .config import ConfigError, build_graph, check_keys, load_config
    from .simulator import Simulator
    from .training import Trainer, get_loss, time_first_collate

    config = load_config(config_path)
    dt, steps, _, seed = _run_settings(config, config_path)
    spec = config.get("train")
    if not isinstance(spec, dict):
        raise ConfigError(config_path, "train", "a 'train' section is required for `neurosim train`")
    check_keys(spec, {"epochs", "batch_size", "lr", "loss", "samples", "classes", "rate_low", "rate_high", "checkpoints"},
               config_path, "train")
    torch.manual_seed(seed)
    graph = build_graph(config, config_path)
    (input_name, shape), = graph.inputs.items()
    n_classes = spec.get("classes", 2)
    out_shape = graph.nodes[graph.output_names()[0]].out_shape
    if out_shape != (n_classes,):
        raise ConfigError(config_path, "train.classes", f"{n_classes} classes but the output node has shape {out_shape}")
    data_args = dict(n_inputs=shape[0], n_classes=n_classes, steps=steps, dt=dt, pattern_seed=seed,
                     rate_low=spec.get("rate_low", 5.0), rate_high=spec.get("rate_high", 60.0))
    n = spec.get("samples", 256)
    train_set = RatePatterns(n_samples=n, seed=seed, **data_args)
    val_set = RatePatterns(n_samples=max(32, n // 4), seed=seed + 1, **data_args)
    gen = torch.Generator().manual_seed(seed)
    bs = spec.get("batch_size", 32)
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True, generator=gen, collate_fn=time_first_collate)
    val_loader = DataLoader(val_set, batch_size=bs, collate_fn=time_first_collate)
    sim = Simulator(graph, dt=dt)
    try:
        loss_fn = get_loss(spec.get("loss", "count_cross_entropy"))
    except KeyError as e:
        raise ConfigError(config_path, "train.loss", str(e).strip('"')) from None
    optimizer = torch.optim.Adam(sim.parameters(), lr=float(spec.get("lr", 1e-2)))
    out_dir = out_dir or config.get("output", {}).get("dir", "out")
    ckpt = os.path.join(out_dir, spec.get("checkpoints", "checkpoints"))
    trainer = Trainer(sim, optimizer, loss_fn, seed=seed, checkpoint_dir=ckpt, progress=not quiet)
    history = trainer.fit(train_loader, epochs=epochs or spec.get("epochs", 3), val_loader=val_loader)
    final = history[-1] if history else {}
    if not quiet:
        for i, h in enumerate(history, 1):
            print(f"  epoch {i}: " + ", ".join(f"{k} {v:.4f}" for k, v in h.items() if isinstance(v, float)))
        print(f"  checkpoints in {ckpt}")
    return {"history": history, "final": final, "checkpoint_dir": ckpt}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurosim", description="Simulate and train spiking neural networks.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="run the simulation a YAML/TOML config describes",
                       description="Run a network described in a YAML or TOML file; write an HDF5 recording and plots.")
    s.add_argument("config", help="path to a .yaml/.yml/.toml config")
    s.add_argument("--out", help="output folder (default: the config's output.dir, else ./out)")
    s.add_argument("--steps", type=int, help="override the number of time steps")
    s.add_argument("--seed", type=int, help="override the random seed")
    t = sub.add_parser("train", help="train a config's network on built-in synthetic data",
                       description="Train with surrogate gradients on built-in rate patterns; checkpoints each epoch.")
    t.add_argument("config")
    t.add_argument("--out", help="output folder for checkpoints")
    t.add_argument("--epochs", type=int, help="override train.epochs")
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
