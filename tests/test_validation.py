"""neurosim.validation: each check's accepted and refused inputs and the message it raises."""
import math

import numpy as np
import pytest
import torch

from neurosim.validation import (as_float_tensor, check_choice, check_finite, check_index_list,
                                 check_index_range, check_int, check_number, check_positive,
                                 check_sequence, check_tensor)

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------------------- check_int
def test_check_int_accepts_ints_within_the_bounds():
    assert check_int(0, "n") == 0
    assert check_int(5, "n", minimum=1) == 5
    assert check_int(-3, "n", minimum=-3, maximum=-3) == -3
    assert check_int(2 ** 62, "seed", minimum=0, maximum=2 ** 63 - 1) == 2 ** 62
    out = check_int(np.int64(4), "n", minimum=1)
    assert out == 4 and type(out) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, 1.5, "3", None, NAN, INF, torch.tensor(3)])
def test_check_int_refuses_non_ints_and_bools(value):
    with pytest.raises(ValueError, match=r"^f: steps must be an integer >= 0, got "):
        check_int(value, "f: steps", minimum=0)


def test_check_int_bounds_and_whole_floats():
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 0$"):
        check_int(0, "n", minimum=1)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0 and <= 9, got 10$"):
        check_int(10, "n", minimum=0, maximum=9)
    with pytest.raises(ValueError, match=r"^n must be an integer, got 'a'$"):
        check_int("a", "n")
    out = check_int(3.0, "n", minimum=0, integral_float=True)
    assert out == 3 and type(out) is int
    for bad in (1.5, -1.0, NAN, INF, True):
        with pytest.raises(ValueError, match="must be an integer >= 0"):
            check_int(bad, "n", minimum=0, integral_float=True)


# ---------------------------------------------------------------------------- check_number
def test_check_number_accepts_reals_and_returns_floats():
    out = check_number(3, "x")
    assert out == 3.0 and type(out) is float
    assert check_number(-2.5, "x") == -2.5
    assert check_number(0.0, "x", nonnegative=True) == 0.0
    assert check_number(1e-300, "x", positive=True) == 1e-300
    assert check_number(np.float64(0.5), "x", positive=True, below=1.0) == 0.5
    assert check_number(np.float32(0.25), "x", positive=True) == 0.25 and check_number(np.int32(2), "x") == 2.0
    assert check_number(-INF, "w_min", finite=False) == -INF


@pytest.mark.parametrize("value", [True, False, np.bool_(False), "1", None, torch.tensor(1.0), [1.0]])
def test_check_number_refuses_non_numbers_and_bools(value):
    with pytest.raises(ValueError, match=r"^x must be a finite number, got "):
        check_number(value, "x")


def test_check_number_refuses_nan_always_and_inf_when_finite():
    for value in (NAN, INF, -INF):
        with pytest.raises(ValueError, match=r"^f: dt must be a finite time step > 0 s, got "):
            check_number(value, "f: dt", positive=True, what="time step", unit="s")
    with pytest.raises(ValueError, match=r"^w must be a weight \(or \+-inf\), got nan$"):
        check_number(NAN, "w", finite=False, what="weight (or +-inf)")


def test_check_number_bounds():
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0, got 0$"):
        check_number(0, "x", positive=True)
    with pytest.raises(ValueError, match=r"^x must be a finite number >= 0, got -1e-09$"):
        check_number(-1e-9, "x", nonnegative=True)
    with pytest.raises(ValueError, match=r"^t must be a finite number >= 0 and < 1, got 1.0$"):
        check_number(1.0, "t", nonnegative=True, below=1.0)
    with pytest.raises(ValueError, match=r"^e must be a finite energy >= 0 J, got -1.0$"):
        check_number(-1.0, "e", nonnegative=True, what="energy", unit="J")
    with pytest.raises(ValueError, match=r"^x must be an energy >= 0, got -inf$"):   # article follows the word
        check_number(-INF, "x", nonnegative=True, finite=False, what="energy")


# ---------------------------------------------------------------------------- check_choice
def test_check_choice():
    assert check_choice("sum", ("mean", "sum"), "f: reduction") == "sum"
    with pytest.raises(ValueError, match=r"^f: reduction must be one of \['mean', 'sum'\], got 'avg'$"):
        check_choice("avg", ("mean", "sum"), "f: reduction")
    with pytest.raises(ValueError, match="got None"):
        check_choice(None, ("mean", "sum"), "f: reduction")


# ---------------------------------------------------------------------------- element-wise
def test_check_positive_numbers_and_tensors():
    check_positive(1e-3, "P.tau")
    check_positive(2, "P.tau")
    check_positive(torch.tensor([0.01, 0.02]), "P.tau")
    check_positive(torch.tensor([1, 2]), "P.tau")
    check_positive(np.float32(0.01), "P.tau")
    for bad in (0.0, -1.0, NAN, INF, True, "1", torch.tensor([0.01, 0.0]), torch.tensor([NAN]),
                torch.tensor([INF]), torch.tensor([True])):
        with pytest.raises(ValueError, match=r"^P\.tau must be finite and > 0, got "):
            check_positive(bad, "P.tau")


def test_check_finite():
    x = torch.tensor([0.0, -1.0, 1e30])
    assert check_finite(x, "f: x") is x
    for bad in (NAN, INF, -INF):
        with pytest.raises(ValueError, match=r"^f: x contains NaN or infinite values$"):
            check_finite(torch.tensor([0.0, bad]), "f: x")


