"""PNG plots of a benchmark (``idnbandit bench --plots``; needs matplotlib, the ``plot`` extra).

Per scenario, in ``out/plots/``:

* ``<scenario>-regret.png``: cumulative regret vs the oracle against requests, mean over seeds with
  a 95 % Student-t band;
* ``<scenario>-accuracy-latency.png``: accuracy against mean latency, one point per agent with
  95 % CI error bars on both axes (up and to the left is better);
* ``<scenario>-latency-cdf.png``: the latency CDF of each agent from its histograms summed over seeds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import atomic_open
from ..errors import require
from .plan import BenchPlan
from .specs import safe_name
from .stats import t_quantile

__all__ = ["write_plots"]


def _by_agent(plan: BenchPlan, records: dict[str, dict], scenario: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in plan.agents:
        recs = [records[c.cell_id] for c in plan.cells
                if c.scenario == scenario and c.agent == a.label and c.cell_id in records]
        if recs:
            out[a.label] = sorted(recs, key=lambda r: plan.seeds.index(r["seed"]))
    return out


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the 95 % t half-width (zeros with one seed)."""
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, np.zeros_like(mean)
    return mean, t_quantile(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)


def _regret(ax, groups: dict[str, list[dict]]) -> None:
    for label, recs in groups.items():
        t = np.asarray(recs[0]["result"]["curve_t"], dtype=float)
        ys = np.array([r["result"]["curve_regret_oracle"] for r in recs], dtype=float)
        mean, half = _band(ys)
        (line,) = ax.plot(t, mean, label=label, lw=1.6)
        ax.fill_between(t, mean - half, mean + half, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("requests")
    ax.set_ylabel("cumulative regret vs oracle")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _scalar(recs: list[dict], key: str) -> tuple[float, float]:
    v = np.array([r["result"][key] for r in recs], dtype=float)
    m, h = _band(v[:, None])
    return float(m[0]), float(h[0])


def _pareto(ax, groups: dict[str, list[dict]]) -> None:
    for label, recs in groups.items():
        x, xe = _scalar(recs, "latency_mean_ms")
        y, ye = _scalar(recs, "accuracy")
        ax.errorbar([x], [y], xerr=[xe], yerr=[ye], fmt="o", capsize=3, label=label)
    ax.set_xlabel("mean latency (ms)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _cdf(ax, groups: dict[str, list[dict]]) -> None:
    for label, recs in groups.items():
        bins: dict[tuple[float, float], float] = {}
        for r in recs:
            h = r["result"]["latency_hist"]
            for lo, hi, c in zip(h["lower_ms"], h["upper_ms"], h["counts"]):
                bins[(lo, hi)] = bins.get((lo, hi), 0.0) + c
        if not bins:
            continue
        keys = sorted(bins)
        counts = np.array([bins[k] for k in keys])
        cdf = np.cumsum(counts) / counts.sum()
        x = np.array([keys[0][0]] + [k[1] for k in keys])
        ax.step(x, np.concatenate([[0.0], cdf]), where="post", label=label, lw=1.4)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")


def write_plots(plan: BenchPlan, records: dict[str, dict], folder: str | os.PathLike) -> list[Path]:
    """Write the three PNGs of every scenario into ``folder``; returns the paths written.

    Raises
    ------
    DependencyNotInstalled
        If matplotlib is missing (``pip install 'idnbandit[plot]'``).
    """
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    steps = plan.steps
    for s in plan.scenarios:
        groups = _by_agent(plan, records, s.name)
        if not groups:
            continue
        for suffix, draw, title in (
            ("regret", _regret, "cumulative regret vs the oracle (mean, 95% CI band)"),
            ("accuracy-latency", _pareto, "accuracy vs mean latency (95% CI)"),
            ("latency-cdf", _cdf, "latency CDF (all seeds)"),
        ):
            fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
            draw(ax, groups)
            n = max(len(v) for v in groups.values())
            ax.set_title(f"{s.name}: {title}\n{n} seeds × {steps} requests", fontsize=10)
            fig.tight_layout()
            path = folder / f"{safe_name(s.name)}-{suffix}.png"
            with atomic_open(path, "wb") as fh:
                fig.savefig(fh, format="png")
            plt.close(fig)
            written.append(path)
    return written
