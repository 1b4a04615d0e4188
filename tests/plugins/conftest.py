"""Shared by the plug-in tests. ``adam_losses``: a few Adam steps on a loss, returning the
losses. Every module runs with ``one_thread`` (tests/conftest.py), set before the module's own
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
