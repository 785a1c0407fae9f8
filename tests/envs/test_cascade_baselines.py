"""evaluate_cascade and best_per_hop_thresholds on Cascade-v0 (idn-4tier)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import idnbandit  # noqa: F401  registers the ids
from idnbandit.envs.cascade_baselines import (
    CascadeEval,
    PerHopThresholds,
    best_per_hop_thresholds,
    evaluate_cascade,
)
from idnbandit.errors import ConfigError

SEEDS = (0, 1)
N = 120


def _offload_return(action: int, seed: int, n: int) -> float:
    env = gym.make("idnbandit/Offload-v0", scenario="idn-4tier", episode_length=n, disable_env_checker=True)
    env.reset(seed=seed)
    total = 0.0
    for _ in range(n):
        total += env.step(action)[1]
    return total


def test_zero_thresholds_always_serve_at_origin():
    ev = evaluate_cascade(PerHopThresholds((0.0, 0.0, 0.0)), requests=N, seed=SEEDS)
    assert isinstance(ev, CascadeEval) and ev.requests == N * len(SEEDS)
    assert ev.serve_share == (1.0, 0.0, 0.0, 0.0)
    assert ev == evaluate_cascade(lambda obs: 0, requests=N, seed=SEEDS)
    # serving at the origin is Offload-v0's option 0, on the same request stream
    for s, r in zip(SEEDS, ev.seed_rewards, strict=True):
        assert r == pytest.approx(_offload_return(0, s, N) / N, rel=1e-12)
    assert ev.mean_latency_s < 0.01  # a phone answers in a few ms


def test_thresholds_above_one_always_reach_the_root():
    ev = evaluate_cascade(PerHopThresholds((1.01, 1.01, 1.01)), requests=N, seed=SEEDS)
    assert ev.serve_share == (0.0, 0.0, 0.0, 1.0)
    assert ev == evaluate_cascade(lambda obs: 1, requests=N, seed=SEEDS)
    assert ev.seed_rewards[0] == pytest.approx(_offload_return(3, SEEDS[0], N) / N, rel=1e-12)
    assert ev.accuracy > 0.95 and ev.mean_latency_s > 0.15  # the cloud model, ~160 ms away


def test_threshold_policy_reads_maxprob_and_hop():
    pol = PerHopThresholds((0.9, 0.5, 0.7))
    obs = np.array([0.8, 0.1, 0.2, 0.0, 0.0, 0.0], np.float32)
    assert pol(obs) == 1  # origin: 0.8 < 0.9
    obs[3] = 1 / 3
    assert pol(obs) == 0  # second stop: 0.8 >= 0.5
    obs[3], obs[0] = 2 / 3, 0.6
    assert pol(obs) == 1
    obs[3], obs[0] = 1.0, 0.0
    assert pol(obs) == 0  # the root serves


def test_predict_objects_are_accepted():
    class Model:  # Stable-Baselines3's interface
        def predict(self, obs, deterministic=False):
            assert deterministic
            return np.array(0 if obs[0] >= 0.8 else 1), None

    ev = evaluate_cascade(Model(), requests=N, seed=SEEDS)
    assert ev == evaluate_cascade(PerHopThresholds((0.8, 0.8, 0.8)), requests=N, seed=SEEDS)


def test_best_per_hop_thresholds_beats_the_static_corners():
    grid = (0.0, 0.7, 0.85, 0.95, 1.01)
    th, ev = best_per_hop_thresholds("idn-4tier", requests=N, seed=SEEDS, grid=grid, passes=2)
    assert len(th) == 3 and set(th) <= set(grid)
    assert ev == evaluate_cascade(PerHopThresholds(th), requests=N, seed=SEEDS)
    for corner in [(0.0,) * 3, (1.01,) * 3, (0.85,) * 3, (0.85, 1.01, 1.01)]:
        assert ev.mean_reward >= evaluate_cascade(PerHopThresholds(corner), requests=N, seed=SEEDS).mean_reward
    local = evaluate_cascade(PerHopThresholds((0.0,) * 3), requests=N, seed=SEEDS)
    assert ev.mean_reward > local.mean_reward + 0.02  # forwarding the unsure requests pays on idn-4tier
    assert ev.accuracy > local.accuracy


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: evaluate_cascade(lambda o: 0, requests=0), "requests"),
        (lambda: evaluate_cascade(lambda o: 0, requests=5, seed=-1), "seed"),
        (lambda: evaluate_cascade(lambda o: 0, requests=5, seed=[]), "seed"),
        (lambda: evaluate_cascade(lambda o: 0, requests=5, episode_length=3), "episode_length"),
        (lambda: evaluate_cascade(42, requests=5), "policy"),
        (lambda: best_per_hop_thresholds(requests=5, grid=()), "grid"),
        (lambda: best_per_hop_thresholds(requests=5, passes=0), "passes"),
        (lambda: PerHopThresholds([float("nan")]), "thresholds"),
    ],
)
def test_bad_arguments_raise(call, field):
    with pytest.raises(ConfigError, match=field):
        call()
