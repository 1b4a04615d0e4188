"""`neurosim compare`: the report (HTML parses, tables and images present, JSON figures equal to what
the examples returned, the deployment section on a real engine Simulator), bad arguments (exit 2,
nothing written), crashes (no report, no temporary folder) and `--all` with its summary.

The examples here are fake modules injected as ``neurosim.examples.fake_*``: their metrics are
made-up numbers (the report is under test, not the training), but their spiking variant is a
small engine network that really runs, measured by ``measure_simulator``."""
import base64
import html.parser
import importlib.util
import io
import json
import math
import os
import statistics
import sys
import types

import pytest
import torch
from PIL import Image

from neurosim import compare, report_deploy
from neurosim.cli import main
from neurosim.examples.common import ExampleResult, PaperFigure, VariantResult, measure_simulator
from neurosim.hardware import conform as conform_module
from neurosim.hardware.example_networks import example_network
from neurosim.metrics import ENERGY_PRESETS

FAST = ["--backends", "saved,nir"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_fake(name: str, offset: float = 0.0):
    """A fake example module; ``module.returned`` records (seed, variant, metric) of every run."""
    module = types.ModuleType(f"neurosim.examples.{name}")
    module.NAME, module.TITLE = name, f"fake example {name}"
    module.PRESETS = {"quick": {"epochs": 2}, "default": {"epochs": 3}, "full": {"epochs": 5}}
    module.returned = []

    def add_arguments(parser):
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--crash-at-seed", type=int, default=None)
        parser.add_argument("--scale", type=float, default=1.0)

    def run(args):
        if args.crash_at_seed == args.seed:
            raise RuntimeError(f"fake crash at seed {args.seed}")
        gen = torch.Generator().manual_seed(100 + args.seed)
        sim = example_network("feedforward", seed=args.seed)
        x = (torch.rand(25, 3, 20, generator=gen) < 0.2).to(torch.float64)
        m = measure_simulator(sim, x)
        metrics = {"mlp": offset + 0.8 + 0.03 * args.seed * args.scale,
                   "snn": offset + 0.7 + float(torch.rand(1, generator=gen)) * 0.1,
                   "hybrid": offset + 0.6 + 0.01 * args.seed}
        module.returned += [(args.seed, k, v) for k, v in metrics.items()]
        hist = lambda base: {"train_loss": [1.0 / (e + 1) + base for e in range(args.epochs)],  # noqa: E731
                             "val_accuracy": [0.5 + 0.1 * e + base for e in range(args.epochs)]}
        variants = [
            VariantResult("mlp", "conventional", metrics["mlp"], params=1000 + args.seed, time_steps=1,
                          train_seconds=0.5, seconds_per_sample=1e-4, macs_per_sample=5000.0 + 10 * args.seed,
                          history=hist(0.0)),
            VariantResult("snn", "spiking", metrics["snn"], params=900, time_steps=m.time_steps, train_seconds=0.7,
                          seconds_per_sample=m.seconds_per_sample, macs_per_sample=m.macs_per_sample,
                          spikes_per_sample=m.spikes_per_sample, synops_per_sample=m.synops_per_sample,
                          history=hist(0.01), raster=m.raster, simulator=sim, deploy_inputs=x[:, :2]),
            VariantResult("hybrid", "hybrid", metrics["hybrid"], params=950, time_steps=25, train_seconds=0.9,
                          seconds_per_sample=2e-4, macs_per_sample=100.0, spikes_per_sample=40.0,
                          synops_per_sample=400.0, history=hist(0.02), raster=m.raster,
                          deploy_note="plug-in Block 'attn' has no NIR mapping"),
        ]
        return ExampleResult(name, "fake task", "test accuracy", True, 0.1, args.seed, args.size,
                             {"epochs": args.epochs}, variants,
                             references=[PaperFigure("Some net", 0.9, "Someone et al. 2020", "full data")],
                             images={"grid": _png_bytes()}, notes=["reduced budget (fake)"])

    module.add_arguments, module.run = add_arguments, run
    return module


@pytest.fixture
def fakes(monkeypatch):
    mods = {"fake_a": make_fake("fake_a"), "fake_b": make_fake("fake_b", offset=0.05)}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, f"neurosim.examples.{name}", mod)
    monkeypatch.setattr(compare, "EXAMPLES", tuple(mods))
    return mods


