"""The simulator loop for ensemble strategies: several options queried per request, on the event core.

:func:`simulate` dispatches here for objects with ``is_ensemble_strategy`` (see
:mod:`idnbandit.ensembles.strategy` for the protocol). The event core
(:mod:`idnbandit.sim.core`, ensemble mode) runs every request, query and background job in exact
time order (same request stream and background load as every other agent with the same seed); this
module is its Python driver. Per request:

1. at its arrival the context and the single-option counterfactual estimates are computed, exactly
   as for a one-option agent; ``strategy.begin(x)`` names a first batch of options;
2. the batch is sent **in parallel**: local options start at once; the input crosses each link of
   the path **once per batch** (the farthest option carries it, the others are handed their copy
   at their node: multicast / relay along the path); every query then queues at its node and its
   answer comes back on its own through the down links;
3. when every query of the batch has answered, ``strategy.observe`` receives the answers (in query
   order; ``probs`` None for a query that did not answer) and ``strategy.next_batch()`` may name
   another batch, sent at that moment, so batch latencies **add up**, until it returns ``[]``;
4. the client's timeout covers the whole request: at ``t + timeout_s`` the strategy answers with
   what it has (the outstanding queries count as unanswered; latency ``timeout_s``);
5. the answer is the strategy's aggregate vote; the request is right if the vote equals the label
   and the total latency meets the deadline; reward ``w_acc * correct - w_lat * latency_s -
   w_cost * (sum of the queried options' costs)``;
6. the label is revealed to the strategy by the scenario's feedback mode, just before the first
   request decided at or after the answer time + ``delay_s`` (or ``delay_requests`` requests later):
   ``full`` always; ``bandit`` only when the answer was right (the reward of a wrong answer does not
   say which class was right); ``label_on_forward`` when a non-local option answered; ``proxy``: the
   answer of the farthest non-local option that answered stands in for the label.

Metrics are true outcomes; ``option_rates`` and ``forward_rate_by_tier`` count the requests that
queried each option / tier (their sum can exceed 1); ``fixed_option_mean_reward`` and the oracle are
the single-option counterfactual estimates (an ensemble can beat that oracle: negative regret).
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np
from numba import njit

from ..errors import ConfigError
from ..scenario.model import Tier
from .compiled import (
    NODE_PROP_S,
    NODE_TIER,
    OPT_COMPUTE_S,
    OPT_COST,
    OPT_LINKS,
    OPT_LOCAL,
    OPT_NLINKS,
    OPT_NODE,
    OPT_TX,
    check_seed,
    resolve_inputs,
)
from .core import C_DECIDE, C_DONE, PEND_ORIGIN
from .ensemble_kernels import decide_batch_, ens_finish_
from .loop import Driver, run_to_decision
from .metrics import HIST_BINS, HIST_LO_MS, HIST_RATIO, curve_points_of, hist_edges_ms, quantile_ms
from .result import RunResult
from .state import M_G_NEXT, M_PEND_KIND, M_PEND_SLOT, Q_RESP, Q_SENT, RQ_G, RQ_O, RQ_S, T_PEND

__all__ = ["simulate_ensemble", "nominal_latency_s", "trace_columns", "label_seen"]


def nominal_latency_s(c) -> np.ndarray:
    """(O, K) latency of each option with idle queues and links: transfers, propagation, compute."""
    o_n, k_n = c.opt_i.shape[:2]
    out = np.zeros((o_n, k_n))
    for o in range(o_n):
        for k in range(k_n):
            lat = c.opt_f[o, k, OPT_COMPUTE_S]
            for j in range(int(c.opt_i[o, k, OPT_NLINKS])):
                lk = c.opt_i[o, k, OPT_LINKS + j]
                lat += c.opt_f[o, k, OPT_TX + 2 * j] + c.opt_f[o, k, OPT_TX + 2 * j + 1] + 2 * c.node_f[lk, NODE_PROP_S]
            out[o, k] = lat
    return out


def trace_columns(scenario, trace) -> np.ndarray:
    """(O, K) trace column (index into ``trace.probs``) of each origin's options."""
    models = {m.name: m for m in scenario.models}
    return np.array([[trace.model_names.index(models[m].trace_column) for _, m in scenario.options(origin)]
                     for origin in scenario.workload.origins], dtype=np.int64)


