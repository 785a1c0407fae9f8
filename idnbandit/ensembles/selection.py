"""Query selection: one member, all members, sequential with a fixed or a learned stopping rule.

The combinatorial semi-bandit (CUCB) is in :mod:`idnbandit.ensembles.cucb`.
"""

from __future__ import annotations

import math

import numpy as np

from ..agents._params import MAX_GRID, check_integer, check_real, check_state_budget
from ..errors import ConfigError
from .strategy import RequestRecord, Strategy, check_fraction, check_order

__all__ = ["SingleModel", "QueryAll", "Sequential", "LearnedStopping", "ESCALATIONS"]

ESCALATIONS = ("next", "all")


class SingleModel(Strategy):
    """Query one fixed option (the baseline "forward to model k"); negative k counts from the end.

    Examples
    --------
    >>> s = SingleModel(4, option=-1).bind(10, [0.0, 0.1, 0.1, 0.2])
    >>> s.begin([1.0])[1]
    [3]
    """

    name = "ens-single"

    def __init__(self, n_actions: int, n_features: int = 1, option: int = 0, aggregator: str = "sum-prob",
                 seed=None):
        super().__init__(n_actions, n_features, aggregator, seed)
        if isinstance(option, bool) or not isinstance(option, (int, np.integer)) or not -n_actions <= option < n_actions:
            raise ConfigError(f"option: {option!r} is not allowed; use an integer in [-{n_actions}, {n_actions})")
        self.option = int(option)

    def _first_batch(self, req):
        return [self.option % self.n_actions]


class QueryAll(Strategy):
    """Query every option in parallel and answer with the aggregator (the all-models ensemble)."""

    name = "ens-vote-all"

    def _first_batch(self, req):
        return list(range(self.n_actions))


class Sequential(Strategy):
    """Query options one after another until the aggregate is confident enough (fixed threshold).

    After each answer the strategy stops if the vote's support (the winner's share of the
    aggregator's normalised scores: e.g. its mean probability for ``sum-prob``) is at least
    ``threshold``, or when every option has been queried. With ``escalate="all"`` the first
    escalation queries all remaining options at once, in parallel (a two-stage cascade: first
    member, then everyone); with ``"next"`` one more option at a time.

    Parameters
    ----------
    threshold
        Support needed to stop, in [0, 1] (0: never escalate; 1: escalate unless unanimous and certain).
    order
        Query order (option indices); default: by nominal price, cheapest first (ties: lower index).
    escalate
        ``"next"`` or ``"all"``.
    """

    name = "ens-seq"

    def __init__(self, n_actions: int, n_features: int = 1, threshold: float = 0.8, order=None,
                 escalate: str = "next", aggregator: str = "sum-prob", seed=None):
        super().__init__(n_actions, n_features, aggregator, seed)
        self.threshold = check_fraction(threshold, "threshold")
        self.order = check_order(order, n_actions)
        if escalate not in ESCALATIONS:
            raise ConfigError(f"escalate: {escalate!r} is not allowed; use one of {', '.join(ESCALATIONS)}")
        self.escalate = escalate

    def _reset_learning(self):
        self._order = list(self.order) if self.order is not None else \
            [int(k) for k in np.argsort(self._nominal, kind="stable")]

    def _first_batch(self, req):
        return [self._order[0]]

    def _next(self, req):
        rest = [k for k in self._order if k not in req.asked]
        if not rest or (req.members and self.vote(req).support >= self.threshold):
            return []
        return rest if self.escalate == "all" else rest[:1]


class LearnedStopping(Strategy):
    """Sequential querying with a stopping rule learned online (tabular Monte-Carlo control).

    After each answer the state is ``(stage, bin)``: the number of answers so far and the vote's
    support in ``bins`` equal bins. Two values are learned per state: ``stop`` = ``w_acc`` times the
    rate at which the current vote is right, and ``continue`` = the mean return actually obtained
    after continuing from that state (``w_acc * correct_final`` minus the prices of the later
    queries). When a label arrives, every state visited on the request updates its ``stop`` value
    (the vote at each stage is known, so this is full information) and the states where the strategy
    continued update their ``continue`` value (on-policy Monte-Carlo). The strategy continues when
    ``continue + exploration * sqrt(ln(t) / n_continue)`` beats ``stop`` (optimism: an untried
    ``continue`` is taken). Query order as in :class:`Sequential`.

    Parameters
    ----------
    order
        Query order; default: cheapest nominal price first.
    bins
        Number of support bins.
    exploration
        Width of the optimism bonus (reward units).
    """

    name = "ens-seq-learned"

    def __init__(self, n_actions: int, n_features: int = 1, order=None, bins: int = 10,
                 exploration: float = 0.1, aggregator: str = "sum-prob", seed=None):
        super().__init__(n_actions, n_features, aggregator, seed)
        self.order = check_order(order, n_actions)
        check_integer("bins", bins, 1, MAX_GRID, why="each bin costs memory per option")
        check_state_budget("n_actions, bins", 4 * self.n_actions * int(bins), type(self).__name__)
        self.bins = int(bins)
        check_real("exploration", exploration, lo=0.0)
        self.exploration = float(exploration)

    def _reset_learning(self):
        self._order = list(self.order) if self.order is not None else \
            [int(k) for k in np.argsort(self._nominal, kind="stable")]
        shape = (self.n_actions, self.bins)
        self.q_stop, self.n_stop = np.zeros(shape), np.zeros(shape)
        self.q_cont, self.n_cont = np.zeros(shape), np.zeros(shape)
        self._t = 0

    def _first_batch(self, req):
        return [self._order[0]]

    def _next(self, req):
        v = self.vote(req)
        j, b = len(req.asked) - 1, min(int(v.support * self.bins), self.bins - 1)
        req.trajectory.append((j, b, v.answer, req.spent))  # (stage, bin, answer, price so far)
        rest = [k for k in self._order if k not in req.asked]
        if not rest:
            return []
        n = self.n_cont[j, b]
        if n == 0:
            return rest[:1]
        bonus = self.exploration * math.sqrt(math.log(max(self._t, 2)) / n)
        return rest[:1] if self.q_cont[j, b] + bonus > self.q_stop[j, b] else []

    def _finish_extra(self, req):
        return list(req.trajectory), req.spent

    def _learn(self, record: RequestRecord, label: int):
        traj, spent = record.extra
        if not traj:
            return
        self._t += 1
        final = self.w_acc * float(traj[-1][2] == label)
        for i, (j, b, ans, so_far) in enumerate(traj):
            self.n_stop[j, b] += 1
            self.q_stop[j, b] += (self.w_acc * float(ans == label) - self.q_stop[j, b]) / self.n_stop[j, b]
            if i < len(traj) - 1:
                g = final - (spent - so_far)
                self.n_cont[j, b] += 1
                self.q_cont[j, b] += (g - self.q_cont[j, b]) / self.n_cont[j, b]
