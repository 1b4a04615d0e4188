"""Argument checks shared by the whole engine: each raises before any work starts, naming where.

Every function takes ``where``, the name of what is checked as the user sees it (e.g.
``"poisson_encode: dt"``, ``"LIFParams.refractory_steps"``), and puts it at the start of the
message together with the value it got. Numbers (Python or NumPy scalars) and integers that are
out of range or of the wrong kind raise ``ValueError`` (a bool is never a number here); tensors
of the wrong kind raise ``TypeError``; indices out of range raise ``IndexError``. The checks
return the value (converted where stated) so a call can sit in an assignment.

=========================  =====================================================================
:func:`check_int`          an integer (not a bool) within ``[minimum, maximum]``
:func:`check_number`       a real number, finite by default, optionally > 0 / >= 0 / < a bound
:func:`check_choice`       one of a fixed set of values (modes, reductions, methods)
:func:`check_positive`     every element of a number or tensor finite and > 0 (model parameters)
:func:`check_finite`       no NaN or infinite element in a tensor
:func:`as_float_tensor`    a tensor (array-likes converted), integer dtypes cast to float
:func:`check_tensor`       a tensor with a number of dimensions (and a floating dtype)
:func:`check_sequence`     a time-first sequence ``[T, B, ...]`` with T > 0 and B > 0
:func:`check_index_list`   a 1-D list of integer indices, returned as a CPU ``int64`` tensor
:func:`check_index_range`  indices in ``[0, n)``, naming the first bad one
=========================  =====================================================================

Example::

    >>> steps = check_int(steps, "poisson_encode: steps", minimum=1)
    >>> dt = check_number(dt, "poisson_encode: dt", positive=True, unit="s")
    >>> check_choice(reduction, ("mean", "sum", "none"), "spike_count_mse: reduction")
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional

import numpy as np
import torch

__all__ = ["check_int", "check_number", "check_choice", "check_positive", "check_finite",
           "as_float_tensor", "check_tensor", "check_sequence", "check_index_list", "check_index_range",
           "check_time_first_inputs", "positive_int_argument", "is_plain_number"]


def _is_real(value) -> bool:
    """A real scalar: int, float or a NumPy scalar of either kind; never a bool or a tensor."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_plain_number(value) -> bool:
    """A Python int or float (a float subclass such as ``np.float64`` included); never a bool, a
    tensor or another NumPy scalar: what torch takes as a Python scalar operand unchanged."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---------------------------------------------------------------------------- Python scalars
def check_int(value, where: str, minimum: Optional[int] = None, maximum: Optional[int] = None, *,
              integral_float: bool = False) -> int:
    """``value`` must be an integer (``int`` or a NumPy integer) with ``minimum <= value <= maximum``
    (bounds optional); returned as an ``int``.

    Bools are refused (``True`` is not a count). With ``integral_float`` a float holding a whole
    number (``3.0``) is accepted and returned as ``3``; ``1.5``, NaN and inf never are.

    Raises ``ValueError``: ``"{where} must be an integer >= {minimum}, got {value!r}"``.

    Example::

        >>> check_int(3, "steps", minimum=1)
        3
    """
    whole_float = (integral_float and _is_real(value) and not _is_integer(value) and math.isfinite(value)
                   and value == int(value))
    ok = _is_integer(value) or whole_float
    if ok and ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        ok = False
    if not ok:
        bounds = [f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else ""]
        bound = " and ".join(b for b in bounds if b)
        raise ValueError(f"{where} must be an integer{' ' + bound if bound else ''}, got {value!r}")
    return int(value)


def check_number(value, where: str, *, positive: bool = False, nonnegative: bool = False,
                 below: Optional[float] = None, finite: bool = True, what: str = "number",
                 unit: Optional[str] = None) -> float:
    """``value`` must be a real number (``int``, ``float``, a NumPy scalar; not a bool; never NaN) and

    * finite unless ``finite=False`` (then +-inf pass);
    * ``> 0`` with ``positive``, ``>= 0`` with ``nonnegative``;
    * ``< below`` when ``below`` is given.

    ``what`` names the kind of quantity and ``unit`` its unit, for the message only, e.g.
    ``check_number(r, "max_rate", nonnegative=True, what="rate", unit="Hz")`` raises
    ``"max_rate must be a finite rate >= 0 Hz, got -1.0"``. Returns ``float(value)``.

    Raises ``ValueError``.

    Example::

        >>> check_number(1e-3, "dt", positive=True, unit="s")
        0.001
    """
    bounds = [b for b, on in (("> 0", positive), (">= 0", nonnegative and not positive),
                              (f"< {below:g}" if below is not None else "", below is not None)) if on]
    ok = _is_real(value) and not math.isnan(value) and (not finite or math.isfinite(value))
    if ok:
        ok = not ((positive and value <= 0) or (nonnegative and value < 0) or (below is not None and value >= below))
    if not ok:
        bound = " and ".join(bounds)
        text = f"{'finite ' if finite else ''}{what}{' ' + bound if bound else ''}{' ' + unit if unit else ''}"
        article = "an" if text[0] in "aeiou" else "a"
        raise ValueError(f"{where} must be {article} {text}, got {value!r}")
    return float(value)


def check_choice(value, choices: Iterable, where: str):
    """``value`` must be one of ``choices``; returns it.

    Raises ``ValueError``: ``"{where} must be one of ['a', 'b'], got 'c'"``.

    Example::

        >>> check_choice("exact", ("exact", "euler"), "LIFParams.integration")
        'exact'
    """
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{where} must be one of {choices}, got {value!r}")
    return value


# ---------------------------------------------------------------------------- element-wise
def check_positive(value, where: str) -> None:
    """Every element of ``value`` (a number or a tensor) must be finite and > 0.

    For model parameters that may be a float or a per-neuron tensor (time constants,
    capacitances). Raises ``ValueError``: ``"{where} must be finite and > 0, got {value!r}"``.

    Example::

        >>> check_positive(torch.tensor([0.01, 0.02]), "LIFParams.tau_mem")
    """
    if isinstance(value, torch.Tensor):
        v = value.detach()
        ok = v.dtype != torch.bool and not v.is_complex() and bool((torch.isfinite(v) & (v > 0)).all())
    else:
        ok = _is_real(value) and math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{where} must be finite and > 0, got {value!r}")


def check_finite(x: torch.Tensor, where: str) -> torch.Tensor:
    """No element of the tensor ``x`` may be NaN or +-inf; returns ``x``.

    Raises ``ValueError``: ``"{where} contains NaN or infinite values"``.

    Example::

        >>> check_finite(torch.tensor([0.0, 1.0]), "poisson_encode: x")
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where} contains NaN or infinite values")
    return x