# ---------------------------------------------------------------------------- tensors
def test_as_float_tensor():
    x = torch.ones(2)
    assert as_float_tensor(x, "f") is x
    assert as_float_tensor(torch.tensor([1, 0]), "f").dtype == torch.get_default_dtype()
    assert as_float_tensor(torch.tensor([True]), "f").dtype == torch.get_default_dtype()
    assert torch.equal(as_float_tensor([[0, 1]], "f"), torch.tensor([[0.0, 1.0]]))
    assert as_float_tensor(np.zeros(3, dtype=np.float64), "f").dtype == torch.float64
    with pytest.raises(TypeError, match=r"^f: expected a tensor, got object$"):
        as_float_tensor(object(), "f")


def test_check_tensor():
    x = torch.zeros(2, 3)
    assert check_tensor(x, "s", min_dim=2, max_dim=2, floating=True) is x
    check_tensor(torch.zeros(2, dtype=torch.long), "s", min_dim=1)        # any dtype unless floating
    with pytest.raises(TypeError, match=r"^s must be a torch.Tensor, got list$"):
        check_tensor([1.0], "s")
    with pytest.raises(TypeError, match=r"^s must be a floating-point tensor, got dtype torch.int64$"):
        check_tensor(torch.zeros(2, dtype=torch.long), "s", floating=True)
    with pytest.raises(ValueError, match=r"^s must have 2 dimensions, got shape \(2, 3, 1\)$"):
        check_tensor(torch.zeros(2, 3, 1), "s", min_dim=2, max_dim=2)
    with pytest.raises(ValueError, match=r"^s must have >= 2 dimensions, got shape \(2,\)$"):
        check_tensor(torch.zeros(2), "s", min_dim=2)
    with pytest.raises(ValueError, match=r"^s must have 1..2 dimensions, got shape \(\)$"):
        check_tensor(torch.tensor(1.0), "s", min_dim=1, max_dim=2)


def test_check_sequence():
    x = torch.zeros(4, 2, 3)
    assert check_sequence(x, "f: spikes") is x
    assert check_sequence(x, "f: spikes", extra_dims=1) is x
    with pytest.raises(ValueError, match=r"^f: spikes must be time first \[T, B, \.\.\.\] with 3 dimensions, "
                                         r"got shape \(4, 2\)$"):
        check_sequence(torch.zeros(4, 2), "f: spikes", extra_dims=1)
    with pytest.raises(ValueError, match=r"with >= 2 dimensions, got shape \(4,\)"):
        check_sequence(torch.zeros(4), "f: spikes")
    with pytest.raises(ValueError, match=r"^f: spikes has no time steps"):
        check_sequence(torch.zeros(0, 2), "f: spikes")
    with pytest.raises(ValueError, match=r"^f: spikes has an empty batch axis"):
        check_sequence(torch.zeros(3, 0, 2), "f: spikes")
    with pytest.raises(TypeError, match="floating-point"):
        check_sequence(torch.zeros(3, 2, dtype=torch.uint8), "f: spikes")
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_sequence([[0.0]], "f: spikes")


# ---------------------------------------------------------------------------- indices
def test_check_index_list():
    out = check_index_list([2, 0, 1], "Sparse: pre")
    assert out.dtype == torch.long and out.device.type == "cpu" and out.tolist() == [2, 0, 1]
    assert check_index_list(np.array([3, 4], dtype=np.int32), "p").tolist() == [3, 4]
    assert check_index_list(torch.tensor([1.0, 2.0]), "p").tolist() == [1, 2]     # whole floats
    assert check_index_list([], "p").numel() == 0
    with pytest.raises(ValueError, match=r"^Sparse: pre must be a 1-D list of indices, got shape \(2, 1\)$"):
        check_index_list([[0], [1]], "Sparse: pre")
    for bad in ([0.5, 1.0], [True, False], [NAN], [1 + 1j]):
        with pytest.raises(TypeError, match=r"^Sparse: pre must hold integer indices, got dtype"):
            check_index_list(bad, "Sparse: pre")
    with pytest.raises(TypeError, match="1-D list of integer indices, got object"):
        check_index_list(object(), "Sparse: pre")


def test_check_index_range_names_the_first_bad_index():
    idx = torch.tensor([0, 4, 2])
    assert check_index_range(idx, 5, "Sparse: post", "neurons") is idx
    with pytest.raises(IndexError, match=r"^Sparse: post\[1\] = 5 is out of range for 5 neurons "
                                         r"\(valid: 0 \.\. 4\); 2 bad index\(es\)$"):
        check_index_range(torch.tensor([0, 5, -1]), 5, "Sparse: post", "neurons")
    with pytest.raises(IndexError, match=r"^p\[0\] = -1 is out of range for 3 elements"):
        check_index_range(torch.tensor([-1]), 3, "p")
    check_index_range(torch.tensor([], dtype=torch.long), 0, "p")          # nothing to check


def test_messages_name_where_first():
    """Every refusal starts with ``where`` (so the caller's context leads the message)."""
    calls = [lambda: check_int(-1, "HERE", minimum=0), lambda: check_number(NAN, "HERE"),
             lambda: check_choice("z", "ab", "HERE"), lambda: check_positive(0.0, "HERE"),
             lambda: check_finite(torch.tensor([NAN]), "HERE"), lambda: check_tensor(1, "HERE"),
             lambda: check_sequence(torch.zeros(1), "HERE"), lambda: check_index_list([[1]], "HERE"),
             lambda: check_index_range(torch.tensor([9]), 1, "HERE")]
    for call in calls:
        with pytest.raises((ValueError, TypeError, IndexError)) as info:
            call()
        assert str(info.value).startswith("HERE"), str(info.value)
    assert math.isinf(check_number(INF, "x", finite=False))
