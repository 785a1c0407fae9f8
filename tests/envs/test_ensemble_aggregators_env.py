"""Ensemble-v0 with the probability aggregators of idnbandit.ensembles (on ensemble-hetero)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import idnbandit  # noqa: F401  registers the ids
from idnbandit.ensembles import make_aggregator
from idnbandit.envs.ensemble import AGGREGATIONS, aggregate
from idnbandit.errors import ConfigError


def _env(aggregation, **kw):
    return gym.make("idnbandit/Ensemble-v0", scenario="ensemble-hetero", aggregation=aggregation,
                    disable_env_checker=True, **kw).unwrapped


@pytest.mark.parametrize("aggregation", ["bagging"])
def test_checkers_pass(aggregation):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(_env(aggregation, episode_length=20), skip_render_check=True)
        sb3_check_env(_env(aggregation, episode_length=20), warn=True)


def _rollout(aggregation, seed, steps=200):
    env = _env(aggregation, episode_length=30)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(11)
    trail = [obs]
    for _ in range(steps):
        obs, r, _, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        trail += [obs, r, info.get("answer")]
        if trunc:
            obs, _ = env.reset()
            trail.append(obs)
    return trail


@pytest.mark.parametrize("aggregation", ["hedge", "bagging", "stacking"])
def test_same_seed_same_rollout(aggregation):
    a, b = _rollout(aggregation, 1), _rollout(aggregation, 1)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_answer_is_the_aggregators_vote_and_learned_aggregators_learn():
    env = _env("hedge", episode_length=50)
    env.reset(seed=0)
    eng = env.engine
    trace = eng.trace
    ref = make_aggregator("hedge", env.n_models, trace.n_classes)
    answered = 0
    while answered < 40:
        origin, sample = eng.origin, eng.sample
        _, _, _, _, info = env.step(3)  # cloud first,
        _, _, _, _, info = env.step(0)  # then local,
        _, _, _, _, info = env.step(env.n_models)  # then stop
        assert info["answered"] and info["queried"] == [3, 0]
        probs = trace.probs[env._cols[origin, [3, 0]], sample]
        assert info["answer"] == ref.combine([3, 0], probs).answer
        ref.update([3, 0], probs, int(trace.labels[sample]))  # ensemble-hetero has full feedback
        answered += 1
    np.testing.assert_allclose(env._agg.weights, ref.weights)
    assert env._agg._t == 40


def test_aggregations_listed_and_checked():
    assert set(AGGREGATIONS) >= {"majority", "confidence", "sum-prob", "log-linear", "hedge", "stacking",
                                 "bagging", "boosting"}
    with pytest.raises(ConfigError, match="aggregation"):
        _env("sum_prob")
    with pytest.raises(ConfigError, match="how"):
        aggregate(np.array([1]), np.array([0.5]), "sum-prob")