def _check(steps, curve_points, progress):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps: {steps!r} is not allowed; it must be a positive integer")
    if isinstance(curve_points, bool) or not isinstance(curve_points, (int, np.integer)) or curve_points < 1:
        raise ConfigError(f"curve_points: {curve_points!r} is not allowed; it must be a positive integer")
    if progress is not None and not callable(progress):
        raise ConfigError("progress: must be a callable(done_requests) or None")


def label_seen(mode: int, label: int, correct: bool, answered: list[tuple[int, int, bool]]) -> int | None:
    """The label the strategy sees (None: nothing); ``answered`` = (option, answer, local) in query order."""
    if mode == 0:
        return label
    if mode == 1:
        return label if correct else None
    remote = [(k, a) for k, a, local in answered if not local]
    if not remote:
        return None
    if mode == 2:
        return label
    return max(remote)[1]  # proxy: the farthest remote option's answer


@njit(cache=True, error_model="numpy")
def decide_batch(CF, CI, SF, SI, mask):  # noqa: N803
    """:func:`~idnbandit.sim.core.decide_batch_` callable from Python."""
    return decide_batch_(CF, CI, SF, SI, mask)


@njit(cache=True, error_model="numpy")
def ens_finish(SF, SI):  # noqa: N803
    """:func:`~idnbandit.sim.core.ens_finish_` callable from Python."""
    ens_finish_(SF, SI)


def simulate_ensemble(scenario, strategy, steps: int, seed: int | None = None, *, trace=None,
                      progress=None, curve_points: int = 200) -> RunResult:
    """Run an ensemble ``strategy`` on ``steps`` requests of ``scenario`` (see the module docstring).

    Parameters are those of :func:`idnbandit.sim.simulate`. The strategy is bound to the scenario
    (classes, nominal option prices ``w_lat * idle latency + w_cost * cost``, averaged over origins)
    and starts learning from scratch.

    Raises
    ------
    ConfigError
        Bad arguments, an option count that does not match the strategy, or an invalid batch
        (an option out of range or queried twice for one request).
    """
    _check(steps, curve_points, progress)
    steps = int(steps)
    scenario, trace, c = resolve_inputs(scenario, trace)
    seed = check_seed(seed, scenario.seed)
    k_n = c.n_options
    if getattr(strategy, "n_actions", k_n) != k_n:
        raise ConfigError(f"strategy.n_actions: {strategy.n_actions!r} does not match the scenario's {k_n} options")
    prices = c.w_lat * nominal_latency_s(c) + c.w_cost * c.opt_f[:, :, OPT_COST]
    strategy.bind(trace.n_classes, prices.mean(axis=0), c.w_acc)
    loop = _Loop(scenario, trace, c, strategy, steps, seed, int(curve_points))
    t0 = time.perf_counter()
    loop.run(progress)
    wall = time.perf_counter() - t0
    return _result(loop, wall)


