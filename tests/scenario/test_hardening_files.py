"""Hardening, class 3 (issue 17): trace files and replay files.

* Traces: corpora of damaged copies of the bundled ``digits`` trace (headers that lie about the shape,
  zip directories that lie about sizes, decompression bombs, truncations, byte flips, wrong dtypes,
  hostile JSON descriptions) each give a :class:`TraceError`, and never allocate more than the files
  declare.
* Replay files: one parser for ``load_scenario`` and the simulator; generated files are accepted or
  refused identically by both, naming the same line.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.cli import main as cli_main
from idnbandit.errors import ConfigError, TraceError
from idnbandit.scenario import load_scenario
from idnbandit.scenario.limits import MAX_TIME_S
from idnbandit.scenario.replay import read_replay_file
from idnbandit.sim.workload import RequestStream
from idnbandit.traces import Trace
from idnbandit.traces.bundled import DATA_DIR
from idnbandit.traces.limits import MAX_TRACE_JSON_DEPTH, MAX_TRACE_MODELS

from .conftest import BASE, small_trace

REAL = Trace.load(DATA_DIR / "digits.npz")
REAL_JSON = json.loads((DATA_DIR / "digits.json").read_text())
M, N, C = REAL.probs.shape
_HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------- trace helpers
def _npy(arr: np.ndarray | None = None, *, shape=None, descr=None, fortran=False, data: bytes | None = None) -> bytes:
    """An .npy member: a header (possibly lying) followed by data bytes."""
    f = io.BytesIO()
    header = {"descr": descr or np.lib.format.dtype_to_descr(arr.dtype), "fortran_order": fortran,
              "shape": tuple(arr.shape) if shape is None else tuple(shape)}
    np.lib.format.write_array_header_1_0(f, header)
    if data is None:
        data = (np.asfortranarray(arr) if fortran else np.ascontiguousarray(arr)).tobytes(order="F" if fortran else "C")
    return f.getvalue() + data


def _write(folder, probs: bytes, labels: bytes, meta: dict | None = None, name: str = "t"):
    npz = folder / f"{name}.npz"
    with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("probs.npy", probs)
        zf.writestr("labels.npy", labels)
    (folder / f"{name}.json").write_text(json.dumps(REAL_JSON if meta is None else meta))
    return npz


def _real_copy(folder):
    shutil.copy(DATA_DIR / "digits.npz", folder / "t.npz")
    shutil.copy(DATA_DIR / "digits.json", folder / "t.json")
    return folder / "t.npz"


def _forge_size(npz, member: str, file_size: int) -> None:
    """Rewrite the uncompressed size of ``member`` in the zip's central directory (what zipfile trusts)."""
    raw = bytearray(npz.read_bytes())
    pos = raw.find(b"PK\x01\x02" + b"")
    while pos >= 0:
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + name_len] == member.encode():
            struct.pack_into("<I", raw, pos + 24, file_size)
            break
        pos = raw.find(b"PK\x01\x02", pos + 4)
    npz.write_bytes(bytes(raw))


