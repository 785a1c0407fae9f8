"""How accurate are the off-policy estimators on delivery problems? Checked against the simulator's truth.

For each scenario (idn-4tier, hi-two-tier, shared-edge; feedback set to ``bandit`` so the log shows the
chosen option's reward) and each logging agent (``epsilon-greedy``: ε-greedy over a learned linear
model; ``exp3``: a softmax over importance-weighted gains), and each seed:

1. run the logging agent on ``--steps`` requests with ``simulate(..., log=...)``;
2. for each of 5 target policies (always local, always the farthest option, a static confidence
   threshold, uniform random, and LinUCB trained on another seed then frozen), estimate its mean
   reward from the log with every estimator (200-resample Poisson-bootstrap intervals);
3. the truth: the target actually run in the simulator on the same requests (same seed: common random
   numbers), and the value at the *logged* loads (the log's simulation-only columns) — their
   difference is the queueing-interaction bias no estimator can remove.

Prints, per scenario × logger × estimator: mean |estimate − truth| over targets and seeds, 95 % CI
coverage of the truth, and the same against the logged-load value; then the interaction bias (truth −
logged-load value) per target. Usage::

    python benchmarks/ope_accuracy.py                 # 20 seeds, 100,000 requests (about 15 minutes)
    python benchmarks/ope_accuracy.py --seeds 3 --steps 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SCENARIOS = ("idn-4tier", "hi-two-tier", "shared-edge")
LOGGERS = ("epsilon-greedy", "exp3")
TARGETS = ("always-local", "always-farthest", "static-threshold", "random", "frozen-linucb")


def bandit_scenario(name: str):
    from idnbandit.scenario import load_scenario
    from idnbandit.scenario.model import FeedbackMode

    sc = load_scenario(name)
    return dataclasses.replace(sc, feedback=dataclasses.replace(sc.feedback, mode=FeedbackMode("bandit"),
                                                                 delay_requests=0, delay_s=0.0))


@njit(cache=True)
def _no_update(state, x, a, r, rewards):
    return None


def targets(sc, seed: int, steps: int) -> dict:
    """name -> an agent that does not learn while it is evaluated (estimators) or run (truth)."""
    from idnbandit.agents.registry import make_agent
    from idnbandit.sim import n_features, n_options, simulate

    k, f = n_options(sc), n_features(sc)
    frozen = make_agent("linucb", k, f, seed=seed)
    simulate(sc, frozen, steps, seed=10_000 + seed)  # trained on other requests ...
    frozen._update_kernel = _no_update  # ... then frozen: the same select kernel, a no-op update (fused path)
    frozen._step_update = None
    return {"always-local": make_agent("always-local", k, f), "always-farthest": make_agent("fixed(option=-1)", k, f),
            "static-threshold": make_agent("static-threshold", k, f), "random": make_agent("random", k, f, seed=seed),
            "frozen-linucb": frozen}


def run(seeds: int, steps: int, n_boot: int, scenarios=SCENARIOS, store: Path | None = None) -> list[dict]:
    """Rows of the study; with ``store`` (a JSON file), rows already there are kept and their
    (scenario, seed) pairs skipped, and the file is rewritten after each pair (resumable)."""
    from idnbandit.agents.registry import make_agent
    from idnbandit.ope import agent_policy, evaluate, read_log, sim_value
    from idnbandit.sim import n_features, n_options, simulate

    rows = json.loads(store.read_text()) if store is not None and store.exists() else []
    done = {(r["scenario"], r["seed"]) for r in rows}
    tmp = Path(tempfile.mkdtemp())
    for name in scenarios:
        sc = bandit_scenario(name)
        k, f = n_options(sc), n_features(sc)
        for seed in range(seeds):
            if (name, seed) in done:
                continue
            tg = targets(sc, seed, steps)
            truth = {t: simulate(sc, a, steps, seed=seed).mean_reward for t, a in tg.items()}
            for logger in LOGGERS:
                t0 = time.perf_counter()
                path = tmp / f"{name}-{logger}-{seed}.parquet"
                simulate(sc, make_agent(logger, k, f, seed=seed), steps, seed=seed, log=path)
                log = read_log(path)
                pols = {t: agent_policy(a, t) for t, a in tg.items()}
                est = evaluate(log, pols, n_boot=n_boot, seed=seed)
                for e in est:
                    rows.append({"scenario": name, "logger": logger, "seed": seed, "target": e.policy,
                                 "estimator": e.estimator, "estimate": e.value, "ci_low": e.ci_low,
                                 "ci_high": e.ci_high, "ess": e.ess, "truth": truth[e.policy],
                                 "logged_load_value": sim_value(log, pols[e.policy])})
                path.unlink()
                print(f"{name} {logger} seed {seed}: {time.perf_counter() - t0:.1f} s", flush=True)
            if store is not None:
                tmp_store = store.with_suffix(".tmp")
                tmp_store.write_text(json.dumps(rows))
                os.replace(tmp_store, store)
    return rows


def table(rows: list[dict]) -> str:
    from idnbandit.ope import ESTIMATORS

    out = ["| scenario | logger | estimator | mean abs error | CI coverage | abs error vs logged-load value | "
           "CI coverage of it | worst target (mean abs error) |", "|---|---|---|---|---|---|---|---|"]
    for sc in SCENARIOS:
        for lg in LOGGERS:
            for e in ESTIMATORS:
                r = [x for x in rows if x["scenario"] == sc and x["logger"] == lg and x["estimator"] == e]
                if not r:
                    continue
                err = np.array([abs(x["estimate"] - x["truth"]) for x in r])
                cov = np.mean([x["ci_low"] <= x["truth"] <= x["ci_high"] for x in r])
                err_l = np.mean([abs(x["estimate"] - x["logged_load_value"]) for x in r])
                cov_l = np.mean([x["ci_low"] <= x["logged_load_value"] <= x["ci_high"] for x in r])
                by_t = {t: np.mean([abs(x["estimate"] - x["truth"]) for x in r if x["target"] == t]) for t in TARGETS}
                worst = max(by_t, key=by_t.get)
                out.append(f"| {sc} | {lg} | {e} | {err.mean():.4f} | {cov:.2f} | {err_l:.4f} | {cov_l:.2f} | "
                           f"{worst} ({by_t[worst]:.4f}) |")
    # the interaction bias: truth vs value at the logged loads, per scenario
    out.append("")
    out.append("| scenario | target | truth − logged-load value (mean over seeds and loggers) |")
    out.append("|---|---|---|")
    for sc in SCENARIOS:
        for t in TARGETS:
            r = [x for x in rows if x["scenario"] == sc and x["target"] == t and x["estimator"] == "dm"]
            if r:
                out.append(f"| {sc} | {t} | {np.mean([x['truth'] - x['logged_load_value'] for x in r]):+.4f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--json", default=None, help="keep the raw rows here (resumable: done pairs are skipped)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    ap.add_argument("--table-only", action="store_true", help="print the table of --json's rows, run nothing")
    args = ap.parse_args(argv)
    store = Path(args.json) if args.json else None
    if args.table_only:
        rows = json.loads(store.read_text())
    else:
        rows = run(args.seeds, args.steps, args.n_boot, args.scenarios.split(","), store)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
