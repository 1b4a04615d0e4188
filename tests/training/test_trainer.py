"""Trainer: learning end to end, trainable neuron parameters, seeds, checkpoints and exact resume."""
import math
import os
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from neurosim.training import Trainer, atomic_save, make_loader, membrane_cross_entropy


def max_membrane_ce(v, y):
    return membrane_cross_entropy(v, y, mode="max")


def max_over_time(v):
    return v.max(0).values


def _trainer(sim, seed=0, lr=5e-2, **kw):
    kw.setdefault("progress", False)
    return Trainer(sim, torch.optim.Adam(sim.parameters(), lr), max_membrane_ce, seed=seed,
                   decode=max_over_time, **kw)


def test_end_to_end_learns_two_classes(classifier, two_class_data):
    sim = classifier()
    trainer = _trainer(sim)
    val = trainer.make_loader(two_class_data(n=128, seed=1), 128, shuffle=False)
    before = trainer.evaluate(val)
    history = trainer.fit(trainer.make_loader(two_class_data(n=256, seed=0), 32), epochs=4, val_loader=val)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["val_accuracy"] >= 0.85, history
    assert history[-1]["val_loss"] < 0.5 * before["loss"]
    after = trainer.evaluate(val)
    assert after["samples"] == 128 and after["accuracy"] == history[-1]["val_accuracy"]


def test_trainable_tau_mem_and_threshold_get_gradients_and_change(classifier, two_class_data):
    sim = classifier(trainable=("tau_mem", "v_threshold"))
    hidden = sim.graph.nodes["hidden"]
    tau0, thr0 = hidden.tau_mem.detach().clone(), hidden.v_threshold.detach().clone()
    x, y = two_class_data(n=32).tensors
    max_membrane_ce(sim.run(x.transpose(0, 1)).output, y).backward()
    for p in (hidden.tau_mem, hidden.v_threshold):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    trainer = Trainer(sim, torch.optim.Adam(sim.parameters(), 1e-3), max_membrane_ce, seed=0, progress=False)
    trainer.fit(trainer.make_loader(two_class_data(n=64), 16), epochs=1)
    assert not torch.equal(hidden.tau_mem.detach(), tau0)
    assert not torch.equal(hidden.v_threshold.detach(), thr0)


