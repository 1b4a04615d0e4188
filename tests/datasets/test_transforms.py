"""Event-to-frame transforms (on tonic's) against hand-computed binning of tiny event arrays, and
pad_collate's padding, shapes and lengths."""
import functools

import numpy as np
import pytest
import torch

from neurosim.datasets.transforms import downsampled_size, frames, pad_collate

XYTP = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def events(*rows):
    return np.array([tuple(r) for r in rows], dtype=XYTP)


# x, y, t, p on a (W=4, H=3, P=2) sensor
TINY = events((0, 0, 0, 1), (2, 1, 5, 0), (2, 1, 9, 0), (1, 0, 10, 1), (3, 2, 25, 0))


def frame(p, h, w, *cells, value=1.0):
    out = torch.zeros(p, h, w)
    for c in cells:
        out[c] += value
    return out


def test_time_window_bins_count_events_per_polarity_and_pixel_from_t0():
    x = frames((4, 3, 2), time_window=10)(TINY)
    # t_last + 1 = 26 -> ceil(26 / 10) = 3 bins: [0, 10), [10, 20), [20, 30); index [t, p, y, x]
    expected = torch.stack([frame(2, 3, 4, (1, 0, 0)) + frame(2, 3, 4, (0, 1, 2), value=2.0),
                            frame(2, 3, 4, (1, 0, 1)),
                            frame(2, 3, 4, (0, 2, 3))])
    assert x.dtype == torch.float32 and torch.equal(x, expected)
    assert torch.equal(frames((4, 3, 2), time_window=10, binary=True)(TINY)[0],
                       frame(2, 3, 4, (1, 0, 0), (0, 1, 2)))                    # 2 events -> one spike


def test_a_duration_fixes_the_number_of_bins():
    short = frames((4, 3, 2), time_window=10, duration=20)
    assert short.steps == 2 and tuple(short(TINY).shape) == (2, 2, 3, 4)
    assert short(TINY).sum() == 4                                             # the event at t = 25 is cut
    long = frames((4, 3, 2), time_window=10, duration=35)(np.concatenate([TINY, events((0, 0, 37, 0))]))
    assert tuple(long.shape) == (4, 2, 3, 4) and long[3].sum() == 0 and long.sum() == 5   # ceil(3.5) bins; t=37 cut
    later = frames((4, 3, 2), time_window=10)(events((1, 2, 15, 1), (1, 2, 16, 1)))
    assert tuple(later.shape) == (2, 2, 3, 4) and later[0].sum() == 0 and later[1, 1, 2, 1] == 2   # bins from t = 0
    late = frames((4, 3, 2), time_window=10, duration=20)(events((1, 1, 30, 0)))
    assert tuple(late.shape) == (2, 2, 3, 4) and late.sum() == 0              # nothing left: zero frames


def test_n_time_bins_follow_tonics_first_to_last_event_span():
    x = frames((4, 3, 2), n_time_bins=2)(TINY)
    # width (25 - 0) // 2 = 12: bins [0, 12), [12, 24); the last event (t = 25) falls outside
    assert tuple(x.shape) == (2, 2, 3, 4)
    assert torch.equal(x[0], frame(2, 3, 4, (1, 0, 0), (1, 0, 1)) + frame(2, 3, 4, (0, 1, 2), value=2.0))
    assert x[1].sum() == 0


def test_downsampling_floors_the_coordinates_and_shrinks_the_sensor():
    assert downsampled_size((34, 34, 2), 0.5) == (17, 17, 2) and downsampled_size((128, 128, 2), 0.25) == (32, 32, 2)
    assert downsampled_size((3, 3, 2), 0.4) == (1, 1, 2)          # x in 0..2 -> floor(0.4 x) = 0 only
    one = frames((3, 3, 2), time_window=100, spatial_factor=0.4)(events((2, 2, 5, 1), (0, 1, 6, 1)))
    assert tuple(one.shape) == (1, 2, 1, 1) and one[0, 1, 0, 0] == 2
    to_frames = frames((4, 3, 2), time_window=100, spatial_factor=0.5)
    assert to_frames.out_sensor_size == (2, 2, 2) and to_frames.frame_shape == (2, 2, 2)
    x = to_frames(TINY)                                          # (x, y) -> (x // 2, y // 2)
    expected = frame(2, 2, 2, (1, 0, 0), (1, 0, 0), value=1.0) + frame(2, 2, 2, (0, 0, 1), value=2.0) \
        + frame(2, 2, 2, (0, 1, 1))
    assert tuple(x.shape) == (1, 2, 2, 2) and torch.equal(x[0], expected)
    assert TINY["x"].tolist() == [0, 2, 2, 1, 3]                  # the input is not changed


