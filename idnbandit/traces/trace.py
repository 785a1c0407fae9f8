"""The :class:`Trace`: real or synthetic model outputs, stored as ``.npz`` + JSON (never pickled)."""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TraceError, UnknownNameError
from .limits import (
    MAX_NPZ_EXPANSION,
    MAX_TRACE_JSON_BYTES,
    MAX_TRACE_JSON_DEPTH,
    MAX_TRACE_MODELS,
    check_trace_size,
)

__all__ = ["Trace"]

_ROW_SUM_TOL = 1e-3
_MAX_NPY_HEADER = 10_000  # bytes of an .npy header (numpy's own default limit)
_READ_PIECE = 1 << 24  # bytes decompressed at a time


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
        if not _json_depth_ok(self.metadata, MAX_TRACE_JSON_DEPTH - 1):  # never write what load refuses
            raise TraceError(f"metadata: nested more than {MAX_TRACE_JSON_DEPTH - 1} levels deep; a trace "
                             f"description may nest at most {MAX_TRACE_JSON_DEPTH} levels")
        meta = {"format": "idnbandit-trace", "version": 1, "model_names": list(self.model_names),
                "shape": list(self.probs.shape), "metadata": self.metadata}  # shape: declared sizes, checked at load
        from .._io import atomic_open

        with atomic_open(path.with_suffix(".json"), "w") as fj:  # both written, then renamed one after the other
            json.dump(meta, fj, indent=1, sort_keys=True)
            with atomic_open(path, "wb") as f:
                np.savez_compressed(f, probs=self.probs, labels=self.labels)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """Read a trace written by :meth:`save`; check it before returning.

        Nothing is allocated beyond what the files declare: the ``.json`` description is read only
        if it is at most 16 MiB and nested at most 64 deep; each ``.npy`` member's header (shape,
        dtype) is read first and must match the description (M model names), the other array (N)
        and the member's size in the zip directory, which may not exceed ~1,100 times its
        compressed size (deflate's limit) nor 2 GiB of probabilities in all; then exactly that
        many bytes are decompressed. Never unpickles (object arrays are refused).

        Raises
        ------
        TraceError
            If a file is missing, truncated, corrupted, too large, or holds arrays of the wrong
            shape or type.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta_path = path.with_suffix(".json")
        for p in (path, meta_path):
            if not p.is_file():
                raise TraceError(f"{p}: file not found (a trace is a .npz file plus a .json file beside it)")
        names, extra, declared = _read_description(meta_path)
        probs, labels = _read_arrays(path, len(names), declared)
        try:
            return cls(probs, labels, tuple(names), extra)
        except TraceError as exc:
            raise TraceError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Trace(models={list(self.model_names)}, n_samples={self.n_samples}, n_classes={self.n_classes})"


# ----------------------------------------------------------------------------------- reading safely
def _json_depth_ok(obj, limit: int) -> bool:
    """True if ``obj`` nests lists/dicts at most ``limit`` deep (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            o = list(o.values())
        elif not isinstance(o, list):
            continue
        if d > limit:
            return False
        stack.extend((v, d + 1) for v in o if isinstance(v, (dict, list)))
    return True


def _declared_shape(meta: dict, extra: dict, meta_path: Path) -> tuple[int | None, int | None]:
    """(N, C) the description declares: its ``shape`` [M, N, C] (written by :meth:`Trace.save`), else
    ``metadata.n_samples`` / ``metadata.n_classes`` (the bundled and synthetic traces); None if absent."""
    shape = meta.get("shape")
    if shape is not None:
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape)):
            raise TraceError(f"{meta_path}: shape: {str(shape)[:200]} is not allowed; it must be [M, N, C], three "
                             "non-negative integers")
        return shape[1], shape[2]
    out = []
    for key in ("n_samples", "n_classes"):
        v = extra.get(key)
        out.append(v if isinstance(v, int) and not isinstance(v, bool) else None)
    return out[0], out[1]


def _read_description(meta_path: Path) -> tuple[list[str], dict, tuple[int | None, int | None]]:
    """(model_names, metadata, declared (N, C)) of a trace's ``.json``, size- and depth-capped before and
    after parsing."""
    try:
        size = meta_path.stat().st_size
        if size > MAX_TRACE_JSON_BYTES:
            raise TraceError(f"{meta_path}: {size:,} bytes; a trace description may hold at most "
                             f"{MAX_TRACE_JSON_BYTES:,} bytes")
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except TraceError:
        raise
    except RecursionError:
        raise TraceError(f"{meta_path}: not allowed: JSON nested deeper than the parser allows; a trace "
                         f"description may nest at most {MAX_TRACE_JSON_DEPTH} levels") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TraceError(f"{meta_path}: not valid JSON ({exc})") from None
    if not _json_depth_ok(meta, MAX_TRACE_JSON_DEPTH):
        raise TraceError(f"{meta_path}: not allowed: JSON nested more than {MAX_TRACE_JSON_DEPTH} levels deep; "
                         f"a trace description may nest at most {MAX_TRACE_JSON_DEPTH} levels")
    if not isinstance(meta, dict) or meta.get("format") != "idnbandit-trace" or "model_names" not in meta:
        raise TraceError(f"{meta_path}: not an idnbandit trace description (needs format and model_names)")
    names, extra = meta["model_names"], meta.get("metadata", {})
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        shown = repr(names) if len(repr(names)) < 200 else repr(names)[:200] + "..."
        raise TraceError(f"{meta_path}: model_names must be a list of strings, got {shown}")
    if not 1 <= len(names) <= MAX_TRACE_MODELS:
        raise TraceError(f"{meta_path}: model_names: {len(names):,} names are not allowed; a trace has 1 to "
                         f"{MAX_TRACE_MODELS:,} models")
    if not isinstance(extra, dict):
        raise TraceError(f"{meta_path}: metadata must be a JSON object, got {type(extra).__name__}")
    return names, extra, _declared_shape(meta, extra, meta_path)


