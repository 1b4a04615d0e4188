"""Fixtures shared by the whole suite.

``one_thread``: one intra-op torch thread for a test module, restored after it. Modules that run
many tiny ops per step use it (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a
shared 2-core CPU two threads spin and wait on each op (measured 3-10x slower)."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
