"""Issue 17, class 9: agents used with a feedback mode they cannot learn from.

Every registered agent declares ``feedback_modes``; ``simulate()`` warns once
(FeedbackMismatchWarning) or, with ``strict=True``, raises ConfigError before any work; the bench plan
warns once for the whole run (not per cell) and ``bench --strict`` exits 2 with one line, writing
nothing.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import idnbandit.ensembles  # noqa: F401
from idnbandit.agents import FEEDBACK_MODES, feedback_mismatch, make_agent
from idnbandit.agents.registry import agent_entry, agent_names
from idnbandit.errors import ConfigError, FeedbackMismatchWarning
from idnbandit.scenario.model import FeedbackMode

NAMES = sorted(agent_names())
MODES = sorted(FEEDBACK_MODES)


def test_modes_match_the_scenario_enum():
    assert FEEDBACK_MODES == {m.value for m in FeedbackMode}


@pytest.mark.parametrize("name", NAMES)
def test_every_agent_declares_its_modes(name):
    modes = agent_entry(name).cls.feedback_modes
    assert isinstance(modes, frozenset) and modes and modes <= FEEDBACK_MODES
    assert "full" in modes  # every learner learns from full feedback


def test_declared_examples():
    cls = {n: agent_entry(n).cls for n in NAMES}
    for n in ("linucb", "d-linucb", "sw-linucb", "neural-ucb", "exp3", "river-ucb", "squarecb"):
        assert "label_on_forward" not in cls[n].feedback_modes, n
    for n in ("hil-n", "hedge-hi", "hi-lcb", "hi-lcb-lite", "lints", "epsilon-greedy", "qlearning", "dqn"):
        assert "label_on_forward" in cls[n].feedback_modes, n
    for n in ("hi-lcb", "hi-lcb-lite", "hil-n"):
        assert "bandit" not in cls[n].feedback_modes, n
    for n in ("always-local", "always-cloud", "random", "static-threshold", "oracle"):
        assert cls[n].feedback_modes == FEEDBACK_MODES, n


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), mode=st.sampled_from(MODES + [FeedbackMode.BANDIT, FeedbackMode.LABEL_ON_FORWARD]))
def test_mismatch_iff_mode_not_declared(name, mode):
    cls = agent_entry(name).cls
    msg = feedback_mismatch(cls, mode)
    value = getattr(mode, "value", mode)
    if value in cls.feedback_modes:
        assert msg is None
    else:
        assert msg and value in msg and cls.name in msg and "\n" not in msg


def test_objects_without_declaration_are_never_warned_about():
    class Mine:
        def act(self, x):
            return 0

        def update(self, x, a, r, *, rewards=None):
            return self

    assert feedback_mismatch(Mine(), "label_on_forward") is None
    from idnbandit.ensembles import make_strategy

    assert feedback_mismatch(make_strategy("ens-seq", 3), "bandit") is None


def test_simulate_warns_once_or_refuses():
    from idnbandit.sim import simulate

    agent = make_agent("linucb", 2, 4, seed=0)
    with pytest.warns(FeedbackMismatchWarning, match="linucb.*label_on_forward.*hi-two-tier") as rec:
        r = simulate("hi-two-tier", agent, 2000, seed=0)
    assert len([w for w in rec if w.category is FeedbackMismatchWarning]) == 1
    assert r.forward_rate == 0.0  # the failure the warning is about: LinUCB never forwards, never learns
    with pytest.raises(ConfigError, match="cannot learn from 'label_on_forward'.*strict"):
        simulate("hi-two-tier", agent, 100, seed=0, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeedbackMismatchWarning)
        simulate("hi-two-tier", make_agent("hil-n", 2, 4, seed=0), 200, seed=0, strict=True)
        simulate("idn-4tier", make_agent("linucb", *_dims("idn-4tier"), seed=0), 200, seed=0, strict=True)


def _dims(name):
    from idnbandit.sim.run import resolve_inputs

    _, _, c = resolve_inputs(name, None)
    return c.n_options, int(c.n_features)


def test_plan_warns_once_for_the_whole_run_and_strict_refuses():
    from idnbandit.bench.plan import make_plan
    from idnbandit.bench.specs import agents_from_cli

    agents = agents_from_cli("linucb,hi-lcb,always-local")
    with pytest.warns(FeedbackMismatchWarning) as rec:
        make_plan(["hi-two-tier", "idn-4tier"], agents, seeds=[0, 1, 2], steps=100)
    msgs = [str(w.message) for w in rec if w.category is FeedbackMismatchWarning]
    assert len(msgs) == 1
    assert "linucb on hi-two-tier (label_on_forward)" in msgs[0] and "hi-lcb on idn-4tier (bandit)" in msgs[0]
    assert "always-local" not in msgs[0]
    with pytest.raises(ConfigError, match="'linucb'.*label_on_forward.*--strict"):
        make_plan(["hi-two-tier"], agents, seeds=[0], steps=100, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeedbackMismatchWarning)
        make_plan(["hi-two-tier"], agents_from_cli("hil-n,lints"), seeds=[0], steps=100, strict=True)


def test_cli_strict_exits_2_and_default_warns_one_line(tmp_path, capsys):
    from idnbandit.cli import main

    out = tmp_path / "strict"
    base = ["bench", "--scenario", "hi-two-tier", "--agents", "linucb,always-local", "--steps", "200",
            "--jobs", "1", "--quiet"]
    assert main(base + ["--seeds", "1", "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "linucb" in err and "label_on_forward" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    out = tmp_path / "warn"
    assert main(base + ["--seeds", "3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "cannot learn" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: ")  # once for 3 cells of linucb, not per cell
