"""``simulate(scenario, agent, steps, seed)``: run one agent on one scenario, return a RunResult.

How the fused loop uses the agent kernel protocol (``idnbandit.agents.base``)
----------------------------------------------------------------------------
For an agent with ``has_kernels``, ``agent.kernels()`` gives ``select``, ``update``, the state tuple
and ``n_uniforms``. Per chunk of ``CHUNK`` requests the loop draws ``u = agent.rng.random((n,
n_uniforms))`` (the same numbers ``agent.act`` would draw one row at a time) and calls one compiled
function, ``run_fused_(select, update, state, ...)``, which for each request: advances background
load, builds the context and the counterfactual rewards (``prepare_``), calls
``a = select(state, x, u[i])``, serves the request (``commit_``), records true metrics
(``record_``), pushes the observed feedback into the ring buffer and calls
``update(state, x, a, r, rewards)`` for every entry that is due (immediately without delay), so
``update`` runs exactly once per decision, in decision order. Agents with
``needs_counterfactuals = True`` (the oracle) receive the counterfactual reward vector in place of
the context in ``select`` (``act_oracle(rewards)`` on the Python loop); ``update`` always gets the
context.
The Python loop does the same steps with ``agent.act`` / ``agent.update`` around the same njit
functions, so both paths give bit-identical trajectories.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from numba import njit
from numba.core.cpu import CPUTargetOptions

from ..errors import ConfigError
from ..scenario.model import Tier
from .compiled import P_TIMEOUT_S, context_names
from .engine import check_seed, resolve_inputs
from .kernel_ids import stabilise_kernel_ids
from .kernels import (
    bg_ready,
    bg_ready_,
    commit,
    context_,
    feedback_,
    new_scratch,
    new_state,
    option_outcome_,
    prepare,
)
from .metrics import (
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
    new_metrics,
    new_ring,
    quantile_ms,
    record,
    record_,
    ring_due,
    ring_pop_,
    ring_push_,
)
from .result import RunResult
from .workload import CHUNK, BackgroundSource, RequestStream

__all__ = ["simulate"]

_RING_MAX = 1 << 18

# The fused loop is compiled without numba's reference counting (NRT): with it, every array argument
# of an ``inline="always"`` kernel is incref'd and decref'd (atomic operations the refcount pruner
# cannot remove across the kernel's loops) at each of its ~10 call sites per request, about three
# quarters of the loop's time. The loop allocates nothing, so it needs no reference counts. The
# agent kernels may allocate: they are called through the NRT-enabled trampolines below, so that
# numba, which compiles a callee with its caller's NRT flag unless the callee sets it, compiles
# them with NRT. ``_nrt`` is a private numba option (numba uses it for its own hot helpers);
# without it everything is compiled as usual.
_HAS_NRT_OPTION = hasattr(CPUTargetOptions, "_nrt")
_NO_NRT = {"_nrt": False} if _HAS_NRT_OPTION else {}
_WITH_NRT = {"_nrt": True} if _HAS_NRT_OPTION else {}


@njit(cache=True, error_model="numpy", **_WITH_NRT)
def select_(select, astate, x, u):
    return select(astate, x, u)


@njit(cache=True, error_model="numpy", **_WITH_NRT)
def update_(update, astate, x, a, r, rs):
    update(astate, x, a, r, rs)


@njit(cache=True, error_model="numpy", **_NO_NRT)
def run_fused_(select, update, astate, c, st, sc, met, ring, req_t, req_o, req_s, u, i0, i1, g0, use_cf):
    """Requests ``i0 .. i1-1`` of a chunk; returns where it stopped (``i1`` when done, earlier when
    background jobs must be topped up, ``-1 - i`` when ``select`` returned an invalid option)."""
    # unpack once: with NRT on, numba reference-counts every array taken out of a tuple
    node_f, node_i, opt_i, opt_f, predc = c.node_f, c.node_i, c.opt_i, c.opt_f, c.predc
    fault_i, fault_f, par, feat, bg_nodes = c.fault_i, c.fault_f, c.par, c.feat, c.bg_nodes
    server_free, link_free, bg_arr, bg_svc, bg_i, bg_horizon = st
    x, cf, cf_out, out, fb_rs, tmp = sc
    sums, opt_count, tier_count, cf_sum, hist, curve_t, curve_reward, curve_oracle, curve_cf, ptr = met
    rx, ra, rr, rrs, ridx, rt, meta = ring
    cap = ra.shape[0]
    k_n = opt_i.shape[1]
    timeout_s = par[P_TIMEOUT_S]
    for i in range(i0, i1):
        t = req_t[i]
        if not bg_ready_(bg_nodes, bg_horizon, t + timeout_s):
            return i
        o = req_o[i]
        s = req_s[i]
        g = g0 + i
        context_(node_i, opt_i, par, feat, bg_nodes, server_free, bg_arr, bg_svc, bg_i, x, o, s, t)
        # one call site for the K counterfactuals and the committed choice (row K): halves compile time
        a = 0
        for j in range(k_n + 1):
            kk = j
            if j == k_n:
                a = select_(select, astate, cf if use_cf else x, u[i])
                if a < 0 or a >= k_n:
                    return -1 - i
                kk = a
            v = option_outcome_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free,
                                bg_arr, bg_svc, bg_i, o, kk, s, t, j == k_n, tmp, cf_out, j)
            if j < k_n:
                cf[j] = v
        r = feedback_(opt_i, par, cf, cf_out, fb_rs, o, a)
        record_(node_i, opt_i, sums, opt_count, tier_count, cf_sum, hist, curve_t, curve_reward, curve_oracle,
                curve_cf, ptr, cf, cf_out, o, a, g)
        if meta[1] == cap:
            j = ring_pop_(meta, cap)
            meta[2] += 1
            update_(update, astate, rx[j], ra[j], rr[j], rrs[j])
        ring_push_(rx, ra, rr, rrs, ridx, rt, meta, x, a, r, fb_rs, g, t)
        while ring_due(par, ridx, rt, meta, g, t):
            j = ring_pop_(meta, cap)
            update_(update, astate, rx[j], ra[j], rr[j], rrs[j])
    return i1


@njit(cache=True, error_model="numpy", **_NO_NRT)
def flush_fused_(update, astate, ring):
    rx, ra, rr, rrs, ridx, rt, meta = ring
    while meta[1] > 0:
        j = ring_pop_(meta, ra.shape[0])
        update_(update, astate, rx[j], ra[j], rr[j], rrs[j])


@njit(cache=True, error_model="numpy")
def finish_(c, st, sc, met, o, a, s, t, g):
    r = commit(c, st, sc, o, a, s, t)
    record(c, met, sc, o, a, g)
    return r


def _check_agent(agent, k: int, f: int) -> None:
    if not (callable(getattr(agent, "act", None)) and callable(getattr(agent, "update", None))):
        raise ConfigError(f"agent: {type(agent).__name__} has no act/update methods")
    na = getattr(agent, "n_actions", None)
    if na is not None and na != k:
        raise ConfigError(f"agent.n_actions: {na!r} does not match the scenario's {k} options per origin")
    nf = getattr(agent, "n_features", None)
    if nf is not None and nf != f:
        raise ConfigError(f"agent.n_features: {nf!r} does not match the scenario's context length {f}")


def _ring_capacity(c, stream) -> int:
    if c.delay_s > 0:
        return int(min(_RING_MAX, max(1024, math.ceil(4 * stream.rate * c.delay_s) + 1024)))
    return int(min(_RING_MAX, c.delay_requests + 1))


def simulate(scenario, agent, steps: int, seed: int | None = None, *, trace=None,
             progress: Callable[[int], None] | None = None, curve_points: int = 200,
             scope: str | None = None) -> RunResult:
    """Run ``agent`` on ``steps`` requests of ``scenario``; return true-outcome metrics.

    Parameters
    ----------
    scenario
        A :class:`~idnbandit.scenario.Scenario`, or a built-in name / TOML path.
    agent
        An :class:`~idnbandit.agents.Agent` (fused path when it has kernels) or any object with
        ``act(context) -> int`` and ``update(context, action, reward, *, rewards=None)``. It keeps
        learning from its current state: call ``agent.reset()`` first for a fresh run.
    steps
        Number of requests (decisions), > 0.
    seed
        Run seed of the request stream and background load (None: ``scenario.seed``).
    trace
        Model outputs (default: the scenario's own trace).
    progress
        Called with the number of requests done after each chunk.
    curve_points
        Number of points of the regret curves.
    scope
        None (default): one decision per request at its origin over all its options.
        ``"shared"`` / ``"per-node"``: multi-hop delivery, every node on the path decides with one
        shared learner or one learner per node (see :mod:`idnbandit.sim.multihop`).

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
    if scope is not None:  # every node decides (idnbandit.sim.multihop)
        from .multihop import simulate_multihop

        return simulate_multihop(scenario, agent, steps, seed, scope=scope, trace=trace, progress=progress,
                                 curve_points=int(curve_points))
    if getattr(agent, "is_ensemble_strategy", False):  # several options per request (idnbandit.ensembles)
        from .ensemble_run import simulate_ensemble

        return simulate_ensemble(scenario, agent, steps, seed, trace=trace, progress=progress,
                                 curve_points=int(curve_points))
    scenario, trace, c = resolve_inputs(scenario, trace)
    seed = check_seed(seed, scenario.seed)
    k = c.n_options
    use_cf = bool(getattr(agent, "needs_counterfactuals", False))
    _check_agent(agent, k, int(c.n_features))
    stream = RequestStream(scenario, c.feat.shape[1], seed)  # reads and checks a replay file
    bg = BackgroundSource(scenario, seed)
    fused = bool(getattr(agent, "has_kernels", False))

    st = new_state(c)
    sc = new_scratch(c)
    met = new_metrics(k, steps, curve_points)
    ring = new_ring(int(c.n_features), k, _ring_capacity(c, stream))
    if fused:
        kern = agent.kernels()
        stabilise_kernel_ids(kern.select, kern.update)
        n_unif = int(kern.n_uniforms)
    name = getattr(agent, "name", None) or type(agent).__name__
    span_cap = 65536 / max(bg.max_rate, 1e-12)
    if fused:  # compile (or load from numba's cache) before the clock starts: decisions/s times the run
        no_t, no_i = np.empty(0, np.float64), np.empty(0, np.int64)
        run_fused_(kern.select, kern.update, kern.state, c, st, sc, met, ring, no_t, no_i, no_i,
                   np.empty((0, n_unif)), 0, 0, 0, use_cf)
        flush_fused_(kern.update, kern.state, ring)

    t0 = time.perf_counter()
    done = 0
    while done < steps:
        req_t, req_o, req_s = stream.next_chunk()
        n = min(CHUNK, steps - done)
        if fused:
            u = agent.rng.random((n, n_unif))
            i = 0
            while i < n:
                if not bg_ready(c, st, req_t[i]):
                    st = bg.top_up(st, req_t[i] + c.timeout_s + min(req_t[n - 1] - req_t[i], span_cap))
                i = run_fused_(kern.select, kern.update, kern.state, c, st, sc, met, ring, req_t, req_o, req_s,
                               u, i, n, done, use_cf)
                if i < 0:
                    raise ConfigError(f"agent {name!r} chose an option outside [0, {k}) at request {done - 1 - i}")
        else:
            st = _python_chunk(agent, c, st, sc, met, ring, bg, req_t, req_o, req_s, n, done, use_cf, k, span_cap)
        done += n
        if progress is not None:
            progress(done)
    if fused:
        flush_fused_(kern.update, kern.state, ring)
    else:
        while ring.meta[1] > 0:
            j = ring_pop_.py_func(ring.meta, ring.a.shape[0])
            agent.update(ring.x[j], int(ring.a[j]), float(ring.r[j]), rewards=ring.rs[j])
    wall = time.perf_counter() - t0
    return _result(scenario, c, name, seed, steps, met, ring, wall, "fused" if fused else "python")


def _python_chunk(agent, c, st, sc, met, ring, bg, req_t, req_o, req_s, n, g0, use_cf, k, span_cap):
    update = agent.update
    act_oracle = getattr(agent, "act_oracle", agent.act)
    cap = ring.a.shape[0]
    for i in range(n):
        t = float(req_t[i])
        if not bg_ready(c, st, t):
            st = bg.top_up(st, t + c.timeout_s + min(float(req_t[n - 1]) - t, span_cap))
        o, s, g = int(req_o[i]), int(req_s[i]), g0 + i
        prepare(c, st, sc, o, s, t)
        a = act_oracle(sc.cf.copy()) if use_cf else agent.act(sc.x.copy())
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < k:
            raise ConfigError(f"agent {type(agent).__name__} chose {a!r} at request {g}; options are [0, {k})")
        r = finish_(c, st, sc, met, o, int(a), s, t, g)
        if ring.meta[1] == cap:
            j = ring_pop_.py_func(ring.meta, cap)
            ring.meta[2] += 1
            update(ring.x[j].copy(), int(ring.a[j]), float(ring.r[j]), rewards=ring.rs[j].copy())
        ring_push_.py_func(*ring, sc.x, int(a), r, sc.fb_rs, g, t)
        while ring_due.py_func(c.par, ring.idx, ring.t, ring.meta, g, t):
            j = ring_pop_.py_func(ring.meta, cap)
            update(ring.x[j].copy(), int(ring.a[j]), float(ring.r[j]), rewards=ring.rs[j].copy())
    return st


def _result(scenario, c, name, seed, steps, met, ring, wall, path) -> RunResult:
    s = met.sums
    n = float(steps)
    best = int(np.argmax(met.cf_sum))
    tier_names = [str(t) for t in Tier]
    extra = {
        "path": path,
        "network_mean_ms": s[S_NET] / n * 1e3,
        "queueing_mean_ms": s[S_QUEUE] / n * 1e3,
        "compute_mean_ms": s[S_COMPUTE] / n * 1e3,
        "best_fixed_option": best,
        "forced_feedback_deliveries": int(ring.meta[2]),
        "context_names": context_names(scenario),
    }
    return RunResult(
        scenario=scenario.name,
        agent=str(name),
        seed=int(seed),
        steps=int(steps),
        mean_reward=s[S_REWARD] / n,
        accuracy=s[S_CORRECT] / n,
        latency_mean_ms=s[S_LATENCY] / n * 1e3,
        latency_p50_ms=quantile_ms(met.hist, 0.50),
        latency_p95_ms=quantile_ms(met.hist, 0.95),
        latency_p99_ms=quantile_ms(met.hist, 0.99),
        deadline_violation_rate=s[S_LATE] / n,
        timeout_rate=s[S_TIMEOUT] / n,
        forward_rate=s[S_FORWARD] / n,
        forward_rate_by_tier={tier_names[i]: float(met.tier_count[i]) / n for i in range(len(tier_names))},
        mean_cost=s[S_COST] / n,
        option_rates=met.opt_count / n,
        fixed_option_mean_reward=met.cf_sum / n,
        oracle_mean_reward=s[S_ORACLE] / n,
        regret_oracle=float(s[S_ORACLE] - s[S_REWARD]),
        regret_best_fixed=float(met.cf_sum[best] - s[S_REWARD]),
        curve_t=met.curve_t.copy(),
        curve_regret_oracle=met.curve_oracle - met.curve_reward,
        curve_regret_best_fixed=met.curve_cf[:, best] - met.curve_reward,
        latency_hist_edges_ms=hist_edges_ms(),
        latency_hist_counts=met.hist.copy(),
        wall_time_s=float(wall),
        decisions_per_s=float(steps / wall) if wall > 0 else float("inf"),
        extra=extra,
    )
