"""HI-LCB and HI-LCB-lite: pessimistic (lower-confidence-bound) serve-or-forward rules.

Reference: Chattopadhyay et al., arXiv 2508.08985 (2025; v1/v3 abstracts read). Sources and tags:
docs/agents_hi.md.

**Reconstruction notice.** Only the abstract could be read ([V:S4]). Verified: a local and a remote
model; P(local correct | confidence c) = ψ(c) with ψ increasing; both policies use the UCB framework
and reach order-optimal O(log T) regret; HI-LCB-lite costs O(1) per sample; offloading costs may
change over time. The rules below are our reconstruction [R]:

* the oracle accepts iff ψ(c_t) >= 1 - β_t (a threshold policy by monotonicity); accepting reveals
  nothing, so when uncertain, offload ("LCB": pessimism about ψ);
* HI-LCB: for every window [a, c_t] of past labelled confidences a <= c_t, the mean local loss m_a
  of the labelled samples in it is (by monotonicity) an upper bound in expectation on the local loss
  at c_t; UCB = min_a (m_a + R̂·√(α ln t / (2 n_a))); accept iff UCB <= β̂_t (R̂ the observed loss
  scale of :mod:`._hi_common`: Hoeffding's width for losses in [0, R̂]);
* HI-LCB-lite: fixed confidence bins with a (count, sum) pair each and only the current bin's bound.

Implementation choices: confidences are quantised to ``n_bins`` equal bins (HI-LCB: default 1000, a
1e-3 grid standing in for "every past confidence", O(n_bins) per sample and fixed memory; lite:
default 20 bins, O(1)); the window containing c_t includes its whole bin. β̂_t is the running mean
of the observed forward losses (see :mod:`._hi_common`); before the first forward observation and
in bins without labels the rule forwards. Losses come from the reward map of :mod:`._hi_common`, so
the rule reads "accept iff the upper bound on the local loss <= the forward loss", which is ψ(c) >=
1 - β in the pure HI setting. If the paper differs (other confidence widths, another window family,
another treatment of time-varying β_t), only :func:`_local_loss_ucb` and the comparison change.

Feedback: designed for **label_on_forward**. Any observed local loss is used — under full feedback
the labels of locally served requests too (they are unbiased samples of the loss at their
confidence, so no importance weighting is needed). Under ``bandit`` feedback no local label is seen
and the rule forwards forever.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._hi_common import (
    HIAgent,
    check_int,
    check_loss_stats,
    check_positive,
    clip01,
    forward_loss_,
    loss_from_reward,
    loss_scale,
    observe_scale_,
)
from ._params import MAX_GRID
from .registry import register

__all__ = ["HILCB", "HILCBLite"]


@njit(cache=True)
def _bin(p, n_bins):
    b = int(p * n_bins)
    return n_bins - 1 if b >= n_bins else b


@njit(cache=True)
def _local_loss_ucb(cnt, sums, b, t, alpha, lite, scale):
    """Upper confidence bound on the local loss at bin ``b`` (inf without labels).

    Hoeffding width for losses in [0, scale]: scale·√(α ln t / (2n)).
    """
    logt = math.log(max(t, 2))
    if lite:
        n = cnt[b]
        if n == 0.0:
            return math.inf
        return sums[b] / n + scale * math.sqrt(alpha * logt / (2.0 * n))
    best = math.inf
    n = 0.0
    s = 0.0
    for k in range(b, -1, -1):  # windows [a, c_t], a going down
        if cnt[k] == 0.0:
            continue
        n += cnt[k]
        s += sums[k]
        v = s / n + scale * math.sqrt(alpha * logt / (2.0 * n))
        if v < best:
            best = v
    return best


@njit(cache=True)
def lcb_select(state, x, u):
    icfg, fcfg, cnt, sums, tt, fw = state
    if fw[1] == 0.0:
        return icfg[2]
    b = _bin(clip01(x[icfg[0]]), icfg[3])
    ucb = _local_loss_ucb(cnt, sums, b, tt[0] + 1, fcfg[2], icfg[4] != 0, loss_scale(fw))
    if ucb <= fw[0] / fw[1]:
        return icfg[1]
    return icfg[2]


@njit(cache=True)
def lcb_update(state, x, a, r, rewards):
    icfg, fcfg, cnt, sums, tt, fw = state
    tt[0] += 1
    forward_loss_(fw, rewards, icfg[2], fcfg[0], fcfg[1])
    rl = rewards[icfg[1]]
    if not math.isnan(rl):
        b = _bin(clip01(x[icfg[0]]), icfg[3])
        ll = loss_from_reward(rl, fcfg[0], fcfg[1])
        observe_scale_(fw, ll)
        cnt[b] += 1.0
        sums[b] += ll


class _LCBBase(HIAgent):
    _lite = 0
    n_uniforms = 0
    _select_kernel = staticmethod(lcb_select)
    _update_kernel = staticmethod(lcb_update)
    propensity_kind = "deterministic"

    def __init__(self, n_actions: int, n_features: int, alpha: float = 2.0, n_bins: int = 1000,
                 confidence_index: int = 0, local_action: int = 0, forward_action: int = -1,
                 reward_min: float = -1.0, reward_max: float = 1.0, seed=None):
        self.alpha = alpha
        self.n_bins = n_bins
        self.confidence_index = confidence_index
        self.local_action = local_action
        self.forward_action = forward_action
        self.reward_min = reward_min
        self.reward_max = reward_max
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        self._check_hi_params()
        check_positive("alpha", self.alpha)
        check_int("n_bins", self.n_bins, 1, MAX_GRID, "each costs memory and time per decision")

    def _init_state(self) -> tuple:
        icfg = np.array([self._ci, self._local, self._forward, int(self.n_bins), self._lite], dtype=np.int64)
        fcfg = np.array([self.reward_min, self.reward_max, self.alpha], dtype=np.float64)
        nb = int(self.n_bins)
        return (icfg, fcfg, np.zeros(nb), np.zeros(nb), np.zeros(1, dtype=np.int64), np.zeros(3))

    def _state_size(self) -> tuple[str, int]:
        return "n_bins", 2 * int(self.n_bins) + 16

    def _state_names(self) -> tuple[str, ...]:
        return ("configuration", "configuration", "labels per bin", "local-loss sums per bin", "rounds",
                "forward-loss statistics")

    def _check_state(self, c) -> None:
        c.config("s0", "s1")
        c.in_range("s2", 0.0, what="label counts")
        c.integral("s2")
        c.in_range("s3", 0.0, what="loss sums")
        c.counts("s4", 0, what="the number of rounds")
        check_loss_stats(c, "s5")


_PARAMS = """
    Parameters
    ----------
    n_actions, n_features
        Sizes (n_actions >= 2; only the local and forward options are chosen).
    alpha
        Width of the confidence bound √(α ln t / (2n)) (default 2, i.e. √(ln t / n)).
    n_bins
        Number of equal confidence bins (see the module docstring).
    confidence_index, local_action, forward_action, reward_min, reward_max
        See :class:`~idnbandit.agents._hi_common.HIAgent`.
    seed
        Unused by the (deterministic) rule; kept for the protocol.