def _seed_global_rngs(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _global_rng_states():
    return torch.random.get_rng_state(), np.random.get_state(), random.getstate()


def test_constructing_and_fitting_leaves_the_global_rngs_alone(classifier, two_class_data, tmp_path):
    data = two_class_data(n=48)
    sim = classifier()
    _seed_global_rngs(12345)
    torch_state, numpy_state, python_state = _global_rng_states()
    trainer = _trainer(sim, seed=0, checkpoint_dir=tmp_path)
    trainer.fit(trainer.make_loader(data, 16), epochs=2,
                val_loader=trainer.make_loader(data, 16, shuffle=False))
    trainer.resume(tmp_path / "epoch_001.pt")          # restores the streams as they were then: unchanged
    after_torch, after_numpy, after_python = _global_rng_states()
    assert torch.equal(after_torch, torch_state)
    assert after_numpy[0] == numpy_state[0] and np.array_equal(after_numpy[1], numpy_state[1])
    assert after_numpy[2:] == numpy_state[2:]
    assert after_python == python_state


def test_grad_clip_scales_the_update_like_clip_grad_norm(classifier, two_class_data):
    """SGD with clipping: w' = w - lr * g * min(1, c / (||g|| + 1e-6)), ||g|| the norm of all
    gradients together (torch.nn.utils.clip_grad_norm_'s definition), computed here by hand."""
    x, y = two_class_data(n=16).tensors
    inputs, lr = x.transpose(0, 1).contiguous(), 0.5
    reference = classifier()
    max_membrane_ce(reference.run(inputs).output, y).backward()
    params = [p for p in reference.parameters()]
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
    clip = norm / 4                                   # clipping is active: the step shrinks 4x
    scale = clip / (norm + 1e-6)
    expected = {name: (p.detach().double() - lr * scale * p.grad.double())
                for name, p in reference.named_parameters()}
    unclipped = {name: (p.detach().double() - lr * p.grad.double()) for name, p in reference.named_parameters()}

    sim = classifier()
    trainer = Trainer(sim, torch.optim.SGD(sim.parameters(), lr), max_membrane_ce, grad_clip=clip, progress=False)
    trainer.train_step(inputs, y)
    for name, p in sim.named_parameters():     # float32 weights up to ~3: one ulp is 2.4e-7
        assert torch.allclose(p.detach().double(), expected[name], rtol=0, atol=5e-7), name
    moved = max(float((unclipped[n] - p.detach().double()).abs().max()) for n, p in sim.named_parameters())
    assert moved > 1e-3                               # and the unclipped step is far from it
    with pytest.raises(ValueError, match="grad_clip"):
        Trainer(sim, torch.optim.SGD(sim.parameters(), lr), max_membrane_ce, grad_clip=0.0)


def _weights(sim):
    return {k: v.detach().clone() for k, v in sim.state_dict().items()}


def test_same_seed_gives_bit_identical_weights(classifier, two_class_data):
    data = two_class_data(n=64)
    runs = []
    for global_seed, seed in ((100, 3), (200, 3), (300, 4)):
        sim = classifier(seed=0)                   # the same initial weights every time
        _seed_global_rngs(global_seed)             # the global RNGs differ and must not matter
        trainer = _trainer(sim, seed=seed, progress=True)   # progress bars: off on a non-tty
        trainer.fit(trainer.make_loader(data, 16), epochs=2)
        runs.append(_weights(sim))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    # another seed shuffles differently: the result differs
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


class JitteredPoisson(Dataset):
    """Spikes drawn at access time from torch's, NumPy's and Python's global RNGs, so a resumed run
    only matches when every RNG state was restored."""

    def __init__(self, n=48, steps=12, n_in=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.rates = torch.full((n, n_in), 0.05)
        self.rates[self.labels == 0, : n_in // 2] = 0.4
        self.rates[self.labels == 1, n_in // 2:] = 0.4
        self.steps = steps

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        jitter = 0.9 + 0.1 * float(np.random.rand()) + 0.1 * random.random()
        x = (torch.rand(self.steps, self.rates.shape[1]) < self.rates[i] * jitter).float()
        return x, self.labels[i]


def _resumable_trainer(classifier, init_seed, checkpoint_dir):
    sim = classifier(seed=init_seed)
    _seed_global_rngs(7)        # JitteredPoisson draws from them; the script seeds them, not the Trainer
    opt = torch.optim.Adam(sim.parameters(), 2e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    return Trainer(sim, opt, max_membrane_ce, seed=11, checkpoint_dir=checkpoint_dir, progress=False,
                   scheduler=sched, decode=max_over_time)


def test_resume_is_bit_identical_to_an_uninterrupted_run(classifier, tmp_path):
    data = JitteredPoisson()
    full = _resumable_trainer(classifier, 0, tmp_path / "full")
    full_history = full.fit(full.make_loader(data, 12), epochs=4)

    first = _resumable_trainer(classifier, 0, tmp_path / "part")
    first.fit(first.make_loader(data, 12), epochs=2)
    del first
    # a fresh process would build everything anew, with other initial weights and RNG states
    torch.manual_seed(1234)
    second = _resumable_trainer(classifier, 99, tmp_path / "part")
    history = second.fit(second.make_loader(data, 12), epochs=4, resume_from=tmp_path / "part" / "last.pt")

    assert second.epoch == 4 and history == full_history
    a, b = _weights(full.module), _weights(second.module)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = full.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert full.scheduler.get_last_lr() == second.scheduler.get_last_lr()
    assert torch.equal(full.generator.get_state(), second.generator.get_state())

    names = sorted(os.listdir(tmp_path / "part"))
    assert names == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "epoch_004.pt", "last.pt"]
    ckpt = torch.load(tmp_path / "part" / "epoch_002.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt["rng"]) >= {"torch", "generator", "python", "numpy"}
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor) and isinstance(ckpt["rng"]["numpy"]["keys"], torch.Tensor)


def test_resume_without_the_rng_states_would_differ(classifier, tmp_path):
    """The check above can fail: skipping the RNG restore changes the result."""
    data = JitteredPoisson()
    full = _resumable_trainer(classifier, 0, None)
    full.fit(full.make_loader(data, 12), epochs=2)
    part = _resumable_trainer(classifier, 0, tmp_path)
    part.fit(part.make_loader(data, 12), epochs=1)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    other = _resumable_trainer(classifier, 0, None)
    other.module.load_state_dict(ckpt["model"])
    other.optimizer.load_state_dict(ckpt["optimizer"])
    other.scheduler.load_state_dict(ckpt["scheduler"])
    other.epoch = 1                                         # RNGs left at their fresh seeds
    other.fit(other.make_loader(data, 12), epochs=2)
    a, b = _weights(full.module), _weights(other.module)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_time_first_false_transposes(classifier, two_class_data):
    x, y = two_class_data(n=32).tensors                       # [B, T, F]
    batches_bt = [(x[i:i + 16], y[i:i + 16]) for i in (0, 16)]
    batches_tb = [(xb.transpose(0, 1).contiguous(), yb) for xb, yb in batches_bt]
    a, b = classifier(), classifier()
    _trainer(a, time_first=False).fit(batches_bt, epochs=1)
    _trainer(b).fit(batches_tb, epochs=1)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)      # the same products, in the same order
    loader = _trainer(classifier(), time_first=False).make_loader(two_class_data(n=32), 8)
    assert next(iter(loader))[0].shape == (8, 20, 12)          # [B, T, F]
    with pytest.raises(ValueError, match="expected a"):          # [B, T, F] given as time-first
        _trainer(classifier()).fit([(x[:16, :, :6], y[:16])], epochs=1)


def test_evaluate_matches_a_manual_computation(classifier, two_class_data):
    sim = classifier()
    trainer = _trainer(sim)
    data = two_class_data(n=40)
    res = trainer.evaluate(trainer.make_loader(data, 16, shuffle=False))   # batches 16, 16, 8
    x, y = data.tensors
    with torch.no_grad():
        v = sim.run(x.transpose(0, 1)).output
    assert res["samples"] == 40
    assert res["loss"] == pytest.approx(float(max_membrane_ce(v, y)), rel=1e-5)
    assert res["accuracy"] == pytest.approx(float((v.max(0).values.argmax(1) == y).float().mean()))


def test_bad_arguments_raise(classifier, two_class_data, tmp_path):
    sim, other = classifier(), classifier()
    with pytest.raises(ValueError, match="not the simulator's"):
        Trainer(sim, torch.optim.SGD(other.parameters(), 0.1), max_membrane_ce)
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(sim, "adam", max_membrane_ce)
    with pytest.raises(ValueError, match="seed"):
        Trainer(sim, torch.optim.SGD(sim.parameters(), 0.1), max_membrane_ce, seed=-1)
    sim.graph.add_output("hidden", "out")
    with pytest.raises(ValueError, match="output=<name>"):
        Trainer(sim, torch.optim.SGD(sim.parameters(), 0.1), max_membrane_ce)
    trainer = Trainer(sim, torch.optim.SGD(sim.parameters(), 0.1), max_membrane_ce, output="out", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit([], epochs=-1)
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair"):
        trainer.fit([torch.zeros(5, 2, 12)], epochs=1)
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit([], epochs=1)
    with pytest.raises(FileNotFoundError):
        trainer.resume(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a neurosim Trainer checkpoint"):
        trainer.resume(tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="divisible"):
        make_loader(two_class_data(n=8), 5, torch.Generator(), world_size=2)
    with pytest.raises(ValueError, match="shuffle=True needs a torch.Generator"):
        make_loader(two_class_data(n=8), 4, None, shuffle=True)


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": torch.ones(2)}, path)
    with pytest.raises(Exception):
        atomic_save({"a": lambda: 0}, path)                     # lambdas cannot be pickled
    assert os.listdir(tmp_path) == ["ckpt.pt"]                   # no temporary file left behind
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))


def test_integer_spike_inputs_are_cast_to_the_model_dtype(classifier, two_class_data):
    x, y = two_class_data(n=16).tensors
    xs = x.transpose(0, 1).contiguous()
    a, b = classifier(), classifier()
    _trainer(a).fit([(xs.to(torch.uint8), y)], epochs=1)
    _trainer(b).fit([(xs, y)], epochs=1)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)      # the same products, in the same order


def test_rate_regularizer_silences_the_hidden_layer(classifier, two_class_data):
    from neurosim.training import rate_l2_penalty
    data = two_class_data(n=64)
    x = data.tensors[0].transpose(0, 1)
    rates = []
    for weight in (0.0, 1e-3):
        sim = classifier()
        sim.graph.add_output("hidden", "out")
        trainer = _trainer(sim, output="out",
                           regularizer=lambda res: weight * rate_l2_penalty(res.outputs["hidden"], 1e-3, 0.0))
        trainer.fit(trainer.make_loader(data, 16), epochs=2)
        with torch.no_grad():
            rates.append(float(sim.run(x).outputs["hidden"].mean()))
    assert rates[0] > 0.02 and rates[1] < 0.5 * rates[0], rates
