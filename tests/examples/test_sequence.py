"""examples/sequence.py: six sequence classifiers (three conventional, three spiking) on randman."""
import pytest
import torch

from neurosim.examples import sequence
from neurosim.examples.common import parse_example_args


@pytest.fixture(scope="module")
def quick():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = parse_example_args(sequence, ["--quick", "--threads", "1"])
        yield args, sequence.run(args)
    finally:
        torch.set_num_threads(before)


def test_every_variant_clearly_above_chance_on_randman(quick):
    args, result = quick
    assert result.chance == pytest.approx(1 / args.classes) and result.higher_is_better
    assert [v.name for v in result.variants] == list(sequence.VARIANTS)
    for v in result.variants:
        assert v.metric > result.chance + 0.2, (v.name, v.metric)
        assert len(v.history["train_loss"]) == args.epochs == len(v.history["test_accuracy"])
        assert v.history["train_loss"][-1] < v.history["train_loss"][0], v.name        # it learnt
        assert v.history["test_accuracy"][-1] == v.metric                              # same measurement
        assert v.params > 0 and v.train_seconds > 0 and v.seconds_per_sample > 0 and v.macs_per_sample >= 0


def test_spiking_variants_spike_and_count_synops(quick):
    args, result = quick
    by_name = {v.name: v for v in result.variants}
    for name in ("spiking transformer", "spiking mixer", "recurrent LIF"):
        v = by_name[name]
        assert v.kind == "spiking" and v.spikes_per_sample > 0 and v.synops_per_sample > 0, name
        assert v.raster is not None and v.raster.dtype == torch.bool and v.raster.any(), name
        assert v.raster.shape[0] == v.time_steps, name
    assert by_name["recurrent LIF"].time_steps == args.steps
    assert by_name["spiking transformer"].time_steps == args.steps // args.tokens
    for name in ("transformer", "mlp-mixer", "lstm"):
        v = by_name[name]
        assert v.kind == "conventional" and v.spikes_per_sample is None and v.raster is None
        assert v.macs_per_sample > 0


def test_only_the_engine_graph_is_deployable(quick):
    _, result = quick
    by_name = {v.name: v for v in result.variants}
    lif = by_name["recurrent LIF"]
    assert lif.simulator is not None and lif.deploy_inputs.shape[1] <= 4
    out = lif.simulator.run(lif.deploy_inputs).output                          # [T, batch, classes]
    assert out.shape[:2] == lif.deploy_inputs.shape[:2]
    for name in ("spiking transformer", "spiking mixer"):
        assert by_name[name].simulator is None and "no NIR mapping" in by_name[name].deploy_note


def test_block_counts_match_hand_counts():
    """count_block_ops on a tiny SpikingMixer: spikes = the sum of every LIF output, and a linear
    layer fed with spikes costs (active inputs) x (fan-out) synops; the rest stays dense MACs."""
    from neurosim.plugins.mixer import MixerConfig, SpikingMixer
    torch.manual_seed(1)
    model = SpikingMixer(MixerConfig(num_tokens=3, in_features=5, num_classes=2, channels=8, token_hidden=4,
                                     channel_hidden=6, num_layers=1, norm="none"))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)                                                         # drive every LIF over threshold
    x = (torch.rand(4, 3, 5) < 0.5).float()
    seen = {"spikes": 0.0, "synops": 0.0}
    layer = model.layers[0]
    with torch.no_grad():
        state = model.initial_state(4)
        h = model.stem(x)                                                       # by hand, one step
        a, _ = layer.lif_token_in.step(h, state.layers[0].token_in, 1e-3)
        hh, _ = layer.lif_token_hidden.step(layer.token_fc1(a.transpose(1, 2)), state.layers[0].token_hidden, 1e-3)
        h2 = h + layer.token_fc2(hh).transpose(1, 2)
        b, _ = layer.lif_channel_in.step(h2, state.layers[0].channel_in, 1e-3)
        g, _ = layer.lif_channel_hidden.step(layer.channel_fc1(b), state.layers[0].channel_hidden, 1e-3)
        h3 = h2 + layer.channel_fc2(g)
        out, _ = model.lif_out.step(h3, state.out, 1e-3)
        seen["spikes"] = float(a.sum() + hh.sum() + b.sum() + g.sum() + out.sum())
        seen["synops"] = float(x.sum() * 8 + a.sum() * 4 + hh.sum() * 3 + b.sum() * 6 + g.sum() * 8)
        with sequence.count_block_ops(model) as box:
            model(x)
    assert min(float(s.sum()) for s in (a, hh, b, g, out)) > 0                 # every population spiked
    assert box["spikes"] == pytest.approx(seen["spikes"])
    assert box["synops"] == pytest.approx(seen["synops"])
    assert box["macs"] == pytest.approx(4 * 8 * 2)                              # the head on mean(spikes)
    assert box["raster"].shape == (1, 3 * 8)


