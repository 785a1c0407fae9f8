"""The ``idnbandit fl`` command: federated training of a scenario's node models.

It writes, into ``--out DIR``:

* ``trace.npz`` + ``trace.json``: the trained models' outputs on the held-out test split;
* ``scenario.toml``: the base scenario rewired to that trace (``idnbandit bench --scenario
  DIR/scenario.toml`` and every other command runs on it);
* ``weights.npz``: each node's trained parameters (``idnbandit.fl.load_weights``; no pickle);
* ``fl.json``: the configuration, the per-phase history and the end-to-end evaluation.

``--out`` is checked before any training: it must be a writable folder that is new, empty, or the
output of an earlier ``idnbandit fl`` (then its files are replaced); anything else is refused with
one line (exit 2), so the user's own files are never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .._io import atomic_open

__all__ = ["add_fl", "run_fl_command", "write_fl_outputs", "evaluate_fl", "check_fl_out", "FL_COUNT_BOUNDS",
           "FL_FORMAT"]

FL_FORMAT = "idnbandit-fl"  # the "format" of fl.json, which marks a folder as an fl output

#: integer flags of ``fl`` and their allowed range, checked first (one line, exit 2 beyond them)
FL_COUNT_BOUNDS = (("--rounds", 1, 10_000), ("--alternations", 1, 10_000), ("--local-epochs", 1, 10_000),
                   ("--policy-steps", 1, 10**12), ("--routing-steps", 1, 10**12), ("--eval-steps", 0, 10**12),
                   ("--threads", 1, 1024), ("--seed", 0, 2**63 - 1))


def add_fl(sub) -> argparse.ArgumentParser:
    """Declare the ``fl`` subcommand."""
    from ..fl import FL_METHODS
    from ..scenario import DEFAULT_SCENARIO

    p = sub.add_parser("fl", help="federated training of the node models (torch); writes a trace and scenario",
                       description="Train one model per node of a scenario federatedly on a Dirichlet "
                                   "label-skewed split of the digits images, record the trained models' "
                                   "outputs as a trace and write a scenario that runs on it.")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"base scenario: built-in name or .toml file (default: {DEFAULT_SCENARIO})")
    p.add_argument("--rounds", type=int, default=20, help="communication rounds (default: 20)")
    p.add_argument("--method", default="fedavg", choices=FL_METHODS, help="training method (default: fedavg)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--alternations", type=int, default=3,
                   help="delivery-aware / early-exit: training phases between routing re-estimations (default: 3)")
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label-skew concentration (default: 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    p.add_argument("--policy", default="linucb", help="delivery agent learned on the trained models (default: linucb)")
    p.add_argument("--policy-steps", type=int, default=20_000, help="requests per policy learning run (default: 20000)")
    p.add_argument("--routing-steps", type=int, default=4_000,
                   help="requests used to estimate routing rates (default: 4000)")
    p.add_argument("--key", default="confidence", choices=("confidence", "class"),
                   help="what routing rates are conditioned on (default: confidence)")
    p.add_argument("--local-epochs", type=int, default=2, help="local epochs per round (default: 2)")
    p.add_argument("--lr", type=float, default=0.05, help="local SGD learning rate (default: 0.05)")
    p.add_argument("--prox-mu", type=float, default=0.01, help="FedProx proximal weight (default: 0.01)")
    p.add_argument("--eval-steps", type=int, default=20_000,
                   help="requests of the end-to-end evaluation of the policy on the test trace; 0 skips it")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1, deterministic)")
    p.add_argument("--quiet", action="store_true", help="no per-round progress lines")
    return p


def evaluate_fl(scenario, trace, policy: str, steps: int, seeds) -> list[dict]:
    """Learn ``policy`` online on the trained scenario for each seed; return the run metrics.

    Returns
    -------
    list of dict
        One per seed: seed, mean_reward, accuracy, latency_mean_ms, latency_p95_ms, forward_rate,
        forward_rate_by_tier.
    """
    from ..fl.delivery import learn_policy

    out = []
    for s in seeds:
        _, r = learn_policy(scenario, trace, policy, steps, int(s))
        out.append({"seed": int(s), "mean_reward": r.mean_reward, "accuracy": r.accuracy,
                    "latency_mean_ms": r.latency_mean_ms, "latency_p95_ms": r.latency_p95_ms,
                    "forward_rate": r.forward_rate, "forward_rate_by_tier": r.forward_rate_by_tier})
    return out


def write_fl_outputs(result, out_dir, evaluation: list | None = None) -> dict[str, Path]:
    """Write trace, scenario, weights and ``fl.json`` of an :class:`~idnbandit.fl.loop.FLResult`.

    Returns
    -------
    dict
        ``{"trace", "scenario", "weights", "report"}`` -> paths written.

    Raises
    ------
    ConfigError
        ``out_dir`` is not a writable folder that is new, empty or an earlier fl output.
    """
    from ..fl import save_weights
    from ..scenario import dump_scenario, scenario_from_dict, scenario_to_dict

    out = Path(out_dir)
    check_fl_out(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trace": result.trace.save(out / "trace.npz")}
    scen = scenario_from_dict(scenario_to_dict(result.scenario), source=str(out / "scenario.toml"),
                              base_dir=str(out))
    paths["scenario"] = dump_scenario(scen, out / "scenario.toml")
    paths["weights"] = save_weights(out / "weights.npz", result.weights)
    report = {"format": FL_FORMAT, "config": result.config.to_dict(), "history": result.history,
              "test_accuracy": dict(zip(result.trace.model_names, result.trace.accuracies().tolist())),
              "evaluation": evaluation or []}
    paths["report"] = out / "fl.json"
    with atomic_open(paths["report"], "w") as f:  # last: its presence marks a complete fl output
        json.dump(report, f, indent=1, default=float)
    return paths


def _is_fl_output(folder: Path) -> bool:
    """Whether ``folder`` holds the ``fl.json`` of an earlier ``idnbandit fl`` run (which may be replaced)."""
    try:
        report = json.loads((folder / "fl.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(report, dict) and (report.get("format") == FL_FORMAT or (
        "format" not in report and {"config", "history", "test_accuracy"} <= report.keys()))


def check_fl_out(out: str | os.PathLike) -> bool:
    """Check ``--out`` of ``idnbandit fl`` before any work; True when it holds an earlier fl output.

    The folder must be creatable and writable, and either new, empty, or the output of an earlier
    ``idnbandit fl`` (its five files are replaced); a folder holding anything else is refused, so
    the user's own files (a ``scenario.toml``, an ``fl.json`` of their own) are never overwritten.

    Raises
    ------
    ConfigError
        One line naming ``--out`` and the problem.
    """
    from .store import check_out_folder

    return check_out_folder(Path(out), f"--out {os.fspath(out)}", _is_fl_output, "idnbandit fl output (fl.json)")


def run_fl_command(args: argparse.Namespace) -> int:
    """Run ``idnbandit fl``; returns the exit code."""
    from ..errors import require
    from ..fl import TrainConfig
    from ..fl.loop import FLConfig, run_fl
    from ..scenario import load_scenario
    from .plan import check_count

    for flag, lo, hi in FL_COUNT_BOUNDS:  # before torch is imported or anything is built
        check_count(flag, getattr(args, flag[2:].replace("-", "_")), lo, hi)
    check_fl_out(args.out)  # before any training: a file, a foreign or an unwritable folder is refused
    torch = require("torch", "torch")
    torch.set_num_threads(args.threads)
    base = load_scenario(args.scenario)
    train = TrainConfig(local_epochs=args.local_epochs, lr=args.lr, prox_mu=args.prox_mu)
    alternations = min(args.alternations, args.rounds) if args.rounds >= 1 else args.alternations
    cfg = FLConfig(method=args.method, rounds=args.rounds, alternations=alternations, alpha=args.alpha,
                   seed=args.seed, policy=args.policy, policy_steps=args.policy_steps,
                   routing_steps=args.routing_steps, key=args.key, train=train)
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    say(f"fl: {args.method} on {base.name} ({len(base.nodes)} nodes), {args.rounds} rounds, seed {args.seed}")
    result = run_fl(base, cfg, progress=say)
    evaluation = []
    if args.eval_steps > 0:
        evaluation = evaluate_fl(result.scenario, result.trace, args.policy, args.eval_steps, [args.seed])
    paths = write_fl_outputs(result, args.out, evaluation)
    acc = " ".join(f"{n}={a:.3f}" for n, a in zip(result.trace.model_names, result.trace.accuracies()))
    print(f"test accuracy per node: {acc}")
    for e in evaluation:
        print(f"end-to-end ({args.policy}, {args.eval_steps} requests, seed {e['seed']}): mean reward "
              f"{e['mean_reward']:.4f}, accuracy {e['accuracy']:.4f}, latency {e['latency_mean_ms']:.1f} ms")
    print(f"wrote {paths['scenario']} (run it: idnbandit bench --scenario {paths['scenario']})")
    return 0
