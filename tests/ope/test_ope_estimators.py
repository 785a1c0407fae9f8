"""Off-policy estimators: hand-computed cases, a row-by-row reference, streaming, and coverage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_ope import reference_estimates, reference_ridge

from idnbandit.errors import ConfigError, LogError, UnknownNameError
from idnbandit.ope import (
    ESTIMATORS,
    DecisionLog,
    LogMeta,
    RidgeRewardModel,
    deterministic_policy,
    evaluate,
    sim_value,
    synthetic_log,
    uniform_policy,
    write_log,
)
from idnbandit.ope._bootstrap import poisson_counts


class FixedModel:
    """A reward model that predicts a given table (the protocol: partial_fit, finish, predict)."""

    def __init__(self, q):
        self.q = np.asarray(q, dtype=float)

    def partial_fit(self, request, x, action, reward):
        pass

    def finish(self):
        pass

    def predict(self, request, x):
        return self.q[request]


def make_log(n, n_options=3, d=2, seed=0, logging="softmax", simulated=True):
    log, mean = synthetic_log(n, n_options, d, logging=logging, seed=seed)
    if not simulated:
        log = log._replace(meta=dataclasses.replace(log.meta, simulated=False), sim_rewards=None)
    return log, mean


def greedy(n_options, d):
    w = np.linspace(-1, 1, n_options * d).reshape(n_options, d)
    b = np.linspace(0, 0.3, n_options)
    return deterministic_policy(lambda x: np.argmax(x @ w.T + b, axis=1), n_options)


def test_hand_computed_two_rows():
    # row 0: logged a=1 with p=0.5, reward 1; row 1: logged a=0 with p=0.25, reward 0.4
    meta = LogMeta(n_options=2, n_features=1)
    log = DecisionLog(meta, np.array([0, 1]), np.zeros(2), np.zeros(2, np.int64), np.zeros((2, 1)),
                      np.array([1, 0]), np.array([0.5, 0.25]), np.ones(2, bool), np.array([1.0, 0.4]), None)
    target = lambda x: np.array([[0.2, 0.8], [0.6, 0.4]])  # noqa: E731
    q = [[0.1, 0.7], [0.5, 0.2]]
    est = {e.estimator: e.value for e in evaluate(log, target, reward_model=FixedModel(q), n_boot=0)}
    # weights: 0.8/0.5 = 1.6 and 0.6/0.25 = 2.4
    assert est["ips"] == pytest.approx((1.6 * 1.0 + 2.4 * 0.4) / 2)
    assert est["snips"] == pytest.approx((1.6 * 1.0 + 2.4 * 0.4) / (1.6 + 2.4))
    dm0, dm1 = 0.2 * 0.1 + 0.8 * 0.7, 0.6 * 0.5 + 0.4 * 0.2
    assert est["dm"] == pytest.approx((dm0 + dm1) / 2)
    assert est["dr"] == pytest.approx((dm0 + 1.6 * (1.0 - 0.7) + dm1 + 2.4 * (0.4 - 0.5)) / 2)
    sw = evaluate(log, target, reward_model=FixedModel(q), n_boot=0, tau=2.0, estimators=["switch-dr"])[0]
    assert sw.value == pytest.approx((dm0 + 1.6 * (1.0 - 0.7) + dm1) / 2)  # row 1's weight 2.4 > tau
    dc = evaluate(log, target, reward_model=FixedModel(q), n_boot=0, clip=2.0, estimators=["dr-clip"])[0]
    assert dc.value == pytest.approx((dm0 + 1.6 * (1.0 - 0.7) + dm1 + 2.0 * (0.4 - 0.5)) / 2)
    assert sw.ess == pytest.approx((1.6 + 2.4) ** 2 / (1.6**2 + 2.4**2))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 4), seed=st.integers(0, 10**6),
       tau=st.floats(0.5, 20), clip=st.floats(0.5, 20))
def test_matches_the_row_by_row_reference(n, k, seed, tau, clip):
    rng = np.random.default_rng(seed)
    log, _ = make_log(n, n_options=k, d=2, seed=seed, simulated=False)
    pi = rng.dirichlet(np.ones(k), size=n)
    q = rng.normal(size=(n, k))
    got = {e.estimator: e.value for e in evaluate(log, lambda x: pi, reward_model=FixedModel(q), n_boot=0,
                                                   tau=tau, clip=clip)}
    want = reference_estimates(pi, log.action, log.propensity, log.reward, q, tau=tau, clip=clip)
    for name in ESTIMATORS:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_poisson_bootstrap_matches_a_reference_resampling():
    log, _ = make_log(300, seed=3, simulated=False)
    pi = uniform_policy(3)
    q = np.zeros((300, 3))
    got = evaluate(log, pi, reward_model=FixedModel(q), n_boot=50, seed=11, estimators=["ips", "snips"])
    counts = poisson_counts(300, 50, 11).astype(float)
    rho = (1 / 3) / log.propensity
    ips = counts @ (rho * log.reward) / counts.sum(axis=1)
    snips = counts @ (rho * log.reward) / (counts @ rho)
    for e, boot in zip(got, (ips, snips)):
        assert (e.ci_low, e.ci_high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
        assert e.std_error == pytest.approx(boot.std(ddof=1))


def test_bootstrap_counts_are_poisson_one_and_do_not_depend_on_chunking(tmp_path):
    counts = poisson_counts(20_000, 50, 3)
    assert abs(counts.mean() - 1) < 0.01 and abs(counts.var() - 1) < 0.02
    for k, pk in enumerate([0.36788, 0.36788, 0.18394, 0.06131]):
        assert abs((counts == k).mean() - pk) < 0.005
    assert (poisson_counts(100, 5, 3) == counts[:5, :100]).all()  # a row's counts are its own
    log, _ = make_log(500, seed=8)
    write_log(tmp_path / "l.parquet", log)
    whole = evaluate(log, greedy(3, 2), n_boot=100, seed=4)
    streamed = evaluate(tmp_path / "l.parquet", greedy(3, 2), n_boot=100, seed=4, chunk_rows=33)
    for a, b in zip(whole, streamed):
        assert (a.ci_low, a.ci_high) == pytest.approx((b.ci_low, b.ci_high), rel=1e-9)


def test_ridge_model_matches_the_normal_equations_and_cross_fits():
    log, _ = make_log(500, seed=1, simulated=False)
    m = RidgeRewardModel(3, 2, l2=0.5, n_folds=1)
    m.partial_fit(log.request, log.x, log.action, log.reward)
    theta = reference_ridge(log.x, log.action, log.reward, 3, 0.5)
    q = m.predict(log.request, log.x)
    np.testing.assert_allclose(q, np.column_stack([log.x, np.ones(500)]) @ theta.T, rtol=1e-10)
    # cross-fitting: a row's prediction does not move when the rewards of its own fold change
    from idnbandit.ope.reward_model import fold_of

    fold = fold_of(log.request, 2)
    r2 = log.reward.copy()
    r2[fold == 0] += 100.0
    ms = [RidgeRewardModel(3, 2, n_folds=2) for _ in range(2)]
    ms[0].partial_fit(log.request, log.x, log.action, log.reward)
    ms[1].partial_fit(log.request, log.x, log.action, r2)
    q0, q1 = (mm.predict(log.request, log.x) for mm in ms)
    np.testing.assert_allclose(q0[fold == 0], q1[fold == 0], rtol=1e-12)
    assert np.abs(q0[fold == 1] - q1[fold == 1]).min() > 1.0


def test_streaming_from_files_equals_in_memory(tmp_path):
    log, _ = make_log(1000, seed=5)
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"log{suffix}"
        write_log(path, log)
        mem = evaluate(log, greedy(3, 2), n_boot=0)
        streamed = evaluate(path, greedy(3, 2), n_boot=0, chunk_rows=77)
        for a, b in zip(mem, streamed):
            assert a.value == pytest.approx(b.value, rel=1e-9), (suffix, a.estimator)
        assert sim_value(path, greedy(3, 2), chunk_rows=77) == pytest.approx(sim_value(log, greedy(3, 2)))


def test_estimators_find_the_truth_and_intervals_cover_it():
    """Over 40 logs of a softmax logging policy, every unbiased estimator's 95% interval covers the
    target's true value (its mean reward under the true model) in most runs, and DR beats IPS in error."""
    target = greedy(3, 2)
    cover = {e: 0 for e in ("ips", "snips", "dr")}
    err = {e: [] for e in cover}
    runs = 40
    for seed in range(runs):
        log, mean = make_log(2000, seed=seed)
        truth = float(mean[np.arange(2000), target(log.x).argmax(axis=1)].mean())
        for e in evaluate(log, target, estimators=list(cover), n_boot=200, seed=seed):
            cover[e.estimator] += e.ci_low <= truth <= e.ci_high
            err[e.estimator].append(abs(e.value - truth))
    for e, c in cover.items():
        assert c / runs >= 0.85, (e, c)
    assert np.mean(err["dr"]) < np.mean(err["ips"])


