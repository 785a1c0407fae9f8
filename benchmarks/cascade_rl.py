"""RL agents on Cascade-v0 (``idn-4tier``): numba Q-learning, SARSA(λ), DQN vs per-hop LinUCB and the
best static per-hop thresholds.

Usage::

    python benchmarks/cascade_rl.py [--train 30000] [--eval 1000] [--seeds 5] [--agents qlearning,dqn,...]

Protocol (same for every learner):

1. **Training**, online: one Cascade-v0 episode of ``--train`` requests (``reset(seed=1000 + s)``),
   the agent acting with its own exploration and learning after every step. Each request is an
   RL episode: a forward gives reward 0 and ``done=False`` (the next observation is the next stop
   of the same request); serving gives the request's scenario reward and ``done=True``.
   ``gamma = 1`` (an undiscounted optimal-stopping problem of at most 4 steps).
2. **Evaluation**, frozen and greedy: :func:`~idnbandit.envs.cascade_baselines.evaluate_cascade` on
   held-out seeds ``0 .. n_eval_seeds-1`` (``--eval`` requests each), no exploration, no learning.
3. The **best static per-hop thresholds** are chosen by
   :func:`~idnbandit.envs.cascade_baselines.best_per_hop_thresholds` *on the evaluation seeds
   themselves* (hindsight, so the baseline is as strong as the grid allows).

**Per-hop LinUCB** (the bandit baseline): a :class:`~idnbandit.agents.LinUCB` with two arms (0 serve,
1 forward) on the Cascade observation plus a bias entry (7 features). It decides at each stop
independently; when the request is served, every decision taken for it (each stop's context and
action) is updated with the request's **final** reward. It ignores that forwarding's value depends
on what the next stops will do (it learns the average outcome of forwarding under its own policy).
Greedy evaluation uses ``argmax θ_aᵀx`` (the learned means).

Printed: mean reward per request on the evaluation seeds, mean and 95% Student-t interval over the
training seeds ``0 .. seeds-1``; the online (training) mean reward; the gap to the thresholds in %.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import numpy as np

from idnbandit.agents import DQN, LinUCB, QLearning, SarsaLambda
from idnbandit.envs.cascade import CascadeEnv
from idnbandit.envs.cascade_baselines import PerHopThresholds, best_per_hop_thresholds, evaluate_cascade
from idnbandit.scenario import load_scenario

AGENTS = ("qlearning", "sarsa-lambda", "dqn", "linucb-per-hop")
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t interval (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(_T975[min(v.size - 1, len(_T975)) - 1] * v.std(ddof=1) / math.sqrt(v.size))


@dataclasses.dataclass(frozen=True)
class Config:
    scenario: str = "idn-4tier"
    """built-in scenario name or TOML path"""
    train: int = 30000
    """training requests per seed (one online episode)"""
    eval: int = 1000
    """evaluation requests per evaluation seed"""
    eval_seeds: int = 3
    """held-out evaluation seeds 0 .. eval_seeds-1"""
    seeds: int = 5
    """training seeds 0 .. seeds-1 (agent seed s, training stream 1000 + s)"""
    agents: tuple[str, ...] = AGENTS


def make_learner(kind: str, seed: int, n_obs: int, n_stops: int):
    """The agent of ``kind`` for Cascade-v0 observations of length ``n_obs``."""
    if kind == "qlearning":
        return QLearning(2, n_obs, epsilon=0.1, alpha=0.002, visit_power=1.0, gamma=1.0, hop_index=3,
                         hop_bins=n_stops, q_init=1.0, seed=seed)
    if kind == "sarsa-lambda":
        return SarsaLambda(2, n_obs, epsilon=0.1, alpha=0.002, visit_power=1.0, gamma=1.0, lam=0.5, hop_index=3,
                           hop_bins=n_stops, q_init=1.0, seed=seed)
    if kind == "dqn":
        return DQN(2, n_obs, hidden=(64, 64), lr=1e-3, gamma=1.0, batch_size=64, buffer_size=20000,
                   learning_starts=500, train_freq=2, target_update=250, epsilon_start=1.0, epsilon_end=0.05,
                   exploration_steps=10000, seed=seed)
    if kind == "linucb-per-hop":
        return LinUCB(2, n_obs + 1, alpha=1.0, seed=seed)
    raise SystemExit(f"unknown agent {kind!r}; choose from {', '.join(AGENTS)}")


def train(kind: str, scenario, requests: int, seed: int):
    """Train ``kind`` online for ``requests`` requests; returns (agent, greedy policy, online mean reward)."""
    env = CascadeEnv(scenario, episode_length=requests)
    n_obs = env.observation_space.shape[0]
    agent = make_learner(kind, seed, n_obs, max(len(s) for s in env._stops))
    obs, _ = env.reset(seed=1000 + seed)
    x = obs.astype(np.float64)
    total, done = 0.0, False
    if kind == "linucb-per-hop":
        path = []
        while not done:
            xb = np.append(x, 1.0)
            a = agent.act(xb)
            path.append((xb, a))
            obs, r, term, trunc, info = env.step(a)
            x = obs.astype(np.float64)
            if info["served"]:
                total += r
                for xh, ah in path:  # every decision of the request learns its final reward
                    agent.update(xh, ah, r)
                path = []
            done = term or trunc
        coef = agent.coef_

        def policy(o):
            return int(np.argmax(coef @ np.append(np.asarray(o, np.float64), 1.0)))

        return agent, policy, total / requests
    while not done:
        a = agent.act(x)
        obs, r, term, trunc, info = env.step(a)
        x2 = obs.astype(np.float64)
        agent.update(x, a, r, next_context=x2, done=bool(info["served"]))
        total += r if info["served"] else 0.0
        x = x2
        done = term or trunc

    def policy(o):
        return agent.greedy_action(np.asarray(o, np.float64))

    return agent, policy, total / requests


def run(cfg: Config, out=print) -> dict:
    """Train and evaluate every agent of ``cfg``; returns {name: (mean, ci, online mean, ci)} and the baseline."""
    scen = load_scenario(cfg.scenario) if isinstance(cfg.scenario, str) else cfg.scenario
    eval_seeds = tuple(range(cfg.eval_seeds))
    t0 = time.perf_counter()
    th, th_eval = best_per_hop_thresholds(scen, cfg.eval, eval_seeds)
    out(f"best static per-hop thresholds (hindsight on eval seeds {eval_seeds}): {th} -> "
        f"{th_eval.mean_reward:.4f} per request, serve shares {tuple(round(v, 3) for v in th_eval.serve_share)} "
        f"({time.perf_counter() - t0:.0f} s)")
    local = evaluate_cascade(PerHopThresholds((0.0,) * len(th)), scen, cfg.eval, eval_seeds).mean_reward
    out(f"always serve at the origin: {local:.4f}")
    results = {"thresholds": (th, th_eval.mean_reward), "always_local": local}
    for kind in cfg.agents:
        t0 = time.perf_counter()
        ev, online = [], []
        for s in range(cfg.seeds):
            _, policy, on = train(kind, scen, cfg.train, s)
            ev.append(evaluate_cascade(policy, scen, cfg.eval, eval_seeds).mean_reward)
            online.append(on)
        m, h = mean_ci(ev)
        mo, ho = mean_ci(online)
        results[kind] = (m, h, mo, ho, tuple(ev))
        gap = 100.0 * (th_eval.mean_reward - m) / abs(th_eval.mean_reward)
        out(f"{kind:16s} eval {m:.4f} ± {h:.4f}   online {mo:.4f} ± {ho:.4f}   gap to thresholds {gap:+.2f}%   "
            f"({time.perf_counter() - t0:.0f} s)")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default=Config.scenario)
    p.add_argument("--train", type=int, default=Config.train)
    p.add_argument("--eval", type=int, default=Config.eval)
    p.add_argument("--eval-seeds", type=int, default=Config.eval_seeds)
    p.add_argument("--seeds", type=int, default=Config.seeds)
    p.add_argument("--agents", default=",".join(AGENTS))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny nets: 1 is fastest)")
    a = p.parse_args(argv)
    if "dqn" in a.agents:
        import torch

        torch.set_num_threads(a.threads)
    run(Config(a.scenario, a.train, a.eval, a.eval_seeds, a.seeds, tuple(a.agents.split(","))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
