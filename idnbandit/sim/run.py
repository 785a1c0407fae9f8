"""``simulate()``: a whole run of an agent on a scenario (the entry point above the event core's drivers).

It validates the inputs, builds the run's state (:class:`~idnbandit.sim.loop.Driver`), picks the
driver (fused for agents with numba kernels, Python otherwise; :mod:`idnbandit.sim.loop`), the
multi-hop layout for ``scope`` (:mod:`idnbandit.sim.multihop`) or the ensemble driver
(:mod:`idnbandit.sim.ensemble_run`), and turns the metric arrays into a :class:`RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..errors import ConfigError
from ..scenario.model import Tier
from .compiled import check_seed, context_names, resolve_inputs
from .decision_log import CHUNK_ROWS, open_decision_log
from .ensemble_run import simulate_ensemble
from .loop import Driver, check_agent, compile_fused, drive_kernels, drive_python
from .metrics import (
    S_CHOSEN_ESTIMATE,
    S_COMPUTE,
    S_CORRECT,
    S_COST,
    S_FORWARD,
    S_LATE,
    S_LATENCY,
    S_NET,
    S_ORACLE,
    S_QUEUE,
    S_REWARD,
    S_TIMEOUT,
    hist_edges_ms,
    quantile_ms,
)
from .multihop import multihop_layout, node_agents
from .result import RunResult
from .state import RunState

__all__ = ["simulate", "result_of", "check_feedback"]


def check_feedback(agents, scenario, strict: bool = False) -> None:
    """Warn (FeedbackMismatchWarning) or, if ``strict``, raise ConfigError when an agent of ``agents`` cannot
    learn from ``scenario``'s feedback mode (see :func:`idnbandit.agents.feedback_mismatch`)."""
    import warnings

    from ..agents import feedback_mismatch
    from ..errors import FeedbackMismatchWarning

    mode = scenario.feedback.mode
    for msg in dict.fromkeys(m for m in (feedback_mismatch(a, mode) for a in agents) if m):
        if strict:
            raise ConfigError(f"{msg} (scenario {scenario.name!r}; strict=True refuses such runs)")
        warnings.warn(f"{msg} (scenario {scenario.name!r})", FeedbackMismatchWarning, stacklevel=3)


