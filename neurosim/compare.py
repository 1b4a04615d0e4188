"""``neurosim compare``: train an example's spiking and conventional variants over seeds and write a report.

    neurosim compare EXAMPLE [--quick | --full] [--seeds N | --seed N] [--out DIR]
                             [--deploy | --no-deploy] [--backends a,b,...] [--threads N] [-- EXAMPLE FLAGS]
    neurosim compare --all [--quick | --full] [--seeds N | --seed N] [--out DIR] ...

EXAMPLE is one of :data:`EXAMPLES`, the module ``neurosim.examples.<name>`` (the contract is
:mod:`neurosim.examples.common`). Each seed (default 3 seeds, 0, 1, 2; ``--seed N`` runs just N) runs
``module.run(parse_example_args(module, [size flag, --seed S] + flags after --))``, so
``neurosim compare cora -- --dataset CiteSeer`` reaches the example. The report, in ``--out``
(default ``out/compare/<example>``):

* ``report.md`` (links the PNGs beside it), ``report.html`` (one self-contained page: inline CSS,
  the PNGs embedded as base64), ``report.json`` (every figure: one entry per variant with mean,
  std and per-seed values; the example's metadata, budget, references and the deployment rows);
* ``metric.png``, ``curves.png``, ``energy.png``, ``raster_<variant>.png``, ``image_<name>.png``
  (the example's own figures) and ``deploy/<variant>.net`` (the netx export).

Sections: :mod:`neurosim.report_sections`; figures and energy model: :mod:`neurosim.report_figures`;
deployment (conformance on saved/NIR/Norse/Brian2, quantisation to the fixed-point Loihi model,
netx on Lava where its environment is built): :mod:`neurosim.report_deploy`.

``--all`` runs every example into ``DIR/<example>`` (default ``out/compare``) and writes
``summary.md``/``.html``/``.json`` there: per example the best conventional and best spiking
metric, their energy ratio and the spikes per sample; an example that fails is a row saying why
(exit status 1).

Safety: every argument (the example's own flags included) is checked before anything trains or
is written; a bad one exits with status 2 and one line on stderr. The report is written into a
hidden temporary folder beside the target and renamed into place at the end, so a crash or
Ctrl-C leaves no half-written report and an existing report is replaced only once the new one is
complete; SIGTERM (``kill``, a scheduler's time limit) is handled like Ctrl-C. A tqdm bar over
the (example, seed) runs goes to stderr.

Example::

    $ neurosim compare digits --quick --seeds 1
    $ neurosim compare cora --seed 0 -- --dataset CiteSeer
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .validation import positive_int_argument

__all__ = ["EXAMPLES", "main", "compare_example", "compare_all", "CompareUsageError", "load_example",
           "parser", "summary_entry"]

#: the examples ``neurosim compare`` knows, as ``neurosim.examples.<name>`` modules
EXAMPLES: Tuple[str, ...] = ("digits", "nmnist", "cora", "ntm", "memnet", "fewshot", "diffusion", "sequence")
#: flags that compare sets itself and the example may not be given after ``--``
OWN_FLAGS = ("--seed", "--out", "--quick", "--full", "--threads")
DEFAULT_OUT = os.path.join("out", "compare")


class CompareUsageError(Exception):
    """A bad argument: exit status 2, one line on stderr, nothing trained or written."""



def parser(prog: str = "neurosim compare", add_help: bool = True) -> argparse.ArgumentParser:
    """The flags of ``neurosim compare`` (the example's own flags go after ``--``)."""
    from .report_deploy import DEFAULT_BACKENDS
    p = argparse.ArgumentParser(prog=prog, add_help=add_help,
                                description="Train an example's spiking and conventional variants on the same data "
                                            "and budget over seeds, and write a Markdown/HTML/JSON report. "
                                            "Flags after -- go to the example.")
    p.add_argument("example", nargs="?", help=f"one of: {', '.join(EXAMPLES)}")
    p.add_argument("--all", action="store_true", help="run every example and write a summary across them")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help="tiny budget (seconds)")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="paper-size budget")
    p.set_defaults(size="default")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=positive_int_argument, default=3, help="run seeds 0..N-1 (default 3)")
    seeds.add_argument("--seed", type=int, default=None, help="run this one seed only")
    p.add_argument("--out", default=None, help=f"report folder (default {DEFAULT_OUT}/<example>; "
                                               f"with --all the parent folder, default {DEFAULT_OUT})")
    p.add_argument("--deploy", action=argparse.BooleanOptionalAction, default=True,
                   help="run the deployment section (conformance on the backends; default on)")
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help=f"deployment backends, comma-separated (default {','.join(DEFAULT_BACKENDS)}; "
                        "'loihi' = quantise to the fixed-point model and write netx, 'netx'/'lava' = run it on Lava)")
    p.add_argument("--threads", type=positive_int_argument, default=None, help="torch threads (default: torch's)")
    return p


