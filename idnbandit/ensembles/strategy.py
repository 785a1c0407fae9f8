"""Query-selection strategies: which members to ask for one request, and when to stop.

Protocol, driven per request by :func:`idnbandit.sim.simulate` (``idnbandit.sim.ensemble_run``)::

    s.bind(n_classes, prices, w_acc)     # once per run: classes, nominal price per option, accuracy weight
    req, batch = s.begin(x)              # request state + options queried first, IN PARALLEL
    s.observe(req, k, probs, price)      # for each answer (probs None when the query timed out)
    more = s.next_batch(req)             # more options, queried together AFTER the answers so far
                                         # (latency: + the max of the batch); [] ends the request
    v = s.vote(req)                      # the answer: a Vote of the strategy's aggregator
    rec = s.finish(req)                  # what the strategy needs to learn from this request later
    s.learn(rec, label)                  # when feedback reveals the label (label None: nothing revealed)

Several requests may be in flight at once (the simulator interleaves them in time order); their
state lives in :class:`Request` objects, the learned state in the strategy.

Prices are in reward units (``w_lat * latency_s + w_cost * cost``); a strategy starts from the nominal
price of each option (no queueing) and tracks the mean observed price of each option online.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..agents._params import MAX_FEATURES, MAX_OPTIONS, check_integer, check_real, show
from ..errors import ConfigError
from .aggregators import Aggregator, make_aggregator
from .voting import Vote, no_vote

__all__ = ["Strategy", "Request", "RequestRecord"]


@dataclass
class Request:
    """State of one request in flight: context, options asked, answers (query order), price spent."""

    x: np.ndarray
    asked: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    spent: float = 0.0
    trajectory: list = field(default_factory=list)


class RequestRecord(NamedTuple):
    """What one request left for learning: members in query order, their probabilities, the
    strategy's own trajectory data (``extra``)."""

    members: np.ndarray
    probs: np.ndarray
    extra: Any


def check_order(order, n: int, where: str = "order") -> tuple[int, ...] | None:
    """``order`` as a tuple of distinct options in [0, n), or None."""
    if order is None:
        return None
    if not isinstance(order, (list, tuple, np.ndarray)) or len(order) > n:
        raise ConfigError(f"{where}: {show(order)} is not allowed; give a list of at most {n} option indices, "
                          "e.g. [0, 3, 1, 2]")
    if any(isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) for k in order):
        raise ConfigError(f"{where}: {show(order)} is not allowed; option indices must be integers in [0, {n})")
    out = tuple(int(k) for k in order)
    if not out or len(set(out)) != len(out) or min(out) < 0 or max(out) >= n:
        raise ConfigError(f"{where}: {show(list(order))} is not allowed; it must be distinct option indices in [0, {n})")
    return out


def check_fraction(value, name: str, lo_open: bool = False) -> float:
    check_real(name, value, lo=0.0, hi=1.0, lo_open=lo_open)
    return float(value)