def test_denoise_keeps_events_with_a_recent_neighbour_only():
    ev = events((2, 2, 100, 1), (3, 2, 105, 1), (0, 0, 200, 0), (2, 2, 300, 1), (4, 4, 400, 0))
    x = frames((5, 5, 2), time_window=1000, denoise=10)(ev)
    # (3,2)@105 has its neighbour (2,2)@100 within 10 µs; every other event is isolated
    assert torch.equal(x[0], frame(2, 5, 5, (1, 2, 3)))
    assert frames((5, 5, 2), time_window=1000)(ev).sum() == 5


def test_time_jitter_moves_times_and_keeps_them_sorted():
    rng = np.random.default_rng(1)
    ev = np.zeros(200, dtype=XYTP)
    ev["t"] = np.sort(rng.integers(4_000, 6_000, 200))           # all in bin 0 of [0, 10 ms)
    ev["x"] = rng.integers(0, 4, 200)
    np.random.seed(0)
    small = frames((4, 3, 2), time_window=10_000, duration=20_000, time_jitter=100.0)(ev)
    assert small[0].sum() == 200 and small[1].sum() == 0          # +-100 µs stays inside the bin
    np.random.seed(0)
    large = frames((4, 3, 2), time_window=10_000, duration=20_000, time_jitter=10_000.0)(ev)
    assert 0 < large[1].sum() and large.sum() < 200                # moved to bin 1, or below 0 and dropped
    np.random.seed(0)
    assert torch.equal(large, frames((4, 3, 2), time_window=10_000, duration=20_000, time_jitter=10_000.0)(ev))


def test_a_one_dimensional_sensor_gives_frames_without_a_y_axis():
    shd = np.array([(100, 3, 1), (150, 699, 1), (2_500, 3, 1)], dtype=[("t", int), ("x", int), ("p", int)])
    x = frames((700, 1, 1), time_window=1_000)(shd)
    assert tuple(x.shape) == (3, 1, 700)
    assert x[0, 0, 3] == 1 and x[0, 0, 699] == 1 and x[2, 0, 3] == 1 and x.sum() == 3
    assert shd["p"].tolist() == [1, 1, 1]                         # tonic zeroes p of a copy only
    assert frames((700, 1, 1), n_time_bins=2)(shd).sum() == 2 and shd["p"].tolist() == [1, 1, 1]


def test_bad_settings_and_bad_events_are_refused_before_any_work():
    with pytest.raises(ValueError, match="exactly one of time_window"):
        frames((34, 34, 2))
    with pytest.raises(ValueError, match="exactly one of time_window"):
        frames((34, 34, 2), time_window=1000, n_time_bins=3)
    with pytest.raises(ValueError, match="duration applies to time_window"):
        frames((34, 34, 2), n_time_bins=3, duration=1000)
    with pytest.raises(ValueError, match="time_window"):
        frames((34, 34, 2), time_window=-5)
    with pytest.raises(ValueError, match="spatial_factor must be in"):
        frames((34, 34, 2), time_window=1000, spatial_factor=2)
    with pytest.raises(ValueError, match="sensor_size must be"):
        frames((34, 34), time_window=1000)
    with pytest.raises(TypeError, match="structured array"):
        frames((34, 34, 2), time_window=1000)(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"missing \['t'\]"):
        frames((34, 34, 2), time_window=1000)(np.zeros(3, dtype=[("x", int), ("p", int)]))


def test_pad_collate_pads_to_the_longest_and_puts_time_first():
    a, b = torch.arange(6.0).reshape(3, 2), torch.full((1, 2), 7.0)
    x, labels, lengths = pad_collate([(a, 4), (b, np.int64(1))])
    assert tuple(x.shape) == (3, 2, 2) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], a) and torch.equal(x[0, 1], b[0]) and torch.equal(x[1:, 1], torch.zeros(2, 2))
    assert labels.tolist() == [4, 1] and labels.dtype == torch.int64 and lengths.tolist() == [3, 1]
    x, _, _ = functools.partial(pad_collate, pad_value=-1.0)([(a, 0), (b, 1)])
    assert torch.equal(x[1:, 1], torch.full((2, 2), -1.0))
    frames_np = np.ones((2, 2, 3, 3), dtype=np.int16)               # numpy frames are accepted too
    x, _, lengths = pad_collate([(frames_np, 0), (torch.zeros(5, 2, 3, 3), 1)])
    assert tuple(x.shape) == (5, 2, 2, 3, 3) and x[:2, 0].sum() == 36 and x[2:, 0].sum() == 0


def test_pad_collate_refuses_mismatched_samples():
    with pytest.raises(ValueError, match="non-empty list"):
        pad_collate([])
    with pytest.raises(ValueError, match=r"sample 1 has frames \[T, 3\], sample 0 \[T, 2\]"):
        pad_collate([(torch.zeros(2, 2), 0), (torch.zeros(2, 3), 1)])
    with pytest.raises(ValueError, match=r"sample 0 has frames of shape \(0, 2\)"):
        pad_collate([(torch.zeros(0, 2), 0)])
    with pytest.raises(ValueError, match="sample 0 must be a"):
        pad_collate([torch.zeros(2, 2)])