def load_example(name: str):
    """The module ``neurosim.examples.<name>``; :class:`CompareUsageError` for a name not in
    :data:`EXAMPLES`, a module that does not import, or one that misses the contract."""
    if name not in EXAMPLES:
        raise CompareUsageError(f"unknown example {name!r} (examples: {', '.join(EXAMPLES)})")
    try:
        module = importlib.import_module(f"neurosim.examples.{name}")
    except ModuleNotFoundError as e:
        raise CompareUsageError(f"example {name!r}: module neurosim.examples.{name} is not installed ({e})") from None
    missing = [a for a in ("NAME", "TITLE", "PRESETS", "add_arguments", "run") if not hasattr(module, a)]
    if missing:
        raise CompareUsageError(f"example {name!r}: neurosim.examples.{name} lacks {', '.join(missing)} "
                                "(see neurosim.examples.common)")
    return module


def _check_out(path: str, replaced: bool = True) -> str:
    """``path`` as an absolute folder that can be created (or, with ``replaced``, replaced: then an
    existing folder must be empty or an earlier report, holding ``report.json``);
    :class:`CompareUsageError` naming the problem (a file in the way, a folder that cannot be
    written, a folder of other files) otherwise."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CompareUsageError(f"--out {path}: is a file, not a folder")
    if replaced and os.path.isdir(path) and os.listdir(path) and not os.path.isfile(os.path.join(path, "report.json")):
        raise CompareUsageError(f"--out {path}: exists and is not a neurosim compare report (no report.json); "
                                "the report replaces its folder, so give a new or empty folder")
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CompareUsageError(f"--out {path}: {parent} is a file, so no folder can be made under it")
    try:                                   # a real probe: os.access says yes to root on read-only places
        os.rmdir(tempfile.mkdtemp(prefix=".neurosim-probe-", dir=parent))
    except OSError as e:
        raise CompareUsageError(f"--out {path}: {parent} is not writable ({e.strerror})") from None
    return path


def _example_argv(size: str, seed: int, passthrough: Sequence[str], threads: Optional[int]) -> List[str]:
    argv = [] if size == "default" else [f"--{size}"]
    argv += ["--seed", str(seed)] + (["--threads", str(threads)] if threads else [])
    return argv + list(passthrough)


def _check_example_args(module, size: str, seeds: Sequence[int], passthrough: Sequence[str],
                        threads: Optional[int]) -> None:
    """Parse the example's flags for every seed now (argparse exits 2 on a bad one)."""
    from neurosim.examples.common import parse_example_args
    for flag in passthrough:
        if flag.split("=")[0] in OWN_FLAGS:
            raise CompareUsageError(f"{flag} after --: neurosim compare sets it itself (give it before --)")
    for seed in seeds:
        try:
            parse_example_args(module, _example_argv(size, seed, passthrough, threads))
        except ValueError as e:
            raise CompareUsageError(str(e)) from None


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


