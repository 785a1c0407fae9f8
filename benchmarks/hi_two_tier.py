"""HI learners on the built-in ``hi-two-tier`` scenario against the best static threshold in hindsight.

Usage: ``python benchmarks/hi_two_tier.py [--steps 50000] [--seeds 3]``.

Prints, per learner and seed, the mean reward, the gap to the best fixed threshold in hindsight
(mean reward of the best ``static-threshold(theta)`` over a fine grid of theta, same requests), and
the log-log slope of cumulative regret against that threshold over the second half of the run.
``hi-two-tier`` has no latency term, so every option's reward is fixed by the trace and the
threshold sweep is exact.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from idnbandit.agents import make_agent
from idnbandit.scenario import load_scenario
from idnbandit.sim import n_features, n_options, simulate
from idnbandit.sim.hindsight import best_threshold, counterfactual_stream

LEARNERS = ["hil-f", "hil-n", "hedge-hi", "hedge-hi-restart", "hi-lcb", "hi-lcb-lite", "exp4", "linucb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--feedback", default=None, help="override the scenario's feedback mode (e.g. full)")
    ap.add_argument("--agents", default=",".join(LEARNERS))
    args = ap.parse_args()
    s = load_scenario("hi-two-tier")
    if args.feedback:
        s = dataclasses.replace(s, feedback=dataclasses.replace(s.feedback, mode=args.feedback))
    k, f = n_options(s), n_features(s)
    print(f"hi-two-tier, {args.steps} requests, feedback {s.feedback.mode}")
    print(f"{'agent':>18} {'seed':>4} {'reward':>8} {'best-th':>8} {'gap':>7} {'slope':>6}")
    for seed in range(args.seeds):
        p, rs = counterfactual_stream(s, args.steps, seed)
        theta, best_r = best_threshold(p, rs)
        for name in args.agents.split(","):
            agent = make_agent(name, k, f, seed=seed)
            res = simulate(s, agent, args.steps, seed=seed, curve_points=400)
            # regret vs the best threshold = regret vs the per-request oracle minus the threshold's own
            oracle_r = rs.max(axis=1)
            cum_th = np.cumsum(oracle_r - best_r)
            t = res.curve_t
            reg = res.curve_regret_oracle - cum_th[t - 1]
            gap = best_r.mean() - res.mean_reward
            half = len(t) // 2
            sl = float(np.polyfit(np.log(t[half:]), np.log(np.maximum(reg[half:], 1e-9)), 1)[0])
            print(f"{name:>18} {seed:>4} {res.mean_reward:8.4f} {best_r.mean():8.4f} {gap:7.4f} {sl:6.2f}"
                  f"   (theta*={theta:.3f})")


if __name__ == "__main__":
    main()