class _Loop:
    """The Python side of one ensemble run: the strategy's turns, labels, metrics."""

    def __init__(self, scenario, trace, c, strategy, steps, seed, curve_points):
        self.scenario, self.c, self.strategy, self.steps, self.seed = scenario, c, strategy, steps, seed
        self.cols = trace_columns(scenario, trace)
        self.probs_all, self.labels = trace.probs, trace.labels
        self.drv = Driver(c, scenario, seed, steps, n_actions=c.n_options, n_features=int(c.n_features),
                          curve_points=1, ensemble=True)
        self.local = c.opt_i[:, :, OPT_LOCAL] == 1
        k_n = c.n_options
        self.name = getattr(strategy, "name", None) or type(strategy).__name__
        self.lat, self.rew, self.best_cf = np.zeros(steps), np.zeros(steps), np.zeros(steps)
        self.cf_sum = np.zeros(k_n)
        self.ct = curve_points_of(steps, curve_points)
        self.cf_curve = np.zeros((self.ct.size, k_n))  # cf_sum after request ct[p]
        self.ptr = 0
        self.opt_count = np.zeros(k_n)
        self.tier_count = np.zeros(len(list(Tier)))
        self.tot = dict(correct=0.0, cost=0.0, late=0.0, timeout=0.0, forward=0.0, queries=0.0, batches=0.0,
                        revealed=0.0)
        self.inflight: dict[int, dict] = {}
        self.pending: deque = deque()  # (due time, due request count, record, label)

    def run(self, progress) -> None:
        drv, rs = self.drv, self.drv.rs
        last = 0
        while True:
            code = run_to_decision(*drv.packs)
            if code == C_DONE:
                break
            if code != C_DECIDE:
                drv.serve(code)
                continue
            m = rs.imisc
            if m[M_PEND_KIND] == PEND_ORIGIN:
                self._arrive(int(m[M_PEND_SLOT]))
                g = int(m[M_G_NEXT])
                if progress is not None and g - last >= 65_536:
                    last = g
                    progress(g)
            else:
                self._answered(int(m[M_PEND_SLOT]))
        while self.pending:
            _, _, rec, lab = self.pending.popleft()
            self.strategy.learn(rec, lab)
        if progress is not None:
            progress(self.steps)

    def _arrive(self, slot: int) -> None:
        """A request arrives: deliver the labels that are due, start it with the strategy's first batch."""
        rs = self.drv.rs
        g = int(rs.imisc[M_G_NEXT])
        t = float(rs.fmisc[T_PEND])
        while self.pending and self.pending[0][0] <= t and self.pending[0][1] <= g:
            _, _, rec, lab = self.pending.popleft()
            self.strategy.learn(rec, lab)
        cf = rs.a["rq_cf"][slot]
        self.cf_sum += cf
        self.best_cf[g] = cf.max()
        if self.ptr < self.ct.size and g + 1 == self.ct[self.ptr]:
            self.cf_curve[self.ptr] = self.cf_sum
            self.ptr += 1
        req, batch = self.strategy.begin(rs.a["rq_x"][slot, 0].copy())
        i = rs.a["rq_i"][slot]
        self.inflight[g] = dict(req=req, t=t, o=int(i[RQ_O]), s=int(i[RQ_S]), cost=0.0, asked=[], batch=[],
                                answered=[], tiers=set())
        if not batch:
            raise ConfigError(f"strategy {self.name!r} asked for no option at the start of request {g}")
        self._send(g, batch)

    def _send(self, g: int, batch: list[int]) -> None:
        c, f = self.c, self.inflight[g]
        k_n = c.n_options
        mask = 0
        for kk in batch:
            if isinstance(kk, bool) or not isinstance(kk, (int, np.integer)) or not 0 <= kk < k_n \
                    or kk in f["asked"]:
                raise ConfigError(f"strategy {self.name!r} asked for option {kk!r} at request {g}; options are "
                                  f"[0, {k_n}), each at most once per request (asked: {sorted(f['asked'])})")
            f["asked"].append(int(kk))
            mask |= 1 << int(kk)
        f["batch"] = [int(k) for k in batch]
        self.tot["batches"] += 1
        decide_batch(*self.drv.packs, mask)

    def _answered(self, slot: int) -> None:
        """Every query of a batch answered, or the client's deadline: observe, then the next batch or the end."""
        c, rs, strategy = self.c, self.drv.rs, self.strategy
        g = int(rs.a["rq_i"][slot, RQ_G])
        f = self.inflight[g]
        now = float(rs.fmisc[T_PEND])
        q = rs.a["rq_q"][slot]
        o, s = f["o"], f["s"]
        timed_out = False
        for kk in f["batch"]:
            resp = float(q[kk, Q_RESP])
            answered = resp <= now
            timed_out |= not answered
            lat = (resp if answered else now) - float(q[kk, Q_SENT])
            cost = float(c.opt_f[o, kk, OPT_COST])
            f["cost"] += cost
            f["tiers"].add(int(c.node_i[int(c.opt_i[o, kk, OPT_NODE]), NODE_TIER]))
            self.opt_count[kk] += 1
            probs = self.probs_all[self.cols[o, kk], s] if answered else None
            if probs is not None:
                f["answered"].append((int(kk), int(probs.argmax()), bool(self.local[o, kk])))
            strategy.observe(f["req"], int(kk), probs, c.w_lat * lat + c.w_cost * cost)
        if not timed_out:
            batch = strategy.next_batch(f["req"])
            if batch:
                self._send(g, batch)
                return
        self._complete(g, now, timed_out)
        ens_finish(rs.SF, rs.SI)

    def _complete(self, g: int, t_done: float, timed_out: bool) -> None:
        c, f, tot = self.c, self.inflight.pop(g), self.tot
        elapsed = c.timeout_s if timed_out else t_done - f["t"]
        vote = self.strategy.vote(f["req"])
        late = elapsed > c.deadline_s
        label = int(self.labels[f["s"]])
        correct = vote.answer >= 0 and vote.answer == label and not late
        self.lat[g] = elapsed
        self.rew[g] = c.w_acc * float(correct) - c.w_lat * elapsed - c.w_cost * f["cost"]
        for tier in f["tiers"]:
            self.tier_count[tier] += 1
        tot["correct"] += correct
        tot["cost"] += f["cost"]
        tot["late"] += late
        tot["timeout"] += timed_out
        tot["forward"] += any(not self.local[f["o"], kk] for kk in f["asked"])
        tot["queries"] += len(f["asked"])
        seen = label_seen(int(c.fb_mode), label, bool(correct), f["answered"])
        tot["revealed"] += seen is not None
        due_n = int(self.drv.rs.imisc[M_G_NEXT]) + c.delay_requests if c.delay_requests > 0 else 0
        self.pending.append((t_done + c.delay_s, due_n, self.strategy.finish(f["req"]), seen))


