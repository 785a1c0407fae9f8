"""Federated-training tests: one torch thread (when torch is installed), so the same seed gives
bit-identical weights. Files that need torch skip themselves without it (``pytest.importorskip``)."""

from __future__ import annotations

import pytest

try:
    import torch
except ImportError:  # pragma: no cover - the numpy-only tests still run
    torch = None


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded torch during each test."""
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
