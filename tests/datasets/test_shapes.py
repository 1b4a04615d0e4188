"""datasets/shapes.py: moving shapes seen by a DVS-like sensor, as tonic structured events."""
import numpy as np
import pytest
import tonic
from sklearn.linear_model import LogisticRegression

from neurosim.datasets.shapes import DTYPE, MovingShapes, signed_distance

SENSOR = (32, 32, 2)


def test_events_are_tonic_structured_arrays_inside_the_sensor_and_sorted():
    data = MovingShapes(8, sensor_size=SENSOR, duration=50_000, seed=3)
    for i in range(len(data)):
        events, label = data[i]
        assert events.dtype == DTYPE and events.dtype.names == ("x", "y", "t", "p")
        assert label == i % 4 and len(events) > 100
        assert events["x"].min() >= 0 and events["x"].max() < 32
        assert events["y"].min() >= 0 and events["y"].max() < 32
        assert set(np.unique(events["p"])) <= {0, 1}
        assert np.all(np.diff(events["t"]) >= 0)                         # sorted
        assert events["t"].min() >= 0 and events["t"].max() < 50_000      # within the duration
    frames = tonic.transforms.ToFrame(SENSOR, n_time_bins=5)(data[0][0])   # tonic transforms apply
    assert frames.shape == (5, 2, 32, 32) and 0.99 * len(data[0][0]) <= frames.sum() <= len(data[0][0])


def test_same_seed_and_index_same_events_in_any_order():
    a = MovingShapes(6, seed=1)
    b = MovingShapes(20, seed=1)                                           # other n_samples
    later = a[5][0]
    first = [a[i][0] for i in range(6)]
    assert np.array_equal(first[5], later)
    for i in range(6):
        assert np.array_equal(first[i], b[i][0])
    c = MovingShapes(6, seed=2)
    assert not np.array_equal(c[0][0], first[0])
    assert not np.array_equal(first[4], first[0])                          # same class, another scene


def test_a_moving_shape_gives_balanced_on_off_events_at_its_edges():
    """A bright shape moving over a dark background: ON events at its leading edge, OFF at its
    trailing edge, as many of each (both edges sweep the same pixels); no noise here."""
    data = MovingShapes(4, seed=0, noise_rate=0.0, threshold_sigma=0.0)
    for i in range(4):
        events, _ = data[i]
        on = events["p"].mean()
        assert 0.4 < on < 0.6, on
    # the ON events lead: their mean position is ahead of the OFF events along the motion
    rng = np.random.default_rng([0, 0])
    centres, _ = data.scene(0, rng)
    velocity = centres[2] - centres[1]
    events = data[0][0]
    early = events[events["t"] < 10_000]
    pos = np.stack([early["x"], early["y"]], 1).astype(float)
    lead = (pos[early["p"] == 1].mean(0) - pos[early["p"] == 0].mean(0)) @ velocity
    assert lead > 0, lead


def test_no_motion_no_events_but_noise():
    """Speed 0 and no noise: the sensor adapted to the first image sees nothing; with noise, the
    background-activity count follows its rate (Poisson, rate x pixels x duration)."""
    still = MovingShapes(3, seed=0, speed=(0.0, 0.0), noise_rate=0.0)
    assert all(len(still[i][0]) == 0 for i in range(3))
    noisy = MovingShapes(3, seed=0, speed=(0.0, 0.0), noise_rate=20.0, duration=100_000)
    counts = [len(noisy[i][0]) for i in range(3)]
    expected = 20.0 * 32 * 32 * 0.1
    assert all(abs(c - expected) < 5 * expected ** 0.5 for c in counts), counts


def test_contrast_threshold_sets_the_event_count():
    """Halving C about doubles the events of the same scene (n ~ |delta log I| / C)."""
    kw = dict(seed=4, noise_rate=0.0, threshold_sigma=0.0)
    coarse, fine = MovingShapes(4, contrast_threshold=0.4, **kw), MovingShapes(4, contrast_threshold=0.2, **kw)
    ratio = sum(len(fine[i][0]) for i in range(4)) / sum(len(coarse[i][0]) for i in range(4))
    assert 1.6 < ratio < 2.6, ratio


