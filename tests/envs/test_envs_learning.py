"""A real RL client learns on Offload-v0: SB3 PPO and DQN beat the random policy on held-out seeds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import idnbandit  # noqa: F401  registers the ids

SCENARIO = "hi-two-tier"  # local-vs-cloud with the local confidence in the context: a clear signal
EPISODE = 200
HELD_OUT = range(1000, 1004)  # never used for training (training episodes draw from seed 0)
MARGIN = 0.03  # mean reward per request above the random policy (random ~0.85, best threshold ~0.93)


def mean_reward(policy, seeds=HELD_OUT) -> float:
    out = []
    for s in seeds:
        env = gym.make("idnbandit/Offload-v0", scenario=SCENARIO, episode_length=EPISODE)
        obs, _ = env.reset(seed=s)
        env.action_space.seed(s)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs, env))
            total += r
            done = term or trunc
        out.append(total / EPISODE)
    return float(np.mean(out))


@pytest.fixture(scope="module")
def random_reward():
    return mean_reward(lambda obs, env: env.action_space.sample())


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["PPO", "DQN"])
def test_sb3_beats_random(algo, random_reward):
    import stable_baselines3 as sb3
    import torch

    torch.set_num_threads(1)
    env = gym.make("idnbandit/Offload-v0", scenario=SCENARIO, episode_length=EPISODE)
    if algo == "PPO":
        model = sb3.PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=4, learning_rate=3e-3, seed=0,
                        device="cpu", policy_kwargs={"net_arch": [32, 32]})
        budget = 3072
    else:
        model = sb3.DQN("MlpPolicy", env, learning_starts=500, train_freq=4, target_update_interval=250,
                        exploration_fraction=0.3, learning_rate=1e-3, seed=0, device="cpu",
                        policy_kwargs={"net_arch": [32, 32]})
        budget = 4096
    model.learn(budget)
    learned = mean_reward(lambda obs, env: int(model.predict(obs, deterministic=True)[0]))
    assert learned > random_reward + MARGIN, (algo, learned, random_reward)


@pytest.mark.slow
def test_sb3_example_script_runs(capsys, script_module):
    mod = script_module("examples/train_sb3_ppo.py")
    mod.main(["--budget", "256", "--episode-length", "40"])
    assert "PPO" in capsys.readouterr().out
