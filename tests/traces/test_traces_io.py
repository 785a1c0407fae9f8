"""Trace checks at construction and load: malformed files raise TraceError, never unpickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from idnbandit.errors import TraceError, UnknownNameError
from idnbandit.traces import Trace, synthetic_trace


@pytest.fixture(scope="module")
def small_trace() -> Trace:
    return synthetic_trace(["small", "large"], [0.7, 0.9], n_samples=500, n_classes=4, seed=7)


def _write(tmp_path, probs=None, labels=None, names=("a", "b"), meta=None, arrays=None, name="t"):
    """Write a trace pair by hand (bypassing Trace validation)."""
    npz = tmp_path / f"{name}.npz"
    if arrays is None:
        arrays = {"probs": probs, "labels": labels}
    np.savez(npz, **arrays)
    if meta is None:
        meta = {"format": "idnbandit-trace", "version": 1, "model_names": list(names), "metadata": {}}
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    return npz


def _valid_arrays(m=2, n=6, c=3):
    rng = np.random.default_rng(0)
    p = rng.random((m, n, c)).astype(np.float32)
    p /= p.sum(axis=2, keepdims=True)
    return p, rng.integers(0, c, size=n)


def test_round_trip_preserves_everything(tmp_path, small_trace):
    t = small_trace
    t.metadata["note"] = {"nested": [1, 2.5, "x"]}
    path = t.save(tmp_path / "sub" / "trace.npz")
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others (package data)
    u = Trace.load(path)
    assert u.model_names == t.model_names
    np.testing.assert_array_equal(u.probs, t.probs)
    np.testing.assert_array_equal(u.labels, t.labels)
    assert u.probs.dtype == np.float32 and u.labels.dtype == np.int64
    assert u.metadata["note"] == {"nested": [1, 2.5, "x"]}
    assert not u.probs.flags.writeable
    # saving without the suffix writes the .npz
    assert t.save(tmp_path / "plain").suffix == ".npz"
    assert Trace.load(tmp_path / "plain").n_samples == t.n_samples


def test_column_lookup_suggests(small_trace):
    assert small_trace.column("large") == 1
    with pytest.raises(UnknownNameError, match="did you mean 'large'"):
        small_trace.column("larg")


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, -20])
def test_truncated_npz_raises(tmp_path, small_trace, cut):
    path = small_trace.save(tmp_path / "t.npz")
    raw = path.read_bytes()
    n = int(cut * len(raw)) if isinstance(cut, float) else (cut if cut >= 0 else len(raw) + cut)
    path.write_bytes(raw[:n])
    with pytest.raises(TraceError, match="t.npz"):
        Trace.load(path)


def test_corrupted_npz_bytes_raise(tmp_path, small_trace):
    path = small_trace.save(tmp_path / "t.npz")
    raw = path.read_bytes()
    # flip bytes of the compressed array data (zip header fields such as timestamps are ignored by
    # readers, so flipping those is not a corruption of the trace)
    for pos in np.linspace(0.05 * len(raw), 0.9 * len(raw), 25).astype(int):
        b = bytearray(raw)
        b[pos] ^= 0xFF
        path.write_bytes(bytes(b))
        with pytest.raises(TraceError):
            Trace.load(path)


def test_garbage_and_single_npy_raise(tmp_path):
    p, y = _valid_arrays()
    npz = _write(tmp_path, p, y)
    npz.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(TraceError, match="truncated or corrupted"):
        Trace.load(npz)
    with open(npz, "wb") as f:  # a bare .npy saved under the .npz name
        np.save(f, p)
    with pytest.raises(TraceError, match="not an .npz archive"):
        Trace.load(npz)


def test_object_arrays_are_never_unpickled(tmp_path):
    p, _ = _valid_arrays()
    labels = np.array([0, 1, 2, 0, 1, {"evil": 1}], dtype=object)
    npz = _write(tmp_path, p, labels)
    with pytest.raises(TraceError, match="truncated or corrupted"):
        Trace.load(npz)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p, y: (p[0], y), "expected shape \\(M, N, C\\)"),
        (lambda p, y: (p[:, :, :1], y), "C >= 2"),
        (lambda p, y: (p, y[:-1]), "labels: expected shape"),
        (lambda p, y: (p, y.reshape(2, 3)), "labels: expected shape"),
        (lambda p, y: (np.where(np.arange(p.size).reshape(p.shape) == 4, np.nan, p), y), "NaN or inf"),
        (lambda p, y: (np.where(np.arange(p.size).reshape(p.shape) == 4, np.inf, p), y), "NaN or inf"),
        (lambda p, y: (p * 1.5, y), "sums to"),
        (lambda p, y: (p - 0.5 * p.max(), y), "negative|sums to"),
        (lambda p, y: (p, np.where(np.arange(y.size) == 2, 3, y)), "labels: values must lie in \\[0, 3\\)"),
        (lambda p, y: (p, np.where(np.arange(y.size) == 2, -1, y)), "labels: values must lie"),
        (lambda p, y: (p, y.astype(np.float64)), "labels: dtype"),
        (lambda p, y: ((p > 0.3).astype(np.int64), y), "not floating point"),
    ],
)
def test_malformed_arrays_raise(tmp_path, mutate, match):
    p, y = mutate(*_valid_arrays())
    with pytest.raises(TraceError, match=match):
        Trace.load(_write(tmp_path, p, y))


def test_bad_metadata_files_raise(tmp_path):
    p, y = _valid_arrays()
    npz = _write(tmp_path, p, y, names=("a", "b", "c"))
    with pytest.raises(TraceError, match="3 names for 2 models"):
        Trace.load(npz)
    npz = _write(tmp_path, p, y, names=("a", "a"))
    with pytest.raises(TraceError, match="duplicate"):
        Trace.load(npz)
    npz = _write(tmp_path, p, y, meta={"model_names": ["a", "b"]})
    with pytest.raises(TraceError, match="not an idnbandit trace"):
        Trace.load(npz)
    npz = _write(tmp_path, p, y, meta={"format": "idnbandit-trace", "model_names": "ab"})
    with pytest.raises(TraceError, match="model_names must be a list"):
        Trace.load(npz)
    npz = _write(tmp_path, p, y, meta={"format": "idnbandit-trace", "model_names": ["a", "b"], "metadata": [1]})
    with pytest.raises(TraceError, match="metadata must be a JSON object"):
        Trace.load(npz)
    npz.with_suffix(".json").write_text("{not json")
    with pytest.raises(TraceError, match="not valid JSON"):
        Trace.load(npz)
    npz.with_suffix(".json").unlink()
    with pytest.raises(TraceError, match="file not found"):
        Trace.load(npz)
    with pytest.raises(TraceError, match="file not found"):
        Trace.load(tmp_path / "missing.npz")


def test_missing_array_raises(tmp_path):
    p, _ = _valid_arrays()
    npz = _write(tmp_path, arrays={"probs": p})
    with pytest.raises(TraceError, match="missing array"):
        Trace.load(npz)


def test_constructor_rejects_name_mismatch():
    p, y = _valid_arrays()
    with pytest.raises(TraceError, match="model_names"):
        Trace(p, y, ("only-one",))