def compare_example(module, seeds: Sequence[int], size: str, out: str, passthrough: Sequence[str] = (),
                    deploy: bool = True, backends: Sequence[str] = (), threads: Optional[int] = None,
                    bar=None) -> Dict[str, Any]:
    """Run ``module`` for each seed and write its report to the folder ``out`` (through a temporary
    folder beside it, renamed at the end; removed on any exception). Returns the report's dict.
    Arguments are assumed checked (:func:`main` does it)."""
    from neurosim.examples.common import ExampleResult, parse_example_args
    from .atomic import temp_name
    from .report_figures import aggregate
    from .report_write import commit_folder, write_documents, write_figures
    own_bar = bar is None
    if own_bar:
        bar = _bar(len(seeds))
    start = time.perf_counter()
    load = _load_average()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = temp_name(out)
    os.mkdir(tmp)
    try:
        results, seed_seconds = [], []
        for seed in seeds:
            bar.set_postfix_str(f"{module.NAME} seed {seed}")
            args = parse_example_args(module, _example_argv(size, seed, passthrough, threads))
            args.out = os.path.join(tmp, f"example_seed{seed}")
            os.mkdir(args.out)
            started = time.perf_counter()
            result = module.run(args)
            seed_seconds.append(time.perf_counter() - started)
            if not isinstance(result, ExampleResult):
                raise TypeError(f"{module.__name__}.run returned {type(result).__name__}, not an ExampleResult")
            results.append(result)
            if not os.listdir(args.out):
                os.rmdir(args.out)
            bar.update(1)
        data = aggregate(results, getattr(module, "TITLE", ""))
        images = write_figures(tmp, data, results[0], deploy, backends, bar)
        data["run"] = {"wall_seconds": time.perf_counter() - start, "load_average": load,
                       "threads": _threads(), "created": datetime.datetime.now(datetime.timezone.utc)
                       .strftime("%Y-%m-%d %H:%M UTC"), "python": platform.python_version(),
                       "argv": ["neurosim", "compare", module.NAME] + ([] if size == "default" else [f"--{size}"])
                       + ["--seeds", str(len(seeds))]
                       + (["--", *passthrough] if passthrough else []), "seeds": list(seeds),
                       "seconds_per_seed": seed_seconds,
                       "deploy_seconds": sum(d["wall_s"] for d in (data["deployment"] or {}).values())}
        write_documents(tmp, data, images)
        commit_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if own_bar:
            bar.close()
    return data


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def _bar(total: int):
    from tqdm import tqdm
    return tqdm(total=total, desc="neurosim compare", unit="run", file=sys.stderr, dynamic_ncols=True)


def summary_entry(data: Dict[str, Any], report: str = "") -> Dict[str, Any]:
    """One row of the ``--all`` summary from an example's report dict."""
    from .report_figures import best_variant
    conv, spk = best_variant(data, spiking=False), best_variant(data, spiking=True)
    ratio = None
    if conv is not None and spk is not None and spk["energy_per_sample"]["cmos45nm"]["mean"]:
        ratio = conv["energy_per_sample"]["cmos45nm"]["mean"] / spk["energy_per_sample"]["cmos45nm"]["mean"]
    return {"example": data["example"], "metric_name": data["metric_name"], "report": report,
            "conventional": conv and conv["name"], "conventional_metric": conv and conv["metric"],
            "spiking": spk and spk["name"], "spiking_metric": spk and spk["metric"], "energy_ratio": ratio,
            "spikes_per_sample": spk and spk["spikes_per_sample"], "error": None}


