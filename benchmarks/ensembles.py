"""Cooperative inference on ``ensemble-hetero``: single models, all-models votes, cost-aware strategies.

Every row runs through :func:`idnbandit.sim.simulate` on the same request streams (common random
numbers: seeds 0..S-1), ``--steps`` requests each, and reports mean ± 95 % CI over seeds (Student t)
of accuracy, mean latency, queries per request, cost and mean reward. The accuracy-cost Pareto front
is computed on (accuracy, query price) with price = ``w_lat * latency_s + w_cost * cost`` per
request (reward units; reward = ``w_acc * accuracy - price``), and the script says which cost-aware
strategies lie on it beyond the best single model. Two one-option contextual learners (LinUCB,
Hedge-HI: each request goes to ONE model, chosen from the phone model's confidence and the load)
are run for reference.

Run::

    python benchmarks/ensembles.py --seeds 5 --steps 4000 --md docs/ensembles_table.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from idnbandit import ensembles  # noqa: F401  registers the ens-* names with make_agent
from idnbandit.agents.registry import make_agent
from idnbandit.bench.stats import mean_ci
from idnbandit.scenario import load_scenario
from idnbandit.sim import n_features, n_options, simulate

SINGLES = [f"ens-single(option={k})" for k in range(4)]
VOTES = ["ens-vote-all(aggregator='majority')", "ens-vote-all(aggregator='sum-prob')",
         "ens-vote-all(aggregator='log-linear')", "ens-vote-all(aggregator='hedge')",
         "ens-vote-all(aggregator='stacking')", "ens-vote-all(aggregator='bagging')",
         "ens-vote-all(aggregator='boosting')"]
SELECTION = ["ens-seq(threshold=0.8)", "ens-seq(threshold=0.9, order=[0, 3])",
             "ens-seq(threshold=0.9, order=[0, 3], aggregator='log-linear')",
             "ens-seq(threshold=0.9, order=[0, 3, 1, 2], escalate='all')",
             "ens-seq-learned", "ens-seq-learned(order=[0, 3, 1, 2])",
             "ens-cucb", "ens-cucb(scale=0.2)"]
#: one-option contextual learners (forward each request to ONE model), for reference
ONE_OPTION = ["linucb", "hedge-hi"]
METRICS = ("accuracy", "latency_ms", "queries", "cost", "reward", "price")


def run(spec: str, scenario, seeds: int, steps: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for seed in range(seeds):
        agent = make_agent(spec, n_options(scenario), n_features(scenario), seed=seed)
        r = simulate(scenario, agent, steps, seed=seed)
        out["accuracy"].append(r.accuracy)
        out["latency_ms"].append(r.latency_mean_ms)
        out["queries"].append(r.extra.get("queries_per_request", 1.0))  # one-option agents: 1
        out["cost"].append(r.mean_cost)
        out["reward"].append(r.mean_reward)
        out["price"].append(scenario.reward.w_acc * r.accuracy - r.mean_reward)
    return out


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names whose (accuracy, price) no other point beats on both (>= and <=, one strict)."""
    front = set()
    for a, (acc, price) in points.items():
        if not any(acc2 >= acc and p2 <= price and (acc2 > acc or p2 < price)
                   for b, (acc2, p2) in points.items() if b != a):
            front.add(a)
    return front


def fmt(values, digits: int) -> str:
    ci = mean_ci(values)
    return f"{ci.mean:.{digits}f} ± {ci.ci95:.{digits}f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--md", type=Path, default=None, help="also write the markdown table here")
    args = p.parse_args(argv)
    scenario = load_scenario("ensemble-hetero")
    rows, t0 = {}, time.perf_counter()
    groups = (("single model", SINGLES), ("all-models vote", VOTES), ("selection", SELECTION),
              ("one-option learner", ONE_OPTION))
    for group, specs in groups:
        for spec in specs:
            t1 = time.perf_counter()
            rows[spec] = (group, run(spec, scenario, args.seeds, args.steps))
            print(f"{spec:<62} {time.perf_counter() - t1:6.1f}s", flush=True)
    means = {s: {m: float(np.mean(v[m])) for m in METRICS} for s, (_, v) in rows.items()}
    front = pareto({s: (m["accuracy"], m["price"]) for s, m in means.items()})
    best_single = max(SINGLES, key=lambda s: means[s]["reward"])
    most_accurate_single = max(SINGLES, key=lambda s: means[s]["accuracy"])
    lines = [f"`ensemble-hetero`, {args.steps} requests per run, seeds 0..{args.seeds - 1}, mean ± 95 % CI over "
             f"seeds; price = 0.5 * latency_s + 0.05 * cost (reward units); * = on the accuracy-price Pareto front",
             "",
             "| group | strategy | accuracy | mean latency ms | queries / request | cost | mean reward | price | front |",
             "|---|---|---|---|---|---|---|---|---|"]
    for spec, (group, v) in rows.items():
        lines.append(f"| {group} | `{spec}` | {fmt(v['accuracy'], 4)} | {fmt(v['latency_ms'], 1)} | "
                     f"{fmt(v['queries'], 2)} | {fmt(v['cost'], 3)} | {fmt(v['reward'], 4)} | "
                     f"{fmt(v['price'], 4)} | {'*' if spec in front else ''} |")
    beyond = [s for s in SELECTION if s in front and (
        means[s]["accuracy"] > means[best_single]["accuracy"] or means[s]["price"] < means[best_single]["price"])]
    dominating = [s for s in SELECTION if means[s]["accuracy"] > means[most_accurate_single]["accuracy"]
                  and means[s]["price"] < means[most_accurate_single]["price"]]
    lines += ["", f"Best single model by reward: `{best_single}`; most accurate single model: "
              f"`{most_accurate_single}`.",
              f"Cost-aware strategies on the Pareto front beyond the best single model: "
              f"{', '.join(f'`{s}`' for s in beyond) or 'none'}.",
              f"Strategies more accurate AND cheaper than the most accurate single model: "
              f"{', '.join(f'`{s}`' for s in dominating) or 'none'}.",
              f"Total wall time {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines)
    print(text)
    if args.md is not None:
        args.md.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
