"""Unit tests of the benchmark building blocks: spec splitting, agents files, seeds, statistics, scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idnbandit.bench import (
    agent_seed,
    agents_from_cli,
    agents_from_file,
    mean_ci,
    normalised_score,
    split_specs,
    t_quantile,
)
from idnbandit.bench.specs import canonical_spec, cell_id, safe_name
from idnbandit.errors import ConfigError


def test_split_specs_keeps_commas_inside_brackets_and_quotes():
    text = "linucb(alpha=0.5, ridge=1), river(policy='UCB', policy_params={'delta': 1.0}),exp4(eta=[1, 2]),x(s='a,b')"
    assert split_specs(text) == ["linucb(alpha=0.5, ridge=1)", "river(policy='UCB', policy_params={'delta': 1.0})",
                                 "exp4(eta=[1, 2])", "x(s='a,b')"]


@pytest.mark.parametrize("text, msg", [("a,,b", "item 2 is empty"), ("linucb(alpha=1", "unclosed"),
                                       ("linucb)", "unbalanced"), ("x(s='a)", "unclosed")])
def test_split_specs_errors(text, msg):
    with pytest.raises(ConfigError, match=msg):
        split_specs(text)


def test_canonical_spec_sorts_and_normalises():
    assert canonical_spec(" linucb( ridge=1,alpha = 0.5 ) ") == "linucb(alpha=0.5, ridge=1)"
    assert canonical_spec("hedge-hi") == "hedge-hi"
    a = agents_from_cli("linucb(alpha=0.5),always-local")
    assert [x.label for x in a] == ["linucb(alpha=0.5)", "always-local"]
    with pytest.raises(ConfigError, match="listed twice"):
        agents_from_cli("linucb(alpha=0.5),linucb( alpha=0.5)")


def test_agents_file_strings_and_tables(tmp_path):
    p = tmp_path / "agents.toml"
    p.write_text('[agents]\nfast = "linucb(alpha=0.5)"\n[agents.wide]\nname = "linucb"\nalpha = 2.0\nridge = 1\n')
    a = agents_from_file(p)
    assert [(x.label, x.spec) for x in a] == [("fast", "linucb(alpha=0.5)"), ("wide", "linucb(alpha=2.0, ridge=1)")]


@pytest.mark.parametrize("text, msg", [
    ("[agents]\n", "non-empty"),
    ('[agents]\nx = 3\n', "agents.x"),
    ('[agents.x]\nalpha = 1\n', "agents.x.name"),
    ('other = 1\n[agents]\nx = "linucb"\n', "unknown top-level key 'other'"),
    ("[agents\n", "not valid TOML"),
])
def test_agents_file_errors(tmp_path, text, msg):
    p = tmp_path / "agents.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        agents_from_file(p)
    with pytest.raises(ConfigError, match="file not found"):
        agents_from_file(tmp_path / "missing.toml")


def test_agent_seed_depends_on_cell_seed_and_canonical_spec_only():
    s = agent_seed(3, "linucb(alpha=0.5, ridge=1)")
    assert s == agent_seed(3, "linucb( ridge=1, alpha=0.5)")  # same canonical spec
    assert s != agent_seed(4, "linucb(alpha=0.5, ridge=1)")
    assert s != agent_seed(3, "linucb(alpha=0.6, ridge=1)")
    assert 0 <= s < 2**63


def test_cell_ids_are_file_safe_and_distinct():
    a, b = safe_name("linucb(alpha=0.5)"), safe_name("linucb(alpha=0_5)")
    assert a != b and all(ch.isalnum() or ch in "_.-" for ch in a)
    assert safe_name("hedge-hi") == "hedge-hi"
    assert cell_id("idn-4tier", "hedge-hi", 3) == "idn-4tier__hedge-hi__s3"


def test_t_quantile_against_scipy():
    st = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 30, 500):
        for p in (0.6, 0.9, 0.975, 0.995, 0.025):
            assert t_quantile(p, df) == pytest.approx(st.t.ppf(p, df), abs=1e-8)
    with pytest.raises(ConfigError, match="p:"):
        t_quantile(1.0, 3)


def test_mean_ci_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=6)
    m = mean_ci(list(x))
    assert m.n == 6 and m.mean == pytest.approx(x.mean())
    assert m.ci95 == pytest.approx(2.570581835636 * x.std(ddof=1) / math.sqrt(6), rel=1e-9)
    one = mean_ci([1.5, float("nan")])  # non-finite values are left out
    assert one.mean == 1.5 and one.n == 1 and math.isnan(one.ci95)
    assert mean_ci([]).n == 0


def test_normalised_score_anchors():
    assert normalised_score(0.5, local=0.5, cloud=0.9) == 0.0
    assert normalised_score(0.9, local=0.5, cloud=0.9) == 1.0
    assert normalised_score(0.7, local=0.5, cloud=0.9) == pytest.approx(0.5)
    assert normalised_score(1.1, local=0.5, cloud=0.9) > 1.0
    # forwarding does not pay: the scale stays increasing in the reward
    assert normalised_score(0.9, local=0.9, cloud=0.5) == 1.0
    assert normalised_score(0.5, local=0.9, cloud=0.5) == 0.0
    assert math.isnan(normalised_score(0.7, 0.5, 0.5 + 1e-12))
