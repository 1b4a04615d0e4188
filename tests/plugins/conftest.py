"""Shared by the plug-in tests. ``adam_losses``: a few Adam steps on a loss, returning the
losses. ``steps_like_its_module``: checks that a stateful block in a Simulator runs exactly as
the module stepped by hand, continues from a carried state, and keeps state between steps. Every module runs with ``one_thread`` (tests/conftest.py), set before the module's own
fixtures, so trained-model fixtures run with it too. The families run
many tiny ops per step, and on a shared 2-core CPU two threads spin and wait on each of them
(measured 3-10x slower)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread_per_module(one_thread):
    """Every plug-in test module runs on one thread (``one_thread`` of ``tests/conftest.py``)."""
    yield


def _adam_losses(loss_fn, params, steps=25, lr=1e-2):
    """``steps`` Adam steps on ``loss_fn()`` over ``params``; the loss before each step."""
    optimizer = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def adam_losses():
    return _adam_losses


def _steps_like_its_module(sim, model, x, split):
    """``sim`` (one stateful block wrapping ``model``) on ``x [T, batch, ...]`` equals calling
    ``model(x[t], state, 1e-3)`` step by step, bitwise; two runs split at ``split`` with the
    carried state equal one run; and a constant input gives changing outputs (state carries over)."""
    whole = sim.run(x).output
    state, manual = None, []
    for t in range(x.shape[0]):
        y, state = model(x[t], state, 1e-3)
        manual.append(y)
    torch.testing.assert_close(whole, torch.stack(manual), rtol=0, atol=0)
    first = sim.run(x[:split])
    rest = sim.run(x[split:], state=first.state).output
    torch.testing.assert_close(torch.cat([first.output, rest]), whole, rtol=0, atol=0)
    constant = sim.run(x[:1].expand(x.shape[0], *x.shape[1:])).output
    assert not torch.equal(constant[0], constant[1])    # membranes carry over: a constant input, changing outputs


@pytest.fixture
def steps_like_its_module():
    return _steps_like_its_module
