"""ε-greedy with one ridge-regression reward model per option."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._feedback import FEEDBACK_MODES
from ._linalg import FASTMATH, dot, observed_reward, ridge_state, ridge_update_arm_, view1, view2, view3
from ._linear_base import LinearAgent, step_ok
from ._params import MAX_STEPS, check_integer, check_real
from .registry import register

__all__ = ["EpsilonGreedy"]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _epsilon(fcfg, icfg):
    """ε_t: ε, or ε / (1 + decay·t) when a decay is given."""
    eps = fcfg[0]
    if fcfg[2] == fcfg[2]:  # decay given
        eps = eps / (1.0 + fcfg[2] * icfg[1])
    return eps


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _greedy(theta, x):
    """argmax θ_aᵀx, lowest index on ties."""
    best = 0
    best_p = -math.inf
    for k in range(theta.shape[0]):
        p = dot(theta[k], x)
        if p > best_p:
            best_p = p
            best = k
    return best


@njit(cache=True, fastmath=FASTMATH)
def epsilon_greedy_select(state, x, u):
    """With probability ε_t (``u[0] < ε_t``) the option ``floor(u[1]·K)``, else argmax θ_aᵀx (lowest index)."""
    fcfg, icfg, A, Ainv, b, theta, since, work = state
    n = theta.shape[0]
    if u[0] < _epsilon(fcfg, icfg):
        a = int(u[1] * n)
        return a if a < n else n - 1
    return _greedy(theta, x)


@njit(cache=True, fastmath=FASTMATH)
def epsilon_greedy_prob(state, x, u, a):
    """Probability that :func:`epsilon_greedy_select` picks ``a``: ε_t/K, plus 1 − ε_t for the greedy option."""
    fcfg, icfg, A, Ainv, b, theta, since, work = state
    n = theta.shape[0]
    eps = min(_epsilon(fcfg, icfg), 1.0)
    return eps / n + (1.0 - eps if a == _greedy(theta, x) else 0.0)


@njit(cache=True, fastmath=FASTMATH)
def epsilon_greedy_update(state, x, a, r, rewards):
    """Ridge step for every option whose reward is observed; counts the decision for the ε schedule."""
    fcfg, icfg, A, Ainv, b, theta, since, work = state
    icfg[1] += 1
    for k in range(theta.shape[0]):
        rk = observed_reward(k, a, r, rewards)
        if rk == rk:
            ridge_update_arm_(A, Ainv, b, theta, since, k, x, rk, icfg[0], work)


@njit(cache=True)
def epsilon_greedy_views(fbuf, ibuf):
    """The state tuple rebuilt from its packed buffers (views; layout of ``base.pack_state``)."""
    d, k = ibuf[0], ibuf[1]
    return (view1(fbuf, ibuf[2], 3), view1(ibuf, ibuf[3], 2), view3(fbuf, ibuf[4], k, d, d),
            view3(fbuf, ibuf[5], k, d, d), view2(fbuf, ibuf[6], k, d), view2(fbuf, ibuf[7], k, d),
            view1(ibuf, ibuf[8], k), view1(fbuf, ibuf[9], d))


@njit(cache=True)
def epsilon_greedy_step_select(fbuf, ibuf, x, u):
    """:func:`epsilon_greedy_select` on packed state, or -1 if ``x`` fails the step checks."""
    if not step_ok(ibuf, x, 0, 0.0):
        return -1
    return epsilon_greedy_select(epsilon_greedy_views(fbuf, ibuf), x, u)


@njit(cache=True)
def epsilon_greedy_step_update(fbuf, ibuf, x, a, r, rewards):
    """:func:`epsilon_greedy_update` on packed state; False (nothing done) if the step checks fail."""
    if not step_ok(ibuf, x, a, r):
        return False
    epsilon_greedy_update(epsilon_greedy_views(fbuf, ibuf), x, a, r, rewards)
    return True


@register("epsilon-greedy", "epsilon-greedy over per-option ridge-regression reward models")
class EpsilonGreedy(LinearAgent):
    """ε-greedy with a linear (ridge) reward model per option.

    With probability ε_t the agent explores an option uniformly at random, otherwise it exploits
    ``argmax_a θ_aᵀx`` (ties: lowest index), where ``θ_a`` is option ``a``'s ridge estimate
    ``(λI + Σ x xᵀ)⁻¹ Σ r x`` — the same statistics and numerically safe update as :class:`LinUCB`.
    Exploration rate: ``ε_t = ε`` (``decay=None``) or ``ε_t = ε / (1 + decay·t)`` with ``t`` the number
    of ``update`` calls so far (a 1/t schedule in the spirit of Auer et al.'s ε_n-greedy; the constant
    is our choice). Two uniforms per decision.

    Feedback: every option whose reward is observed is updated (see :mod:`.linucb`).

    Parameters
    ----------
    n_actions, n_features
        Number of options K and context length d.
    epsilon
        Exploration probability ε in [0, 1].
    ridge
        Ridge λ > 0.
    decay
        ``None`` for a constant ε, or a rate >= 0 of the 1/t decay.
    refactor_every
        Updates of an option between refactorisations of its inverse (>= 1).
    seed
        Seed of the agent's generator.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> theta = rng.normal(size=(3, 4))
    >>> agent = EpsilonGreedy(n_actions=3, n_features=4, epsilon=0.05, seed=0)
    >>> hits = 0
    >>> for _ in range(2000):
    ...     x = rng.normal(size=4)
    ...     a = agent.act(x)
    ...     hits += int(a == int(np.argmax(theta @ x)))
    ...     _ = agent.update(x, a, float(theta[a] @ x + 0.1 * rng.normal()))
    >>> print(hits)  # decisions (of 2000) that picked the best option
    1905

    References
    ----------
    R. S. Sutton, A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., 2018, §2.2–2.4.
    P. Auer, N. Cesa-Bianchi, P. Fischer, "Finite-time Analysis of the Multiarmed Bandit Problem",
    Machine Learning 47:235–256, 2002 (ε_n-greedy, Theorem 3).
    """

    n_uniforms = 2
    _select_kernel = staticmethod(epsilon_greedy_select)
    _update_kernel = staticmethod(epsilon_greedy_update)
    _prob_kernel = staticmethod(epsilon_greedy_prob)
    propensity_kind = "stochastic"
    feedback_modes = FEEDBACK_MODES  # explores: forwards, so it also learns under label_on_forward / proxy
    _step_select = staticmethod(epsilon_greedy_step_select)
    _step_update = staticmethod(epsilon_greedy_step_update)

    def __init__(self, n_actions: int, n_features: int, epsilon: float = 0.1, ridge: float = 1.0,
                 decay: float | None = None, refactor_every: int = 1000, seed=None):
        self.epsilon = epsilon
        self.ridge = ridge
        self.decay = decay
        self.refactor_every = refactor_every
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_real("ridge", self.ridge, lo=0.0, lo_open=True)
        check_real("decay", self.decay, lo=0.0, optional=True)
        check_integer("refactor_every", self.refactor_every, 1, MAX_STEPS)

    def _init_state(self) -> tuple:
        decay = math.nan if self.decay is None else float(self.decay)
        fcfg = np.array([self.epsilon, self.ridge, decay], dtype=np.float64)
        icfg = np.array([self.refactor_every, 0], dtype=np.int64)
        return (fcfg, icfg, *ridge_state(self.n_actions, self.n_features, float(self.ridge)))

    def _state_names(self) -> tuple[str, ...]:
        return ("epsilon, ridge, decay", "refactor_every, updates", "A", "A⁻¹", "b", "θ",
                "updates since refactorisation", "scratch")

    def _check_state(self, c) -> None:
        c.config("s0")
        if c.arrays["s1"][0] != self.refactor_every:
            c.fail("s1", "does not match the agent's parameters (configuration arrays cannot change)")
        c.counts("s1", 0, index=slice(1, 2), what="update count")
        c.spd("s2", "A")
        c.spd("s3", "A⁻¹")
        c.finite("s4", "s5")
        c.counts("s6", 0, int(self.refactor_every))

    @property
    def coef_(self) -> np.ndarray:
        """(n_actions, n_features) current ridge estimates θ_a (a copy)."""
        return self._state[5].copy()
