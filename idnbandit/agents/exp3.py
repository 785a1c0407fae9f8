"""EXP3-IX over the options and EXP4-IX over confidence-threshold experts (adversarial bandits).

References: P. Auer, N. Cesa-Bianchi, Y. Freund, R. E. Schapire, "The Nonstochastic Multiarmed
Bandit Problem", SIAM J. Comput. 32(1), 2002 (EXP3 Fig. 1, EXP4 §7); G. Neu, "Explore no more:
Improved high-probability regret bounds for non-stochastic bandits", NeurIPS 2015 (EXP3-IX, the
implicit-exploration estimator).

Both use the **IX** variant (no explicit uniform mixing; loss estimates ℓ·1{chosen}/(p + γ) with
γ = η/2) with the anytime schedule η_t = √(2 ln N / (K t)) (N arms or experts, K arms) — the
update and the division by (p + γ) are verified against two public implementations; the fixed-T
constants are from memory. Rewards are mapped to losses in [0, 1] with the affine map of
:mod:`._hi_common` (``reward_min``/``reward_max``, default [-1, 1]); the learning rate applied is
η_t/R̂ with R̂ the largest loss observed so far (``sc[2]``; the loss scale of :mod:`._hi_common`).

Feedback assumed: **bandit** — only the chosen option's reward ``r``; NaN (nothing observed) means
no update. Rewards of other options (full feedback) are ignored. The choice probability p is
recomputed at update time from the current weights: exact without feedback delay.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._feedback import FEEDBACK_MODES, LEARNS_FROM_OWN_REWARD
from ._hi_common import (
    HIAgent,
    check_int,
    check_optional_positive,
    check_reward_range,
    clip01,
    loss_from_reward,
    loss_scale,
    observe_scale_,
    two_way_prob,
)
from ._params import MAX_GRID
from .base import Agent
from .registry import register

__all__ = ["EXP3", "EXP4"]


@njit(cache=True)
def _softmax_neg(L, eta, out):
    m = L[0]
    for k in range(1, L.shape[0]):
        if L[k] < m:
            m = L[k]
    s = 0.0
    for k in range(L.shape[0]):
        out[k] = math.exp(-eta * (L[k] - m))
        s += out[k]
    for k in range(L.shape[0]):
        out[k] /= s


@njit(cache=True)
def _eta(fixed, n, k_arms, t):
    if not math.isnan(fixed):
        return fixed
    return math.sqrt(2.0 * math.log(n) / (k_arms * t))


@njit(cache=True)
def exp3_select(state, x, u):
    fcfg, L, prob, tt, sc = state
    k = L.shape[0]
    _softmax_neg(L, _eta(fcfg[2], k, k, tt[0] + 1) / loss_scale(sc), prob)
    c = 0.0
    for i in range(k):
        c += prob[i]
        if u[0] < c:
            return i
    return k - 1


@njit(cache=True)
def exp3_prob(state, x, u, a):
    """Probability that :func:`exp3_select` picks ``a`` (the softmax it samples from, recomputed)."""
    fcfg, L, prob, tt, sc = state
    k = L.shape[0]
    _softmax_neg(L, _eta(fcfg[2], k, k, tt[0] + 1) / loss_scale(sc), prob)
    return prob[a]


@njit(cache=True)
def exp3_update(state, x, a, r, rewards):
    fcfg, L, prob, tt, sc = state
    k = L.shape[0]
    t = tt[0] + 1
    tt[0] = t
    if math.isnan(r):
        return
    eta = _eta(fcfg[2], k, k, t)
    _softmax_neg(L, eta / loss_scale(sc), prob)
    loss = loss_from_reward(r, fcfg[0], fcfg[1])
    L[a] += loss / (prob[a] + 0.5 * eta)
    observe_scale_(sc, loss)


@register("exp3", "EXP3-IX over the options (adversarial bandit, bandit feedback)")
class EXP3(Agent):
    """EXP3-IX (Neu 2015) over the ``n_actions`` options; ignores the context.

    p_t(i) ∝ exp(-η_t L̃_i), L̃_a += ℓ_a / (p_t(a) + η_t/2) for the chosen a (see the module docstring).

    Parameters
    ----------
    n_actions, n_features
        Sizes.
    eta
        Fixed learning rate; ``None`` (default): η_t = √(2 ln K / (K t)).
    reward_min, reward_max
        Reward range of the reward → loss map.
    seed
        Seed of the agent's generator (one uniform per decision).

    Examples
    --------
    >>> agent = EXP3(n_actions=3, n_features=1, seed=0)
    >>> for _ in range(300):
    ...     a = agent.act([0.0])
    ...     _ = agent.update([0.0], a, 1.0 if a == 2 else -1.0)
    >>> agent.act([0.0])
    2
    """

    n_uniforms = 1
    _select_kernel = staticmethod(exp3_select)
    _update_kernel = staticmethod(exp3_update)
    _prob_kernel = staticmethod(exp3_prob)
    propensity_kind = "stochastic"
    feedback_modes = LEARNS_FROM_OWN_REWARD  # a local choice reports nothing under label_on_forward: biased

    def __init__(self, n_actions: int, n_features: int, eta: float | None = None, reward_min: float = -1.0,
                 reward_max: float = 1.0, seed=None):
        self.eta = eta
        self.reward_min = reward_min
        self.reward_max = reward_max
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_optional_positive("eta", self.eta)
        check_reward_range(self.reward_min, self.reward_max)

    def _init_state(self) -> tuple:
        fcfg = np.array([self.reward_min, self.reward_max, math.nan if self.eta is None else self.eta])
        k = self.n_actions
        return fcfg, np.zeros(k), np.full(k, 1.0 / k), np.zeros(1, dtype=np.int64), np.zeros(3)

    def _state_names(self) -> tuple[str, ...]:
        return ("configuration", "cumulative loss estimates", "scratch (probabilities)", "rounds", "loss scale")

    def _check_state(self, c) -> None:
        c.config("s0")
        c.finite("s1", "s2")
        c.counts("s3", 0, what="the number of rounds")
        c.finite("s4")
        c.in_range("s4", 0.0, what="loss statistics")


@njit(cache=True)
def _p_local(theta, L, eta, p, q):
    _softmax_neg(L, eta, q)
    s = 0.0
    for j in range(theta.shape[0]):
        if theta[j] <= p:
            s += q[j]
    return s


@njit(cache=True)
def exp4_select(state, x, u):
    icfg, fcfg, theta, L, q, tt, sc = state
    eta = _eta(fcfg[2], theta.shape[0], 2.0, tt[0] + 1) / loss_scale(sc)
    if u[0] < _p_local(theta, L, eta, clip01(x[icfg[0]]), q):
        return icfg[1]
    return icfg[2]


@njit(cache=True)
def exp4_prob(state, x, u, a):
    """Probability that :func:`exp4_select` picks ``a`` (the experts' mass on serving locally, recomputed)."""
    icfg, fcfg, theta, L, q, tt, sc = state
    eta = _eta(fcfg[2], theta.shape[0], 2.0, tt[0] + 1) / loss_scale(sc)
    return two_way_prob(_p_local(theta, L, eta, clip01(x[icfg[0]]), q), a, icfg[1], icfg[2])


@njit(cache=True)
def exp4_update(state, x, a, r, rewards):
    icfg, fcfg, theta, L, q, tt, sc = state
    t = tt[0] + 1
    tt[0] = t
    local, forward = icfg[1], icfg[2]
    if math.isnan(r) or (a != local and a != forward):
        return
    eta = _eta(fcfg[2], theta.shape[0], 2.0, t)
    p = clip01(x[icfg[0]])
    pl = _p_local(theta, L, eta / loss_scale(sc), p, q)
    pa = pl if a == local else 1.0 - pl
    loss = loss_from_reward(r, fcfg[0], fcfg[1])
    est = loss / (pa + 0.5 * eta)
    observe_scale_(sc, loss)
    for j in range(theta.shape[0]):
        if (theta[j] <= p) == (a == local):  # expert j recommended the chosen option
            L[j] += est


@register("exp4", "EXP4-IX over a grid of confidence-threshold experts (serve iff p >= θ)")
class EXP4(HIAgent):
    """EXP4-IX over ``n_experts`` threshold experts θ_j = j/(n_experts-1): local iff p >= θ_j.

    Auer et al. 2002 (EXP4) with Neu's implicit exploration (module docstring). Each expert's
    advice is deterministic (one-hot), so P(local) = Σ_{j: θ_j <= p} q_j; after the chosen option's
    loss ℓ is observed, every expert that recommended it is charged ℓ / (P(option) + η_t/2).
    η_t = √(2 ln N / (2 t)) (K = 2 options in play). O(N) per decision.

    Feedback assumed: **bandit** (the chosen option's reward only); works unchanged under
    label_on_forward or full feedback, ignoring the extra rewards.

    Parameters
    ----------
    n_actions, n_features
        Sizes (n_actions >= 2; only the local and forward options are chosen).
    n_experts
        Number of thresholds on the uniform grid over [0, 1] (>= 2).
    eta
        Fixed learning rate; ``None`` (default) uses the anytime schedule.
    confidence_index, local_action, forward_action, reward_min, reward_max
        See :class:`~idnbandit.agents._hi_common.HIAgent`.
    seed
        Seed of the agent's generator (one uniform per decision).

    Examples
    --------
    >>> agent = EXP4(n_actions=2, n_features=1, n_experts=11, seed=0)
    >>> agent.act([0.3]) in (0, 1)
    True
    """

    n_uniforms = 1
    _select_kernel = staticmethod(exp4_select)
    _update_kernel = staticmethod(exp4_update)
    _prob_kernel = staticmethod(exp4_prob)
    propensity_kind = "stochastic"
    feedback_modes = FEEDBACK_MODES  # randomised over threshold experts: learns from either side

    def __init__(self, n_actions: int, n_features: int, n_experts: int = 101, eta: float | None = None,
                 confidence_index: int = 0, local_action: int = 0, forward_action: int = -1,
                 reward_min: float = -1.0, reward_max: float = 1.0, seed=None):
        self.n_experts = n_experts
        self.eta = eta
        self.confidence_index = confidence_index
        self.local_action = local_action
        self.forward_action = forward_action
        self.reward_min = reward_min
        self.reward_max = reward_max
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        self._check_hi_params()
        check_int("n_experts", self.n_experts, 2, MAX_GRID, "each costs memory and time per decision")
        check_optional_positive("eta", self.eta)

    def _init_state(self) -> tuple:
        n = int(self.n_experts)
        icfg = np.array([self._ci, self._local, self._forward], dtype=np.int64)
        fcfg = np.array([self.reward_min, self.reward_max, math.nan if self.eta is None else self.eta])
        return (icfg, fcfg, np.linspace(0.0, 1.0, n), np.zeros(n), np.full(n, 1.0 / n), np.zeros(1, dtype=np.int64),
                np.zeros(3))

    def _state_size(self) -> tuple[str, int]:
        return "n_experts", 3 * int(self.n_experts) + 16

    def _state_names(self) -> tuple[str, ...]:
        return ("configuration", "configuration", "expert thresholds", "cumulative loss estimates",
                "scratch (probabilities)", "rounds", "loss scale")

    def _check_state(self, c) -> None:
        c.config("s0", "s1", "s2")
        c.finite("s3", "s4")
        c.counts("s5", 0, what="the number of rounds")
        c.finite("s6")
        c.in_range("s6", 0.0, what="loss statistics")
