"""LinUCB's second kernel pair: pruned exact selection and the ridge step (numba, written flat).

:class:`~idnbandit.agents.linucb.LinUCB` uses these kernels when the problem is large enough for
them to pay (``selection="auto"``: d >= 8 and d·K >= 64) or when asked (``selection="pruned"``);
otherwise the plain pair of :mod:`.linucb`, which scores every option. Both make the same decisions
and leave A, A⁻¹, b bit-identical; these trade K O(d²) products per decision for K O(d) bounds,
one O(d) step of θ per update and eight more state arrays. Same-process A/B on the fused loop
(paired ratios, 2026-11-27; benchmarks/RESULTS.md): d = 16, K = 4 1.24×; d = 16, K = 8 1.57×;
d = 32, K = 4 1.35×; d = 8, K = 16 1.15×; d = 8, K = 8 1.02×; but d = 12, K = 4 0.94× and d = 8,
K = 4 0.87× (the per-step bound costs outweigh the saved products).

State (the kernel protocol's tuple; K options, d features; the first eight arrays are the plain
pair's state, so a checkpoint moves between the two layouts)::

    0 fcfg (2,)        alpha, ridge
    1 icfg (1,) int    refactor_every
    2 A (K, d, d)      ridge·I + Σ x xᵀ per option
    3 Ainv (K, d, d)   A⁻¹, Sherman–Morrison steps + periodic Cholesky refactorisation
    4 b (K, d)         Σ r x
    5 since (K,) int   updates since the last refactorisation
    6 work (d,)        scratch
    7 chol (d, d)      scratch (Cholesky factor, Ainv² for the bound)
    8 theta (K, d)     θ = A⁻¹b, kept by an O(d) step (recomputed when A⁻¹ is)
    9 radius (K,)      upper bound of sqrt(λmax(A⁻¹))
    10 reach (K,)      (1 + SLACK)·α·radius + SLACK·‖θ‖: index ≤ θᵀx + ‖x‖·reach
    11 count (K,) int  updates of the option (schedule of the radius refreshes)
    12 upper (K,)      scratch: the decision's upper bounds
    13 tcache (K, d)   A⁻¹x of the options scored by the last decision
    14 xlast (d,)      the last decision's context
    15 scored (K,) int 1 if tcache[k] holds A_k⁻¹ xlast for the current A_k⁻¹

**Pruned exact selection.** The index of option k is ``p_k = b_kᵀt_k + α·sqrt(xᵀt_k)`` with
``t_k = A_k⁻¹x`` (O(d²)). Since ``xᵀA⁻¹x ≤ λmax(A⁻¹)‖x‖²`` and ``b_kᵀt_k = θ_kᵀx``, the O(d) bound
``θ_kᵀx + ‖x‖·reach_k`` is at least ``p_k``; the kernel scores the option with the highest bound
first and then only the options whose bound reaches the best index so far. The decision is the one
full scoring would make (the scored indices are computed exactly as before, pruned options have a
smaller index; ties still go to the lowest index): the relative slack SLACK = 1e-8 in ``reach``
covers floating-point error in the bound (θ is kept in O(d) per update and re-derived with A⁻¹).
Once the options are told apart, a decision costs one O(d²) product instead of K: on
benchmarks/agents_vs_peers.py's stream (K = 4) ~1.01 options are scored per decision. When the
options stay close, every bound reaches and the cost is that of full scoring plus K dot products.

``radius`` is refreshed from ``ρ(M) ≤ ‖M⁴‖_∞^{1/4}`` (Gelfand; M = A_k⁻¹, exact to a factor ≤ d^{1/4},
in practice a few %) whenever A_k⁻¹ is recomputed and after 16, 32, 64, ... updates of the option;
in between it stays valid because A_k only grows (A_k⁻¹'s eigenvalues only shrink).

**Reuse of A⁻¹x.** A decision stores ``t_k`` of the options it scored; an update of option k on the
same context (compared value by value with ``xlast``) and an unchanged A_k⁻¹ (``scored[k]``) reuses
it instead of recomputing the product: the values are bit-identical (same loop), so the results do
not depend on whether a decision preceded the update.

Both kernels are written without calls or array views and compiled with ``error_model="numpy"``
(no Python division checks; every division has a positive divisor): a call or a view makes numba
keep an atomic reference-count increment/decrement pair per state array on every call (16 arrays:
about as costly as the arithmetic). The ridge step's arithmetic and its order are those of the
composed helpers of :mod:`._linalg` (``matvec_``, ``sherman_morrison_update_``, ``cholesky_``,
``inverse_from_cholesky_``), so A, A⁻¹, b stay bit-identical to theirs
(tests/agents/test_linear_linucb_flat.py).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._linalg import FASTMATH, PIVOT_EPS, ridge_state, view1, view2, view3

__all__ = ["PRUNED_STATE_ARRAYS", "SLACK", "linucb_pruned_select", "linucb_pruned_state", "linucb_pruned_update", "linucb_pruned_upgrade",
           "linucb_pruned_views"]

_LINUCB_KERNEL = {"cache": True, "fastmath": FASTMATH, "error_model": "numpy"}

# Relative slack of the selection bound (floating-point error of θᵀx and of the radius).
SLACK = 1e-8

# Length of this pair's state tuple (the plain pair's 8 arrays, then θ, radius, reach, count, and scratch).
PRUNED_STATE_ARRAYS = 16

# First option count at which the radius is refreshed (then at every power of two).
_FIRST_REFRESH = 16


@njit(**_LINUCB_KERNEL)
def linucb_pruned_select(state, x, u):
    """argmax_a θ_aᵀx + α·sqrt(xᵀA_a⁻¹x); lowest index on ties (deterministic, ``u`` unused).

    Scores exactly (``b_aᵀt + α·sqrt(xᵀt)`` with ``t = A_a⁻¹x``) only the options whose O(d) upper
    bound reaches the best index so far (see the module docstring); stores their ``t`` for the update.
    """
    fcfg, icfg, A, Ainv, b, since, work, chol, theta, radius, reach, count, upper, tcache, xlast, scored = state
    alpha = fcfg[0]
    d = x.shape[0]
    n_opt = b.shape[0]
    xx = 0.0
    for i in range(d):
        xx += x[i] * x[i]
    xnorm = math.sqrt(xx)
    top = 0
    for k in range(n_opt):
        m = 0.0
        for i in range(d):
            m += theta[k, i] * x[i]
        upper[k] = m + xnorm * reach[k]
        scored[k] = 0
        if upper[k] > upper[top]:
            top = k
    for i in range(d):
        xlast[i] = x[i]
    # the most promising option first, then (in index order) every option whose bound reaches the best
    # index so far; a NaN bound (inf radius with x = 0 or alpha = 0) never prunes
    best = top
    best_p = -math.inf
    for n in range(n_opt + 1):
        k = top if n == 0 else n - 1
        if n > 0 and (k == top or upper[k] < best_p):
            continue
        q = 0.0
        mean = 0.0
        for i in range(d):
            t = 0.0
            for j in range(d):
                t += Ainv[k, i, j] * x[j]
            tcache[k, i] = t
            q += x[i] * t
            mean += b[k, i] * t
        scored[k] = 1
        p = mean + alpha * math.sqrt(q if q > 0.0 else 0.0)
        if p > best_p or (p == best_p and k < best):
            best_p = p
            best = k
    return best


@njit(**_LINUCB_KERNEL)
def linucb_pruned_update(state, x, a, r, rewards):
    """Ridge step for every option whose reward is observed (feedback rule of :mod:`.linucb`).

    Per observed option ``k``: ``u = A_k⁻¹x`` (reused from the decision when it scored ``k`` on this
    context); ``θ_k += u·(r − uᵀ(b_k + r x)/(1 + xᵀu))``; ``A_k += xxᵀ``, ``b_k += r x`` and the
    Sherman–Morrison step ``A_k⁻¹ −= w wᵀ`` (``w = u / sqrt(1 + xᵀu)``) in one pass over the rows.
    Every ``refactor_every`` updates of the option, or at once if ``1 + xᵀu`` is not positive,
    ``A_k⁻¹`` is recomputed from ``A_k`` through a Cholesky factor built in the ``chol`` scratch
    (left as it is if ``A_k`` is not numerically SPD; the option's bound is then disabled), and θ_k
    and the radius with it.
    """
    fcfg, icfg, A, Ainv, b, since, w, L, theta, radius, reach, count, upper, tcache, xlast, scored = state
    alpha = fcfg[0]
    d = x.shape[0]
    same_x = True
    for i in range(d):
        if x[i] != xlast[i]:
            same_x = False
    for k in range(b.shape[0]):
        rk = rewards[k]
        if rk != rk and k == a:
            rk = r
        if rk != rk:
            continue
        # u = A_k⁻¹ x (as matvec_), in w
        if same_x and scored[k] == 1:
            for i in range(d):
                w[i] = tcache[k, i]
        else:
            for i in range(d):
                t = 0.0
                for j in range(d):
                    t += Ainv[k, i, j] * x[j]
                w[i] = t
        scored[k] = 0
        s = 0.0
        for i in range(d):
            s += x[i] * w[i]
        den = 1.0 + s
        ok = den > PIVOT_EPS
        if ok:
            ub = 0.0
            for i in range(d):
                ub += w[i] * (b[k, i] + rk * x[i])
            g = rk - ub / den
            for i in range(d):
                theta[k, i] += g * w[i]
            c = 1.0 / math.sqrt(den)
            for i in range(d):
                w[i] *= c
        # A_k += x xᵀ, b_k += r x and, if ok, A_k⁻¹ −= w wᵀ (as sherman_morrison_update_), row by row
        for i in range(d):
            xi = x[i]
            b[k, i] += rk * xi
            for j in range(d):
                A[k, i, j] += xi * x[j]
            if ok:
                wi = w[i]
                for j in range(d):
                    Ainv[k, i, j] -= wi * w[j]
        since[k] += 1
        count[k] += 1
        n = count[k]
        spd = True
        if ok and since[k] < icfg[0]:
            fresh = n >= _FIRST_REFRESH and (n & (n - 1)) == 0  # re-derive θ_k and the radius
        else:
            fresh = True
            since[k] = 0
            # L Lᵀ = A_k (as cholesky_); A_k⁻¹ is left as it is if A_k is not numerically SPD
            for j in range(d):
                if spd:
                    s = A[k, j, j]
                    for m in range(j):
                        s -= L[j, m] * L[j, m]
                    if s > 0.0:
                        ljj = math.sqrt(s)
                        L[j, j] = ljj
                        for i in range(j + 1, d):
                            t = A[k, i, j]
                            for m in range(j):
                                t -= L[i, m] * L[j, m]
                            L[i, j] = t / ljj
                        for i in range(j):
                            L[i, j] = 0.0
                    else:
                        spd = False
            if spd:
                # A_k⁻¹ = (L Lᵀ)⁻¹ (as inverse_from_cholesky_): rows of A_k⁻¹ first hold L⁻¹ by columns
                for j in range(d):
                    for i in range(d):
                        w[i] = 0.0
                    w[j] = 1.0 / L[j, j]
                    for i in range(j + 1, d):
                        t = 0.0
                        for m in range(j, i):
                            t -= L[i, m] * w[m]
                        w[i] = t / L[i, i]
                    for i in range(d):
                        Ainv[k, j, i] = w[i]
                for p in range(d):
                    for q in range(p + 1):
                        t = 0.0
                        for i in range(p, d):
                            t += Ainv[k, p, i] * Ainv[k, q, i]
                        w[q] = t
                    for q in range(p + 1):
                        Ainv[k, p, q] = w[q]
                for p in range(d):
                    for q in range(p):
                        Ainv[k, q, p] = Ainv[k, p, q]
        if fresh:
            # θ_k = A_k⁻¹b_k (as stored), and radius_k = ‖M⁴‖_∞^{1/8} >= sqrt(λmax(M)), M = A_k⁻¹ (M² in
            # L); an option whose factorisation failed has no bound (inf) until the next refresh
            for i in range(d):
                t = 0.0
                for j in range(d):
                    t += Ainv[k, i, j] * b[k, j]
                theta[k, i] = t
            big = math.inf
            if spd:
                for i in range(d):
                    for j in range(d):
                        t = 0.0
                        for m in range(d):
                            t += Ainv[k, i, m] * Ainv[k, j, m]
                        L[i, j] = t
                big = 0.0
                for i in range(d):
                    s = 0.0
                    for j in range(d):
                        t = 0.0
                        for m in range(d):
                            t += L[i, m] * L[j, m]
                        s += abs(t)
                    if s > big:
                        big = s
            radius[k] = math.sqrt(math.sqrt(math.sqrt(big))) * (1.0 + SLACK) if big < math.inf else math.inf
        tn = 0.0
        for i in range(d):
            tn += theta[k, i] * theta[k, i]
        reach[k] = (1.0 + SLACK) * alpha * radius[k] + SLACK * math.sqrt(tn)


@njit(cache=True)
def linucb_pruned_views(fbuf, ibuf):
    """LinUCB's state tuple rebuilt from its packed buffers (views; layout of ``base.pack_state``)."""
    d, k = ibuf[0], ibuf[1]
    return (view1(fbuf, ibuf[2], 2), view1(ibuf, ibuf[3], 1), view3(fbuf, ibuf[4], k, d, d),
            view3(fbuf, ibuf[5], k, d, d), view2(fbuf, ibuf[6], k, d), view1(ibuf, ibuf[7], k),
            view1(fbuf, ibuf[8], d), view2(fbuf, ibuf[9], d, d), view2(fbuf, ibuf[10], k, d),
            view1(fbuf, ibuf[11], k), view1(fbuf, ibuf[12], k), view1(ibuf, ibuf[13], k),
            view1(fbuf, ibuf[14], k), view2(fbuf, ibuf[15], k, d), view1(fbuf, ibuf[16], d),
            view1(ibuf, ibuf[17], k))


def _radius(Ainv: np.ndarray) -> np.ndarray:
    """(K,) the kernel's radius bound ‖M⁴‖_∞^{1/8}·(1 + SLACK) for each option's ``M = A⁻¹`` (numpy)."""
    m2 = Ainv @ np.swapaxes(Ainv, 1, 2)
    big = np.abs(m2 @ np.swapaxes(m2, 1, 2)).sum(axis=2).max(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        out = big ** 0.125 * (1.0 + SLACK)
    return np.where(np.isfinite(out), out, np.inf)


def _derived(fcfg, Ainv, b):
    """θ, radius and reach of the state from A⁻¹ and b (a fresh state or an older checkpoint)."""
    theta = np.einsum("kij,kj->ki", Ainv, b)
    radius = _radius(Ainv)
    with np.errstate(invalid="ignore"):
        reach = (1.0 + SLACK) * fcfg[0] * radius + SLACK * np.linalg.norm(theta, axis=1)
    return theta, radius, reach


def linucb_pruned_state(alpha: float, ridge: float, refactor_every: int, n_actions: int, d: int) -> tuple:
    """A fresh LinUCB state tuple (layout in the module docstring)."""
    fcfg = np.array([alpha, ridge], dtype=np.float64)
    icfg = np.array([refactor_every], dtype=np.int64)
    A, Ainv, b, _, since, work = ridge_state(n_actions, d, float(ridge))
    return linucb_pruned_upgrade((fcfg, icfg, A, Ainv, b, since, work), n_actions, d)


def linucb_pruned_upgrade(arrays, n_actions: int, d: int) -> tuple:
    """Complete a state given by its first 7 or 8 arrays (older checkpoints) with the derived and
    scratch arrays; a decision then scores afresh (no stored A⁻¹x is reused)."""
    arrays = list(arrays)
    if len(arrays) == 7:
        arrays.append(np.zeros((d, d)))
    fcfg, Ainv, b = arrays[0], arrays[3], arrays[4]
    theta, radius, reach = _derived(fcfg, Ainv, b)
    return (*arrays, theta, radius, reach, np.zeros(n_actions, np.int64), np.zeros(n_actions),
            np.zeros((n_actions, d)), np.full(d, np.nan), np.zeros(n_actions, np.int64))
