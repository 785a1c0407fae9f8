"""The one-kernel vector env of Offload-v0: copy i == the single env with seed + i, step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import idnbandit  # noqa: F401  registers the ids
import idnbandit.sim.engine as engine_mod
from idnbandit.envs.vector import OffloadVectorEnv
from idnbandit.errors import ConfigError


def _vec(n, **kw):
    return gym.make_vec("idnbandit/Offload-v0", num_envs=n, vectorization_mode="vector_entry_point", **kw)


def _compare(kw, n=3, episode=25, steps=70, seed=10):
    venv = _vec(n, episode_length=episode, **kw)
    singles = [gym.make("idnbandit/Offload-v0", episode_length=episode, disable_env_checker=True, **kw)
               for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]))
    rng = np.random.default_rng(0)
    reset_next = [False] * n
    for _ in range(steps):
        a = rng.integers(0, venv.single_action_space.n, n)
        obs, r, term, trunc, infos = venv.step(a)
        assert not term.any()
        for i, e in enumerate(singles):
            if reset_next[i]:  # NEXT_STEP autoreset: the copy restarts, its action is ignored
                o, _ = e.reset()
                ri, tri = 0.0, False
                assert not infos["_correct"][i]
            else:
                o, ri, _, tri, info = e.step(int(a[i]))
                out = info["outcome"]
                assert infos["_correct"][i] and infos["correct"][i] == out["correct"]
                assert infos["latency_ms"][i] == pytest.approx(out["latency_ms"], rel=1e-12)
                assert infos["cost"][i] == out["cost"]
                fr = info["feedback_reward"]
                assert infos["feedback_observed"][i] == (fr is not None)
                assert infos["feedback_reward"][i] == (0.0 if fr is None else fr)
            np.testing.assert_array_equal(obs[i], o)
            assert r[i] == ri and trunc[i] == tri
            reset_next[i] = tri
    return venv


@pytest.mark.parametrize(
    "kw",
    [
        {"scenario": "idn-4tier"},  # bandit feedback
        {"scenario": "idn-4tier", "feedback": "label_on_forward"},
        {"scenario": "hi-two-tier", "feedback": "full"},
        {"scenario": "idn-4tier", "feedback": "full"},
        {"scenario": "hi-two-tier", "feedback": "proxy"},
        {"scenario": "flash-crowd"},  # bursty arrivals: whole chunks, not lazy blocks
    ],
)
def test_copy_i_equals_single_env_with_seed_plus_i(kw):
    _compare(kw)


def test_growing_background_windows_keep_results(monkeypatch):
    # tiny windows force every copy to grow (and the vector env to re-place the state rows)
    monkeypatch.setattr(engine_mod, "BG_WINDOW", 4)
    venv = _compare({"scenario": "idn-4tier"}, n=2, episode=400, steps=500)
    assert venv.unwrapped._sf2.shape[1] > 4 * 7 * 2


def test_spaces_metadata_and_default_mode():
    venv = gym.make_vec("idnbandit/Offload-v0", num_envs=5, scenario="hi-two-tier")
    assert isinstance(venv.unwrapped, OffloadVectorEnv)  # the registered vector entry point is the default
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert venv.observation_space.shape == (5, len(venv.unwrapped.context_names)) and venv.action_space.nvec.tolist() == [2] * 5
    obs, infos = venv.reset(seed=1)
    assert infos == {} and venv.observation_space.contains(obs)
    obs2, r, term, trunc, infos = venv.step(venv.action_space.sample())
    assert venv.observation_space.contains(obs2) and obs2 is not obs
    assert r.dtype == np.float64 and term.dtype == bool and trunc.dtype == bool
    again, _ = venv.reset(seed=1)
    np.testing.assert_array_equal(again, obs)  # reset(seed) is reproducible
    assert not np.shares_memory(again, venv.step(np.zeros(5, np.int64))[0])  # returned data is not reused


def test_vector_wrappers_count_episodes():
    venv = gym.wrappers.vector.RecordEpisodeStatistics(_vec(4, scenario="hi-two-tier", episode_length=10))
    venv.reset(seed=0)
    ends = 0
    for _ in range(22):
        *_, infos = venv.step(np.ones(4, np.int64))
        if "episode" in infos:
            ends += int(infos["_episode"].sum())
            assert np.all(infos["episode"]["l"][infos["_episode"]] == 10)
    assert ends == 8  # two episodes of 10 steps (+ 1 autoreset step) per copy


@pytest.mark.parametrize("actions", [np.array([0, 1]), np.array([0, 1, 2]), np.array([0.0, 1.0, 0.0]),
                                     np.array([True, False, True]), [0, -1, 0]])
def test_invalid_actions_raise(actions):
    venv = _vec(3, scenario="hi-two-tier")
    venv.reset(seed=0)
    with pytest.raises(ConfigError, match="actions"):
        venv.step(actions)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="num_envs"):
        OffloadVectorEnv(num_envs=0, scenario="hi-two-tier")
    with pytest.raises(ConfigError, match="episode_length"):
        OffloadVectorEnv(num_envs=2, scenario="hi-two-tier", episode_length=0)
    venv = OffloadVectorEnv(num_envs=2, scenario="hi-two-tier")
    with pytest.raises(ConfigError, match="reset"):
        venv.step(np.zeros(2, np.int64))
    with pytest.raises(ConfigError, match="seed"):
        venv.reset(seed=[1, 2, 3])
