"""Whole runs: the README main-job command, kill + resume, Ctrl-C, and Ray vs local processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_helpers import cell_results, strip_timing

from idnbandit.cli import main

AGENTS = "always-local,always-cloud,random,fixed(option=1)"


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "idnbandit.cli", *args]


def _n_cells(out: Path) -> int:
    d = out / "cells"
    return len(list(d.glob("*.json"))) if d.is_dir() else 0


def _wait_cells(proc, out: Path, n: int, timeout: float = 180.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if _n_cells(out) >= n:
            break
        time.sleep(0.02)
    return _n_cells(out)


@pytest.mark.slow
def test_readme_main_job_command(tmp_path):
    from idnbandit.errors import TraceError
    from idnbandit.scenario import load_scenario

    try:
        load_scenario("idn-4tier")
    except TraceError as exc:  # pragma: no cover - only while the bundled trace is missing
        pytest.skip(f"idn-4tier cannot load its trace: {exc}")
    out = tmp_path / "results"
    t0 = time.perf_counter()
    proc = subprocess.run(_cmd("bench", "--scenario", "idn-4tier", "--agents",
                               "linucb,hedge-hi,always-local,always-cloud", "--seeds", "3", "--steps", "20000",
                               "--out", str(out)), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    wall = time.perf_counter() - t0
    print(f"README main-job command: {wall:.1f} s")
    assert proc.returncode == 0, proc.stderr
    for agent in ("linucb", "hedge-hi", "always-local", "always-cloud"):
        assert agent in proc.stdout
    assert "12/12 cells" in proc.stdout
    assert "regret vs" in proc.stdout and "oracle" in proc.stdout  # a two-line header
    with open(out / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 12


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a background job of a script inherits


@pytest.mark.slow
@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "sigint-ignored-at-start"])
def test_interrupt_kill_and_resume_give_the_uninterrupted_summary(tiny, tmp_path, sigint_ignored):
    args = ["bench", "--scenario", tiny, "--agents", AGENTS, "--seeds", "4", "--steps", "40000", "--quiet"]
    total = 16
    out = tmp_path / "interrupted"

    # 1. Ctrl-C: a clean stop that keeps the finished cells and writes their summary (also when the
    # process started with SIGINT ignored, as in a background job started from a script)
    proc = subprocess.Popen(_cmd(*args, "--out", str(out), "--jobs", "2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ignore_sigint if sigint_ignored else None)
    n1 = _wait_cells(proc, out, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "re-run the same command to resume" in err
    kept = _n_cells(out)
    assert n1 <= kept < total
    assert json.loads((out / "summary.json").read_text())["n_finished"] == kept
    if sigint_ignored:
        return  # the rest does not depend on how SIGINT was set up

    # 2. a hard kill of the whole process group in the middle of the resumed run
    proc = subprocess.Popen(_cmd(*args, "--out", str(out), "--jobs", "2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    _wait_cells(proc, out, kept + 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = _n_cells(out)
    assert kept <= killed_at < total, "the run finished before it could be killed; raise --steps"

    # 3. resume to the end, in-process
    assert main([*args, "--out", str(out), "--jobs", "1"]) == 0
    assert _n_cells(out) == total
    assert not list(out.rglob(".*.tmp"))
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == total and len({r["cell_id"] for r in rows}) == total

    # the same as one uninterrupted run
    ref = tmp_path / "reference"
    assert main([*args, "--out", str(ref), "--jobs", "1"]) == 0
    assert strip_timing(json.loads((out / "summary.json").read_text())) == \
        strip_timing(json.loads((ref / "summary.json").read_text()))
    assert cell_results(out) == cell_results(ref)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_backend_matches_local_processes(tiny, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    args = ["bench", "--scenario", tiny, "--agents", "always-local,random,fixed(option=1)",
            "--seeds", "2", "--steps", "3000", "--quiet"]
    local = tmp_path / "local"
    assert main([*args, "--out", str(local), "--jobs", "2"]) == 0  # two worker processes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = tmp_path / "ray"
        assert main([*args, "--out", str(on_ray), "--backend", "ray"]) == 0
    finally:
        ray.shutdown()
    assert cell_results(on_ray) == cell_results(local)
    assert strip_timing(json.loads((on_ray / "summary.json").read_text())) == \
        strip_timing(json.loads((local / "summary.json").read_text()))
