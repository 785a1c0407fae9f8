"""Speed of the idnbandit Gymnasium environments (issue 5).

Measures, in the same process and run:

* ``env.step`` through ``gymnasium.make`` on ``idnbandit/Offload-v0`` vs ``CartPole-v1`` (steps/s,
  random actions pre-drawn, resets included);
* the vector env: ``gymnasium.make_vec("idnbandit/Offload-v0", num_envs=N, vectorization_mode="sync")``
  env-steps/s (N copies x vector steps / s).

Usage: ``python benchmarks/env_speed.py [--steps 20000] [--num-envs 1024] [--vec-steps 20]``
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import idnbandit  # noqa: F401  registers the ids


def steps_per_s(env, n: int, seed: int = 0) -> float:
    """Random-action ``env.step`` throughput over ``n`` steps (after a 200-step warm-up)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(n + 200)]
    for a in actions[:200]:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    t0 = time.perf_counter()
    for a in actions[200:]:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return n / (time.perf_counter() - t0)


def vec_steps_per_s(num_envs: int, vec_steps: int, scenario: str) -> float:
    """Env-steps/s of the synchronous vector env of Offload-v0 with ``num_envs`` copies."""
    venv = gym.make_vec("idnbandit/Offload-v0", num_envs=num_envs, vectorization_mode="sync",
                        scenario=scenario, episode_length=10_000)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    n = venv.single_action_space.n
    venv.step(rng.integers(n, size=num_envs))
    t0 = time.perf_counter()
    for _ in range(vec_steps):
        venv.step(rng.integers(n, size=num_envs))
    return num_envs * vec_steps / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--vec-steps", type=int, default=20)
    p.add_argument("--scenario", default="idn-4tier")
    a = p.parse_args(argv)
    off = steps_per_s(gym.make("idnbandit/Offload-v0", scenario=a.scenario, episode_length=1000), a.steps)
    cart = steps_per_s(gym.make("CartPole-v1"), a.steps)
    print(f"Offload-v0 ({a.scenario}) via gymnasium.make: {off:,.0f} steps/s")
    print(f"CartPole-v1 via gymnasium.make:            {cart:,.0f} steps/s")
    print(f"ratio Offload/CartPole: {off / cart:.2f}x (target >= 1.5x)")
    vec = vec_steps_per_s(a.num_envs, a.vec_steps, a.scenario)
    print(f"make_vec sync, {a.num_envs} copies: {vec:,.0f} env-steps/s (target >= 2,000,000)")


if __name__ == "__main__":
    main()
