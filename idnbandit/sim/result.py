"""What one simulation run returns: :class:`RunResult` (true outcomes, never the agent's feedback)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["RunResult"]


@dataclass(frozen=True, eq=False)
class RunResult:
    """Streaming metrics of one run of ``steps`` requests (bounded memory whatever ``steps`` is).

    Scalar fields are means over all requests unless stated. Curves are sampled at ``curve_t``
    (request counts, increasing, last = steps). Latencies in milliseconds.
    """

    scenario: str
    agent: str
    seed: int
    steps: int
    mean_reward: float
    accuracy: float  # fraction of requests answered correctly (late answers count as failed if a deadline is set)
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    deadline_violation_rate: float  # fraction answered after the deadline (0 when no deadline)
    timeout_rate: float  # fraction that timed out (unreachable node)
    forward_rate: float  # fraction not served by the origin's own node
    forward_rate_by_tier: dict[str, float]  # fraction served at each tier
    mean_cost: float
    option_rates: np.ndarray  # (K,) fraction of requests sent to each option
    fixed_option_mean_reward: np.ndarray  # (K,) mean counterfactual reward of always choosing option k
    oracle_mean_reward: float  # mean of the per-request best counterfactual reward
    regret_oracle: float  # cumulative: sum of (best counterfactual reward - obtained reward)
    regret_best_fixed: float  # cumulative, against the best fixed option in hindsight (may be negative)
    curve_t: np.ndarray  # (P,) int64
    curve_regret_oracle: np.ndarray  # (P,) cumulative regret vs the oracle at curve_t
    curve_regret_best_fixed: np.ndarray  # (P,) cumulative regret vs the (final) best fixed option
    latency_hist_edges_ms: np.ndarray  # (B+1,) log-spaced bin edges of the latency histogram
    latency_hist_counts: np.ndarray  # (B,) int64 counts (for CDF plots)
    wall_time_s: float
    decisions_per_s: float
    extra: dict = field(default_factory=dict)
    # per-request records (``simulate(..., record_requests=True)``): named columns sorted by request number
    requests: dict | None = field(default=None, repr=False)

    def to_dict(self, curves: bool = True) -> dict:
        """JSON-friendly dict (arrays → lists); ``curves=False`` drops the arrays."""
        d = asdict(self)
        req = d.pop("requests")
        if req is not None and curves:
            d["requests"] = {k: v.tolist() for k, v in req.items()}
        for k, v in list(d.items()):
            if isinstance(v, np.ndarray):
                if curves:
                    d[k] = v.tolist()
                else:
                    del d[k]
        return d

    def same_trajectory(self, other: RunResult) -> bool:
        """True when every metric except wall-clock timings is identical (bit for bit)."""
        a, b = self.to_dict(), other.to_dict()
        for k in ("wall_time_s", "decisions_per_s"):
            a.pop(k), b.pop(k)
        return a == b
