"""SB3 PPO on Cascade-v0 (idn-4tier) comes within 5% of the best static per-hop threshold policy."""

from __future__ import annotations

import gymnasium as gym
import pytest

import idnbandit  # noqa: F401  registers the ids
from idnbandit.envs.cascade_baselines import PerHopThresholds, best_per_hop_thresholds, evaluate_cascade

HELD_OUT = (2000, 2001, 2002)  # evaluation seeds; PPO trains on seed 0's stream, thresholds are fitted on 0-2
REQUESTS = 200
GRID = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.01)


@pytest.mark.slow
def test_ppo_within_five_percent_of_best_per_hop_thresholds():
    import stable_baselines3 as sb3
    import torch

    torch.set_num_threads(1)
    # one request per episode and gamma = 1: the return of "forward" is the reward where the request is served
    env = gym.make("idnbandit/Cascade-v0", scenario="idn-4tier", episode_length=1)
    model = sb3.PPO("MlpPolicy", env, n_steps=512, batch_size=64, n_epochs=4, learning_rate=3e-3, gamma=1.0,
                    gae_lambda=1.0, seed=0, device="cpu", policy_kwargs={"net_arch": [32, 32]})
    model.learn(8192)
    ppo = evaluate_cascade(model, requests=REQUESTS, seed=HELD_OUT)
    th, _ = best_per_hop_thresholds("idn-4tier", requests=REQUESTS, seed=(0, 1, 2), grid=GRID)
    best = evaluate_cascade(PerHopThresholds(th), requests=REQUESTS, seed=HELD_OUT)
    local = evaluate_cascade(PerHopThresholds((0.0,) * len(th)), requests=REQUESTS, seed=HELD_OUT)
    figures = (ppo.mean_reward, best.mean_reward, th, local.mean_reward)
    assert ppo.mean_reward >= 0.95 * best.mean_reward, figures
    # and it learned to forward: "always serve at the origin" is itself within 5% (0.903 vs 0.934);
    # measured on the event core (2026-12-05): PPO 0.9356, thresholds (0.85, 1.01, 0.5) 0.9344, local 0.9033
    assert ppo.mean_reward > local.mean_reward + 0.01, figures
    assert ppo.serve_share[0] < 0.95, ppo.serve_share
