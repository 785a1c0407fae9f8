"""Decision logs from the simulator: ``simulate(..., log=path)`` writes one row per request.

Each finalised request's record (:mod:`idnbandit.sim.state`) becomes a row of the decision-log schema
(:mod:`idnbandit.ope.schema`) as it is drained, so memory stays bounded by a block of records: the
request number, the decision time, the origin, the context the agent saw, its action and that
action's propensity (the agent's probability of choosing it, from the same state and uniforms as
the choice), the reward the feedback mode revealed (NaN where it revealed nothing), and, marked as
simulation-only, every option's reward as estimated at decision time (the counterfactuals that
regret and the oracle use). Rows come in completion order.

An agent reports propensities through ``propensity_kind``: ``"deterministic"`` (its choice has
probability 1), ``"stochastic"`` (exact probabilities: ``act_with_prob`` on the step path, a ``prob``
kernel on the fused path; a stochastic kernel agent without one, LinTS, is logged on the step path).
Agents that cannot say are refused before the run starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .state import R_FB, R_FEEDBACK_R, R_G, R_OPTION, R_ORIGIN, R_T_DECISION

__all__ = ["DecisionLogSink", "open_decision_log", "PROPENSITY_KINDS", "CHUNK_ROWS"]

CHUNK_ROWS = 65_536  # records drained at a time = rows per write = one Parquet row group (no concatenation)

PROPENSITY_KINDS = ("deterministic", "stochastic")


def check_propensities(agent, fused: bool) -> str:
    """The agent's propensity kind, or ConfigError saying why it cannot be logged."""
    from ..agents import propensity_problem

    why = propensity_problem(agent)
    if why:
        name = getattr(agent, "name", None) or type(agent).__name__
        raise ConfigError(f"log: agent {name!r} cannot report the probability of its decisions ({why}); "
                          "decision logs need it for off-policy evaluation. Log an agent whose propensity_kind "
                          "is 'deterministic' or 'stochastic' (docs/ope.md lists them)")
    return agent.propensity_kind


class DecisionLogSink:
    """Turns drained request records into log rows (a callable for ``RunState.sink``)."""

    def __init__(self, writer, n_options: int, n_features: int, n_actions: int):
        self.writer = writer
        self.k, self.f, self.a = n_options, n_features, n_actions

    def __call__(self, rec: np.ndarray) -> None:
        k, f, a = self.k, self.f, self.a
        r = rec[:, R_FEEDBACK_R].copy()
        observed = np.isfinite(r)
        r[~observed] = np.nan
        c0 = R_FB + a + k
        self.writer.write(request=rec[:, R_G].astype(np.int64), time_s=rec[:, R_T_DECISION],
                          origin=rec[:, R_ORIGIN].astype(np.int64), x=rec[:, c0:c0 + f],
                          action=rec[:, R_OPTION].astype(np.int64), propensity=rec[:, c0 + f],
                          observed=observed, reward=r, sim_rewards=rec[:, R_FB + a:R_FB + a + k])


def open_decision_log(path, scenario, agent, *, n_options: int, n_features: int, fused: bool,
                      overwrite: bool = False):
    """``(writer, sink, kind)`` for a run of ``agent`` on ``scenario``; refuses (ConfigError / LogError)
    before any work when the agent cannot report propensities or ``path`` cannot be written."""
    from ..ope import LogMeta, LogWriter

    kind = check_propensities(agent, fused)
    name = getattr(agent, "name", None) or type(agent).__name__
    try:
        spec = repr(agent) if hasattr(agent, "get_params") else name
    except Exception:  # noqa: BLE001 - a user object whose repr fails: its name will do
        spec = name
    meta = LogMeta(n_options=int(n_options), n_features=int(n_features), feedback=str(getattr(scenario.feedback.mode, "value", scenario.feedback.mode)),
                   simulated=True, policy=spec, scenario=scenario.name, extra={"propensity_kind": kind})
    writer = LogWriter(Path(path), meta, overwrite=overwrite, background=True)
    return writer, DecisionLogSink(writer, n_options, n_features, n_options), kind
