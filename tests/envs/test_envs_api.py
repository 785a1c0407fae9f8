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
        ("idnbandit/Offload-v0", {"render_mode": "video"}, "render_mode"),  # "human": gym wraps rgb_array
        ("idnbandit/Cascade-v0", {"episode_length": -3}, "episode_length"),
        ("idnbandit/Ensemble-v0", {"aggregation": "mean"}, "aggregation"),
    ],
)
def test_bad_constructor_args_raise(env_id, kw, field):
    kw = {"scenario": "hi-two-tier", **kw}
    with pytest.raises(ConfigError, match=field):
        gym.make(env_id, disable_env_checker=True, **kw)


def _same_completions(info_rows, ref_rows):
    """The env's ``info["completed"]`` entries are the engine's completions (same order, same values)."""
    assert [c["request"] for c in info_rows] == [c.request for c in ref_rows]
    for c, d in zip(info_rows, ref_rows, strict=True):
        assert c["outcome"] == d.outcome._asdict() and c["option"] == d.option
        assert (c["origin"], c["sample"], c["decided_s"], c["completed_s"]) == (d.origin, d.sample, d.decided_s,
                                                                                d.completed_s)
        assert c["feedback_reward"] == (None if np.isnan(d.feedback_reward) else d.feedback_reward)
        np.testing.assert_array_equal(c["feedback_mask"], ~np.isnan(d.feedback_rewards))
        np.testing.assert_array_equal(c["feedback_rewards"], np.nan_to_num(d.feedback_rewards, nan=0.0))
        np.testing.assert_array_equal(c["estimates"], d.estimates)


def test_offload_step_is_engine_apply_then_next_arrival():
    # a step = apply(a), run to the next arrival; its reward = the requests finalised meanwhile; the last
    # step drains (every request in flight finishes), as Engine.drain does
    from idnbandit.sim.engine import Engine

    actions = [0, 1, 2, 3, 1, 3, 3, 2, 3, 0, 1, 3]
    env = gym.make("idnbandit/Offload-v0", scenario="idn-4tier", feedback="label_on_forward",
                   disable_env_checker=True, episode_length=len(actions)).unwrapped
    obs, _ = env.reset(seed=11)
    assert env.observation_space.contains(obs)
    ref = Engine(env.scenario, seed=env.engine.seed)
    x = ref.next_request()
    delayed = 0
    for t, a in enumerate(actions):
        np.testing.assert_allclose(obs, np.clip(x, env._low, env._high).astype(np.float32))
        origin, sample = ref.origin, ref.sample
        g = ref.apply(a)
        x = ref.next_request()  # the truncated step's observation is the next arrival's, too
        if t == len(actions) - 1:
            from idnbandit.envs._common import end_episode

            done = ref.completed() + [c for c in _completions(end_episode(ref), ref)]
        else:
            done = ref.completed()
        obs, r, term, trunc, info = env.step(a)
        assert (info["request"], info["origin"], info["sample"]) == (g, origin, sample) == (t, origin, sample)
        _same_completions(info["completed"], done)
        total = 0.0
        for c in done:
            total += c.outcome.reward
        assert r == total
        delayed += any(c.request != g for c in done) or not done
        assert not term and trunc == (t == len(actions) - 1)
    assert ref.in_flight == 0 and ref.n_completed == len(actions)
    assert delayed > 0  # some rewards arrived after later decisions (remote options take longer than a gap)
    with pytest.raises(ConfigError, match="reset"):  # the truncated episode is over
        env.step(0)


def _completions(rows, eng):
    from idnbandit.sim.engine import completions_from_records

    return completions_from_records(eng.scenario, rows, eng.n_options)


class _Scripted:
    """An agent that plays a fixed list of actions (for simulate())."""

    name = "scripted"

    def __init__(self, actions, k, f):
        self.actions, self.n_actions, self.n_features, self.i = list(actions), k, f, 0

    def act(self, x):
        self.i += 1
        return self.actions[self.i - 1]

    def update(self, x, a, r, *, rewards=None):
        return self


