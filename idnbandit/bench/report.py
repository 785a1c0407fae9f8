"""The terminal report of a benchmark: Rich tables per scenario, mean ± 95 % CI half-width over seeds.

A table never truncates a number. When all the columns of a scenario do not fit the console width,
they are split over several tables (each repeating the agent column), so the report stays legible
in an 80-column terminal; :func:`write_report` writes the full table (one per scenario, every
column) into the results folder (``report.txt``). Decisions/s is reported as the median over seeds:
wall-clock figures are skewed (a slow cell moves the mean and widens a CI beyond the mean itself).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["format_mean_ci", "format_median", "report_columns", "summary_tables", "print_report",
           "report_text", "write_report", "REPORT_FILE"]

REPORT_FILE = "report.txt"
FULL_WIDTH = 100_000  # console width of the file report: every table is as wide as its columns

# metric key -> (heading, format of mean and half-width); a heading may hold a line break
COLUMNS: list[tuple[str, str, str]] = [
    ("mean_reward", "reward", ".4f"),
    ("accuracy", "accuracy", ".4f"),
    ("latency_mean_ms", "lat. mean ms", ".1f"),
    ("latency_p95_ms", "lat. p95 ms", ".1f"),
    ("forward_rate", "forward", ".3f"),
    ("mean_cost", "cost", ".3f"),
    ("regret_oracle", "regret vs\noracle", ".0f"),
    ("regret_best_fixed", "regret vs\nbest fixed", ".0f"),
    ("normalised_score", "norm. score", ".3f"),
]
TIMING_HEADING = "decisions/s\n(median)"


def _si(v: float) -> str:
    for div, suf in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:.2f}{suf}"
    return f"{v:.0f}"


def format_mean_ci(stat: dict | None, fmt: str) -> str:
    """``"0.8123 ± 0.0041"``; ``"–"`` when undefined; no ``±`` part with a single seed.

    Examples
    --------
    >>> format_mean_ci({"mean": 0.81234, "ci95": 0.0041, "n": 5}, ".3f")
    '0.812 ± 0.004'
    >>> format_mean_ci({"mean": 2_500_000.0, "ci95": None, "n": 1}, "si")
    '2.50 M'
    >>> format_mean_ci({"mean": 1.2345678e9, "ci95": 3.0e7, "n": 5}, ".0f")
    '1.235e+09 ± 3e+07'
    """
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "–"
    m, h = stat["mean"], stat.get("ci95")
    text = _number(m, fmt)
    if text.startswith("-") and text.strip("-0.") == "":  # -0.000: a tiny negative rounded to zero
        text = text[1:]
    if h is not None and math.isfinite(h):
        text += " ± " + _number(h, fmt)
    return text


def _number(v: float, fmt: str) -> str:
    """``v`` in ``fmt``; beyond 10^7 in 4 significant digits (``1.235e+09``) so that a column stays narrow."""
    if fmt == "si":
        return _si(v)
    return f"{v:.4g}" if abs(v) >= 1e7 else format(v, fmt)


def format_median(stat: dict | None) -> str:
    """The median of a timing statistic with an SI suffix (``"1.19 M"``); ``"–"`` when undefined.

    Falls back to the mean for summaries written before medians were recorded.

    Examples
    --------
    >>> format_median({"mean": 735_810.0, "ci95": 1.1e6, "n": 3, "median": 1_190_000.0})
    '1.19 M'
    """
    if not stat:
        return "–"
    v = stat.get("median", stat.get("mean"))
    if v is None or not math.isfinite(v):
        return "–"
    return _si(v)


def report_columns(rows: dict) -> list[tuple[str, list[str]]]:
    """``(heading, cells)`` of every numeric column of a scenario's rows, in table order."""
    cols = [("seeds", [str(len(r["seeds"])) for r in rows.values()])]
    for key, head, fmt in COLUMNS:
        cols.append((head, [format_mean_ci(r["metrics"].get(key), fmt) for r in rows.values()]))
    cols.append((TIMING_HEADING, [format_median(r["timing"].get("decisions_per_s")) for r in rows.values()]))
    return cols


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.split("\n")), default=0)


