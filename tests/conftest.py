"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str):
    """A fresh import of a repository script outside the package (``benchmarks/*.py``, ``examples/*.py``),
    registered in ``sys.modules`` as ``script_<stem>`` (dataclasses look their module up there)."""
    path = ROOT / relpath
    name = f"script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def script_module():
    """:func:`load_script`, as a fixture: ``script_module("benchmarks/cascade_rl.py")``."""
    return load_script


@pytest.fixture(scope="session", autouse=True)
def _sb3_logs_in_tmp(tmp_path_factory):
    """Stable-Baselines3 creates a log folder per model (``$SB3_LOGDIR``, else ``/tmp/SB3-<time>``),
    even with logging off: keep those under pytest's temporary directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))
        yield
