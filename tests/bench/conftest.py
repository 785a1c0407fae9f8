"""Shared fixtures of the benchmark tests: a tiny two-tier scenario file and a bench runner."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = Path(__file__).parent / "data" / "tiny-2tier.toml"


@pytest.fixture
def tiny() -> str:
    return str(TINY)
