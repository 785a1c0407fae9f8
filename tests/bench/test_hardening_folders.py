"""Hardening class 5: output folders and concurrency.

One process per results folder (a lock naming the holder), malformed cell files recomputed with a
warning, ``--out`` refused before any work when it is a file, foreign, or not really writable (also
for ``idnbandit fl``), temporary files of live writers never deleted, and one atomic writer whose
files get the permissions ``open()`` would give.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit._io import _HOST, atomic_write_bytes, atomic_write_text, stale_temp_files
from idnbandit.bench import agents_from_cli, make_plan, run_bench
from idnbandit.bench.store import LOCK_FILE, FolderLock, MalformedCellWarning, ResultStore, record_problem
from idnbandit.bench.summary import make_record
from idnbandit.cli import main
from idnbandit.errors import ConfigError
from idnbandit.sim.result import RunResult

TINY = str(Path(__file__).parent / "data" / "tiny-2tier.toml")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def plan():
    return make_plan([TINY], agents_from_cli("always-local"), seeds=[0], steps=50, curve_points=4)


def _fake_result(cell) -> RunResult:
    """A RunResult with plausible numbers (no simulation): the shape of a real cell record."""
    return RunResult(
        scenario=cell.scenario, agent=cell.agent, seed=cell.seed, steps=cell.steps, mean_reward=0.5, accuracy=0.7,
        latency_mean_ms=3.0, latency_p50_ms=3.0, latency_p95_ms=4.0, latency_p99_ms=5.0,
        deadline_violation_rate=0.0, timeout_rate=0.0, forward_rate=0.0, forward_rate_by_tier={"device": 1.0},
        mean_cost=0.0, option_rates=np.array([1.0, 0.0]), fixed_option_mean_reward=np.array([0.5, 0.6]),
        oracle_mean_reward=0.8, regret_oracle=15.0, regret_best_fixed=5.0, curve_t=np.array([10, 20, 30, 50]),
        curve_regret_oracle=np.array([1.0, 2.0, 3.0, 15.0]), curve_regret_best_fixed=np.array([0.5, 1, 2, 5.0]),
        latency_hist_edges_ms=np.array([1.0, 2.0, 4.0]), latency_hist_counts=np.array([0, 50]),
        wall_time_s=0.01, decisions_per_s=5000.0)


def _valid_record(plan) -> dict:
    cell = plan.cells[0]
    return json.loads(json.dumps(make_record(cell, _fake_result(cell))))


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("idnbandit ") and "error:" in err, err
    for n in needles:
        assert n in err, err
    return err


# ------------------------------------------------------------------------------------- the lock
def test_a_held_folder_is_refused_with_the_holders_pid_host_and_start(tmp_path, capsys):
    out = tmp_path / "run"
    with FolderLock(out):
        code = main(["bench", "--scenario", TINY, "--agents", "always-local", "--seeds", "1", "--steps", "50",
                     "--jobs", "1", "--out", str(out), "--quiet"])
        assert code == 2
        err = _one_line_error(capsys, f"--out {out}", "in use by another idnbandit bench", f"pid {os.getpid()}",
                              "started 20", "UTC")
        assert re.search(r"on host \S+", err)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing else was written
    # released: the folder (holding only the lock file) counts as empty and the same call runs
    assert main(["bench", "--scenario", TINY, "--agents", "always-local", "--seeds", "1", "--steps", "50",
                 "--jobs", "1", "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").is_file()


def test_lock_is_exclusive_between_open_descriptions_and_released_on_exit(tmp_path):
    a = FolderLock(tmp_path).acquire()
    with pytest.raises(ConfigError, match="in use by another"):
        FolderLock(tmp_path).acquire()
    a.release()
    FolderLock(tmp_path).acquire().release()


def _bench_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "idnbandit.cli", "bench", "--scenario", TINY, "--agents", "always-local,random",
            "--seeds", "3", "--steps", "300000", "--curve-points", "4", "--jobs", "1", "--out", str(out), *extra]


def test_two_bench_processes_on_one_folder_compute_every_cell_once(tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_bench_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes and set(codes) <= {0, 2}, results  # neither crashes
    ran = 0
    for code, (_, err) in zip(codes, results):
        assert "Traceback" not in err, err
        done = re.findall(r"^\[\d+/6\] tiny-2tier", err, flags=re.M)  # one progress line per computed cell
        if code == 2:
            assert not done
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and "in use by another idnbandit bench" in lines[0] and "pid " in lines[0], err
        ran += len(done)
    assert ran == 6  # every cell computed exactly once, between the two processes
    assert len(list((out / "cells").glob("*.json"))) == 6
    assert json.loads((out / "summary.json").read_text())["n_finished"] == 6
    assert not [p for p in out.rglob(".*.tmp")]


# ---------------------------------------------------------------------------------- malformed cells
_IDENTITY = ["cell_id", "scenario", "agent", "spec", "seed", "agent_seed", "steps"]
_CHECKED_RESULT = ["mean_reward", "accuracy", "latency_mean_ms", "latency_p95_ms", "regret_oracle", "forward_rate",
                   "decisions_per_s", "wall_time_s", "curve_t", "curve_regret_oracle", "latency_hist",
                   "forward_rate_by_tier"]
_WRONG = st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.text(max_size=2), min_size=1, max_size=2),
                   st.dictionaries(st.text(max_size=2), st.text(max_size=2), min_size=1, max_size=2))


@st.composite
def corruptions(draw, record: dict):
    """(description, file bytes) of a broken copy of ``record``."""
    rec = json.loads(json.dumps(record))
    kind = draw(st.sampled_from(["drop", "wrong-type", "result", "truncate", "not-json", "not-object"]))
    if kind == "drop":
        where = draw(st.sampled_from(["top", "result"]))
        key = draw(st.sampled_from(_IDENTITY + ["anchor_local_reward", "normalised_score", "result"]
                                   if where == "top" else _CHECKED_RESULT[:-1]))  # per-tier rates are optional
        (rec if where == "top" else rec["result"]).pop(key)
    elif kind == "wrong-type":
        where = draw(st.sampled_from(["top", "result"]))
        key = draw(st.sampled_from(_IDENTITY + ["anchor_cloud_reward"] if where == "top" else _CHECKED_RESULT))
        (rec if where == "top" else rec["result"])[key] = draw(_WRONG)
    elif kind == "result":
        rec["result"] = draw(st.sampled_from([{}, [], None, "x", 3]))
    elif kind == "truncate":
        text = json.dumps(rec).encode()
        return kind, text[: draw(st.integers(0, len(text) - 1))]
    elif kind == "not-json":
        return kind, draw(st.sampled_from([b"\xff\xfe\x00garbage", b"{'a': 1}", b"[" * 100_000, b"NaN NaN"]))
    else:
        return kind, json.dumps(draw(st.sampled_from([[rec], "text", 1.5, None]))).encode()
    return kind, json.dumps(rec).encode()


def test_a_real_shaped_record_is_valid(plan):
    assert record_problem(_valid_record(plan), plan.cells[0]) is None


@SETTINGS
@given(data=st.data())
def test_malformed_cell_files_count_as_missing_with_a_message(plan, tmp_path_factory, data):
    kind, blob = data.draw(corruptions(_valid_record(plan)))
    out = tmp_path_factory.mktemp("malformed")
    store = ResultStore(out)
    with store.lock():
        store.open(plan)
        path = store.cells_dir / f"{plan.cells[0].cell_id}.json"
        if kind in ("drop", "wrong-type", "result") and json.loads(blob) == _valid_record(plan):
            return  # the draw changed nothing (a wrong value equal to the right one)
        path.write_bytes(blob)
        done = store.open(plan)
    assert done == {}, kind
    assert len(store.problems) == 1 and f"cells/{path.name} is malformed" in store.problems[0]
    assert "runs again" in store.problems[0]
    assert path.read_bytes() == blob  # kept until the cell is recomputed


def test_resume_recomputes_a_malformed_cell_with_a_warning(plan, tmp_path):
    out = tmp_path / "resume"
    first = run_bench(plan, out, jobs=1, quiet=True)
    assert first.ran == 1
    path = next((out / "cells").glob("*.json"))
    rec = json.loads(path.read_text())
    rec["result"] = {}
    path.write_text(json.dumps(rec))
    with pytest.warns(MalformedCellWarning, match=r"result\.mean_reward is missing"):
        again = run_bench(plan, out, jobs=1, quiet=True)
    assert again.ran == 1 and again.resumed == 0 and not again.failed
    assert record_problem(json.loads(path.read_text()), plan.cells[0]) is None
    assert json.loads((out / "summary.json").read_text())["n_finished"] == 1


def test_the_command_reports_a_malformed_cell_in_one_line_and_recomputes_it(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["bench", "--scenario", TINY, "--agents", "always-local", "--seeds", "2", "--steps", "50",
            "--curve-points", "4", "--jobs", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    path = sorted((out / "cells").glob("*.json"))[0]
    path.write_text(path.read_text()[:100])  # truncated
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"warning: --out {out}: cells/{path.name} is malformed (unreadable: JSONDecodeError: "
                                + err.split("JSONDecodeError: ", 1)[1]], err
    assert err.endswith("treating the cell as missing, it runs again")
    assert json.loads(path.read_text())["result"]["mean_reward"] is not None


# ------------------------------------------------------------------------------------- --out checks
def _bench(out, *extra) -> list[str]:
    return ["bench", "--scenario", TINY, "--agents", "always-local", "--seeds", "1", "--steps", "50", "--jobs", "1",
            "--out", str(out), "--quiet", *extra]


_USER_FILES = st.lists(st.sampled_from(["scenario.toml", "fl.json", "results.csv", "notes.txt", "data",
                                        "trace.npz", "summary.json", ".hidden"]), min_size=1, max_size=3, unique=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=_USER_FILES, command=st.sampled_from(["bench", "fl"]))
def test_a_foreign_folder_is_refused_and_left_untouched(tmp_path_factory, capsys, names, command):
    out = tmp_path_factory.mktemp("foreign")
    for i, name in enumerate(names):
        if name == "data":
            (out / name).mkdir()
        else:
            (out / name).write_text(f"the user's own {name} {i}\n")
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in out.iterdir()}
    argv = _bench(out) if command == "bench" else ["fl", "--out", str(out), "--rounds", "1"]
    assert main(argv) == 2
    _one_line_error(capsys, f"--out {out}", "not empty", "choose a new or empty --out folder")
    assert {p.name: (p.read_bytes() if p.is_file() else None) for p in out.iterdir()} == before


def _bad_outs(tmp: Path) -> list[tuple[Path, str]]:
    a_file = tmp / "a-file.txt"
    a_file.write_text("mine\n")
    cases = [(a_file, "exists and is not a folder"), (a_file / "sub", "is not a folder")]
    if os.geteuid() == 0 and Path("/sys/kernel").is_dir():  # root passes os.access; creating a file fails
        cases += [(Path("/sys/idnbandit-test-out"), "cannot create it in /sys"),
                  (Path("/sys/kernel"), "the folder is not writable")]
    elif os.geteuid() != 0:
        ro = tmp / "read-only"
        ro.mkdir()
        ro.chmod(0o555)
        cases += [(ro, "the folder is not writable"), (ro / "new", "cannot create it in")]
    return cases


@pytest.mark.parametrize("command", ["bench", "fl"])
def test_unusable_out_paths_fail_in_one_line_before_any_work(tmp_path, capsys, monkeypatch, command):
    import idnbandit.fl.loop as fl_loop

    monkeypatch.setattr(fl_loop, "run_fl", lambda *a, **k: pytest.fail("training started"))
    for out, needle in _bad_outs(tmp_path):
        argv = _bench(out) if command == "bench" else ["fl", "--out", str(out), "--rounds", "1", "--quiet"]
        assert main(argv) == 2, out
        _one_line_error(capsys, f"--out {out}", needle)
    assert (tmp_path / "a-file.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("read-only")) == ["a-file.txt"]


def test_fl_out_accepts_new_empty_and_earlier_fl_folders(tmp_path):
    from idnbandit.bench.fl_cli import FL_FORMAT, check_fl_out

    assert check_fl_out(tmp_path / "new" / "deeper") is False
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    assert check_fl_out(tmp_path / "empty") is False
    for report in ({"format": FL_FORMAT, "config": {}}, {"config": {}, "history": [], "test_accuracy": {}}):
        d = tmp_path / f"earlier-{len(report)}"
        d.mkdir()
        (d / "fl.json").write_text(json.dumps(report))
        (d / "trace.npz").write_bytes(b"x")
        assert check_fl_out(d) is True
    d = tmp_path / "users-fl-json"
    d.mkdir()
    (d / "fl.json").write_text('{"my": "notes"}')
    with pytest.raises(ConfigError, match="holds no idnbandit fl output"):
        check_fl_out(d)


# ------------------------------------------------------------------------------------ temp files
def test_temp_files_of_live_writers_are_never_cleaned(plan, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        store = ResultStore(tmp_path / "out")
        with store.lock():
            store.open(plan)
            names = {"live": f".results.csv.{_HOST}-{sleeper.pid}.abcd1234.tmp",
                     "other-host": f".results.csv.elsewhere-{dead.pid}.abcd1234.tmp",
                     "mine": f".summary.json.{_HOST}-{os.getpid()}.abcd1234.tmp",
                     "dead": f".results.csv.{_HOST}-{dead.pid}.abcd1234.tmp",
                     "dead-cell": f"cells/.x.json.{_HOST}-{dead.pid}.00000000.tmp",
                     "not-ours": ".users-own.tmp"}
            for n in names.values():
                (store.root / n).write_text("partial")
            assert set(stale_temp_files(store.root)) == {store.root / names["dead"]}
            store.open(plan)
        left = {k for k, n in names.items() if (store.root / n).exists()}
        assert left == {"live", "other-host", "mine", "not-ours"}
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------------------------ permissions
def _open_mode(folder: Path) -> int:
    p = folder / "by-open"
    with open(p, "w") as fh:
        fh.write("x")
    mode = stat.S_IMODE(p.stat().st_mode)
    p.unlink()
    return mode


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(umask=st.integers(0, 0o777), binary=st.booleans())
def test_atomic_writes_get_the_mode_open_gives(tmp_path_factory, umask, binary):
    folder = tmp_path_factory.mktemp("umask")
    old = os.umask(umask)
    try:
        want = _open_mode(folder)
        p = folder / "f"
        atomic_write_bytes(p, b"x") if binary else atomic_write_text(p, "x")
        assert stat.S_IMODE(p.stat().st_mode) == want == 0o666 & ~umask
        p.chmod(0o640)  # an existing file keeps its mode, as open(path, "w") keeps it
        atomic_write_text(p, "y")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_text() == "y"
    finally:
        os.umask(old)
    assert not [q for q in folder.iterdir() if q.name.endswith(".tmp")]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_every_writer_gives_the_mode_open_gives(plan, tmp_path, umask):
    from idnbandit.agents.registry import make_agent
    from idnbandit.bench.report import write_report
    from idnbandit.fl import save_weights
    from idnbandit.scenario import dump_scenario, load_scenario
    from idnbandit.traces import Trace

    old = os.umask(umask)
    try:
        want = _open_mode(tmp_path)
        out = tmp_path / "bench"
        rec = _valid_record(plan)
        store = ResultStore(out)
        with store.lock():
            store.open(plan)
            store.write_cell(rec)
            records = {rec["cell_id"]: rec}
            store.write_csv(plan, records)
            from idnbandit.bench.summary import summarize

            summary = summarize(plan, records)
            store.write_summary(summary)
        write_report(summary, out)
        written = [out / "config.json", out / "results.csv", out / "summary.json", out / "report.txt",
                   out / "cells" / f"{rec['cell_id']}.json"]
        trace = Trace(np.full((2, 4, 3), 1 / 3, np.float32), np.array([0, 1, 2, 0]), ("a", "b"), {})
        written += [trace.save(tmp_path / "t.npz"), tmp_path / "t.json"]
        written.append(make_agent("epsilon-greedy", 2, 3, seed=0).save(tmp_path / "agent.npz"))
        written.append(save_weights(tmp_path / "w.npz", {"edge": {"w": np.ones(2, np.float32)}}))
        written.append(dump_scenario(load_scenario(TINY), tmp_path / "scen.toml"))
        for p in written:
            assert stat.S_IMODE(p.stat().st_mode) == want, (p.name, oct(p.stat().st_mode), oct(want))
    finally:
        os.umask(old)
