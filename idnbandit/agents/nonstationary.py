"""LinUCB for drifting rewards: discounted (D-LinUCB) and sliding-window (SW-LinUCB) statistics.

Both keep one model per option (disjoint, like :class:`~idnbandit.agents.linucb.LinUCB`) and treat
every ``update`` call as one time step: the discount (or the window) advances for *all* options,
whether or not a reward was observed, because drift happens in time, not in samples.
Feedback: every option whose reward is observed is updated (see :mod:`.linucb`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._linalg import (
    FASTMATH,
    cholesky_,
    dot,
    inverse_from_cholesky_,
    matvec_,
    observed_reward,
    quad_form,
    refactor_arm_,
    ridge_state,
    sherman_morrison_downdate_,
    sherman_morrison_update_,
)
from ._linear_base import LinearAgent
from ._params import MAX_STEPS, check_integer, check_real
from .registry import register

__all__ = ["DiscountedLinUCB", "SlidingWindowLinUCB"]


# ----------------------------------------------------------------------------- D-LinUCB
@njit(cache=True, fastmath=FASTMATH)
def dlinucb_beta(fcfg, d, t):
    """β_t = sqrt(λ)S + σ·sqrt(2 ln(1/δ) + d·ln(1 + L²(1 − γ^{2t}) / (λ d (1 − γ²)))) (Russac et al. Thm 1)."""
    gamma, lam, delta, sigma, s_bound, l_bound = fcfg[0], fcfg[2], fcfg[3], fcfg[4], fcfg[5], fcfg[6]
    inner = 1.0 + l_bound * l_bound * (1.0 - gamma ** (2.0 * t)) / (lam * d * (1.0 - gamma * gamma))
    return math.sqrt(lam) * s_bound + sigma * math.sqrt(2.0 * math.log(1.0 / delta) + d * math.log(inner))


@njit(cache=True, fastmath=FASTMATH)
def dlinucb_select(state, x, u):
    """argmax_a θ_aᵀx + α·β_{t−1}·sqrt(xᵀ V_a⁻¹ Ṽ_a V_a⁻¹ x); lowest index on ties (``u`` unused)."""
    fcfg, icfg, V, Vt, b, theta, M, scratch, work = state
    beta = fcfg[1] * dlinucb_beta(fcfg, x.shape[0], icfg[0])
    best = 0
    best_p = -math.inf
    for k in range(theta.shape[0]):
        q = quad_form(M[k], x)
        p = dot(theta[k], x) + beta * math.sqrt(q if q > 0.0 else 0.0)
        if p > best_p:
            best_p = p
            best = k
    return best


@njit(cache=True, fastmath=FASTMATH)
def dlinucb_update(state, x, a, r, rewards):
    """V ← γV + xxᵀ + (1−γ)λI, Ṽ ← γ²Ṽ + xxᵀ + (1−γ²)λI, b ← γb + r x; refresh θ = V⁻¹b, M = V⁻¹ṼV⁻¹."""
    fcfg, icfg, V, Vt, b, theta, M, scratch, work = state
    gamma, lam = fcfg[0], fcfg[2]
    g2 = gamma * gamma
    n, d = theta.shape
    icfg[0] += 1
    L = scratch[0]
    Vinv = scratch[1]
    for k in range(n):
        rk = observed_reward(k, a, r, rewards)
        seen = rk == rk
        for i in range(d):
            b[k, i] *= gamma
            if seen:
                b[k, i] += rk * x[i]
            for j in range(d):
                xx = x[i] * x[j] if seen else 0.0
                V[k, i, j] = gamma * V[k, i, j] + xx
                Vt[k, i, j] = g2 * Vt[k, i, j] + xx
            V[k, i, i] += (1.0 - gamma) * lam
            Vt[k, i, i] += (1.0 - g2) * lam
        if not cholesky_(V[k], L):
            continue  # cannot happen for λ > 0; keep the previous θ and M
        inverse_from_cholesky_(L, Vinv, work)
        matvec_(Vinv, b[k], theta[k])
        # M = Vinv Ṽ Vinv; L's storage is reused for T = Ṽ Vinv
        for i in range(d):
            for j in range(d):
                s = 0.0
                for m in range(d):
                    s += Vt[k, i, m] * Vinv[m, j]
                L[i, j] = s
        for i in range(d):
            for j in range(i + 1):
                s = 0.0
                for m in range(d):
                    s += Vinv[i, m] * L[m, j]
                M[k, i, j] = s
                M[k, j, i] = s


@register("d-linucb", "D-LinUCB: discounted LinUCB for drifting rewards (Russac et al. 2019)")
class DiscountedLinUCB(LinearAgent):
    """D-LinUCB: LinUCB on exponentially discounted statistics (Russac, Vernade, Cappé 2019, Algorithm 1).

    Per option, with ``V_0 = Ṽ_0 = λI`` and every ``update`` call one time step (Russac, Vernade, Cappé, NeurIPS 2019)::

        V_t = γ V_{t−1} + x xᵀ + (1−γ) λ I          (x xᵀ only if the option's reward was observed)
        Ṽ_t = γ² Ṽ_{t−1} + x xᵀ + (1−γ²) λ I        (the paper's recursion; the official code's
        b_t = γ b_{t−1} + r x                         γ²·V in place of γ²·Ṽ is not reproduced)
        index = θ̂ᵀx + α·β_{t−1}·sqrt(xᵀ V⁻¹ Ṽ V⁻¹ x),  θ̂ = V⁻¹ b

    with β from Theorem 1 (see :func:`dlinucb_beta`). Because (1−γ)λI is full rank, V⁻¹ is refreshed
    by a full Cholesky factorisation per option and update (O(K d³) per step; fine for d ≤ 32), then
    ``M = V⁻¹ṼV⁻¹`` is cached so that a decision costs O(K d²). Ties go to the lowest index.

    Parameters
    ----------
    n_actions, n_features
        Number of options K and context length d.
    gamma
        Discount factor γ in (0, 1); memory ≈ 1/(1−γ) steps; theory γ = 1 − (B_T/(dT))^{2/3}.
    alpha
        Extra multiplier α >= 0 of the width (the paper has α = 1; the official code exposes it).
    ridge
        Regularisation λ > 0.
    delta
        Confidence level δ in (0, 1) of β.
    noise_sigma
        Sub-Gaussian noise level σ >= 0 of the rewards.
    theta_bound
        Bound S >= 0 on ‖θ‖₂.
    context_bound
        Bound L > 0 on ‖x‖₂.
    seed
        Seed of the agent's generator (unused by the decisions).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> agent = DiscountedLinUCB(n_actions=2, n_features=2, gamma=0.95, alpha=0.1, seed=0)
    >>> late = 0
    >>> for t in range(600):
    ...     best = 0 if t < 300 else 1           # the better option switches at t = 300
    ...     x = np.array([1.0, rng.random()])
    ...     a = agent.act(x)
    ...     late += int(t >= 500 and a == best)
    ...     _ = agent.update(x, a, float(a == best) + 0.1 * rng.normal())
    >>> print(late)  # best-option picks in the last 100 steps
    100

    References
    ----------
    Y. Russac, C. Vernade, O. Cappé, "Weighted Linear Bandits for Non-Stationary Environments",
    NeurIPS 2019, Algorithm 1 and Theorem 1 (arXiv:1909.09146).
    """

    _select_kernel = staticmethod(dlinucb_select)
    _update_kernel = staticmethod(dlinucb_update)
    propensity_kind = "deterministic"
    _n_matrices = 3

    def __init__(self, n_actions: int, n_features: int, gamma: float = 0.99, alpha: float = 1.0,
                 ridge: float = 1.0, delta: float = 0.01, noise_sigma: float = 1.0, theta_bound: float = 1.0,
                 context_bound: float = 1.0, seed=None):
        self.gamma = gamma
        self.alpha = alpha
        self.ridge = ridge
        self.delta = delta
        self.noise_sigma = noise_sigma
        self.theta_bound = theta_bound
        self.context_bound = context_bound
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("gamma", self.gamma, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        check_real("alpha", self.alpha, lo=0.0)
        check_real("ridge", self.ridge, lo=0.0, lo_open=True)
        check_real("delta", self.delta, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        check_real("noise_sigma", self.noise_sigma, lo=0.0)
        check_real("theta_bound", self.theta_bound, lo=0.0)
        check_real("context_bound", self.context_bound, lo=0.0, lo_open=True)

    def _init_state(self) -> tuple:
        k, d = self.n_actions, self.n_features
        fcfg = np.array([self.gamma, self.alpha, self.ridge, self.delta, self.noise_sigma, self.theta_bound,
                         self.context_bound], dtype=np.float64)
        icfg = np.zeros(1, dtype=np.int64)  # time steps so far
        V, Vinv, b, theta, _, work = ridge_state(k, d, float(self.ridge))
        M = Vinv.copy()  # V⁻¹ṼV⁻¹ = I/λ at the start
        return fcfg, icfg, V, V.copy(), b, theta, M, np.zeros((2, d, d)), work

    def _state_names(self) -> tuple[str, ...]:
        return ("parameters", "time steps", "V", "Ṽ", "b", "θ", "V⁻¹ṼV⁻¹", "scratch", "scratch")

    def _check_state(self, c) -> None:
        c.config("s0")
        c.counts("s1", 0, what="time steps")
        c.spd("s2", "V")
        c.spd("s3", "Ṽ")
        c.finite("s4", "s5")
        c.spd("s6", "V⁻¹ṼV⁻¹")


# ----------------------------------------------------------------------------- SW-LinUCB
@njit(cache=True, fastmath=FASTMATH)
def _add_(A, Ainv, b, k, x, r, sign, work):
    """A_k += sign·xxᵀ, b_k += sign·r x, Sherman–Morrison up/downdate; refactorise if it fails."""
    d = x.shape[0]
    for i in range(d):
        b[k, i] += sign * r * x[i]
        for j in range(d):
            A[k, i, j] += sign * x[i] * x[j]
    ok = sherman_morrison_update_(Ainv[k], x, work) if sign > 0 else sherman_morrison_downdate_(Ainv[k], x, work)
    if not ok:
        refactor_arm_(A, Ainv, k, work)


@njit(cache=True, fastmath=FASTMATH)
def _rebuild_(fcfg, A, Ainv, b, buf_x, buf_r, filled, work):
    """Recompute every option's A, b exactly from the window, and A⁻¹ by Cholesky."""
    n, d = b.shape
    lam = fcfg[1]
    for k in range(n):
        for i in range(d):
            b[k, i] = 0.0
            for j in range(d):
                A[k, i, j] = 0.0
            A[k, i, i] = lam
    for s in range(filled):
        for k in range(n):
            r = buf_r[s, k]
            if r == r:
                for i in range(d):
                    b[k, i] += r * buf_x[s, i]
                    for j in range(d):
                        A[k, i, j] += buf_x[s, i] * buf_x[s, j]
    for k in range(n):
        refactor_arm_(A, Ainv, k, work)


@njit(cache=True, fastmath=FASTMATH)
def swlinucb_update(state, x, a, r, rewards):
    """Drop the step leaving the window (downdate), add the new one (update); rebuild every w steps."""
    fcfg, icfg, A, Ainv, b, theta, since, work, buf_x, buf_r = state
    n, d = theta.shape
    w, pos, filled = icfg[0], icfg[1], icfg[2]
    if filled == w:
        for k in range(n):
            old = buf_r[pos, k]
            if old == old:
                _add_(A, Ainv, b, k, buf_x[pos], old, -1.0, work)
    for i in range(d):
        buf_x[pos, i] = x[i]
    for k in range(n):
        rk = observed_reward(k, a, r, rewards)
        buf_r[pos, k] = rk
        if rk == rk:
            _add_(A, Ainv, b, k, x, rk, 1.0, work)
    icfg[1] = (pos + 1) % w
    if filled < w:
        icfg[2] = filled + 1
    icfg[3] += 1
    if icfg[3] >= icfg[4]:
        _rebuild_(fcfg, A, Ainv, b, buf_x, buf_r, icfg[2], work)
        icfg[3] = 0
    for k in range(n):
        matvec_(Ainv[k], b[k], theta[k])


@njit(cache=True, fastmath=FASTMATH)
def swlinucb_select(state, x, u):
    """argmax_a θ_aᵀx + α·sqrt(xᵀA_a⁻¹x) over the window's statistics; lowest index on ties."""
    fcfg, icfg, A, Ainv, b, theta, since, work, buf_x, buf_r = state
    alpha = fcfg[0]
    best = 0
    best_p = -math.inf
    for k in range(theta.shape[0]):
        q = quad_form(Ainv[k], x)
        p = dot(theta[k], x) + alpha * math.sqrt(q if q > 0.0 else 0.0)
        if p > best_p:
            best_p = p
            best = k
    return best


@register("sw-linucb", "SW-LinUCB: sliding-window LinUCB for drifting rewards (Cheung et al. 2019)")
class SlidingWindowLinUCB(LinearAgent):
    """SW-LinUCB: LinUCB on the last ``window`` time steps (Cheung, Simchi-Levi, Zhu 2019).

    Per option ``A_a = λI + Σ x xᵀ`` and ``b_a = Σ r x`` over the observed rewards of the last ``w``
    ``update`` calls (one global ring buffer of (x, rewards) holds them); the index is
    ``θ_aᵀx + α·sqrt(xᵀA_a⁻¹x)``, ties to the lowest index. The paper's width is
    ``α = β = sqrt(λ)S + R·sqrt(d·ln((1 + wL²/λ)/δ))`` (Cheung, Simchi-Levi, Zhu, AISTATS 2019); here α is given directly.

    A step leaving the window is removed by a Sherman–Morrison *downdate*, the new one added by an
    update (O(d²) each). Downdates are fragile, so A, b are recomputed exactly from the buffer and A⁻¹
    refactorised (Cholesky) every ``rebuild_every`` steps (default ``window``; O(d²) amortised), and
    at once for an option whose up/downdate denominator is not positive.

    Parameters
    ----------
    n_actions, n_features
        Number of options K and context length d.
    window
        Window length w >= 1 in time steps (theory: w = (dT/B_T)^{2/3}).
    alpha
        Width α >= 0.
    ridge
        Ridge λ > 0.
    rebuild_every
        Steps between exact rebuilds from the buffer (>= 1; ``None`` = ``window``).
    seed
        Seed of the agent's generator (unused by the decisions).

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> agent = SlidingWindowLinUCB(n_actions=2, n_features=2, window=100, alpha=0.1, seed=0)
    >>> late = 0
    >>> for t in range(600):
    ...     best = 0 if t < 300 else 1           # the better option switches at t = 300
    ...     x = np.array([1.0, rng.random()])
    ...     a = agent.act(x)
    ...     late += int(t >= 500 and a == best)
    ...     _ = agent.update(x, a, float(a == best) + 0.1 * rng.normal())
    >>> print(late)  # best-option picks in the last 100 steps
    100

    References
    ----------
    W. C. Cheung, D. Simchi-Levi, R. Zhu, "Learning to Optimize under Non-Stationarity", AISTATS 2019,
    PMLR 89 (arXiv:1810.03024), SW-UCB.
    """

    _select_kernel = staticmethod(swlinucb_select)
    _update_kernel = staticmethod(swlinucb_update)
    propensity_kind = "deterministic"

    def __init__(self, n_actions: int, n_features: int, window: int = 1000, alpha: float = 1.0,
                 ridge: float = 1.0, rebuild_every: int | None = None, seed=None):
        self.window = window
        self.alpha = alpha
        self.ridge = ridge
        self.rebuild_every = rebuild_every
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_integer("window", self.window, 1, MAX_STEPS)
        check_real("alpha", self.alpha, lo=0.0)
        check_real("ridge", self.ridge, lo=0.0, lo_open=True)
        if self.rebuild_every is not None:
            check_integer("rebuild_every", self.rebuild_every, 1, MAX_STEPS)

    def _init_state(self) -> tuple:
        k, d, w = self.n_actions, self.n_features, int(self.window)
        fcfg = np.array([self.alpha, self.ridge], dtype=np.float64)
        rebuild = w if self.rebuild_every is None else int(self.rebuild_every)
        icfg = np.array([w, 0, 0, 0, rebuild], dtype=np.int64)  # window, next slot, filled, since rebuild, period
        return (fcfg, icfg, *ridge_state(k, d, float(self.ridge)), np.zeros((w, d)), np.full((w, k), np.nan))

    def _state_size(self) -> tuple[str, int]:
        names, size = super()._state_size()
        return "window, " + names, size + int(self.window) * (self.n_features + self.n_actions)

    def _state_names(self) -> tuple[str, ...]:
        return ("alpha, ridge", "window, next slot, filled, steps since rebuild, rebuild period", "A", "A⁻¹", "b",
                "θ", "unused", "scratch", "window contexts", "window rewards")

    def _check_state(self, c) -> None:
        c.config("s0")
        w, rebuild = int(self.window), int(c.fresh["s1"][4])
        icfg = c.arrays["s1"]
        if icfg[0] != w or icfg[4] != rebuild:
            c.fail("s1", "does not match the agent's parameters (configuration arrays cannot change)")
        c.counts("s1", 0, w - 1, index=slice(1, 2), what="the next slot")
        c.counts("s1", 0, w, index=slice(2, 3), what="the filled count")
        c.counts("s1", 0, rebuild, index=slice(3, 4), what="steps since rebuild")
        c.spd("s2", "A")
        c.spd("s3", "A⁻¹")
        c.finite("s4", "s5", "s8")
        c.counts("s6", 0)
        c.not_inf("s9")