@pytest.fixture
def fast_plots(monkeypatch):
    """Tiny PNGs instead of matplotlib's figures, for tests of everything but the figures."""
    from neurosim import report_plots
    for name in ("curves_png", "metric_png", "energy_png", "raster_png"):
        monkeypatch.setattr(report_plots, name, lambda *a, **k: _png_bytes())


class _Page(html.parser.HTMLParser):
    """Collects table rows (cell texts) and image sources of an HTML page."""

    def __init__(self):
        super().__init__()
        self.rows, self.images, self._row, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(open(path, encoding="utf-8").read())
    page.close()
    return page


def _decode_png(src: str):
    assert src.startswith("data:image/png;base64,"), src[:40]
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    image.verify()                              # raises on a corrupt PNG
    assert image.format == "PNG"
    return image


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.endswith(".tmp") or ".tmp." in n]


def test_report_html_markdown_and_json_hold_every_figure(fakes, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", "fake_a", "--quick", "--seeds", "3", "--out", str(out)] + FAST) == 0
    captured = capsys.readouterr()
    assert "neurosim compare" in captured.err                 # the tqdm bar
    assert "report.html" in captured.out
    data = json.loads((out / "report.json").read_text())
    assert [v["name"] for v in data["variants"]] == ["mlp", "snn", "hybrid"]
    returned = fakes["fake_a"].returned
    for v in data["variants"]:
        values = [m for s, k, m in sorted(returned) if k == v["name"]]
        assert v["metric"]["per_seed"] == pytest.approx(values)
        assert v["metric"]["mean"] == pytest.approx(statistics.mean(values))
        assert v["metric"]["std"] == pytest.approx(statistics.stdev(values))
        assert len(v["history"]["train_loss"]) == 2              # quick preset: 2 epochs
    assert data["seeds"] == [0, 1, 2] and data["size"] == "quick" and data["budget"] == {"epochs": 2}
    assert data["references"][0]["model"] == "Some net"
    # energy: the 45 nm figures, spiking = synops e_AC + MACs e_MAC, conventional = MACs e_MAC
    e = ENERGY_PRESETS["cmos45nm"]
    mlp, snn = data["variants"][0], data["variants"][1]
    assert mlp["energy_per_sample"]["cmos45nm"]["mean"] == pytest.approx(mlp["macs_per_sample"]["mean"] * e["e_mac"])
    assert snn["spikes_per_sample"]["mean"] > 0 and snn["synops_per_sample"]["mean"] > 0
    assert snn["energy_per_sample"]["cmos45nm"]["mean"] == pytest.approx(
        snn["synops_per_sample"]["mean"] * e["e_synop"] + snn["macs_per_sample"]["mean"] * e["e_mac"])
    # the HTML: summary rows for every variant, every image a PNG, one raster per spiking variant
    page = _parse(out / "report.html")
    summary = [r for r in page.rows if r and r[0] in ("mlp", "snn", "hybrid") and len(r) == 10]
    assert [r[0] for r in summary] == ["mlp", "snn", "hybrid"]
    assert summary[0][2].startswith(f"{statistics.mean(m for _, k, m in returned if k == 'mlp'):.4g} ± ")
    assert len(page.images) == len(data["files"]) >= 6
    for src in page.images:
        _decode_png(src)
    assert {"metric.png", "curves.png", "energy.png", "raster_snn.png", "raster_hybrid.png",
            "image_grid.png"} <= set(data["files"])
    for name in data["files"]:                                  # the PNGs also as files
        assert Image.open(out / name).format == "PNG"
    assert "https://" not in (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "| variant | kind | metric |" in md and "| mlp | conventional |" in md and "| snn | spiking |" in md
    assert "Horowitz" in md and "Davies" in md and "0.9 pJ" in md and "4.6 pJ" in md
    assert "Some net" in md and "reduced budget (fake)" in md
    assert _leftovers(tmp_path) == []


def test_deployment_section_is_exact_on_saved_and_nir_and_lists_the_note(fakes, fast_plots, tmp_path):
    out = tmp_path / "r"
    assert main(["compare", "fake_a", "--quick", "--seed", "1", "--out", str(out)] + FAST) == 0
    data = json.loads((out / "report.json").read_text())
    assert set(data["deployment"]) == {"snn"}                 # hybrid has no simulator
    rows = {r["backend"]: r for r in data["deployment"]["snn"]["rows"]}
    for backend in ("saved", "nir"):
        assert rows[backend]["status"] == "exact"
        assert rows[backend]["exact"] == rows[backend]["total"] > 0
        assert rows[backend]["differing"] == 0
    md = (out / "report.md").read_text()
    assert "plug-in Block 'attn' has no NIR mapping" in md
    assert data["seeds"] == [1]


def test_a_failing_backend_is_a_row_not_a_crash(fakes, fast_plots, tmp_path, monkeypatch):
    def boom(sim, inputs):
        raise RuntimeError("backend exploded")
    monkeypatch.setitem(conform_module._RUNNERS, "boom", (boom, None))
    out = tmp_path / "r"
    assert main(["compare", "fake_a", "--quick", "--seeds", "1", "--out", str(out), "--backends", "nir,boom"]) == 0
    rows = {r["backend"]: r for r in json.loads((out / "report.json").read_text())["deployment"]["snn"]["rows"]}
    assert rows["boom"]["status"] == "error" and "backend exploded" in rows["boom"]["reason"]
    assert rows["nir"]["status"] == "exact"
    assert any(r and r[0] == "boom" and r[2] == "error" for r in _parse(out / "report.html").rows)


def test_loihi_path_writes_netx_and_says_when_lava_is_missing(fakes, fast_plots, tmp_path, monkeypatch):
    monkeypatch.setattr(report_deploy, "lava_ready", lambda: "no Lava on this test machine")
    out = tmp_path / "r"
    assert main(["compare", "fake_a", "--quick", "--seeds", "1", "--out", str(out), "--backends", "loihi,netx"]) == 0
    rows = {r["backend"]: r for r in json.loads((out / "report.json").read_text())["deployment"]["snn"]["rows"]}
    fixed = rows["loihi fixed-point"]
    assert fixed["status"] in ("exact", "differs") and fixed["total"] > 0
    assert fixed["exact"] > 0.8 * fixed["total"]              # 8-bit weights keep most spikes
    assert rows["netx file"]["status"] == "written"
    assert rows["netx"]["status"] == "not run" and "Lava was not available" in rows["netx"]["reason"]
    from neurosim.hardware.loihi import from_netx
    back = from_netx(str(out / "deploy" / "snn.net"))
    assert len(back.graph.nodes) >= 2


@pytest.mark.parametrize("argv, message", [
    (["nosuch"], "unknown example 'nosuch'"),
    (["fake_a", "--", "--seed", "3"], "--seed after --"),
    (["fake_a", "--all"], "one EXAMPLE or --all"),
    ([], "one EXAMPLE or --all"),
    (["fake_a", "--backends", "saved,warp"], "unknown backend"),
])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(fakes, tmp_path, capsys, argv, message):
    out = tmp_path / "deep" / "out"                         # not even the parent may appear
    assert main(["compare"] + argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("neurosim compare: error:")
    assert os.listdir(tmp_path) == []
    assert all(r == [] for r in [m.returned for m in fakes.values()])      # nothing trained


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--seeds", "-1"], ["--", "--no-such-flag"],
                                  ["--", "--epochs", "x"], ["--quick", "--full"]])
def test_bad_flags_exit_2_through_argparse(fakes, tmp_path, argv):
    with pytest.raises(SystemExit) as info:
        main(["compare", "fake_a", "--out", str(tmp_path / "deep" / "out")] + argv)
    assert info.value.code == 2
    assert os.listdir(tmp_path) == [] and fakes["fake_a"].returned == []


def test_out_that_is_or_is_under_a_file_exits_2(fakes, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["compare", "fake_a", "--quick", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["compare", "fake_a", "--quick", "--out", str(blocker / "deeper" / "report")]) == 2
    assert "is a file, so no folder can be made under it" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["file.txt"] and blocker.read_text() == "x"


def test_a_folder_of_other_files_is_never_replaced(fakes, tmp_path, capsys):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert main(["compare", "fake_a", "--quick", "--out", str(precious)]) == 2
    assert "is not a neurosim compare report" in capsys.readouterr().err
    (tmp_path / "all" / "fake_b").mkdir(parents=True)
    (tmp_path / "all" / "fake_b" / "notes.txt").write_text("mine")
    assert main(["compare", "--all", "--quick", "--out", str(tmp_path / "all")]) == 2
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert (tmp_path / "all" / "fake_b" / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["all", "home"] and fakes["fake_a"].returned == []


def test_unwritable_out_exits_2(fakes, tmp_path, capsys):
    # /proc refuses new folders even to root, for whom a chmod-ed folder stays writable
    assert main(["compare", "fake_a", "--quick", "--out", "/proc/neurosim-report"]) == 2
    assert "/proc is not writable" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() != 0:
            assert main(["compare", "fake_a", "--quick", "--out", str(locked / "r")]) == 2
            assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
    assert fakes["fake_a"].returned == []


def test_a_crash_leaves_no_report_and_no_temporary_folder(fakes, fast_plots, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RuntimeError, match="fake crash at seed 1"):
        main(["compare", "fake_a", "--quick", "--seeds", "2", "--out", str(out), "--", "--crash-at-seed", "1"])
    assert os.listdir(tmp_path) == []
    # an existing report is replaced only by a complete new one
    assert main(["compare", "fake_a", "--quick", "--seeds", "1", "--out", str(out), "--no-deploy"]) == 0
    before = (out / "report.json").read_text()
    with pytest.raises(RuntimeError):
        main(["compare", "fake_a", "--quick", "--seeds", "1", "--out", str(out), "--", "--crash-at-seed", "0"])
    assert (out / "report.json").read_text() == before
    assert os.listdir(tmp_path) == ["r"]
    # and a run that succeeds replaces it whole
    (out / "stale.txt").write_text("from an older report")
    assert main(["compare", "fake_a", "--quick", "--seed", "3", "--out", str(out), "--no-deploy"]) == 0
    assert json.loads((out / "report.json").read_text())["seeds"] == [3]
    assert not (out / "stale.txt").exists() and os.listdir(tmp_path) == ["r"]


def test_sigterm_while_training_leaves_no_temporary_folder(fakes, fast_plots, tmp_path, monkeypatch):
    import signal
    run = fakes["fake_a"].run

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)       # what `kill` or `timeout` sends
        return run(args)
    monkeypatch.setattr(fakes["fake_a"], "run", killed)
    with pytest.raises(SystemExit) as info:
        main(["compare", "fake_a", "--quick", "--seeds", "1", "--out", str(tmp_path / "r")])
    assert info.value.code == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is not None and fakes["fake_a"].returned == []


def test_passthrough_flags_reach_the_example(fakes, fast_plots, tmp_path):
    out = tmp_path / "r"
    assert main(["compare", "fake_a", "--quick", "--seeds", "2", "--out", str(out), "--no-deploy",
                 "--", "--scale", "2", "--epochs", "4"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["budget"] == {"epochs": 4} and data["deployment"] is None
    assert data["variants"][0]["metric"]["per_seed"] == pytest.approx([0.8, 0.86])   # 0.8 + 0.03 seed * scale
    assert "Not run (--no-deploy)" in (out / "report.md").read_text()


def test_all_writes_one_folder_per_example_and_the_summary(fakes, fast_plots, tmp_path):
    out = tmp_path / "all"
    assert main(["compare", "--all", "--quick", "--seeds", "2", "--out", str(out), "--no-deploy"]) == 0
    assert {"fake_a", "fake_b", "summary.md", "summary.html", "summary.json"} <= set(os.listdir(out))
    summary = json.loads((out / "summary.json").read_text())
    assert [e["example"] for e in summary["examples"]] == ["fake_a", "fake_b"]
    for entry in summary["examples"]:
        data = json.loads((out / entry["example"] / "report.json").read_text())
        by_name = {v["name"]: v for v in data["variants"]}
        spiking = max(("snn", "hybrid"), key=lambda n: by_name[n]["metric"]["mean"])
        assert entry["conventional"] == "mlp" and entry["spiking"] == spiking
        assert entry["conventional_metric"]["mean"] == pytest.approx(by_name["mlp"]["metric"]["mean"])
        ratio = (by_name["mlp"]["energy_per_sample"]["cmos45nm"]["mean"]
                 / by_name[spiking]["energy_per_sample"]["cmos45nm"]["mean"])
        assert entry["energy_ratio"] == pytest.approx(ratio)
    rows = [r for r in _parse(out / "summary.html").rows if r and r[0] in ("fake_a", "fake_b")]
    assert len(rows) == 2
    assert "| fake_a |" in (out / "summary.md").read_text()
    assert _leftovers(out) == [] and _leftovers(tmp_path) == []


def test_all_reports_a_failing_example_and_exits_1(fakes, fast_plots, tmp_path, monkeypatch):
    def broken(args):
        raise ValueError("broken example")
    monkeypatch.setattr(fakes["fake_b"], "run", broken)
    out = tmp_path / "all"
    assert main(["compare", "--all", "--quick", "--seeds", "1", "--out", str(out), "--no-deploy"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["examples"][1]["error"] == "ValueError: broken example"
    assert (out / "fake_a" / "report.json").is_file() and not (out / "fake_b").exists()
    assert _leftovers(out) == []


def test_same_seed_gives_the_same_report_figures(fakes, fast_plots, tmp_path):
    for name in ("a", "b"):
        assert main(["compare", "fake_a", "--quick", "--seed", "2", "--out", str(tmp_path / name), "--no-deploy"]) == 0
    a, b = (json.loads((tmp_path / n / "report.json").read_text()) for n in ("a", "b"))
    assert [v["metric"] for v in a["variants"]] == [v["metric"] for v in b["variants"]]
    assert a["variants"][1]["spikes_per_sample"] == b["variants"][1]["spikes_per_sample"]


@pytest.mark.skipif(importlib.util.find_spec("neurosim.examples.digits") is None,
                    reason="examples/digits.py is not written yet")
@pytest.mark.slow
@pytest.mark.timeout(240)          # ~25 s on 1 quiet thread; the bound only catches a hang on a loaded machine
def test_compare_digits_quick_end_to_end(tmp_path):
    out = tmp_path / "digits"
    assert main(["compare", "digits", "--quick", "--seeds", "1", "--no-deploy", "--threads", "1",
                 "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["chance"] is not None
    for v in data["variants"]:
        assert v["metric"]["mean"] > data["chance"]
    for src in _parse(out / "report.html").images:
        _decode_png(src)


def test_the_console_command_exits_2_for_an_unknown_example(tmp_path):
    import subprocess
    done = subprocess.run([sys.executable, "-m", "neurosim.cli", "compare", "nosuch", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"neurosim compare: error: unknown example 'nosuch' (examples: {', '.join(compare.EXAMPLES)})"]
    assert os.listdir(tmp_path) == []
