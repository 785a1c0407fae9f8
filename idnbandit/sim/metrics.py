"""Streaming metrics with bounded memory, and the bounded ring buffer of delayed feedback.

Latency quantiles come from a fixed histogram with log-spaced bins (ratio ``HIST_RATIO`` = 1.01
between consecutive edges, from 1 µs to 10^7 ms): a quantile is reported as the geometric centre of
its bin, so its relative error is at most ``sqrt(1.01) - 1`` ≈ 0.5 %.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .compiled import NODE_TIER, OPT_LOCAL, P_DELAY_REQUESTS, P_DELAY_S
from .kernels import (
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

__all__ = ["Metrics", "Ring", "new_metrics", "new_ring", "hist_edges_ms", "quantile_ms", "curve_points_of"]

HIST_LO_MS = 1e-3
HIST_RATIO = 1.01
HIST_BINS = int(math.ceil(math.log(1e7 / HIST_LO_MS) / math.log(HIST_RATIO)))
_LOG_LO = math.log(HIST_LO_MS)
_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)

# indices into Metrics.sums
S_REWARD, S_CORRECT, S_LATENCY, S_NET, S_QUEUE, S_COMPUTE, S_COST, S_LATE, S_TIMEOUT, S_FORWARD, \
    S_ORACLE, S_COUNT = range(12)


class Metrics(NamedTuple):
    sums: np.ndarray  # (12,) float64 running sums (S_* indices)
    opt_count: np.ndarray  # (K,) int64
    tier_count: np.ndarray  # (4,) int64 requests served (or sent) per tier
    cf_sum: np.ndarray  # (K,) float64 sum of counterfactual rewards of each option
    hist: np.ndarray  # (HIST_BINS,) int64 latency histogram
    curve_t: np.ndarray  # (P,) int64 request counts at which curves are sampled
    curve_reward: np.ndarray  # (P,) cumulative obtained reward
    curve_oracle: np.ndarray  # (P,) cumulative oracle reward
    curve_cf: np.ndarray  # (P, K) cumulative counterfactual reward of each option
    ptr: np.ndarray  # (1,) int64 next curve point


class Ring(NamedTuple):
    """Pending feedback, oldest at ``meta[0]``; ``meta = [head, count, forced deliveries]``."""

    x: np.ndarray  # (cap, Fx) contexts the decisions were made on
    a: np.ndarray  # (cap,) int64
    r: np.ndarray  # (cap,) float64
    rs: np.ndarray  # (cap, K) float64
    idx: np.ndarray  # (cap,) int64 decision index
    t: np.ndarray  # (cap,) float64 decision time
    meta: np.ndarray  # (3,) int64


def curve_points_of(steps: int, points: int) -> np.ndarray:
    """Up to ``points`` increasing request counts in [1, steps], the last being ``steps``."""
    pts = np.unique(np.round(np.linspace(steps / points, steps, points)).astype(np.int64))
    return pts[pts >= 1]


def new_metrics(k: int, steps: int, points: int) -> Metrics:
    ct = curve_points_of(steps, points)
    p = ct.shape[0]
    return Metrics(np.zeros(12), np.zeros(k, np.int64), np.zeros(4, np.int64), np.zeros(k),
                   np.zeros(HIST_BINS, np.int64), ct, np.zeros(p), np.zeros(p), np.zeros((p, k)),
                   np.zeros(1, np.int64))


def new_ring(fx: int, k: int, capacity: int) -> Ring:
    cap = max(int(capacity), 1)
    return Ring(np.zeros((cap, fx)), np.zeros(cap, np.int64), np.zeros(cap), np.zeros((cap, k)),
                np.zeros(cap, np.int64), np.zeros(cap), np.zeros(3, np.int64))


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
            ptr, cf, cf_out, o, a, g):
    """Add the true outcome (last row of ``cf_out``) of decision ``g`` (0-based) and its counterfactuals ``cf``."""
    ch = cf_out.shape[0] - 1
    sums[S_REWARD] += cf_out[ch, OUT_REWARD]
    sums[S_CORRECT] += cf_out[ch, OUT_CORRECT]
    sums[S_LATENCY] += cf_out[ch, OUT_LATENCY]
    sums[S_NET] += cf_out[ch, OUT_NET]
    sums[S_QUEUE] += cf_out[ch, OUT_QUEUE]
    sums[S_COMPUTE] += cf_out[ch, OUT_COMPUTE]
    sums[S_COST] += cf_out[ch, OUT_COST]
    sums[S_LATE] += cf_out[ch, OUT_LATE]
    sums[S_TIMEOUT] += cf_out[ch, OUT_TIMEOUT]
    if opt_i[o, a, OPT_LOCAL] == 0:
        sums[S_FORWARD] += 1.0
    best = cf[0]
    for k in range(cf.shape[0]):
        cf_sum[k] += cf[k]
        if cf[k] > best:
            best = cf[k]
    sums[S_ORACLE] += best
    sums[S_COUNT] += 1.0
    opt_count[a] += 1
    tier_count[node_i[int(cf_out[ch, OUT_NODE]), NODE_TIER]] += 1
    lat_ms = cf_out[ch, OUT_LATENCY] * 1e3
    b = 0
    if lat_ms > HIST_LO_MS:
        b = int((np.log(lat_ms) - _LOG_LO) * _INV_LOG_RATIO)
        if b >= HIST_BINS:
            b = HIST_BINS - 1
    hist[b] += 1
    p = ptr[0]
    if p < curve_t.shape[0] and g + 1 == curve_t[p]:
        curve_reward[p] = sums[S_REWARD]
        curve_oracle[p] = sums[S_ORACLE]
        for k in range(cf.shape[0]):
            curve_cf[p, k] = cf_sum[k]
        ptr[0] = p + 1


@njit(cache=True, error_model="numpy")
def record(c, met, sc, o, a, g):
    """:func:`record_` on the named tuples."""
    record_(c.node_i, c.opt_i, met.sums, met.opt_count, met.tier_count, met.cf_sum, met.hist, met.curve_t,
            met.curve_reward, met.curve_oracle, met.curve_cf, met.ptr, sc.cf, sc.cf_out, o, a, g)


@njit(cache=True, error_model="numpy", inline="always")
def ring_push_(rx, ra, rr, rrs, ridx, rt, meta, x, a, r, rs, g, t):
    """Append one decision's feedback (the ring must not be full)."""
    cap = ra.shape[0]
    j = (meta[0] + meta[1]) % cap
    for i in range(x.shape[0]):
        rx[j, i] = x[i]
    ra[j] = a
    rr[j] = r
    for i in range(rs.shape[0]):
        rrs[j, i] = rs[i]
    ridx[j] = g
    rt[j] = t
    meta[1] += 1


@njit(cache=True, error_model="numpy", inline="always")
def ring_pop_(meta, cap):
    """Remove the oldest entry; return its slot (valid until the next push)."""
    j = meta[0]
    meta[0] = (j + 1) % cap
    meta[1] -= 1
    return j


@njit(cache=True, error_model="numpy", inline="always")
def ring_due(par, ridx, rt, meta, g, t):
    """True when the oldest pending feedback is due after decision ``g`` at time ``t``."""
    if meta[1] == 0:
        return False
    j = meta[0]
    if par[P_DELAY_S] > 0.0:
        return rt[j] + par[P_DELAY_S] <= t
    return ridx[j] + par[P_DELAY_REQUESTS] <= g
