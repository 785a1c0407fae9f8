"""API, checker, determinism and error tests of the idnbandit Gymnasium environments."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import idnbandit  # noqa: F401  registers the ids
from idnbandit.envs.ensemble import aggregate
from idnbandit.errors import ConfigError

CASES = [
    ("idnbandit/Offload-v0", {"scenario": "idn-4tier", "feedback": "label_on_forward"}),
    ("idnbandit/Offload-v0", {"scenario": "hi-two-tier"}),
    ("idnbandit/Cascade-v0", {"scenario": "idn-4tier"}),
    ("idnbandit/Ensemble-v0", {"scenario": "idn-4tier", "aggregation": "majority"}),
    ("idnbandit/Ensemble-v0", {"scenario": "idn-4tier", "aggregation": "confidence"}),
]


def _make(env_id, kw, **extra):
    return gym.make(env_id, disable_env_checker=True, **kw, **extra)


@pytest.mark.parametrize(("env_id", "kw"), CASES)
def test_gymnasium_check_env(env_id, kw):
    env = _make(env_id, kw, episode_length=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checker warning either
        gym_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize(("env_id", "kw"), CASES)
def test_sb3_check_env(env_id, kw):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(_make(env_id, kw, episode_length=20).unwrapped, warn=True)


def _rollout(env_id, kw, seed, steps=150):
    env = _make(env_id, kw, episode_length=40)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(7)
    trail = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        trail += [obs, r, trunc, info.get("outcome", {}).get("latency_ms")]
        if term or trunc:
            obs, _ = env.reset()
            trail.append(obs)
    return trail


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


@pytest.mark.parametrize(("env_id", "kw"), CASES[::2])
def test_same_seed_same_rollout(env_id, kw):
    a = _rollout(env_id, kw, 3)
    _same(a, _rollout(env_id, kw, 3))
    other = _rollout(env_id, kw, 4)
    assert any(not np.array_equal(x, y) for x, y in zip(a, other, strict=True) if isinstance(x, np.ndarray))


@pytest.mark.parametrize(("env_id", "kw"), CASES[::2])
@pytest.mark.parametrize("action", [-1, 99, 1.5, "1", True, np.array([0, 1])])
def test_invalid_action_raises(env_id, kw, action):
    env = _make(env_id, kw)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="action"):
        env.step(action)


@pytest.mark.parametrize("env_id", [c[0] for c in CASES[::2]])
def test_step_before_reset_raises(env_id):
    with pytest.raises(ConfigError, match="reset"):
        gym.make(env_id, scenario="hi-two-tier", disable_env_checker=True).unwrapped.step(0)


@pytest.mark.filterwarnings("ignore:.*render_mode")
@pytest.mark.parametrize(
    ("env_id", "kw", "field"),
    [
        ("idnbandit/Offload-v0", {"episode_length": 0}, "episode_length"),
        ("idnbandit/Offload-v0", {"episode_length": 2.5}, "episode_length"),
        ("idnbandit/Offload-v0", {"feedback": "oracle"}, "feedback"),
        ("idnbandit/Offload-v0", {"scenario": 42}, "scenario"),
        ("idnbandit/Offload-v0", {"render_mode": "human"}, "render_mode"),
        ("idnbandit/Cascade-v0", {"episode_length": -3}, "episode_length"),
        ("idnbandit/Ensemble-v0", {"aggregation": "mean"}, "aggregation"),
    ],
)
def test_bad_constructor_args_raise(env_id, kw, field):
    kw = {"scenario": "hi-two-tier", **kw}
    with pytest.raises(ConfigError, match=field):
        gym.make(env_id, disable_env_checker=True, **kw)


def test_offload_reward_and_feedback_match_engine():
    from idnbandit.sim.engine import Engine

    env = gym.make("idnbandit/Offload-v0", scenario="idn-4tier", feedback="label_on_forward",
                   disable_env_checker=True, episode_length=5).unwrapped
    obs, _ = env.reset(seed=11)
    assert env.observation_space.contains(obs)
    eng_seed = env.engine.seed
    ref = Engine(env.scenario, seed=eng_seed)
    for t, a in enumerate([0, 1, 2, 3, 1]):
        x = ref.next_request()
        np.testing.assert_allclose(obs, np.clip(x, env._low, env._high).astype(np.float32))
        out, fr, frs = ref.apply(a)
        obs, r, term, trunc, info = env.step(a)
        assert r == out.reward and info["outcome"] == out._asdict()
        assert info["feedback_reward"] == (None if np.isnan(fr) else fr)
        np.testing.assert_array_equal(info["feedback_mask"], ~np.isnan(frs))
        assert info["counterfactual_rewards"][a] == pytest.approx(out.reward)
        assert not term and trunc == (t == 4)
    # label_on_forward: serving locally reveals nothing, forwarding reveals the local option too
    assert env.scenario.feedback.mode == "label_on_forward"


def test_cascade_return_equals_served_reward_and_last_hop_forward_serves():
    env = gym.make("idnbandit/Cascade-v0", scenario="idn-4tier", episode_length=3, disable_env_checker=True)
    env.reset(seed=5)
    n = env.unwrapped.n_stops
    total = 0.0
    for hop in range(n - 1):
        obs, r, _, _, info = env.step(1)
        assert r == 0.0 and not info["served"] and obs[3] == pytest.approx((hop + 1) / (n - 1))
        total += r
    obs, r, _, _, info = env.step(1)  # forward at the root = serve there
    assert info["served"] and info["hop"] == n - 1
    assert info["outcome"]["tier"] == "cloud"
    assert total + r == pytest.approx(info["outcome"]["reward"])
    assert r == pytest.approx(info["counterfactual_rewards"][-1])
    assert obs[3] == 0.0  # back at the origin for the next request


def test_ensemble_single_query_return_is_scenario_reward():
    env = gym.make("idnbandit/Ensemble-v0", scenario="idn-4tier", disable_env_checker=True).unwrapped
    env.reset(seed=2)
    cf = env.engine.counterfactual_rewards()
    _, r1, _, _, _ = env.step(1)
    _, r_dup, _, _, _ = env.step(1)  # repeated query: a penalised no-op
    assert r_dup == pytest.approx(-0.01)
    _, r2, _, _, info = env.step(env.n_models)
    assert info["answered"] and info["queried"] == [1]
    assert r1 + r2 == pytest.approx(cf[1])


def test_aggregate_rules():
    preds = np.array([3, 5, 5, 3])
    confs = np.array([0.9, 0.2, 0.3, 0.95])
    assert aggregate(preds, confs, "majority") == (3, 0.5)  # 2-2 tie, larger summed confidence wins
    assert aggregate(preds[:3], confs[:3], "majority")[0] == 5
    ans, share = aggregate(preds[:3], confs[:3], "confidence")
    assert ans == 3 and share == pytest.approx(0.9 / 1.4)
    assert aggregate(np.array([-1]), np.array([0.0]), "majority") == (-1, 0.0)


def test_import_registers_ids_without_heavy_modules():
    import subprocess
    import sys

    code = ("import sys, gymnasium, idnbandit; "
            "assert {'idnbandit/Offload-v0', 'idnbandit/Cascade-v0', 'idnbandit/Ensemble-v0'} <= set(gymnasium.registry); "
            "heavy = [m for m in ('torch', 'ray', 'matplotlib', 'idnbandit.sim.engine') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
