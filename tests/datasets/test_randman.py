"""datasets/randman.py: random smooth manifolds -> one spike per unit (Zenke & Vogels 2021)."""
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader

from neurosim.datasets.randman import Randman

SMALL = dict(nb_classes=4, nb_units=20, nb_steps=50, dim_manifold=1, alpha=2.0)


def test_shapes_dtypes_one_spike_per_unit_and_balance():
    data = Randman(**SMALL, nb_samples=30, seed=0)
    assert len(data) == 120
    x, y = data[7]
    assert x.shape == (50, 20) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x.sum(0), torch.ones(20))                       # exactly one spike per unit
    assert torch.equal(x.argmax(0), data.times[7])
    assert data.times.dtype == torch.int64 and data.times.min() >= 0 and data.times.max() < 50
    assert torch.equal(torch.bincount(data.labels, minlength=4), torch.full((4,), 30))
    assert len(set(data.labels[:12].tolist())) > 1                    # shuffled, not class blocks
    xb, yb = next(iter(DataLoader(data, batch_size=6, collate_fn=data.collate)))
    assert xb.shape == (50, 6, 20) and yb.shape == (6,) and torch.equal(xb[:, 2], data[2][0])
    spread = data.times.float()                                         # times use the window
    assert spread.min() <= 5 and spread.max() >= 44


def test_seeds_determine_everything():
    a, b = Randman(**SMALL, nb_samples=20, seed=1), Randman(**SMALL, nb_samples=20, seed=1)
    assert torch.equal(a.times, b.times) and torch.equal(a.labels, b.labels)
    c = Randman(**SMALL, nb_samples=20, seed=2)                        # other samples, same manifolds
    assert not torch.equal(a.latents, c.latents)
    z = torch.rand(5, 1, dtype=torch.float64)
    assert torch.equal(a.spike_times(z, 2), c.spike_times(z, 2))
    d = Randman(**SMALL, nb_samples=20, seed=1, manifold_seed=9)       # other manifolds
    assert not torch.equal(a.spike_times(z, 2), d.spike_times(z, 2))


@pytest.mark.parametrize("dim", [1, 2])
def test_classes_separable_on_held_out_samples(dim):
    kw = dict(SMALL, dim_manifold=dim)
    train, test = Randman(**kw, nb_samples=150, seed=0), Randman(**kw, nb_samples=50, seed=1)
    clf = LogisticRegression(max_iter=3000).fit(train.times.numpy(), train.labels.numpy())
    acc = clf.score(test.times.numpy(), test.labels.numpy())
    assert acc > 0.75, acc                                               # chance: 0.25
    cent = torch.stack([train.times[train.labels == c].float().mean(0) for c in range(4)])
    nc = (torch.cdist(test.times.float(), cent).argmin(1) == test.labels).float().mean()
    assert nc > 0.4, nc                                                  # even nearest centroid


def test_smooth_nearby_latents_give_nearby_times():
    data = Randman(**dict(SMALL, nb_steps=1000), nb_samples=1)
    gen = torch.Generator().manual_seed(5)
    z = torch.rand(200, 1, generator=gen, dtype=torch.float64) * 0.99
    near = (data.spike_times(z + 1e-3, 0) - data.spike_times(z, 0)).abs().float().mean()
    far = (data.spike_times(z.flip(0), 0) - data.spike_times(z, 0)).abs().float().mean()
    assert near < 0.05 * far, (near, far)
    rough = Randman(**dict(SMALL, nb_steps=1000, alpha=0.5), nb_samples=1, max_terms=500)
    rough_near = (rough.spike_times(z + 1e-3, 0) - rough.spike_times(z, 0)).abs().float().mean()
    assert rough_near > 2 * near, (rough_near, near)                    # alpha sets the smoothness


@pytest.mark.parametrize("kwargs, word", [
    ({"nb_classes": 1}, "nb_classes"), ({"nb_units": 0}, "nb_units"), ({"nb_steps": 0}, "nb_steps"),
    ({"dim_manifold": 0}, "dim_manifold"), ({"alpha": 0.0}, "alpha"), ({"nb_samples": 2.5}, "nb_samples"),
])
def test_bad_input_names_the_argument(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word) as err:
        Randman(**kwargs)
    assert "randman.py" in str(err.value)
