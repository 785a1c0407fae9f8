"""The ``idnbandit`` command line (console script ``idnbandit = idnbandit.cli:main``).

Each subcommand is two small functions: ``_add_<name>(subparsers)`` declares its arguments and
``_run_<name>(args) -> int`` does the work (importing what it needs lazily, so ``idnbandit --help``
stays fast). Register a new subcommand by adding it to :data:`SUBCOMMANDS` (or calling
:func:`add_subcommand`). Errors of the idnbandit family (:class:`~idnbandit.errors.ConfigError`,
:class:`~idnbandit.errors.UnknownNameError`, :class:`~idnbandit.errors.TraceError`, ...) are
printed as one line on stderr and exit with code 2, without a traceback.

Examples
--------
>>> from idnbandit.cli import main
>>> main(["scenarios"])  # doctest: +ELLIPSIS
flash-crowd ...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .bench.cli import add_agents, add_bench, run_agents_command, run_bench_command
from .bench.fl_cli import add_fl, run_fl_command
from .errors import IdnBanditError

__all__ = ["main", "build_parser", "add_subcommand", "SUBCOMMANDS", "EXIT_USAGE"]

EXIT_USAGE = 2  # bad input: unknown name, invalid scenario, broken trace (argparse uses 2 too)

AddParser = Callable[["argparse._SubParsersAction"], argparse.ArgumentParser]
Run = Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------------ scenarios
def _add_scenarios(sub) -> argparse.ArgumentParser:
    return sub.add_parser("scenarios", help="list the built-in scenarios, one per line",
                          description="List the built-in scenarios with their descriptions.")


def _run_scenarios(args: argparse.Namespace) -> int:
    from .scenario import builtin_names, load_scenario

    names = builtin_names()
    width = max(map(len, names), default=0)
    for name in names:
        s = load_scenario(name, check_data=False)
        print(f"{name:<{width}}  {s.description}")
    return 0


# ------------------------------------------------------------------------------------- describe
def _add_describe(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("describe", help="print a scenario's topology, options and model ladder",
                       description="Load and validate a scenario (a built-in name or a .toml file), then print "
                                   "its topology tree, the option list of each origin, the workload, and the "
                                   "model ladder with each model's accuracy on the scenario's trace.")
    from .scenario import DEFAULT_SCENARIO

    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help="built-in scenario name (see `idnbandit scenarios`) or path to a .toml file "
                        f"(default: {DEFAULT_SCENARIO})")
    p.add_argument("--no-trace", action="store_true",
                   help="do not load the trace (skips the trace checks and the accuracy column)")
    return p


def _run_describe(args: argparse.Namespace) -> int:
    from .scenario import describe_scenario, load_scenario, resolve_trace

    scenario = load_scenario(args.scenario, check_data=not args.no_trace)
    trace = None if args.no_trace else resolve_trace(scenario)
    print(describe_scenario(scenario, trace))
    return 0


# ------------------------------------------------------------------------------------- registry
SUBCOMMANDS: dict[str, tuple[AddParser, Run]] = {
    "scenarios": (_add_scenarios, _run_scenarios),
    "describe": (_add_describe, _run_describe),
    "bench": (add_bench, run_bench_command),
    "agents": (add_agents, run_agents_command),
    "fl": (add_fl, run_fl_command),
}


def add_subcommand(name: str, add_parser: AddParser, run: Run) -> None:
    """Register subcommand ``name``: ``add_parser(subparsers)`` declares it, ``run(args)`` runs it."""
    SUBCOMMANDS[name] = (add_parser, run)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand (``args.command`` names the one given)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="idnbandit",
        description="Learn cooperative inference strategies in Inference Delivery Networks.",
    )
    parser.add_argument("--version", action="version", version=f"idnbandit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser, run in SUBCOMMANDS.values():
        p = add_parser(sub)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``idnbandit`` command; returns the exit code.

    Parameters
    ----------
    argv
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on bad input (one line on stderr), argparse's code for usage errors.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args._run(args)
    except IdnBanditError as exc:
        msg = " ".join(str(exc).split("\n"))
        print(f"idnbandit {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
