"""The separate Lava environment and ``hardware/loihi/lava_runner.py``, driven by subprocess.

The ``lava_env`` fixture (``conftest.py``) builds the environment with ``scripts/build_lava_env.py``
(about a minute the first time, instant once its stamp exists). It skips, printing why, only where
the script reports that this machine cannot build it (exit 3); any other build failure fails the
tests. A skip is not a pass.

The networks are small enough to work out by hand from Lava's fixed-point CUBA rule
(``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed``), with netx's register mapping
``du = iDecay - 1``, ``dv = vDecay`` (``lava/lib/dl/netx/hdf5.py``)::

    u[t] = trunc(u[t-1] (4096 - iDecay) / 4096) + (weight << 6) s_in
    v[t] = trunc(v[t-1] (4096 - vDecay) / 4096) + u[t]
    spike where v[t] > vThMant << 6, then v[t] = 0

and one step of latency per dense layer (Lava's Dense sends at t + 1 what arrived at t).
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = ROOT / "scripts" / "build_lava_env.py"
RUNNER = ROOT / "hardware" / "loihi" / "lava_runner.py"


def build_env() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True,
                          timeout=3600)


def write_netx(path: Path, dense_layers: list[dict], inputs: int) -> None:
    """A netx file as lava-dl 0.6.0's reader expects: ``layer/0`` an input of ``inputs`` neurons
    (no neuron group: no input block), then one ``dense`` layer per dict, all values datasets,
    ``type`` an ``S10`` array of shape (1,), ``weight [out, in]``."""
    def text(value: str) -> np.ndarray:
        return np.array([value.encode("ascii")], dtype="S10")

    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        first = layers.create_group("0")
        first.create_dataset("type", data=text("input"))
        first.create_dataset("shape", data=np.array([inputs]))
        for index, spec in enumerate(dense_layers, start=1):
            weight = np.asarray(spec["weight"], dtype=float)
            group = layers.create_group(str(index))
            group.create_dataset("type", data=text("dense"))
            group.create_dataset("shape", data=np.array([weight.shape[0]]))
            group.create_dataset("weight", data=weight)
            neuron = group.create_group("neuron")
            neuron.create_dataset("type", data=text("CUBA"))
            for key in ("iDecay", "vDecay", "vThMant"):
                neuron.create_dataset(key, data=np.int64(spec[key]))
            neuron.create_dataset("refDelay", data=np.int64(1))
            neuron.create_dataset("gradedSpike", data=False)


def run_lava(env: Path, tmp_path: Path, netx: Path, spikes: np.ndarray, steps: int) -> dict:
    np.save(tmp_path / "input.npy", spikes)
    out = tmp_path / "out.npz"
    result = subprocess.run([str(env / "bin" / "python"), str(RUNNER), "--netx", str(netx),
                             "--input", str(tmp_path / "input.npy"), "--steps", str(steps),
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"lava_runner failed:\n{result.stderr[-4000:]}"
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


def test_second_build_finds_the_stamp(lava_env):
    """A second call returns the same folder at once, from the stamp, without rebuilding."""
    started = time.monotonic()
    result = build_env()
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == lava_env
    assert "[lava-env] venv" not in result.stderr  # no build step ran
    assert elapsed < 10, f"cached call took {elapsed:.1f} s"


def test_patches_are_in_place_and_idempotent(lava_env):
    """Both patches are applied, a second application changes no byte, and in the environment
    ``ByteEncoder`` is hashable and importing netx does not load slayer's torchvision part."""
    spec = importlib.util.spec_from_file_location("build_lava_env", BUILD_SCRIPT)
    build_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_module)
    site = build_module.site_packages(lava_env)
    before = {relative: (site / relative).read_bytes() for relative, *_ in build_module.PATCHES}
    build_module.apply_patches(site)
    for relative, _old, _new, marker in build_module.PATCHES:
        assert (site / relative).read_bytes() == before[relative], relative
        assert before[relative].decode().count(marker) == 1, relative
    probe = ("import sys, lava.lib.dl.netx\n"
             "from lava.magma.compiler.var_model import ByteEncoder, CoreEncoder\n"
             "hash(ByteEncoder()); assert CoreEncoder().x == ByteEncoder()\n"
             "print(sorted(m for m in sys.modules if 'object_detection' in m or m == 'torchvision'))")
    result = subprocess.run([str(lava_env / "bin" / "python"), "-c", probe], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_two_layer_chain_threshold_reset_and_latency(lava_env, tmp_path):
    """1 -> 1 -> 1, input spiking at steps 1..10 of 12; no leak (iDecay 4096 forgets u at once,
    vDecay 0 keeps v).

    Layer 0 (weight 5, vThMant 10): each input spike adds 5 << 6 = 320 to v, one step later.
    v = 320, 640 at steps 2, 3; 640 = 10 << 6 is not above the threshold (strict >); 960 at step 4
    spikes and resets. So spikes at 4, 7, 10; the last input (step 10) arrives at 11: v = 320
    there and at 12. Layer 1 (weight 127, vThMant 100: 8128 > 6400) spikes one step after each
    layer-0 spike: 5, 8, 11, and its v is 0 after every step (reset at once)."""
    netx = tmp_path / "chain.net"
    write_netx(netx, [dict(weight=[[5]], iDecay=4096, vDecay=0, vThMant=10),
                      dict(weight=[[127]], iDecay=4096, vDecay=0, vThMant=100)], inputs=1)
    result = run_lava(lava_env, tmp_path, netx, np.ones((10, 1), dtype=np.int64), steps=12)
    assert int(result["num_layers"]) == 2 and int(result["steps"]) == 12
    assert [str(result["block_0"]), str(result["block_1"])] == ["Dense", "Dense"]

    def at_steps(steps):  # a [12, 1] spike train with ones at the given 1-based steps
        train = np.zeros((12, 1), dtype=np.int32)
        train[np.array(steps) - 1] = 1
        return train

    np.testing.assert_array_equal(result["spikes_0"], at_steps([4, 7, 10]))
    np.testing.assert_array_equal(result["voltage_0"].ravel(),
                                  [0, 320, 640, 0, 320, 640, 0, 320, 640, 0, 320, 320])
    np.testing.assert_array_equal(result["spikes_1"], at_steps([5, 8, 11]))
    np.testing.assert_array_equal(result["voltage_1"], np.zeros((12, 1), dtype=np.int32))


def test_decays_truncate_toward_zero(lava_env, tmp_path):
    """One input spike at step 1 into two neurons, weights +100 and -100, iDecay 2048 (u halves),
    vDecay 1024 (v keeps 3/4), threshold far away (vThMant 1000 -> 64000).

    From step 2 (one step of latency): u = 6400, 3200, 1600, 800, 400, 200;
    v = 6400, 4800 + 3200 = 8000, 6000 + 1600 = 7600, 5700 + 800 = 6500, 4875 + 400 = 5275,
    trunc(3956.25) + 200 = 4156; the negative neuron is its mirror image (truncation toward zero,
    not floor: floor would give -3957 + -200 = -4157). The ``du = iDecay - 1`` register mapping
    is what makes u halve exactly."""
    netx = tmp_path / "decay.net"
    write_netx(netx, [dict(weight=[[100], [-100]], iDecay=2048, vDecay=1024, vThMant=1000)],
               inputs=1)
    spikes = np.array([[1]], dtype=np.int64)
    result = run_lava(lava_env, tmp_path, netx, spikes, steps=7)
    expected = np.array([0, 6400, 8000, 7600, 6500, 5275, 4156], dtype=np.int32)
    np.testing.assert_array_equal(result["voltage_0"], np.stack([expected, -expected], axis=1))
    np.testing.assert_array_equal(result["spikes_0"], np.zeros((7, 2), dtype=np.int32))


def test_runner_rejects_bad_input_before_starting_lava(lava_env, tmp_path):
    """A [T, N, extra] input, or a longer input than --steps, exits 2 naming the file."""
    netx = tmp_path / "one.net"
    write_netx(netx, [dict(weight=[[1]], iDecay=4096, vDecay=0, vThMant=10)], inputs=1)
    for name, array, steps in [("three_d.npy", np.zeros((4, 1, 1)), 4),
                               ("too_long.npy", np.zeros((5, 1)), 4)]:
        np.save(tmp_path / name, array)
        result = subprocess.run([str(lava_env / "bin" / "python"), str(RUNNER), "--netx", str(netx),
                                 "--input", str(tmp_path / name), "--steps", str(steps),
                                 "--out", str(tmp_path / "never.npz")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert name in result.stderr
        assert not (tmp_path / "never.npz").exists()
