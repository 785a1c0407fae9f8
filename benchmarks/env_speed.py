"""Speed of the idnbandit Gymnasium environments (issue 5).

A step of Offload-v0 sends the pending request and runs the exact event core to the next arrival
(every event of every request in flight, the decision-time estimates of the next request, the
records of the requests finalised meanwhile: docs/envs.md, "Rewards that arrive after later
decisions"); ``info`` is built lazily and not read here. Measures, in the same process and run:

* ``env.step`` through ``gymnasium.make`` on ``idnbandit/Offload-v0`` vs ``CartPole-v1`` (steps/s,
  random actions pre-drawn, resets included). The two are measured in alternating rounds and the
  median of the per-round ratios is reported, so that load from other processes hits both alike;
* the one-kernel vector env, ``gymnasium.make_vec("idnbandit/Offload-v0", num_envs=N,
  vectorization_mode="vector_entry_point")``, in env-steps/s (copies x vector steps / s), next to
  Gymnasium's ``SyncVectorEnv`` of the single env (``vectorization_mode="sync"``, fewer copies by
  default: building 1024 single envs takes long, and its env-steps/s hardly depend on the count).

Usage: ``python benchmarks/env_speed.py [--steps 2000] [--rounds 7] [--num-envs 1024] [--vec-steps 100]
[--sync-envs 64] [--scenario idn-4tier]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import idnbandit  # noqa: F401  registers the ids


def steps_per_s(env, actions) -> float:
    """Random-action ``env.step`` throughput over ``actions`` (resets included)."""
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return len(actions) / (time.perf_counter() - t0)


def single_env_rounds(scenario: str, steps: int, rounds: int) -> tuple[list[float], list[float]]:
    """Alternating rounds of Offload-v0 and CartPole-v1 steps/s (both through ``gymnasium.make``)."""
    envs = {"off": gym.make("idnbandit/Offload-v0", scenario=scenario, episode_length=1000),
            "cart": gym.make("CartPole-v1")}
    acts = {}
    for k, env in envs.items():
        env.reset(seed=0)
        env.action_space.seed(0)
        acts[k] = [env.action_space.sample() for _ in range(steps)]
        steps_per_s(env, acts[k][:200])  # warm-up (compiles, caches)
    out = {k: [] for k in envs}
    for _ in range(rounds):
        for k, env in envs.items():
            out[k].append(steps_per_s(env, acts[k]))
    return out["off"], out["cart"]


def vec_steps_per_s(num_envs: int, vec_steps: int, scenario: str, mode: str) -> float:
    """Env-steps/s of the vector env of Offload-v0 (``mode``: "vector_entry_point" or "sync")."""
    venv = gym.make_vec("idnbandit/Offload-v0", num_envs=num_envs, vectorization_mode=mode,
                        scenario=scenario, episode_length=10_000)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    n = venv.single_action_space.n
    acts = [rng.integers(n, size=num_envs) for _ in range(vec_steps)]
    for a in acts[:max(vec_steps // 5, 1)]:  # warm-up
        venv.step(a)
    t0 = time.perf_counter()
    for a in acts:
        venv.step(a)
    rate = num_envs * vec_steps / (time.perf_counter() - t0)
    venv.close()
    return rate


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="steps per round and env")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--vec-steps", type=int, default=100)
    p.add_argument("--sync-envs", type=int, default=64)
    p.add_argument("--scenario", default="idn-4tier")
    a = p.parse_args(argv)
    off, cart = single_env_rounds(a.scenario, a.steps, a.rounds)
    ratio = statistics.median(o / c for o, c in zip(off, cart, strict=True))
    print(f"Offload-v0 ({a.scenario}) via gymnasium.make: {statistics.median(off):,.0f} steps/s (median of "
          f"{a.rounds} rounds)")
    print(f"CartPole-v1 via gymnasium.make:            {statistics.median(cart):,.0f} steps/s")
    print(f"ratio Offload/CartPole: {ratio:.2f}x (median of per-round ratios; target >= 1.5x)")
    vec = vec_steps_per_s(a.num_envs, a.vec_steps, a.scenario, "vector_entry_point")
    print(f"make_vec vector_entry_point (one kernel), {a.num_envs} copies: {vec:,.0f} env-steps/s "
          "(target >= 2,000,000)")
    sync = vec_steps_per_s(a.sync_envs, max(a.vec_steps // 5, 5), a.scenario, "sync")
    print(f"make_vec sync (SyncVectorEnv), {a.sync_envs} copies: {sync:,.0f} env-steps/s "
          f"({vec / sync:.0f}x slower than the one-kernel vector env)")


if __name__ == "__main__":
    main()