# ---------------------------------------------------------------------------- tensors
def as_float_tensor(x, where: str) -> torch.Tensor:
    """``x`` as a floating-point tensor: a tensor is kept (integer and bool dtypes are cast to
    the default float dtype), anything else goes through ``torch.as_tensor`` first.

    Raises ``TypeError``: ``"{where}: expected a tensor, got {type}"`` when ``x`` cannot be
    converted.

    Example::

        >>> as_float_tensor([[0, 1]], "spike_count: spikes").dtype
        torch.float32
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception:
            raise TypeError(f"{where}: expected a tensor, got {type(x).__name__}") from None
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x


def _dims_text(min_dim: int, max_dim: Optional[int]) -> str:
    if max_dim == min_dim:
        return f"{min_dim}"
    return f">= {min_dim}" if max_dim is None else f"{min_dim}..{max_dim}"


def check_tensor(x, where: str, *, min_dim: int = 0, max_dim: Optional[int] = None,
                 floating: bool = False) -> torch.Tensor:
    """``x`` must be a ``torch.Tensor`` with ``min_dim <= x.dim() <= max_dim`` and, with
    ``floating``, a floating-point dtype; returns ``x``.

    Raises ``TypeError`` (``"{where} must be a torch.Tensor, got list"``, ``"{where} must be a
    floating-point tensor, got dtype torch.int64"``) or ``ValueError`` (``"{where} must have 3
    dimensions, got shape (2, 4)"``).

    Example::

        >>> check_tensor(torch.zeros(2, 3), "scores", min_dim=2, max_dim=2, floating=True)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{where} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        raise ValueError(f"{where} must have {_dims_text(min_dim, max_dim)} dimensions, got shape {tuple(x.shape)}")
    return x


def check_sequence(x, where: str, extra_dims: Optional[int] = None) -> torch.Tensor:
    """A time-first floating-point sequence ``[T, B, ...]`` with at least one step and sample.

    ``extra_dims`` fixes the number of axes after ``[T, B]`` (``x.dim() == 2 + extra_dims``);
    None allows any (``x.dim() >= 2``). Returns ``x``.

    Raises ``TypeError`` as :func:`check_tensor` or ``ValueError``: ``"{where} must be time first
    [T, B, ...] with 3 dimensions, got shape (4, 2)"``, ``"{where} has no time steps"``,
    ``"{where} has an empty batch axis"``.

    Example::

        >>> check_sequence(torch.zeros(100, 8, 10), "spike_counts: spikes")
    """
    min_dim = 2 if extra_dims is None else 2 + extra_dims
    max_dim = None if extra_dims is None else min_dim
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{where} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        raise ValueError(f"{where} must be time first [T, B, ...] with {_dims_text(min_dim, max_dim)} "
                         f"dimensions, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{where} has no time steps (shape {tuple(x.shape)}; expected [T, B, ...])")
    if x.shape[1] == 0:
        raise ValueError(f"{where} has an empty batch axis (shape {tuple(x.shape)}; expected [T, B, ...])")
    return x


# ---------------------------------------------------------------------------- indices
def check_index_list(values, where: str) -> torch.Tensor:
    """A 1-D list of integer indices (a list, array or tensor; floats holding whole numbers are
    accepted), returned as a detached CPU ``int64`` tensor. Range: see :func:`check_index_range`.

    Raises ``ValueError`` (``"{where} must be a 1-D list of indices, got shape (2, 2)"``) or
    ``TypeError`` (``"{where} must hold integer indices, got dtype torch.bool"``).

    Example::

        >>> check_index_list([0, 2, 1], "Sparse: pre")
        tensor([0, 2, 1])
    """
    try:
        t = torch.as_tensor(values)
    except Exception:
        raise TypeError(f"{where} must be a 1-D list of integer indices, got {type(values).__name__}") from None
    if t.dim() != 1:
        raise ValueError(f"{where} must be a 1-D list of indices, got shape {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_complex() or (
            t.is_floating_point() and not bool((torch.isfinite(t) & (t == t.round())).all())):
        raise TypeError(f"{where} must hold integer indices, got dtype {t.dtype}")
    return t.detach().to(torch.long).cpu()


def check_index_range(index: torch.Tensor, n: int, where: str, what: str = "elements") -> torch.Tensor:
    """Every element of the 1-D integer tensor ``index`` must lie in ``[0, n)``; returns ``index``.

    ``what`` names the things indexed, for the message. Raises ``IndexError`` naming the first bad
    position and the number of bad ones: ``check_index_range(t, 5, "Sparse: post", "neurons")``
    gives ``"Sparse: post[3] = 7 is out of range for 5 neurons (valid: 0 .. 4); 1 bad index(es)"``.

    Example::

        >>> check_index_range(torch.tensor([0, 4]), 5, "Sparse: post", "neurons")
    """
    bad = (index < 0) | (index >= n)
    if bool(bad.any()):
        k = int(bad.nonzero()[0, 0])
        raise IndexError(f"{where}[{k}] = {int(index[k])} is out of range for {n} {what} "
                         f"(valid: 0 .. {n - 1}); {int(bad.sum())} bad index(es)")
    return index


def check_time_first_inputs(inputs, shapes, where: str = ""):
    """Inputs of a network with named input ports ``shapes`` (name -> per-sample shape).

    ``inputs``: one tensor (when there is one input port) or a dict name -> tensor, each
    ``[T, batch, *shape]`` (time first, T >= 1), all with the same ``[T, batch]``. Returns
    ``(dict name -> tensor, T, batch)``. Raises ``TypeError``/``ValueError`` naming the input and
    the shape expected; ``where`` (e.g. ``"run_brian2"``) prefixes every message.

    Example::

        >>> xs, steps, batch = check_time_first_inputs(torch.zeros(10, 2, 3), {"x": (3,)})
    """
    pre = f"{where}: " if where else ""
    names = list(shapes)
    if isinstance(inputs, torch.Tensor):
        if len(names) != 1:
            raise ValueError(f"{pre}the graph has inputs {names}; pass a dict name -> [T, batch, ...] tensor")
        inputs = {names[0]: inputs}
    if not isinstance(inputs, dict):
        raise TypeError(f"{pre}inputs must be a tensor or a dict of tensors, got {type(inputs).__name__}")
    missing, unknown = set(names) - set(inputs), set(inputs) - set(names)
    if missing or unknown:
        raise ValueError(f"{pre}inputs: missing {sorted(missing)}, unknown {sorted(unknown)} (graph inputs: {names})")
    sizes = set()
    for name, x in inputs.items():
        want = tuple(shapes[name])
        if not isinstance(x, torch.Tensor) or x.dim() != len(want) + 2 or tuple(x.shape[2:]) != want:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{pre}input {name!r}: expected a [T, batch, {', '.join(map(str, want))}] "
                             f"tensor (time first), got {got}")
        if x.shape[0] == 0:
            raise ValueError(f"{pre}input {name!r} has no time steps (T = 0)")
        sizes.add(tuple(x.shape[:2]))
    if len(sizes) != 1:
        raise ValueError(f"{pre}all inputs need the same [T, batch]; got {sorted(sizes)}")
    steps, batch = sizes.pop()
    return dict(inputs), steps, batch


def positive_int_argument(text: str) -> int:
    """argparse type: an integer > 0 (a bad value makes argparse exit with status 2 naming the option)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be an integer > 0, got {text!r}")
    return value