"""


@register("hi-lcb", "HI-LCB: accept only when a lower confidence bound on local accuracy clears the cost")
class HILCB(_LCBBase):
    __doc__ = """HI-LCB — accept iff the best window upper bound on the local loss is <= the forward loss.

    Chattopadhyay et al. 2025 (reconstruction [R], see the module docstring). O(n_bins) per
    sample. Feedback: label_on_forward; uses every observed local label.
""" + _PARAMS + """
    Examples
    --------
    >>> agent = HILCB(n_actions=2, n_features=1)
    >>> agent.act([0.9])  # nothing learned yet: forward
    1
    >>> for _ in range(50):
    ...     _ = agent.update([0.9], 1, 0.4, rewards=[1.0, 0.4])
    >>> agent.act([0.9])
    0
    """


@register("hi-lcb-lite", "HI-LCB-lite: per-bin lower confidence bound on local accuracy, O(1) per request")
class HILCBLite(_LCBBase):
    __doc__ = """HI-LCB-lite — the current confidence bin's bound only (O(1) per sample).

    Chattopadhyay et al. 2025 (reconstruction [R], see the module docstring). Default 20 bins.
""" + _PARAMS + """
    Examples
    --------
    >>> agent = HILCBLite(n_actions=2, n_features=1)
    >>> for _ in range(50):
    ...     _ = agent.update([0.93], 1, 0.4, rewards=[1.0, 0.4])
    >>> agent.act([0.93]), agent.act([0.5])
    (0, 1)
    """

    _lite = 1

    def __init__(self, n_actions: int, n_features: int, alpha: float = 2.0, n_bins: int = 20,
                 confidence_index: int = 0, local_action: int = 0, forward_action: int = -1,
                 reward_min: float = -1.0, reward_max: float = 1.0, seed=None):
        super().__init__(n_actions, n_features, alpha, n_bins, confidence_index, local_action,
                         forward_action, reward_min, reward_max, seed)