def _load_bounded(npz, max_mb: float = 30.0) -> TraceError:
    """Trace.load must raise TraceError quickly, without allocating more than ``max_mb``."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(TraceError) as info:
            Trace.load(npz)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < max_mb * 2**20, f"allocated {peak / 2**20:.0f} MB before failing: {info.value}"
    assert time.perf_counter() - t < 5.0
    assert "\n" not in str(info.value)
    return info.value


# ------------------------------------------------------------------------------- trace: shapes
def test_real_copy_loads_identically(tmp_path):
    t = Trace.load(_real_copy(tmp_path))
    assert np.array_equal(t.probs, REAL.probs) and np.array_equal(t.labels, REAL.labels)
    npz = _write(tmp_path, _npy(REAL.probs, fortran=True), _npy(REAL.labels), name="f")  # Fortran order
    assert np.array_equal(Trace.load(npz).probs, REAL.probs)


@_HYP
@given(axis=st.integers(0, 2), size=st.one_of(st.integers(0, 5_000), st.integers(10**6, 10**12)))
def test_header_that_lies_about_the_shape_fails_before_reading(tmp_path_factory, axis, size):
    """Header shape changed, data unchanged: the declared sizes disagree with the .json, the other
    array or the zip directory, and nothing of that size is allocated."""
    shape = [M, N, C]
    if size == shape[axis]:
        size += 1
    shape[axis] = size
    folder = tmp_path_factory.mktemp("shape")
    npz = _write(folder, _npy(REAL.probs, shape=shape), _npy(REAL.labels))
    err = _load_bounded(npz)
    assert "probs" in str(err) or "model_names" in str(err), err


@_HYP
@given(n=st.integers(10**6, 10**11))
def test_decompression_bomb_capped_by_declared_sizes(tmp_path_factory, n):
    """A 'bomb': headers and .json all declare n samples, the zip directory claims the matching size, but
    the archive is small: refused from the zip directory alone (deflate expands at most ~1,032:1)."""
    folder = tmp_path_factory.mktemp("bomb")
    meta = dict(REAL_JSON, shape=[M, n, C])
    npz = _write(folder, _npy(REAL.probs, shape=(M, n, C)), _npy(REAL.labels, shape=(n,)), meta)
    header_len = len(_npy(REAL.probs, shape=(M, n, C), data=b""))
    _forge_size(npz, "probs.npy", min(header_len + 4 * M * n * C, 2**32 - 1))
    err = _load_bounded(npz)
    assert any(m in str(err) for m in ("deflate", "header declares", "GiB", "bytes of data instead of")), err


def test_issue_bomb_header_disagrees_with_metadata(tmp_path):
    """The issue's case: a small archive whose header expands to ~1.8 GB; the .json declares the real size."""
    npz = _write(tmp_path, _npy(REAL.probs, shape=(4, 11_000_000, 10)), _npy(REAL.labels, shape=(11_000_000,)))
    err = _load_bounded(npz)
    assert "n_samples = 1797" in str(err)


@pytest.mark.parametrize("probs, labels, match", [
    (lambda: _npy(REAL.probs.astype(np.complex64)), lambda: _npy(REAL.labels), "not floating point"),
    (lambda: _npy(REAL.probs.astype(np.int32)), lambda: _npy(REAL.labels), "not floating point"),
    (lambda: _npy(REAL.probs), lambda: _npy(REAL.labels.astype(np.float64)), "not integer"),
    (lambda: _npy(REAL.probs), lambda: _npy(REAL.labels.astype(bool)), "not integer"),
    (lambda: _npy(REAL.probs), lambda: _npy(REAL.labels, descr="|O"), "never done"),
    (lambda: _npy(REAL.probs, descr="|O"), lambda: _npy(REAL.labels), "never done"),
    (lambda: _npy(REAL.probs[:, :, :5] / REAL.probs[:, :, :5].sum(2, keepdims=True)), lambda: _npy(REAL.labels),
     "n_classes = 10"),
])
def test_wrong_dtypes_and_sizes(tmp_path, probs, labels, match):
    err = _load_bounded(_write(tmp_path, probs(), labels()))
    assert match in str(err), err


def test_declared_shape_of_saved_traces_is_checked(tmp_path):
    t = small_trace()
    npz = t.save(tmp_path / "s.npz")
    desc = json.loads(npz.with_suffix(".json").read_text())
    assert desc["shape"] == list(t.probs.shape)
    for bad, match in (([2, 201, 3], "n_samples = 201"), ([2, 200, 4], "n_classes = 4"), ("x", "shape")):
        npz.with_suffix(".json").write_text(json.dumps(dict(desc, shape=bad)))
        assert match in str(_load_bounded(npz))


