"""LinUCB (disjoint): one ridge regression per option and an upper-confidence index.

The machinery the linear agents share (:class:`~idnbandit.agents._linear_base.LinearAgent`: the lean
per-step ``act`` / ``update`` path and the feedback rule) lives in :mod:`._linear_base`; the per-arm
ridge update kernels (Sherman–Morrison with periodic refactorisation) in :mod:`._linalg`;
LinUCB's second kernel pair (pruned exact selection, for larger d·K) in :mod:`._linucb_pruned`.

Feedback: ``update`` makes one ridge step for every option whose reward is observed (the rule of
:mod:`._linear_base`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..errors import ConfigError
from . import _params
from ._linalg import FASTMATH, PIVOT_EPS, ridge_state, view1, view2, view3
from ._linear_base import LinearAgent, step_ok  # LinearAgent re-exported for existing importers
from ._linucb_pruned import (
    PRUNED_STATE_ARRAYS,
    linucb_pruned_select,
    linucb_pruned_state,
    linucb_pruned_update,
    linucb_pruned_upgrade,
    linucb_pruned_views,
)
from ._params import check_integer, check_real
from .base import check_state_array
from .registry import register

__all__ = ["LinUCB", "LinearAgent"]


# LinUCB's two fused-path kernels are written flat: no calls and no array views, and compiled with
# ``error_model="numpy"`` (no Python division checks; every division below has a positive divisor).
# A call or a view makes numba keep an atomic reference-count increment/decrement pair per array
# argument on every call (16 of them per update before), which cost about as much as the arithmetic.
# The arithmetic, and its order, is exactly that of the composed helpers (matvec_,
# sherman_morrison_update_, cholesky_, inverse_from_cholesky_): results are bit-identical to theirs
# (tests/agents/test_linear_linucb_flat.py holds the two to each other).
_LINUCB_KERNEL = {"cache": True, "fastmath": FASTMATH, "error_model": "numpy"}


@njit(**_LINUCB_KERNEL)
def linucb_select(state, x, u):
    """argmax_a θ_aᵀx + α·sqrt(xᵀA_a⁻¹x); lowest index on ties (deterministic, ``u`` unused).

    With ``t = A_a⁻¹x`` (one pass over A_a⁻¹): ``θ_aᵀx = b_aᵀt`` and ``xᵀA_a⁻¹x = xᵀt``, so θ_a is never
    formed and an update costs one matrix–vector product less.
    """
    fcfg, icfg, A, Ainv, b, since, work, chol = state
    alpha = fcfg[0]
    d = x.shape[0]
    best = 0
    best_p = -math.inf
    for k in range(b.shape[0]):
        q = 0.0
        mean = 0.0
        for i in range(d):
            t = 0.0
            for j in range(d):
                t += Ainv[k, i, j] * x[j]
            q += x[i] * t
            mean += b[k, i] * t
        p = mean + alpha * math.sqrt(q if q > 0.0 else 0.0)
        if p > best_p:
            best_p = p
            best = k
    return best


@njit(**_LINUCB_KERNEL)
def linucb_update(state, x, a, r, rewards):
    """Ridge step for every option whose reward is observed (see the module docstring).

    Per observed option ``k``: ``u = A_k⁻¹x``; ``A_k += xxᵀ``, ``b_k += r x`` and the Sherman–Morrison
    step ``A_k⁻¹ −= w wᵀ`` (``w = u / sqrt(1 + xᵀu)``) in one pass over the rows; every
    ``refactor_every`` updates of the option, or at once if ``1 + xᵀu`` is not positive, ``A_k⁻¹`` is
    recomputed from ``A_k`` through a Cholesky factor built in the ``chol`` scratch (no allocation).
    Same arithmetic as :func:`ridge_stats_update_` (bit-identical), written flat for speed.
    """
    fcfg, icfg, A, Ainv, b, since, w, L = state
    d = x.shape[0]
    for k in range(b.shape[0]):
        rk = rewards[k]
        if rk != rk and k == a:
            rk = r
        if rk != rk:
            continue
        # u = A_k⁻¹ x (as matvec_), in w
        for i in range(d):
            t = 0.0
            for j in range(d):
                t += Ainv[k, i, j] * x[j]
            w[i] = t
        s = 0.0
        for i in range(d):
            s += x[i] * w[i]
        den = 1.0 + s
        ok = den > PIVOT_EPS
        if ok:
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
        if ok and since[k] < icfg[0]:
            continue
        since[k] = 0
        # L Lᵀ = A_k (as cholesky_); A_k⁻¹ is left as it is if A_k is not numerically SPD
        spd = True
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
        if not spd:
            continue
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


@njit(cache=True)
def linucb_views(fbuf, ibuf):
    """LinUCB's state tuple rebuilt from its packed buffers (views; layout of ``base.pack_state``)."""
    d, k = ibuf[0], ibuf[1]
    return (view1(fbuf, ibuf[2], 2), view1(ibuf, ibuf[3], 1), view3(fbuf, ibuf[4], k, d, d),
            view3(fbuf, ibuf[5], k, d, d), view2(fbuf, ibuf[6], k, d), view1(ibuf, ibuf[7], k),
            view1(fbuf, ibuf[8], d), view2(fbuf, ibuf[9], d, d))


