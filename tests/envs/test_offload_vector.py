"""The one-kernel vector env of Offload-v0: copy i == the single env with seed + i, step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import idnbandit  # noqa: F401  registers the ids
import idnbandit.sim.workload as workload_mod
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
    most_completed, largest = 0, 0  # in one step of one copy; state size (floats)
    for _ in range(steps):
        a = rng.integers(0, venv.single_action_space.n, n)
        obs, r, term, trunc, infos = venv.step(a)
        assert not term.any()
        most_completed = max(most_completed, int(infos["n_completed"].max()))
        largest = max(largest, *(e.packs[2].size for e in venv.unwrapped.engines))
        for i, e in enumerate(singles):
            if reset_next[i]:  # NEXT_STEP autoreset: the copy restarts, its action is ignored
                o, _ = e.reset()
                ri, tri = 0.0, False
                assert not infos["_n_completed"][i]
            else:
                o, ri, _, tri, info = e.step(int(a[i]))
                done = info["completed"]
                assert infos["_n_completed"][i] and infos["n_completed"][i] == len(done)
                assert infos["request"][i] == info["request"]
                assert infos["n_correct"][i] == sum(c["outcome"]["correct"] for c in done)
                assert infos["latency_ms_sum"][i] == pytest.approx(sum(c["outcome"]["latency_ms"] for c in done),
                                                                   rel=1e-12)
                assert infos["cost_sum"][i] == pytest.approx(sum(c["outcome"]["cost"] for c in done), rel=1e-12)
                seen = [c["feedback_reward"] for c in done if c["feedback_reward"] is not None]
                assert infos["n_feedback"][i] == len(seen)
                assert infos["feedback_reward_sum"][i] == pytest.approx(sum(seen), rel=1e-12, abs=1e-12)
            np.testing.assert_array_equal(obs[i], o)
            assert r[i] == ri and trunc[i] == tri
            reset_next[i] = tri
    return venv, most_completed, largest


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


def test_refills_growth_and_full_record_buffers_keep_results(monkeypatch):
    # tiny background blocks force frequent refills; flash-crowd's overload grows every copy's state (new
    # packs, new addresses for the kernel) and its drains finalise more requests than the record buffer
    # holds; the single envs draw request blocks of other sizes: none of it may change a trajectory
    monkeypatch.setattr(workload_mod, "_BG_BLOCK", 16)
    _, most_completed, largest = _compare({"scenario": "flash-crowd"}, n=2, episode=1000, steps=1100, seed=3)
    assert largest > 50_000  # grown (a fresh flash-crowd state has about 30,000 floats)
    assert most_completed > 256  # more than the 256 rows of the record buffer in one (draining) step


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