def _hist(lat_s: np.ndarray) -> np.ndarray:
    ms = lat_s * 1e3
    b = np.zeros(ms.shape, np.int64)
    pos = ms > HIST_LO_MS
    b[pos] = np.minimum(((np.log(ms[pos]) - math.log(HIST_LO_MS)) / math.log(HIST_RATIO)).astype(np.int64),
                        HIST_BINS - 1)
    return np.bincount(b, minlength=HIST_BINS).astype(np.int64)


def _result(loop: _Loop, wall: float) -> RunResult:
    steps, lat, rew, best_cf, cf_sum, ct = loop.steps, loop.lat, loop.rew, loop.best_cf, loop.cf_sum, loop.ct
    cf_curve, opt_count, tier_count, tot, strategy = loop.cf_curve, loop.opt_count, loop.tier_count, loop.tot, \
        loop.strategy
    scenario, name, seed = loop.scenario, loop.name, loop.seed
    n = float(steps)
    hist = _hist(lat)
    best = int(np.argmax(cf_sum))
    cum_r, cum_o = np.cumsum(rew), np.cumsum(best_cf)
    tier_names = [str(t) for t in Tier]
    extra = {
        "path": "ensemble",
        "queries_per_request": tot["queries"] / n,
        "batches_per_request": tot["batches"] / n,
        "label_revealed_rate": tot["revealed"] / n,
        "best_fixed_option": best,
        "strategy": repr(strategy),
    }
    return RunResult(
        scenario=scenario.name,
        agent=str(name),
        seed=int(seed),
        steps=int(steps),
        mean_reward=float(rew.mean()),
        accuracy=tot["correct"] / n,
        latency_mean_ms=float(lat.mean() * 1e3),
        latency_p50_ms=quantile_ms(hist, 0.50),
        latency_p95_ms=quantile_ms(hist, 0.95),
        latency_p99_ms=quantile_ms(hist, 0.99),
        deadline_violation_rate=tot["late"] / n,
        timeout_rate=tot["timeout"] / n,
        forward_rate=tot["forward"] / n,
        forward_rate_by_tier={tier_names[i]: float(tier_count[i]) / n for i in range(len(tier_names))},
        mean_cost=tot["cost"] / n,
        option_rates=opt_count / n,
        fixed_option_mean_reward=cf_sum / n,
        oracle_mean_reward=float(best_cf.mean()),
        regret_oracle=float(cum_o[-1] - cum_r[-1]),
        regret_best_fixed=float(cf_sum[best] - cum_r[-1]),
        curve_t=ct.copy(),
        curve_regret_oracle=cum_o[ct - 1] - cum_r[ct - 1],
        curve_regret_best_fixed=cf_curve[:, best] - cum_r[ct - 1],
        latency_hist_edges_ms=hist_edges_ms(),
        latency_hist_counts=hist,
        wall_time_s=float(wall),
        decisions_per_s=float(steps / wall) if wall > 0 else float("inf"),
        extra=extra,
    )
