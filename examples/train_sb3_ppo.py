"""Train Stable-Baselines3 PPO on ``idnbandit/Offload-v0`` and compare it with the random policy.

Usage::

    python examples/train_sb3_ppo.py --scenario hi-two-tier --budget 3000

``--budget`` is the number of environment steps (requests) used for training; the default runs in
well under a minute. The policy is evaluated on held-out seeds (mean reward per request).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import idnbandit  # noqa: F401  registers the gymnasium ids


def evaluate(policy, scenario: str, seeds, episode_length: int) -> float:
    """Mean reward per request of ``policy(obs, env) -> action`` over one episode per seed."""
    means = []
    for s in seeds:
        env = gym.make("idnbandit/Offload-v0", scenario=scenario, episode_length=episode_length)
        obs, _ = env.reset(seed=s)
        env.action_space.seed(s)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs, env))
            total += r
            done = term or trunc
        means.append(total / episode_length)
    return float(np.mean(means))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train SB3 PPO on idnbandit/Offload-v0.")
    p.add_argument("--scenario", default="hi-two-tier")
    p.add_argument("--budget", type=int, default=3000, help="training steps (requests)")
    p.add_argument("--episode-length", type=int, default=200)
    p.add_argument("--feedback", default=None, help="override the scenario's feedback mode (info only)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = gym.make("idnbandit/Offload-v0", scenario=a.scenario, episode_length=a.episode_length,
                   feedback=a.feedback)
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=4, learning_rate=3e-3, seed=a.seed,
                device="cpu", policy_kwargs={"net_arch": [32, 32]})
    model.learn(a.budget)
    held_out = range(1000, 1004)
    ppo = evaluate(lambda obs, e: int(model.predict(obs, deterministic=True)[0]), a.scenario, held_out,
                   a.episode_length)
    rnd = evaluate(lambda obs, e: e.action_space.sample(), a.scenario, held_out, a.episode_length)
    print(f"{a.scenario}: PPO {ppo:.4f} vs random {rnd:.4f} mean reward per request (held-out seeds)")


if __name__ == "__main__":
    main()
