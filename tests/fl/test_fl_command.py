"""``idnbandit fl``: two-round smoke runs in-process; outputs usable by the rest of the project."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from idnbandit.cli import main  # noqa: E402
from idnbandit.errors import ConfigError  # noqa: E402
from idnbandit.fl import TrainConfig, load_weights  # noqa: E402
from idnbandit.fl.loop import FLConfig, run_fl  # noqa: E402
from idnbandit.scenario import load_scenario  # noqa: E402
from idnbandit.traces import Trace  # noqa: E402

pytestmark = pytest.mark.torch

TINY = ["--policy-steps", "400", "--routing-steps", "200", "--eval-steps", "300", "--local-epochs", "1"]


def test_fl_command_two_rounds_delivery_aware(tmp_path, capsys):
    out = tmp_path / "fl"
    code = main(["fl", "--scenario", "idn-4tier", "--rounds", "2", "--method", "delivery-aware",
                 "--alternations", "2", "--out", str(out), *TINY])
    assert code == 0
    text = capsys.readouterr().out
    assert "round 1/2" in text and "round 2/2" in text and "phase 1/2" in text and "end-to-end" in text
    trace = Trace.load(out / "trace.npz")
    scen = load_scenario(out / "scenario.toml")  # validates, including the trace columns
    assert trace.model_names == tuple(n.name for n in scen.nodes)
    assert trace.n_samples == 360 and trace.metadata["fl"]["method"] == "delivery-aware"
    report = json.loads((out / "fl.json").read_text())
    assert len(report["history"]) == 2 and "trained_with_routing" in report["history"][1]
    rates = np.array(report["history"][1]["trained_with_routing"]["rates"])
    assert (rates > 0).all() and np.allclose(rates.sum(axis=0), 1.0)
    weights = load_weights(out / "weights.npz")
    assert set(weights) == set(trace.model_names)
    # the trained scenario runs through the benchmark command like any other
    code = main(["bench", "--scenario", str(out / "scenario.toml"), "--agents", "always-local",
                 "--seeds", "1", "--steps", "500", "--jobs", "1", "--out", str(tmp_path / "bench"), "--quiet"])
    assert code == 0


def test_fl_command_early_exit_and_errors(tmp_path, capsys):
    out = tmp_path / "ee"
    assert main(["fl", "--scenario", "hi-two-tier", "--rounds", "2", "--method", "early-exit", "--alternations",
                 "1", "--out", str(out), "--quiet", *TINY]) == 0
    weights = load_weights(out / "weights.npz")
    # the phone holds block and exit 0 only, the cloud every block
    assert {k.split(".")[1] for k in weights["phone"]} == {"0"}
    assert {k.split(".")[1] for k in weights["cloud"]} == {"0", "1", "2", "3"}
    capsys.readouterr()
    assert main(["fl", "--method", "fedavgg", "--out", str(out)]) == 2  # argparse choices
    assert main(["fl", "--rounds", "0", "--out", str(out)]) == 2
    assert "rounds" in capsys.readouterr().err


def test_run_fl_same_seed_same_weights():
    scen = load_scenario("hi-two-tier")
    cfg = FLConfig(method="fedavg", rounds=1, seed=5, train=TrainConfig(local_epochs=1))
    a, b = run_fl(scen, cfg), run_fl(scen, cfg)
    for node in a.weights:
        assert all(np.array_equal(a.weights[node][k], b.weights[node][k]) for k in a.weights[node])
    np.testing.assert_array_equal(a.trace.probs, b.trace.probs)
    c = run_fl(scen, FLConfig(method="fedavg", rounds=1, seed=6, train=TrainConfig(local_epochs=1)))
    assert not np.array_equal(a.trace.probs, c.trace.probs)


def test_fl_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="did you mean 'fedavg'"):
        FLConfig(method="fedavgg")
    with pytest.raises(ConfigError, match="alternations"):
        FLConfig(method="delivery-aware", rounds=2, alternations=3)
    with pytest.raises(ConfigError, match="key"):
        FLConfig(key="label")
