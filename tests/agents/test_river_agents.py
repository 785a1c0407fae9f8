"""The river-backed agents: SquareCB (river regressor oracle) and the RiverPolicy adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idnbandit.agents import RiverPolicy, SquareCB, make_agent
from idnbandit.errors import ConfigError


def _linear_stream(n, seed, k=3, d=3):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(k, d))
    xs = np.column_stack([rng.normal(size=(n, d - 1)), np.ones(n)])
    means = np.tanh(xs @ theta.T)  # (n, k) in (-1, 1)
    return xs, means, rng


def _play(agent, xs, means, rng):
    regret = 0.0
    for x, m in zip(xs, means):
        a = agent.act(x)
        regret += m.max() - m[a]
        r = float(np.clip(m[a] + 0.1 * rng.standard_normal(), -1, 1))
        assert agent.update(x, a, r) is agent
    return regret / len(xs)


def test_squarecb_beats_uniform_on_linear_bandit():
    xs, means, rng = _linear_stream(3000, 0)
    uniform_regret = float(np.mean(means.max(1) - means.mean(1)))
    agent = SquareCB(3, 3, seed=0)
    avg = _play(agent, xs, means, rng)
    print(f"SquareCB avg regret {avg:.3f} vs uniform {uniform_regret:.3f}")
    assert avg < 0.5 * uniform_regret
    assert not agent.has_kernels


def test_squarecb_probabilities_follow_igw():
    agent = SquareCB(3, 2, seed=0)
    np.testing.assert_allclose(agent.probabilities([0.3, 1.0]), [1 / 3] * 3)  # gamma = 0 before learning
    for _ in range(50):
        agent.update([0.3, 1.0], 1, 1.0)
        agent.update([0.3, 1.0], 0, -1.0)
    p = agent.probabilities([0.3, 1.0])
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 1 and p.min() > 0


def test_squarecb_nan_reward_does_not_learn_and_save_roundtrip(tmp_path):
    xs, means, rng = _linear_stream(400, 1)
    agent = SquareCB(3, 3, seed=3)
    _play(agent, xs[:300], means[:300], rng)
    before = agent.probabilities(xs[0])
    agent.update(xs[0], 0, math.nan)
    np.testing.assert_array_equal(agent.probabilities(xs[0]), before)
    loaded = SquareCB.load(agent.save(tmp_path / "sq"))
    for x in xs[300:]:
        a = agent.act(x)
        assert loaded.act(x) == a
        agent.update(x, a, 0.25)
        loaded.update(x, a, 0.25)
    np.testing.assert_allclose(loaded.probabilities(xs[0]), agent.probabilities(xs[0]))


def test_squarecb_other_oracles(tmp_path):
    from river import tree

    agent = SquareCB(2, 2, oracle="tree.HoeffdingTreeRegressor", seed=0)
    for _ in range(20):
        a = agent.act([0.5, 1.0])
        agent.update([0.5, 1.0], a, 0.5)
    with pytest.raises(ConfigError, match="oracle"):
        agent.save(tmp_path / "t")
    inst = SquareCB(2, 2, oracle=tree.HoeffdingTreeRegressor(), seed=0)
    assert inst.act([0.5, 1.0]) in (0, 1)
    with pytest.raises(ConfigError):
        inst.save(tmp_path / "i")


@pytest.mark.parametrize("kwargs, name", [
    ({"gamma_scale": 0}, "gamma_scale"),
    ({"gamma_exponent": 2}, "gamma_exponent"),
    ({"oracle": "linear_model.Nope"}, "oracle"),
    ({"oracle": "linear_model.LogisticRegression"}, "oracle"),
    ({"oracle_params": {"bogus": 1}}, "oracle_params"),
    ({"reward_max": -2}, "reward_max"),
])
def test_squarecb_bad_parameters(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        SquareCB(2, 2, **kwargs)


@pytest.mark.parametrize("spec", ["river-ucb", "river-epsilon-greedy", "river-linucb"])
def test_river_presets_learn(spec):
    xs, means, rng = _linear_stream(1500, 2)
    agent = make_agent(spec, n_actions=3, n_features=3, seed=0)
    uniform_regret = float(np.mean(means.max(1) - means.mean(1)))
    avg = _play(agent, xs, means, rng)
    print(f"{spec}: avg regret {avg:.3f} vs uniform {uniform_regret:.3f}")
    assert avg < uniform_regret


def test_river_policy_same_seed_same_actions_and_nan_skips():
    a1 = RiverPolicy(3, 2, policy="EpsilonGreedy", epsilon=0.3, seed=5)
    a2 = a1.clone()
    assert a2.get_params() == {"n_actions": 3, "n_features": 2, "policy": "EpsilonGreedy",
                               "policy_params": {"epsilon": 0.3}, "reward_min": -1.0, "reward_max": 1.0, "seed": 5}
    for t in range(200):
        x = [0.1 * (t % 10), 1.0]
        a = a1.act(x)
        assert a2.act(x) == a
        r = math.nan if t % 3 == 0 else float(a == 1)
        a1.update(x, a, r)
        a2.update(x, a, r)
    assert a1._state._n == 200 - 67  # NaN rewards were not fed to river


@pytest.mark.parametrize("policy", ["UCB", "EpsilonGreedy", "RandomPolicy"])
def test_river_policy_save_roundtrip(policy, tmp_path):
    agent = RiverPolicy(4, 1, policy=policy, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(100):
        a = agent.act([0.0])
        agent.update([0.0], a, float(rng.random() < 0.2 * a))
    loaded = RiverPolicy.load(agent.save(tmp_path / policy))
    for _ in range(100):
        a = agent.act([0.0])
        assert loaded.act([0.0]) == a
        r = float(rng.random() < 0.2 * a)
        agent.update([0.0], a, r)
        loaded.update([0.0], a, r)


def test_river_policy_unsaveable_and_bad_parameters(tmp_path):
    with pytest.raises(ConfigError, match="policy"):
        make_agent("river-linucb", n_actions=2, n_features=2).save(tmp_path / "x")
    with pytest.raises(ConfigError, match="policy"):
        RiverPolicy(2, 1, policy="LinUCB")
    with pytest.raises(ConfigError, match="policy_params"):
        RiverPolicy(2, 1, policy="UCB", policy_params={"nope": 1})
    with pytest.raises(ConfigError, match="policy_params"):
        RiverPolicy(2, 1, policy="UCB", policy_params={"seed": 1})
    with pytest.raises(ConfigError, match="action"):
        RiverPolicy(2, 1).update([0.0], 5, 1.0)
