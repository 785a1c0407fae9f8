"""In-process tests of ``idnbandit bench`` / ``idnbandit agents`` with tiny budgets."""

from __future__ import annotations

import csv
import json

import pytest
from bench_helpers import cell_results, strip_timing

from idnbandit.cli import main

AGENTS = "always-local,always-cloud,random,fixed(option=1)"


def _bench(tiny, out, *extra, agents=AGENTS, seeds="2", steps="400"):
    return main(["bench", "--scenario", tiny, "--agents", agents, "--seeds", seeds, "--steps", steps,
                 "--out", str(out), "--jobs", "1", *extra])


def test_agents_lists_one_line_per_agent(capsys):
    assert main(["agents"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [ln.split()[0] for ln in lines]
    assert {"always-local", "always-cloud", "random", "linucb", "hedge-hi"} <= set(names)
    assert names == sorted(names) and all(len(ln.split()) > 1 for ln in lines)


def test_bench_writes_results_table_and_resumes(tiny, tmp_path, capsys):
    out = tmp_path / "res"
    assert _bench(tiny, out) == 0
    text = capsys.readouterr().out
    assert "tiny-2tier" in text and "fixed(option=1)" in text and "norm. score" in text
    assert "8/8 cells" in text

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seeds"] == [0, 1] and cfg["steps"] == 400
    assert [a["spec"] for a in cfg["agents"]] == AGENTS.split(",")
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and len({r["cell_id"] for r in rows}) == 8
    assert [r["agent"] for r in rows[:2]] == ["always-local", "always-local"]
    summary = json.loads((out / "summary.json").read_text())
    rows_s = summary["scenarios"]["tiny-2tier"]
    local, cloud = rows_s["always-local"]["metrics"], rows_s["always-cloud"]["metrics"]
    assert local["forward_rate"]["mean"] == 0.0 and cloud["forward_rate"]["mean"] == 1.0
    # the anchors: always-local and always-cloud sit exactly at the two ends of the score
    assert {local["normalised_score"]["mean"], cloud["normalised_score"]["mean"]} == {0.0, 1.0}
    assert local["mean_reward"]["n"] == 2 and local["mean_reward"]["ci95"] is not None
    # a fixed agent's own option is its anchor: its counterfactual reward is what it obtained
    for r in rows:
        if r["agent"] in ("always-local", "always-cloud"):
            anchor = r["anchor_local_reward"] if r["agent"] == "always-local" else r["anchor_cloud_reward"]
            assert float(anchor) == pytest.approx(float(r["mean_reward"]), rel=1e-12)
    # the run seed drives the request stream: with a learner-free row the accuracy anchors agree
    assert rows[0]["seed"] == "0" and rows[1]["seed"] == "1" and rows[0]["mean_reward"] != rows[1]["mean_reward"]

    before = cell_results(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert _bench(tiny, out) == 0  # same command: everything is resumed
    assert "(0 run now, 8 resumed)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == mtimes
    assert cell_results(out) == before
    assert strip_timing(json.loads((out / "summary.json").read_text())) == strip_timing(summary)


def test_bench_refuses_a_different_configuration(tiny, tmp_path, capsys):
    out = tmp_path / "res"
    assert _bench(tiny, out, agents="always-local", seeds="1", steps="200") == 0
    capsys.readouterr()
    snapshot = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert _bench(tiny, out, agents="always-local", seeds="1", steps="300") == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "steps 200 there, 300 now" in err and "--out" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) == snapshot


def test_agents_file_and_seed_list(tiny, tmp_path, capsys):
    f = tmp_path / "agents.toml"
    f.write_text('[agents]\nlocal = "always-local"\n[agents.thr]\nname = "fixed"\noption = -1\n')
    out = tmp_path / "res"
    rc = main(["bench", "--scenario", tiny, "--agents-file", str(f), "--seed-list", "3,7", "--steps", "200",
               "--out", str(out), "--jobs", "1", "--quiet"])
    assert rc == 0 and capsys.readouterr().out == ""
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["scenarios"]["tiny-2tier"]) == ["local", "thr"]
    assert summary["scenarios"]["tiny-2tier"]["thr"]["spec"] == "fixed(option=-1)"
    assert summary["scenarios"]["tiny-2tier"]["thr"]["seeds"] == [3, 7]
    assert sorted(p.name for p in (out / "cells").iterdir()) == [
        "tiny-2tier__local__s3.json", "tiny-2tier__local__s7.json", "tiny-2tier__thr__s3.json",
        "tiny-2tier__thr__s7.json"]


@pytest.mark.parametrize("args, msg", [
    (["--agents", "linucbb"], "did you mean 'linucb'"),
    (["--agents", "linucb(alpha=0.5"], "unclosed"),
    (["--agents", "linucb(alpah=0.5)"], "unknown parameter 'alpah'; did you mean 'alpha'"),
    (["--agents", "fixed(option=5)"], "option: 5 is not allowed"),
    (["--agents", "linucb(alpha=)"], "cannot parse"),
    (["--scenario", "idn-4tir"], "did you mean 'idn-4tier'"),
    (["--scenario", "missing.toml"], "file not found"),
    (["--seeds", "0"], "--seeds: 0"),
    (["--seeds", "-3"], "--seeds: -3"),
    (["--seed-list", "1,-2"], "seeds must be >= 0"),
    (["--seed-list", "1,1"], "duplicates"),
    (["--steps", "0"], "--steps: 0"),
    (["--steps", "-5"], "--steps: -5"),
    (["--jobs", "0"], "--jobs: 0"),
    (["--address", "auto"], "only meaningful with --backend ray"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tiny, tmp_path, capsys, args, msg):
    out = tmp_path / "res"
    base = {"--scenario": tiny, "--agents": "always-local", "--seeds": "1", "--steps": "100"}
    argv = ["bench", "--out", str(out), "--jobs", "1"]
    for k, v in base.items():
        if k not in args and not (k == "--seeds" and "--seed-list" in args):
            argv += [k, v]
    assert main(argv + args) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_unwritable_or_foreign_output_folder(tiny, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out, msg in ((blocker / "res", "is not a folder"), (blocker, "exists and is not a folder")):
        assert _bench(tiny, out, agents="always-local", seeds="1", steps="100") == 2
        assert msg in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert _bench(tiny, foreign, agents="always-local", seeds="1", steps="100") == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert blocker.read_text() == "x"


def test_plots_are_written(tiny, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "res"
    assert _bench(tiny, out, "--plots", "--quiet", agents="always-local,always-cloud,random", steps="600") == 0
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == ["tiny-2tier-accuracy-latency.png", "tiny-2tier-latency-cdf.png", "tiny-2tier-regret.png"]
    for p in (out / "plots").iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_a_failing_cell_does_not_stop_the_others(tiny, tmp_path, capsys):
    from idnbandit.agents.base import Agent
    from idnbandit.agents.registry import _REGISTRY, register

    @register("bench-test-crash", "test only: fails on its first decision")
    class Crash(Agent):
        def act(self, context):
            raise RuntimeError("boom")

        def update(self, context, action, reward, *, rewards=None):
            return self

    try:
        out = tmp_path / "res"
        assert _bench(tiny, out, agents="always-local,bench-test-crash", seeds="1", steps="100") == 1
        io = capsys.readouterr()
        assert "cell tiny-2tier__bench-test-crash__s0 failed: RuntimeError: boom" in io.err
        assert sorted(p.name for p in (out / "cells").iterdir()) == ["tiny-2tier__always-local__s0.json"]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["n_finished"] == 1 and list(summary["scenarios"]["tiny-2tier"]) == ["always-local"]
    finally:
        _REGISTRY.pop("bench-test-crash", None)


def test_progress_bar_on_a_terminal(tiny, tmp_path):
    import io

    from rich.console import Console

    from idnbandit.bench import agents_from_cli, make_plan, run_bench

    buf = io.StringIO()
    plan = make_plan([tiny], agents_from_cli("always-local,random"), [0, 1], 300)
    outcome = run_bench(plan, tmp_path / "res", jobs=1, console=Console(file=buf, force_terminal=True, width=100))
    text = buf.getvalue()
    assert outcome.ran == 4 and not outcome.failed and not outcome.interrupted
    assert "cells" in text and "requests" in text and "4/4" in text and "1200/1200" in text
