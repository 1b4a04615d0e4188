"""datasets/digits.py: the bundled scikit-learn digits, split and spike-encoded."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from neurosim.coding import delta_encode, latency_encode
from neurosim.datasets.digits import Digits

SHAPES = {"rate": (12, 1, 8, 8), "latency": (12, 1, 8, 8), "delta": (12, 2, 8), "image": (1, 8, 8)}
FLAT = {"rate": (12, 64), "latency": (12, 64), "delta": (12, 16), "image": (64,)}


@pytest.fixture(scope="module")
def reference():
    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target


@pytest.mark.parametrize("encoding", sorted(SHAPES))
def test_shapes_dtypes_and_collate(encoding):
    data = Digits("test", encoding=encoding, steps=12)
    x, y = data[0]
    assert x.shape == SHAPES[encoding] and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= int(y) <= 9
    assert Digits("test", encoding=encoding, steps=12, flatten=True)[0][0].shape == FLAT[encoding]
    xb, yb = next(iter(DataLoader(data, batch_size=5, collate_fn=data.collate)))
    if encoding == "image":
        assert xb.shape == (5, 1, 8, 8)
    else:                                         # time first
        assert xb.shape == (12, 5, *SHAPES[encoding][1:])
        assert torch.equal(xb[:, 3], data[3][0])
    assert yb.shape == (5,)


def test_split_is_stratified_disjoint_and_matches_sklearn(reference):
    images, target = reference
    train, test = Digits("train", encoding="image", seed=3), Digits("test", encoding="image", seed=3)
    tr, te = set(train.indices.tolist()), set(test.indices.tolist())
    assert not tr & te and len(tr | te) == len(target) == 1797
    for c in range(10):
        n_c = int((target == c).sum())
        n_test = int((test.labels == c).sum())
        assert abs(n_test - 0.2 * n_c) <= 1, (c, n_test, n_c)
    for i in (0, 7, len(test) - 1):
        j = int(test.indices[i])
        assert np.allclose(test[i][0][0].numpy(), images[j]) and int(test[i][1]) == target[j]
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0


def test_seed_determinism_and_difference():
    a, b = Digits("train", encoding="rate", steps=10, seed=1), Digits("train", encoding="rate", steps=10, seed=1)
    c = Digits("train", encoding="rate", steps=10, seed=2)
    assert torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)
    assert torch.equal(a[5][0], b[5][0]) and torch.equal(a[5][0], a[5][0])   # same index, same spikes
    j = int(a.indices[5])
    k = int((c.indices == j).nonzero()[0]) if (c.indices == j).any() else None
    if k is not None:                           # the same image under another seed: other spikes
        assert not torch.equal(a[5][0], c[k][0])
    assert not torch.equal(a[5][0], a[6][0])


def test_rate_matches_poisson_statistics():
    data = Digits("test", encoding="rate", steps=2000, max_rate=250.0, dt=1e-3)
    x, _ = data[0]
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    p = data.images[0] * 250.0 * 1e-3                                   # P(spike per step)
    est = x.mean(0)[0]
    sd = torch.sqrt(p * (1 - p) / 2000)
    assert torch.all((est - p).abs() <= 5 * sd + 1e-9), (est - p).abs().max()
    assert torch.all(est[p == 0] == 0)


def test_latency_against_formula_and_coder():
    data = Digits("test", encoding="latency", steps=11)
    x, _ = data[4]
    img = data.images[4]
    assert torch.equal(x, latency_encode(img.view(1, 1, 8, 8), 11)[:, 0])
    assert torch.all(x.sum(0)[0] == (img > 0).float())                 # one spike per lit pixel
    step = x[:, 0].argmax(0)
    lit = img > 0
    assert torch.equal(step[lit], torch.round((1 - img[lit]) * 10).long())


@pytest.mark.parametrize("scan", ["rows", "cols"])
def test_delta_scan_against_coder_and_reconstruction(scan):
    data = Digits("test", encoding="delta", steps=8, delta_threshold=0.1, scan=scan)
    x, _ = data[2]
    img = data.images[2]
    lines = img if scan == "rows" else img.t()                          # [t, sensor pixel]
    ref = delta_encode(lines.unsqueeze(1), 0.1, reference=0.0)[:, 0].permute(0, 2, 1)
    assert torch.equal(x, ref)
    recon = 0.1 * torch.cumsum(x[:, 0] - x[:, 1], dim=0)               # starts from a blank sensor
    assert torch.all((recon - lines).abs() < 0.1 + 1e-6)
    longer = Digits("test", encoding="delta", steps=15, scan=scan)[2][0]
    assert longer.shape == (15, 2, 8)                                   # interpolated scan
    assert torch.allclose(0.1 * torch.cumsum(longer[:, 0] - longer[:, 1], 0)[::2], lines, atol=0.1)


@pytest.mark.parametrize("kwargs, word", [
    ({"split": "valid"}, "split"), ({"encoding": "phase"}, "encoding"), ({"steps": 0}, "steps"),
    ({"encoding": "delta", "steps": 1}, "steps"), ({"test_fraction": 1.5}, "test_fraction"),
    ({"max_rate": 2000.0, "dt": 1e-3}, "max_rate"), ({"scan": "diag"}, "scan"),
])
def test_bad_input_names_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word) as err:
        Digits(**kwargs)
    assert "digits.py" in str(err.value)
