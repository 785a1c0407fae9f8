"""Decentralised learners on the ``shared-edge`` scenario: per-node vs shared vs the best static policy.

Every node decides (multi-hop delivery, :mod:`idnbandit.sim.multihop`): 12 phones and the edge
each serve a request or forward it; the cloud serves what reaches it. Rows, each run on the same
request streams (common random numbers) for every seed:

* ``per-node <agent>``: one learner per decision node (13 learners), each learning only from its
  own decisions' feedback;
* ``shared <agent>``: one learner at every node, the node identity (12 indicators) in its context;
* ``origin <agent>``: the single-decision baseline (the phone picks phone/edge/cloud directly);
* ``best static``: the best per-tier threshold rule in hindsight (phones serve iff max prob >=
  theta_phone, the edge serves iff its max prob >= theta_edge; one (theta_phone, theta_edge) for
  all seeds, picked on the mean over seeds from a grid).

Each learner row runs with and without load features in the context (``context.load``); the
static rule reads only the confidence. Prints a Markdown table (mean reward, accuracy, p95
latency, deadline misses, edge forward share; mean and 95% t-interval over seeds).

Usage::

    python benchmarks/multiagent.py --seeds 5 --steps 50000
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import numpy as np

from idnbandit.agents.registry import make_agent
from idnbandit.bench.stats import mean_ci
from idnbandit.scenario import load_scenario, resolve_trace
from idnbandit.sim import simulate
from idnbandit.sim.multihop import multihop_layout

PHONE_THETAS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)
EDGE_THETAS = (0.0, 0.7, 0.9, 0.99, 1.01)


def _with_load(scenario, load: bool):
    return dataclasses.replace(scenario, context=dataclasses.replace(scenario.context, load=load))


def _static_agents(lay, theta_phone: float, theta_edge: float) -> list:
    return [make_agent("static-threshold", lay.n_actions, lay.n_features, seed=0,
                       theta=theta_edge if name == "edge" else theta_phone, local_action=0, forward_action=1)
            for name in lay.nodes]


def _row(results) -> dict:
    def ci(vals):
        m = mean_ci([float(v) for v in vals])
        return f"{m.mean:.4f} ± {m.ci95:.4f}"
    return {
        "reward": ci([r.mean_reward for r in results]),
        "accuracy": ci([r.accuracy for r in results]),
        "p95_ms": ci([r.latency_p95_ms for r in results]),
        "late": ci([r.deadline_violation_rate for r in results]),
        "served_edge": ci([r.forward_rate_by_tier["edge"] for r in results]),
        "served_cloud": ci([r.forward_rate_by_tier["cloud"] for r in results]),
        "_mean": float(np.mean([r.mean_reward for r in results])),
        "_rewards": [r.mean_reward for r in results],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="shared-edge")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--agents", default="linucb", help="comma-separated agent specs for the learner rows")
    args = ap.parse_args(argv)
    base = load_scenario(args.scenario)
    trace = resolve_trace(base)
    seeds = list(range(args.seeds))
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()

    # best static rule in hindsight (confidence only: identical with and without load features)
    lay = multihop_layout(base, "per-node")
    grid = {}
    for tp, te in itertools.product(PHONE_THETAS, EDGE_THETAS):
        grid[(tp, te)] = [simulate(base, _static_agents(lay, tp, te), args.steps, seed=s, trace=trace,
                                   scope="per-node") for s in seeds]
    best = max(grid, key=lambda k: np.mean([r.mean_reward for r in grid[k]]))
    rows[f"best static (theta_phone={best[0]}, theta_edge={best[1]})"] = _row(grid[best])
    for name, key in (("always phone", (0.0, 0.0)), ("always edge", (1.01, 0.0)), ("always cloud", (1.01, 1.01))):
        rows[name] = _row(grid[key])

    for spec in args.agents.split(","):
        for load in (True, False):
            sc = _with_load(base, load)
            tag = "load" if load else "no load"
            for scope in ("per-node", "shared", None):
                lay = multihop_layout(sc, scope) if scope else None
                dims = (lay.n_actions, lay.n_features) if lay else (len(sc.options(sc.workload.origins[0])),
                                                                    3 + 3 * load + 1)
                res = [simulate(sc, make_agent(spec, *dims, seed=1000 + s), args.steps, seed=s, trace=trace,
                                **({"scope": scope} if scope else {})) for s in seeds]
                rows[f"{scope or 'origin'} {spec} ({tag})"] = _row(res)
    wall = time.perf_counter() - t0

    print(f"scenario {base.name}, seeds {seeds}, {args.steps} requests per run, wall {wall:.0f} s")
    print("| policy | mean reward | accuracy | p95 latency ms | deadline misses | served at edge | served at cloud |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['reward']} | {r['accuracy']} | {r['p95_ms']} | {r['late']} | {r['served_edge']} | "
              f"{r['served_cloud']} |")
    best_static = rows[next(iter(rows))]["_rewards"]
    print("\npaired gap to the best static rule (mean reward, learner - static, 95% CI over seeds):")
    for name, r in rows.items():
        if name.startswith(("per-node", "shared", "origin")):
            m = mean_ci([a - b for a, b in zip(r["_rewards"], best_static)])
            print(f"  {name}: {m.mean:+.4f} ± {m.ci95:.4f}")
    return rows


if __name__ == "__main__":
    main()