def compare_all(modules: Sequence[Tuple[str, Any]], seeds: Sequence[int], size: str, out: str,
                deploy: bool, backends: Sequence[str], threads: Optional[int]) -> List[Dict[str, Any]]:
    """Every example (``(name, module or the reason it cannot run)``) into ``out/<name>``, then
    the summary files in ``out``; returns the summary rows."""
    from .atomic import atomic_path
    from .report_render import to_html, to_markdown
    from .report_sections import summary_blocks
    from .report_write import jsonable
    entries = []
    bar = _bar(len(modules) * len(seeds))
    try:
        for name, module in modules:
            if isinstance(module, str):
                entries.append({"example": name, "error": module})
                bar.update(len(seeds))
                continue
            try:
                data = compare_example(module, seeds, size, os.path.join(out, name), (), deploy, backends, threads,
                                       bar)
                entries.append(summary_entry(data, os.path.join(name, "report.html")))
            except Exception as e:  # one failing example is a row of the summary; Ctrl-C still stops
                entries.append({"example": name, "error": f"{type(e).__name__}: {e}"})
                bar.write(f"neurosim compare: {name} failed: {type(e).__name__}: {e}")
    finally:
        bar.close()
    blocks = summary_blocks(entries, size)
    for file, text in (("summary.md", to_markdown(blocks)), ("summary.html", to_html(blocks, {}, "neurosim compare --all")),
                       ("summary.json", json.dumps(jsonable({"size": size, "seeds": list(seeds), "examples": entries}),
                                                   indent=1))):
        with atomic_path(os.path.join(out, file)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
    return entries


def _split(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


@contextlib.contextmanager
def _terminate_as_exit():
    """Inside the block SIGTERM raises ``SystemExit(143)`` (as Ctrl-C raises KeyboardInterrupt), so
    ``kill`` or a job scheduler's timeout also removes the temporary report folder."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``neurosim compare`` (see the module docstring); returns the exit status."""
    own, passthrough = _split(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(own)
    try:
        with _terminate_as_exit():
            return _main(args, passthrough)
    except CompareUsageError as e:
        print(f"neurosim compare: error: {e}", file=sys.stderr)
        return 2


def _main(args, passthrough: List[str]) -> int:
    from .report_deploy import DEFAULT_BACKENDS
    from neurosim.hardware.conform import conformance_runners
    if args.all == (args.example is not None):
        raise CompareUsageError("give one EXAMPLE or --all" + ("" if args.all else f" (examples: {', '.join(EXAMPLES)})"))
    if args.all and passthrough:
        raise CompareUsageError("flags after -- go to one example; they cannot go with --all")
    seeds = [args.seed] if args.seed is not None else list(range(args.seeds))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.deploy:
        known = set(conformance_runners()) | set(DEFAULT_BACKENDS)
        unknown = [b for b in backends if b not in known]
        if unknown or not backends:
            raise CompareUsageError(f"--backends: unknown backend(s) {unknown or [args.backends]} "
                                    f"(known: {', '.join(sorted(known))})")
    if args.all:
        out = _check_out(args.out or DEFAULT_OUT, replaced=False)
        modules = []
        for name in EXAMPLES:
            _check_out(os.path.join(out, name))
            try:
                module = load_example(name)
                _check_example_args(module, args.size, seeds, (), args.threads)
                modules.append((name, module))
            except CompareUsageError as e:
                print(f"neurosim compare: {e}; skipped", file=sys.stderr)
                modules.append((name, str(e)))
    else:
        module = load_example(args.example)
        out = _check_out(args.out or os.path.join(DEFAULT_OUT, args.example))
        _check_example_args(module, args.size, seeds, passthrough, args.threads)
    import torch
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.all:
            entries = compare_all(modules, seeds, args.size, out, args.deploy, backends, args.threads)
            print(f"wrote {os.path.join(out, 'summary.html')} ({len(entries)} examples)")
            return 1 if any(e.get("error") for e in entries) else 0
        data = compare_example(module, seeds, args.size, out, passthrough, args.deploy, backends, args.threads)
    finally:
        torch.set_num_threads(threads)
    _print_summary(data, out)
    return 0


def _print_summary(data: Dict[str, Any], out: str) -> None:
    from .report_sections import SUMMARY_HEADER, summary_rows
    rows = [SUMMARY_HEADER] + summary_rows(data)
    widths = [max(len(r[i]) for r in rows) for i in range(len(SUMMARY_HEADER))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"report: {os.path.join(out, 'report.html')} (also report.md, report.json)")