# ---------------------------------------------------------------------------- trace: damage
@_HYP
@given(cut=st.floats(0.0, 0.999))
def test_truncated_real_trace(tmp_path_factory, cut):
    npz = _real_copy(tmp_path_factory.mktemp("cut"))
    raw = npz.read_bytes()
    npz.write_bytes(raw[:int(len(raw) * cut)])
    _load_bounded(npz)


@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0.0, 0.9999), st.integers(1, 255)), min_size=1, max_size=4))
def test_flipped_bytes_load_or_raise_trace_error(tmp_path_factory, flips):
    """Any damage gives a valid trace (a flip in an unused zip field) or a TraceError, nothing else."""
    npz = _real_copy(tmp_path_factory.mktemp("flip"))
    raw = bytearray(npz.read_bytes())
    for where, x in flips:
        raw[int(where * len(raw))] ^= x
    npz.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        t = Trace.load(npz)
        assert t.probs.shape == (M, N, C)
    except TraceError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 30 * 2**20


def test_forged_directory_sizes(tmp_path):
    npz = _real_copy(tmp_path)
    _forge_size(npz, "probs.npy", 2**32 - 1)
    assert "deflate" in str(_load_bounded(npz))
    npz = _real_copy(tmp_path)
    _forge_size(npz, "labels.npy", 10)
    assert "truncated or corrupted" in str(_load_bounded(npz))
    npz = _real_copy(tmp_path)
    _forge_size(npz, "labels.npy", 128 + 8 * N + 8)  # header + data + 8 bytes that are not there
    assert "zip directory holds" in str(_load_bounded(npz))


# ------------------------------------------------------------------------- trace: descriptions
@pytest.mark.parametrize("depth", [MAX_TRACE_JSON_DEPTH + 1, 1_000, 100_000])
def test_deeply_nested_description(tmp_path, depth):
    npz = _real_copy(tmp_path)
    text = json.dumps(REAL_JSON)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    npz.with_suffix(".json").write_text(text)
    err = _load_bounded(npz)
    assert "nest" in str(err) and str(MAX_TRACE_JSON_DEPTH) in str(err), err


def test_description_just_within_depth_loads(tmp_path):
    npz = _real_copy(tmp_path)
    deep: list = []
    for _ in range(MAX_TRACE_JSON_DEPTH - 3):  # + the description object and its metadata object
        deep = [deep]
    npz.with_suffix(".json").write_text(json.dumps(dict(REAL_JSON, metadata=dict(REAL_JSON["metadata"], deep=deep))))
    assert Trace.load(npz).n_samples == N


@pytest.mark.parametrize("text, match", [
    (b'{"format": "idnbandit-trace", "model_names": ["\xff\xfe"]}', "not valid JSON"),
    (b'{"format": "idnbandit-trace", "model_names": ' + json.dumps(["m"] * (MAX_TRACE_MODELS + 1)).encode() + b"}",
     "1,025 names"),
    (b'{"format": "idnbandit-trace", "model_names": [1, 2]}', "list of strings"),
    (b" " * (16 * 2**20 + 1), "at most 16,777,216 bytes"),
])
def test_hostile_descriptions(tmp_path, text, match):
    npz = _real_copy(tmp_path)
    npz.with_suffix(".json").write_bytes(text)
    assert match in str(_load_bounded(npz, max_mb=40))


def test_scenario_with_a_damaged_trace_names_the_scenario(tmp_path):
    d = dict(BASE, trace={"path": "t.npz"})
    d["models"] = [dict(m, trace_column=c) for m, c in zip(BASE["models"], ("logreg-4x4", "cnn-wide"))]
    (tmp_path / "s.toml").write_text(tomli_w.dumps(d))
    npz = _write(tmp_path, _npy(REAL.probs, shape=(4, 11_000_000, 10)), _npy(REAL.labels))
    assert npz.is_file()
    with pytest.raises(TraceError, match=r"s\.toml: \[trace\]\.path: .*n_samples = 1797"):
        load_scenario(tmp_path / "s.toml")


