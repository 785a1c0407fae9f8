"""`idnbandit bench --log` then `idnbandit ope`: logs from the benchmark, evaluated from the command line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from idnbandit.cli import main
from idnbandit.ope import read_log

pytest.importorskip("pyarrow")


def _bench_with_logs(out, agents="epsilon-greedy,linucb"):
    return main(["bench", "--scenario", "idn-4tier", "--agents", agents, "--seeds", "1", "--steps", "3000",
                 "--out", str(out), "--log", "--jobs", "1", "--quiet"])


@pytest.fixture(scope="module")
def bench_logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert _bench_with_logs(out) == 0
    return out


def test_bench_writes_one_log_per_cell_that_reads_back_the_run(bench_logs):
    logs = sorted((bench_logs / "logs").glob("*.parquet"))
    assert len(logs) == 2
    with open(bench_logs / "results.csv") as fh:
        results = {row["agent"]: float(row["mean_reward"]) for row in csv.DictReader(fh)}
    for path in logs:
        log = read_log(path)
        agent = "epsilon-greedy" if "epsilon" in path.name else "linucb"
        assert log.n_rows == 3000 and log.meta.scenario == "idn-4tier"
        assert log.reward.mean() == pytest.approx(results[agent], rel=1e-9)  # the same rewards as the run
        assert (log.propensity == 1.0).all() == (agent == "linucb")


def test_ope_command_prints_and_writes_estimates(bench_logs, tmp_path, capsys):
    log = next((bench_logs / "logs").glob("*epsilon*.parquet"))
    out = tmp_path / "ope"
    rc = main(["ope", "--log", str(log), "--policies", "linucb, always-local, static-threshold", "--out", str(out),
               "--n-boot", "50"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "always-local" in text and "replay" in text and "95% CI" in text
    rows = list(csv.DictReader(open(out / "ope.csv")))
    est = {(r["policy"], r["estimator"]): r for r in rows}
    assert ("linucb", "replay") in est and ("always-local", "dr") in est
    assert ("always-local", "replay") not in est  # a fixed rule has nothing to learn
    report = json.loads((out / "ope.json").read_text())
    assert report["meta"]["scenario"] == "idn-4tier" and len(report["rows"]) == len(rows)
    # the always-local value is known exactly on this log: the simulation-only columns hold it
    truth = read_log(log).sim_rewards[:, 0].mean()
    dr = float(est[("always-local", "dr")]["value"])
    assert abs(dr - truth) < 0.02
    # a second run into the same folder (an ope output) is allowed and replaces the files
    assert main(["ope", "--log", str(log), "--policies", "always-local", "--out", str(out), "--n-boot", "0"]) == 0


def test_ope_command_saves_the_agents_it_trained(bench_logs, tmp_path):
    from idnbandit.agents import Agent

    log = next((bench_logs / "logs").glob("*epsilon*.parquet"))
    out = tmp_path / "ope"
    assert main(["ope", "--log", str(log), "--policies", "linucb(alpha=0.3),always-local", "--out", str(out),
                 "--n-boot", "0", "--save-agents"]) == 0
    saved = list((out / "agents").glob("*.npz"))
    assert len(saved) == 1  # the learner, not the fixed rule
    agent = Agent.load(saved[0])
    assert type(agent).__name__ == "LinUCB" and agent.alpha == 0.3
    # warmed up: its statistics hold the replayed rows (an untrained LinUCB's are the ridge prior)
    fresh = type(agent)(agent.n_actions, agent.n_features, alpha=0.3)
    learned, prior = agent._state_arrays(), fresh._state_arrays()
    assert any(not np.array_equal(learned[k], prior[k]) for k in learned)


@pytest.mark.parametrize("argv, message", [
    (["--policies", "river-ucb"], "cannot report"),
    (["--policies", "linucbb"], "did you mean 'linucb'"),
    (["--n-boot", "-1"], "--n-boot: -1 is not allowed"),
    (["--estimators", "ipw"], "did you mean 'ips'"),
    (["--log", "missing.parquet"], "no such log file"),
])
def test_ope_command_refuses_bad_input_before_writing(bench_logs, tmp_path, capsys, argv, message):
    log = str(next((bench_logs / "logs").glob("*linucb*.parquet")))
    args = {"--log": log, "--policies": "always-local", "--out": str(tmp_path / "o")}
    for k, v in zip(argv[::2], argv[1::2]):
        args[k] = v
    rc = main(["ope", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_ope_command_keeps_a_foreign_folder(bench_logs, tmp_path, capsys):
    log = str(next((bench_logs / "logs").glob("*linucb*.parquet")))
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["ope", "--log", log, "--policies", "always-local", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "mine.txt").read_text() == "keep"


def test_bench_log_refuses_agents_without_propensities_before_any_work(tmp_path, capsys):
    assert _bench_with_logs(tmp_path / "b", agents="river-ucb") == 2
    assert "cannot report the probability" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_hand_written_csv_log_is_evaluated(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["request,time_s,origin,x_0,x_1,action,propensity,observed,reward"]
    for i in range(400):
        x0 = rng.uniform()
        a = int(rng.integers(2))
        r = float(a == (x0 > 0.5))
        lines.append(f"{i},{i * 0.1},0,{x0},1,{a},0.5,1,{r}")
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n")
    rc = main(["ope", "--log", str(tmp_path / "mine.csv"), "--n-options", "2", "--policies", "always-local",
               "--out", str(tmp_path / "o"), "--n-boot", "20"])
    assert rc == 0
    rows = {r["estimator"]: float(r["value"]) for r in csv.DictReader(open(tmp_path / "o" / "ope.csv"))
            if r["policy"] == "always-local"}
    assert rows["ips"] == pytest.approx(0.5, abs=0.1)