def test_unobserved_rewards_are_refused_or_dropped_with_a_warning():
    log, _ = make_log(50, seed=2, simulated=False)
    obs = log.observed.copy()
    obs[7] = False
    r = log.reward.copy()
    r[7] = np.nan
    log = log._replace(observed=obs, reward=r)
    with pytest.raises(LogError, match="no observed reward.*missing='drop'"):
        evaluate(log, uniform_policy(3), n_boot=0)
    with pytest.warns(UserWarning, match="1 rows without an observed reward were dropped"):
        est = evaluate(log, uniform_policy(3), n_boot=0, missing="drop")
    assert est[0].n == 49


@pytest.mark.parametrize("kwargs, err, match", [
    ({"estimators": ["ipw"]}, UnknownNameError, "did you mean 'ips'"),
    ({"estimators": []}, ConfigError, "estimators"),
    ({"n_boot": -1}, ConfigError, "n_boot"),
    ({"n_boot": 10**9}, ConfigError, "n_boot"),
    ({"alpha": 1.5}, ConfigError, "alpha"),
    ({"tau": 0}, ConfigError, "tau"),
    ({"clip": float("nan")}, ConfigError, "clip"),
    ({"missing": "skip"}, ConfigError, "missing"),
    ({"reward_model": "forest"}, UnknownNameError, "reward model"),
    ({"reward_model": object()}, ConfigError, "fit/predict"),
    ({"n_folds": 0}, ConfigError, "n_folds"),
    ({"chunk_rows": 0}, ConfigError, "chunk_rows"),
    ({"seed": -1}, ConfigError, "seed"),
])
def test_bad_arguments(kwargs, err, match):
    log, _ = make_log(20, simulated=False)
    with pytest.raises(err, match=match):
        evaluate(log, uniform_policy(3), **kwargs)


