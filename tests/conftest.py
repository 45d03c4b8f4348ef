"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tests use small tensors: intra-op threads only add overhead on a shared 2-core machine.  Restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
