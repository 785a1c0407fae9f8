"""The terminal report of a benchmark: one Rich table per scenario, mean ± 95 % CI half-width."""

from __future__ import annotations

import math

__all__ = ["format_mean_ci", "summary_tables", "print_report"]

# metric key -> (heading, format of mean and half-width)
COLUMNS: list[tuple[str, str, str]] = [
    ("mean_reward", "reward", ".4f"),
    ("accuracy", "accuracy", ".4f"),
    ("latency_mean_ms", "lat. mean ms", ".1f"),
    ("latency_p95_ms", "lat. p95 ms", ".1f"),
    ("forward_rate", "forward", ".3f"),
    ("mean_cost", "cost", ".3f"),
    ("regret_oracle", "regret vs oracle", ".0f"),
    ("regret_best_fixed", "regret vs best fixed", ".0f"),
    ("normalised_score", "norm. score", ".3f"),
]


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
    """
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "–"
    m, h = stat["mean"], stat.get("ci95")
    text = _si(m) if fmt == "si" else format(m, fmt)
    if h is not None and math.isfinite(h):
        text += " ± " + (_si(h) if fmt == "si" else format(h, fmt))
    return text


def summary_tables(summary: dict) -> list:
    """One ``rich.table.Table`` per scenario of ``summary`` (see :func:`~idnbandit.bench.summarize`)."""
    from rich.table import Table

    cfg = summary["config"]
    tables = []
    for scen, rows in summary["scenarios"].items():
        t = Table(title=f"{scen}: {cfg['steps']} requests per run, mean ± 95% CI over seeds",
                  caption="regrets are cumulative over the run; norm. score: 0 = worse and 1 = better of the "
                          "all-local / all-cloud anchors", title_justify="left", caption_justify="left")
        t.add_column("agent", no_wrap=True)
        t.add_column("seeds", justify="right")
        for _, head, _ in COLUMNS:
            t.add_column(head, justify="right")
        t.add_column("decisions/s", justify="right")
        for label, row in rows.items():
            cells = [format_mean_ci(row["metrics"].get(k), f) for k, _, f in COLUMNS]
            t.add_row(label, str(len(row["seeds"])), *cells, format_mean_ci(row["timing"].get("decisions_per_s"), "si"))
        tables.append(t)
    return tables


def print_report(summary: dict, console=None) -> None:
    """Print the tables to ``console`` (default: stdout, at least 200 columns wide when not a terminal)."""
    from rich.console import Console

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=220)
    for t in summary_tables(summary):
        console.print(t)