def simulate(scenario, agent, steps: int, seed: int | None = None, *, trace=None,
             progress: Callable[[int], None] | None = None, curve_points: int = 200,
             scope: str | None = None, record_requests: bool = False, strict: bool = False, log=None,
             overwrite_log: bool = False) -> RunResult:
    """Run ``agent`` on ``steps`` requests of ``scenario``; return true-outcome metrics.

    Parameters
    ----------
    scenario
        A :class:`~idnbandit.scenario.Scenario`, or a built-in name / TOML path.
    agent
        An :class:`~idnbandit.agents.Agent` (fused path when it has kernels) or any object with
        ``act(context) -> int`` and ``update(context, action, reward, *, rewards=None)``. It keeps
        learning from its current state: call ``agent.reset()`` first for a fresh run. Under
        ``scope="per-node"`` also a sequence or ``{node: agent}`` dict (see
        :func:`~idnbandit.sim.multihop.node_agents`); an ensemble strategy
        (:mod:`idnbandit.ensembles`) queries several options per request.
    steps
        Number of requests (decisions at the origins), > 0. The run ends when every one of them has
        completed or timed out and every feedback has been delivered.
    seed
        Run seed of the request stream and background load (None: ``scenario.seed``).
    trace
        Model outputs (default: the scenario's own trace).
    progress
        Called with the number of requests decided so far, every 65,536 requests and at the end.
    curve_points
        Number of points of the regret curves (sampled by finalised requests).
    scope
        None (default): one decision per request at its origin over all its options.
        ``"shared"`` / ``"per-node"``: multi-hop delivery, every node on the path decides with one
        shared learner or one learner per node (see :mod:`idnbandit.sim.multihop`).
    record_requests
        Keep one record per request (``RunResult.requests``: option, decision / node / service /
        completion times, outcome, observed reward, delivery order), for tests and analysis.
    strict
        What to do when the agent cannot learn from the scenario's feedback mode (its
        ``feedback_modes``, e.g. LinUCB under ``label_on_forward``): warn
        (:class:`~idnbandit.errors.FeedbackMismatchWarning`, default) or, if True, raise ConfigError.
    log
        Path of a decision log to write (``.parquet`` or ``.csv``, :mod:`idnbandit.ope`): one row per
        request with the context, the action, its propensity, the observed reward and (simulation
        only) every option's estimated reward. Needs an agent that reports propensities
        (``propensity_kind``) and one decision per request (``scope=None``, no ensemble).
    overwrite_log
        Replace an existing file at ``log`` (default: refuse).

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Bad ``steps``, seed or ``curve_points``; option or context counts that do not match the agent;
        an unreadable replay file; an action out of range.
    TraceError
        A missing trace column or one holding NaN.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps: {steps!r} is not allowed; it must be a positive integer")
    if isinstance(curve_points, bool) or not isinstance(curve_points, (int, np.integer)) or curve_points < 1:
        raise ConfigError(f"curve_points: {curve_points!r} is not allowed; it must be a positive integer")
    if progress is not None and not callable(progress):
        raise ConfigError("progress: must be a callable(done_requests) or None")
    steps = int(steps)
    if getattr(agent, "is_ensemble_strategy", False):  # several options per request (idnbandit.ensembles)
        return simulate_ensemble(scenario, agent, steps, seed, trace=trace, progress=progress,
                                 curve_points=int(curve_points))
    scenario, trace, c = resolve_inputs(scenario, trace)
    seed = check_seed(seed, scenario.seed)
    layout = None
    if scope is not None:
        layout = multihop_layout(scenario, scope)
        agents = node_agents(agent, layout)
        n_act, n_feat = layout.n_actions, layout.n_features
        use_cf = False
    else:
        agents = [agent]
        n_act, n_feat = c.n_options, int(c.n_features)
        use_cf = bool(getattr(agent, "needs_counterfactuals", False))
        check_agent(agent, n_act, n_feat)
    check_feedback(agents, scenario, strict)
    kerns = [a.kernels() for a in agents] if all(getattr(a, "has_kernels", False) for a in agents) else None
    writer = None
    if log is not None:  # before any work: refused agents and unwritable paths fail here
        if layout is not None or record_requests or use_cf:
            raise ConfigError("log: decision logs record one decision per request at its origin; they cannot be "
                              "combined with scope=, record_requests=True or an oracle agent")
        writer, sink, log_kind = open_decision_log(log, scenario, agent, n_options=n_act, n_features=n_feat,
                                            fused=kerns is not None, overwrite=overwrite_log)
        if log_kind == "stochastic" and kerns is not None and kerns[0].prob is None:
            kerns = None  # its probabilities come from act_with_prob (LinTS): the step path
    drv = Driver(c, scenario, seed, steps, layout=layout, n_actions=n_act, n_features=n_feat,
                 curve_points=int(curve_points), record=bool(record_requests) or writer is not None,
                 delivery_log=bool(record_requests), record_rows=CHUNK_ROWS if writer is not None else 256)
    if writer is not None:
        drv.rs.sink, drv.propensities = sink, log_kind
    names = [getattr(a, "name", None) or type(a).__name__ for a in agents]
    if kerns is not None and any(kk.select is not kerns[0].select or kk.update is not kerns[0].update
                                 or kk.n_uniforms != kerns[0].n_uniforms for kk in kerns):
        kerns = None  # different agent classes cannot share one compiled loop
    if kerns is not None:  # compile (or load from numba's cache) before the clock starts: decisions/s times the run
        compile_fused(kerns[0], len(agents), use_cf, drv)
    t0 = time.perf_counter()
    try:
        if kerns is not None:
            drive_kernels(drv, agents, kerns, use_cf, progress, names)
        else:
            drive_python(drv, agents, use_cf, progress, steps)
        if writer is not None:
            drv.rs.drain_records()
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    wall = time.perf_counter() - t0
    if progress is not None:
        progress(steps)
    label = names[0] if layout is None or layout.scope == "shared" else f"{names[0]}[per-node]"
    res = result_of(scenario, drv.rs, label, seed, steps, wall, "fused" if kerns is not None else "python",
                    layout.context_names if layout is not None else context_names(scenario))
    if layout is not None:
        counts = drv.rs.a["node_counts"]
        res.extra.update({
            "scope": layout.scope,
            "decision_nodes": list(layout.nodes),
            "node_decision_rate": {nm: float(counts[d, 0]) / steps for d, nm in enumerate(layout.nodes)},
            "node_forward_rate": {nm: float(counts[d, 1]) / max(int(counts[d, 0]), 1)
                                  for d, nm in enumerate(layout.nodes)},
        })
    if record_requests:
        object.__setattr__(res, "requests", drv.rs.request_records())
    if writer is not None:
        res.extra["log"] = {"path": str(writer.path), "rows": writer.rows}
    return res


def result_of(scenario, rs: RunState, name: str, seed: int, steps: int, wall: float, path: str,
              cnames) -> RunResult:
    """The :class:`RunResult` of a finished run from its metric arrays."""
    a = rs.a
    s = a["sums"]
    n = float(steps)
    best = int(np.argmax(a["cf_sum"]))
    tier_names = [str(t) for t in Tier]
    extra = {
        "path": path,
        "network_mean_ms": s[S_NET] / n * 1e3,
        "queueing_mean_ms": s[S_QUEUE] / n * 1e3,
        "compute_mean_ms": s[S_COMPUTE] / n * 1e3,
        "best_fixed_option": best,
        # mean decision-time estimate of the chosen option (the realised mean reward minus this is the
        # error of the counterfactual estimates on this run's own choices)
        "chosen_estimate_mean_reward": s[S_CHOSEN_ESTIMATE] / n,
        "context_names": list(cnames),
    }
    curve_reward = a["curve_reward"]
    return RunResult(
        scenario=scenario.name,
        agent=str(name),
        seed=int(seed),
        steps=int(steps),
        mean_reward=s[S_REWARD] / n,
        accuracy=s[S_CORRECT] / n,
        latency_mean_ms=s[S_LATENCY] / n * 1e3,
        latency_p50_ms=quantile_ms(a["hist"], 0.50),
        latency_p95_ms=quantile_ms(a["hist"], 0.95),
        latency_p99_ms=quantile_ms(a["hist"], 0.99),
        deadline_violation_rate=s[S_LATE] / n,
        timeout_rate=s[S_TIMEOUT] / n,
        forward_rate=s[S_FORWARD] / n,
        forward_rate_by_tier={tier_names[i]: float(a["tier_count"][i]) / n for i in range(len(tier_names))},
        mean_cost=s[S_COST] / n,
        option_rates=a["opt_count"] / n,
        fixed_option_mean_reward=a["cf_sum"] / n,
        oracle_mean_reward=s[S_ORACLE] / n,
        regret_oracle=float(s[S_ORACLE] - s[S_REWARD]),
        regret_best_fixed=float(a["cf_sum"][best] - s[S_REWARD]),
        curve_t=a["curve_t"].copy(),
        curve_regret_oracle=a["curve_oracle"] - curve_reward,
        curve_regret_best_fixed=a["curve_cf"][:, best] - curve_reward,
        latency_hist_edges_ms=hist_edges_ms(),
        latency_hist_counts=a["hist"].copy(),
        wall_time_s=float(wall),
        decisions_per_s=float(steps / wall) if wall > 0 else float("inf"),
        extra=extra,
    )
