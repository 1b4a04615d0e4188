"""Event datasets through tonic from a local root: fake files in each dataset's real on-disk format
(written here, read back through the same code), the errors for a missing root (and no network
access), and the real recordings in ../shared/data/events (N-MNIST subset, DVS Gesture clips)."""
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest
import tonic

from neurosim.datasets.events import (BS2_DTYPE, DVSGesture, GestureClips, MissingDatasetError, NMNIST, POKERDVS, SHD,
                                      read_bs2)

EVENTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "events"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection or to start one of tonic's downloads fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)


def encode_nmnist(x, y, t, p) -> bytes:
    """The N-MNIST 5-byte record (Orchard et al. 2015): x, y, then p in bit 39 and t in bits 22..0."""
    x, y, t, p = (np.asarray(a, dtype=np.uint64) for a in (x, y, t, p))
    word = (x << 32) | (y << 24) | (p << 23) | t
    return b"".join(int(w).to_bytes(5, "big") for w in word)


def random_events(rng, n, width, height, t_max=300_000):
    t = np.sort(rng.integers(0, t_max, n))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n)


# ----------------------------------------------------------------------------- fake files

def test_nmnist_reads_fake_bin_files_in_tonics_layout(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for split, digits in (("Train", (3, 7)), ("Test", (1,))):
        for digit in digits:
            folder = tmp_path / "NMNIST" / split / str(digit)
            folder.mkdir(parents=True)
            for k in range(2):
                events = random_events(rng, 50 + k, 34, 34)
                (folder / f"{k + 1:05d}.bin").write_bytes(encode_nmnist(*events))
                written[(split, digit, k)] = events
    train, test = NMNIST(tmp_path, train=True), NMNIST(tmp_path, train=False)
    assert (len(train), len(test)) == (4, 2) and train.sensor_size == (34, 34, 2)
    assert train.targets == [3, 3, 7, 7] and test.targets == [1, 1]
    events, label = train[3]
    x, y, t, p = written[("Train", 7, 1)]
    assert label == 7 and len(events) == 51
    for field, value in zip("xytp", (x, y, t, p)):
        np.testing.assert_array_equal(events[field], value)
    early = NMNIST(tmp_path, train=True, first_saccade_only=True)[3][0]
    np.testing.assert_array_equal(early["t"], t[t < 100_000])


def test_nmnist_rejects_a_truncated_recording(tmp_path):
    folder = tmp_path / "NMNIST" / "Test" / "4"
    folder.mkdir(parents=True)
    (folder / "00001.bin").write_bytes(encode_nmnist([1], [2], [3], [1])[:-1])
    with pytest.raises(ValueError, match=r"not a whole number of 5-byte events.*00001\.bin"):
        NMNIST(tmp_path, train=False)


def _write_shd(path, samples):
    """SHD's HDF5 layout (Cramer et al. 2020): ragged spikes/times [s] and spikes/units per sample."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.array([label for _, _, label in samples], dtype=np.uint16))
        f.create_dataset("extra/keys", data=[b"null", b"eins"])
        f.create_dataset("extra/speaker", data=np.arange(len(samples), dtype=np.uint16))


def test_shd_reads_a_fake_h5_file(tmp_path):
    _write_shd(tmp_path / "SHD" / "shd_test.h5", [([0.125, 0.25, 0.5], [3, 699, 0], 4), ([0.75], [10], 19)])
    data = SHD(tmp_path, train=False)
    assert len(data) == 2 and data.sensor_size == (700, 1, 1)
    events, label = data[0]
    assert label == 4 and data[1][1] == 19
    np.testing.assert_array_equal(events["t"], [125_000, 250_000, 500_000])       # seconds -> µs
    np.testing.assert_array_equal(events["x"], [3, 699, 0])
    assert set(events["p"]) == {1}
    with pytest.raises(MissingDatasetError, match=r"shd_train\.h5 does not exist"):
        SHD(tmp_path, train=True)


def test_shd_names_missing_h5_datasets(tmp_path):
    path = tmp_path / "SHD" / "shd_train.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=[0])
    with pytest.raises(MissingDatasetError, match=r"lacks the dataset\(s\) \['spikes/times', 'spikes/units'"):
        SHD(tmp_path, train=True)


def test_dvsgesture_reads_fake_npy_files_in_tonics_layout(tmp_path):
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user07_led"
    folder.mkdir(parents=True)
    rows = np.array([[5, 6, 1, 10], [127, 0, 0, 11], [64, 64, 1, 1450]])   # columns x, y, p, t [ms]
    np.save(folder / "3.npy", rows)
    np.save(folder / "10.npy", rows[:1])
    data = DVSGesture(tmp_path, train=True)
    assert len(data) == 2 and data.sensor_size == (128, 128, 2)
    by_target = {data.targets[i]: data[i][0] for i in range(2)}
    assert sorted(by_target) == [3, 10] and data.users == [7, 7] and data.lighting == ["led", "led"]
    events = by_target[3]
    np.testing.assert_array_equal(events["t"], [10_000, 11_000, 1_450_000])       # ms -> µs
    np.testing.assert_array_equal(events["x"], [5, 127, 64])
    np.testing.assert_array_equal(events["p"], [True, False, True])


def test_pokerdvs_reads_fake_npy_files_in_tonics_layout(tmp_path):
    for symbol, n in (("cl", 2), ("sp", 1)):
        folder = tmp_path / "POKERDVS" / "pips_test" / symbol
        folder.mkdir(parents=True)
        for k in range(n):
            np.save(folder / f"{symbol}_{k}.npy", np.array([[100 * k, 1, 2, 0], [100 * k + 7, 34, 0, 1]]))
    data = POKERDVS(tmp_path, train=False)
    assert len(data) == 3 and data.sensor_size == (35, 35, 2)
    assert data.targets == [0, 0, 3]                      # classes ["cl", "he", "di", "sp"]
    events, label = data[1]
    assert label == 0
    np.testing.assert_array_equal(events["t"], [100, 107])
    np.testing.assert_array_equal(events["x"], [1, 34])
    np.testing.assert_array_equal(events["p"], [0, 1])


def test_gesture_clips_read_fake_bs2_files(tmp_path):
    (tmp_path / "2.bs2").write_bytes(encode_nmnist([0, 127], [5, 127], [0, 1_449_999], [1, 0]))
    (tmp_path / "10.bs2").write_bytes(encode_nmnist([3], [4], [8_388_607], [1]))      # largest 23-bit time
    (tmp_path / "notes.bs2").write_bytes(b"")                                          # not a clip number
    clips = GestureClips(tmp_path)
    assert clips.data == [str(tmp_path / "2.bs2"), str(tmp_path / "10.bs2")] and clips.targets == [1, 9]
    events, label = clips[0]
    assert label == 1 and events.dtype == BS2_DTYPE
    np.testing.assert_array_equal(events["t"], [0, 1_449_999])
    np.testing.assert_array_equal(events["y"], [5, 127])
    np.testing.assert_array_equal(events["p"], [True, False])
    assert clips[1][0]["t"][0] == 8_388_607 and clips.classes[9] == "Air guitar"
    (tmp_path / "12.bs2").write_bytes(b"")
    with pytest.raises(ValueError, match=r"clip numbers must be 1\.\.11.*12\.bs2"):
        GestureClips(tmp_path)
    (tmp_path / "3.bs2").write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match="not a whole number of 5-byte events"):
        read_bs2(tmp_path / "3.bs2")


# ----------------------------------------------------------------------------- missing roots

@pytest.mark.parametrize("cls,expected", [(NMNIST, "NMNIST/Train"), (SHD, "SHD/shd_train.h5"),
                                          (DVSGesture, "DVSGesture/ibmGestureTrain"),
                                          (POKERDVS, "POKERDVS/pips_train")])
def test_a_missing_root_says_where_the_files_belong_and_downloads_nothing(tmp_path, cls, expected):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        cls(root, train=True)
    text = str(error.value)
    assert isinstance(error.value, MissingDatasetError)
    assert str(root / expected) in text and "Expected layout" in text and "http" in text
    assert "never downloads" in text and "download=True" in text
    assert not root.exists()                              # nothing was created either


def test_an_incomplete_root_is_reported(tmp_path):
    (tmp_path / "NMNIST" / "Train" / "5").mkdir(parents=True)            # folders, no recording
    with pytest.raises(MissingDatasetError, match=r"holds no <digit>/\*\.bin recording"):
        NMNIST(tmp_path)
    (tmp_path / "DVSGesture" / "ibmGestureTest" / "user01_led").mkdir(parents=True)
    with pytest.raises(MissingDatasetError, match=r"ibmGestureTest holds no user"):
        DVSGesture(tmp_path, train=False)
    with pytest.raises(MissingDatasetError, match=r"no <k>\.bs2 clip in .*empty.*1\.bs2 \.\.\. 10\.bs2"):
        GestureClips(tmp_path / "empty")
    with pytest.raises(TypeError, match="root must be a path"):
        NMNIST(None)


def test_download_true_hands_over_to_tonics_download(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, location, filename, md5):             # what tonic would fetch and extract
        calls.append((url, filename))
        folder = Path(location) / "Test" / "2"
        folder.mkdir(parents=True)
        (folder / "00001.bin").write_bytes(encode_nmnist([1], [1], [5], [0]))

    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", fake_download)
    data = NMNIST(tmp_path, train=False, download=True)
    assert calls == [(tonic.datasets.NMNIST.test_url, "test.zip")]
    assert len(data) == 1 and data.targets == [2]


# ----------------------------------------------------------------------------- real recordings

def test_the_real_nmnist_subset_matches_its_readme():
    root = EVENTS / "nmnist"
    train, test = NMNIST(root, train=True), NMNIST(root, train=False)
    assert (len(train), len(test)) == (1000, 100)
    assert np.bincount(train.targets).tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert np.bincount(test.targets).tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    counts = []
    for i in range(len(test)):
        events, label = test[i]
        counts.append(len(events))
        assert events["x"].min() >= 0 and events["x"].max() <= 33 and events["y"].max() <= 33
        assert np.all(np.diff(events["t"]) >= 0) and 0.29e6 < events["t"][-1] < 0.34e6
    assert (sum(counts), min(counts), max(counts)) == (385_596, 1069, 6326)
    first = test.data.index(str(root / "NMNIST" / "Test" / "7" / "00001.bin"))       # MNIST test index 1 is a 7
    assert test.targets[first] == 7
    train_events = sum(Path(f).stat().st_size // 5 for f in train.data)
    assert train_events == 4_133_231


def test_the_real_dvs_gesture_clips_match_their_readme():
    clips = GestureClips(EVENTS / "dvsgesture" / "slayer_bs2_1450ms")
    expected = [63_471, 84_260, 113_063, 151_879, 181_179, 124_244, 159_617, 101_288, 141_773, 85_936]
    assert len(clips) == 10 and clips.targets == list(range(10)) and clips.sensor_size == (128, 128, 2)
    for i in range(10):
        events, label = clips[i]
        assert label == i and len(events) == expected[i]
        assert 0 <= events["x"].min() and events["x"].max() <= 127 and events["y"].max() <= 127
        assert np.all(np.diff(events["t"]) >= 0) and 1.44e6 < events["t"][-1] < 1.45e6
        assert 0.35 < events["p"].mean() < 0.65                                          # ON/OFF about 50/50
    right, left = clips[1][0], clips[2][0]                   # right hand wave vs left hand wave
    assert right["x"].mean() < 50 < 75 < left["x"].mean()
