"""examples/ntm.py: the quick budget end to end (every variant above chance, the spiking controller
spikes and its synops follow spikes x fan-out, one history entry per epoch), the recall-bit
alignment by hand, determinism, and bad flags / settings refused before any work."""
import argparse

import pytest
import torch

from neurosim.examples import ntm
from neurosim.examples.common import parse_example_args


@pytest.fixture(scope="module")
def quick():
    torch.set_num_threads(1)
    args = parse_example_args(ntm, ["--quick", "--threads", "1"])
    return args, ntm.run(args)


def by_name(result):
    return {v.name: v for v in result.variants}


def test_every_variant_clearly_above_chance(quick):
    args, result = quick
    assert result.chance == 0.5 and result.higher_is_better
    for v in result.variants:
        assert v.metric > 0.65, (v.name, v.metric)          # chance 0.5; measured ~0.8 for each
        assert 0.0 <= v.extra["longer_bit_accuracy"] <= 1.0
        assert v.params > 0 and v.train_seconds > 0 and v.seconds_per_sample > 0 and v.macs_per_sample > 0
    kinds = {v.name: v.kind for v in result.variants}
    assert kinds == {"NTM, LSTM controller": "conventional", "NTM, spiking controller": "hybrid",
                     "LSTM, no memory": "conventional"}
    # the memory-free LSTM gets at least the NTM's parameter budget
    v = by_name(result)
    assert v["LSTM, no memory"].params >= v["NTM, LSTM controller"].params


def test_bit_errors_agree_with_bit_accuracy(quick):
    args, result = quick
    for v in result.variants:
        errors = v.extra["bit_errors_per_sequence"]
        # copy sequences of 1..length vectors: between 1 and `length` vectors of W bits to recall
        assert (1 - v.metric) * args.width <= errors + 1e-9
        assert errors <= (1 - v.metric) * args.width * args.length + 1e-9


def test_spiking_controller_spikes_and_synops_follow_fan_out(quick):
    args, result = quick
    spiking = by_name(result)["NTM, spiking controller"]
    steps = 2 * args.length + 1
    assert spiking.time_steps == steps
    assert spiking.spikes_per_sample > 0
    assert spiking.raster.dtype == torch.bool and tuple(spiking.raster.shape) == (steps, args.hidden)
    assert spiking.raster.any()
    assert spiking.spikes_per_sample <= steps * args.hidden
    # each spike reaches W_rec (hidden), the head layer and the output layer (Graves et al.'s heads:
    # key W, beta, g, gamma, 3 shifts per head, plus erase and add W each for the write head)
    w = args.memory_width
    head_inputs = (w + 6) + (w + 6 + 2 * w)
    fan_out = args.hidden + head_inputs + args.width
    assert spiking.synops_per_sample == pytest.approx(spiking.spikes_per_sample * fan_out, rel=1e-6)
    assert spiking.simulator is None and "NIR" in spiking.deploy_note
    for v in result.variants:
        if v.kind == "conventional":
            assert v.spikes_per_sample is None and v.raster is None


def test_histories_have_one_entry_per_epoch(quick):
    args, result = quick
    for v in result.variants:
        assert set(v.history) == {"train_loss", "val_bit_accuracy"}
        assert all(len(h) == args.epochs for h in v.history.values())
        assert v.history["train_loss"][-1] < v.history["train_loss"][0], v.name     # it learns
    assert result.budget["adam_steps"] == args.epochs * -(-args.train_samples // args.batch)


def test_recall_bits_align_targets_by_hand():
    # two sequences: sample 0 recalls at t = 3, 4 (two vectors), sample 1 at t = 2 only (one vector);
    # outputs come sequence by sequence, each in time order
    T, B, W = 5, 2, 3
    mask = torch.zeros(T, B, dtype=torch.bool)
    mask[3, 0] = mask[4, 0] = mask[2, 1] = True
    target = torch.arange(2 * B * W, dtype=torch.float32).reshape(2, B, W)
    y = torch.full((T, B, W), -1.0)
    y[3, 0], y[4, 0], y[2, 1] = torch.tensor([1.0, 2, 3]), torch.tensor([4.0, 5, 6]), torch.tensor([7.0, 8, 9])
    logits, bits = ntm.recall_bits(y, target, mask)
    assert torch.equal(logits, torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]))
    assert torch.equal(bits, torch.stack([target[0, 0], target[1, 0], target[0, 1]]))


@pytest.mark.parametrize("task", ["copy", "recall"])
def test_evaluate_scores_an_oracle_and_a_constant_guess(task):
    """On either task's layout: outputs equal to the targets on the recall steps score 1 and no
    error; always answering 0 scores the fraction of 0 bits among the bits to recall."""
    args = parse_example_args(ntm, ["--quick", "--task", task])
    data = ntm._dataset(args, 40, 5)
    x = data.inputs.transpose(0, 1)

    def oracle(inp):
        assert torch.equal(inp, x)                                   # one batch, in order
        y = torch.full((x.shape[0], 40, args.width), -5.0)
        for b in range(40):
            steps = torch.nonzero(data.masks[b]).flatten()
            y[steps, b] = 10 * data.targets[b, :len(steps)] - 5
        return y

    assert ntm.evaluate(oracle, data) == {"bit_accuracy": 1.0, "bit_errors_per_sequence": 0.0}
    zeros = ones = 0
    for b in range(40):
        recalled = data.targets[b, :int(data.masks[b].sum())]
        zeros += int((recalled == 0).sum())
        ones += int((recalled == 1).sum())
    got = ntm.evaluate(lambda inp: torch.zeros(inp.shape[0], inp.shape[1], args.width), data)
    assert got["bit_accuracy"] == pytest.approx(zeros / (zeros + ones))
    assert got["bit_errors_per_sequence"] == pytest.approx(ones / 40)
    longer = ntm._dataset(args, 8, 6, longer=True)
    if task == "copy":
        assert (longer.lengths == 2 * args.length).all() and (data.lengths <= args.length).all()
    else:
        assert (longer.n_items == 2 * args.items).all() and (data.n_items <= args.items).all()
        assert (data.masks.sum(1) == args.item_len).all()


def test_same_seed_same_figures_other_seed_differs():
    flags = ["--quick", "--threads", "1", "--epochs", "1", "--train-samples", "64", "--val-samples", "32",
             "--test-samples", "64"]
    a = ntm.run(parse_example_args(ntm, flags + ["--seed", "3"]))
    b = ntm.run(parse_example_args(ntm, flags + ["--seed", "3"]))
    c = ntm.run(parse_example_args(ntm, flags + ["--seed", "4"]))
    assert [v.metric for v in a.variants] == [v.metric for v in b.variants]
    assert [v.history for v in a.variants] == [v.history for v in b.variants]
    assert [v.metric for v in a.variants] != [v.metric for v in c.variants]


@pytest.mark.parametrize("argv", [["--task", "sort"], ["--batch", "0"], ["--lr", "-1"], ["--hidden", "x"],
                                  ["--no-such-flag"]])
def test_bad_flag_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_example_args(ntm, ["--quick"] + argv)
    assert exc.value.code == 2


def test_bad_settings_raise_before_work():
    args = parse_example_args(ntm, ["--quick"])
    with pytest.raises(ValueError, match="examples/ntm.py: items must be >= 2"):
        ntm.run(argparse.Namespace(**{**vars(args), "task": "recall", "items": 1}))
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        ntm.run(argparse.Namespace(**{**vars(args), "batch": 0}))
    with pytest.raises(ValueError, match="task must be one of"):
        ntm.run(argparse.Namespace(**{**vars(args), "task": "sort"}))
