"""Cell records and the per scenario × agent summary (mean ± 95 % CI over seeds).

Normalised score (APGR-style)
-----------------------------
Each cell's result carries the counterfactual mean reward of every fixed option, measured on the
same requests and queue states the agent saw (``RunResult.fixed_option_mean_reward``). The two
*anchors* are option 0 (serve every request with the origin's own model, "all-local") and option
K-1 (forward everything to the farthest model, "all-cloud"). With ``lo``/``hi`` the smaller/larger
anchor reward, the score of a cell with mean reward ``R`` is::

    score = (R - lo) / (hi - lo)

i.e. ``(R - R_local) / (R_cloud - R_local)`` in the usual case where the cloud anchor is the better
one: 0 means "as good as the worse anchor", 1 "as good as the better anchor", above 1 beats both
(a learner that mixes well can), below 0 is worse than both. Taking the anchors in order keeps the
score increasing in ``R`` when forwarding does not pay (``R_cloud < R_local``). When the anchors
are within ``1e-9 · max(1, |lo|, |hi|)`` of each other the score is undefined (NaN, shown as "–")
and left out of the mean. It is a point version of RouteLLM's APGR (performance gap recovered,
Ong et al. 2024), for rewards instead of quality.
"""

from __future__ import annotations

import math
import statistics

from .plan import BenchPlan, Cell
from .stats import mean_ci

__all__ = ["normalised_score", "make_record", "summarize", "METRICS", "TIMING"]

SUMMARY_FORMAT = "idnbandit-bench-summary"

# (key in the record / result, short heading used by the terminal table)
METRICS: list[tuple[str, str]] = [
    ("mean_reward", "reward"),
    ("accuracy", "accuracy"),
    ("latency_mean_ms", "lat. mean ms"),
    ("latency_p95_ms", "lat. p95 ms"),
    ("forward_rate", "forward"),
    ("mean_cost", "cost"),
    ("regret_oracle", "regret oracle"),
    ("regret_best_fixed", "regret best-fixed"),
    ("normalised_score", "norm. score"),
    ("latency_p99_ms", "lat. p99 ms"),
    ("deadline_violation_rate", "late"),
    ("timeout_rate", "timeout"),
    ("oracle_mean_reward", "oracle reward"),
    ("anchor_local_reward", "all-local reward"),
    ("anchor_cloud_reward", "all-cloud reward"),
]
TIMING: list[tuple[str, str]] = [("decisions_per_s", "decisions/s"), ("wall_time_s", "wall s")]


def normalised_score(reward: float, local: float, cloud: float, rel_eps: float = 1e-9) -> float:
    """``(reward - lo) / (hi - lo)`` with ``lo, hi`` the smaller and larger anchor (see module doc).

    Examples
    --------
    >>> normalised_score(0.75, local=0.5, cloud=1.0)
    0.5
    >>> normalised_score(0.75, local=1.0, cloud=0.5)  # anchors taken in order
    0.5
    >>> math.isnan(normalised_score(0.3, 0.5, 0.5))
    True
    """
    lo, hi = min(local, cloud), max(local, cloud)
    if not all(map(math.isfinite, (reward, lo, hi))) or hi - lo <= rel_eps * max(1.0, abs(lo), abs(hi)):
        return float("nan")
    return (reward - lo) / (hi - lo)


def make_record(cell: Cell, result) -> dict:
    """The JSON record of a finished cell: the cell's identity, the anchors and score, the full result.

    The result is ``RunResult.to_dict()`` except that the latency histogram is stored sparsely as
    ``latency_hist = {"lower_ms": [...], "upper_ms": [...], "counts": [...]}`` (non-empty bins only).
    """
    fixed = [float(v) for v in result.fixed_option_mean_reward]
    local, cloud = fixed[0], fixed[-1]
    return {
        "cell_id": cell.cell_id,
        "scenario": cell.scenario,
        "agent": cell.agent,
        "spec": cell.spec,
        "seed": cell.seed,
        "agent_seed": cell.agent_seed,
        "steps": cell.steps,
        "anchor_local_reward": local,
        "anchor_cloud_reward": cloud,
        "normalised_score": normalised_score(float(result.mean_reward), local, cloud),
        "result": _compact(result.to_dict(curves=True)),
    }


def _compact(d: dict) -> dict:
    """Replace the dense latency histogram (thousands of mostly empty bins) by its non-empty bins."""
    edges = d.pop("latency_hist_edges_ms")
    counts = d.pop("latency_hist_counts")
    nz = [i for i, c in enumerate(counts) if c]
    d["latency_hist"] = {"lower_ms": [edges[i] for i in nz], "upper_ms": [edges[i + 1] for i in nz],
                         "counts": [counts[i] for i in nz]}
    return d


def _value(rec: dict, key: str):
    v = rec.get(key, rec["result"].get(key))
    return float("nan") if v is None else float(v)


def _timing_stat(values: list[float]) -> dict:
    """Mean ± 95 % CI (as for the metrics) plus the median, min and max of the finite values.

    Wall-clock figures are skewed (a cell that loads compiled kernels, or shares its core with
    another process, is slow): the terminal table reports the median, which one slow cell cannot
    move much, while a CI over seeds can then be wider than the mean itself.
    """
    finite = sorted(v for v in values if math.isfinite(v))
    stat = mean_ci(finite)._asdict()
    nan = float("nan")
    stat.update(median=float(statistics.median(finite)) if finite else nan, min=finite[0] if finite else nan,
                max=finite[-1] if finite else nan)
    return stat


def summarize(plan: BenchPlan, records: dict[str, dict]) -> dict:
    """Mean, 95 % CI half-width and n over seeds of every metric, per scenario × agent.

    Only finished cells count; seeds are taken in plan order so the numbers do not depend on the
    order in which cells finished. Timing figures are kept apart (``"timing"``) because they are the
    only ones that differ between two runs of the same configuration; besides mean, ci95 and n they
    have ``median``, ``min`` and ``max`` (the table shows the median decisions/s).
    """
    out: dict = {"format": SUMMARY_FORMAT, "config": plan.identity(), "n_cells": len(plan.cells),
                 "n_finished": len(records), "scenarios": {}}
    for s in plan.scenarios:
        rows = {}
        for a in plan.agents:
            recs = [r for r in (records.get(c.cell_id) for c in plan.cells if c.scenario == s.name
                                and c.agent == a.label) if r is not None]
            recs.sort(key=lambda r: plan.seeds.index(r["seed"]))
            if not recs:
                continue
            metrics = {k: mean_ci([_value(r, k) for r in recs])._asdict() for k, _ in METRICS}
            tiers = sorted({t for r in recs for t in r["result"].get("forward_rate_by_tier", {})})
            for t in tiers:
                metrics[f"served_at_{t}"] = mean_ci(
                    [r["result"]["forward_rate_by_tier"].get(t, 0.0) for r in recs])._asdict()
            timing = {k: _timing_stat([_value(r, k) for r in recs]) for k, _ in TIMING}
            rows[a.label] = {"spec": a.spec, "seeds": [r["seed"] for r in recs], "metrics": metrics,
                             "timing": timing}
        out["scenarios"][s.name] = rows
    return out
