"""End-to-end IDN comparison of federated training methods (issue 9): local-only, FedAvg,
delivery-aware FedAvg, early-exit training.

For every training seed and method: train the node models of the scenario with
:func:`idnbandit.fl.loop.run_fl` (digits, Dirichlet label skew), record the test trace, learn
the delivery policy (LinUCB by default) online on the trained scenario for ``--eval-steps``
requests (run seed = training seed), and report mean reward, accuracy and mean latency of that run.
Seeds differ in the data split, the partition, the initial weights and the request stream; the
table gives mean ± 95 % CI (Student t) over seeds. Same seed, different methods: same split,
partition and request stream (common random numbers).

Run::

    python benchmarks/fl_compare.py --seeds 0 1 2 3 4 --rounds 20 --jobs 2 --out benchmarks/fl_compare_results.json

It prints a markdown table (the one in docs/fl.md) and writes every per-seed figure to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

METHODS = ("local", "fedavg", "delivery-aware", "early-exit", "early-exit-equal")
# "early-exit-equal": the early-exit network trained in one phase with equal exit weights (no serving
# rates): the ablation that shows what the serving-rate weights change
METRICS = (("mean_reward", "mean reward", "{:.4f}"), ("accuracy", "accuracy", "{:.4f}"),
           ("latency_mean_ms", "latency (ms)", "{:.1f}"), ("forward_rate", "forward rate", "{:.3f}"))


def one(args) -> dict:
    scenario, method, seed, rounds, alternations, alpha, policy, eval_steps = args
    import torch

    torch.set_num_threads(1)
    from idnbandit.bench.fl_cli import evaluate_fl
    from idnbandit.fl.loop import FLConfig, run_fl
    from idnbandit.scenario import load_scenario

    t0 = time.perf_counter()
    phases = 1 if method == "early-exit-equal" else min(alternations, rounds)
    cfg = FLConfig(method=method.removesuffix("-equal"), rounds=rounds, alternations=phases, alpha=alpha,
                   seed=seed, policy=policy)
    res = run_fl(load_scenario(scenario), cfg)
    train_s = time.perf_counter() - t0
    ev = evaluate_fl(res.scenario, res.trace, policy, eval_steps, [seed])[0]
    acc = dict(zip(res.trace.model_names, res.trace.accuracies().tolist()))
    return {"method": method, "seed": seed, "train_s": train_s, "test_accuracy_per_node": acc,
            "history": res.history, **{k: float(v) if not isinstance(v, dict) else v for k, v in ev.items() if k != "seed"}}


def table(rows: list[dict], methods) -> str:
    from idnbandit.bench import mean_ci

    head = "| method | " + " | ".join(name for _, name, _ in METRICS) + " | tier accuracy (device/edge/regional/cloud) |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        cells = []
        for key, _, fmt in METRICS:
            ci = mean_ci([r[key] for r in rs])
            cells.append(f"{fmt.format(ci.mean)} ± {fmt.format(ci.ci95)}")
        tiers = []
        for node in ("phone-1", "edge", "regional", "cloud"):
            vals = [r["test_accuracy_per_node"].get(node) for r in rs]
            vals = [v for v in vals if v is not None]
            tiers.append(f"{sum(vals) / len(vals):.3f}" if vals else "-")
        lines.append(f"| {m} | " + " | ".join(cells) + " | " + "/".join(tiers) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="idn-4tier")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--alternations", type=int, default=3)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--policy", default="linucb")
    p.add_argument("--eval-steps", type=int, default=20_000)
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default="benchmarks/fl_compare_results.json")
    a = p.parse_args(argv)
    tasks = [(a.scenario, m, s, a.rounds, a.alternations, a.alpha, a.policy, a.eval_steps)
             for s in a.seeds for m in a.methods]
    t0 = time.perf_counter()
    rows = []
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            for r in ex.map(one, tasks):
                print(f"{r['method']:>15} seed {r['seed']}: reward {r['mean_reward']:.4f} accuracy "
                      f"{r['accuracy']:.4f} latency {r['latency_mean_ms']:.1f} ms ({r['train_s']:.0f} s)", flush=True)
                rows.append(r)
    else:
        for t in tasks:
            r = one(t)
            print(f"{r['method']:>15} seed {r['seed']}: reward {r['mean_reward']:.4f} accuracy "
                  f"{r['accuracy']:.4f} latency {r['latency_mean_ms']:.1f} ms ({r['train_s']:.0f} s)", flush=True)
            rows.append(r)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "wall_s": time.perf_counter() - t0, "rows": rows}, indent=1,
                              default=float))
    print()
    print(f"{a.scenario}, {a.rounds} rounds, Dirichlet alpha {a.alpha}, policy {a.policy} learned online for "
          f"{a.eval_steps} requests; seeds {a.seeds}; mean ± 95 % CI over seeds")
    print(table(rows, a.methods))
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
