"""The main job (examples/quickstart.py) runs end to end and writes its recording and plot."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quickstart_main_job(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    assert quickstart.main(["--out", str(tmp_path), "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "mean firing rate" in text and "epoch 1" in text
    assert (tmp_path / "quickstart.h5").stat().st_size > 0
    assert (tmp_path / "quickstart.png").stat().st_size > 1000
    assert (tmp_path / "checkpoints" / "epoch_001.pt").exists()
