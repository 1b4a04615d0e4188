"""The ``neurosim`` command line: ``simulate``, ``train``, ``info``, ``conform``, ``export`` and ``compare``
(:mod:`neurosim.compare`).

    neurosim simulate CONFIG [--out DIR] [--steps N] [--seed S]
    neurosim train CONFIG [--out DIR] [--epochs N]
    neurosim info
    neurosim conform MODEL [--input FILE.npy|.npz] [--seed N] [--steps T] [--batch B] [--rate P]
                           [--backends a,b,...] [--report PATH.md|.html]
    neurosim export MODEL --to nir|netx|norse|lava|brian2 -o PATH
    neurosim compare EXAMPLE|--all [--quick|--full] [--seeds N|--seed N] [--out DIR] [-- EXAMPLE FLAGS]

MODEL is a saved network (``neurosim.save``), a NIR or netx file, a YAML/TOML config or an
example network name (:mod:`neurosim.hardware.model_source`). ``conform`` runs one input through
neurosim and every backend that can take the network and prints the table of
:mod:`neurosim.hardware.conform`; it exits 0 when every backend that ran agreed spike for spike,
1 when one differed (or failed while running), 2 for a bad input, model or backend name, and 3
when a backend named in ``--backends`` could not take the network (unsupported nodes, missing
library). ``export`` writes the network for another tool (see :func:`export`), atomically, and
exits 2 when the target cannot take it.

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

from .validation import positive_int_argument

__all__ = ["main", "simulate", "train", "info"]

_BACKENDS = ["norse", "brian2", "tonic", "nir", "nirtorch", "torch_geometric", "h5py", "matplotlib",
             "lava", "lava.lib.dl.netx", "snntorch", "spikingjelly"]
#: what ``neurosim conform`` / ``neurosim export`` drive (listed by ``neurosim info``)
_COMMANDS_BACKENDS = {"conform": "saved, nir, norse, norse-cuda, brian2 (+ netx, lava when installed)",
                      "export": "nir, netx, norse, lava"}
EXPORT_TARGETS = ("nir", "netx", "norse", "lava", "brian2")


class UsageError(Exception):
    """A bad MODEL, input file, option or backend name: exit status 2, one line on stderr."""


class BackendRefused(Exception):
    """A backend named explicitly cannot take the network or is missing: exit status 3 (conform)."""


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
            "backends": backends, "commands": dict(_COMMANDS_BACKENDS)}


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


# ---------------------------------------------------------------------- conform and export
def _load_model(model: str, seed: int = 0, input_shape: Optional[str] = None):
    """``(Simulator, kind)`` for MODEL; any problem of the file or name is a :class:`UsageError`.
    ``input_shape``: "C,H,W" or "n", for a netx file without an input layer."""
    from neurosim.hardware.model_source import load_model
    from .config import ConfigError
    shape = None
    if input_shape is not None:
        try:
            shape = tuple(int(n) for n in input_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) not in (1, 3) or min(shape) < 1:
            raise UsageError(f"--input-shape {input_shape!r}: expected n or C,H,W (positive integers)")
    try:
        return load_model(model, seed, input_shape=shape)
    except ConfigError:
        raise
    except (ValueError, KeyError, OSError) as e:   # ModelSourceError, SavedNetworkError, NIR errors
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise UsageError(message if model in message else f"{model}: {message}") from None


def _read_input_file(path: str, shapes: Dict[str, tuple], dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """Time-first inputs from a ``.npy`` (one graph input) or ``.npz`` (one array per input name)."""
    import numpy as np
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such input file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:   # numpy raises ValueError/OSError/EOFError/zipfile errors for bad files
        raise UsageError(f"{path}: not a .npy/.npz array file ({type(e).__name__}: {e})") from None
    if isinstance(loaded, np.ndarray):
        if len(shapes) != 1:
            raise UsageError(f"{path}: the network has inputs {list(shapes)}; give a .npz with one array per name")
        arrays = {next(iter(shapes)): loaded}
    else:
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        if len(shapes) == 1 and len(arrays) == 1:
            arrays = {next(iter(shapes)): next(iter(arrays.values()))}
        if set(arrays) != set(shapes):
            raise UsageError(f"{path}: arrays {sorted(arrays)}, but the network's inputs are {list(shapes)}")
    inputs = {}
    for name, array in arrays.items():
        want = tuple(shapes[name])
        if array.ndim != 2 + len(want) or tuple(array.shape[2:]) != want or array.shape[0] < 1 or array.shape[1] < 1:
            raise UsageError(f"{path}: input {name!r} has shape {tuple(array.shape)}, expected "
                             f"[T, batch, {', '.join(map(str, want))}] (time first)")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise UsageError(f"{path}: input {name!r} has dtype {array.dtype}, expected numbers")
        inputs[name] = torch.from_numpy(np.ascontiguousarray(array).astype(np.float64)).to(dtype)
    sizes = {tuple(x.shape[:2]) for x in inputs.values()}
    if len(sizes) != 1:
        raise UsageError(f"{path}: the inputs have different [T, batch]: {sorted(sizes)}")
    return inputs


def _bernoulli_inputs(shapes: Dict[str, tuple], steps: int, batch: int, rate: float, seed: int,
                      dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """Seeded Bernoulli spikes: each entry of ``[steps, batch, *shape]`` is 1 with probability ``rate``."""
    gen = torch.Generator().manual_seed(seed)
    return {name: (torch.rand((steps, batch, *shape), generator=gen) < rate).to(dtype) for name, shape in shapes.items()}


def conform(model: str, input_path: Optional[str] = None, seed: int = 0, steps: Optional[int] = None,
            batch: Optional[int] = None, rate: Optional[float] = None, backends: Optional[str] = None,
            report: Optional[str] = None, quiet: bool = False, input_shape: Optional[str] = None):
    """Run one input through neurosim and the backends (:func:`neurosim.hardware.conform.conform`),
    print the table, write ``report`` (``.md``/``.html``) when given; returns the report.

    The input: ``input_path`` (``.npy`` for one graph input, ``.npz`` one array per input name,
    time first ``[T, batch, *shape]``), or Bernoulli spikes with probability ``rate`` per step
    (default 0.2) for ``steps`` (100) x ``batch`` (2), drawn under ``seed`` (0, which also seeds
    an example network's weights). Raises :class:`UsageError` for a bad model, input, option or
    backend name, and :class:`BackendRefused` when a backend named in ``backends`` did not run."""
    from neurosim.hardware.conform import conform as run_conform, conformance_runners, network_dtype
    if report is not None and os.path.splitext(report)[1].lower() not in (".md", ".html", ".htm"):
        raise UsageError(f"--report {report}: the report must end in .md or .html")
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise UsageError(f"--rate {rate}: must be a spike probability per step in [0, 1]")
    if input_path is not None and (steps is not None or batch is not None or rate is not None):
        raise UsageError("--steps, --batch and --rate make the generated input; they cannot go with --input")
    names = None
    if backends is not None:
        names = [n.strip() for n in backends.split(",") if n.strip()]
        known = conformance_runners()
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise UsageError(f"--backends: unknown backend(s) {unknown or [backends]} (known: {', '.join(known)})")
    sim, kind = _load_model(model, seed, input_shape)
    dtype = network_dtype(sim)
    shapes = dict(sim.graph.inputs)
    if input_path is not None:
        inputs = _read_input_file(input_path, shapes, dtype)
    else:
        inputs = _bernoulli_inputs(shapes, steps or 100, batch or 2, 0.2 if rate is None else rate, seed, dtype)
    result = run_conform(sim, inputs, names)
    if not quiet:
        print(f"conformance of {model} ({kind})")
        print(result.table())
    if report is not None:
        written = result.to_html(report) if report.lower().endswith((".html", ".htm")) else result.to_markdown(report)
        if not quiet:
            print(f"wrote {written}")
    refused = [r for r in result.rows.values() if names is not None and r.name in names
               and r.status in ("unsupported", "unavailable")]
    if refused:
        raise BackendRefused("; ".join(f"{r.name} could not run: {r.reason}" for r in refused))
    return result


def _norse_nir(sim):
    """The NIR graph of ``sim`` as ``norse.torch.from_nir`` reads it.

    Norse reads a NIR ``LIF`` as its ``LIFBoxCell``, forward Euler ``v <- v + dt/tau (v_leak - v +
    I)`` with a reset to ``v_reset``, and ignores ``r``. neurosim's exact integration, ``v <- a v +
    (1 - a) I`` with ``a = exp(-dt/tau)``, is that update with ``tau' = dt / (1 - a)``, which is
    what is written. Refused (one ``UnsupportedNodesError``): neuron models other than ``lif``,
    ``reset="subtract"``, refractory steps, delayed input, ``r != 1`` and every node that
    :func:`~neurosim.hardware.nir.to_nir` refuses."""
    import math

    import nir
    import numpy as np

    from neurosim.hardware.nir import to_nir
    from neurosim.hardware.registry import UnsupportedNodesError
    from .population import Population

    problems = []
    for name, node in sim.graph.nodes.items():
        if not isinstance(node, Population):
            continue
        p, why = node.params, []
        if node.model.name != "lif":
            why.append(f"neuron model {node.model.name!r}: only lif is read by Norse's from_nir as neurosim runs it "
                       f"(export --to nir and read it with neurosim)")
        else:
            if p.reset == "subtract":
                why.append("reset='subtract': Norse's from_nir resets to v_reset")
            if p.refractory_steps:
                why.append("refractory steps: Norse's from_nir has none")
            if not p.input_same_step:
                why.append("input_same_step=False: Norse's from_nir applies the input in the same step")
            r = p.r.detach() if isinstance(p.r, torch.Tensor) else torch.tensor(float(p.r))
            if not bool((r == 1).all()):
                why.append("r != 1: Norse's from_nir ignores r")
        problems += [(name, type(node).__name__, w) for w in why]
    if problems:
        raise UnsupportedNodesError("norse export", problems)
    graph = to_nir(sim)
    for name, node in graph.nodes.items():
        pop = sim.graph.nodes[name] if name in sim.graph.nodes else None
        if isinstance(node, nir.LIF) and pop is not None and pop.params.integration == "exact":
            a = np.exp(-sim.dt / np.asarray(node.tau, dtype=np.float64))
            node.tau = (sim.dt / (1.0 - a)).astype(np.float64)
    assert math.isfinite(sim.dt)
    return graph


def export(model: str, target: str, path: str, seed: int = 0, quiet: bool = False,
           input_shape: Optional[str] = None) -> str:
    """Write MODEL for ``target``, atomically, and return the path written.

    * ``nir``: the NIR file of :func:`~neurosim.hardware.nir.write_nir` (neurosim's
      discretisation contract in the metadata; :func:`~neurosim.hardware.nir.read_nir` gives the
      same spikes back, and other NIR tools read the graph).
    * ``norse``: a NIR file written for ``norse.torch.from_nir(nir.read(path), dt=dt)``
      (see :func:`_norse_nir`), which then gives neurosim's spikes.
    * ``netx``: lava-dl's netx HDF5 (``neurosim.hardware.loihi.netx.to_netx``) of a fixed-point
      network (``neurosim.hardware.loihi.quantize`` first); loaded by ``lava.lib.dl.netx``.
    * ``lava``: Lava has no file format of its own: the netx file that
      ``lava.lib.dl.netx.hdf5.Network`` turns into Lava processes (as ``netx``).
    * ``brian2``: refused. Brian2 has no network file format; use
      :func:`neurosim.hardware.brian2.to_brian2` from Python, or ``--to nir``.

    Raises :class:`UsageError` for an unknown target or a bad MODEL and the backend's
    ``UnsupportedNodesError`` (listing every node it cannot map) when it cannot take the network."""
    from neurosim.atomic import atomic_path
    if target not in EXPORT_TARGETS:
        raise UsageError(f"--to {target}: unknown target (choose from {', '.join(EXPORT_TARGETS)})")
    if target == "brian2":
        raise UsageError("--to brian2: Brian2 has no network file format to write; build the network in Python "
                         "with neurosim.hardware.brian2.to_brian2(sim), or export --to nir")
    sim, _ = _load_model(model, seed, input_shape)
    if target == "nir":
        from neurosim.hardware.nir import write_nir
        write_nir(path, sim)
    elif target == "norse":
        import nir
        graph = _norse_nir(sim)
        with atomic_path(path) as tmp:
            nir.write(tmp, graph)
    else:
        if importlib.util.find_spec("neurosim.hardware.loihi.netx") is None:
            raise UsageError(f"--to {target}: this neurosim has no netx writer (neurosim.hardware.loihi.netx)")
        from neurosim.hardware.loihi.netx import to_netx
        with atomic_path(path) as tmp:
            to_netx(sim, tmp)
    if not quiet:
        note = {"lava": " (a netx file: load it with lava.lib.dl.netx.hdf5.Network)",
                "norse": f" (a NIR file: norse.torch.from_nir(nir.read(path), dt={sim.dt:g}))"}.get(target, "")
        print(f"wrote {path}{note}")
    return path



def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurosim", description="Simulate and train spiking neural networks.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="run the simulation a YAML/TOML config describes",
                       description="Run a network described in a YAML or TOML file; write an HDF5 recording and plots.")
    s.add_argument("config", help="path to a .yaml/.yml/.toml config")
    s.add_argument("--out", help="output folder (default: the config's output.dir, else ./out)")
    s.add_argument("--steps", type=positive_int_argument, help="override the number of time steps")
    s.add_argument("--seed", type=int, help="override the random seed")
    t = sub.add_parser("train", help="train a config's network on built-in synthetic data",
                       description="Train with surrogate gradients on built-in rate patterns; checkpoints each epoch.")
    t.add_argument("config")
    t.add_argument("--out", help="output folder for checkpoints")
    t.add_argument("--epochs", type=positive_int_argument, help="override train.epochs")
    sub.add_parser("info", help="versions, devices and available backends")
    c = sub.add_parser("conform", help="run one input through neurosim and every backend, compare spikes",
                       description="Compare a network's spikes in neurosim and in every backend that can take it. "
                                   "Exit 0: all agree exactly; 1: some differ; 2: bad input; 3: a backend named "
                                   "in --backends could not run.")
    c.add_argument("model", help="saved network, NIR or netx file, YAML/TOML config, or example name")
    c.add_argument("--input", dest="input_path", help="time-first input [T, batch, ...]: .npy, or .npz per input")
    c.add_argument("--seed", type=int, default=0, help="seed of the generated input and example weights (0)")
    c.add_argument("--steps", type=positive_int_argument, help="time steps of the generated input (100)")
    c.add_argument("--batch", type=positive_int_argument, help="samples of the generated input (2)")
    c.add_argument("--rate", type=float, help="spike probability per step of the generated input (0.2)")
    c.add_argument("--backends", help="comma-separated backends (default: all registered)")
    c.add_argument("--report", help="also write a report with raster plots: PATH.md or PATH.html")
    c.add_argument("--input-shape", help="C,H,W (or n): the input of a netx file that has no input layer")
    e = sub.add_parser("export", help="write a network for another tool",
                       description="Write MODEL as a file another tool reads: nir (NIR), norse (NIR for "
                                   "norse.torch.from_nir), netx and lava (lava-dl netx HDF5); brian2 is refused.")
    e.add_argument("model", help="saved network, NIR or netx file, YAML/TOML config, or example name")
    e.add_argument("--to", required=True, dest="target", help="nir, netx, norse, lava or brian2")
    e.add_argument("-o", "--output", required=True, help="the file to write")
    e.add_argument("--seed", type=int, default=0, help="seed of an example network's weights (0)")
    e.add_argument("--input-shape", help="C,H,W (or n): the input of a netx file that has no input layer")
    sub.add_parser("compare", help="train an example's spiking and conventional variants and write a report",
                   description="neurosim compare EXAMPLE|--all [...]: see `neurosim compare --help` "
                               "(neurosim.compare)", add_help=False)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from .config import ConfigError
    raw = sys.argv[1:] if argv is None else list(argv)
    if raw[:1] == ["compare"]:         # its own parser: the flags after -- go to the example
        from .compare import main as compare_main
        return compare_main(raw[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command in ("conform", "export"):
            return _conform_or_export(args)
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


def _conform_or_export(args) -> int:
    """Run ``conform``/``export`` and turn their errors into exit statuses (see the module docstring)."""
    from neurosim.hardware.registry import UnsupportedNodesError
    from .config import ConfigError
    try:
        if args.command == "export":
            export(args.model, args.target, args.output, args.seed, input_shape=args.input_shape)
            return 0
        report = conform(args.model, args.input_path, args.seed, args.steps, args.batch, args.rate, args.backends,
                         args.report, input_shape=args.input_shape)
    except (UsageError, ConfigError, UnsupportedNodesError) as e:
        hint = ""
        if isinstance(e, UnsupportedNodesError) and getattr(args, "target", None) in ("netx", "lava"):
            hint = "\n(netx and lava take the fixed-point Loihi model: quantize the network first, " \
                   "neurosim.hardware.loihi.quantize)"
        print(f"neurosim: error: {e}{hint}", file=sys.stderr)
        return 2
    except BackendRefused as e:
        print(f"neurosim: error: {e}", file=sys.stderr)
        return 3
    return 0 if report.all_exact else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
