"""examples/memnet.py: the quick budget end to end (both variants above chance on held-out stories,
the spiking variant spikes, one history entry per epoch), the spike / synop accounting against a
hand count, held-out filtering, determinism, and bad flags / settings refused before any work."""
import argparse

import pytest
import torch

from neurosim.examples import memnet
from neurosim.examples.common import parse_example_args


@pytest.fixture(scope="module")
def quick():
    torch.set_num_threads(1)
    args = parse_example_args(memnet, ["--quick", "--threads", "1"])
    return args, memnet.run(args)


def by_name(result):
    return {v.name: v for v in result.variants}


def test_both_variants_clearly_above_chance(quick):
    args, result = quick
    assert result.chance == pytest.approx(1 / 6) and result.higher_is_better
    v = by_name(result)
    assert v["MemN2N"].kind == "conventional" and v["spiking MemN2N"].kind == "hybrid"
    assert v["MemN2N"].metric > 0.6, v["MemN2N"].metric                   # chance 0.167
    assert v["spiking MemN2N"].metric > 0.3, v["spiking MemN2N"].metric
    for variant in result.variants:
        assert variant.params > 0 and variant.train_seconds > 0 and variant.macs_per_sample > 0
    assert result.budget["held_out_test_stories"] <= args.test_samples
    assert [r.value for r in result.references] and all(0 < r.value <= 1 for r in result.references)


def test_spiking_variant_spikes(quick):
    args, result = quick
    spiking = by_name(result)["spiking MemN2N"]
    assert spiking.time_steps == args.timesteps
    assert spiking.spikes_per_sample > 0 and spiking.synops_per_sample >= spiking.spikes_per_sample
    assert spiking.raster.dtype == torch.bool and spiking.raster.shape[0] == args.timesteps
    assert spiking.raster.any()
    assert spiking.simulator is None and "NIR" in spiking.deploy_note
    conventional = by_name(result)["MemN2N"]
    assert conventional.spikes_per_sample is None and conventional.time_steps == 1


def test_histories_have_one_entry_per_epoch(quick):
    args, result = quick
    for v in result.variants:
        assert set(v.history) == {"train_loss", "val_accuracy"}
        assert all(len(h) == args.epochs for h in v.history.values())
        assert v.history["train_loss"][-1] < v.history["train_loss"][0], v.name


def _lif_spike_count(current, steps, tau=5e-3, dt=1e-3, threshold=1.0):
    """Spikes of one LIF neuron (exact decay, reset by subtraction) under a constant current."""
    a = torch.exp(torch.tensor(-dt / tau)).item()
    v, n = 0.0, 0
    for _ in range(steps):
        v = a * v + (1 - a) * current
        if v >= threshold:
            n += 1
            v -= threshold
    return n


def test_spike_and_synop_count_by_hand():
    """Zero embeddings: only the word encoders fire (drive 3 thresholds, a regular train), so the
    spikes are words x spikes-per-word and the synops add each word's fan-out: (K + 1) d for a
    story word, d for a question word."""
    from neurosim.plugins.memnet import MemNetConfig, SpikingMemN2N
    cfg = MemNetConfig(vocab_size=9, sentences=3, sentence_len=5, embed_dim=4, hops=2)
    net = SpikingMemN2N(cfg)
    with torch.no_grad():
        for table in net.embeddings.tables:
            table.weight.zero_()
    story = torch.zeros(2, 3, 5, dtype=torch.long)
    story[0, 0, :3] = torch.tensor([1, 2, 3])
    story[0, 1, :2] = torch.tensor([4, 5])
    story[1, 0, :4] = torch.tensor([1, 1, 2, 6])
    question = torch.tensor([[7, 8, 0, 0, 0], [7, 8, 1, 0, 0]])
    steps = 12
    per_word = _lif_spike_count(cfg.drive * cfg.v_threshold, steps)
    assert per_word > 0
    story_words, question_words = 3 + 2 + 4, 2 + 3
    spikes, synops, raster = memnet.spiking_costs(net, story, question, steps)
    assert spikes == pytest.approx(per_word * (story_words + question_words) / 2)
    assert synops == pytest.approx(per_word * (story_words * (cfg.hops + 1) * cfg.embed_dim
                                               + question_words * cfg.embed_dim) / 2)
    assert raster.shape == (steps, (3 + 1) * 5 + 4 + 3 * 4)
    assert int(raster.sum()) == per_word * (3 + 2 + 2)             # story 0: 5 story words + 2 question words
    # the populations are left as they were
    assert all("step" not in vars(p) for p in (net.word_encoder, net.memory_encoder, net.question_encoder))


