"""Decision logs: bit-exact round trips (Parquet, CSV), hand-written CSV, and every bad log → LogError."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.errors import LogError
from idnbandit.ope import DecisionLog, LogMeta, LogWriter, iter_log, read_log, write_log

pytest.importorskip("pyarrow")

floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


def random_log(n, k=3, d=2, seed=0, simulated=True, unobserved=()):
    rng = np.random.default_rng(seed)
    obs = np.ones(n, bool)
    obs[list(unobserved)] = False
    r = rng.normal(size=n)
    r[~obs] = np.nan
    meta = LogMeta(n_options=k, n_features=d, simulated=simulated, feedback="label_on_forward",
                   policy="egreedy(epsilon=0.1)", scenario="hi-two-tier", extra={"seed": seed})
    return DecisionLog(meta, np.arange(n) + 10, np.cumsum(rng.exponential(size=n)), rng.integers(0, 5, n),
                       rng.normal(size=(n, d)), rng.integers(0, k, n), rng.uniform(0.01, 1, n), obs, r,
                       rng.normal(size=(n, k)) if simulated else None)


def assert_same(a: DecisionLog, b: DecisionLog):
    assert a.meta == b.meta
    for name in DecisionLog._fields[1:]:
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None
            continue
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)  # NaN == NaN here; bit-exact values


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("simulated", [True, False])
def test_round_trip_is_bit_exact_and_chunked_reads_agree(tmp_path, suffix, simulated):
    log = random_log(1000, simulated=simulated, unobserved=(3, 500))
    path = tmp_path / f"log{suffix}"
    with LogWriter(path, log.meta, chunk_rows=128) as w:  # several chunks / row groups
        for s in range(0, 1000, 300):
            w.write(**{k: (None if v is None else v[s: s + 300]) for k, v in log._asdict().items()
                       if k != "meta" and (k != "sim_rewards" or simulated)})
    assert_same(read_log(path), log)
    chunks = list(iter_log(path, chunk_rows=97))
    assert sum(c.n_rows for c in chunks) == 1000 and max(c.n_rows for c in chunks) <= 128


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(floats, min_size=1, max_size=20), suffix=st.sampled_from([".csv", ".parquet"]))
def test_any_float_survives_a_round_trip(tmp_path_factory, values, suffix):
    n = len(values)
    v = np.array(values)
    meta = LogMeta(n_options=2, n_features=1)
    log = DecisionLog(meta, np.arange(n), v, np.zeros(n, np.int64), v[:, None], np.zeros(n, np.int64),
                      np.full(n, 0.5), np.ones(n, bool), v, None)
    path = tmp_path_factory.mktemp("rt") / f"log{suffix}"
    write_log(path, log)
    assert_same(read_log(path), log)


def test_empty_log_round_trips(tmp_path):
    meta = LogMeta(n_options=2, n_features=3)
    for suffix in (".csv", ".parquet"):
        with LogWriter(tmp_path / f"e{suffix}", meta):
            pass
        back = read_log(tmp_path / f"e{suffix}")
        assert back.n_rows == 0 and back.x.shape == (0, 3) and back.meta == meta


def test_a_hand_written_csv_loads(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("request,time_s,origin,x_0,x_1,action,propensity,observed,reward\n"
                    "1,0.0,0,0.5,1,1,0.25,true,1\n"
                    "2,0.1,0,0.7,1,0,0.75,false,\n"
                    "3,0.2,1,0.1,1,2,1,1,0.0\n")
    with pytest.raises(LogError, match="pass n_options"):
        read_log(path)
    log = read_log(path, n_options=3)
    assert log.meta.n_features == 2 and not log.meta.simulated
    assert log.action.tolist() == [1, 0, 2] and log.observed.tolist() == [True, False, True]
    assert np.isnan(log.reward[1]) and log.reward[0] == 1.0


def _csv(tmp_path, rows, header="request,time_s,origin,x_0,action,propensity,observed,reward", name="b.csv"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("row, match", [
    ("1,0,0,0.5,2,0.5,1,1", "row 0, column action: 2 is not an option; it must be in \\[0, 1\\]"),
    ("1,0,0,0.5,-1,0.5,1,1", "column action: -1"),
    ("1,0,0,0.5,0.5,0.5,1,1", "column action: '0.5' is not a whole number"),
    ("1,0,0,0.5,1,0,1,1", "column propensity: 0.0 is not allowed; a propensity must be in \\(0, 1\\]"),
    ("1,0,0,0.5,1,1.5,1,1", "column propensity: 1.5"),
    ("1,0,0,0.5,1,nan,1,1", "column propensity: nan"),
    ("1,0,0,0.5,1,0.5,1,", "column reward: nan: observed is true"),
    ("1,0,0,0.5,1,0.5,0,1", "column reward: 1.0: observed is false"),
    ("1,0,0,0.5,1,0.5,yes,1", "column observed: 'yes' is not a boolean"),
    ("1,0,0,inf,1,0.5,1,1", "column x_0: inf is not finite"),
    ("1,0,0,abc,1,0.5,1,1", "column x_0: 'abc' is not a number"),
    ("1,,0,0.5,1,0.5,1,1", "column time_s: empty"),
    ("1,0,0,0.5,1,0.5,1", "row 0 has 7 fields; the header has 8"),
])
def test_a_bad_value_is_named_by_row_and_column(tmp_path, row, match):
    good = "0,0,0,0.5,1,0.5,1,1"
    path = _csv(tmp_path, [good, good, row])
    with pytest.raises(LogError, match=match.replace("row 0", "row 2")):
        read_log(path, n_options=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(col=st.sampled_from(["action", "propensity", "reward", "x_0", "time_s"]),
       bad=st.sampled_from(["nan", "inf", "-inf", "1e400", "", "x", "-5", "7"]),
       row=st.integers(0, 30))
def test_generated_bad_cells_raise_log_error_naming_the_row(tmp_path_factory, col, bad, row):
    header = "request,time_s,origin,x_0,action,propensity,observed,reward".split(",")
    rows = [["0", "0", "0", "0.5", "1", "0.5", "1", "1"] for _ in range(31)]
    rows[row][header.index(col)] = bad
    path = _csv(tmp_path_factory.mktemp("g"), [",".join(r) for r in rows], ",".join(header))
    try:
        read_log(path, n_options=2)
    except LogError as exc:
        assert f"row {row}" in str(exc)
        assert col in str(exc) or "fields" in str(exc)
    else:  # only values that are valid in that column may pass
        assert (col, bad) in {("reward", "-5"), ("reward", "7"), ("time_s", "-5"), ("time_s", "7"),
                              ("x_0", "-5"), ("x_0", "7")}


def test_missing_columns_are_named(tmp_path):
    path = _csv(tmp_path, ["0,0,0,0.5,1,0.5,1"], "request,time_s,origin,x_0,action,observed,reward")
    with pytest.raises(LogError, match="missing column\\(s\\) propensity"):
        read_log(path, n_options=2)
    path = _csv(tmp_path, ["0,0,0,1,0.5,1,1"], "request,time_s,origin,action,propensity,observed,reward", "n.csv")
    with pytest.raises(LogError, match="no context columns"):
        read_log(path, n_options=2)


@pytest.mark.parametrize("line, match", [
    ('# idnbandit-decision-log {"format": "idnbandit-decision-log", "version": 9, "n_options": 2, '
     '"n_features": 1}', "version 9 is not supported"),
    ('# idnbandit-decision-log {"format": "other", "version": 1}', "format 'other'"),
    ('# idnbandit-decision-log [1, 2]', "must be a JSON object"),
    ('# idnbandit-decision-log ' + "[" * 100_000 + "]" * 100_000, "not valid JSON|characters"),
    ('# idnbandit-decision-log {"format": "idnbandit-decision-log", "version": 1, "n_options": 0, '
     '"n_features": 1}', "n_options: 0 is not allowed"),
    ('# idnbandit-decision-log {"format": "idnbandit-decision-log", "version": 1, "n_options": 2, '
     '"n_features": 1, "feedback": "partial"}', "feedback: 'partial'"),
    ('# idnbandit-decision-log {"format": "idnbandit-decision-log", "version": 1, "n_options": 2, '
     '"n_features": 1, "colour": 1}', "unknown log metadata field"),
    ("# a comment", "not an idnbandit metadata line"),
])
def test_bad_metadata_is_refused(tmp_path, line, match):
    path = tmp_path / "m.csv"
    path.write_text(line + "\nrequest,time_s,origin,x_0,action,propensity,observed,reward\n0,0,0,0.5,1,0.5,1,1\n")
    with pytest.raises(LogError, match=match):
        read_log(path)


def test_unreadable_files(tmp_path):
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"request,time_s\n\xff\xfe\n")
    with pytest.raises(LogError, match="not UTF-8"):
        read_log(bad, n_options=2)
    pq = tmp_path / "x.parquet"
    write_log(pq, random_log(200))
    data = pq.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(LogError, match="not a readable Parquet file"):
        read_log(tmp_path / "cut.parquet")
    with pytest.raises(LogError, match="no such log file"):
        read_log(tmp_path / "absent.csv")
    with pytest.raises(LogError, match="unknown log format '.txt'"):
        read_log(bad.rename(tmp_path / "log.txt"))


def test_the_writer_refuses_to_overwrite_and_leaves_nothing_on_failure(tmp_path):
    log = random_log(10)
    path = tmp_path / "log.parquet"
    write_log(path, log)
    with pytest.raises(LogError, match="exists; choose another file or pass overwrite=True"):
        write_log(path, log)
    before = path.read_bytes()
    with pytest.raises(LogError, match="column propensity"):
        with LogWriter(path, log.meta, overwrite=True) as w:
            w.write(**{**{k: v for k, v in log._asdict().items() if k != "meta"},
                       "propensity": np.zeros(10)})
    assert path.read_bytes() == before  # the old log is intact
    assert sorted(os.listdir(tmp_path)) == ["log.parquet"]  # no temp file left


def test_written_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_log(tmp_path / "u.csv", random_log(3))
    finally:
        os.umask(old)
    assert (tmp_path / "u.csv").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("kwargs, match", [
    ({"x": np.zeros((4, 3))}, r"x has shape \(4, 3\); expected \(4, 2\)"),
    ({"reward": np.zeros(3)}, "column reward has 3 rows; action has 4"),
    ({"sim_rewards": np.zeros((4, 2))}, r"sim_rewards has shape \(4, 2\)"),
    ({"colour": np.zeros(4)}, "unknown column"),
    ({"action": ["a"] * 4}, "not numeric"),
])
def test_write_checks_shapes(tmp_path, kwargs, match):
    log = random_log(4)
    cols = {k: v for k, v in log._asdict().items() if k != "meta"}
    cols.update(kwargs)
    with pytest.raises(LogError, match=match):
        with LogWriter(tmp_path / "s.csv", log.meta) as w:
            w.write(**cols)
    assert not list(tmp_path.iterdir())


def test_background_writer_writes_the_same_file_and_reports_errors(tmp_path):
    log = random_log(3000)
    cols = {k: v for k, v in log._asdict().items() if k != "meta"}
    with LogWriter(tmp_path / "bg.parquet", log.meta, chunk_rows=500, background=True) as w:
        for s in range(0, 3000, 700):
            w.write(**{k: v[s: s + 700] for k, v in cols.items()})
    assert_same(read_log(tmp_path / "bg.parquet"), log)
    w = LogWriter(tmp_path / "bad.parquet", log.meta, background=True)
    w.write(**{**cols, "propensity": np.zeros(3000)})  # checked in the thread
    with pytest.raises(LogError, match="row 0, column propensity"):
        w.close()
    assert not (tmp_path / "bad.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg.parquet"]