# ---------------------------------------------------------------------------------- replay files
def _reference(lines: list[str]) -> tuple[list[float] | None, int | None]:
    """The documented grammar, written plainly: (timestamps, None) or (None, first bad line number)."""
    out: list[float] = []
    for i, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            t = float(text)
        except ValueError:
            return None, i
        if not (0 <= t <= MAX_TIME_S) or (out and t < out[-1]):
            return None, i
        out.append(t)
    return (out, None) if out else (None, 0)


_token = st.one_of(
    st.floats(0, 1e3, allow_nan=False).map(repr),
    st.integers(0, 1000).map(str),
    st.sampled_from(["", "   ", "# a comment", "-1.0", "-0.5", "nan", "inf", "1e13", "abc", "1 2", "0x10",
                     "1,5", "\t2.5\t", "１", "1e-3", "+4", "1_000"]),
)
_line = st.tuples(_token, st.sampled_from(["", "  # trailing comment", "#", " #x"])).map(lambda p: p[0] + p[1])


def _scenario_dir(tmp_path, lines_or_bytes, **workload):
    d = dict(BASE, trace={"synthetic": {"model_names": ["small", "big"], "accuracies": [0.7, 0.9], "n_classes": 3,
                                        "n_samples": 200}})
    d["workload"] = dict(BASE["workload"], process="replay", replay_file="arrivals.txt", **workload)
    (tmp_path / "s.toml").write_text(tomli_w.dumps(d))
    data = lines_or_bytes if isinstance(lines_or_bytes, bytes) else "\n".join(lines_or_bytes).encode()
    (tmp_path / "arrivals.txt").write_bytes(data)
    return tmp_path / "s.toml"


def _simulator_times(path) -> np.ndarray:
    """What the simulator reads (the scenario loaded without its data checks)."""
    return RequestStream(load_scenario(path, check_data=False), 200, 0).next_chunk()[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, min_size=0, max_size=12))
def test_load_and_simulator_share_one_replay_grammar(tmp_path_factory, lines):
    path = _scenario_dir(tmp_path_factory.mktemp("replay"), lines)
    want, bad_line = _reference(lines)
    if want is None:
        with pytest.raises(ConfigError) as at_load:
            load_scenario(path)
        with pytest.raises(ConfigError) as in_sim:
            _simulator_times(path)
        marker = f"line {bad_line}:" if bad_line else "holds no timestamp"
        for err in (at_load.value, in_sim.value):
            assert "[workload].replay_file: 'arrivals.txt'" in str(err) and marker in str(err), str(err)
        assert str(at_load.value) == f"{path}: {in_sim.value}"
    else:
        load_scenario(path)
        assert _simulator_times(path)[:len(want)].tolist() == want


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 8), at=st.integers(0, 7), byte=st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"]))
def test_non_utf8_replay_names_the_line(tmp_path_factory, n, at, byte):
    lines = [f"{i}.5".encode() for i in range(n)]
    at = min(at, n - 1)
    lines[at] = lines[at] + byte
    path = _scenario_dir(tmp_path_factory.mktemp("utf8"), b"\n".join(lines))
    for call in (load_scenario, _simulator_times):
        with pytest.raises(ConfigError, match=rf"'arrivals.txt' line {at + 1}: byte 0x[0-9a-f]{{2}} .* not UTF-8"):
            call(path)


def test_issue_replay_examples(tmp_path):
    path = _scenario_dir(tmp_path, ["0.5  # comment", "1.0"])
    load_scenario(path)
    assert _simulator_times(path)[:2].tolist() == [0.5, 1.0]
    path = _scenario_dir(tmp_path, ["-1.0", "0.5"])
    for call in (load_scenario, _simulator_times):
        with pytest.raises(ConfigError, match=r"line 1: '-1.0' is not allowed; .* in \[0, 1e12\]"):
            call(path)
    path = _scenario_dir(tmp_path, b"\xef\xbb\xbf0.25\r\n0.5\r\n")  # a BOM and CRLF line ends
    assert _simulator_times(path)[:2].tolist() == [0.25, 0.5]


