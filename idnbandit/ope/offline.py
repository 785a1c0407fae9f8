"""Learning from a decision log: rejection-sampling replay (Li et al. 2011; Dudík et al. 2012).

:func:`replay` walks a log in order and shows the agent a row only when the agent, asked what it would
do, picks the logged action; the row is then *accepted* with probability ``p_min / p`` (``p`` the
row's propensity, ``p_min`` the smallest propensity in the log), and the agent learns from its
reward. Under a uniform logging policy every match is accepted (Li et al.'s replay); otherwise the
acceptance step importance-weights the rows by rejection, so the accepted stream is distributed as
if the log had been uniform over the options. The mean reward of the accepted rows estimates what
the agent would have earned online on this traffic (Li, Chu, Langford & Wang, "Unbiased offline
evaluation of contextual-bandit-based news article recommendation algorithms", WSDM 2011), and the
agent leaves warmed up, ready to be saved and deployed.

Only about ``n · p_min`` rows are used (1/K of the log for a uniform log), and the estimate needs
every option to have a propensity bounded away from 0: a deterministic logging policy gives nothing
to replay.

Examples
--------
>>> from idnbandit.agents.registry import make_agent
>>> from idnbandit.ope import replay, synthetic_log
>>> log, _ = synthetic_log(3000, n_options=3, n_features=2, logging="uniform", seed=1)
>>> agent = make_agent("epsilon-greedy", 3, 2, seed=0)
>>> res = replay(agent, log, seed=0)
>>> res.accepted > 800, round(res.mean_reward, 2) > 0
(True, True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, LogError
from .reader import log_chunks

__all__ = ["ReplayResult", "replay"]


class ReplayResult(NamedTuple):
    """What a replay did: rows seen, matched and accepted, and the accepted rows' mean reward.

    ``std_error`` is the standard error of that mean as if the accepted rewards were independent; for a
    learning agent they are not (it improves along the way), so read it as a rough scale.
    """

    rows: int
    matched: int
    accepted: int
    mean_reward: float  # NaN when nothing was accepted
    std_error: float  # NaN with fewer than 2 accepted rows
    p_min: float


def replay(agent, log, *, seed: int | None = 0, p_min: float | None = None, chunk_rows: int = 65_536,
           progress=None, n_options: int | None = None, missing: str = "error") -> ReplayResult:
    """Train ``agent`` on ``log`` by rejection-sampling replay; returns what was used.

    Parameters
    ----------
    agent
        Anything with ``act(x) -> int`` and ``update(x, a, r)`` (an idnbandit agent, or your own).
        It learns in place.
    log
        A :class:`DecisionLog` or a log path.
    seed
        Seed of the acceptance draws.
    p_min
        The acceptance scale (default: the smallest propensity of the log, found in a first pass).
    progress
        Called with the number of rows read after each chunk.
    n_options
        Number of options of a CSV log without the metadata line.
    missing
        ``"error"`` (default) or ``"drop"``: skip rows without an observed reward (biased, docs/ope.md).

    Raises
    ------
    LogError
        Unobserved rewards (the replay needs the logged action's reward) or a bad log.
    ConfigError
        An agent without act/update, or ``p_min`` outside (0, 1].
    """
    if not (callable(getattr(agent, "act", None)) and callable(getattr(agent, "update", None))):
        raise ConfigError(f"agent: {type(agent).__name__} has no act/update methods")
    if missing not in ("error", "drop"):
        raise ConfigError(f"missing: {missing!r} is not allowed; it must be 'error' or 'drop'")
    if p_min is None:
        p_min = min((float(c.propensity[c.observed].min()) for c in log_chunks(log, chunk_rows, n_options)
                     if c.observed.any()),
                    default=1.0)
    if not isinstance(p_min, (int, float)) or not 0 < p_min <= 1:
        raise ConfigError(f"p_min: {p_min!r} is not allowed; it must be in (0, 1]")
    rng = np.random.default_rng(seed)
    rows = matched = accepted = 0
    total = total_sq = 0.0
    for chunk in log_chunks(log, chunk_rows, n_options):
        n_k = getattr(agent, "n_actions", chunk.meta.n_options)
        if n_k != chunk.meta.n_options:
            raise ConfigError(f"agent.n_actions: {n_k} does not match the log's {chunk.meta.n_options} options")
        u = rng.random(chunk.n_rows)
        for i in range(chunk.n_rows):
            if not chunk.observed[i]:
                if missing == "drop":
                    continue
                raise LogError(f"row {rows + i}: no observed reward; replay needs the logged action's reward")
            x = chunk.x[i]
            a = int(chunk.action[i])
            if int(agent.act(x.copy())) != a:
                continue
            matched += 1
            if u[i] >= p_min / chunk.propensity[i]:
                continue
            accepted += 1
            r = float(chunk.reward[i])
            total += r
            total_sq += r * r
            agent.update(x.copy(), a, r)
        rows += chunk.n_rows
        if progress is not None:
            progress(rows)
    mean = total / accepted if accepted else float("nan")
    se = float(np.sqrt(max(total_sq / accepted - mean * mean, 0.0) / (accepted - 1))) if accepted > 1 else float("nan")
    return ReplayResult(rows, matched, accepted, mean, se, float(p_min))
