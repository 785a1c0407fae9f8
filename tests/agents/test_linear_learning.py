"""Learning behaviour and feedback semantics of the linear agents (fixed seeds, generous thresholds)."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.agents import DiscountedLinUCB, EpsilonGreedy, LinTS, LinUCB, SlidingWindowLinUCB, make_agent
from idnbandit.errors import ConfigError


def _linear_problem(n, d=6, k=3, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(k, d))
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    means = X @ theta.T
    return X, means + noise * rng.normal(size=(n, k)), means


@pytest.mark.parametrize("spec", ["linucb(alpha=0.5)", "lints(v=0.1)", "epsilon-greedy(epsilon=0.05)",
                                  "epsilon-greedy(epsilon=0.3, decay=0.01)", "d-linucb(gamma=0.999, alpha=0.1)",
                                  "sw-linucb(window=1000, alpha=0.5)"])
def test_learns_a_stationary_linear_bandit(spec):
    n = 3000
    X, R, means = _linear_problem(n)
    agent = make_agent(spec, 3, 6, seed=1)
    best = means.argmax(axis=1)
    hits = []
    for i in range(n):
        a = agent.act(X[i])
        hits.append(a == best[i])
        agent.update(X[i], a, R[i, a])
    late = float(np.mean(hits[-1000:]))
    assert late > 0.85, f"{spec}: best-option rate over the last 1000 steps {late:.2f}"


def _switching_problem(n=3000, switch=1500, seed=3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.random(n)])
    means = np.zeros((n, 2))
    means[:switch, 0] = 0.8
    means[:switch, 1] = 0.2
    means[switch:, 0] = 0.2
    means[switch:, 1] = 0.8
    return X, means + 0.1 * rng.normal(size=(n, 2)), means


def _late_best_rate(agent, X, R, means, last=500):
    hits = []
    for i in range(X.shape[0]):
        a = agent.act(X[i])
        hits.append(a == means[i].argmax())
        agent.update(X[i], a, R[i, a])
    return float(np.mean(hits[-last:]))


def test_nonstationary_agents_track_a_switch_that_linucb_misses():
    X, R, means = _switching_problem()
    stationary = _late_best_rate(LinUCB(2, 2, alpha=0.3, seed=0), X, R, means)
    discounted = _late_best_rate(DiscountedLinUCB(2, 2, gamma=0.98, alpha=0.05, seed=0), X, R, means)
    window = _late_best_rate(SlidingWindowLinUCB(2, 2, window=200, alpha=0.3, seed=0), X, R, means)
    assert discounted > 0.9 and window > 0.9
    assert stationary < 0.6


def test_full_feedback_updates_every_observed_option():
    for cls in (LinUCB, EpsilonGreedy):
        agent = cls(3, 2, seed=0)
        x = np.array([1.0, 0.5])
        agent.update(x, 0, 1.0, rewards=np.array([1.0, np.nan, 0.3]))
        A = agent._state[2]
        np.testing.assert_allclose(A[0], np.eye(2) + np.outer(x, x))
        np.testing.assert_allclose(A[1], np.eye(2))
        np.testing.assert_allclose(A[2], np.eye(2) + np.outer(x, x))
    # r stands in for rewards[a] when that is NaN
    agent = LinUCB(2, 1, seed=0)
    agent.update(np.array([1.0]), 1, 0.7, rewards=np.array([np.nan, np.nan]))
    assert agent.coef_[1, 0] == pytest.approx(0.35)


@pytest.mark.parametrize("cls", [LinUCB, EpsilonGreedy, LinTS])
def test_nan_reward_learns_nothing(cls):
    agent = cls(3, 4, seed=0)
    before = [s.copy() for s in agent._state]
    agent.update(np.ones(4), 1, float("nan"))
    agent.update(np.ones(4), 2, float("nan"), rewards=np.full(3, np.nan))
    for s0, s1 in zip(before, agent._state):
        if s0.dtype == np.float64 and s0.ndim >= 2 and s0.shape[0] == 3:
            np.testing.assert_array_equal(s0, s1)


def test_nonstationary_time_advances_without_observations():
    agent = DiscountedLinUCB(2, 2, gamma=0.5, seed=0)
    x = np.array([1.0, 0.0])
    agent.update(x, 0, 1.0)
    b_before = agent._state[4][0].copy()
    agent.update(x, 0, float("nan"))
    np.testing.assert_allclose(agent._state[4][0], 0.5 * b_before)
    sw = SlidingWindowLinUCB(2, 2, window=2, seed=0)
    sw.update(x, 0, 1.0)
    sw.update(x, 1, float("nan"))
    sw.update(x, 1, float("nan"))  # the first step has left the window
    np.testing.assert_allclose(sw._state[2][0], np.eye(2), atol=1e-12)
    np.testing.assert_allclose(sw._state[4][0], 0.0, atol=1e-12)


def test_fast_path_equals_validated_path():
    X, R, _ = _linear_problem(200, d=4)
    a1, a2 = LinUCB(3, 4, seed=0), LinUCB(3, 4, seed=0)
    for i in range(200):
        x = X[i]
        act1 = a1.act(x)
        act2 = a2.act(list(x))  # a list takes the full validation
        assert act1 == act2
        a1.update(x, act1, R[i, act1])
        a2.update(list(x), np.int64(act2), np.float32(R[i, act2]).item())
    np.testing.assert_allclose(a1.coef_, a2.coef_)
    with pytest.raises(ConfigError, match="context"):
        a1.act(np.array([1.0, np.inf, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="context"):
        a1.act(X[:2, 0])  # non-contiguous, wrong length


def test_lints_uniform_budget_and_reproducible_sampling():
    agent = LinTS(3, 5, seed=4)
    assert agent.n_uniforms == 16 and agent.kernels().n_uniforms == 16
    assert LinTS(2, 2).n_uniforms == 4
    x = np.ones(5) / 5
    first = [agent.act(x) for _ in range(50)]
    assert len(set(first)) > 1  # an untrained posterior explores every option
    agent.reset()
    assert [agent.act(x) for _ in range(50)] == first


@pytest.mark.parametrize("spec,pname", [("linucb(alpha=-1)", "alpha"), ("linucb(ridge=0)", "ridge"),
                                        ("linucb(refactor_every=0)", "refactor_every"),
                                        ("lints(v=0)", "v"), ("epsilon-greedy(epsilon=1.5)", "epsilon"),
                                        ("epsilon-greedy(decay=-0.1)", "decay"), ("d-linucb(gamma=1.0)", "gamma"),
                                        ("d-linucb(delta=0)", "delta"), ("sw-linucb(window=0)", "window"),
                                        ("sw-linucb(rebuild_every=0)", "rebuild_every"),
                                        ("static-threshold(confidence_index=9)", "confidence_index"),
                                        ("static-threshold(forward_action=3)", "forward_action")])
def test_out_of_range_hyperparameters(spec, pname):
    with pytest.raises(ConfigError, match=pname):
        make_agent(spec, 3, 4)


@pytest.mark.parametrize("module", ["linucb", "lints", "epsilon_greedy", "nonstationary", "threshold", "oracle"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"idnbandit.agents.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
