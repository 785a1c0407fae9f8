"""NeuralUCB / NeuralTS vs LinUCB on a contextual bandit whose reward is not linear in the context.

Usage::

    python benchmarks/neural_bandits.py [--steps 1000] [--seeds 5]

The problem is the first synthetic benchmark of the NeuralUCB paper (Zhou, Li, Gu, ICML 2020, §7.1),
in this library's one-context / K-options form: each round a context ``x`` is drawn uniformly from
the unit sphere in R^d (d = 3, plus a bias entry 1 appended for every agent), option ``a`` has a
hidden unit vector ``θ_a``, and its reward is ``h_a(x) = 10 (θ_aᵀx)² + N(0, 0.1²)`` (K = 4).
``E[r_a | x]`` is an even function of ``x``, so the best linear fit of each option is nearly
constant: a linear bandit cannot tell the options apart, a network can.

Why a synthetic bandit and not a built-in scenario: in the library's scenarios the expected reward
of an option is close to linear in the context by construction — a calibrated local model's
accuracy equals its top probability, and latency grows linearly with the backlog features — so a
scenario would test the network's ability to find small curvature rather than non-linearity
itself, and a deadline cliff would depend on the load process more than on the learners.

Printed: mean reward per round and cumulative regret against the best option of each round
(expected rewards), mean and 95% Student-t interval over seeds ``0 .. seeds-1`` (the problem,
the stream and the agents' seeds all equal the seed).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from idnbandit.agents import LinUCB, NeuralTS, NeuralUCB

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
D, K = 3, 4


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t interval (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(_T975[min(v.size - 1, len(_T975)) - 1] * v.std(ddof=1) / math.sqrt(v.size))


def quadratic_problem(steps: int, seed: int):
    """Contexts (steps, D+1) with a bias entry, expected rewards (steps, K) and noisy rewards (steps, K)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(K, D))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    x = rng.normal(size=(steps, D))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mean = 10.0 * (x @ theta.T) ** 2
    noisy = mean + 0.1 * rng.normal(size=mean.shape)
    return np.hstack([x, np.ones((steps, 1))]), mean, noisy


def make(kind: str, seed: int, steps: int):
    if kind == "linucb":
        return LinUCB(K, D + 1, alpha=1.0, seed=seed)
    cls = {"neural-ucb": NeuralUCB, "neural-ts": NeuralTS}[kind]
    return cls(K, D + 1, hidden=(32,), ridge=1e-3, nu=1.0, lr=0.1, train_steps=10, batch_size=64,
               dense_rounds=200, train_every=5, seed=seed)


def play(kind: str, steps: int, seed: int) -> tuple[float, float]:
    """(mean reward per round, cumulative regret) of ``kind`` on the problem of ``seed``."""
    xs, mean, noisy = quadratic_problem(steps, seed)
    agent = make(kind, seed, steps)
    total, regret = 0.0, 0.0
    for t in range(steps):
        a = agent.act(xs[t])
        total += mean[t, a]
        regret += mean[t].max() - mean[t, a]
        agent.update(xs[t], a, float(noisy[t, a]))
    return total / steps, regret


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--agents", default="linucb,neural-ucb,neural-ts")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # tiny networks: intra-op threads only add overhead
    print(f"quadratic bandit 10(θ_aᵀx)², d={D}, K={K}, {a.steps} rounds, seeds 0..{a.seeds - 1}")
    first = None
    for kind in a.agents.split(","):
        t0 = time.perf_counter()
        res = [play(kind, a.steps, s) for s in range(a.seeds)]
        m, h = mean_ci([r[0] for r in res])
        rm, rh = mean_ci([r[1] for r in res])
        line = (f"{kind:12s} mean reward {m:.3f} ± {h:.3f}   regret {rm:.0f} ± {rh:.0f}   "
                f"per seed {[round(float(r[0]), 3) for r in res]}")
        if first is None:
            first = (kind, res)
        else:  # paired over seeds (same problem and stream): the sharper comparison
            dm, dh = mean_ci([r[0] - f[0] for r, f in zip(res, first[1], strict=True)])
            line += f"   minus {first[0]}: {dm:+.3f} ± {dh:.3f}"
        print(line + f"   ({(time.perf_counter() - t0) / a.seeds:.1f} s per seed)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
