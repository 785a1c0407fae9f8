"""``idnbandit bench --scope``: the agent scope reaches simulate() and the results folder identity."""

from __future__ import annotations

import json

import pytest

from idnbandit.bench.plan import make_plan
from idnbandit.bench.specs import agents_from_cli
from idnbandit.cli import main
from idnbandit.errors import UnknownNameError


def test_plan_carries_scope_and_dims():
    plan = make_plan(["shared-edge"], agents_from_cli("linucb"), [0], 10, scope="shared")
    entry = plan.scenarios[0]
    assert (entry.n_options, entry.n_features) == (2, 18)  # serve/forward; 3 conf + 2 load + 12 ids + bias
    assert plan.identity()["scope"] == "shared"
    assert {c.scope for c in plan.cells} == {"shared"}
    default = make_plan(["shared-edge"], agents_from_cli("linucb"), [0], 10)
    assert "scope" not in default.identity()  # earlier results folders still resume
    assert (default.scenarios[0].n_options, default.scenarios[0].n_features) == (3, 7)
    with pytest.raises(UnknownNameError, match="did you mean 'per-node'"):
        make_plan(["hi-two-tier"], agents_from_cli("linucb"), [0], 10, scope="pernode")


def test_cli_scope_single_decision_node_equals_default(tmp_path, capsys):
    common = ["bench", "--scenario", "hi-two-tier", "--agents", "linucb", "--seeds", "2", "--steps", "300",
              "--jobs", "1", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "per-node"), "--scope", "per-node"]) == 0
    assert main([*common, "--out", str(tmp_path / "default")]) == 0
    a = json.loads((tmp_path / "per-node" / "summary.json").read_text())
    b = json.loads((tmp_path / "default" / "summary.json").read_text())
    assert json.loads((tmp_path / "per-node" / "config.json").read_text())["scope"] == "per-node"
    ma = a["scenarios"]["hi-two-tier"]["linucb"]["metrics"]
    mb = b["scenarios"]["hi-two-tier"]["linucb"]["metrics"]
    timing = {"wall_time_s", "decisions_per_s"}
    assert {k: v for k, v in ma.items() if k not in timing} == {k: v for k, v in mb.items() if k not in timing}
    # a results folder of one scope is not resumed with another
    assert main([*common, "--out", str(tmp_path / "per-node"), "--scope", "shared"]) == 2
    assert "scope" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "x"), "--scope", "every-node"]) == 2
    assert "unknown scope 'every-node'" in capsys.readouterr().err