@pytest.mark.parametrize("scenario", ["idn-4tier", "flash-crowd"])
def test_offload_episode_return_is_the_sum_of_its_request_rewards_in_simulate(scenario):
    # every request of the episode is finalised in exactly one step (the last one drains), and its reward
    # is the one simulate() gives the same request when the same actions are played on the same stream
    from idnbandit.sim import simulate

    n = 400
    env = gym.make("idnbandit/Offload-v0", scenario=scenario, episode_length=n, disable_env_checker=True).unwrapped
    env.reset(seed=3)
    actions = np.random.default_rng(1).integers(0, env.n_options, n).tolist()
    ret, rewards, in_flight = 0.0, {}, 0
    for a in actions:
        _, r, _, trunc, info = env.step(a)
        ret += r
        step = 0.0
        for c in info["completed"]:
            assert c["request"] not in rewards
            rewards[c["request"]] = c["outcome"]["reward"]
            step += c["outcome"]["reward"]
        assert r == step
        in_flight = max(in_flight, info["request"] + 1 - len(rewards))
    assert trunc and sorted(rewards) == list(range(n)) and in_flight > 1
    res = simulate(env.scenario, _Scripted(actions, env.n_options, len(env.context_names)), n,
                   seed=env.engine.seed, record_requests=True)
    np.testing.assert_array_equal(res.requests["reward"], [rewards[g] for g in range(n)])
    assert ret == pytest.approx(res.mean_reward * n, rel=1e-12, abs=1e-9)


def test_cascade_serving_step_and_last_hop_forward_serves():
    env = gym.make("idnbandit/Cascade-v0", scenario="idn-4tier", episode_length=1, disable_env_checker=True)
    env.reset(seed=5)
    n = env.unwrapped.n_stops
    for hop in range(n - 1):
        obs, r, _, trunc, info = env.step(1)
        assert r == 0.0 and not trunc and not info["served"] and info["completed"] == []
        assert obs[3] == pytest.approx((hop + 1) / (n - 1))
    obs, r, _, trunc, info = env.step(1)  # forward at the root = serve there; the episode (1 request) drains
    assert info["served"] and info["hop"] == n - 1 and trunc and info["request"] == 0
    assert info["estimates"].shape == (n,)
    (done,) = info["completed"]
    assert done["request"] == 0 and done["outcome"]["tier"] == "cloud"
    assert r == done["outcome"]["reward"]
    assert obs[3] == 0.0  # the next arrival at its origin


def test_cascade_return_is_the_sum_of_its_request_rewards():
    env = gym.make("idnbandit/Cascade-v0", scenario="idn-4tier", episode_length=60, disable_env_checker=True)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    rewards, ret, trunc = {}, 0.0, False
    while not trunc:
        _, r, _, trunc, info = env.step(int(rng.random() < 0.4))
        ret += r
        for c in info["completed"]:
            rewards[c["request"]] = c["outcome"]["reward"]
    assert sorted(rewards) == list(range(60))
    assert ret == pytest.approx(sum(rewards.values()), rel=1e-12)


def test_ensemble_single_query_return_is_scenario_reward():
    env = gym.make("idnbandit/Ensemble-v0", scenario="idn-4tier", disable_env_checker=True).unwrapped
    env.reset(seed=2)
    cf = env.engine.counterfactual_rewards()
    _, r1, _, _, _ = env.step(1)
    _, r_dup, _, _, _ = env.step(1)  # repeated query: a penalised no-op
    assert r_dup == pytest.approx(-0.01)
    _, r2, _, _, info = env.step(env.n_models)
    assert info["answered"] and info["queried"] == [1] and info["request"] == 0
    assert r1 + r2 == pytest.approx(cf[1])  # planning view: the decision-time estimate of the option


def test_ensemble_sends_each_request_once_and_lists_its_true_outcome():
    env = gym.make("idnbandit/Ensemble-v0", scenario="idn-4tier", episode_length=30, disable_env_checker=True)
    env.reset(seed=4)
    rng = np.random.default_rng(2)
    sent, done, trunc = {}, {}, False
    while not trunc:
        _, _, _, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        if info["answered"]:
            sent[info["request"]] = info["queried"][-1] if info["queried"] else 0
        for c in info.get("completed", []):
            assert c["request"] not in done
            done[c["request"]] = c["option"]
    assert done == sent and sorted(sent) == list(range(30))  # the last queried option was sent, each request once


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