@njit(cache=True)
def linucb_step_select(fbuf, ibuf, x, u):
    """:func:`linucb_select` on packed state, or -1 if ``x`` has the wrong length or is not finite."""
    if not step_ok(ibuf, x, 0, 0.0):
        return -1
    return linucb_select(linucb_views(fbuf, ibuf), x, u)


@njit(cache=True)
def linucb_step_update(fbuf, ibuf, x, a, r, rewards):
    """:func:`linucb_update` on packed state; False (nothing done) if the inputs fail :func:`step_ok`."""
    if not step_ok(ibuf, x, a, r):
        return False
    linucb_update(linucb_views(fbuf, ibuf), x, a, r, rewards)
    return True


@njit(cache=True)
def linucb_pruned_step_select(fbuf, ibuf, x, u):
    """:func:`linucb_step_select` for the pruned kernel pair's state layout."""
    if not step_ok(ibuf, x, 0, 0.0):
        return -1
    return linucb_pruned_select(linucb_pruned_views(fbuf, ibuf), x, u)


@njit(cache=True)
def linucb_pruned_step_update(fbuf, ibuf, x, a, r, rewards):
    """:func:`linucb_step_update` for the pruned kernel pair's state layout."""
    if not step_ok(ibuf, x, a, r):
        return False
    linucb_pruned_update(linucb_pruned_views(fbuf, ibuf), x, a, r, rewards)
    return True



# LinUCB's selection="auto" takes the pruned kernel pair from this size on (see LinUCB)
PRUNED_MIN_FEATURES = 8
PRUNED_MIN_WORK = 64  # d·K
_SELECTIONS = ("auto", "full", "pruned")
_KERNEL_ATTRS = ("_select_kernel", "_update_kernel", "_step_select", "_step_update")


