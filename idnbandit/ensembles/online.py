"""Learned aggregators for FIXED, pre-trained members: online stacking, bagging and boosting.

Models in an IDN are trained apart and never retrained by the ensemble, so the classic online
ensembles (Oza & Russell, "Online Bagging and Boosting", AISTATS 2001), which resample the
examples each member *trains* on, cannot be used as they are. What is adapted here, and why, is said
in each class; only combination weights are learned.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .aggregators import Aggregator, _register
from .voting import Vote, sum_prob_scores, vote_from_scores, weighted_vote_scores

__all__ = ["Stacking", "OnlineBagging", "OnlineBoosting"]


def _positive(value, name: str, integer: bool = False):
    ok = isinstance(value, (int, np.integer) if integer else (int, float)) and not isinstance(value, bool)
    if not ok or not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{name}: {value!r} is not allowed; use a positive {'integer' if integer else 'number'}")
    return int(value) if integer else float(value)


def _log_odds_weights(acc: np.ndarray, n_classes: int) -> np.ndarray:
    """Optimal weights of a weighted vote of independent members with accuracies ``acc`` and
    symmetric errors over C classes: ``log((C - 1) acc / (1 - acc))``, clipped at 0 (a member no
    better than chance gets no say)."""
    a = np.clip(acc, 1e-3, 1 - 1e-3)
    return np.maximum(np.log((n_classes - 1) * a / (1 - a)), 0.0)


@_register
class Stacking(Aggregator):
    """Online stacking: a river classifier learns the answer from the queried members' probabilities.

    Meta-features are ``{"m{member}_c{k}": p_k}`` for each queried member (a member that was not
    queried contributes no feature, i.e. zeros), as river's ``StackingClassifier`` builds them from
    ``predict_proba_one``; the members themselves are never trained (they are fixed). Until the
    meta-classifier has learned from ``warmup`` labelled requests, the sum of probabilities answers
    (river's classifier only predicts classes it has seen, and is noisy at first).

    Parameters
    ----------
    learning_rate
        SGD step of the default meta-classifier, ``river.linear_model.SoftmaxRegression``.
    l2
        Its L2 penalty.
    warmup
        Labelled requests before the meta-classifier answers.
    """

    name = "stacking"
    learns = True

    def __init__(self, n_members: int, n_classes: int, learning_rate: float = 0.05, l2: float = 0.0,
                 warmup: int = 100):
        self.learning_rate = _positive(learning_rate, "learning_rate")
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
            raise ConfigError(f"l2: {l2!r} is not allowed; use a number >= 0")
        self.l2 = float(l2)
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise ConfigError(f"warmup: {warmup!r} is not allowed; use an integer >= 0")
        self.warmup = int(warmup)
        super().__init__(n_members, n_classes)

    def reset(self):
        from river import linear_model, optim

        self._clf = linear_model.SoftmaxRegression(optimizer=optim.SGD(self.learning_rate), l2=self.l2)
        self._seen = 0
        return self

    @staticmethod
    def features(m: np.ndarray, p: np.ndarray) -> dict[str, float]:
        """The meta-features of one request (see the class docstring)."""
        return {f"m{int(i)}_c{k}": float(v) for i, row in zip(m, p) for k, v in enumerate(row)}

    def _combine(self, m, p):
        mass = sum_prob_scores(p)
        if self._seen < max(self.warmup, 1):
            return vote_from_scores(mass, mass, p.argmax(axis=1))
        proba = self._clf.predict_proba_one(self.features(m, p))
        s = np.zeros(self.n_classes)
        for c, v in proba.items():
            s[int(c)] = v
        return vote_from_scores(s, mass, p.argmax(axis=1))

    def _update(self, m, p, label):
        self._clf.learn_one(self.features(m, p), int(label))
        self._seen += 1


@_register
class OnlineBagging(Aggregator):
    """Online bagging of the *combiner* (Oza & Russell 2001, adapted to fixed members).

    Oza's online bagging shows each example to each member ``k ~ Poisson(1)`` times, which
    simulates bootstrap resampling for members that learn. Fixed members cannot learn, so the
    Poisson(1) resampling is moved to the combiner: ``n_replicas`` replicas of a log-odds weighted vote
    each keep Poisson-weighted counts of every member's correct answers (prior Beta(1, 1)); a
    replica weighs member m by ``log((C - 1) a_m / (1 - a_m))`` (the optimal weight for independent
    members with symmetric errors, clipped at 0) with ``a_m`` its resampled accuracy estimate. The
    ensemble's scores are the mean of the replicas' normalised vote distributions (bagging's
    averaging), so members whose accuracy is uncertain get hedged weights. Replicas draw their
    Poisson counts from one seeded generator (the bootstrap of Eckles & Kaptein, arXiv:1410.4009).

    Parameters
    ----------
    n_replicas
        Number of bootstrap replicas B.
    seed
        Seed of the Poisson draws.
    """

    name = "bagging"
    learns = True
    seeded = True

    def __init__(self, n_members: int, n_classes: int, n_replicas: int = 10, seed=None):
        self.n_replicas = _positive(n_replicas, "n_replicas", integer=True)
        self.seed = seed
        super().__init__(n_members, n_classes)

    def reset(self):
        self._rng = np.random.default_rng(self.seed)
        self._right = np.ones((self.n_replicas, self.n_members))  # Beta(1, 1) prior
        self._seen = np.full((self.n_replicas, self.n_members), 2.0)
        return self

    def _combine(self, m, p):
        preds = p.argmax(axis=1)
        w = _log_odds_weights(self._right[:, m] / self._seen[:, m], self.n_classes)  # (B, q)
        dist = np.zeros(self.n_classes)
        for b in range(self.n_replicas):
            wb = w[b] if w[b].sum() > 0 else np.ones(m.size)
            s = weighted_vote_scores(preds, wb, self.n_classes)
            dist += s / s.sum()
        return vote_from_scores(dist, sum_prob_scores(p), preds)

    def _update(self, m, p, label):
        k = self._rng.poisson(1.0, self.n_replicas).astype(np.float64)  # one draw per replica and example
        right = (p.argmax(axis=1) == label).astype(np.float64)
        self._seen[:, m] += k[:, None]
        self._right[:, m] += k[:, None] * right[None, :]


@_register
class OnlineBoosting(Aggregator):
    """Online boosting over fixed members (Oza & Russell 2001's lambda-propagation, no learn step).

    For each labelled request, the members that answered are visited in a fixed order (member id,
    i.e. option order: local first) with an example weight ``lam = 1``: a right member adds ``lam``
    to its ``lam_sc`` and scales ``lam`` by ``(lam_sc + lam_sw) / (2 lam_sc)``, a wrong one adds to
    ``lam_sw`` and scales by ``(lam_sc + lam_sw) / (2 lam_sw)``, exactly as in Oza's algorithm and
    river's ``AdaBoostClassifier``. Adapted: the step "train member m on the example ``Poisson(lam)``
    times" is dropped, because the members are fixed. What remains is still boosting's weighting: a
    later member's error ``eps_m = lam_sw / (lam_sc + lam_sw)`` is measured mostly on the requests the
    earlier members got wrong, so its vote weight ``log((1 - eps_m) / eps_m)`` (Oza) reflects how
    much it adds to them. As in Oza's original, a member with ``eps_m >= 1/2`` gets weight 0;
    ``eps_m`` is clipped to at least 1e-3. Before any label (or if every weight is 0) all members
    weigh 1.
    """

    name = "boosting"
    learns = True

    def reset(self):
        self._sc = np.zeros(self.n_members)
        self._sw = np.zeros(self.n_members)
        return self

    @property
    def weights(self) -> np.ndarray:
        """(M,) current vote weights (a copy)."""
        n = self._sc + self._sw
        eps = np.clip(np.divide(self._sw, n, out=np.full(self.n_members, 0.5), where=n > 0), 1e-3, 1 - 1e-3)
        w = np.where(eps < 0.5, np.log((1 - eps) / eps), 0.0)
        return np.where(n > 0, w, 1.0) if (n > 0).any() else np.ones(self.n_members)

    def _combine(self, m, p) -> Vote:
        preds = p.argmax(axis=1)
        w = self.weights[m]
        if not w.sum() > 0:
            w = np.ones(m.size)
        return vote_from_scores(weighted_vote_scores(preds, w, self.n_classes), sum_prob_scores(p), preds)

    def _update(self, m, p, label):
        lam = 1.0
        right = p.argmax(axis=1) == label
        for j in np.argsort(m, kind="stable"):
            i = m[j]
            if right[j]:
                self._sc[i] += lam
                lam *= (self._sc[i] + self._sw[i]) / (2.0 * self._sc[i])
            else:
                self._sw[i] += lam
                lam *= (self._sc[i] + self._sw[i]) / (2.0 * self._sw[i])
