"""Fixtures for the training and comparison tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread (restored after each test): small forwards on a shared 2-core
    machine run far slower when OpenMP threads spin against other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
