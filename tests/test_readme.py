"""The README's first Python example runs as written and produces spikes."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_first_example_runs():
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    spikes = namespace["spikes"]
    assert tuple(spikes.shape) == (200, 4, 50)
    assert spikes.sum() > 100
    assert namespace["more"].output.shape == spikes.shape
    assert namespace["result"].ops["rec"]["synops"] > 0


def test_readme_starts_with_the_two_setup_commands():
    lines = [l for l in README.read_text().splitlines() if l.startswith("make ")]
    assert lines[0].startswith("make demo") and lines[1].startswith("make test")


def test_readme_save_and_nir_examples_run_after_the_first(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    follow = [b for b in blocks if "ns.save(" in b or "write_nir(" in b]
    assert len(follow) == 2, "the README should show saving and NIR export"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    for block in follow:
        exec(compile(block, str(README), "exec"), namespace)    # each block asserts equal spikes
    assert (tmp_path / "net.h5").is_file() and (tmp_path / "net.nir").is_file()
    assert namespace["sim2"].run(namespace["x"]).output.sum() > 100


def test_readme_block_example_runs_and_counts_the_whole_cost():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if "from neurosim.plugins import Block" in b]
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    ops = namespace["result"].ops
    assert float(ops["mlp"]["macs"]) == 8 * 3 * (30 * 16 + 16 * 12)     # 8 windows x 3 samples
    assert float(ops["fc"]["synops"]) > 0 and namespace["result"].output.shape == (40, 3, 5)


def test_readme_event_dataset_example_reads_the_real_recordings(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if "pad_collate(" in b]
    monkeypatch.chdir(README.parent)                   # the README's paths are relative to the checkout
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert tuple(namespace["x"].shape) == (30, 4, 2, 34, 34) and namespace["x"].sum() > 1000
    assert namespace["lengths"].tolist() == [30, 30, 30, 30] and len(namespace["ds"]) == 100
