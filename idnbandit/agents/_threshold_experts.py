"""The threshold-expert helpers shared by HIL-F / HIL-N (:mod:`.hil`) and Hedge-HI (:mod:`.hedge_hi`).

Experts are confidence thresholds θ kept as sorted breakpoints ``bp`` (0 = b_0 < … < b_n = 1) with
one cumulative loss ``L_k`` per interval (b_k, b_{k+1}] (the representation is described in
:mod:`.hil`). Pure numba helpers, no state of their own.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["accept_mass", "add_losses_", "insert_or_snap_", "locate"]


@njit(cache=True)
def accept_mass(bp, L, n, p, eta, length_weighted):
    """(A, W): weight of the experts that accept ``p`` and total weight.

    Interval k stands for the thresholds θ ∈ (b_k, b_{k+1}] (``length_weighted``: weight
    w_k·|I_k|, HIL) or for the single threshold θ = b_{k+1} (weight w_k, Hedge-HI).
    """
    lmin = L[0]
    for k in range(1, n):
        if L[k] < lmin:
            lmin = L[k]
    a = 0.0
    w_sum = 0.0
    for k in range(n):
        w = math.exp(-eta * (L[k] - lmin))
        lo = bp[k]
        hi = bp[k + 1]
        if length_weighted:
            w_sum += w * (hi - lo)
            if hi <= p:
                a += w * (hi - lo)
            elif lo < p:
                a += w * (p - lo)
        else:
            w_sum += w
            if hi <= p:
                a += w
    return a, w_sum


@njit(cache=True)
def locate(bp, n, p):
    """Index k of the interval with b_k <= p < b_{k+1} (k = n - 1 for p = 1)."""
    lo, hi = 0, n  # invariant: bp[lo] <= p, answer in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bp[mid] <= p:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def insert_or_snap_(bp, L, n, p, capacity):
    """Make ``p`` a breakpoint (split its interval, both halves keep L) or snap it when full.

    Returns (new n, index j of the breakpoint equal to the effective p): intervals k < j accept p.
    """
    if p <= 0.0:
        return n, 0
    if p >= 1.0:
        return n, n
    k = locate(bp, n, p)
    if bp[k] == p:
        return n, k
    if n - 1 < capacity:
        for i in range(n, k, -1):
            bp[i + 1] = bp[i]
            L[i] = L[i - 1]
        bp[k + 1] = p
        return n + 1, k + 1
    if p - bp[k] <= bp[k + 1] - p:
        return n, k
    return n, k + 1


@njit(cache=True)
def add_losses_(L, n, j, accept_loss, forward_loss):
    for k in range(j):
        L[k] += accept_loss
    for k in range(j, n):
        L[k] += forward_loss

