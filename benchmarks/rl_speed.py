"""Speed of the RL agents: numba Q-learning / SARSA(λ) / LinearQ in the fused ``simulate()`` loop on
``idn-4tier``, and DQN / NeuralUCB training throughput on CPU.

Usage::

    python benchmarks/rl_speed.py [--requests 1000000] [--dqn-steps 5000] [--threads 1]

Fused loop: each agent runs ``--requests`` requests of ``idn-4tier`` through ``sim.simulate`` after a
warm-up run (compilation excluded); printed are requests per wall second (``RunResult.decisions_per_s``)
and per CPU second of this process (``time.process_time``, which is what counts on a shared machine),
next to the always-edge ``Fixed`` agent (the simulator's own floor) measured in the same run. The
tabular agents use the confidence and the edge backlog (``load_index=4``): 40 states.

DQN: ``--dqn-steps`` act + update calls on Offload-style contexts of ``idn-4tier`` (8 features,
4 options), one gradient step (batch 64, MLP 64-64) per update after 100 warm-up updates; printed as
steps per second. NeuralUCB: the same, with its default training schedule.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from idnbandit.agents import DQN, Fixed, LinearQ, NeuralUCB, QLearning, SarsaLambda
from idnbandit.scenario import load_scenario
from idnbandit.sim import n_features, n_options, simulate


def fused(scenario, requests: int) -> list[tuple[str, float, float]]:
    k, f = n_options(scenario), n_features(scenario)
    agents = [("fixed (edge)", Fixed(k, f, option=1, seed=0)),
              ("qlearning", QLearning(k, f, load_index=4, seed=0)),
              ("sarsa-lambda", SarsaLambda(k, f, load_index=4, seed=0)),
              ("linear-q (poly 2)", LinearQ(k, f, basis="poly", degree=2, feature_indices=(0, 3, 4), seed=0))]
    rows = []
    for name, agent in agents:
        simulate(scenario, agent, 2000, seed=0)  # compile / load the cache
        agent.reset()
        c0 = time.process_time()
        res = simulate(scenario, agent, requests, seed=1)
        cpu = time.process_time() - c0
        rows.append((name, res.decisions_per_s, requests / cpu, res.mean_reward))
    return rows


def torch_throughput(steps: int) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(0)
    xs = rng.random((steps, 8))
    xs[:, -1] = 1.0
    out = []
    for name, agent in (("dqn (64-64, batch 64, 1 step/update)", DQN(4, 8, train_freq=1, seed=0)),
                        ("neural-ucb (64, defaults)", NeuralUCB(4, 8, seed=0))):
        n = steps if name.startswith("dqn") else max(steps // 10, 100)
        t0, c0 = time.perf_counter(), time.process_time()
        for t in range(n):
            a = agent.act(xs[t])
            agent.update(xs[t], a, float(xs[t, 0] if a == 0 else 0.5), next_context=xs[(t + 1) % steps],
                         done=bool(t % 3 == 2)) if name.startswith("dqn") else agent.update(xs[t], a, float(xs[t, 0]))
        out.append((name, n / (time.perf_counter() - t0), n / (time.process_time() - c0)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--dqn-steps", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    a = p.parse_args(argv)
    scen = load_scenario("idn-4tier")
    print(f"fused simulate() on idn-4tier, {a.requests:,} requests")
    print("| agent | requests / s (wall) | requests / CPU-second | mean reward |\n|---|---|---|---|")
    for name, wall, cpu, rew in fused(scen, a.requests):
        print(f"| {name} | {wall:,.0f} | {cpu:,.0f} | {rew:.4f} |")
    import torch

    torch.set_num_threads(a.threads)
    print(f"\ntorch {torch.__version__} on CPU, {a.threads} thread(s)")
    print("| agent | act + update steps / s (wall) | per CPU-second |\n|---|---|---|")
    for name, sps, cps in torch_throughput(a.dqn_steps):
        print(f"| {name} | {sps:,.0f} | {cps:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
