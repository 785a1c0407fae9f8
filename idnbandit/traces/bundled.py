"""The real traces shipped with idnbandit (package data under ``idnbandit/traces/data``).

They were built by :mod:`idnbandit.traces.build`; ``docs/traces.md`` lists each model's accuracy
and calibration error.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..errors import UnknownNameError
from .trace import Trace

__all__ = ["builtin_trace_names", "load_builtin_trace", "DATA_DIR"]

#: folder holding the bundled ``<name>.npz`` + ``<name>.json`` pairs
DATA_DIR = Path(__file__).resolve().parent / "data"


def builtin_trace_names() -> list[str]:
    """Sorted names of the bundled traces (each a ``.npz`` with its ``.json`` beside it).

    Examples
    --------
    >>> builtin_trace_names()
    ['digits', 'ensemble-hetero', 'segment']
    """
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.stem for p in DATA_DIR.glob("*.npz") if p.with_suffix(".json").is_file())


@cache
def _load(name: str) -> Trace:
    return Trace.load(DATA_DIR / f"{name}.npz")


def load_builtin_trace(name: str) -> Trace:
    """Load the bundled trace ``name`` (cached: repeated calls return the same read-only object).

    Parameters
    ----------
    name
        One of :func:`builtin_trace_names`.

    Returns
    -------
    Trace
        The trace; its metadata describes the dataset, each model and how it was trained.

    Raises
    ------
    UnknownNameError
        If ``name`` is not a bundled trace (the message suggests close names).
    TraceError
        If the bundled file is damaged.

    Examples
    --------
    >>> load_builtin_trace("digits").model_names
    ('logreg-4x4', 'mlp-16', 'cnn-small', 'cnn-wide')
    """
    names = builtin_trace_names()
    if name not in names:
        raise UnknownNameError("builtin trace", str(name), names)
    return _load(name)
