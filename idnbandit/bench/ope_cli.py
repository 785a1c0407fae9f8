"""``idnbandit ope``: off-policy evaluation of agents on a decision log, from the command line.

::

    idnbandit ope --log decisions.parquet --policies "linucb(alpha=0.3),static-threshold" --out ope-results

For each policy spec: an agent that learns (``linucb``) is first trained on the log by rejection-sampling
replay (:func:`~idnbandit.ope.replay`: its mean reward on the accepted rows is the ``replay`` row, an
estimate of what it would have earned online on this traffic); then its final policy, frozen, is
evaluated by every estimator (:func:`~idnbandit.ope.evaluate`). The logging policy's own value (mean
observed reward) is the ``logged`` row, for reference. Prints a table; writes ``ope.csv`` and
``ope.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path

from ..errors import ConfigError

__all__ = ["add_ope", "run_ope_command", "OPE_FILES"]

OPE_FILES = ("ope.csv", "ope.json")
_COLUMNS = ("policy", "estimator", "value", "ci_low", "ci_high", "std_error", "n", "ess")


def add_ope(sub) -> argparse.ArgumentParser:
    """Declare the ``ope`` subcommand."""
    from ..ope import ESTIMATORS

    p = sub.add_parser("ope", help="estimate agents' mean reward on a decision log (off-policy evaluation)",
                       description="Estimate how each policy would have done on the traffic of a decision log "
                                   "(.parquet or .csv, see docs/ope.md): learning agents are trained on the log "
                                   "by replay first, then every estimator evaluates their final policy.")
    p.add_argument("--log", required=True, help="decision log (.parquet or .csv)")
    p.add_argument("--policies", required=True,
                   help='agent specs, comma-separated, e.g. "linucb(alpha=0.3),static-threshold"')
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier ope output)")
    p.add_argument("--estimators", default=",".join(ESTIMATORS),
                   help=f"comma-separated (default: {','.join(ESTIMATORS)})")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the intervals (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the agents, the replay and the bootstrap")
    p.add_argument("--n-options", type=int, default=None,
                   help="number of options, for a CSV log without the idnbandit metadata line")
    p.add_argument("--missing", choices=("error", "drop"), default="error",
                   help="rows without an observed reward: refuse (default) or drop them (biased)")
    p.add_argument("--save-agents", action="store_true",
                   help="save each agent trained by replay as OUT/agents/<policy>.npz (load with Agent.load), "
                        "to warm up a strategy on logs before it goes live")
    return p


def _ours(root: Path) -> bool:
    return any((root / f).exists() for f in OPE_FILES)


def _first_chunk(path: str, n_options):
    from ..errors import LogError
    from ..ope import iter_log

    try:
        return next(iter_log(path, chunk_rows=1024, n_options=n_options))
    except StopIteration:  # pragma: no cover - iter_log yields at least one (possibly empty) chunk
        raise LogError(f"{path}: empty") from None


def run_ope_command(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text
    from ..agents import propensity_problem
    from ..agents.registry import make_agent
    from ..ope import ESTIMATORS, agent_policy, evaluate, replay
    from .specs import canonical_spec, split_specs
    from .store import check_out_folder, to_json

    # --------------------------------------------------------------- everything checked before work
    for flag, v, lo, hi in (("--n-boot", args.n_boot, 0, 10_000), ("--seed", args.seed, 0, 2**63 - 1),
                            ("--n-options", args.n_options, 1, 10**6)):
        if v is not None and not lo <= v <= hi:
            raise ConfigError(f"{flag}: {v} is not allowed; it must be an integer in [{lo}, {hi}]")
    head = _first_chunk(args.log, args.n_options)
    meta = head.meta
    k, d = meta.n_options, meta.n_features
    estimators = [e.strip() for e in args.estimators.split(",") if e.strip()]
    for e in estimators:
        if e not in ESTIMATORS:
            from ..errors import UnknownNameError

            raise UnknownNameError("estimator", e, ESTIMATORS)
    specs = [canonical_spec(s) for s in split_specs(args.policies)]
    if len(set(specs)) != len(specs):
        raise ConfigError(f"--policies: {args.policies!r} lists a policy twice")
    agents = {s: make_agent(s, k, d, seed=args.seed) for s in specs}
    if args.save_agents:  # refuse unsaveable agents before training them
        for s, a in agents.items():
            if getattr(a, "learns", True) and not callable(getattr(a, "save", None)):
                raise ConfigError(f"--save-agents: {s} cannot be saved; drop --save-agents or the agent")
    for s, a in agents.items():
        why = propensity_problem(a)
        if why:
            raise ConfigError(f"--policies {s}: cannot report the probability of its decisions: {why}; "
                              "off-policy estimators need it")
    out = Path(args.out)
    check_out_folder(out, f"--out {args.out}", _ours, "ope output")

    # --------------------------------------------------------------- work
    rows = []
    logged = _logged_value(args.log, args.n_options)
    if args.missing == "error":  # refuse unobserved rewards before training anything
        from ..ope import iter_log
        from ..ope.estimators import observed_rows

        for c in iter_log(args.log, n_options=args.n_options):
            observed_rows(c, "error", str(args.log))
    rows.append({"policy": f"logged ({meta.policy or 'logging policy'})", "estimator": "on-policy", **logged})
    for s, agent in agents.items():
        if getattr(agent, "learns", True):
            print(f"ope: training {s} on the log by replay ...", file=sys.stderr)
            r = replay(agent, args.log, seed=args.seed, n_options=args.n_options, missing=args.missing)
            se = r.std_error
            rows.append({"policy": s, "estimator": "replay", "value": r.mean_reward,
                         "ci_low": r.mean_reward - 1.96 * se, "ci_high": r.mean_reward + 1.96 * se,
                         "std_error": se, "n": r.accepted, "ess": float("nan")})
            if args.save_agents:
                from .specs import safe_name

                (out / "agents").mkdir(parents=True, exist_ok=True)
                saved = agent.save(out / "agents" / f"{safe_name(s)}.npz")
                print(f"ope: saved {s} to {saved}", file=sys.stderr)
    print("ope: estimating ...", file=sys.stderr)
    policies = {s: agent_policy(a, s) for s, a in agents.items()}
    for e in evaluate(args.log, policies, estimators=estimators, n_boot=args.n_boot, seed=args.seed,
                      missing=args.missing, n_options=args.n_options):
        rows.append(e._asdict())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ope.csv", _csv_text(rows))
    atomic_write_text(out / "ope.json", to_json({"log": str(args.log), "meta": meta.__dict__, "rows": rows}))
    print(_table(rows))
    print(f"\nwrote {out / 'ope.csv'} and {out / 'ope.json'}")
    return 0


def _logged_value(path, n_options) -> dict:
    from ..ope import iter_log

    n, s, s2 = 0, 0.0, 0.0
    for c in iter_log(path, n_options=n_options):
        r = c.reward[c.observed]
        n += r.size
        s += float(r.sum())
        s2 += float((r * r).sum())
    mean = s / n if n else float("nan")
    se = math.sqrt(max(s2 / n - mean * mean, 0.0) / n) if n > 1 else float("nan")
    return {"value": mean, "ci_low": mean - 1.96 * se, "ci_high": mean + 1.96 * se, "std_error": se, "n": n,
            "ess": float("nan")}


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_COLUMNS)
    for r in rows:
        w.writerow(["" if isinstance(r[c], float) and not math.isfinite(r[c]) else r[c] for c in _COLUMNS])
    return buf.getvalue()


def _table(rows: list[dict]) -> str:
    def f(v):
        return "-" if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)) \
            else (f"{v:.4f}" if isinstance(v, float) else f"{v:,}")
    lines = [("policy", "estimator", "estimate", "95% CI", "n")]
    for r in rows:
        ci = "-" if not math.isfinite(r["ci_low"]) else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
        lines.append((r["policy"][:40], r["estimator"], f(r["value"]), ci, f(r["n"])))
    w = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(line)).rstrip()
                     for line in lines)
