"""Small dense linear-algebra kernels shared by the linear bandits (numba, explicit loops).

Everything here works in place on small float64 arrays (d <= ~64) and, except ``refactor_arm_``
(called rarely), never allocates, so the kernels can sit in a hot loop (``@`` on 16x16 slices
allocates and costs 3x there).
Names follow the convention that a trailing underscore mutates an argument.

* Sherman–Morrison rank-1 update / downdate of a symmetric inverse, written as ``A⁻¹ ∓ w wᵀ`` with
  ``w = A⁻¹x / sqrt(1 ± xᵀA⁻¹x)``: products ``w_i w_j`` are commutative in floating point, so the result
  stays exactly symmetric (the usual "re-symmetrise after each update" holds by construction).
* Cholesky factorisation, rank-1 update and downdate of a lower-triangular factor (O(d²) each).
* Forward / backward triangular solves and the SPD inverse from a Cholesky factor.

References
----------
G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., §4.2 (Cholesky), §6.5.4 (rank-1 update).
J. Sherman, W. J. Morrison, Ann. Math. Statist. 21(1):124-127, 1950.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "FASTMATH",
    "all_finite",
    "dot",
    "quad_form",
    "matvec_",
    "sherman_morrison_update_",
    "sherman_morrison_downdate_",
    "cholesky_",
    "cholesky_update_",
    "cholesky_downdate_",
    "forward_solve_",
    "backward_solve_",
    "inverse_from_cholesky_",
    "argmax_first",
    "view1",
    "view2",
    "view3",
    "observed_reward",
    "refactor_arm_",
    "ridge_stats_update_",
    "ridge_update_arm_",
    "ridge_state",
]

# The one place where numba floating-point flags are set for the linear agents: reassociation and
# contraction let LLVM vectorise the small reductions (about 2-3x faster); "nnan"/"ninf" are left out
# on purpose, because the kernels test for NaN (unobserved rewards).
FASTMATH = {"reassoc", "contract", "nsz"}

# Smallest accepted Sherman–Morrison denominator / Cholesky pivot (relative to 1).
PIVOT_EPS = 1e-12


@njit(cache=True)
def all_finite(x):
    """True if no entry of the (d,) array ``x`` is NaN or infinite (a cheap wrapper-side check)."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@njit(cache=True)
def view1(buf, o, n):
    """The (n,) view ``buf[o:o+n]`` of a packed state buffer (see ``base.pack_state``)."""
    return buf[o:o + n]


@njit(cache=True)
def view2(buf, o, n, m):
    """The (n, m) C-contiguous view of ``buf[o:o+n*m]``."""
    return buf[o:o + n * m].reshape((n, m))


@njit(cache=True)
def view3(buf, o, n, m, p):
    """The (n, m, p) C-contiguous view of ``buf[o:o+n*m*p]``."""
    return buf[o:o + n * m * p].reshape((n, m, p))