def test_synops_weigh_every_population_by_its_fan_out():
    """All encoders firing (gain 25, random embeddings): synops = story-word spikes x (K + 1) d +
    question-word spikes x d + question-encoder spikes x (S + 1) + memory spikes of table k x its
    uses (score for k < K, output for k >= 1), the spikes counted here by hand from the
    populations' own steps."""
    from neurosim.plugins.memnet import MemNetConfig, SpikingMemN2N
    torch.manual_seed(0)
    cfg = MemNetConfig(vocab_size=9, sentences=3, sentence_len=5, embed_dim=4, hops=2, gain=25.0)
    net = SpikingMemN2N(cfg)
    story = torch.randint(0, 9, (2, 3, 5))
    question = torch.randint(1, 9, (2, 5))
    counts = {}
    originals = {name: getattr(net, name).step for name in ("word_encoder", "memory_encoder", "question_encoder")}

    def counting(name):
        def step(x, state, dt):
            s, new_state = originals[name](x, state, dt)
            counts.setdefault(name, []).append(s)
            return s, new_state
        return step

    for name in originals:
        getattr(net, name).step = counting(name)
    with torch.no_grad():
        net.run(story, question, 7)
    for name in originals:
        del getattr(net, name).step
    words = torch.stack(counts["word_encoder"])                     # [T, B, S + 1, L]
    memories = torch.stack(counts["memory_encoder"])                # [T, B, K + 1, S, d]
    q = torch.stack(counts["question_encoder"])                     # [T, B, d]
    assert q.sum() > 0 and memories[:, :, 0].sum() > 0 and memories[:, :, 2].sum() > 0
    expected_synops = (words[:, :, :3].sum() * 3 * 4 + words[:, :, 3].sum() * 4 + q.sum() * 4
                       + memories[:, :, 0].sum() * 1 + memories[:, :, 1].sum() * 2 + memories[:, :, 2].sum() * 1)
    expected_spikes = words.sum() + memories.sum() + q.sum()
    spikes, synops, _ = memnet.spiking_costs(net, story, question, 7)
    assert spikes == pytest.approx(float(expected_spikes) / 2)
    assert synops == pytest.approx(float(expected_synops) / 2)


def test_held_out_drops_stories_seen_in_training():
    args = parse_example_args(memnet, ["--quick"])
    train = memnet._stories(args, 50, 1)
    assert len(memnet.held_out(train, train)) == 0
    other = memnet._stories(args, 50, 2)
    kept = memnet.held_out(other, train)
    seen = {tuple(s.flatten().tolist()) + tuple(q.tolist()) for s, q in zip(train.stories, train.questions)}
    for i in range(50):
        key = tuple(other.stories[i].flatten().tolist()) + tuple(other.questions[i].tolist())
        assert (i in kept.tolist()) == (key not in seen)


def test_same_seed_same_figures_other_seed_differs():
    flags = ["--quick", "--threads", "1", "--epochs", "1", "--train-samples", "64", "--val-samples", "32",
             "--test-samples", "128", "--timesteps", "3"]
    a = memnet.run(parse_example_args(memnet, flags + ["--seed", "3"]))
    b = memnet.run(parse_example_args(memnet, flags + ["--seed", "3"]))
    c = memnet.run(parse_example_args(memnet, flags + ["--seed", "4"]))
    assert [v.metric for v in a.variants] == [v.metric for v in b.variants]
    assert [v.history for v in a.variants] == [v.history for v in b.variants]
    assert [v.history["train_loss"] for v in a.variants] != [v.history["train_loss"] for v in c.variants]


@pytest.mark.parametrize("argv", [["--task", "3"], ["--epochs", "0"], ["--lr", "0"], ["--timesteps", "two"],
                                  ["--no-such-flag"]])
def test_bad_flag_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_example_args(memnet, ["--quick"] + argv)
    assert exc.value.code == 2


def test_bad_settings_raise_before_work():
    args = parse_example_args(memnet, ["--quick"])
    with pytest.raises(ValueError, match="examples/memnet.py: sentences must be >= 2"):
        memnet.run(argparse.Namespace(**{**vars(args), "sentences": 1}))
    with pytest.raises(ValueError, match="task must be one of"):
        memnet.run(argparse.Namespace(**{**vars(args), "task": 5}))
