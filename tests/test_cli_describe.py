"""`idnbandit scenarios` and `idnbandit describe`, called in-process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tomli_w

from idnbandit.cli import SUBCOMMANDS, main
from idnbandit.scenario import builtin_names, load_scenario
from idnbandit.traces import Trace


def _tiny_trace(path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=100)
    probs = np.full((2, 100, 4), 0.1, dtype=np.float32)
    probs[0, np.arange(100), labels] = 0.7  # 'a' is always right
    probs[1, np.arange(100), (labels + 1) % 4] = 0.7  # 'b' is always wrong
    Trace(probs, labels, ("a", "b")).save(path)


SCENARIO = {
    "name": "cli-test",
    "description": "two tiers for the CLI test",
    "trace": {"path": "t.npz"},
    "models": [{"name": "ma", "trace_column": "a", "gflops": 1.0, "memory_mb": 10.0},
               {"name": "mb", "trace_column": "b", "gflops": 2.0, "memory_mb": 10.0}],
    "nodes": [{"name": "dev", "tier": "device", "speed_gflops": 10.0, "models": ["ma"], "parent": "top",
               "uplink": {"propagation_ms": 12.5, "bandwidth_mbps": 6.0}},
              {"name": "top", "tier": "cloud", "speed_gflops": 1000.0, "servers": 3, "models": ["mb"]}],
    "workload": {"origins": ["dev"]},
}


def test_scenarios_lists_every_builtin_with_its_description(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == builtin_names()
    for line in out:
        name = line.split()[0]
        assert load_scenario(name, check_data=False).description in line


def test_describe_a_file(tmp_path, capsys):
    _tiny_trace(tmp_path / "t.npz")
    (tmp_path / "cli.toml").write_text(tomli_w.dumps(SCENARIO))
    assert main(["describe", str(tmp_path / "cli.toml")]) == 0
    out = capsys.readouterr().out
    assert "- top [cloud]; 1000 GFLOP/s x 3 servers" in out
    assert "    - dev [device]; 10 GFLOP/s x 1 server;" in out  # indented under its parent
    assert "uplink 12.5 ms, 6 Mbit/s" in out
    assert "dev: [0] dev/ma  [1] top/mb" in out
    assert "100 samples, 4 classes" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  m")}
    assert lines["ma"].endswith("1.0000") and lines["mb"].endswith("0.0000")


def test_describe_builtin_idn_4tier(capsys):
    assert main(["describe", "idn-4tier"]) == 0
    out = capsys.readouterr().out
    assert main(["describe"]) == 0  # idn-4tier is the default
    assert capsys.readouterr().out == out
    for text in ("- cloud [cloud]", "      - edge [edge]", "        - phone-4 [device]", "uplink 15 ms, 6 Mbit/s",
                 "phone-1: [0] phone-1/mobilenetv3-small  [1] edge/resnet18  [2] regional/resnet50  [3] cloud/vit-b16",
                 "trace: built-in 'digits'", "10 classes"):
        assert text in out, text
    acc = [float(line.split()[-1]) for line in out.splitlines()
           if line.split() and line.split()[0] in ("mobilenetv3-small", "resnet18", "resnet50", "vit-b16")]
    assert len(acc) == 4 and all(0.5 < a <= 1 for a in acc) and acc[-1] > acc[0]


@pytest.mark.parametrize("argv, needle", [
    (["describe", "idn-4tire"], "unknown scenario 'idn-4tire'; did you mean 'idn-4tier'?"),
    (["describe", "missing/nowhere.toml"], "nowhere.toml: file not found"),
])
def test_errors_are_one_line_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_invalid_file_is_one_line_exit_2(tmp_path, capsys):
    bad = dict(SCENARIO, nodes=[dict(SCENARIO["nodes"][0], speed_gflops=-1.0), SCENARIO["nodes"][1]])
    (tmp_path / "bad.toml").write_text(tomli_w.dumps(bad))
    assert main(["describe", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "[[nodes]] 'dev'.speed_gflops: -1.0 is not allowed" in err and err.count("\n") == 1


def test_broken_trace_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "t.npz").write_bytes(b"not a zip")
    (tmp_path / "t.json").write_text('{"format": "idnbandit-trace", "model_names": ["a", "b"]}')
    (tmp_path / "cli.toml").write_text(tomli_w.dumps(SCENARIO))
    assert main(["describe", str(tmp_path / "cli.toml")]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err


def test_usage(capsys):
    assert main([]) == 2  # no subcommand: help, usage error
    assert main(["--help"]) == 0
    assert "describe" in capsys.readouterr().out
    assert main(["describe", "a", "b"]) == 2  # extra argument: argparse's usage error
    assert {"scenarios", "describe"} <= set(SUBCOMMANDS)


def test_console_script_module_smoke():
    out = subprocess.run([sys.executable, "-m", "idnbandit.cli", "scenarios"], capture_output=True, text=True,
                         check=True).stdout
    assert "idn-4tier" in out


@pytest.mark.parametrize("name", ["flash-crowd", "hi-two-tier", "idn-4tier", "zoo-4tier"])
def test_describe_every_builtin_without_trace(capsys, name):
    assert main(["describe", name, "--no-trace"]) == 0
    out = capsys.readouterr().out
    s = load_scenario(name, check_data=False)
    assert f"scenario {name!r}" in out and "not loaded" in out
    assert f"K = {len(s.options(s.workload.origins[0]))}" in out
    assert sum(line.lstrip().startswith("- ") for line in out.splitlines()) == len(s.nodes)