def test_replay_rate_against_background_load(tmp_path):
    """Two requests 10^9 s apart and a busy background node: 6e10 background jobs per request."""
    path = _scenario_dir(tmp_path, ["0", "1e9"])
    with pytest.raises(ConfigError, match=r"background jobs per request is not allowed; it must be <= 1,000,000"):
        load_scenario(path)


def test_replay_size_limits(tmp_path, monkeypatch):
    from idnbandit.scenario import replay

    monkeypatch.setattr(replay, "MAX_REPLAY_TIMESTAMPS", 3)
    path = _scenario_dir(tmp_path, ["1", "2", "3", "# c", "4"])
    with pytest.raises(ConfigError, match="line 5: more than 3 timestamps"):
        read_replay_file(tmp_path / "arrivals.txt")
    monkeypatch.setattr(replay, "MAX_REPLAY_BYTES", 4)
    with pytest.raises(ConfigError, match="may hold at most 4 bytes"):
        load_scenario(path)


def test_cli_bad_replay_is_one_line_exit_2(tmp_path, capsys):
    path = _scenario_dir(tmp_path, ["0.5", "0.25"])
    assert cli_main(["describe", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "line 2: '0.25' is not allowed" in err, err


# -------------------------------------------------------------------------------- scenario files
@settings(max_examples=60, deadline=None)
@given(edits=st.lists(st.tuples(st.floats(0.0, 0.9999), st.integers(0, 40),
                                st.text(alphabet="[]{}=\"'#.,0123456789-+eEinaftrux \n\\", max_size=8)),
                      min_size=1, max_size=3))
def test_damaged_builtin_scenario_text_gives_typed_errors(edits):
    """Random cuts and insertions in a built-in scenario file: it loads, or an IdnBanditError says why."""
    from idnbandit.errors import IdnBanditError
    from idnbandit.scenario import builtin_path, loads_scenario

    text = builtin_path("idn-4tier").read_text()
    for where, cut, insert in edits:
        i = int(where * len(text))
        text = text[:i] + insert + text[i + cut:]
    try:
        loads_scenario(text, source="damaged.toml")
    except IdnBanditError as exc:
        assert str(exc).startswith("damaged.toml") or "[trace]" in str(exc) or "trace" in str(exc), str(exc)


@pytest.mark.parametrize("text", ["x = " + "[" * 100_000 + "]" * 100_000, "x = " + "{a=" * 5_000 + "1" + "}" * 5_000])
def test_deeply_nested_scenario_toml(tmp_path, text):
    (tmp_path / "deep.toml").write_text(text)
    with pytest.raises(ConfigError, match="nested deeper than the TOML parser allows"):
        load_scenario(tmp_path / "deep.toml")


def test_scenario_file_size_and_encoding(tmp_path, monkeypatch):
    from idnbandit.scenario import io as scenario_io

    path = tmp_path / "s.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match=r"s\.toml: cannot read the file .*utf-8"):
        load_scenario(path)
    monkeypatch.setattr(scenario_io, "MAX_SCENARIO_BYTES", 5)
    with pytest.raises(ConfigError, match="11 bytes are not allowed; a scenario file may hold at most 5 bytes"):
        load_scenario(path)


def test_save_never_writes_a_description_load_refuses(tmp_path):
    deep: list = []
    for _ in range(MAX_TRACE_JSON_DEPTH):
        deep = [deep]
    t = small_trace()
    bad = Trace(t.probs, t.labels, t.model_names, {"deep": deep})
    with pytest.raises(TraceError, match="nested more than"):
        bad.save(tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())
