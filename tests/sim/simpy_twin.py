"""A slow, independent reference implementation ("twin") of the simulator, written on SimPy.

It follows ``docs/simulator.md`` ("The event model") rule by rule, the textbook discrete-event way, and shares
no code with ``idnbandit.sim`` except the request stream and the background jobs (so both see the
same inputs). Property tests compare its per-request records with the fast simulator's.

Model
-----
* one SimPy process per request walks its stages ``U_0 .. U_{h-1}, N, D_{h-1} .. D_0``;
* every transmitter (up and down of each link) is a ``simpy.Resource(capacity=1)``, every node a
  ``simpy.Resource(capacity=servers)``; SimPy resources grant in request order (FCFS, a released
  slot goes to the head of the queue), which is the FIFO-in-arrival-order rule;
* background jobs are processes that request their node's resource;
* a transmission that would start inside an outage waits for its end; a link outage is a process
  that, when the outage starts, interrupts (``Process.interrupt``) a transmission in flight on
  either transmitter of the link, which then waits for the outage end and sends again from the
  beginning (it keeps the transmitter all along);
* bandwidth and slowdown factors are read from the fault schedule at the (final) start;
* with ``cancel_on_timeout`` a job that would start a stage at or after its deadline releases the
  resource as soon as it is granted it (or, when an outage interrupted it, at the interruption)
  without using it.

Time and ordering
-----------------
All events are scheduled at *absolute* times (``_Env.at``) so that SimPy's clock holds exactly the
values of the stage formulas (``start = max(arrival, free)``, ``end = start + bits / (B f)``, ...): a
relative ``env.timeout(end - now)`` could land one ulp away from ``end`` and break ties.
Simultaneous events are ordered by SimPy's event priority (heap key ``(time, priority, id)``):

=================  ==========================================================================
priority           events at one time
=================  ==========================================================================
0, 1 (SimPy)       process starts, interrupts, resource grants and releases (consequences of
                   the events below, processed immediately after the event that caused them)
``P_END``          stage ends (transmission, service), response reaching the client, outage
                   starts, (re)starts after an outage
``P_ARR_BG + n``   arrival of a background job at node ``n``
``P_ARR_REQ + g``  arrival of request ``g`` at a transmitter or node
``P_TIMEOUT + g``  client deadline of request ``g``
``P_DECIDE + g``   decision of request ``g`` (pending feedback delivered first)
=================  ==========================================================================

So at a time ``T``: stage ends first (an arrival that a stage end causes at the same time, with
zero propagation or a service ending into its down transmitter, is then scheduled like any other
arrival), then arrivals (background first, then by request index: a resource's FIFO queue gets them
in exactly that order, since a job's place in a SimPy queue is the order of its ``request()``
call), then timeouts, then decisions. A decision's own first arrival (``t_g``, at ``U_0`` or at the
origin's node) is processed before the next decision at the same time.

State, context and estimates
----------------------------
The context and the counterfactual estimates are computed from the SimPy resources' *current
contents* (``Resource.users`` / ``Resource.queue`` plus the twin's notes about each job) by walking
the stage rules forward analytically: a node's servers are free at the end of the jobs in service,
then its queued jobs are assigned FCFS to the earliest-free server (slowdown at their start, and
cancelled when they would start at or after their deadline); a transmitter is free at the end of the
job holding it (its whole outage / restart history recomputed from the time it was granted the
transmitter) and of its queued jobs. An estimate of option ``k`` walks the request's stages through
those free times as if nothing else arrived later.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import simpy
from simpy.events import Event

from idnbandit.scenario.model import FaultKind, FeedbackMode
from idnbandit.sim.workload import BackgroundSource, RequestStream
from idnbandit.traces.features import feature_matrix, fit_temperature

__all__ = ["run_twin", "RECORD_KEYS"]

P_END = 2
P_ARR_BG = 3
P_ARR_REQ = 1 << 20
P_TIMEOUT = 1 << 50
P_DECIDE = 1 << 51

INF = math.inf
NAN = math.nan

RECORD_KEYS = ("g", "origin", "sample", "option", "t_decision", "t_node_arrival", "t_service_start",
               "t_service_end", "t_complete", "timeout", "latency_s", "queueing_s", "compute_s", "network_s",
               "cost", "correct", "answer", "late", "reward", "feedback_r", "order_delivered")
_INT_KEYS = {"g", "origin", "sample", "option", "order_delivered"}


class _Env(simpy.Environment):
    def at(self, t: float, priority: int) -> Event:
        """An event processed at the absolute time ``t`` (exactly) with ``priority``."""
        if t < self._now:
            raise RuntimeError(f"twin: event at {t!r} scheduled in the past (now {self._now!r})")
        ev = Event(self)
        ev._ok = True
        ev._value = None
        heapq.heappush(self._queue, (t, priority, next(self._eid), ev))
        return ev


class _Tx:
    """One transmitter (one direction of one link): a FIFO server of capacity 1."""

    __slots__ = ("res", "link", "jobs", "inflight")

    def __init__(self, env, link):
        self.res = simpy.Resource(env, capacity=1)
        self.link = link
        self.jobs = {}  # Request -> [bits, arrival, deadline (inf without cancellation), grant time]
        self.inflight = None  # (process, start, end) of the transmission on the air


class _NodeRes:
    """One node: ``servers`` identical FCFS servers."""

    __slots__ = ("res", "n", "jobs")

    def __init__(self, env, n, servers):
        self.res = simpy.Resource(env, capacity=servers)
        self.n = n
        self.jobs = {}  # Request -> [is_request, arrival, work, deadline, start, end]
        # work: GFLOP for a request, service seconds at speed 1 for a background job


class _Twin:
    def __init__(self, scenario, agent, steps, seed, trace):
        self.sc = scenario
        self.agent = agent
        self.steps = int(steps)
        w = scenario.workload
        self.cancel = bool(getattr(w, "cancel_on_timeout", False))
        self.timeout_s = w.timeout_ms / 1e3
        r = scenario.reward
        self.w_acc, self.w_lat, self.w_cost = float(r.w_acc), float(r.w_lat_per_s), float(r.w_cost)
        self.deadline_s = INF if r.deadline_ms is None else r.deadline_ms / 1e3
        fb = scenario.feedback
        self.fb_mode = fb.mode
        self.delay_requests = int(fb.delay_requests)
        self.delay_s = float(fb.delay_s)

        nodes = scenario.nodes
        self.nidx = {n.name: i for i, n in enumerate(nodes)}
        nn = len(nodes)
        self.speed = [float(n.speed_gflops) for n in nodes]
        self.prop = [0.0] * nn
        self.bps = [0.0] * nn
        self.link_cost = [0.0] * nn
        for i, n in enumerate(nodes):
            if n.uplink is not None:
                self.prop[i] = n.uplink.propagation_ms / 1e3
                self.bps[i] = n.uplink.bandwidth_mbps * 1e6
                self.link_cost[i] = n.uplink.cost_per_mb
        # fault schedule, in scenario order (factors multiply in that order)
        self.outages = [[] for _ in range(nn)]  # link n: [(start, end)]
        self.bw = [[] for _ in range(nn)]  # link n: [(start, end, factor)]
        self.slow = [[] for _ in range(nn)]  # node n: [(start, end, factor)]
        for f in scenario.faults:
            n = self.nidx[f.target]
            if f.kind is FaultKind.LINK_OUTAGE:
                self.outages[n].append((float(f.start_s), float(f.end_s)))
            elif f.kind is FaultKind.LINK_BANDWIDTH:
                self.bw[n].append((float(f.start_s), float(f.end_s), float(f.factor)))
            else:
                self.slow[n].append((float(f.start_s), float(f.end_s), float(f.factor)))

        # trace columns: predicted class, correctness, confidence features
        cols = {}
        self.pred, self.right, self.feat = {}, {}, {}
        for m in scenario.models:
            j = trace.model_names.index(m.trace_column)
            cols[m.name] = j
            if j not in self.pred:
                p = trace.probs[j]
                self.pred[j] = p.argmax(axis=1).astype(np.int64)
                self.right[j] = self.pred[j] == trace.labels
        # options per origin: (node, h, links, column, gflops, bits in, bits out, cost, local)
        self.options = []
        for origin in w.origins:
            path = [self.nidx[n.name] for n in scenario.path_to_root(origin)]
            opts = []
            for node_name, model_name in scenario.options(origin):
                n = self.nidx[node_name]
                m = scenario.model(model_name)
                h = path.index(n)
                links = tuple(path[:h])
                mb = (m.input_bytes + m.output_bytes) / 1e6
                cost = nodes[n].cost_per_request + sum(self.link_cost[lk] * mb for lk in links)
                opts.append((n, h, links, cols[model_name], float(m.gflops), 8.0 * m.input_bytes,
                             8.0 * m.output_bytes, cost, h == 0))
            self.options.append(opts)
        ks = {len(o) for o in self.options}
        if len(ks) != 1:
            raise ValueError("twin: every origin needs the same number of options")
        self.K = ks.pop()
        ctx = scenario.context
        self.use_conf, self.use_load = bool(ctx.confidence), bool(ctx.load)
        if self.use_conf:
            for opts in self.options:
                j = opts[0][3]
                if j not in self.feat:
                    temp = fit_temperature(trace.probs[j], trace.labels) if ctx.calibrated else 1.0
                    self.feat[j] = feature_matrix(trace.probs[j], temp)
        self.n_features = 3 * self.use_conf + self.K * self.use_load + 1

        # the request stream (first `steps` requests) and background jobs
        stream = RequestStream(scenario, trace.probs.shape[1], seed)
        ts, os_, ss = [], [], []
        have = 0
        while have < self.steps:
            t, o, s = stream.next_chunk()
            ts.append(t)
            os_.append(o)
            ss.append(s)
            have += t.shape[0]
        self.req_t = np.concatenate(ts)[: self.steps].tolist()
        self.req_o = np.concatenate(os_)[: self.steps].tolist()
        self.req_s = np.concatenate(ss)[: self.steps].tolist()
        self.bgsrc = BackgroundSource(scenario, seed)

        # SimPy world
        env = self.env = _Env()
        self.up = [_Tx(env, i) if nodes[i].uplink is not None else None for i in range(nn)]
        self.down = [_Tx(env, i) if nodes[i].uplink is not None else None for i in range(nn)]
        self.node = [_NodeRes(env, i, nodes[i].servers) for i in range(nn)]

        # per-request records
        n = self.steps
        self.option = [0] * n
        self.ctx = [None] * n
        self.est = [None] * n
        self.t_arr = [NAN] * n
        self.t_start = [NAN] * n
        self.t_end = [NAN] * n
        self.R = [INF] * n
        self.C = [NAN] * n
        self.timed_out = [False] * n
        self.outcome = [None] * n  # (latency, cost, correct, answer, timeout, late, reward)
        self.obs = [None] * n  # (r, rs)
        self.order = [-1] * n
        self.pending = []  # heap of (C, g, decisions made before C)
        self.decisions = 0
        self.delivered = 0
        self.waits = []

    # ------------------------------------------------------------------ fault schedule
    def _clear(self, link, t):
        """The first time >= t at which ``link`` is not in an outage."""
        moved = True
        while moved:
            moved = False
            for s, e in self.outages[link]:
                if s <= t < e:
                    t = e
                    moved = True
        return t

    def _cut(self, link, s, e):
        """The first outage start strictly inside (s, e), or None."""
        cut = None
        for o, _ in self.outages[link]:
            if s < o < e and (cut is None or o < cut):
                cut = o
        return cut

    def _bw_factor(self, link, t):
        f = 1.0
        for s, e, x in self.bw[link]:
            if s <= t < e:
                f *= x
        return f

    def _slow_factor(self, n, t):
        f = 1.0
        for s, e, x in self.slow[n]:
            if s <= t < e:
                f *= x
        return f

    def _service(self, n, is_request, work, start):
        f = self._slow_factor(n, start)
        return work / (self.speed[n] * f) if is_request else work / f

    # ------------------------------------------------------------------ analytic walks (state, estimates)
    def _tx_plan(self, link, s0, bits, dl):
        """A transmission granted the transmitter at ``s0``: (end, release time); end None if dropped."""
        while True:
            s = self._clear(link, s0)
            if s >= dl:
                return None, s0
            e = s + bits / (self.bps[link] * self._bw_factor(link, s))
            cut = self._cut(link, s, e)
            if cut is None:
                return e, e
            s0 = cut  # interrupted: resent when the outage ends

    def _tx_free(self, tx):
        """When ``tx`` is done with every job it holds now (holder + FIFO queue)."""
        free = -INF
        for req in tx.res.users:
            bits, _arr, dl, grant = tx.jobs[req]
            free = self._tx_plan(tx.link, grant, bits, dl)[1]
        for req in tx.res.queue:
            bits, arr, dl, _ = tx.jobs[req]
            free = self._tx_plan(tx.link, max(arr, free), bits, dl)[1]
        return free

    def _node_frees(self, node):
        """Next-free time of each server of ``node`` once its current jobs are served (FCFS)."""
        frees = []
        for req in node.res.users:
            job = node.jobs[req]
            frees.append(job[5])
        frees += [-INF] * (node.res.capacity - len(frees))
        for req in node.res.queue:
            is_req, arr, work, dl, _, _ = node.jobs[req]
            j = min(range(len(frees)), key=frees.__getitem__)
            s = max(arr, frees[j])
            if s >= dl:
                continue  # cancelled: never uses a server
            frees[j] = s + self._service(node.n, is_req, work, s)
        return frees

    def _estimate(self, o, k, s, t, cache):
        """Outcome of option k for (origin o, sample s) decided at t, from the current state."""
        n, h, links, col, gflops, b_in, b_out, cost, _local = self.options[o][k]
        D = t + self.timeout_s
        dl = D if self.cancel else INF
        tau = t
        ok = True
        for lk in links:
            key = ("up", lk)
            if key not in cache:
                cache[key] = self._tx_free(self.up[lk])
            end, _ = self._tx_plan(lk, max(tau, cache[key]), b_in, dl)
            if end is None:
                ok = False
                break
            tau = end + self.prop[lk]
        if ok:
            key = ("node", n)
            if key not in cache:
                cache[key] = self._node_frees(self.node[n])
            start = max(tau, min(cache[key]))
            if start >= dl:
                ok = False
            else:
                tau = start + self._service(n, True, gflops, start)
        if ok:
            for lk in reversed(links):
                key = ("down", lk)
                if key not in cache:
                    cache[key] = self._tx_free(self.down[lk])
                end, _ = self._tx_plan(lk, max(tau, cache[key]), b_out, dl)
                if end is None:
                    ok = False
                    break
                tau = end + self.prop[lk]
        timeout = (not ok) or tau > D
        latency = self.timeout_s if timeout else tau - t
        return self._score(latency, cost, col, s, timeout)

    def _score(self, latency, cost, col, s, timeout):
        late = latency > self.deadline_s
        correct = (not timeout) and (not late) and bool(self.right[col][s])
        answer = -1 if timeout else int(self.pred[col][s])
        reward = self._reward(1.0 if correct else 0.0, latency, cost)
        return latency, cost, correct, answer, timeout, late, reward

    def _reward(self, correct, latency, cost):
        return self.w_acc * correct - self.w_lat * latency - self.w_cost * cost

    # ------------------------------------------------------------------ processes
    def _transmit(self, tx, bits, dl):
        """Generator: one transmission through ``tx``; returns its end, or None when dropped."""
        env = self.env
        req = tx.res.request()
        tx.jobs[req] = [bits, env.now, dl, None]
        yield req
        s0 = env.now  # granted the transmitter
        tx.jobs[req][3] = s0
        proc = env.active_process
        link = tx.link
        try:
            while True:
                s = self._clear(link, s0)  # data waits in the sender's queue during an outage
                if s >= dl:
                    return None  # cancelled: released now, at the grant or the interruption
                if s > s0:
                    yield env.at(s, P_END)
                e = s + bits / (self.bps[link] * self._bw_factor(link, s))
                tx.inflight = (proc, s, e)
                try:
                    yield env.at(e, P_END)
                except simpy.Interrupt:
                    s0 = env.now  # an outage started: send again from the beginning when it ends
                    continue
                finally:
                    tx.inflight = None
                return e
        finally:
            del tx.jobs[req]
            tx.res.release(req)

    def _outage(self, link, start):
        yield self.env.at(start, P_END)
        for tx in (self.up[link], self.down[link]):
            if tx is not None and tx.inflight is not None:
                proc, s, e = tx.inflight
                if s < start < e:
                    tx.inflight = None
                    proc.interrupt("outage")

    def _background(self, n):
        env = self.env
        node = self.node[n]
        while True:
            arr, svc = self.bgsrc.next_block(n)
            for a, w in zip(arr.tolist(), svc.tolist()):
                yield env.at(a, P_ARR_BG + n)
                req = node.res.request()
                node.jobs[req] = [False, a, w, INF, NAN, NAN]
                env.process(self._bg_job(node, req))

    def _bg_job(self, node, req):
        yield req
        job = node.jobs[req]
        s = self.env.now
        e = s + self._service(node.n, False, job[2], s)
        job[4], job[5] = s, e
        yield self.env.at(e, P_END)
        del node.jobs[req]
        node.res.release(req)

    def _request(self, g, o, k, t):
        env = self.env
        n, h, links, col, gflops, b_in, b_out, cost, _local = self.options[o][k]
        D = t + self.timeout_s
        dl = D if self.cancel else INF
        tau = t
        for lk in links:  # request up
            yield env.at(tau, P_ARR_REQ + g)
            end = yield from self._transmit(self.up[lk], b_in, dl)
            if end is None:
                return
            tau = end + self.prop[lk]
        yield env.at(tau, P_ARR_REQ + g)  # at the serving node
        recorded = self.C[g] != self.C[g]  # node times are recorded while the request is open (see _records)
        if recorded:
            self.t_arr[g] = tau
        node = self.node[n]
        req = node.res.request()
        job = node.jobs[req] = [True, tau, gflops, dl, NAN, NAN]
        yield req
        start = env.now
        if start >= dl:  # cancelled: leaves without using the server
            del node.jobs[req]
            node.res.release(req)
            return
        end = start + self._service(n, True, gflops, start)
        job[4], job[5] = start, end
        if recorded:
            self.t_start[g] = start
        yield env.at(end, P_END)
        del node.jobs[req]
        node.res.release(req)
        if recorded:
            self.t_end[g] = end
        tau = end
        for lk in reversed(links):  # response down
            yield env.at(tau, P_ARR_REQ + g)
            end = yield from self._transmit(self.down[lk], b_out, dl)
            if end is None:
                return
            tau = end + self.prop[lk]
        if h > 0:
            yield env.at(tau, P_END)  # the response reaches the client
        self.R[g] = tau
        if tau <= D and not self.timed_out[g] and self.C[g] != self.C[g]:
            self._complete(g, tau, False)

    def _deadline_cb(self, g):
        def cb(_ev):
            if self.C[g] != self.C[g]:  # not completed yet
                self._complete(g, self.req_t[g] + self.timeout_s, True)
        return cb

    def _complete(self, g, C, timeout):
        """Request g completes (or times out) at C: its true outcome and its feedback exist now."""
        self.C[g] = C
        self.timed_out[g] = timeout
        o, k, s, t = self.req_o[g], self.option[g], self.req_s[g], self.req_t[g]
        n, h, links, col, gflops, b_in, b_out, cost, local = self.options[o][k]
        latency = self.timeout_s if timeout else C - t
        out = self._score(latency, cost, col, s, timeout)
        self.outcome[g] = out
        self.obs[g] = self._observe(o, k, out, self.est[g])
        heapq.heappush(self.pending, (C, g, self.decisions))

    def _observe(self, o, a, out, est):
        """(r, rs): what the learner is told about decision (o, a) with true outcome ``out``."""
        K = self.K
        rs = np.full(K, np.nan)
        mode = self.fb_mode
        latency, cost, correct, answer, timeout, late, reward = out
        local = [kk for kk in range(K) if self.options[o][kk][8]]
        if mode is FeedbackMode.FULL:
            for kk in range(K):
                rs[kk] = est[kk][6]
            rs[a] = reward
        elif mode is FeedbackMode.BANDIT:
            rs[a] = reward
        elif self.options[o][a][8]:
            pass  # served locally: no label, nothing observed
        elif timeout:
            rs[a] = reward
        elif mode is FeedbackMode.LABEL_ON_FORWARD:
            rs[a] = reward
            for kk in local:
                rs[kk] = est[kk][6]
        else:  # proxy: the remote answer stands in for the label
            rs[a] = self._reward(0.0 if late else 1.0, latency, cost)
            for kk in local:
                e = est[kk]
                good = (not e[4]) and (not e[5]) and e[3] == answer
                rs[kk] = self._reward(1.0 if good else 0.0, e[0], e[1])
        return float(rs[a]), rs

    def _due(self, C, n_before, t, g):
        if self.delay_s > 0:
            return t >= C + self.delay_s
        return g >= n_before + self.delay_requests

    def _deliver(self, g):
        C, h, _ = heapq.heappop(self.pending)
        r, rs = self.obs[h]
        self.order[h] = self.delivered
        self.delivered += 1
        self.agent.update(self.ctx[h].copy(), self.option[h], r, rewards=rs.copy())

    def _context(self, o, s, t, cache):
        x = np.empty(self.n_features)
        i = 0
        if self.use_conf:
            x[0:3] = self.feat[self.options[o][0][3]][s]
            i = 3
        if self.use_load:
            for k in range(self.K):
                n = self.options[o][k][0]
                key = ("node", n)
                if key not in cache:
                    cache[key] = self._node_frees(self.node[n])
                x[i + k] = max(0.0, min(cache[key]) - t)
            i += self.K
        x[i] = 1.0
        return x

    def _driver(self):
        env = self.env
        fb = self.fb_mode
        procs = []
        for g in range(self.steps):
            t, o, s = self.req_t[g], self.req_o[g], self.req_s[g]
            yield env.at(t, P_DECIDE + g)
            while self.pending and self._due(self.pending[0][0], self.pending[0][2], t, g):
                self._deliver(g)
            cache = {}
            x = self._context(o, s, t, cache)
            if fb is FeedbackMode.FULL:
                need = range(self.K)
            elif fb is FeedbackMode.BANDIT:
                need = ()
            else:
                need = [kk for kk in range(self.K) if self.options[o][kk][8]]
            est = [None] * self.K
            for kk in need:
                est[kk] = self._estimate(o, kk, s, t, cache)
            a = self.agent.act(x.copy())
            if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < self.K:
                raise ValueError(f"twin: agent chose {a!r} at request {g}")
            a = int(a)
            self.option[g] = a
            self.ctx[g] = x
            self.est[g] = est
            self.decisions += 1
            procs.append(env.process(self._request(g, o, a, t)))
            dl_ev = env.at(t + self.timeout_s, P_TIMEOUT + g)
            dl_ev.callbacks.append(self._deadline_cb(g))
            procs.append(dl_ev)
        # no new requests: run until every request completed or timed out and left the network
        yield simpy.AllOf(env, procs)

    # ------------------------------------------------------------------ run
    def run(self):
        env = self.env
        for n in self.bgsrc.nodes:
            env.process(self._background(n))
        for link, outs in enumerate(self.outages):
            for s, _e in outs:
                env.process(self._outage(link, s))
        driver = env.process(self._driver())
        env.run(until=driver)
        while self.pending:
            self._deliver(self.steps)
        return self._records()

    def _records(self):
        n = self.steps
        rec = {k: np.empty(n, np.int64 if k in _INT_KEYS else np.float64) for k in RECORD_KEYS}
        for g in range(n):
            t, o, s, a = self.req_t[g], self.req_o[g], self.req_s[g], self.option[g]
            latency, cost, correct, answer, timeout, late, reward = self.outcome[g]
            D = t + self.timeout_s

            def clip(v, D=D):
                return D if v != v else min(v, D)  # never reached: +inf

            a_n, s_n, e_n = self.t_arr[g], self.t_start[g], self.t_end[g]
            queue = clip(s_n) - clip(a_n)
            compute = clip(e_n) - clip(s_n)
            row = dict(g=g, origin=o, sample=s, option=a, t_decision=t, t_node_arrival=a_n, t_service_start=s_n,
                       t_service_end=e_n, t_complete=self.C[g], timeout=float(timeout), latency_s=latency,
                       queueing_s=queue, compute_s=compute, network_s=latency - queue - compute, cost=cost,
                       correct=float(correct), answer=float(answer), late=float(late), reward=reward,
                       feedback_r=self.obs[g][0], order_delivered=self.order[g])
            for k, v in row.items():
                rec[k][g] = v
        return rec


def run_twin(scenario, agent, steps, seed, trace) -> dict[str, np.ndarray]:
    """Simulate the first ``steps`` requests of ``scenario`` (run ``seed``) with ``agent``, on SimPy.

    Follows ``docs/simulator.md`` ("The event model") (single decision at the origin): request ``g`` is decided
    at its arrival time ``t_g`` with ``agent.act(x)``, ``x`` the context measured in the twin's state
    at ``t_g`` (after every arrival, stage end and timeout at ``t_g`` and every earlier-indexed decision
    at ``t_g``); its stages go through FIFO transmitters and FCFS node servers (background jobs
    included; faults: outages delay / restart transmissions, bandwidth and slowdown factors apply
    from the start of a stage; ``cancel_on_timeout`` drops stages that would start at or after the
    deadline); it completes at ``C = min(R, t_g + timeout_s)``. Its feedback (per
    ``scenario.feedback.mode``, counterfactual estimates taken at ``t_g``) reaches the learner with
    ``agent.update(x, a, r, rewards=rs)`` just before the first decision at a time ``>= C + delay_s``
    (or the ``delay_requests + 1``-th decision after ``C``), in order of ``(C, g)``. After the last
    decision the simulation runs on (background included, no new requests) until every request has
    completed or timed out and every job has left the network; then all remaining feedback is
    delivered, in order of ``(C, g)``.

    Parameters
    ----------
    scenario
        A :class:`idnbandit.scenario.Scenario`.
    agent
        Any object with ``act(x) -> int`` and ``update(x, a, r, *, rewards)``.
    steps
        Number of requests (decisions).
    seed
        Run seed of the request stream and the background jobs.
    trace
        The :class:`idnbandit.traces.Trace` of the scenario's models.

    Returns
    -------
    dict[str, numpy.ndarray]
        Equal-length arrays indexed by request ``g`` (keys :data:`RECORD_KEYS`; ``g``, ``origin``,
        ``sample``, ``option``, ``order_delivered`` int64, the rest float64; ``answer`` -1 on timeout,
        ``feedback_r`` NaN when nothing was observed). Node times are those of a job that reached its
        node while the request was open (at or before ``t_complete``): then ``t_node_arrival`` is set
        and ``t_service_start`` / ``t_service_end`` hold when it was (or, after a timeout, later
        would be) served, NaN if cancellation dropped it; all three are NaN for a job that reached the
        node only after the request timed out, or never. ``queueing_s`` and ``compute_s`` take the
        times clipped at the deadline, a stage never reached counting as +inf (so a job dropped in
        a node's queue has queued until the deadline).
    """
    return _Twin(scenario, agent, steps, seed, trace).run()
