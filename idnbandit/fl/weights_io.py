"""Save and load trained weights as ``.npz`` (named numpy arrays; never pickled)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ConfigError, TraceError

__all__ = ["save_weights", "load_weights"]

_SEP = "/"


def save_weights(path: str | os.PathLike, models: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write ``{model name: {parameter name: array}}`` to one ``.npz`` file atomically.

    Array keys are ``"<model>/<parameter>"``; model names must not contain ``/``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.npz"
    >>> _ = save_weights(p, {"edge": {"0.weight": np.ones((2, 2), np.float32)}})
    >>> load_weights(p)["edge"]["0.weight"].sum()
    np.float32(4.0)
    """
    path = Path(path)
    flat = {}
    for name, state in models.items():
        if _SEP in name or not name:
            raise ConfigError(f"models: name {name!r} is not allowed; it must be non-empty without '/'")
        for k, v in state.items():
            flat[f"{name}{_SEP}{k}"] = np.asarray(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .._io import atomic_open

    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **flat)
    return path


def load_weights(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_weights` (``allow_pickle=False``).

    Raises
    ------
    TraceError
        If the file is missing or not a weights archive.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: file not found (weights are an .npz file written by save_weights)")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                name, _, param = key.partition(_SEP)
                if not param:
                    raise TraceError(f"{path}: array {key!r} is not named '<model>/<parameter>'")
                out.setdefault(name, {})[param] = z[key]
    except TraceError:
        raise
    except Exception as exc:  # zipfile / numpy raise many types on damaged bytes
        raise TraceError(f"{path}: cannot read the weights ({type(exc).__name__}: {exc})") from None
    return out
