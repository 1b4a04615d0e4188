"""The integer Loihi CUBA neuron and LoihiDense: hand-computed sequences, edge decays, 24-bit
limits, refractory steps, integer dtypes, delays and range errors."""
import pytest
import torch

import neurosim as ns
from neurosim.hardware.loihi import LoihiCubaParams, LoihiDense, loihi_cuba_initial_state, loihi_cuba_step
from neurosim.hardware.loihi.fixed_point import UV_LIMIT


def run(params, inputs, state=None):
    """Step the neuron over ``inputs`` (a list of per-step int lists); returns (spikes, us, vs)."""
    n = len(inputs[0])
    state = state or loihi_cuba_initial_state(params, (n,), 1)
    spikes, us, vs = [], [], []
    for x in inputs:
        s, state = loihi_cuba_step(torch.tensor([x], dtype=torch.int64), state, params)
        spikes.append(s[0].tolist()), us.append(state.u[0].tolist()), vs.append(state.v[0].tolist())
    return spikes, us, vs


def test_constant_input_voltage_sequence_by_hand():
    # u = x (i_decay 4096); v = trunc(v * 3072 / 4096) + 1000; threshold 40 << 6 = 2560
    spikes, us, vs = run(LoihiCubaParams(i_decay=4096, v_decay=1024, v_th_mant=40), [[1000]] * 8)
    assert us == [[1000]] * 8
    assert vs == [[1000], [1750], [2312], [0], [1000], [1750], [2312], [0]]
    assert spikes == [[0.0], [0.0], [0.0], [1.0], [0.0], [0.0], [0.0], [1.0]]


def test_current_decay_truncates_toward_zero_for_both_signs():
    # one pulse of +-1000 at t = 0, i_decay 1024 (u * 3072 / 4096); v_decay 4096 makes v = u
    p = LoihiCubaParams(i_decay=1024, v_decay=4096, v_th_mant=2 ** 17 - 1)
    _, us, vs = run(p, [[1000, -1000]] + [[0, 0]] * 4)
    assert us == [[1000, -1000], [750, -750], [562, -562], [421, -421], [315, -315]]
    assert vs == us


def test_edge_decays_zero_and_4096():
    # i_decay 0: u keeps everything; v_decay 0: v integrates u; i/v_decay 4096: forget at once
    p = LoihiCubaParams(i_decay=0, v_decay=0, v_th_mant=2 ** 17 - 1)
    _, us, vs = run(p, [[7]] * 4)
    assert us == [[7], [14], [21], [28]] and vs == [[7], [21], [42], [70]]
    p = LoihiCubaParams(i_decay=4096, v_decay=4096, v_th_mant=2 ** 17 - 1)
    _, us, vs = run(p, [[7], [0], [5]])
    assert us == vs == [[7], [0], [5]]


def test_bias_is_mantissa_shifted_by_exponent_and_acts_on_the_voltage():
    p = LoihiCubaParams(i_decay=4096, v_decay=0, v_th_mant=2, bias_mant=5, bias_exp=3)   # 40 / step, threshold 128
    spikes, us, vs = run(p, [[0]] * 4)
    assert us == [[0]] * 4 and vs == [[40], [80], [120], [0]] and spikes[3] == [1.0]


