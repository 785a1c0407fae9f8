"""Linear Thompson sampling (disjoint): one Gaussian posterior per option, sampled via its Cholesky factor."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._feedback import FEEDBACK_MODES
from ._linalg import (
    FASTMATH,
    backward_solve_,
    cholesky_update_,
    forward_solve_,
    observed_reward,
    view1,
    view2,
    view3,
)
from ._linear_base import LinearAgent, step_ok
from ._params import check_real
from ._propensity import gaussian_argmax_probs
from .registry import register

__all__ = ["LinTS"]


@njit(cache=True, fastmath=FASTMATH)
def box_muller_(u, z):
    """Standard normals ``z`` from uniform pairs: ``z[2p], z[2p+1] = ρ·cos φ, ρ·sin φ`` with
    ``ρ = sqrt(-2 ln(1 − u[2p]))`` and ``φ = 2π·u[2p+1]`` (1 − u in (0, 1]: the log is finite)."""
    for p in range(z.shape[0] // 2):
        rad = math.sqrt(-2.0 * math.log(1.0 - u[2 * p]))
        ang = 2.0 * math.pi * u[2 * p + 1]
        z[2 * p] = rad * math.cos(ang)
        z[2 * p + 1] = rad * math.sin(ang)


@njit(cache=True, fastmath=FASTMATH)
def lints_select(state, x, u):
    """Draw θ̃_a = μ_a + v·L_a⁻ᵀz_a (z_a ~ N(0, I) from ``u``) per option; argmax θ̃_aᵀx, lowest index on ties."""
    fcfg, L, f, mu, work, z = state
    v = fcfg[0]
    n, d = mu.shape
    box_muller_(u, z)
    w = work[1]
    best = 0
    best_p = -math.inf
    for k in range(n):
        backward_solve_(L[k], z[k * d:(k + 1) * d], w)
        p = 0.0
        for i in range(d):
            p += (mu[k, i] + v * w[i]) * x[i]
        if p > best_p:
            best_p = p
            best = k
    return best


@njit(cache=True, fastmath=FASTMATH)
def lints_update(state, x, a, r, rewards):
    """B_k += xxᵀ (Cholesky rank-1 update), f_k += r x, μ_k = B_k⁻¹f_k, for every observed option k."""
    fcfg, L, f, mu, work, z = state
    n, d = mu.shape
    for k in range(n):
        rk = observed_reward(k, a, r, rewards)
        if rk == rk:
            cholesky_update_(L[k], x, work[0])
            for i in range(d):
                f[k, i] += rk * x[i]
            forward_solve_(L[k], f[k], work[0])
            backward_solve_(L[k], work[0], mu[k])


@njit(cache=True)
def lints_views(fbuf, ibuf):
    """The state tuple rebuilt from its packed buffers (views; layout of ``base.pack_state``)."""
    d, k = ibuf[0], ibuf[1]
    m = k * d + (k * d) % 2
    return (view1(fbuf, ibuf[2], 2), view3(fbuf, ibuf[3], k, d, d), view2(fbuf, ibuf[4], k, d),
            view2(fbuf, ibuf[5], k, d), view2(fbuf, ibuf[6], 2, d), view1(fbuf, ibuf[7], m))


@njit(cache=True)
def lints_step_select(fbuf, ibuf, x, u):
    """:func:`lints_select` on packed state, or -1 if ``x`` fails the step checks."""
    if not step_ok(ibuf, x, 0, 0.0):
        return -1
    return lints_select(lints_views(fbuf, ibuf), x, u)


@njit(cache=True)
def lints_step_update(fbuf, ibuf, x, a, r, rewards):
    """:func:`lints_update` on packed state; False (nothing done) if the step checks fail."""
    if not step_ok(ibuf, x, a, r):
        return False
    lints_update(lints_views(fbuf, ibuf), x, a, r, rewards)
    return True


@register("lints", "linear Thompson sampling (disjoint Gaussian posteriors; Agrawal & Goyal 2013)")
class LinTS(LinearAgent):
    """Linear Thompson sampling with one model per option (Agrawal & Goyal 2013, Algorithm 1, disjoint).

    Option ``a`` keeps ``B_a = λI + Σ x xᵀ`` as its lower Cholesky factor ``L_a`` (rank-1 updates,
    O(d²), SPD by construction), ``f_a = Σ r x`` and ``μ_a = B_a⁻¹f_a``. Each decision draws
    ``θ̃_a = μ_a + v·L_a⁻ᵀz_a`` with ``z_a ~ N(0, I_d)``, so ``θ̃_a ~ N(μ_a, v²B_a⁻¹)``
    (Agrawal & Goyal, ICML 2013), and plays ``argmax_a θ̃_aᵀx`` (ties: lowest index).

    The normals come from the ``n_uniforms = 2·ceil(d·K/2)`` uniforms of the decision by Box–Muller
    (normal ``j`` of option ``a`` is number ``a·d + j``), so the fused path reproduces the step path.

    Feedback: every option whose reward is observed is updated (see :mod:`.linucb`).

    Parameters
    ----------
    n_actions, n_features
        Number of options K and context length d.
    v
        Posterior scale v > 0 (theory: R·sqrt(24 d ln(1/δ)/ε); in practice 0.01–1).
    ridge
        Ridge λ > 0 (prior precision).
    seed
        Seed of the agent's generator.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> theta = rng.normal(size=(3, 4))
    >>> agent = LinTS(n_actions=3, n_features=4, v=0.1, seed=0)
    >>> regret = 0.0
    >>> for _ in range(2000):
    ...     x = rng.normal(size=4)
    ...     a = agent.act(x)
    ...     regret += float((theta @ x).max() - theta[a] @ x)
    ...     _ = agent.update(x, a, float(theta[a] @ x + 0.1 * rng.normal()))
    >>> print(round(regret, 1))  # cumulative regret over 2000 decisions
    3.7

    References
    ----------
    S. Agrawal, N. Goyal, "Thompson Sampling for Contextual Bandits with Linear Payoffs", ICML 2013,
    PMLR 28(3):127–135, Algorithm 1 (arXiv:1209.3352).
    """

    _select_kernel = staticmethod(lints_select)
    _update_kernel = staticmethod(lints_update)
    propensity_kind = "stochastic"  # Gaussian scores: probs() integrates (Python path; no prob kernel)
    feedback_modes = FEEDBACK_MODES  # explores: forwards, so it also learns under label_on_forward / proxy
    _n_matrices = 1
    _step_select = staticmethod(lints_step_select)
    _step_update = staticmethod(lints_step_update)

    def __init__(self, n_actions: int, n_features: int, v: float = 0.1, ridge: float = 1.0, seed=None):
        self.v = v
        self.ridge = ridge
        super().__init__(n_actions, n_features, seed)

    def probs(self, context) -> np.ndarray:
        """(n_actions,) probability of each option: its sampled score θ̃_aᵀx ~ N(μ_aᵀx, v²·xᵀB_a⁻¹x)
        is the largest (independent options; :func:`~idnbandit.agents._propensity.gaussian_argmax_probs`)."""
        x = self._check_context(context)
        fcfg, L, f, mu, work, z = self._state
        mean = mu @ x
        std = np.array([fcfg[0] * np.linalg.norm(np.linalg.solve(L[k], x)) for k in range(self.n_actions)])
        return gaussian_argmax_probs(mean, std)

    def _check_params(self) -> None:
        check_real("v", self.v, lo=0.0, lo_open=True)
        check_real("ridge", self.ridge, lo=0.0, lo_open=True)

    @property
    def n_uniforms(self) -> int:  # type: ignore[override]
        m = self.n_actions * self.n_features
        return m + m % 2

    def _state_names(self) -> tuple[str, ...]:
        return ("v, ridge", "Cholesky factor of B", "f", "μ", "scratch", "scratch")

    def _check_state(self, c) -> None:
        c.config("s0")
        c.cholesky_factor("s1", "Cholesky factor of B")
        c.finite("s2", "s3")

    def _init_state(self) -> tuple:
        k, d = self.n_actions, self.n_features
        fcfg = np.array([self.v, self.ridge], dtype=np.float64)
        L = np.repeat((math.sqrt(self.ridge) * np.eye(d))[None], k, axis=0)
        z = np.zeros(self.n_uniforms)  # scratch: the decision's standard normals
        return fcfg, L, np.zeros((k, d)), np.zeros((k, d)), np.zeros((2, d)), z
