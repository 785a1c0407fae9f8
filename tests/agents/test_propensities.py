"""Action probabilities (propensities) of every agent: exact, consistent with the choices, on both paths."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.agents import make_agent
from idnbandit.agents._propensity import PROPENSITY_KINDS
from idnbandit.agents.registry import agent_names
from idnbandit.errors import ConfigError

K, D = 3, 4
STOCHASTIC_KERNEL = ["random", "epsilon-greedy", "epsilon-greedy(decay=0.01)", "exp3", "exp4", "hil-f", "hil-n",
                     "hedge-hi", "hedge-hi-restart", "qlearning", "sarsa-lambda", "linear-q", "lints(v=0.5)"]
DETERMINISTIC = ["always-local", "always-cloud", "fixed(option=1)", "static-threshold", "linucb", "d-linucb",
                 "sw-linucb", "hi-lcb", "hi-lcb-lite"]
KINDS = {"lints": "stochastic", "neural-ts": "stochastic", "river": None, "river-ucb": None, "river-linucb": None,
         "river-epsilon-greedy": None, "neural-ucb": "deterministic", "dqn": "stochastic", "squarecb": "stochastic",
         "oracle": "deterministic"}


def contexts(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, D))
    x[:, -1] = 1.0
    return x


def trained(spec, steps=300, seed=0):
    """An agent after ``steps`` decisions on a small problem where option 2 is best when x[0] > 0.5."""
    agent = make_agent(spec, K, D, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for x in contexts(steps, seed):
        a = agent.act(x)
        best = 2 if x[0] > 0.5 else 0
        r = (1.0 if a == best else 0.0) + 0.1 * rng.normal()
        agent.update(x, a, r, rewards=np.full(K, np.nan))
    return agent


def test_every_registered_agent_declares_its_kind():
    for name in agent_names():
        agent = make_agent(name, K, D, seed=0)
        assert agent.propensity_kind in PROPENSITY_KINDS, name
        if name in KINDS:
            assert agent.propensity_kind == KINDS[name], name


@pytest.mark.parametrize("spec", STOCHASTIC_KERNEL)
def test_probabilities_match_the_frequencies_of_the_choices(spec):
    """probs(x) against 20,000 choices of the select kernel with fresh uniforms (no learning in between)."""
    agent = trained(spec)
    assert agent.propensity_kind == "stochastic"
    rng = np.random.default_rng(7)
    for x in contexts(3, seed=9):
        p = agent.probs(x)
        assert p.shape == (K,) and (p >= 0).all() and p.sum() == pytest.approx(1.0, abs=1e-12)
        counts = np.zeros(K)
        for u in rng.random((20_000, agent.n_uniforms)):
            counts[agent._select_kernel(agent._state, x, u)] += 1
        np.testing.assert_allclose(counts / 20_000, p, atol=0.012)


def test_epsilon_greedy_matches_its_formula():
    agent = trained("epsilon-greedy(epsilon=0.2)")
    theta = agent._state[5]
    for x in contexts(20, seed=3):
        want = np.full(K, 0.2 / K)
        want[int(np.argmax(theta @ x))] += 0.8
        np.testing.assert_allclose(agent.probs(x), want, rtol=1e-12)


@pytest.mark.parametrize("spec", STOCHASTIC_KERNEL + DETERMINISTIC)
def test_act_with_prob_is_act_plus_the_probability_of_the_choice(spec):
    a1, a2 = trained(spec), trained(spec)
    for x in contexts(50, seed=4):
        p = a2.probs(x)
        act, prob = a2.act_with_prob(x)
        assert act == a1.act(x)  # same randomness as act
        assert prob == pytest.approx(p[act], abs=1e-12) and prob > 0


@pytest.mark.parametrize("spec", DETERMINISTIC)
def test_deterministic_agents_put_probability_one_on_their_choice(spec):
    agent = trained(spec)
    assert agent.propensity_kind == "deterministic"
    for x in contexts(20, seed=5):
        p = agent.probs(x)
        assert p.sum() == 1.0 and p[agent.act(x)] == 1.0


def test_river_policies_refuse_with_the_reason():
    with pytest.raises(ConfigError, match="propensity_kind is None"):
        make_agent("river-ucb", K, D, seed=0).act_with_prob(contexts(1)[0])
    with pytest.raises(ConfigError, match="propensity_kind is None"):
        make_agent("river-epsilon-greedy", K, D, seed=0).probs(contexts(1)[0])


def test_gaussian_argmax_probabilities_match_sampled_maxima():
    from idnbandit.agents._propensity import gaussian_argmax_probs

    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(2, 6))
        m, s = rng.normal(size=k), rng.uniform(0, 1.5, size=k)
        s[rng.random(k) < 0.3] = 0.0  # some options without uncertainty
        draws = m + s * rng.standard_normal((100_000, k))
        freq = np.bincount(draws.argmax(axis=1), minlength=k) / 100_000
        np.testing.assert_allclose(gaussian_argmax_probs(m, s), freq, atol=0.006)


@pytest.mark.torch
def test_neural_ts_probabilities_match_its_choices():
    pytest.importorskip("torch")
    agent = make_agent("neural-ts(hidden=(8,), train_steps=5)", K, D, seed=0)
    for x in contexts(50, seed=1):
        agent.update(x, agent.act(x), float(x[0]))
    x = contexts(1, seed=2)[0]
    p = agent.probs(x)
    counts = np.bincount([agent.act(x) for _ in range(3000)], minlength=K)  # act does not learn
    np.testing.assert_allclose(counts / 3000, p, atol=0.03)
    a, prob = agent.act_with_prob(x)
    assert prob == pytest.approx(p[a])


def test_squarecb_probabilities_match_its_choices():
    agent = trained("squarecb", steps=200)
    x = contexts(1, seed=2)[0]
    p = agent.probs(x)
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    counts = np.bincount([agent.act(x) for _ in range(4000)], minlength=K)  # act does not learn
    np.testing.assert_allclose(counts / 4000, p, atol=0.03)


@pytest.mark.torch
def test_dqn_probabilities_match_its_choices():
    pytest.importorskip("torch")
    agent = make_agent("dqn(epsilon_start=0.3, epsilon_end=0.3)", K, D, seed=0)
    x = contexts(1, seed=2)[0]
    p = agent.probs(x)
    assert sorted(p.round(6).tolist()) == [0.1, 0.1, 0.8]
    counts = np.bincount([agent.act(x) for _ in range(3000)], minlength=K)
    np.testing.assert_allclose(counts / 3000, p, atol=0.03)
    a, prob = agent.act_with_prob(x)
    assert prob == pytest.approx(p[a])


class _PythonPath:
    """Hides an agent's kernels so that simulate() takes its Python loop."""

    def __init__(self, agent):
        self.agent = agent
        self.n_actions, self.n_features = agent.n_actions, agent.n_features
        self.propensity_kind, self.name = agent.propensity_kind, agent.name

    def act(self, x):
        return self.agent.act(x)

    def act_with_prob(self, x):
        return self.agent.act_with_prob(x)

    def update(self, x, a, r, *, rewards=None):
        self.agent.update(x, a, r, rewards=rewards)
        return self


