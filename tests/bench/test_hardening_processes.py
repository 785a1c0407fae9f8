"""Hardening class 6: processes.

Workers (and multiprocessing's resource tracker) die with a ``kill -9``-ed bench; Ctrl-C stops a
bench started with SIGINT ignored (a background job of a script); ``--backend ray`` with an
unusable cluster fails in one line before anything is written; ``run_bench`` from the unguarded
top-level code of a script raises a clear error instead of failing every cell.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.bench import agents_from_cli, make_plan, run_bench
from idnbandit.bench._workers import _guarded, worker_pool
from idnbandit.cli import main
from idnbandit.errors import ConfigError

TINY = str(Path(__file__).parent / "data" / "tiny-2tier.toml")
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _session(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of session ``sid``: pid -> command line."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in "ZX":
            found[int(d)] = cmd
    return found


def _long_bench(out: Path, **popen) -> subprocess.Popen:
    """A bench whose two cells take far longer than the test waits (it is stopped early)."""
    cmd = [sys.executable, "-m", "idnbandit.cli", "bench", "--scenario", TINY, "--agents", "always-local,random",
           "--seeds", "1", "--steps", "50000000", "--curve-points", "4", "--jobs", "2", "--out", str(out), "--quiet"]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def _wait_workers(proc: subprocess.Popen, n: int = 2, timeout: float = 120.0) -> dict[int, str]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        procs = _session(proc.pid)
        if sum("spawn_main" in c for c in procs.values()) >= n:
            return procs
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {n} workers after {timeout} s")


def _gone_within(sid: int, seconds: float) -> float:
    t0 = time.monotonic()
    while _session(sid):
        assert time.monotonic() - t0 < seconds, f"still alive after {seconds} s: {_session(sid)}"
        time.sleep(0.05)
    return time.monotonic() - t0


@linux_only
@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["workers-starting", "workers-running"])
def test_kill_9_of_the_parent_takes_workers_and_resource_tracker_along(tmp_path, delay):
    proc = _long_bench(tmp_path / "out")
    try:
        procs = _wait_workers(proc)
        time.sleep(delay)
        assert any("resource_tracker" in c for c in procs.values()), procs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        took = _gone_within(proc.pid, 5.0)
        print(f"kill -9 ({delay} s after the workers appeared): all gone {took:.2f} s later")
    finally:
        for pid in _session(proc.pid):  # pragma: no cover - only when the test failed
            os.kill(pid, signal.SIGKILL)


@linux_only
def test_ctrl_c_stops_a_bench_started_with_sigint_ignored(tmp_path):
    out = tmp_path / "out"
    proc = _long_bench(out, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        _wait_workers(proc)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "re-run the same command to resume" in err
        assert json.loads((out / "summary.json").read_text())["n_cells"] == 2
        _gone_within(proc.pid, 5.0)
    finally:
        for pid in _session(proc.pid):  # pragma: no cover
            os.kill(pid, signal.SIGKILL)


def test_sigint_disposition_is_restored_after_run_bench(tmp_path):
    plan = make_plan([TINY], agents_from_cli("always-local"), seeds=[0], steps=50, curve_points=4)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run_bench(plan, tmp_path / "out", jobs=1, quiet=True)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


# ------------------------------------------------------------------------------------ worker pool
def _crashy(cell, scenario, fingerprint, curve_points, progress=None):
    """A stand-in for run_cell: reports progress, dies on cell "die", raises on cell "bad"."""
    progress(1)
    if cell.cell_id == "die":
        os._exit(3)
    if cell.cell_id == "bad":
        raise ValueError("bad input: 1 is not allowed")
    return {"cell_id": cell.cell_id, "scenario": scenario}


def test_a_worker_that_dies_fails_its_cell_only():
    cells = [types.SimpleNamespace(cell_id=c) for c in ("a", "die", "bad", "b", "c")]
    seen = []
    events = list(worker_pool([(c, "fp", "S") for c in cells], 2, _crashy, 4, lambda cid, n: seen.append(cid)))
    by_id = {c.cell_id: (rec, exc) for c, rec, exc in events}
    assert sorted(by_id) == ["a", "b", "bad", "c", "die"]
    assert [by_id[k][0] for k in "abc"] == [{"cell_id": k, "scenario": "S"} for k in "abc"]
    assert by_id["die"][1].type_name == "WorkerDied" and "exit code 3" in str(by_id["die"][1])
    assert by_id["bad"][1].type_name == "ValueError" and "1 is not allowed" in str(by_id["bad"][1])
    assert set(seen) == {"a", "die", "bad", "b", "c"}


def test_the_pool_uses_no_private_executor_state():
    import idnbandit.bench._workers as w
    import idnbandit.bench.runner as r

    for mod in (w, r):
        src = Path(mod.__file__).read_text()
        assert "_processes" not in src.replace("def _processes", "").replace("= _processes", "")
        assert "ProcessPoolExecutor" not in src


# ---------------------------------------------------------------------------------- __main__ guard
def _script(tmp_path: Path, body: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).replace("TINY", repr(TINY)))
    return path


def test_run_bench_in_an_unguarded_script_raises_before_any_work(tmp_path):
    path = _script(tmp_path, """
        from idnbandit.bench import agents_from_cli, make_plan, run_bench

        plan = make_plan([TINY], agents_from_cli("always-local,random"), seeds=[0], steps=50)
        outcome = run_bench(plan, "out", jobs=2, quiet=True)
        print("returned", len(outcome.failed))
    """)
    res = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "returned" not in res.stdout
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("idnbandit.errors.ConfigError: run_bench: called by the top-level code of"), res.stderr
    assert "(line 5)" in last and '`if __name__ == "__main__":`' in last
    assert not (tmp_path / "out").exists()


def test_workers_that_re_run_an_unguarded_script_stop_the_run_with_the_same_advice(tmp_path):
    """When the parent cannot see the script (here: its check is switched off), each worker's bootstrap
    refuses to start a run, and the parent stops instead of failing every cell."""
    path = _script(tmp_path, """
        import idnbandit.bench.runner as runner
        from idnbandit.bench import agents_from_cli, make_plan, run_bench

        runner.check_main_guard = lambda what: None
        plan = make_plan([TINY], agents_from_cli("always-local,random"), seeds=[0, 1], steps=50)
        outcome = run_bench(plan, "out", jobs=2, quiet=True)
        print("returned", len(outcome.failed))
    """)
    res = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "returned" not in res.stdout
    assert "called while a worker process starts" in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("idnbandit.errors.ConfigError: --jobs: the worker processes exit as they start"), last
    assert not list((tmp_path / "out" / "cells").glob("*.json"))


_GUARDED = [
    'if __name__ == "__main__":\n    CALL\n',
    "if __name__ == '__main__':\n    x = 1\n    CALL\n",
    'if "__main__" == __name__:\n    for i in range(2):\n        CALL\n',
    'def main():\n    pass\n\nif __name__ == "__main__":\n    try:\n        CALL\n    finally:\n        pass\n',
]
_UNGUARDED = [
    "CALL\n",
    "x = 1\nCALL\n",
    'if True:\n    CALL\n',
    'for i in range(2):\n    CALL\n',
    'if __name__ == "__main__":\n    pass\nCALL\n',
    'try:\n    CALL\nexcept ValueError:\n    pass\n',
    'with open("f") as fh:\n    CALL\n',
]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(template=st.sampled_from(_GUARDED + _UNGUARDED), before=st.integers(0, 3),
       call=st.sampled_from(["run_bench(plan, 'out')", "main()", "outcome = run_bench(\n        plan, 'o')"]))
def test_guard_detection_on_generated_scripts(template, before, call):
    src = "import os\n" * before + template
    indent = next(line[: len(line) - len(line.lstrip())] for line in src.splitlines() if "CALL" in line)
    src = src.replace("CALL", call.replace("\n", "\n" + indent))
    lines = src.splitlines()
    lineno = next(i for i, line in enumerate(lines, 1) if line.strip().startswith(call.split("\n")[0]))
    tree = ast.parse(src)
    assert _guarded(tree, lineno) is (template in _GUARDED)
    if "\n" in call:  # a frame's line may be the last line of a multi-line call
        assert _guarded(tree, lineno + 1) is (template in _GUARDED)


# ------------------------------------------------------------------------------------------- ray
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bench(out: Path, address: str) -> list[str]:
    return ["bench", "--scenario", TINY, "--agents", "always-local", "--seeds", "1", "--steps", "50",
            "--out", str(out), "--quiet", "--backend", "ray", "--address", address]


def test_ray_unreachable_address_fails_fast_in_one_line_before_writing(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    t0 = time.monotonic()
    assert main(_ray_bench(out, f"127.0.0.1:{_closed_port()}")) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--address: 127.0.0.1:" in err and "is not reachable" in err, err
    assert not out.exists()


class _FakeRay(types.ModuleType):
    """A ``ray`` whose init fails as joining a cluster with another authentication mode does."""

    def __init__(self, out: Path):
        super().__init__("ray")
        self.out = out
        self.calls = []

    def is_initialized(self):
        return False

    def init(self, **kw):
        self.calls.append(("init", kw, self.out.exists()))
        os.write(2, b"[W rpc_client.h] a Ray warning, as Ray's C++ core prints them\n")
        raise RuntimeError("Authentication mode mismatch: the cluster requires token auth\nlong details ...")

    def shutdown(self):
        self.calls.append(("shutdown",))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(address=st.sampled_from(["auto", "LISTEN", "ray://LISTEN"]))
def test_ray_init_errors_become_one_line_before_anything_is_written(tmp_path_factory, capfd, address):
    out = tmp_path_factory.mktemp("ray") / "out"
    fake = _FakeRay(out)
    with socket.socket() as server:  # a reachable address, so that ray.init is called
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = address.replace("LISTEN", f"127.0.0.1:{server.getsockname()[1]}")
        saved = sys.modules.get("ray")
        sys.modules["ray"] = fake
        try:
            capfd.readouterr()
            assert main(_ray_bench(out, address)) == 2
        finally:
            if saved is None:
                sys.modules.pop("ray", None)
            else:
                sys.modules["ray"] = saved
    err = capfd.readouterr().err.strip()
    assert err.splitlines() == [f"idnbandit bench: error: --address {address}: Ray could not connect (RuntimeError: "
                                "Authentication mode mismatch: the cluster requires token auth)"], err
    assert fake.calls[0][0] == "init" and fake.calls[0][2] is False  # joined before the folder existed
    assert not out.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(address=st.one_of(
    st.sampled_from(["host:port", ":", "a:99999", "a:0", "ray://", "x:-1", "[::1]:abc"]),
    st.from_regex(r"[a-z]{1,5}:[a-z]{1,4}", fullmatch=True)))
def test_malformed_ray_addresses_are_refused_by_name(address):
    from idnbandit.bench.runner import _probe_address

    with pytest.raises(ConfigError, match=r"--address: .* is not allowed; it must be host:port"):
        _probe_address(address, 0.5)