@register("linucb", "LinUCB (disjoint): per-option ridge regression + upper confidence bound (Li et al. 2010)")
class LinUCB(LinearAgent):
    """LinUCB with disjoint linear models (Li, Chu, Langford, Schapire 2010, Algorithm 1).

    Option ``a`` keeps ``A_a = ridge·I + Σ x xᵀ`` and ``b_a = Σ r x`` over the rounds its reward was
    observed; it scores ``p_a = θ_aᵀx + α·sqrt(xᵀA_a⁻¹x)`` with ``θ_a = A_a⁻¹b_a`` and the agent plays
    ``argmax_a p_a``. Ties go to the **lowest index** (deterministic; the paper breaks them at
    random), so LinUCB draws no uniforms.

    ``A_a⁻¹`` is maintained by Sherman–Morrison (as ``A⁻¹ − w wᵀ``, which keeps it exactly
    symmetric) and recomputed from ``A_a`` by a Cholesky factorisation every ``refactor_every``
    updates of that option, or at once if the update's denominator is not positive
    (it bounds the drift of Sherman–Morrison updates). Per decision O(K d²); per update O(d²) amortised; the kernels
    never allocate (the Cholesky factor is built in a (d, d) scratch array of the state).

    **Selection.** Two kernel pairs make exactly the same decisions and leave A, A⁻¹, b
    bit-identical. ``"full"`` scores every option (K products A_a⁻¹x per decision). ``"pruned"``
    first computes per option an O(d) upper bound ``θ_aᵀx + ‖x‖·α·sqrt(λmax(A_a⁻¹))`` of its index
    (θ_a kept by an O(d) step per update, the eigenvalue bounded from above at refactorisations and
    after 16, 32, 64, … updates) and scores exactly only the options whose bound reaches the best
    index found so far; the update then reuses that decision's A_a⁻¹x. Once the options are told
    apart a decision costs about one O(d²) product instead of K (up to K when the options stay
    close). It pays from d·K ≈ 64 (1.24× at d = 16, K = 4; 1.57× at d = 16, K = 8) and costs below
    (0.87× at d = 8, K = 4): ``"auto"`` (default) takes ``"pruned"`` when d >= 8 and d·K >= 64.
    Details in :mod:`._linucb_pruned`.

    Feedback: every option whose reward is observed is updated (see :mod:`._linear_base`).

    Parameters
    ----------
    n_actions, n_features
        Number of options K and context length d.
    alpha
        Width multiplier α >= 0 of the confidence bound (theory: 1 + sqrt(ln(2/δ)/2)).
    ridge
        Ridge λ > 0: ``A_a`` starts at λI.
    refactor_every
        Updates of an option between two refactorisations of its inverse (>= 1).
    selection
        ``"auto"`` (default), ``"full"`` or ``"pruned"``: which kernel pair (see above); the choice
        changes speed only, never a decision.
    seed
        Seed of the agent's generator (unused by the decisions; kept for the protocol).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(3, 4))
    >>> agent = LinUCB(n_actions=3, n_features=4, alpha=0.5, seed=0)
    >>> total = 0.0
    >>> for _ in range(2000):
    ...     x = rng.normal(size=4)
    ...     a = agent.act(x)
    ...     r = float(theta[a] @ x + 0.1 * rng.normal())
    ...     total += float((theta @ x).max() - theta[a] @ x)
    ...     _ = agent.update(x, a, r)
    >>> print(round(total, 1))  # cumulative regret over 2000 decisions
    14.6

    References
    ----------
    L. Li, W. Chu, J. Langford, R. E. Schapire, "A Contextual-Bandit Approach to Personalized News
    Article Recommendation", WWW 2010, Algorithm 1 (arXiv:1003.0146).
    """

    _select_kernel = staticmethod(linucb_select)
    _update_kernel = staticmethod(linucb_update)
    propensity_kind = "deterministic"
    _step_select = staticmethod(linucb_step_select)
    _step_update = staticmethod(linucb_step_update)

    def __init__(self, n_actions: int, n_features: int, alpha: float = 1.0, ridge: float = 1.0,
                 refactor_every: int = 1000, selection: str = "auto", seed=None):
        self.alpha = alpha
        self.ridge = ridge
        self.refactor_every = refactor_every
        self.selection = selection
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("alpha", self.alpha, lo=0.0)
        check_real("ridge", self.ridge, lo=0.0, lo_open=True)
        check_integer("refactor_every", self.refactor_every, 1, _params.MAX_STEPS)
        if self.selection not in _SELECTIONS:
            raise ConfigError(f"selection: {self.selection!r} is not allowed; it must be one of "
                              + ", ".join(repr(v) for v in _SELECTIONS))
        self._bind_kernels()

    @property
    def pruned(self) -> bool:
        """True if this agent runs the pruned kernel pair (``selection``, or ``"auto"``'s choice)."""
        if self.selection == "auto":
            d, k = self.n_features, self.n_actions
            return d >= PRUNED_MIN_FEATURES and d * k >= PRUNED_MIN_WORK
        return self.selection == "pruned"

    def _bind_kernels(self) -> None:
        # the pruned pair as instance attributes shadowing the class's plain pair; never pickled
        # (__getstate__), bound again on unpickling
        if self.pruned:
            self._select_kernel, self._update_kernel = linucb_pruned_select, linucb_pruned_update
            self._step_select, self._step_update = linucb_pruned_step_select, linucb_pruned_step_update

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in _KERNEL_ATTRS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_kernels()
        super().__setstate__(state)

    def _init_state(self) -> tuple:
        """``(fcfg, icfg, A, Ainv, b, since, work, chol)``; ``work`` (d,) and ``chol`` (d, d) are scratch.
        The pruned pair appends eight arrays (layout in :mod:`._linucb_pruned`)."""
        if self.pruned:
            return linucb_pruned_state(self.alpha, self.ridge, self.refactor_every, self.n_actions, self.n_features)
        fcfg = np.array([self.alpha, self.ridge], dtype=np.float64)
        icfg = np.array([self.refactor_every], dtype=np.int64)
        A, Ainv, b, _, since, work = ridge_state(self.n_actions, self.n_features, float(self.ridge))
        return fcfg, icfg, A, Ainv, b, since, work, np.zeros((self.n_features, self.n_features))

    def _set_state_arrays(self, arrays) -> None:
        # Checkpoints written before the Cholesky scratch ``chol`` joined the state hold seven arrays;
        # the scratch is overwritten before it is read, so zeros restore them exactly. A checkpoint
        # of the other kernel pair (same first eight arrays; e.g. written before the pruned pair
        # existed, or by a version whose "auto" chose differently) is converted: the pruned pair's
        # extra arrays are dropped, or derived from A⁻¹ and b (``linucb_pruned_upgrade``); either way
        # the agent continues exactly as the saved one would have.
        n = len(arrays)
        if n == 7 and "s7" not in arrays:
            arrays = {**arrays, "s7": np.zeros((self.n_features, self.n_features))}
            n = 8
        n_plain = 8
        if self.pruned and n == n_plain:
            for i, ref in enumerate(self._init_state()[:n_plain]):
                check_state_array(f"s{i}", arrays.get(f"s{i}"), ref)
            full = linucb_pruned_upgrade([arrays[f"s{i}"] for i in range(n_plain)], self.n_actions,
                                         self.n_features)
            arrays = {f"s{i}": a for i, a in enumerate(full)}
        elif not self.pruned and n == PRUNED_STATE_ARRAYS:
            arrays = {f"s{i}": arrays[f"s{i}"] for i in range(n_plain) if f"s{i}" in arrays}
        super()._set_state_arrays(arrays)

    @property
    def coef_(self) -> np.ndarray:
        """(n_actions, n_features) current ridge estimates θ_a = A_a⁻¹b_a."""
        return np.einsum("kij,kj->ki", self._state[3], self._state[4])

    def _state_names(self) -> tuple[str, ...]:
        return ("alpha, ridge", "refactor_every", "A", "A⁻¹", "b", "updates since refactorisation", "scratch",
                "scratch", "θ", "radius", "reach", "update count", "scratch", "cached A⁻¹x", "last context",
                "cached flags")

    def _check_state(self, c) -> None:
        c.config("s0", "s1")
        c.spd("s2", "A")
        c.spd("s3", "A⁻¹")
        c.finite("s4")
        c.counts("s5", 0, int(self.refactor_every))
        if self.pruned:
            c.finite("s8")
            c.in_range("s9", 0.0, what="radii")
            c.in_range("s10", 0.0, what="reaches")
            c.counts("s11", 0)
            c.in_range("s13", nan_ok=True, what="cached products")
            c.in_range("s14", nan_ok=True, what="context values")
            c.counts("s15", 0, 1, what="flags")