def test_voltage_saturates_and_current_wraps_at_24_bits():
    big = UV_LIMIT - 10
    p = LoihiCubaParams(i_decay=4096, v_decay=0, v_th_mant=2 ** 17 - 1)
    spikes, us, vs = run(p, [[0, -big]] * 2 + [[UV_LIMIT - 1, 0]])
    assert vs == [[0, -big], [0, -(UV_LIMIT - 1)], [0, -(UV_LIMIT - 1)]]
    # an input of 2^23 - 1 spikes (positive voltages above 2^23 - 64, the largest threshold, always do)
    assert spikes == [[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
    # current kept (i_decay 0): 2^23 - 10 + 20 wraps to -2^23 + 10; -2^23 + 10 - 10 = -2^23 wraps to
    # +2^23; 2^23 - 1 + 1 = 2^23 is kept (Lava wraps above 2^23 and at or below -2^23)
    p = LoihiCubaParams(i_decay=0, v_decay=4096, v_th_mant=2 ** 17 - 1)
    _, us, _ = run(p, [[big, -big, UV_LIMIT - 1]] + [[20, -10, 1]])
    assert us[1] == [-UV_LIMIT + 10, UV_LIMIT, UV_LIMIT]       # Lava keeps exactly +2^23, wraps -2^23


def test_refractory_delay_freezes_voltage_and_blocks_spikes():
    p = LoihiCubaParams(i_decay=4096, v_decay=0, v_th_mant=1, refractory_delay=2)   # any input > 64 spikes
    spikes, us, vs = run(p, [[100]] * 7)
    assert [s[0] for s in spikes] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert vs == [[0]] * 7 and us == [[100]] * 7


def test_dtypes_integer_state_float_spikes_and_integer_input_checked():
    p = LoihiCubaParams(v_th_mant=1)
    state = loihi_cuba_initial_state(p, (3,), 2)
    assert all(t.dtype == torch.int32 for t in state)
    s, new = loihi_cuba_step(torch.full((2, 3), 100.0), state, p)
    assert s.dtype == torch.get_default_dtype() and torch.equal(s, torch.ones(2, 3))
    assert all(t.dtype == torch.int32 for t in new)
    with pytest.raises(ValueError, match="must hold integers"):
        loihi_cuba_step(torch.full((2, 3), 0.5), state, p)


@pytest.mark.parametrize("kwargs, match", [
    (dict(i_decay=4097), r"LoihiCubaParams.i_decay must lie in \[0, 4096\], got 4097"),
    (dict(v_decay=-1), r"LoihiCubaParams.v_decay must lie in \[0, 4096\]"),
    (dict(v_th_mant=2 ** 17), r"LoihiCubaParams.v_th_mant must lie in \[0, 131071\]"),
    (dict(bias_exp=8), r"LoihiCubaParams.bias_exp"),
    (dict(v_decay=1.5), r"LoihiCubaParams.v_decay must be an int"),
    (dict(v_decay=torch.tensor([1.0, 2.5])), r"LoihiCubaParams.v_decay must hold whole numbers"),
    (dict(graded_spike=True), r"graded_spike must be False"),
])
def test_parameter_ranges(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LoihiCubaParams(**kwargs)


@pytest.mark.parametrize("args, match", [
    ((torch.tensor([[128]]),), r"LoihiDense.weight_mant must lie in \[-128, 127\], got values in \[128, 128\]"),
    ((torch.tensor([[0.5]]),), r"LoihiDense.weight_mant must hold whole numbers"),
    ((torch.tensor([[1]]), 8), r"LoihiDense.weight_exp must lie in \[0, 7\], got 8"),
    ((torch.tensor([[1]]), 0, 63), r"LoihiDense.delay must lie in \[0, 62\], got 63"),
    ((torch.ones(2, 3, dtype=torch.int8), 0, torch.tensor([1, 2, 3])), r"LoihiDense.delay must be an int or a tensor \[out\] = \[2\]"),
    ((torch.ones(3, dtype=torch.int8),), r"LoihiDense.weight_mant must be a \[out, in\] tensor"),
    ((torch.ones(2, 3, dtype=torch.int8), 0, 0, 2), r"LoihiDense.latency must be 0 or 1"),
])
def test_dense_ranges(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LoihiDense(*args)


@pytest.mark.parametrize("latency", [1, 0])
def test_dense_output_is_the_exact_integer_sum_with_per_output_delays(latency):
    torch.manual_seed(0)
    m = torch.randint(-128, 128, (4, 6), dtype=torch.int8)
    fc = LoihiDense(m, weight_exp=3, delay=torch.tensor([0, 1, 3, 0]), latency=latency)
    assert fc.delays().tolist() == [0, 1, 3, 0] and fc.max_delay == 3 and fc.latency == latency
    x = (torch.rand(6, 2, 6) < 0.5).float()
    out, state = fc.step_sequence(x, fc.initial_state(2), 0.0)
    undelayed = torch.einsum("tbi,ji->tbj", x.long(), m.long() << (3 + 6))
    assert out.dtype == torch.int64 and state.buffer.dtype == torch.int64
    for j, d in enumerate([0, 1, 3, 0]):
        d += latency                      # the sum for neuron j arrives latency + delay_j steps late
        want = torch.cat([torch.zeros(d, 2, dtype=torch.long), undelayed[:6 - d, :, j]])
        assert torch.equal(out[:, :, j], want)
    stepped, state = [], fc.initial_state(2)
    for t in range(6):
        y, state = fc.step(x[t], state, 0.0)
        stepped.append(y)
    assert torch.equal(torch.stack(stepped), out)


def test_population_in_the_simulator_equals_stepping_the_model_by_hand():
    torch.manual_seed(1)
    p = LoihiCubaParams(i_decay=1000, v_decay=300, v_th_mant=300, refractory_delay=1)
    m = torch.randint(-60, 128, (5, 8), dtype=torch.int8)
    rec = LoihiDense(torch.randint(-128, 128, (5, 5), dtype=torch.int8), weight_exp=1, latency=0)
    g = ns.Graph.sequential(8, ("fc", LoihiDense(m, weight_exp=2)), ("pop", ns.Population("loihi_cuba", 5, p)))
    g.add("rec", rec).connect("pop", "rec", back=True).connect("rec", "pop")
    x = (torch.rand(40, 3, 8) < 0.3).float()
    outs = {s: ns.Simulator(g, dt=1e-3, schedule=s).run(x).output for s in ("step", "layer")}
    state, prev, spikes = loihi_cuba_initial_state(p, (5,), 3), torch.zeros(3, 5), []
    for t in range(40):  # the input arrives one step late (latency 1); the back-edge is the loop's step
        late = x[t - 1].long() if t > 0 else torch.zeros(3, 8, dtype=torch.long)
        drive = (late @ (m.long() << 8).t()) + (prev.long() @ (rec.weight_int() << 6).t())
        prev, state = loihi_cuba_step(drive, state, p)
        spikes.append(prev)
    assert torch.equal(outs["step"], torch.stack(spikes)) and torch.equal(outs["layer"], outs["step"])
    assert 0 < int(outs["step"].sum()) < outs["step"].numel()


def test_per_neuron_integer_parameters_in_a_population():
    # Population keeps tensor parameters as float buffers; the step reads them back as int64
    p = LoihiCubaParams(i_decay=4096, v_decay=0, v_th_mant=torch.tensor([1, 2, 3]))
    pop = ns.Population("loihi_cuba", 3, p)
    state, spikes = pop.initial_state(1), []
    for _ in range(3):
        s, state = pop.step(torch.full((1, 3), 70, dtype=torch.int64), state, 1e-3)
        spikes.append(s[0].tolist())
    # thresholds 64, 128, 192: v = 70, 140, 210 before the first spike of each neuron
    assert spikes == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
