"""Train ONE shared PPO policy for every decision node of the multi-agent IDN (parameter sharing).

The PettingZoo environment :class:`idnbandit.envs.multiagent.MultiAgentIDNEnv` (AEC: exactly one
node holds the pending request and acts) is wrapped into a single-agent Gymnasium env whose
observation is the acting node's observation, node identity included (``scope="shared"``), so one
Stable-Baselines3 PPO network acts for all nodes (parameter sharing). One Gymnasium episode is one
request's route: the reward of a step is the request's reward when that step served it (the
episode then ends), 0 when it forwarded, so with ``gamma = 1`` a forwarding node is credited with
exactly what the nodes above achieved. ``reset()`` continues the same simulated run (queues carry
over) and starts a new run after ``episode_length`` requests or when given a seed.

Usage::

    python examples/train_multiagent.py --scenario shared-edge --budget 20000

Prints the mean reward per request on held-out seeds of PPO, the static rule "serve iff max prob
>= 0.5" at every node, always-local and random.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from idnbandit.envs.multiagent import MultiAgentIDNEnv


class SharedPolicyEnv(gym.Env):
    """Single-agent view of an AEC multi-agent IDN: the acting node changes from step to step."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: str = "shared-edge", episode_length: int = 400):
        self.ma = MultiAgentIDNEnv(scenario, episode_length=episode_length, scope="shared")
        agent0 = self.ma.possible_agents[0]
        self.observation_space = self.ma.observation_space(agent0)
        self.action_space = self.ma.action_space(agent0)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None or not self.ma.agents or self.ma.served >= self.ma.episode_length:
            self.ma.reset(seed=seed)  # a new simulated run; otherwise continue with the next request
        return self.ma.observe(self.ma.agent_selection), {"agent": self.ma.agent_selection}

    def step(self, action):
        agent = self.ma.agent_selection
        before = self.ma.served
        self.ma.step(int(action))
        reward = 0.0
        if self.ma.served > before:  # this step served a request: its true reward
            reward = float(self.ma.infos[agent]["outcome"]["reward"])
        served = self.ma.served > before
        nxt = self.ma.agent_selection
        return self.ma.observe(nxt), reward, served, False, {"agent": nxt}


def evaluate(policy, scenario: str, seeds, episode_length: int) -> float:
    """Mean reward per served request of ``policy(obs) -> action`` (one episode per seed)."""
    out = []
    for s in seeds:
        env = SharedPolicyEnv(scenario, episode_length)
        obs, _ = env.reset(seed=s)
        total = 0.0
        while env.ma.served < episode_length:
            obs, r, _, _, _ = env.step(policy(obs))
            total += r
        out.append(total / episode_length)
    return float(np.mean(out))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Parameter-shared PPO on the multi-agent IDN (PettingZoo AEC).")
    p.add_argument("--scenario", default="shared-edge")
    p.add_argument("--budget", type=int, default=20_000, help="training steps (decisions)")
    p.add_argument("--episode-length", type=int, default=400, help="requests per episode")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = SharedPolicyEnv(a.scenario, a.episode_length)
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=4, learning_rate=1e-3, gamma=1.0,
                seed=a.seed, device="cpu", policy_kwargs={"net_arch": [32, 32]})
    model.learn(a.budget)
    held_out = range(1000, 1004)
    rng = np.random.default_rng(0)
    rows = {
        "PPO (shared parameters)": lambda obs: int(model.predict(obs, deterministic=True)[0]),
        "static: serve iff max prob >= 0.5": lambda obs: int(obs[0] < 0.5),
        "always local": lambda obs: 0,
        "random": lambda obs: int(rng.integers(2)),
    }
    print(f"{a.scenario}, {a.budget} training decisions; mean reward per request on held-out seeds:")
    for name, pol in rows.items():
        print(f"  {name:<36} {evaluate(pol, a.scenario, held_out, a.episode_length):.4f}")


if __name__ == "__main__":
    main()
