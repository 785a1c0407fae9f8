"""The Poisson bootstrap as one compiled pass: counts drawn from a hash of (seed, request, resample).

Each row's count in resample b is a Poisson(1) draw made by inversion from a uniform that is a
splitmix64 hash of ``(seed, row number in the log, b)`` (a counter-based generator, as in Random123's design):
no (resamples × rows) matrix is ever built, and a row gets the same counts whatever the chunking of
the log, so a streamed and an in-memory evaluation give the same intervals. Hand-written because
it runs inside numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CDF", "poisson_counts", "poisson_bootstrap_sums_"]

# P(N <= k) for N ~ Poisson(1), k = 0..19 (the tail beyond 19 has probability < 1e-18)
CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=np.float64)) for k in range(20)])
CDF[-1] = 1.0

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M2
    z = (z ^ (z >> np.uint64(27))) * _M3
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _count(row_key, b, cdf):
    u = (_mix(row_key + np.uint64(b + 1) * _M1) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    k = 0
    while k < cdf.shape[0] - 1 and u >= cdf[k]:
        k += 1
    return k


@njit(cache=True)
def _row_key(seed, request):
    return _mix(np.uint64(seed) * _M3 + np.uint64(request) * _M1)


@njit(cache=True)
def poisson_bootstrap_sums_(first_row, c, w, seed, cdf, bnum, bden):
    """Add Σᵢ countᵢ,b · c[i, :] to ``bnum[b, :]`` and the same with ``w`` to ``bden`` (in place);
    row i of the chunk is row ``first_row + i`` of the log."""
    n, m = c.shape
    n_boot = bnum.shape[0]
    for i in range(n):
        key = _row_key(seed, first_row + i)
        for b in range(n_boot):
            k = _count(key, b, cdf)
            if k:
                for j in range(m):
                    bnum[b, j] += k * c[i, j]
                    bden[b, j] += k * w[i, j]


@njit(cache=True)
def _counts(n, n_boot, seed, cdf, out):
    for i in range(n):
        key = _row_key(seed, i)
        for b in range(n_boot):
            out[b, i] = _count(key, b, cdf)


def poisson_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) the counts :func:`poisson_bootstrap_sums_` gives rows 0..n-1 (tests, diagnostics)."""
    out = np.zeros((n_boot, n), dtype=np.int64)
    _counts(n, n_boot, np.uint64(seed), CDF, out)
    return out