def _pack(widths: list[int], first: int, room: int) -> list[list[int]]:
    """Indices of the columns of each table: greedy, in order, ``first`` cells of fixed columns per table.

    A table of columns with widths ``w`` is ``1 + sum(w + 3)`` cells wide (one border, two padding
    cells and one separator per column); every table holds at least one column.
    """
    def greedy(limit: int) -> list[list[int]]:
        groups: list[list[int]] = []
        used = 0
        for i, w in enumerate(widths):
            if groups and used + w + 3 <= limit:
                groups[-1].append(i)
                used += w + 3
            else:
                groups.append([i])
                used = first + w + 3
        return groups

    best = greedy(room)
    # balance: the narrowest limit that needs no more tables (so the last table is not a stub)
    lo, hi = first + max(widths, default=0) + 3, room
    while lo < hi:
        mid = (lo + hi) // 2
        if len(greedy(mid)) <= len(best):
            hi = mid
        else:
            lo = mid + 1
    return greedy(hi) if hi <= room else best


def summary_tables(summary: dict, width: int | None = None) -> list:
    """``rich.table.Table`` objects of ``summary`` (see :func:`~idnbandit.bench.summarize`).

    Parameters
    ----------
    summary
        The benchmark summary.
    width
        Console width the tables must fit (None: one table per scenario with every column). Columns
        are never squeezed: those that do not fit go to a continuation table that repeats the agent
        column; agent labels wrap when they are wider than a third of ``width``.
    """
    from rich.table import Table
    from rich.text import Text

    cfg = summary["config"]
    tables = []
    caption = ("regrets are cumulative over the run; norm. score: 0 = worse and 1 = better of the all-local / "
               "all-cloud anchors; decisions/s: median over seeds")
    for scen, rows in summary["scenarios"].items():
        cols = report_columns(rows)
        widths = [max(_cell_width(h), *(map(_cell_width, cells)), 1) for h, cells in cols]
        labels = list(rows)
        agent_w = max([_cell_width("agent"), *map(_cell_width, labels)])
        if width is None:
            groups = [list(range(len(cols)))]
        else:
            agent_w = min(agent_w, max(12, width // 3))
            groups = _pack(widths, 1 + agent_w + 3, width)
        title = f"{scen}: {cfg['steps']} requests per run, mean ± 95% CI over seeds"
        for g, idx in enumerate(groups):
            last = g == len(groups) - 1
            t = Table(title=title if g == 0 else f"{scen} (continued, {g + 1}/{len(groups)})",
                      caption=caption if last else None, title_justify="left", caption_justify="left")
            t.add_column("agent", overflow="fold", max_width=agent_w, min_width=min(agent_w, 12))
            for i in idx:
                t.add_column(cols[i][0], justify="right", no_wrap=True, min_width=widths[i])
            # the narrowest rendering that cuts nothing (wider than ``width`` only on a very narrow console)
            t.needed_width = 1 + min(agent_w, 12) + 3 + sum(widths[i] + 3 for i in idx)
            for r, label in enumerate(labels):
                t.add_row(Text(label), *(cols[i][1][r] for i in idx))  # a label is not markup
            tables.append(t)
    return tables


def _console_width() -> int:
    try:
        cols = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        cols = 0
    return cols if cols > 0 else 220


def _stdout_console(**kwargs):
    """A Rich console on stdout that lets a closed pipe raise ``BrokenPipeError`` (Rich's default is
    ``SystemExit(1)``), so that :func:`idnbandit.cli.main` handles it as for every command."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "Broken pipe")

    return _Console(**kwargs)


def print_report(summary: dict, console=None) -> None:
    """Print the tables to ``console``, fitted to its width.

    The default console is stdout: the terminal's width, or ``$COLUMNS`` (else 220 columns) when
    stdout is not a terminal.
    """
    if console is None:
        console = _stdout_console()
        if not console.is_terminal:
            console = _stdout_console(width=_console_width())
    width = console.width
    try:
        for t in summary_tables(summary, width=width):
            # below ~45 columns the agent column and one number column may not fit: print wider and let
            # the terminal wrap the lines rather than cut the numbers (Rich caps print(width=) at the
            # console's width, hence the temporary width)
            console.width = max(width, t.needed_width)
            console.print(t, crop=False)
    finally:
        console.width = width


def report_text(summary: dict) -> str:
    """The full report (one table per scenario, every column) as plain text."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=FULL_WIDTH, color_system=None, force_terminal=False, legacy_windows=False)
    for t in summary_tables(summary):
        console.print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def write_report(summary: dict, folder: str | os.PathLike) -> Path:
    """Write :func:`report_text` to ``folder/report.txt`` (atomically); returns the path."""
    from .store import atomic_write_text

    path = Path(folder) / REPORT_FILE
    atomic_write_text(path, report_text(summary))
    return path
