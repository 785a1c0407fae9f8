"""Pure combination rules over the answers gathered so far, and the one deterministic tie rule.

Every rule takes the queried members' outputs in **query order** and never modifies its inputs.

Tie rule (used by every aggregator of :mod:`idnbandit.ensembles`): the answer is the class with the
largest score; among classes with exactly equal scores, the one with the larger *mass* (the summed
probability the members give it; for votes over ``(pred, conf)`` pairs, the summed top probability of
its voters); then the class that some member predicted first in query order; then the smallest
class index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

__all__ = ["Vote", "no_vote", "pick_class", "majority_vote", "confidence_vote", "check_probs",
           "sum_prob_scores", "log_linear_scores", "weighted_vote_scores", "vote_from_scores", "LOG_FLOOR"]

#: probabilities are floored here before taking logs (log-linear pooling of exact zeros)
LOG_FLOOR = 1e-12


class Vote(NamedTuple):
    """The ensemble's answer so far.

    Attributes
    ----------
    answer
        The chosen class, -1 when no member answered.
    support
        The winner's share of the normalised scores, in [0, 1] (0 with no answer).
    scores
        (C,) float64 normalised scores (sum 1; all zeros with no answer).
    """

    answer: int
    support: float
    scores: np.ndarray


def no_vote(n_classes: int) -> Vote:
    """The :class:`Vote` of an ensemble with no answer yet."""
    return Vote(-1, 0.0, np.zeros(n_classes))



def check_probs(probs, where: str = "probs") -> np.ndarray:
    """``probs`` as a read-only (q, C) float64 array (a copy), else :class:`ConfigError`."""
    p = np.array(probs, dtype=np.float64, copy=True)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ConfigError(f"{where}: expected a (queried members, classes) array with >= 2 classes, got shape "
                          f"{p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ConfigError(f"{where}: probabilities must be finite and >= 0")
    p.setflags(write=False)
    return p


def pick_class(scores: np.ndarray, mass: np.ndarray, preds: np.ndarray) -> int:
    """The winning class under the module's tie rule.

    Parameters
    ----------
    scores, mass
        (C,) float64 score and tie-break mass of every class.
    preds
        (q,) int64 class predicted by each queried member, in query order.

    Examples
    --------
    >>> pick_class(np.array([1.0, 1.0, 0.0]), np.array([0.4, 0.4, 0.2]), np.array([1, 0]))
    1
    """
    cand = np.flatnonzero(scores == scores.max())
    if cand.size > 1:
        cand = cand[mass[cand] == mass[cand].max()]
    if cand.size > 1:
        for c in preds.tolist():
            if c in cand:
                return int(c)
    return int(cand[0])


def vote_from_scores(scores: np.ndarray, mass: np.ndarray, preds: np.ndarray) -> Vote:
    """A :class:`Vote` from raw non-negative ``scores`` (normalised here)."""
    total = scores.sum()
    norm = scores / total if total > 0 else np.full(scores.shape, 1.0 / scores.size)
    c = pick_class(scores, mass, preds)
    return Vote(c, float(norm[c]), norm)


def _votes(preds: np.ndarray, confs: np.ndarray, weights: np.ndarray | None):
    preds = np.asarray(preds, dtype=np.int64)
    confs = np.asarray(confs, dtype=np.float64)
    valid = preds >= 0
    p, w = preds[valid], confs[valid]
    ww = np.ones(p.size) if weights is None else np.asarray(weights, dtype=np.float64)[valid]
    return p, w, ww


def majority_vote(preds, confs) -> tuple[int, float]:
    """Plurality vote over predicted classes (invalid answers, ``pred < 0``, are ignored).

    Parameters
    ----------
    preds
        (q,) predicted class of each queried member, query order.
    confs
        (q,) its top probability (breaks ties, see the module docstring).

    Returns
    -------
    answer, share
        The class (-1 with no valid answer) and its share of the votes.

    Examples
    --------
    >>> majority_vote(np.array([3, 5, 5, 3]), np.array([0.9, 0.2, 0.3, 0.95]))
    (3, 0.5)
    """
    p, w, _ = _votes(preds, confs, None)
    if p.size == 0:
        return -1, 0.0
    n = int(max(p.max() + 1, 2))
    votes = np.bincount(p, minlength=n).astype(np.float64)
    mass = np.bincount(p, weights=w, minlength=n)
    c = pick_class(votes, mass, p)
    return c, float(votes[c] / votes.sum())


def confidence_vote(preds, confs) -> tuple[int, float]:
    """Confidence-weighted vote: the class with the largest summed top probability of its voters.

    Returns the class (-1 with no valid answer) and its share of the summed confidence.

    Examples
    --------
    >>> a, s = confidence_vote(np.array([3, 5, 5]), np.array([0.9, 0.2, 0.3]))
    >>> a, round(s, 4)
    (3, 0.6429)
    """
    p, w, _ = _votes(preds, confs, None)
    if p.size == 0:
        return -1, 0.0
    n = int(max(p.max() + 1, 2))
    mass = np.bincount(p, weights=w, minlength=n)
    c = pick_class(mass, mass, p)
    return c, float(mass[c] / max(mass.sum(), 1e-12))


def sum_prob_scores(probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(C,) weighted sum of the members' probability vectors (linear opinion pool)."""
    w = np.ones(probs.shape[0]) if weights is None else weights
    return w @ probs


def log_linear_scores(probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(C,) normalised product of experts: ``softmax(sum_m w_m log p_m)`` (log-linear opinion pool).

    Probabilities are floored at :data:`LOG_FLOOR` first, so one member's exact zero does not veto a
    class outright.
    """
    w = np.ones(probs.shape[0]) if weights is None else weights
    z = w @ np.log(np.maximum(probs, LOG_FLOOR))
    z = np.exp(z - z.max())
    return z / z.sum()


def weighted_vote_scores(preds: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) summed weight of the members voting for each class."""
    return np.bincount(preds, weights=weights, minlength=n_classes).astype(np.float64)
