"""The ``idnbandit`` command line (console script ``idnbandit = idnbandit.cli:main``).

Each subcommand is two small functions: ``_add_<name>(subparsers)`` declares its arguments and
``_run_<name>(args) -> int`` does the work (importing what it needs lazily, so ``idnbandit --help``
stays fast). Register a new subcommand by adding it to :data:`SUBCOMMANDS` (or calling
:func:`add_subcommand`). Errors of the idnbandit family (:class:`~idnbandit.errors.ConfigError`,
:class:`~idnbandit.errors.UnknownNameError`, :class:`~idnbandit.errors.TraceError`, ...) are
printed as one line on stderr and exit with code 2, without a traceback; so are argparse's usage
errors (``idnbandit bench: error: argument --seeds: invalid int value: 'x' (see idnbandit bench --help)``;
an unknown flag gets the closest flag of the subcommand as a suggestion).

When the reader of stdout goes away (``idnbandit scenarios | head -1``), every command stops
quietly and exits with code 141 (128 + SIGPIPE, what ``cat`` or ``yes`` report when killed by
SIGPIPE): the output is incomplete, which a script using ``set -o pipefail`` should be able to see,
and without ``pipefail`` the pipeline's status is the reader's. No traceback is printed.

Examples
--------
>>> from idnbandit.cli import main
>>> main(["scenarios"])  # doctest: +ELLIPSIS
deadline-edge ...
...
0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .bench.cli import add_agents, add_bench, run_agents_command, run_bench_command
from .bench.fl_cli import add_fl, run_fl_command
from .bench.ope_cli import add_ope, run_ope_command
from .errors import IdnBanditError

__all__ = ["main", "build_parser", "add_subcommand", "SUBCOMMANDS", "EXIT_USAGE", "EXIT_BROKEN_PIPE"]

EXIT_USAGE = 2  # bad input: unknown name, invalid scenario, broken trace (argparse uses 2 too)
EXIT_BROKEN_PIPE = 141  # stdout's reader went away: 128 + SIGPIPE, as for a process killed by SIGPIPE

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
    "ope": (add_ope, run_ope_command),
}


def add_subcommand(name: str, add_parser: AddParser, run: Run) -> None:
    """Register subcommand ``name``: ``add_parser(subparsers)`` declares it, ``run(args)`` runs it."""
    SUBCOMMANDS[name] = (add_parser, run)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``idnbandit bench: error: ... (see --help)``), exit 2."""

    def error(self, message: str):
        hint = ""
        if message.startswith("unrecognized arguments:"):  # suggest a close flag of any subcommand
            from .errors import close_matches

            flags = {o for p in self._parsers() for a in p._actions for o in a.option_strings}
            close = [m for w in message.split()[2:] if w.startswith("--") for m in close_matches(w, flags, 1)]
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())}{hint} (see {self.prog} --help)\n")

    def _parsers(self) -> list[argparse.ArgumentParser]:
        """This parser and the parser of the subcommand named in the arguments (all when none is)."""
        subs = {n: p for a in self._actions if isinstance(a, argparse._SubParsersAction) for n, p in a.choices.items()}
        given = [subs[w] for w in getattr(self, "argv", ()) if w in subs][:1]
        return [self, *(given or subs.values())]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand (``args.command`` names the one given)."""
    from . import __version__

    parser = _Parser(
        prog="idnbandit",
        description="Learn cooperative inference strategies in Inference Delivery Networks.",
    )
    parser.add_argument("--version", action="version", version=f"idnbandit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser, run in SUBCOMMANDS.values():
        p = add_parser(sub)
        p.set_defaults(_run=run)
    return parser


def _silence_broken_outputs() -> None:
    """Point the file descriptor of stdout (and of stderr, if its reader went away too: ``2>&1 | head``)
    at /dev/null, so that flushing what is left at exit cannot fail again (the recipe of the Python
    docs, "Note on SIGPIPE")."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is sys.stderr:
                stream.flush()  # stderr holds nothing when it works: a failure means it is broken
                continue
            fd = stream.fileno()
        except BrokenPipeError:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (an in-process caller's stand-in)
            continue
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``idnbandit`` command; returns the exit code.

    Parameters
    ----------
    argv
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on bad input (one line on stderr), argparse's code for usage errors,
        :data:`EXIT_BROKEN_PIPE` (141) when stdout's reader went away (output stops quietly).
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe surfaces here when the output fitted in the buffer
    except BrokenPipeError:
        _silence_broken_outputs()
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    parser.argv = list(sys.argv[1:] if argv is None else argv)  # for suggestions in usage errors
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
