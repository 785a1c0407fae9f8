"""The event heap of the core: a binary min-heap on ``(time, key)`` in three arrays (numba, inline).

``ht`` (float64 times), ``hk`` (int64 keys breaking ties in time: background arrivals first, then
requests by number and stage, :mod:`idnbandit.sim.state`), ``hj`` (int64 items: a job id, or
``-1 - slot`` for a background node's next arrival). Capacity is checked by the caller.
"""

from __future__ import annotations

from numba import njit

__all__ = ["heap_less", "heap_push_", "heap_pop_"]


@njit(cache=True, error_model="numpy", inline="always")
def heap_less(t1, k1, t2, k2):
    """``(t1, k1) < (t2, k2)``."""
    return t1 < t2 or (t1 == t2 and k1 < k2)


@njit(cache=True, error_model="numpy", inline="always")
def heap_push_(ht, hk, hj, n, t, k, j):
    """Insert ``(t, k, j)`` into the heap of size ``n``; returns the new size (capacity checked by the caller)."""
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if heap_less(t, k, ht[p], hk[p]):
            ht[i] = ht[p]
            hk[i] = hk[p]
            hj[i] = hj[p]
            i = p
        else:
            break
    ht[i] = t
    hk[i] = k
    hj[i] = j
    return n + 1


@njit(cache=True, error_model="numpy", inline="always")
def heap_pop_(ht, hk, hj, n):
    """Remove the top of the heap of size ``n`` (read it first); returns the new size."""
    n -= 1
    t = ht[n]
    k = hk[n]
    j = hj[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and heap_less(ht[c + 1], hk[c + 1], ht[c], hk[c]):
            c += 1
        if heap_less(ht[c], hk[c], t, k):
            ht[i] = ht[c]
            hk[i] = hk[c]
            hj[i] = hj[c]
            i = c
        else:
            break
    ht[i] = t
    hk[i] = k
    hj[i] = j
    return n
