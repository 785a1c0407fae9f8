"""The simulator loop for ensemble strategies: several options queried per request.

:func:`simulate` dispatches here for objects with ``is_ensemble_strategy`` (see
:mod:`idnbandit.ensembles.strategy` for the protocol). Per request (same request stream and
background load as every other agent with the same seed, common random numbers):

1. background load is advanced and the context and the single-option counterfactual rewards are
   computed (``prepare``), exactly as for a one-option agent;
2. ``strategy.begin(x)`` names a first batch of options; they are sent **in parallel** at the
   arrival time ``t``: each one is served by the exact queue and link kernels (``commit``), so its
   queues change, and the batch takes the **max** of its members' latencies;
3. ``strategy.next_batch()`` may name further batches, each sent when the previous one has answered
   (``t +`` the elapsed time), so batch latencies **add up**, until it returns ``[]``;
4. the answer is the strategy's aggregate vote; the request is right if the vote equals the label
   and the total latency meets the deadline; reward ``w_acc * correct - w_lat * latency_s -
   w_cost * (sum of the queried options' costs)``;
5. the label is revealed to the strategy by the scenario's feedback mode, after its delay:
   ``full`` always; ``bandit`` only when the answer was right (the reward of a wrong answer does not
   say which class was right); ``label_on_forward`` when a non-local option answered; ``proxy``: the
   answer of the farthest non-local option that answered stands in for the label.

The input of a parallel batch crosses each link once (multicast / relay along the path: the options
of one batch share each upload transmission, as a node forwarding one copy to the next hop and its
own model would); the answers come back separately (each queues on the downlinks). A later batch
sends the input again. A query that times out gives no answer (it still costs its latency and
price).
Metrics are true outcomes; ``option_rates`` and ``forward_rate_by_tier`` count the requests that
queried each option / tier (their sum can exceed 1); ``fixed_option_mean_reward`` and the oracle are
the single-option counterfactuals (an ensemble can beat that oracle: negative regret).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque

import numpy as np

from ..errors import ConfigError
from ..scenario.model import Tier
from .compiled import NODE_PROP_S, NODE_TIER, OPT_COMPUTE_S, OPT_LINKS, OPT_LOCAL, OPT_NLINKS, OPT_TX
from .engine import check_seed, resolve_inputs
from .kernels import (
    OUT_COST,
    OUT_LATENCY,
    OUT_NODE,
    OUT_TIMEOUT,
    bg_ready,
    commit,
    new_scratch,
    new_state,
    prepare,
)
from .metrics import HIST_BINS, HIST_LO_MS, HIST_RATIO, curve_points_of, hist_edges_ms, quantile_ms
from .result import RunResult
from .workload import CHUNK, BackgroundSource, RequestStream

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
    prices = c.w_lat * nominal_latency_s(c) + c.w_cost * c.opt_f[:, :, 3]
    strategy.bind(trace.n_classes, prices.mean(axis=0), c.w_acc)
    loop = _Loop(scenario, trace, c, strategy, steps, seed, int(curve_points))
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        req_t, req_o, req_s = loop.stream.next_chunk()
        n = min(CHUNK, steps - done)
        for i in range(n):
            loop.arrive(done + i, float(req_t[i]), int(req_o[i]), int(req_s[i]), float(req_t[n - 1]))
        done += n
        if progress is not None:
            progress(done)
    loop.run_events(math.inf)
    while loop.pending:
        _, _, rec, lab = loop.pending.popleft()
        strategy.learn(rec, lab)
    wall = time.perf_counter() - t0
    return _result(loop, wall)


class _Loop:
    """The event loop of one run: arrivals in stream order, later batches as timed events."""

    def __init__(self, scenario, trace, c, strategy, steps, seed, curve_points):
        self.scenario, self.c, self.strategy, self.steps, self.seed = scenario, c, strategy, steps, seed
        self.cols = trace_columns(scenario, trace)
        self.probs_all, self.labels = trace.probs, trace.labels
        self.stream = RequestStream(scenario, c.feat.shape[1], seed)
        self.bg = BackgroundSource(scenario, seed)
        self.st, self.sc = new_state(c), new_scratch(c)
        self.span_cap = 65536 / max(self.bg.max_rate, 1e-12)
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
        self.heap: list = []  # (time, seq, g): request g's batch answers at time
        self.seq = 0
        self.inflight: dict[int, dict] = {}
        self.pending: deque = deque()  # (completed after n arrivals, completion time, record, label)
        self.arrivals = 0

    def _ready(self, tq: float, horizon: float) -> None:
        if not bg_ready(self.c, self.st, tq):
            self.st = self.bg.top_up(self.st, tq + self.c.timeout_s + horizon)

    def arrive(self, g: int, t: float, o: int, s: int, t_last: float) -> None:
        c, strategy = self.c, self.strategy
        self.run_events(t)
        while self.pending and (self.pending[0][1] + c.delay_s <= t if c.delay_s > 0
                                else self.pending[0][0] + c.delay_requests <= self.arrivals):
            _, _, rec, lab = self.pending.popleft()
            strategy.learn(rec, lab)
        self.arrivals += 1
        self._ready(t, min(t_last - t, self.span_cap))
        prepare(c, self.st, self.sc, o, s, t)
        cf = self.sc.cf
        self.cf_sum += cf
        self.best_cf[g] = cf.max()
        if self.ptr < self.ct.size and g + 1 == self.ct[self.ptr]:
            self.cf_curve[self.ptr] = self.cf_sum
            self.ptr += 1
        req, batch = strategy.begin(self.sc.x.copy())
        self.inflight[g] = dict(req=req, t=t, o=o, s=s, cost=0.0, asked=set(), answered=[], tiers=set())
        self._dispatch(g, batch, t)

    def _dispatch(self, g: int, batch: list[int], tq: float) -> None:
        c, st, sc, f = self.c, self.st, self.sc, self.inflight[g]
        k_n = c.n_options
        if not batch:
            raise ConfigError(f"strategy {self.name!r} asked for no option at the start of request {g}")
        self.tot["batches"] += 1
        slowest = 0.0
        up0 = self.st.link_free[:, 0].copy()  # uploads of one batch share each link's transmission
        up_end = up0.copy()
        o, s = f["o"], f["s"]
        for kk in batch:
            if isinstance(kk, bool) or not isinstance(kk, (int, np.integer)) or not 0 <= kk < k_n or kk in f["asked"]:
                raise ConfigError(f"strategy {self.name!r} asked for option {kk!r} at request {g}; options are "
                                  f"[0, {k_n}), each at most once per request (asked: {sorted(f['asked'])})")
            f["asked"].add(int(kk))
            self._ready(tq, self.span_cap)
            st = self.st
            st.link_free[:, 0] = up0
            commit(c, st, sc, o, int(kk), s, tq)
            np.maximum(up_end, st.link_free[:, 0], out=up_end)
            row = sc.out
            q_lat, q_cost, timeout = float(row[OUT_LATENCY]), float(row[OUT_COST]), row[OUT_TIMEOUT] > 0
            slowest = max(slowest, q_lat)
            f["cost"] += q_cost
            f["tiers"].add(int(c.node_i[int(row[OUT_NODE]), NODE_TIER]))
            probs = None if timeout else self.probs_all[self.cols[o, kk], s]
            if probs is not None:
                f["answered"].append((int(kk), int(probs.argmax()), bool(self.local[o, kk])))
            self.strategy.observe(f["req"], int(kk), probs, c.w_lat * q_lat + c.w_cost * q_cost)
            self.opt_count[kk] += 1
        self.st.link_free[:, 0] = up_end
        heapq.heappush(self.heap, (tq + slowest, self.seq, g))
        self.seq += 1

    def run_events(self, until: float) -> None:
        """Process every batch answered by ``until``: ask for the next batch or finish the request."""
        while self.heap and self.heap[0][0] <= until:
            tq, _, g = heapq.heappop(self.heap)
            batch = self.strategy.next_batch(self.inflight[g]["req"])
            if batch:
                self._dispatch(g, batch, tq)
            else:
                self._complete(g, tq)

    def _complete(self, g: int, t_done: float) -> None:
        c, f, tot = self.c, self.inflight.pop(g), self.tot
        elapsed = t_done - f["t"]
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
        tot["timeout"] += not f["answered"]
        tot["forward"] += any(not self.local[f["o"], kk] for kk in f["asked"])
        tot["queries"] += len(f["asked"])
        seen = label_seen(int(c.fb_mode), label, bool(correct), f["answered"])
        tot["revealed"] += seen is not None
        self.pending.append((self.arrivals, t_done, self.strategy.finish(f["req"]), seen))


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
