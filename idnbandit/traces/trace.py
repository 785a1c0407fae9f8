"""The :class:`Trace`: real or synthetic model outputs, stored as ``.npz`` + JSON (never pickled)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TraceError, UnknownNameError

__all__ = ["Trace"]

_ROW_SUM_TOL = 1e-3


@dataclass(frozen=True, eq=False)
class Trace:
    """Outputs of M models on N samples of a C-class task.

    Parameters
    ----------
    probs
        (M, N, C) float32 class probabilities; each row sums to 1.
    labels
        (N,) int64 true labels in ``[0, C)``.
    model_names
        M names, one per model (the ``trace_column`` a scenario's ``ModelSpec`` refers to).
    metadata
        JSON-serialisable facts: dataset, how the models were trained, accuracies, ...

    Raises
    ------
    TraceError
        If shapes, dtypes or values are inconsistent.
    """

    probs: np.ndarray
    labels: np.ndarray
    model_names: tuple[str, ...]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        probs = np.asarray(self.probs)
        labels = np.asarray(self.labels)
        if probs.ndim != 3:
            raise TraceError(f"probs: expected shape (M, N, C), got {probs.shape}")
        m, n, c = probs.shape
        if m < 1 or n < 1 or c < 2:
            raise TraceError(f"probs: need M >= 1 models, N >= 1 samples, C >= 2 classes; got {probs.shape}")
        if not np.issubdtype(probs.dtype, np.floating):
            raise TraceError(f"probs: dtype {probs.dtype} is not floating point")
        probs = np.ascontiguousarray(probs, dtype=np.float32)
        if not np.isfinite(probs).all():
            raise TraceError("probs: contains NaN or inf")
        if (probs < 0).any():
            raise TraceError("probs: contains negative probabilities")
        sums = probs.sum(axis=2, dtype=np.float64)
        bad = np.abs(sums - 1) > _ROW_SUM_TOL
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise TraceError(f"probs: row (model {i}, sample {j}) sums to {sums[i, j]:.6f}, not 1 (tolerance {_ROW_SUM_TOL})")
        if labels.shape != (n,):
            raise TraceError(f"labels: expected shape ({n},) to match probs, got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TraceError(f"labels: dtype {labels.dtype} is not integer")
        labels = labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= c:
            raise TraceError(f"labels: values must lie in [0, {c}); got min {labels.min()}, max {labels.max()}")
        names = tuple(str(x) for x in self.model_names)
        if len(names) != m:
            raise TraceError(f"model_names: {len(names)} names for {m} models")
        if len(set(names)) != m:
            raise TraceError(f"model_names: duplicate names in {names}")
        probs.setflags(write=False)
        labels.setflags(write=False)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "model_names", names)
        object.__setattr__(self, "metadata", dict(self.metadata))

    # ------------------------------------------------------------------ shape
    @property
    def n_models(self) -> int:
        return self.probs.shape[0]

    @property
    def n_samples(self) -> int:
        return self.probs.shape[1]

    @property
    def n_classes(self) -> int:
        return self.probs.shape[2]

    def column(self, name: str) -> int:
        """Index of model ``name`` (raises :class:`UnknownNameError` with suggestions)."""
        try:
            return self.model_names.index(name)
        except ValueError:
            raise UnknownNameError("trace column", name, self.model_names) from None

    # ------------------------------------------------------------------ derived
    def predictions(self) -> np.ndarray:
        """(M, N) int64 predicted class (argmax, lowest index on ties)."""
        return self.probs.argmax(axis=2)

    def correct(self) -> np.ndarray:
        """(M, N) bool: model m answers sample n correctly."""
        return self.predictions() == self.labels[None, :]

    def accuracies(self) -> np.ndarray:
        """(M,) float64 accuracy of each model."""
        return self.correct().mean(axis=1)

    def subset(self, models: list[str]) -> Trace:
        """A trace with only ``models`` (in that order)."""
        idx = [self.column(m) for m in models]
        return Trace(self.probs[idx], self.labels, tuple(models), self.metadata)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (``.npz``, arrays only) and ``path`` with suffix ``.json`` (names, metadata).

        Both files are written to temporary names first and renamed, so a crash never leaves a
        half-written trace under the final name.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": "idnbandit-trace", "version": 1, "model_names": list(self.model_names),
                "metadata": self.metadata}
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
            tmp_npz = f.name
            np.savez_compressed(f, probs=self.probs, labels=self.labels)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".json", delete=False) as f:
            tmp_json = f.name
            json.dump(meta, f, indent=1, sort_keys=True)
        for tmp in (tmp_npz, tmp_json):  # temporary files are created 0600; a trace is readable data
            os.chmod(tmp, 0o644)
        os.replace(tmp_json, path.with_suffix(".json"))
        os.replace(tmp_npz, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """Read a trace written by :meth:`save` (``allow_pickle=False``); check it before returning.

        Raises
        ------
        TraceError
            If a file is missing, truncated, corrupted, or holds arrays of the wrong shape or type.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta_path = path.with_suffix(".json")
        for p in (path, meta_path):
            if not p.is_file():
                raise TraceError(f"{p}: file not found (a trace is a .npz file plus a .json file beside it)")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise TraceError(f"{meta_path}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != "idnbandit-trace" or "model_names" not in meta:
            raise TraceError(f"{meta_path}: not an idnbandit trace description (needs format and model_names)")
        names, extra = meta["model_names"], meta.get("metadata", {})
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise TraceError(f"{meta_path}: model_names must be a list of strings, got {names!r}")
        if not isinstance(extra, dict):
            raise TraceError(f"{meta_path}: metadata must be a JSON object, got {type(extra).__name__}")
        try:
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise TraceError(f"{path}: not an .npz archive (found a single {type(z).__name__})")
            with z:
                missing = {"probs", "labels"} - set(z.files)
                if missing:
                    raise TraceError(f"{path}: missing array(s) {sorted(missing)}")
                probs, labels = z["probs"], z["labels"]
        except TraceError:
            raise
        except Exception as exc:  # numpy and zipfile raise many types on damaged bytes
            # (OSError, ValueError, EOFError, BadZipFile, zlib.error, tokenize.TokenError, SyntaxError, ...)
            raise TraceError(f"{path}: cannot read the arrays ({type(exc).__name__}: {exc}); the file is truncated or corrupted") from None
        try:
            return cls(probs, labels, tuple(names), extra)
        except TraceError as exc:
            raise TraceError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Trace(models={list(self.model_names)}, n_samples={self.n_samples}, n_classes={self.n_classes})"