def test_same_seed_same_metrics():
    args = parse_example_args(sequence, ["--quick", "--threads", "1", "--epochs", "1",
                                         "--variants", "mlp-mixer,recurrent LIF"])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = sequence.run(args), sequence.run(args)
        other = sequence.run(parse_example_args(sequence, ["--quick", "--epochs", "1", "--seed", "1",
                                                           "--variants", "mlp-mixer,recurrent LIF"]))
    finally:
        torch.set_num_threads(before)
    assert [v.name for v in a.variants] == ["mlp-mixer", "recurrent LIF"]
    assert [v.metric for v in a.variants] == [v.metric for v in b.variants]
    assert [v.history for v in a.variants] == [v.history for v in b.variants]
    assert [v.history["train_loss"] for v in other.variants] != [v.history["train_loss"] for v in a.variants]


def test_token_layouts_hold_the_same_steps():
    x = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)           # [B, T, F]
    tokens = sequence.to_tokens(x, 2)                                           # [B, L, P F]
    steps = sequence.to_token_steps(x, 2)                                       # [P, B, L, F]
    assert tokens.shape == (2, 2, 9) and steps.shape == (3, 2, 2, 3)
    for k in range(3):
        for l in range(2):
            assert torch.equal(steps[k, :, l], x[:, l * 3 + k])
            assert torch.equal(tokens[:, l, k * 3:(k + 1) * 3], x[:, l * 3 + k])


@pytest.mark.parametrize("argv", [["--dataset", "mnist"], ["--epochs", "two"], ["--no-such-flag"]])
def test_bad_flag_exits_with_status_2(argv):
    with pytest.raises(SystemExit) as err:
        parse_example_args(sequence, argv)
    assert err.value.code == 2


@pytest.mark.parametrize("argv, word", [(["--tokens", "3"], "--tokens"), (["--epochs", "0"], "--epochs"),
                                        (["--variants", "gpt"], "--variants"), (["--lr", "-1"], "--lr"),
                                        (["--classes", "1"], "--classes")])
def test_bad_values_raise_before_any_work(argv, word):
    with pytest.raises(ValueError, match=word):
        sequence.run(parse_example_args(sequence, ["--quick"] + argv))


def test_shapes_dataset_gives_binary_frames_per_time_bin():
    args = parse_example_args(sequence, ["--quick", "--dataset", "shapes", "--train-per-class", "3",
                                         "--test-per-class", "2", "--classes", "9"])
    data = sequence.load_data(args)
    assert data.classes == 5 and "ring" in data.task                               # capped at the 5 shapes
    assert data.x_train.shape == (15, args.steps, 2 * 8 * 8) and data.x_test.shape == (10, args.steps, 128)
    assert set(data.x_train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(torch.bincount(data.y_train), torch.full((5,), 3))
    assert data.x_train.sum() > 10 * args.steps                                    # events in most bins
