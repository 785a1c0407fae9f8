"""How far the counterfactual estimates are from what really happens, on the built-in scenarios.

Requests interact through shared queues, so the outcome of an option that was *not* taken can only
be estimated (from the state at decision time, as if nothing else arrived later; docs/simulator.md).
Full feedback, the oracle and every regret figure use these estimates. This script measures their
error where it can be measured: on the options that *were* taken. For the oracle (it takes the
option with the best estimate) and for LinUCB it prints the realised mean reward, the mean estimate
of the chosen options, and the gap (realised - estimate); a negative gap means the estimates were
optimistic (later arrivals overtook the request at a shared resource).

Usage::

    python benchmarks/estimates.py [--steps 200000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics

SCENARIOS = ("hi-two-tier", "idn-4tier", "zoo-4tier", "deadline-edge", "shared-edge", "flash-crowd",
             "ensemble-hetero")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    from idnbandit.agents import make_agent
    from idnbandit.scenario import load_scenario, resolve_trace
    from idnbandit.sim import n_features, n_options, simulate

    print(f"{'scenario':16s} {'agent':8s} {'realised':>9s} {'estimate':>9s} {'gap':>9s}   (mean over {args.seeds} seeds,"
          f" {args.steps:,d} requests each)")
    for name in SCENARIOS:
        sc = load_scenario(name)
        trace = resolve_trace(sc)
        k, f = n_options(sc), n_features(sc)
        for spec in ("oracle", "linucb"):
            real, est = [], []
            for seed in range(args.seeds):
                res = simulate(sc, make_agent(spec, k, f, seed=seed), args.steps, seed=seed, trace=trace)
                real.append(res.mean_reward)
                est.append(res.extra["chosen_estimate_mean_reward"])
            r, e = statistics.mean(real), statistics.mean(est)
            print(f"{name:16s} {spec:8s} {r:9.4f} {e:9.4f} {r - e:+9.4f}")


if __name__ == "__main__":
    main()
