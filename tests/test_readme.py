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