class Strategy:
    """Base class of the query-selection strategies (agent-like: ``n_actions`` options, a seed).

    Parameters
    ----------
    n_actions
        Options per origin (the members: option k is member k).
    n_features
        Context length (unused by most strategies; kept for the agent registry's signature).
    aggregator
        Name of the aggregator answering (see :func:`~idnbandit.ensembles.aggregator_names`).
    seed
        Seed of a seeded aggregator (``bagging``); the strategies themselves are deterministic.
    """

    is_ensemble_strategy = True
    name = "ensemble-strategy"

    def __init__(self, n_actions: int, n_features: int = 1, aggregator: str = "sum-prob", seed=None):
        check_integer("n_actions", n_actions, 1, MAX_OPTIONS)
        check_integer("n_features", n_features, 1, MAX_FEATURES)
        if not isinstance(aggregator, str):
            raise ConfigError(f"aggregator: {show(aggregator)} is not allowed; give an aggregator name such as "
                              "'sum-prob' (see `idnbandit ensembles`)")
        self.n_actions = int(n_actions)
        self.n_features = n_features
        self.aggregator = aggregator
        self.seed = seed
        from .aggregators import aggregator_names

        if aggregator not in aggregator_names():
            make_aggregator(aggregator, 1, 2)  # raises UnknownNameError with suggestions
        self._agg: Aggregator | None = None
        self._n_classes = 0

    # ------------------------------------------------------------------ run set-up
    def bind(self, n_classes: int, prices, w_acc: float = 1.0) -> Strategy:
        """Prepare a run: ``n_classes`` classes, (K,) nominal ``prices`` (reward units), accuracy weight."""
        p = np.array(prices, dtype=np.float64).reshape(-1)
        if p.shape != (self.n_actions,) or not np.isfinite(p).all() or (p < 0).any():
            raise ConfigError(f"prices: expected {self.n_actions} finite prices >= 0, got {p.tolist()}")
        self._n_classes = int(n_classes)
        self.w_acc = float(w_acc)
        self._nominal = p.copy()
        self._agg = make_aggregator(self.aggregator, self.n_actions, self._n_classes, seed=self.seed)
        self._price_sum = p.copy()  # the nominal price counts as one observation
        self._price_n = np.ones(self.n_actions)
        self._reset_learning()
        return self

    def reset(self) -> Strategy:
        """Forget everything learned (a bound strategy is re-bound with the same classes and prices)."""
        if self._agg is not None:
            self.bind(self._n_classes, self._nominal, self.w_acc)
        return self

    def _reset_learning(self) -> None:
        """Subclasses reset their learned state here."""

    def _need_bind(self):
        if self._agg is None:
            raise ConfigError(f"{type(self).__name__}: call bind(n_classes, prices) before use")

    @property
    def prices(self) -> np.ndarray:
        """(K,) mean observed price of each option (reward units; starts at the nominal price)."""
        return self._price_sum / self._price_n

    # ------------------------------------------------------------------ one request
    def begin(self, x) -> tuple[Request, list[int]]:
        """Start a request with context ``x``.

        Returns
        -------
        request, batch
            The request's state (pass it to the other per-request methods; several requests may be
            in flight at once) and the options to query first, in parallel.
        """
        self._need_bind()
        req = Request(np.asarray(x, dtype=np.float64).copy())
        batch = [int(k) for k in self._first_batch(req)]
        req.asked += batch
        return req, batch

    def observe(self, req: Request, option: int, probs, price: float) -> None:
        """Record the answer of ``option`` (``probs`` (C,) or None on timeout) and its price."""
        self._price_sum[option] += float(price)
        self._price_n[option] += 1.0
        req.spent += float(price)
        if probs is not None:
            req.members.append(int(option))
            req.probs.append(np.array(probs, dtype=np.float64))

    def next_batch(self, req: Request) -> list[int]:
        """Options to query next, together, after the answers so far; ``[]`` ends the request."""
        batch = [int(k) for k in self._next(req)]
        req.asked += batch
        return batch

    def vote(self, req: Request) -> Vote:
        """The aggregate of the request's answers so far."""
        self._need_bind()
        if not req.members:
            return no_vote(self._n_classes)
        return self._agg.combine(req.members, np.stack(req.probs))

    def finish(self, req: Request) -> RequestRecord:
        """End the request; the record to pass to :meth:`learn` when (if) its label is revealed."""
        p = np.stack(req.probs) if req.probs else np.zeros((0, self._n_classes))
        return RequestRecord(np.array(req.members, dtype=np.int64), p, self._finish_extra(req))

    def learn(self, record: RequestRecord, label: int | None) -> Strategy:
        """Learn from a finished request (``label`` None: the feedback revealed nothing)."""
        if label is not None:
            if record.members.size:
                self._agg.update(record.members, record.probs, int(label))
            self._learn(record, int(label))
        return self

    # ------------------------------------------------------------------ to override
    def _first_batch(self, req: Request) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _next(self, req: Request) -> list[int]:
        return []

    def _finish_extra(self, req: Request):
        return None

    def _learn(self, record: RequestRecord, label: int) -> None:
        pass

    # ------------------------------------------------------------------ agent-like helpers
    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self._param_names()}

    def clone(self) -> Strategy:
        """A fresh, unbound strategy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"
