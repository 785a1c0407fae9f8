"""Subset selection as a combinatorial semi-bandit with per-member prices (CUCB).

W. Chen, Y. Wang, Y. Yuan, "Combinatorial Multi-Armed Bandit: General Framework, Results and
Applications", ICML 2013 (Algorithm 1, CUCB), in its general form with a non-linear super-arm reward
that is monotone in the base-arm means.
"""

from __future__ import annotations

import math

import numpy as np

from ..agents._params import check_real
from ..errors import ConfigError
from .strategy import RequestRecord, Strategy

__all__ = ["CUCB", "vote_accuracy", "subset_accuracies", "MAX_MEMBERS"]

#: the oracle enumerates every subset: 2^K subsets x 2^|S| answer patterns
MAX_MEMBERS = 12


def _weights(mu: np.ndarray, n_classes: int) -> np.ndarray:
    a = np.clip(mu, 1e-3, 1 - 1e-3)
    return np.maximum(np.log((n_classes - 1) * a / (1 - a)), 0.0)


def subset_accuracies(mu, masks: np.ndarray, n_classes: int) -> np.ndarray:
    """:func:`vote_accuracy` of every subset of members at once.

    Parameters
    ----------
    mu
        (K,) probability that each member is right.
    masks
        (S, K) bool, one row per subset.

    Returns
    -------
    (S,) float64
        Accuracy of each subset's vote; the independent members not in a subset marginalise out, so
        one pass over the 2^K right/wrong patterns scores every subset.
    """
    mu = np.asarray(mu, dtype=np.float64)
    k = mu.size
    pats = ((np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float64)  # (2^K, K) 1 = right
    prob = np.prod(np.where(pats == 1, mu, 1 - mu), axis=1)
    w = masks * _weights(mu, n_classes)[None, :]  # (S, K)
    dead = ~(w.sum(axis=1) > 0)
    w[dead] = masks[dead]  # no member better than chance: equal weights
    right = pats @ w.T  # (2^K, S)
    wrong = w.sum(axis=1)[None, :] - right
    tol = 1e-9 * np.maximum(w.sum(axis=1), 1.0)[None, :]
    win = np.where(np.abs(right - wrong) <= tol, 0.5, (right > wrong).astype(np.float64))
    return prob @ win


def vote_accuracy(mu, n_classes: int) -> float:
    """Accuracy of a weighted vote of independent members that are right with probabilities ``mu``.

    Members vote with the optimal log-odds weights ``log((C - 1) mu / (1 - mu))`` (clipped at 0), and
    pessimistically every wrong member votes for the same wrong class: the vote is right when the
    right members' weight exceeds the wrong members' (an exact tie counts one half).

    Examples
    --------
    >>> round(vote_accuracy([0.9], 10), 6)
    0.9
    >>> round(vote_accuracy([0.8, 0.8, 0.8], 2), 6)  # majority of three: 0.8^3 + 3 * 0.8^2 * 0.2
    0.896
    """
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    return float(subset_accuracies(mu, np.ones((1, mu.size), bool), n_classes)[0])


class CUCB(Strategy):
    """Choose the subset of members to query in parallel with CUCB (semi-bandit feedback).

    Base arms are the members; arm i's outcome on a labelled request is 1 if member i's answer was
    right (observed for every queried member: semi-bandit feedback). Each round the strategy forms
    the upper confidence bounds ``mu_i = min(1, mu_hat_i + scale * sqrt(3 ln t / (2 T_i)))`` and
    queries the subset S maximising ``w_acc * A(S; mu) - sum_{i in S} price_i`` subject to
    ``sum_{i in S} price_i <= budget``, where ``A`` is :func:`vote_accuracy` (monotone in every
    mu_i, as CUCB needs) and ``price_i`` the mean observed price of option i. The oracle is exact
    (every subset is scored; at most :data:`MAX_MEMBERS` members). Arms never observed are queried
    first (CUCB's initialisation), together as far as the budget allows. The answer is the
    aggregator's vote of the queried members.

    ``A`` assumes independent errors; real members' errors are correlated, so ``A`` overstates what
    a large subset adds: a modelling choice of this strategy, measured in ``docs/ensembles.md``.

    Parameters
    ----------
    budget
        Maximum summed expected price per request (reward units); None = no budget.
    scale
        Multiplier of the confidence width (1 = the paper's ``sqrt(3 ln t / (2 T_i))``).
    """

    name = "ens-cucb"

    def __init__(self, n_actions: int, n_features: int = 1, budget: float | None = None, scale: float = 1.0,
                 aggregator: str = "sum-prob", seed=None):
        super().__init__(n_actions, n_features, aggregator, seed)
        if n_actions > MAX_MEMBERS:
            raise ConfigError(f"n_actions: {n_actions} options are too many for the exact CUCB oracle "
                              f"(at most {MAX_MEMBERS}); use a scenario with fewer options per origin")
        check_real("budget", budget, lo=0.0, lo_open=True, optional=True)
        self.budget = None if budget is None else float(budget)
        check_real("scale", scale, lo=0.0)
        self.scale = float(scale)
        k = self.n_actions
        # every non-empty subset, fewer members first (so ties go to the smaller subset), then by bitmask
        subsets = sorted(range(1, 1 << k), key=lambda m: (bin(m).count("1"), m))
        self._masks = np.array([[(m >> i) & 1 for i in range(k)] for m in subsets], dtype=bool)

    def _reset_learning(self):
        self.successes = np.zeros(self.n_actions)
        self.pulls = np.zeros(self.n_actions)
        self._t = 0

    def ucb(self) -> np.ndarray:
        """(K,) upper confidence bounds of the members' accuracies (1 for unobserved members)."""
        t = max(self._t, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.pulls > 0, self.successes / np.maximum(self.pulls, 1), 1.0)
            width = np.where(self.pulls > 0, self.scale * np.sqrt(3 * math.log(t + 1) / (2 * self.pulls)), 1.0)
        return np.minimum(1.0, mean + width)

    def oracle(self, mu: np.ndarray, prices: np.ndarray) -> list[int]:
        """The best subset for accuracies ``mu`` and ``prices`` under the budget (ties: fewer members,
        then the lower option indices)."""
        cost = self._masks @ prices
        value = self.w_acc * subset_accuracies(mu, self._masks, self._n_classes) - cost
        if self.budget is not None:
            value[(cost > self.budget) & (self._masks.sum(axis=1) > 1)] = -np.inf
        best = int(np.flatnonzero(value >= value.max() - 1e-12)[0])
        return [int(i) for i in np.flatnonzero(self._masks[best])]

    def _first_batch(self, req):
        prices = self.prices
        untried = np.flatnonzero(self.pulls == 0)
        if untried.size:
            batch, spent = [], 0.0
            for i in untried:
                if not batch or self.budget is None or spent + prices[i] <= self.budget:
                    batch.append(int(i))
                    spent += prices[i]
            return batch
        return self.oracle(self.ucb(), prices)

    def _learn(self, record: RequestRecord, label: int):
        self._t += 1
        for i, p in zip(record.members, record.probs):
            self.pulls[i] += 1
            self.successes[i] += float(p.argmax() == label)