@njit(cache=True, fastmath=FASTMATH)
def dot(a, b):
    """Inner product of two (d,) vectors."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, fastmath=FASTMATH)
def quad_form(m, x):
    """``x^T m x`` for a symmetric (d, d) matrix ``m`` (full matrix read, row-major)."""
    d = x.shape[0]
    s = 0.0
    for i in range(d):
        t = 0.0
        for j in range(d):
            t += m[i, j] * x[j]
        s += x[i] * t
    return s


@njit(cache=True, fastmath=FASTMATH)
def matvec_(m, x, out):
    """``out <- m @ x`` for (d, d) ``m``."""
    d = x.shape[0]
    for i in range(d):
        t = 0.0
        for j in range(d):
            t += m[i, j] * x[j]
        out[i] = t


@njit(cache=True, fastmath=FASTMATH)
def argmax_first(v):
    """Index of the largest entry; the lowest index wins ties (NaN never wins)."""
    best = 0
    for k in range(1, v.shape[0]):
        if v[k] > v[best] or (v[best] != v[best] and v[k] == v[k]):
            best = k
    return best


@njit(cache=True, fastmath=FASTMATH)
def _sm_rank1_(ainv, x, u, sign):
    d = x.shape[0]
    matvec_(ainv, x, u)
    den = 1.0 + sign * dot(x, u)
    if not den > PIVOT_EPS:
        return False
    # ainv -= sign * w wᵀ with w = u / sqrt(den): w_i·w_j == w_j·w_i exactly, so a symmetric ainv stays
    # exactly symmetric, and the row-major loop vectorises (no mirrored strided writes).
    c = 1.0 / math.sqrt(den)
    for i in range(d):
        u[i] *= c
    for i in range(d):
        wi = sign * u[i]
        for j in range(d):
            ainv[i, j] -= wi * u[j]
    return True


@njit(cache=True, fastmath=FASTMATH)
def sherman_morrison_update_(ainv, x, u):
    """``ainv <- (A + x x^T)^{-1}`` given ``ainv = A^{-1}`` (symmetric); ``u`` is (d,) scratch.

    Returns False (and leaves ``ainv`` untouched) if the denominator ``1 + x^T A^{-1} x`` is not
    positive, which only happens when ``ainv`` has lost positive-definiteness: refactorise then.
    """
    return _sm_rank1_(ainv, x, u, 1.0)


@njit(cache=True, fastmath=FASTMATH)
def sherman_morrison_downdate_(ainv, x, u):
    """``ainv <- (A - x x^T)^{-1}``; returns False if ``1 - x^T A^{-1} x <= eps`` (then refactorise)."""
    return _sm_rank1_(ainv, x, u, -1.0)


@njit(cache=True, fastmath=FASTMATH)
def cholesky_(a, L):
    """Lower Cholesky factor ``L`` of SPD ``a`` (``a = L L^T``); returns False if not SPD."""
    d = a.shape[0]
    for j in range(d):
        s = a[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        ljj = math.sqrt(s)
        L[j, j] = ljj
        for i in range(j + 1, d):
            t = a[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / ljj
        for i in range(j):
            L[i, j] = 0.0
    return True


@njit(cache=True, fastmath=FASTMATH)
def cholesky_update_(L, x, w):
    """``L <- chol(L L^T + x x^T)`` in O(d^2); ``w`` is (d,) scratch (``x`` is not modified)."""
    d = x.shape[0]
    for i in range(d):
        w[i] = x[i]
    for k in range(d):
        lkk = L[k, k]
        r = math.sqrt(lkk * lkk + w[k] * w[k])
        c = r / lkk
        s = w[k] / lkk
        L[k, k] = r
        for i in range(k + 1, d):
            lik = (L[i, k] + s * w[i]) / c
            L[i, k] = lik
            w[i] = c * w[i] - s * lik


@njit(cache=True, fastmath=FASTMATH)
def cholesky_downdate_(L, x, w):
    """``L <- chol(L L^T - x x^T)``; returns False (``L`` then partly modified) if not SPD.

    On False the caller must refactorise from the ground-truth matrix.
    """
    d = x.shape[0]
    for i in range(d):
        w[i] = x[i]
    for k in range(d):
        lkk = L[k, k]
        r2 = lkk * lkk - w[k] * w[k]
        if not r2 > PIVOT_EPS * lkk * lkk:
            return False
        r = math.sqrt(r2)
        c = r / lkk
        s = w[k] / lkk
        L[k, k] = r
        for i in range(k + 1, d):
            lik = (L[i, k] - s * w[i]) / c
            L[i, k] = lik
            w[i] = c * w[i] - s * lik
    return True


@njit(cache=True, fastmath=FASTMATH)
def forward_solve_(L, b, out):
    """Solve ``L out = b`` for lower-triangular ``L``."""
    d = b.shape[0]
    for i in range(d):
        t = b[i]
        for k in range(i):
            t -= L[i, k] * out[k]
        out[i] = t / L[i, i]


@njit(cache=True, fastmath=FASTMATH)
def backward_solve_(L, y, out):
    """Solve ``L^T out = y`` for lower-triangular ``L``."""
    d = y.shape[0]
    for i in range(d - 1, -1, -1):
        t = y[i]
        for k in range(i + 1, d):
            t -= L[k, i] * out[k]
        out[i] = t / L[i, i]


@njit(cache=True, fastmath=FASTMATH)
def inverse_from_cholesky_(L, out, w):
    """``out <- (L L^T)^{-1}`` (symmetric); ``w`` is (d,) scratch.

    Column j of the inverse solves ``L L^T c = e_j``; the lower triangle is computed and mirrored.
    """
    d = L.shape[0]
    # out's rows temporarily hold M = L^{-1} (lower triangular): row j of out <- column j of L^{-1}
    for j in range(d):
        for i in range(d):
            w[i] = 0.0
        w[j] = 1.0 / L[j, j]
        for i in range(j + 1, d):
            t = 0.0
            for k in range(j, i):
                t -= L[i, k] * w[k]
            w[i] = t / L[i, i]
        for i in range(d):
            out[j, i] = w[i]  # out[j, i] = (L^{-1})[i, j], nonzero for i >= j
    # inverse = L^{-T} L^{-1}: entry (p, q) = sum_i (L^{-1})[i, p] (L^{-1})[i, q] = sum_i out[p, i] out[q, i]
    for p in range(d):
        for q in range(p + 1):
            s = 0.0
            for i in range(p, d):
                s += out[p, i] * out[q, i]
            w[q] = s
        for q in range(p + 1):
            out[p, q] = w[q]
    # the loop above overwrote row p's lower part only after reading rows p and q <= p; rows > p still
    # hold L^{-1}. Mirror lower -> upper.
    for p in range(d):
        for q in range(p):
            out[q, p] = out[p, q]


# ---------------------------------------------------------------- per-option ridge statistics
# Shared by the linear agents (ε-greedy, the non-stationary LinUCBs, LinTS's feedback rule).
# LinUCB runs the same arithmetic as ridge_stats_update_ in one flat kernel (see linucb.py).


@njit(cache=True, fastmath=FASTMATH)
def observed_reward(k, a, r, rewards):
    """Reward of option ``k`` as observed (NaN if not): ``rewards[k]``, or ``r`` for the action taken."""
    rk = rewards[k]
    if rk != rk and k == a:
        rk = r
    return rk


@njit(cache=True, fastmath=FASTMATH)
def refactor_arm_(A, Ainv, k, work):
    """``Ainv[k] <- inv(A[k])`` through a fresh Cholesky factor (allocates; called rarely)."""
    d = A.shape[1]
    L = np.empty((d, d))
    if cholesky_(A[k], L):
        inverse_from_cholesky_(L, Ainv[k], work)


@njit(cache=True, fastmath=FASTMATH)
def ridge_stats_update_(A, Ainv, b, since, k, x, r, refactor_every, work):
    """One ridge-regression step of option ``k`` on ``(x, r)``: A += xxᵀ, b += r x, SM on Ainv.

    ``Ainv`` is refactorised from ``A`` (Cholesky) every ``refactor_every`` updates of the option, and
    immediately if the Sherman–Morrison denominator is not positive.
    """
    d = x.shape[0]
    Ak = A[k]
    bk = b[k]
    for i in range(d):
        xi = x[i]
        bk[i] += r * xi
        for j in range(d):
            Ak[i, j] += xi * x[j]
    ok = sherman_morrison_update_(Ainv[k], x, work)
    since[k] += 1
    if not ok or since[k] >= refactor_every:
        refactor_arm_(A, Ainv, k, work)
        since[k] = 0


@njit(cache=True, fastmath=FASTMATH)
def ridge_update_arm_(A, Ainv, b, theta, since, k, x, r, refactor_every, work):
    """:func:`ridge_stats_update_`, then ``theta[k] = Ainv[k] b[k]``."""
    ridge_stats_update_(A, Ainv, b, since, k, x, r, refactor_every, work)
    matvec_(Ainv[k], b[k], theta[k])


def ridge_state(n_actions: int, d: int, ridge: float):
    """Fresh per-option ridge statistics: A = ridge·I, Ainv = I/ridge, b = θ = 0, since = 0, work."""
    eye = np.eye(d)
    A = np.repeat((ridge * eye)[None], n_actions, axis=0)
    Ainv = np.repeat((eye / ridge)[None], n_actions, axis=0)
    return A, Ainv, np.zeros((n_actions, d)), np.zeros((n_actions, d)), np.zeros(n_actions, np.int64), np.zeros(d)