def _member(zf: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    for name in (f"{key}.npy", key):
        try:
            return zf.getinfo(name)
        except KeyError:
            continue
    return None


def _npy_header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header bytes) of an ``.npy`` stream, reading only its header."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
    else:
        raise TraceError(f"{where}: unsupported .npy format version {version}")
    offset = f.tell()
    return tuple(int(x) for x in shape), bool(fortran), dtype, offset


def _read_arrays(path: Path, n_models: int, declared: tuple[int | None, int | None]) -> tuple[np.ndarray, np.ndarray]:
    """``probs`` and ``labels`` of a trace's ``.npz``, checked against their headers, the zip directory and
    the description's declared sizes before a byte of data is decompressed."""
    try:
        archive_bytes = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise TraceError(f"{path}: not an .npz archive (found a single .npy array); save traces with "
                                 "Trace.save")
        with zipfile.ZipFile(path) as zf:
            infos = {}
            for key in ("probs", "labels"):
                info = _member(zf, key)
                if info is None:
                    raise TraceError(f"{path}: missing array(s) {[key]}")
                infos[key] = info
            headers = {}
            for key, info in infos.items():
                where = f"{path}: {key}"
                if info.compress_size > archive_bytes:
                    raise TraceError(f"{where}: the zip directory declares {info.compress_size:,} compressed bytes "
                                     f"in a {archive_bytes:,}-byte file; the file is truncated or corrupted")
                if info.file_size > MAX_NPZ_EXPANSION * max(info.compress_size, 1) + 4096:
                    raise TraceError(f"{where}: the zip directory declares {info.file_size:,} bytes from "
                                     f"{info.compress_size:,} compressed ones, more than deflate can expand "
                                     f"({MAX_NPZ_EXPANSION}:1); the file is corrupted or crafted")
                with zf.open(info) as f:
                    headers[key] = _npy_header(f, where)
            (p_shape, _, p_dtype, _), (l_shape, _, l_dtype, _) = headers["probs"], headers["labels"]
            if len(p_shape) != 3:
                raise TraceError(f"{path}: probs: expected shape (M, N, C), got {p_shape}")
            m, n, c = p_shape
            if m != n_models:
                raise TraceError(f"{path}: model_names: {n_models} names for {m} models (the .json beside the "
                                 ".npz names them); the two files do not belong together")
            for key, dt in (("probs", p_dtype), ("labels", l_dtype)):
                if dt.hasobject:
                    raise TraceError(f"{path}: {key}: an array of Python objects (it would need unpickling, which "
                                     "is never done); the file is truncated or corrupted, or not a trace")
            for what, want, got in (("n_samples", declared[0], n), ("n_classes", declared[1], c)):
                if want is not None and want != got:
                    raise TraceError(f"{path}: probs: the header declares shape {p_shape} but the .json declares "
                                     f"{what} = {want}; the file is corrupted or the two files do not belong together")
            if p_dtype.kind != "f":
                raise TraceError(f"{path}: probs: dtype {p_dtype} is not floating point")
            if l_shape != (n,):
                raise TraceError(f"{path}: labels: expected shape ({n},) to match probs, got {l_shape}")
            if l_dtype.kind not in "iu":
                raise TraceError(f"{path}: labels: dtype {l_dtype} is not integer")
            too_big = check_trace_size(m, n, c)
            if too_big:
                raise TraceError(f"{path}: probs: {too_big}")
            out = []
            for key in ("probs", "labels"):
                shape, fortran, dtype, offset = headers[key]
                nbytes = math.prod(shape) * dtype.itemsize
                info = infos[key]
                if info.file_size != offset + nbytes:
                    raise TraceError(f"{path}: {key}: header declares shape {shape} of {dtype} ({nbytes:,} bytes) "
                                     f"but the zip directory holds {info.file_size - offset:,} bytes; the file is "
                                     "truncated or corrupted")
                # a large member is decompressed twice: first only counted (and its CRC checked), so
                # that the buffer is allocated only for bytes that are really there
                for fill in ((False, True) if nbytes > _READ_PIECE else (True,)):
                    data = np.empty(nbytes, dtype=np.uint8) if fill else None
                    with zf.open(info) as f:  # reads at most file_size bytes and checks the CRC at the end
                        f.seek(offset)
                        got = 0
                        while got < nbytes:
                            piece = f.read(min(_READ_PIECE, nbytes - got))
                            if not piece:
                                break
                            if fill:  # filled in pieces: never twice the array in memory
                                data[got:got + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                            got += len(piece)
                        if got != nbytes or f.read(1):
                            raise TraceError(f"{path}: {key}: {got:,} bytes of data instead of {nbytes:,}; the "
                                             "file is truncated or corrupted")
                arr = data.view(dtype)
                out.append(arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape))
            return out[0], out[1]
    except TraceError:
        raise
    except Exception as exc:  # zipfile and numpy raise many types on damaged bytes
        # (BadZipFile, zlib.error, EOFError, OSError, ValueError, SyntaxError, ...)
        raise TraceError(f"{path}: cannot read the arrays ({type(exc).__name__}: {exc}); the file is truncated or "
                         "corrupted") from None
