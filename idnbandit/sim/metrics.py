"""Streaming metrics with bounded memory.

Latency quantiles come from a fixed histogram with log-spaced bins (ratio ``HIST_RATIO`` = 1.01
between consecutive edges, from 1 µs to 10^7 ms): a quantile is reported as the geometric centre of
its bin, so its relative error is at most ``sqrt(1.01) - 1`` ≈ 0.5 %.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .compiled import NODE_TIER, OPT_LOCAL
from .stages import (
    OUT_COMPUTE,
    OUT_CORRECT,
    OUT_COST,
    OUT_LATE,
    OUT_LATENCY,
    OUT_NET,
    OUT_NODE,
    OUT_QUEUE,
    OUT_REWARD,
    OUT_TIMEOUT,
)

__all__ = ["hist_edges_ms", "quantile_ms", "curve_points_of", "HIST_BINS", "N_SUMS"]

HIST_LO_MS = 1e-3
HIST_RATIO = 1.01
HIST_BINS = int(math.ceil(math.log(1e7 / HIST_LO_MS) / math.log(HIST_RATIO)))
_LOG_LO = math.log(HIST_LO_MS)
_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)

# indices into the sums array of a run
S_REWARD, S_CORRECT, S_LATENCY, S_NET, S_QUEUE, S_COMPUTE, S_COST, S_LATE, S_TIMEOUT, S_FORWARD, \
    S_ORACLE, S_COUNT, S_CHOSEN_ESTIMATE = range(13)
N_SUMS = 13


def curve_points_of(steps: int, points: int) -> np.ndarray:
    """Up to ``points`` increasing request counts in [1, steps], the last being ``steps``."""
    pts = np.unique(np.round(np.linspace(steps / points, steps, points)).astype(np.int64))
    return pts[pts >= 1]


def hist_edges_ms() -> np.ndarray:
    """(HIST_BINS + 1,) bin edges in ms; bin 0 also holds smaller values, the last bin larger ones."""
    return HIST_LO_MS * HIST_RATIO ** np.arange(HIST_BINS + 1, dtype=np.float64)


def quantile_ms(hist: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a latency histogram (geometric centre of its bin), NaN when empty."""
    n = int(hist.sum())
    if n == 0:
        return float("nan")
    b = int(np.searchsorted(np.cumsum(hist), max(1, math.ceil(q * n))))
    edges = hist_edges_ms()
    return float(math.sqrt(edges[b] * edges[b + 1]))


@njit(cache=True, error_model="numpy", inline="always")
def record_(node_i, opt_i, sums, opt_count, tier_count, cf_sum, hist, curve_t, curve_reward, curve_oracle, curve_cf,
            ptr, ptr_i, cf, out, o, a):
    """Add one finalised request: its true outcome ``out`` (a row, option ``a`` of origin ``o``) and its
    decision-time estimates ``cf``. Curves are sampled by the number of finalised requests
    (``ptr[ptr_i]`` is the next curve point)."""
    sums[S_REWARD] += out[OUT_REWARD]
    sums[S_CORRECT] += out[OUT_CORRECT]
    sums[S_LATENCY] += out[OUT_LATENCY]
    sums[S_NET] += out[OUT_NET]
    sums[S_QUEUE] += out[OUT_QUEUE]
    sums[S_COMPUTE] += out[OUT_COMPUTE]
    sums[S_COST] += out[OUT_COST]
    sums[S_LATE] += out[OUT_LATE]
    sums[S_TIMEOUT] += out[OUT_TIMEOUT]
    if opt_i[o, a, OPT_LOCAL] == 0:
        sums[S_FORWARD] += 1.0
    best = cf[0]
    for k in range(cf.shape[0]):
        cf_sum[k] += cf[k]
        if cf[k] > best:
            best = cf[k]
    sums[S_ORACLE] += best
    sums[S_CHOSEN_ESTIMATE] += cf[a]
    sums[S_COUNT] += 1.0
    opt_count[a] += 1
    tier_count[node_i[int(out[OUT_NODE]), NODE_TIER]] += 1
    lat_ms = out[OUT_LATENCY] * 1e3
    b = 0
    if lat_ms > HIST_LO_MS:
        b = int((np.log(lat_ms) - _LOG_LO) * _INV_LOG_RATIO)
        if b >= HIST_BINS:
            b = HIST_BINS - 1
    hist[b] += 1
    p = ptr[ptr_i]
    if p < curve_t.shape[0] and sums[S_COUNT] == curve_t[p]:
        curve_reward[p] = sums[S_REWARD]
        curve_oracle[p] = sums[S_ORACLE]
        for k in range(cf.shape[0]):
            curve_cf[p, k] = cf_sum[k]
        ptr[ptr_i] = p + 1