def _centred_counts(frames: np.ndarray) -> np.ndarray:
    """Events per pixel of ToFrame frames ``[T, 2, H, W]``, each frame shifted so that its event
    centroid sits at the centre, summed over time and polarity: a translation-free image."""
    out = np.zeros(frames.shape[-2:])
    h, w = out.shape
    for frame in frames.sum(1):
        if frame.sum() == 0:
            continue
        ys, xs = np.nonzero(frame)
        weight = frame[ys, xs]
        cy, cx = (int(round((v * weight).sum() / weight.sum())) for v in (ys, xs))
        out += np.roll(frame, (h // 2 - cy, w // 2 - cx), axis=(0, 1))
    return out / max(out.sum(), 1.0)


def test_classes_distinguishable_from_frame_event_counts():
    """A trivial classifier (logistic regression on the centred event-count image of ToFrame
    frames) tells the 4 shapes apart on held-out samples far above chance (0.25); the same
    classifier on the labels of another seed's samples, shuffled, stays near chance."""
    to_frame = tonic.transforms.ToFrame(SENSOR, n_time_bins=10)

    def features(seed, n):
        data = MovingShapes(n, seed=seed, transform=to_frame)
        x, y = zip(*(data[i] for i in range(n)))
        return np.stack([100.0 * _centred_counts(f)[8:24, 8:24].reshape(-1) for f in x]), np.array(y)
    xa, ya = features(0, 120)
    xb, yb = features(1, 60)
    acc = LogisticRegression(max_iter=5000).fit(xa, ya).score(xb, yb)
    assert acc > 0.7, acc
    shuffled = np.random.default_rng(0).permutation(ya)
    control = LogisticRegression(max_iter=5000).fit(xa, shuffled).score(xb, yb)
    assert control < 0.5, control


def test_signed_distances_are_negative_inside():
    for shape in ("square", "disc", "cross", "bar"):
        assert signed_distance(shape, np.array(0.0), np.array(0.0), 5.0) < 0      # centre inside
        assert signed_distance(shape, np.array(9.0), np.array(9.0), 5.0) > 0      # corner outside
    assert signed_distance("ring", np.array(0.0), np.array(0.0), 6.0) > 0         # hole of the ring
    assert signed_distance("cross", np.array(4.0), np.array(4.0), 5.0) > 0        # between the arms
    assert signed_distance("square", np.array(4.0), np.array(4.0), 5.0) < 0
    with pytest.raises(ValueError, match="shape"):
        signed_distance("star", np.array(0.0), np.array(0.0), 1.0)


@pytest.mark.parametrize("kwargs, word", [
    ({"n_samples": 0}, "n_samples"), ({"sensor_size": (32, 32)}, "sensor_size"),
    ({"sensor_size": (32, 32, 3)}, "polarities"), ({"duration": 0}, "duration"), ({"seed": -1}, "seed"),
    ({"shapes": ("square",)}, "shapes"), ({"shapes": ("square", "star")}, "shapes"),
    ({"size": (0.0, 3.0)}, "size"), ({"size": (4.0, 20.0)}, "size"), ({"speed": (5.0, 1.0)}, "speed"),
    ({"contrast_threshold": 0.0}, "contrast_threshold"), ({"noise_rate": -1.0}, "noise_rate"),
    ({"dt_render": 0}, "dt_render"), ({"intensity": (0.0, 1.0)}, "intensity"), ({"transform": 3}, "transform"),
])
def test_bad_arguments_name_the_argument(kwargs, word):
    kw = dict(n_samples=4)
    kw.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=word) as err:
        MovingShapes(**kw)
    assert "shapes.py" in str(err.value)
    with pytest.raises(IndexError, match="index"):
        MovingShapes(4)[4]
