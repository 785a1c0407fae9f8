"""Decision logs and off-policy evaluation (OPE).

A delivery strategy running in production leaves logs, not a simulator. This package writes and
reads decision logs (:mod:`.schema`: one row per decision, with the logging policy's propensity)
and estimates how another policy would have done on the same traffic (:mod:`.estimators`: direct
method, IPS, SNIPS, doubly robust, switch-DR, clipped DR, with Poisson-bootstrap intervals). In
simulation, logs also carry every option's reward, so each estimator can be checked against the
ground truth (docs/ope.md states what holds and where every estimator fails).
"""

from .estimators import (
    ESTIMATORS,
    Estimate,
    Policy,
    check_probs,
    deterministic_policy,
    evaluate,
    sim_value,
    uniform_policy,
)
from .log import CHUNK_ROWS, DecisionLog, LogWriter, write_log
from .offline import ReplayResult, replay
from .policies import PolicyAgent, agent_policy
from .reader import iter_log, read_log
from .reward_model import RidgeRewardModel, SklearnRewardModel
from .schema import FORMAT, VERSION, LogMeta, columns
from .synthetic import LOGGING_POLICIES, synthetic_log

__all__ = [
    "ESTIMATORS", "Estimate", "Policy", "check_probs", "deterministic_policy", "evaluate", "sim_value",
    "uniform_policy", "CHUNK_ROWS", "DecisionLog", "LogWriter", "iter_log", "read_log", "write_log",
    "RidgeRewardModel", "SklearnRewardModel", "FORMAT", "VERSION", "LogMeta", "columns", "LOGGING_POLICIES",
    "synthetic_log", "ReplayResult", "replay", "PolicyAgent", "agent_policy",
]
