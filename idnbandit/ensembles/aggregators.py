"""Aggregators: combine the answers of the members queried so far into one :class:`Vote`.

Protocol (every aggregator)::

    agg = make_aggregator("hedge", n_members=4, n_classes=10)
    v = agg.combine(members, probs)       # members (q,) ids in query order, probs (q, C): a Vote
    agg.update(members, probs, label)     # learn from a labelled request (no-op for fixed rules)

``members`` are distinct member ids in ``[0, n_members)`` (for the simulator: option indices of the
origin); ``probs`` their class-probability vectors. Inputs are never modified. With no member
(``q = 0``) the vote is ``answer = -1``. Ties follow :mod:`idnbandit.ensembles.voting`.

Fixed rules here: ``majority`` (plurality of predicted classes), ``sum-prob`` (sum of probabilities,
the linear pool), ``log-linear`` (normalised product, the log-linear pool). Learned: ``hedge``
(Hedge-weighted vote); in :mod:`idnbandit.ensembles.online`: ``stacking``, ``bagging``,
``boosting``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, UnknownNameError
from .voting import (
    Vote,
    check_probs,
    log_linear_scores,
    majority_vote,
    no_vote,
    sum_prob_scores,
    vote_from_scores,
    weighted_vote_scores,
)

__all__ = ["Aggregator", "Majority", "SumProb", "LogLinear", "HedgeVote", "AGGREGATORS", "make_aggregator",
           "aggregator_names"]


def _check_int(value, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ConfigError(f"{name}: {value!r} is not allowed; use an integer >= {lo}")
    return int(value)


class Aggregator:
    """Base class: argument checking, ``combine`` / ``update`` plumbing, ``reset``.

    Parameters
    ----------
    n_members
        Number of members (M >= 1).
    n_classes
        Number of classes (C >= 2).
    """

    name = "aggregator"
    learns = False

    def __init__(self, n_members: int, n_classes: int):
        self.n_members = _check_int(n_members, "n_members", 1)
        self.n_classes = _check_int(n_classes, "n_classes", 2)
        self.reset()

    def reset(self) -> Aggregator:
        """Forget everything learned."""
        return self

    def _inputs(self, members, probs):
        m = np.array(members, dtype=np.int64, copy=True).reshape(-1)
        if m.size and (m.min() < 0 or m.max() >= self.n_members or np.unique(m).size != m.size):
            raise ConfigError(f"members: {m.tolist()} must be distinct ids in [0, {self.n_members})")
        p = check_probs(np.reshape(probs, (m.size, -1)) if m.size else np.zeros((0, self.n_classes)))
        if p.shape != (m.size, self.n_classes):
            raise ConfigError(f"probs: shape {p.shape} does not match ({m.size} members, {self.n_classes} classes)")
        return m, p

    def combine(self, members, probs) -> Vote:
        """The vote of ``members`` (query order) with probability vectors ``probs`` ((q, C))."""
        m, p = self._inputs(members, probs)
        if m.size == 0:
            return no_vote(self.n_classes)
        return self._combine(m, p)

    def update(self, members, probs, label: int) -> Aggregator:
        """Learn from one request whose true class is ``label``; returns self."""
        m, p = self._inputs(members, probs)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < self.n_classes:
            raise ConfigError(f"label: {label!r} is not allowed; use a class in [0, {self.n_classes})")
        if m.size:
            self._update(m, p, int(label))
        return self

    def _combine(self, m: np.ndarray, p: np.ndarray) -> Vote:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, m: np.ndarray, p: np.ndarray, label: int) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_members={self.n_members}, n_classes={self.n_classes})"


class Majority(Aggregator):
    """Plurality vote of the members' predicted classes (``argmax`` of each, lowest index on ties).

    Support is the winner's vote share. Ties: the larger summed top probability of the voters, then
    the class voted first.

    Examples
    --------
    >>> agg = Majority(3, 3)
    >>> agg.combine([0, 1, 2], [[0.6, 0.4, 0.0], [0.1, 0.8, 0.1], [0.3, 0.7, 0.0]]).answer
    1
    """

    name = "majority"

    def _combine(self, m, p):
        preds, confs = p.argmax(axis=1), p.max(axis=1)
        c, share = majority_vote(preds, confs)
        scores = weighted_vote_scores(preds, np.ones(m.size), self.n_classes)
        return Vote(c, share, scores / scores.sum())


class SumProb(Aggregator):
    """Linear opinion pool: the class with the largest summed probability; support = mean probability."""

    name = "sum-prob"

    def _combine(self, m, p):
        s = sum_prob_scores(p)
        return vote_from_scores(s, s, p.argmax(axis=1))


class LogLinear(Aggregator):
    """Log-linear opinion pool: ``softmax(sum_m log p_m)``, the normalised product of the members.

    Probabilities are floored at 1e-12 before the log. Support is the pooled probability of the winner.
    """

    name = "log-linear"

    def _combine(self, m, p):
        return vote_from_scores(log_linear_scores(p), sum_prob_scores(p), p.argmax(axis=1))


class HedgeVote(Aggregator):
    """Weighted vote whose member weights are learned online with Hedge (exponential weights).

    ``w_m = exp(-eta_t * L_m)`` with ``L_m`` the cumulative 0-1 loss of member m and the anytime
    learning rate ``eta_t = eta * sqrt(8 ln max(M, 2) / t)`` after t labelled requests (Freund &
    Schapire 1997; Cesa-Bianchi & Lugosi 2006, Thm 2.2). The vote is ``sum_m w_m onehot(argmax p_m)``
    over the queried members. A member that was not queried on a request is *asleep*: it is charged
    the ensemble's own loss on that request (the specialists convention of Freund, Schapire, Singer
    & Warmuth, STOC 1997), so rarely queried members keep their standing relative to the ensemble.

    Parameters
    ----------
    eta
        Scale of the learning rate (1 = the textbook tuning).
    """

    name = "hedge"
    learns = True

    def __init__(self, n_members: int, n_classes: int, eta: float = 1.0):
        if not (isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta > 0 and math.isfinite(eta)):
            raise ConfigError(f"eta: {eta!r} is not allowed; use a positive number")
        self.eta = float(eta)
        super().__init__(n_members, n_classes)

    def reset(self):
        self._loss = np.zeros(self.n_members)
        self._t = 0
        return self

    @property
    def weights(self) -> np.ndarray:
        """(M,) current normalised weights (a copy)."""
        if self._t == 0:
            return np.full(self.n_members, 1.0 / self.n_members)
        rate = self.eta * math.sqrt(8.0 * math.log(max(self.n_members, 2)) / self._t)
        w = np.exp(-rate * (self._loss - self._loss.min()))
        return w / w.sum()

    def _combine(self, m, p):
        preds = p.argmax(axis=1)
        s = weighted_vote_scores(preds, self.weights[m], self.n_classes)
        return vote_from_scores(s, sum_prob_scores(p), preds)

    def _update(self, m, p, label):
        ens_loss = float(self._combine(m, p).answer != label)
        loss = np.full(self.n_members, ens_loss)
        loss[m] = (p.argmax(axis=1) != label).astype(np.float64)
        self._loss += loss
        self._t += 1


AGGREGATORS: dict[str, type] = {}


def _register(cls: type) -> type:
    AGGREGATORS[cls.name] = cls
    return cls


for _cls in (Majority, SumProb, LogLinear, HedgeVote):
    _register(_cls)


def aggregator_names() -> list[str]:
    """Names accepted by :func:`make_aggregator`, sorted."""
    from . import online  # noqa: F401  registers stacking / bagging / boosting

    return sorted(AGGREGATORS)


def make_aggregator(name: str, n_members: int, n_classes: int, seed=None, **params) -> Aggregator:
    """Build the aggregator ``name`` (see :func:`aggregator_names`).

    Raises
    ------
    UnknownNameError
        If ``name`` is not an aggregator (close names are suggested).
    ConfigError
        On a bad parameter.
    """
    names = aggregator_names()
    if name not in AGGREGATORS:
        raise UnknownNameError("aggregator", str(name), names)
    cls = AGGREGATORS[name]
    if getattr(cls, "seeded", False):
        params["seed"] = seed
    try:
        return cls(n_members, n_classes, **params)
    except TypeError as exc:
        raise ConfigError(f"aggregator {name!r}: {exc}") from None