@pytest.mark.parametrize("probs, match", [
    (lambda x: np.full((x.shape[0], 2), 0.5), r"shape \(20, 2\)"),
    (lambda x: np.full((x.shape[0], 3), 0.5), "sum to 1.5"),
    (lambda x: np.full((x.shape[0], 3), np.nan), "non-finite"),
    (lambda x: np.tile([1.5, -0.5, 0.0], (x.shape[0], 1)), "negative"),
])
def test_a_policy_returning_bad_probabilities_is_named(probs, match):
    log, _ = make_log(20, simulated=False)
    with pytest.raises(ConfigError, match=f"policy bad: .*{match}"):
        evaluate(log, {"bad": probs}, n_boot=0)


def test_sim_value_needs_a_simulated_log():
    log, mean = make_log(20, simulated=False)
    with pytest.raises(LogError, match="not a simulated log"):
        sim_value(log, uniform_policy(3))
    log, _ = make_log(200, seed=4)
    assert sim_value(log, uniform_policy(3)) == pytest.approx(log.sim_rewards.mean())


def test_sklearn_reward_model_is_accepted():
    from sklearn.linear_model import Ridge

    log, _ = make_log(400, seed=6, simulated=False)
    a = evaluate(log, greedy(3, 2), reward_model=Ridge(alpha=1.0), estimators=["dm", "dr"], n_boot=0)
    b = evaluate(log, greedy(3, 2), estimators=["dm", "dr"], n_boot=0)
    for x, y in zip(a, b):  # the same model family: close, not equal (sklearn does not penalise the intercept)
        assert x.value == pytest.approx(y.value, abs=0.02)


def test_replay_of_a_fixed_policy_estimates_its_value_and_a_learner_warms_up():
    from idnbandit.agents.registry import make_agent
    from idnbandit.ope import replay

    class Always:
        n_actions = 3

        def __init__(self, k):
            self.k = k

        def act(self, x):
            return self.k

        def update(self, x, a, r):
            return self

    for logging in ("uniform", "softmax"):
        log, mean = synthetic_log(30_000, logging=logging, seed=2)
        for k in range(3):
            res = replay(Always(k), log, seed=1)
            assert res.accepted > 0.15 * log.n_rows * res.p_min * 3
            assert res.mean_reward == pytest.approx(mean[:, k].mean(), abs=0.03), (logging, k)
    log, mean = synthetic_log(30_000, logging="uniform", seed=3)
    agent = make_agent("linucb", 3, 2, seed=0)
    res = replay(agent, log, seed=0)
    assert res.mean_reward > mean.mean() + 0.1  # learns to beat the uniform policy on the replayed stream
    greedy_value = mean[np.arange(log.n_rows), [agent.act(x) for x in log.x]].mean()
    assert greedy_value > mean.max(axis=1).mean() - 0.05  # and leaves trained


def test_replay_refuses_unobserved_rows_and_bad_agents():
    from idnbandit.ope import replay

    log, _ = make_log(50, simulated=False)
    with pytest.raises(ConfigError, match="act/update"):
        replay(object(), log)
    obs = log.observed.copy()
    obs[0] = False
    r = log.reward.copy()
    r[0] = np.nan
    with pytest.raises(LogError, match="row 0: no observed reward"):
        replay(uniform_agent(), log._replace(observed=obs, reward=r))


def uniform_agent():
    class U:
        n_actions = 3

        def act(self, x):
            return 0

        def update(self, x, a, r):
            return self

    return U()
