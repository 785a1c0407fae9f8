"""The ``idnbandit bench`` and ``idnbandit agents`` subcommands (registered in :mod:`idnbandit.cli`).

``bench`` validates everything (scenarios, agent specs and hyperparameters, seeds, steps, the
results folder) before it writes anything, then runs the scenario × agent × seed cells and prints
one table per scenario, fitted to the terminal's width (the full table goes to ``report.txt``).
Exit codes: 0 done, 1 some cells failed, 2 bad input, 130 interrupted (finished cells are kept;
re-run the same command to resume).

Bounds (checked first, before any list is built or file written; one line and exit 2 beyond them):
``--seeds`` / ``--seed-list`` at most 10,000 seeds, each in [0, 2^63 - 1] (``--seed-list`` ranges
``A-B`` are counted, not expanded, before the check); ``--steps`` in [1, 10^12]; ``--curve-points``
in [2, 10^6]; ``--jobs`` in [1, 1024]; at most 100,000 scenario x agent x seed cells.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, UnknownNameError, require

__all__ = ["add_bench", "run_bench_command", "add_agents", "run_agents_command", "DEFAULT_AGENTS",
           "EXIT_FAILED", "EXIT_INTERRUPTED"]

DEFAULT_AGENTS = "linucb,lints,hedge-hi,static-threshold,always-local,always-cloud"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
MAX_JOBS = 1024  # worker processes (or concurrent Ray tasks)
MAX_CELLS = 100_000  # scenario x agent x seed cells of one run (each is a file in the results folder)


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
    seeds.add_argument("--seeds", type=int, default=5, metavar="N",
                       help="run seeds 0..N-1, N <= 10000 (default: %(default)s)")
    seeds.add_argument("--seed-list", default=None, metavar="S,A-B,...",
                       help="explicit comma-separated run seeds; A-B is the inclusive range A..B")
    p.add_argument("--steps", type=int, default=100_000, help="requests per run, 1..10^12 (default: %(default)s)")
    p.add_argument("--out", required=True, help="results folder (created; resumed when it holds the same run)")
    p.add_argument("--jobs", type=int, default=None,
                   help=f"worker processes, 1..{MAX_JOBS} (default: all cores; 1 = in-process)")
    p.add_argument("--backend", default="process", choices=["process", "ray"],
                   help="local processes, or tasks on a Ray cluster (needs the ray extra)")
    p.add_argument("--address", default=None, help="Ray cluster address for ray.init (default: local Ray)")
    p.add_argument("--curve-points", type=int, default=200,
                   help="points of each run's regret curve, 2..10^6 (default: %(default)s)")
    p.add_argument("--scope", default=None, metavar="SCOPE",
                   help="agent scope: 'shared' (one learner at every node of the path, node identity in the "
                        "context) or 'per-node' (one learner per decision node); default: one decision at the origin")
    p.add_argument("--strict", action="store_true",
                   help="refuse an agent that cannot learn from a scenario's feedback mode (e.g. linucb under "
                        "label_on_forward) instead of warning once")
    p.add_argument("--plots", action="store_true", help="also write PNG plots into OUT/plots (needs matplotlib)")
    p.add_argument("--log", action="store_true",
                   help="write a decision log per cell into OUT/logs/<cell>.parquet, for off-policy evaluation "
                        "(`idnbandit ope`; needs pyarrow: pip install idnbandit[ope])")
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


def _seed_item(item: str) -> range:
    """One item of ``--seed-list``: ``S`` or an inclusive range ``A-B``, as a range (nothing is expanded)."""
    from .plan import MAX_SEED

    text = item.strip()
    lo_text, dash, hi_text = text.partition("-")
    try:
        if len(text) > 30:  # more digits than any allowed seed: refuse before int() parses them
            raise ValueError
        lo, hi = (int(lo_text), int(hi_text)) if dash and lo_text.strip() else (int(text), int(text))
    except ValueError:
        raise ConfigError(f"--seed-list: {text[:40]!r} is not allowed; give integers S or ranges A-B "
                          f"in [0, {MAX_SEED}], separated by commas") from None
    for v in (lo, hi):
        if not 0 <= v <= MAX_SEED:
            raise ConfigError(f"--seed-list: {v} is not allowed; seeds must be >= 0 and <= {MAX_SEED} (2^63 - 1)")
    if hi < lo:
        raise ConfigError(f"--seed-list: {text!r} is not allowed; a range A-B needs A <= B")
    return range(lo, hi + 1)


def _seeds(args) -> list[int]:
    """The run seeds of ``--seeds N`` (0..N-1) or ``--seed-list`` (``S,A-B,...``), counted before any
    list is built: more than ``MAX_SEEDS`` is a ConfigError naming the flag and the limit."""
    from .plan import MAX_SEEDS, check_count

    if args.seed_list is None:
        return list(range(check_count("--seeds", args.seeds, 1, MAX_SEEDS)))
    text = args.seed_list
    if text.count(",") >= MAX_SEEDS:
        raise ConfigError(f"--seed-list: {text.count(',') + 1} items are too many; at most {MAX_SEEDS} seeds "
                          "are allowed")
    ranges = [_seed_item(item) for item in text.split(",")]
    total = sum(r.stop - r.start for r in ranges)  # len() overflows beyond 2^63
    if total > MAX_SEEDS:
        raise ConfigError(f"--seed-list: {total} seeds are too many; at most {MAX_SEEDS} are allowed")
    return [s for r in ranges for s in r]


def known_agent_names() -> dict[str, str]:
    """Every name ``--agents`` accepts (registered agents, the ``ens-*`` strategies, plug-ins'), sorted."""
    from ..agents.registry import agent_names, factory_names

    return dict(sorted({**factory_names(), **agent_names()}.items()))


def _check_names(agents) -> None:
    """Unknown agent names fail with suggestions among *all* names (the registry alone does not list ens-*)."""
    from ..agents.registry import parse_agent_spec

    known = known_agent_names()
    for a in agents:
        name, _ = parse_agent_spec(a.spec)
        if name not in known:
            err = UnknownNameError("agent", name, known)
            if err.suggestions:  # suggestions and the whole list (registered agents and ens-* strategies)
                err.message += " known: " + ", ".join(err.choices)
            raise err


def _agents(args):
    from .specs import agents_from_cli, agents_from_file

    agents = []
    if args.agents is not None or args.agents_file is None:
        agents += agents_from_cli(DEFAULT_AGENTS if args.agents is None else args.agents)
    if args.agents_file is not None:
        agents += agents_from_file(args.agents_file)
    _check_names(agents)
    return agents


def run_bench_command(args: argparse.Namespace) -> int:
    from .plan import MAX_CURVE_POINTS, MAX_STEPS, check_count, make_plan
    from .report import REPORT_FILE, print_report, write_report
    from .runner import run_bench
    from .store import ResultStore

    check_count("--steps", args.steps, 1, MAX_STEPS)
    check_count("--curve-points", args.curve_points, 2, MAX_CURVE_POINTS)
    if args.jobs is not None:
        check_count("--jobs", args.jobs, 1, MAX_JOBS)
    seeds = _seeds(args)
    if args.backend == "ray":
        require("ray", "ray")
    elif args.address is not None:
        raise ConfigError("--address: only meaningful with --backend ray")
    if args.plots:
        require("matplotlib", "plot")
    scenarios, agents = _scenarios(args.scenario), _agents(args)
    n_cells = len(scenarios) * len(agents) * len(seeds)
    if n_cells > MAX_CELLS:
        raise ConfigError(f"cells: {len(scenarios)} scenarios x {len(agents)} agents x {len(seeds)} seeds = "
                          f"{n_cells} cells is too many; at most {MAX_CELLS} are allowed (split the run)")
    import warnings

    from ..errors import FeedbackMismatchWarning

    with warnings.catch_warnings(record=True) as caught:  # one line each, not Python's two-line format
        warnings.simplefilter("always", FeedbackMismatchWarning)
        plan = make_plan(scenarios, agents, seeds, args.steps, args.curve_points, scope=getattr(args, "scope", None),
                         strict=getattr(args, "strict", False),
                         log_dir=os.path.join(args.out, "logs") if getattr(args, "log", False) else None)
    for w in caught:
        if issubclass(w.category, FeedbackMismatchWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    ResultStore(args.out).check(plan)  # refuse a foreign or unwritable folder before any work

    from .progress import one_line_warnings
    from .store import MalformedCellWarning

    with one_line_warnings(MalformedCellWarning):
        outcome = run_bench(plan, args.out, backend=args.backend, jobs=args.jobs, address=args.address,
                            quiet=args.quiet)
    store = outcome.store
    if outcome.records:
        write_report(outcome.summary, store.root)
    if args.plots and outcome.records:
        from .plots import write_plots

        write_plots(plan, outcome.records, store.plots_dir)
    if not args.quiet:
        print_report(outcome.summary)
        print(f"{len(outcome.records)}/{len(plan.cells)} cells ({outcome.ran} run now, {outcome.resumed} resumed) "
              f"in {outcome.wall_time_s:.1f} s")
        print(f"in {store.root}/: results.csv, summary.json" + (f", {REPORT_FILE} (the full tables)"
                                                               if outcome.records else "")
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
                          description="List the registered agents and the ensemble strategies (ens-*) with a "
                                      "one-line description and their hyperparameters (set them as "
                                      "name(key=value, ...)).")


def _params(name: str) -> list[str]:
    from ..agents.registry import agent_entry, agent_names
    from ..ensembles.registry import STRATEGIES

    if name in agent_names():
        entry = agent_entry(name)
        cls, fixed = entry.cls, entry.params
    elif name in STRATEGIES:
        cls, fixed = STRATEGIES[name][0], {}
    else:  # a plug-in's factory: its parameters are not known here
        return []
    return [p for p in cls._param_names() if p not in ("n_actions", "n_features", "seed") and p not in fixed]


def run_agents_command(args: argparse.Namespace) -> int:
    names = known_agent_names()
    width = max(map(len, names), default=0)
    for name, desc in names.items():
        params = _params(name)
        print(f"{name:<{width}}  {desc}" + (f"  [{', '.join(params)}]" if params else ""))
    return 0