@pytest.mark.parametrize("spec", ["epsilon-greedy", "exp3", "hedge-hi", "linucb"])
def test_fused_and_python_paths_log_the_same_propensities(tmp_path, spec):
    pytest.importorskip("pyarrow")
    from idnbandit.ope import read_log
    from idnbandit.scenario import load_scenario
    from idnbandit.sim import n_features, n_options, simulate

    sc = load_scenario("idn-4tier" if spec != "hedge-hi" else "deadline-edge")
    k, f = n_options(sc), n_features(sc)
    fused = simulate(sc, make_agent(spec, k, f, seed=3), 3000, seed=1, log=tmp_path / "f.parquet")
    python = simulate(sc, _PythonPath(make_agent(spec, k, f, seed=3)), 3000, seed=1, log=tmp_path / "p.parquet")
    assert fused.extra["path"] == "fused" and python.extra["path"] == "python"
    lf, lp = read_log(tmp_path / "f.parquet"), read_log(tmp_path / "p.parquet")
    np.testing.assert_array_equal(lf.action, lp.action)
    np.testing.assert_array_equal(lf.propensity, lp.propensity)
    np.testing.assert_array_equal(lf.reward, lp.reward)
    assert (lf.propensity > 0).all() and (lf.propensity <= 1).all()
    if spec == "linucb":
        assert (lf.propensity == 1.0).all()
    else:
        assert (lf.propensity < 1).any()
