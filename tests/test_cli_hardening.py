"""Hardening of the command line (issue 17, class 7 "CLI polish" and the CLI size bounds of class 4).

* a closed stdout (``idnbandit scenarios | head -1``) ends quietly with exit 141, no traceback;
* an unknown agent name lists every known name, ``ens-*`` strategies included, and suggests close ones;
* count flags (``--seeds``, ``--seed-list``, ``--steps``, ``--curve-points``, ``--jobs``, the ``fl`` counts)
  are bounded and checked before anything is built or written: exit 2, one line naming the flag and
  the limit; usage errors of argparse are one line too;
* the results tables fit 80- and 100-column terminals without truncating a number; ``report.txt``
  holds the full table; decisions/s is the median over seeds, which a slow first cell cannot move.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.bench.plan import MAX_CURVE_POINTS, MAX_SEEDS, MAX_STEPS
from idnbandit.cli import EXIT_BROKEN_PIPE, main

HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TINY = os.path.join(os.path.dirname(__file__), "bench", "data", "tiny-2tier.toml")


def _fails_cleanly(capsys, argv, out_dir, *needles) -> str:
    """``main(argv)`` exits 2 with one stderr line holding every needle, and ``out_dir`` is not created."""
    capsys.readouterr()
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not os.path.exists(out_dir)
    assert cap.out == ""
    return lines[0]


# ------------------------------------------------------------------------------------------ broken pipe
@pytest.mark.parametrize("command", [["scenarios"], ["agents"]])
def test_closed_stdout_exits_141_quietly(command):
    code = f"import sys; from idnbandit.cli import main; sys.exit(main({command!r}))"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before anything is written: every write fails with EPIPE
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == EXIT_BROKEN_PIPE == 141
    assert err == ""


def test_broken_pipe_in_process(monkeypatch):
    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["scenarios"]) == EXIT_BROKEN_PIPE


# ------------------------------------------------------------------------------------------ agent names
@pytest.mark.parametrize(("name", "suggested"), [("ens-sq", "'ens-seq'"), ("ens-vote", "'ens-vote-all'"),
                                                  ("linucbb", "'linucb'"), ("ens_cucb", "'ens-cucb'")])
def test_unknown_agent_lists_ens_strategies_and_suggests(capsys, tmp_path, name, suggested):
    out = tmp_path / "res"
    line = _fails_cleanly(capsys, ["bench", "--agents", name, "--out", str(out)], out, f"unknown agent {name!r}",
                          "did you mean", suggested, "known: ", "ens-cucb", "ens-seq-learned", "linucb", "dqn")
    assert line.startswith("idnbandit bench: error: ")


def test_unknown_agent_without_close_match_lists_all(capsys, tmp_path):
    out = tmp_path / "res"
    line = _fails_cleanly(capsys, ["bench", "--agents", "zzqqxx", "--out", str(out)], out, "known: ", "ens-single")
    assert "did you mean" not in line


def test_agents_command_lists_ens_strategies(capsys):
    assert main(["agents"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert {"ens-seq", "ens-cucb", "ens-single", "linucb"} <= set(names) and names == sorted(names)


# ------------------------------------------------------------------------------------------ count bounds
BENCH_BOUNDS = {"--seeds": (1, MAX_SEEDS), "--steps": (1, MAX_STEPS), "--curve-points": (2, MAX_CURVE_POINTS),
                "--jobs": (1, 1024)}
FL_BOUNDS = {"--rounds": (1, 10_000), "--alternations": (1, 10_000), "--local-epochs": (1, 10_000),
             "--policy-steps": (1, 10**12), "--routing-steps": (1, 10**12), "--eval-steps": (0, 10**12),
             "--threads": (1, 1024), "--seed": (0, 2**63 - 1)}


def _out_of(lo: int, hi: int):
    return st.one_of(st.integers(max_value=lo - 1, min_value=-(10**30)), st.integers(min_value=hi + 1,
                                                                                      max_value=10**30),
                     st.sampled_from([lo - 1, hi + 1, 10**20, 99999999999999999999, -1]))


@HYP
@given(data=st.data())
def test_bench_count_flags_out_of_range(capsys, tmp_path, data):
    flag = data.draw(st.sampled_from(sorted(BENCH_BOUNDS)))
    lo, hi = BENCH_BOUNDS[flag]
    value = data.draw(_out_of(lo, hi).filter(lambda v: v < lo or v > hi))
    out = tmp_path / "res"
    t0 = time.perf_counter()
    _fails_cleanly(capsys, ["bench", "--scenario", TINY, "--agents", "always-local", flag, str(value),
                            "--out", str(out)], out, f"{flag}: {value}", str(hi), str(lo))
    assert time.perf_counter() - t0 < 5  # nothing was built from the value


@HYP
@given(data=st.data())
def test_fl_count_flags_out_of_range(capsys, tmp_path, data):
    flag = data.draw(st.sampled_from(sorted(FL_BOUNDS)))
    lo, hi = FL_BOUNDS[flag]
    value = data.draw(_out_of(lo, hi).filter(lambda v: v < lo or v > hi))
    out = tmp_path / "fl"
    _fails_cleanly(capsys, ["fl", flag, str(value), "--out", str(out)], out, f"{flag}: {value}", str(hi))


@HYP
@given(flag=st.sampled_from(sorted(BENCH_BOUNDS) + ["--rounds"]),
       value=st.sampled_from(["abc", "1.5", "", "1e9", "0x10", "--", "٣x", "nan"]))
def test_non_integer_counts_are_one_line_usage_errors(capsys, tmp_path, flag, value):
    out = tmp_path / "res"
    cmd = "fl" if flag == "--rounds" else "bench"
    capsys.readouterr()
    assert main([cmd, f"{flag}={value}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"idnbandit {cmd}: error: ") and flag in err[0]
    assert not out.exists()


@HYP
@given(items=st.lists(st.one_of(
    st.integers(min_value=-(10**25), max_value=-1).map(str),
    st.integers(min_value=2**63, max_value=10**40).map(str),
    st.sampled_from(["a", "1.5", "", " ", "3-1", "-", "1-", "2--3", "0-" + "9" * 40, "1e3"]),
), min_size=1, max_size=4), good=st.lists(st.integers(0, 50).map(str), max_size=3))
def test_bad_seed_list_items(capsys, tmp_path, items, good):
    out = tmp_path / "res"
    _fails_cleanly(capsys, ["bench", "--scenario", TINY, "--seed-list", ",".join(good + items), "--out", str(out)],
                   out, "--seed-list")


@pytest.mark.parametrize("text", ["0-99999999", "0-9223372036854775807", "0-5000,5001-10000", ",".join(["1"] * 20000),
                                  "0-9999,20000"])
def test_seed_list_ranges_are_counted_before_they_are_built(capsys, tmp_path, text):
    out = tmp_path / "res"
    t0 = time.perf_counter()
    _fails_cleanly(capsys, ["bench", "--seed-list", text, "--out", str(out)], out, "--seed-list", str(MAX_SEEDS))
    assert time.perf_counter() - t0 < 2


def test_seed_list_ranges_expand(tmp_path):
    import argparse

    from idnbandit.bench.cli import add_bench

    sub = argparse.ArgumentParser().add_subparsers()
    args = add_bench(sub).parse_args(["--seed-list", "3, 7-9,0", "--out", str(tmp_path)])
    from idnbandit.bench.cli import _seeds

    assert _seeds(args) == [3, 7, 8, 9, 0]


def test_too_many_cells(capsys, tmp_path):
    out = tmp_path / "res"
    agents = "always-local,always-cloud,random,linucb,lints,hedge-hi,exp3,exp4,epsilon-greedy,oracle,fixed"
    _fails_cleanly(capsys, ["bench", "--scenario", TINY, "--agents", agents, "--seeds", str(MAX_SEEDS),
                            "--out", str(out)], out, "cells:", "100000")


def test_duplicate_seed_message_is_short(capsys, tmp_path):
    out = tmp_path / "res"
    line = _fails_cleanly(capsys, ["bench", "--scenario", TINY, "--seed-list", "0-9998,17", "--out", str(out)],
                          out, "seeds: 17", "more than once")
    assert len(line) < 200


def test_unknown_flag_suggests_the_subcommands_flag(capsys):
    assert main(["bench", "--seedz", "3", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seedz" in err[0] and "did you mean --seeds?" in err[0]


# ------------------------------------------------------------------------------------------ tables
def _summary(labels: list[str], big: bool = False) -> dict:
    """A summary as :func:`idnbandit.bench.summarize` writes it, with wide numbers when ``big``."""
    from idnbandit.bench.report import COLUMNS

    rows = {}
    for i, label in enumerate(labels):
        metrics = {}
        for j, (key, _, _) in enumerate(COLUMNS):
            mean = (123456.789 if big else 0.5) * (1 + 0.1 * i) * (-1) ** j
            metrics[key] = {"mean": mean, "ci95": abs(mean) / 7, "n": 5}
        rows[label] = {"spec": label, "seeds": [0, 1, 2, 3, 4], "metrics": metrics,
                       "timing": {"decisions_per_s": {"mean": 7.3e5, "ci95": 1.1e6, "n": 5, "median": 1.19e6 + i,
                                                      "min": 2e3, "max": 1.3e6}}}
    return {"config": {"steps": 100000}, "scenarios": {"idn-4tier": rows, "hi-two-tier": dict(rows)}}


LABELS = ["linucb", "always-cloud", "sw-linucb(window=1000)", "hedge-hi(eta=0.5,restart=true,window=20000)",
          "ens-seq(threshold=0.9,aggregator='confidence')"]


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("big", [False, True])
def test_tables_fit_the_terminal_and_truncate_nothing(width, big):
    from rich.cells import cell_len
    from rich.console import Console

    from idnbandit.bench.report import print_report, report_columns

    summary = _summary(LABELS, big)
    buf = io.StringIO()
    print_report(summary, Console(file=buf, width=width, color_system=None, force_terminal=False))
    text = buf.getvalue()
    assert max(cell_len(ln) for ln in text.splitlines()) <= width
    assert "…" not in text and "0.…" not in text
    for rows in summary["scenarios"].values():
        for _, cells in report_columns(rows):
            for c in cells:
                assert c in text, c  # every number is printed whole
    # labels may wrap inside their column (folded, never cut): the column's fragments spell them
    agent_column = "".join(ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│"))
    for label in LABELS:
        assert label in agent_column


@settings(max_examples=30, deadline=None)
@given(width=st.integers(60, 220), scale=st.sampled_from([1e-4, 0.5, 3.0, 1234.5, 9.9e8]),
       labels=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-(),=.0123456789'[]{}:", min_size=1,
                               max_size=70), min_size=1, max_size=6, unique=True))
def test_generated_tables_fit_without_cutting(width, scale, labels):
    from rich.cells import cell_len
    from rich.console import Console

    from idnbandit.bench.report import print_report, report_columns

    summary = _summary(labels)
    for rows in summary["scenarios"].values():
        for row in rows.values():
            for m in row["metrics"].values():
                m["mean"] *= scale
                m["ci95"] *= scale
    buf = io.StringIO()
    print_report(summary, Console(file=buf, width=width, color_system=None, force_terminal=False))
    text = buf.getvalue()
    assert max(cell_len(ln) for ln in text.splitlines()) <= width and "…" not in text
    for rows in summary["scenarios"].values():
        for _, cells in report_columns(rows):
            assert all(c in text for c in cells)
    agent_column = "".join(ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│"))
    assert all(label.strip() in agent_column.replace(" ", "") or label.replace(" ", "") in agent_column
               for label in labels)  # shown whole, brackets included (labels are not markup)


@pytest.mark.parametrize("width", [20, 30, 40])
def test_a_very_narrow_console_wraps_lines_rather_than_cutting_numbers(width):
    from rich.console import Console

    from idnbandit.bench.report import print_report, report_columns

    summary = _summary(LABELS, big=True)
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False)
    print_report(summary, console)
    text = buf.getvalue()
    assert "…" not in text and console.width == width
    for rows in summary["scenarios"].values():
        for _, cells in report_columns(rows):
            assert all(c in text for c in cells)
    agent_column = "".join(ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│"))
    assert all(label in agent_column for label in LABELS)


def test_report_file_has_the_full_table(tmp_path):
    from idnbandit.bench.report import report_columns, write_report

    summary = _summary(LABELS, big=True)
    path = write_report(summary, tmp_path)
    text = path.read_text()
    header = [ln for ln in text.splitlines() if "seeds" in ln and "reward" in ln]
    assert header and all(h in header[0] for h in ("accuracy", "forward", "cost", "norm. score"))
    for label in LABELS:
        assert label in text
    for rows in summary["scenarios"].values():
        for _, cells in report_columns(rows):
            assert all(c in text for c in cells)
    assert "continued" not in text


def test_bench_output_fits_80_and_100_columns(capsys, tmp_path, monkeypatch):
    from rich.cells import cell_len

    from idnbandit.bench.report import report_columns

    out = tmp_path / "res"
    agents = "always-local,always-cloud,fixed(option=1),random"
    argv = ["bench", "--scenario", TINY, "--seeds", "2", "--steps", "300", "--jobs", "1", "--out", str(out)]
    assert main([*argv[:1], "--agents", agents, *argv[1:], "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for columns in ("80", "100"):
        monkeypatch.setenv("COLUMNS", columns)
        capsys.readouterr()
        assert main([*argv[:1], "--agents", agents, *argv[1:]]) == 0  # resumed: prints the tables
        text = capsys.readouterr().out
        lines = text.splitlines()
        assert "fixed(option=1)" in text and "norm. score" in text and "(median)" in text
        assert max(cell_len(ln) for ln in lines if not ln.startswith("in ")) <= int(columns)
        assert "…" not in text
        for rows in summary["scenarios"].values():
            for _, cells in report_columns(rows):
                assert all(c in text for c in cells)
    assert (out / "report.txt").exists() and "fixed(option=1)" in (out / "report.txt").read_text()


# ------------------------------------------------------------------------------------------ decisions/s
@HYP
@given(fast=st.lists(st.floats(2e5, 2e6), min_size=2, max_size=9), slow=st.floats(1e2, 5e3))
def test_decisions_per_s_is_a_median_a_slow_first_cell_cannot_move(fast, slow):
    # the first cell of a run loads or compiles the kernels: it is far slower than the others
    from idnbandit.bench.report import format_median, summary_tables
    from idnbandit.bench.summary import _timing_stat

    stat = _timing_stat([slow, *fast])
    values = sorted([slow, *fast])
    assert stat["median"] == pytest.approx(values[len(values) // 2] if len(values) % 2 else
                                           (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2)
    assert stat["median"] >= min(fast) - 1e-9  # the slow cell is not the median
    assert stat["min"] == slow and stat["max"] == max(fast)
    text = format_median(stat)
    assert "±" not in text and text != "–"
    summary = _summary(["a"])
    summary["scenarios"]["idn-4tier"]["a"]["timing"]["decisions_per_s"] = stat
    assert summary_tables(summary)  # renders


def test_summarize_reports_median_of_timing():
    from idnbandit.bench.summary import _timing_stat

    s = _timing_stat([1e3, 1e6, 1.1e6, float("nan")])
    assert s["n"] == 3 and s["median"] == 1e6
    assert s["ci95"] > s["mean"]  # why the table shows the median: a mean ± CI is meaningless here
