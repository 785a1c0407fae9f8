"""Cooperative inference: combine the answers of models at different nodes under query costs.

* Aggregators (:func:`make_aggregator`): ``majority``, ``sum-prob``, ``log-linear``, ``hedge``,
  ``stacking`` (river), ``bagging`` and ``boosting`` (Oza & Russell, adapted to fixed members).
* Query-selection strategies (:func:`make_strategy`, also ``--agents`` names of ``idnbandit bench``):
  ``ens-single``, ``ens-vote-all``, ``ens-seq`` (fixed threshold), ``ens-seq-learned`` (stopping
  rule learned online), ``ens-cucb`` (combinatorial semi-bandit). :func:`idnbandit.sim.simulate`
  runs them (several options per request; latency the max of a parallel batch, batches add up).

See ``docs/ensembles.md``.
"""

from .aggregators import (
    AGGREGATORS,
    Aggregator,
    HedgeVote,
    LogLinear,
    Majority,
    SumProb,
    aggregator_names,
    make_aggregator,
)
from .cucb import CUCB, vote_accuracy
from .online import OnlineBagging, OnlineBoosting, Stacking
from .registry import STRATEGIES, make_strategy, strategy_names
from .selection import LearnedStopping, QueryAll, Sequential, SingleModel
from .strategy import RequestRecord, Strategy
from .voting import Vote, confidence_vote, log_linear_scores, majority_vote, pick_class, sum_prob_scores

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "CUCB",
    "HedgeVote",
    "LearnedStopping",
    "LogLinear",
    "Majority",
    "OnlineBagging",
    "OnlineBoosting",
    "QueryAll",
    "RequestRecord",
    "STRATEGIES",
    "Sequential",
    "SingleModel",
    "Stacking",
    "Strategy",
    "SumProb",
    "Vote",
    "aggregator_names",
    "confidence_vote",
    "log_linear_scores",
    "majority_vote",
    "make_aggregator",
    "make_strategy",
    "pick_class",
    "strategy_names",
    "sum_prob_scores",
    "vote_accuracy",
]
