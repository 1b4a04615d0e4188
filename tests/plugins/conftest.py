"""Shared by the plug-in tests: one intra-op thread per test module (restored after it; set before
the module's own fixtures, so trained-model fixtures run with it too). The families run
many tiny ops per step, and on a shared 2-core CPU two threads spin and wait on each of them
(measured 3-10x slower)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
