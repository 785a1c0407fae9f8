"""The ``idnbandit bench`` and ``idnbandit agents`` subcommands (registered in :mod:`idnbandit.cli`).

``bench`` validates everything (scenarios, agent specs and hyperparameters, seeds, steps, the
results folder) before it writes anything, then runs the scenario × agent × seed cells and prints
one table per scenario. Exit codes: 0 done, 1 some cells failed, 2 bad input, 130 interrupted
(finished cells are kept; re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError, require

__all__ = ["add_bench", "run_bench_command", "add_agents", "run_agents_command", "DEFAULT_AGENTS",
           "EXIT_FAILED", "EXIT_INTERRUPTED"]

DEFAULT_AGENTS = "linucb,lints,hedge-hi,static-threshold,always-local,always-cloud"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def add_bench(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench", help="compare agents across scenarios and seeds (parallel, resumable)",
        description="Run every scenario x agent x seed cell (in parallel), write one JSON file per finished "
                    "cell, results.csv and summary.json into --out, and print mean +- 95% CI tables. "
                    "Re-running the same command resumes.",
        epilog="example: idnbandit bench --scenario idn-4tier --agents 'linucb(alpha=0.5),hedge-hi,always-local,"
               "always-cloud' --seeds 3 --steps 20000 --out results/")
    from ..scenario import DEFAULT_SCENARIO

    p.add_argument("--scenario", default=DEFAULT_SCENARIO, metavar="NAMES",
                   help="comma-separated built-in scenario names or .toml paths, or 'all' for every built-in "
                        "(default: %(default)s)")
    p.add_argument("--agents", default=None, metavar="SPECS",
                   help="comma-separated agent specs, hyperparameters in parentheses: "
                        f"\"linucb(alpha=0.5),hedge-hi\" (default: {DEFAULT_AGENTS}; see `idnbandit agents`)")
    p.add_argument("--agents-file", default=None, metavar="TOML",
                   help="TOML file with an [agents] table: label = \"spec\" or [agents.label] name = ... "
                        "(added after --agents when both are given)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=5, metavar="N", help="run seeds 0..N-1 (default: %(default)s)")
    seeds.add_argument("--seed-list", default=None, metavar="S,S,...", help="explicit comma-separated run seeds")
    p.add_argument("--steps", type=int, default=100_000, help="requests per run (default: %(default)s)")
    p.add_argument("--out", required=True, help="results folder (created; resumed when it holds the same run)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores; 1 = in-process)")
    p.add_argument("--backend", default="process", choices=["process", "ray"],
                   help="local processes, or tasks on a Ray cluster (needs the ray extra)")
    p.add_argument("--address", default=None, help="Ray cluster address for ray.init (default: local Ray)")
    p.add_argument("--curve-points", type=int, default=200, help="points of each run's regret curve")
    p.add_argument("--scope", default=None, metavar="SCOPE",
                   help="agent scope: 'shared' (one learner at every node of the path, node identity in the "
                        "context) or 'per-node' (one learner per decision node); default: one decision at the origin")
    p.add_argument("--plots", action="store_true", help="also write PNG plots into OUT/plots (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress and no table (errors only)")
    return p


def _scenarios(text: str) -> list[str]:
    from ..scenario import builtin_names

    names = [s.strip() for s in text.split(",")]
    if any(not s for s in names):
        raise ConfigError(f"--scenario {text!r}: empty item; separate scenario names with single commas")
    out: list[str] = []
    for s in names:
        out.extend(builtin_names() if s == "all" else [s])
    return out


def _seeds(args) -> list[int]:
    if args.seed_list is None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds: {args.seeds!r} is not allowed; it must be an integer >= 1")
        return list(range(args.seeds))
    out = []
    for item in args.seed_list.split(","):
        try:
            out.append(int(item.strip()))
        except ValueError:
            raise ConfigError(f"--seed-list: {item.strip()!r} is not an integer") from None
        if out[-1] < 0:
            raise ConfigError(f"--seed-list: {out[-1]} is not allowed; seeds must be >= 0")
    return out


def _agents(args):
    from .specs import agents_from_cli, agents_from_file

    agents = []
    if args.agents is not None or args.agents_file is None:
        agents += agents_from_cli(DEFAULT_AGENTS if args.agents is None else args.agents)
    if args.agents_file is not None:
        agents += agents_from_file(args.agents_file)
    return agents


def run_bench_command(args: argparse.Namespace) -> int:
    from .plan import check_count, make_plan
    from .report import print_report
    from .runner import run_bench
    from .store import ResultStore

    check_count("--steps", args.steps, 1)
    if args.jobs is not None:
        check_count("--jobs", args.jobs, 1)
    if args.backend == "ray":
        require("ray", "ray")
    elif args.address is not None:
        raise ConfigError("--address: only meaningful with --backend ray")
    if args.plots:
        require("matplotlib", "plot")
    seeds = _seeds(args)
    plan = make_plan(_scenarios(args.scenario), _agents(args), seeds, args.steps, args.curve_points,
                     scope=getattr(args, "scope", None))
    ResultStore(args.out).check(plan)  # refuse a foreign or unwritable folder before any work

    outcome = run_bench(plan, args.out, backend=args.backend, jobs=args.jobs, address=args.address,
                        quiet=args.quiet)
    store = outcome.store
    if args.plots and outcome.records:
        from .plots import write_plots

        write_plots(plan, outcome.records, store.plots_dir)
    if not args.quiet:
        print_report(outcome.summary)
        print(f"{len(outcome.records)}/{len(plan.cells)} cells in {store.root}/ ({outcome.ran} run now, "
              f"{outcome.resumed} resumed) in {outcome.wall_time_s:.1f} s: results.csv, summary.json"
              + (", plots/" if args.plots else ""))
    for cell, msg in outcome.failed:
        print(f"idnbandit bench: cell {cell.cell_id} failed: {msg}", file=sys.stderr)
    if outcome.interrupted:
        print(f"idnbandit bench: interrupted; {len(outcome.records)} of {len(plan.cells)} cells are kept in "
              f"{store.root}/; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcome.failed else 0


def add_agents(sub) -> argparse.ArgumentParser:
    return sub.add_parser("agents", help="list the agents, one per line",
                          description="List the registered agents with a one-line description and their "
                                      "hyperparameters (set them as name(key=value, ...)).")


def run_agents_command(args: argparse.Namespace) -> int:
    from ..agents.registry import agent_entry, agent_names

    names = agent_names()
    width = max(map(len, names), default=0)
    for name, desc in names.items():
        entry = agent_entry(name)
        params = [p for p in entry.cls._param_names() if p not in ("n_actions", "n_features", "seed")
                  and p not in entry.params]
        print(f"{name:<{width}}  {desc}" + (f"  [{', '.join(params)}]" if params else ""))
    return 0
