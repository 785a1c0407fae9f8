"""The SimPy twin (``simpy_twin.run_twin``): hand-computed cases, invariants on random scenarios, and
per-request agreement with the fast simulator (``docs/simulator.md`` ("The event model") is the contract).

The hand-computed cases use replay workloads (exact arrival times) and no background load; their
expected times follow the stage formulas of the semantics doc, written out in the comments and
evaluated with the same float operations. Where exact ties matter, the figures are dyadic (powers of
two) so that equal times are equal floats.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_helpers import _TRACE_SPEC, make_trace
from simpy_twin import RECORD_KEYS, run_twin

from idnbandit.agents import Fixed, make_agent
from idnbandit.scenario import (
    Background,
    ContextSpec,
    Fault,
    FeedbackSpec,
    Link,
    ModelSpec,
    Node,
    RewardSpec,
    Scenario,
    Workload,
)
from idnbandit.sim.workload import RequestStream

TRACE = make_trace()
TIME_KEYS = ("t_decision", "t_node_arrival", "t_service_start", "t_service_end", "t_complete", "latency_s",
             "queueing_s", "compute_s", "network_s", "cost", "reward", "feedback_r")
EXACT_KEYS = ("g", "origin", "sample", "option", "timeout", "answer", "correct", "late", "order_delivered")


# ---------------------------------------------------------------------------------------------- helpers
def n_feat(sc: Scenario) -> int:
    k = len(sc.options(sc.workload.origins[0]))
    return 3 * sc.context.confidence + k * sc.context.load + 1


def n_opt(sc: Scenario) -> int:
    return len(sc.options(sc.workload.origins[0]))


def replay(tmp_path, times) -> str:
    p = tmp_path / "arrivals.txt"
    p.write_text("".join(f"{t!r}\n" for t in times))
    return str(p)


def seed_with_origins(sc: Scenario, wanted) -> int:
    """The first run seed whose stream starts with the origins ``wanted`` (origins are drawn at random)."""
    for seed in range(10_000):
        o = RequestStream(sc, TRACE.probs.shape[1], seed).next_chunk()[1]
        if list(o[: len(wanted)]) == list(wanted):
            return seed
    raise AssertionError("no seed found")


def chain(tmp_path, times, *, devices=(("dev", 1.0, 8.0),), dev_servers=1, edge_speed=10.0, edge_servers=1, mid_gflops=1.0,
          small_gflops=0.01, bytes_=1000, timeout_ms=10_000.0, cancel=False, faults=(), feedback="bandit",
          delay_requests=0, delay_s=0.0, confidence=True, load=True, deadline_ms=None) -> Scenario:
    """Devices ``(name, propagation_ms, bandwidth_mbps)`` hosting ``small`` -> one edge (root) hosting ``mid``."""
    devs = tuple(Node(name, "device", 10.0, servers=dev_servers, models=("small",), parent="edge", uplink=Link(p, b))
                 for name, p, b in devices)
    nodes = (*devs, Node("edge", "edge", edge_speed, servers=edge_servers, models=("mid",)))
    models = (ModelSpec("small", "small", small_gflops, 10, input_bytes=bytes_, output_bytes=bytes_),
              ModelSpec("mid", "mid", mid_gflops, 10, input_bytes=bytes_, output_bytes=bytes_))
    return Scenario(
        name="twin-hand", nodes=nodes, models=models,
        workload=Workload(origins=tuple(d.name for d in devs), rate_per_s=10.0, process="replay",
                          replay_file=replay(tmp_path, times), timeout_ms=timeout_ms, cancel_on_timeout=cancel),
        trace=_TRACE_SPEC, reward=RewardSpec(w_acc=1.0, w_lat_per_s=2.0, w_cost=0.0, deadline_ms=deadline_ms),
        feedback=FeedbackSpec(feedback, delay_requests=delay_requests, delay_s=delay_s),
        context=ContextSpec(confidence=confidence, load=load), faults=tuple(faults),
    )


class Script:
    """Plays a fixed list of options; logs every call."""

    def __init__(self, options, n_actions=None, n_features=None):
        self.options = list(options)
        self.i = 0
        self.log = []
        if n_actions is not None:
            self.n_actions, self.n_features = n_actions, n_features

    def act(self, x):
        self.log.append(("act", self.i, np.array(x)))
        a = self.options[self.i]
        self.i += 1
        return a

    def update(self, x, a, r, *, rewards=None):
        self.log.append(("update", int(a), float(r), np.array(rewards)))


def approx(v):
    return pytest.approx(v, abs=1e-12, rel=0)


# ---------------------------------------------------------------------------------------------- hand-computed
def test_records_shape_and_dtypes(tmp_path):
    sc = chain(tmp_path, [0.0, 0.01, 0.02])
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 3, 0, TRACE)
    assert set(rec) == set(RECORD_KEYS)
    for k, v in rec.items():
        assert v.shape == (3,)
        assert v.dtype == (np.int64 if k in ("g", "origin", "sample", "option", "order_delivered") else np.float64), k
    assert list(rec["g"]) == [0, 1, 2]


def test_fifo_in_arrival_order_at_a_shared_server(tmp_path):
    """The farther device decides first but its job reaches the edge server later: it waits for the
    nearer device's job (FIFO in arrival order, not in decision order)."""
    sc = chain(tmp_path, [0.0, 0.010], devices=(("far", 50.0, 8.0), ("near", 5.0, 8.0)), edge_speed=20.0)
    seed = seed_with_origins(sc, [0, 1])
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 2, seed, TRACE)
    tx = 8000 / 8e6  # 1000 bytes at 8 Mbit/s
    a_far = (0.0 + tx) + 0.05  # 0.051
    a_near = (0.010 + tx) + 0.005  # 0.016
    end_near = a_near + 1.0 / 20.0  # served first: 0.016 .. 0.066
    end_far = end_near + 1.0 / 20.0  # waits for it: 0.066 .. 0.116
    assert rec["origin"].tolist() == [0, 1]
    assert rec["t_node_arrival"].tolist() == [approx(a_far), approx(a_near)]
    assert rec["t_service_start"].tolist() == [approx(end_near), approx(a_near)]
    assert rec["t_service_end"].tolist() == [approx(end_far), approx(end_near)]
    assert rec["queueing_s"].tolist() == [approx(end_near - a_far), approx(0.0)]
    assert rec["latency_s"].tolist() == [approx((end_far + tx) + 0.05 - 0.0), approx((end_near + tx) + 0.005 - 0.010)]
    assert rec["network_s"].tolist() == [approx(2 * tx + 0.1), approx(2 * tx + 0.01)]
    assert rec["timeout"].tolist() == [0, 0]


def test_simultaneous_arrivals_lower_request_index_first(tmp_path):
    """Two jobs reach the edge at exactly the same time (dyadic figures): request 0 goes first although
    request 1's arrival was known earlier (request 0's transmission ends at that very time)."""
    # far: 8000 bits at 0.512 Mbit/s = 2^-6 s, no propagation; near: 2^-10 s + 11 * 2^-10 s propagation
    sc = chain(tmp_path, [0.0, 2.0 ** -8], devices=(("far", 0.0, 0.512), ("near", 10.7421875, 8.192)),
               edge_speed=32.0)
    seed = seed_with_origins(sc, [0, 1])
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 2, seed, TRACE)
    t = 2.0 ** -6
    assert rec["t_node_arrival"].tolist() == [t, t]
    assert rec["t_service_start"].tolist() == [t, t + 2.0 ** -5]
    assert rec["t_service_end"].tolist() == [t + 2.0 ** -5, t + 2.0 ** -4]


OUTAGES = (Fault("link_outage", "dev", 0.0008, 0.0100), Fault("link_outage", "dev", 0.0145, 0.0200))


def test_outage_waits_queued_and_restarts_in_flight(tmp_path):
    """Outages [0.8 ms, 10 ms) and [14.5 ms, 20 ms) on the device's uplink (both directions).

    up:   r0 starts at 0, is cut at 0.8 ms, resent 10 .. 11 ms; r1 (queued since 0.5 ms) 11 .. 12 ms;
          r2 (arrived during the outage) 12 .. 13 ms. Edge (1 ms each): r0 13-14, r1 14-15, r2 15-16.
    down: r0 starts at 14 ms, is cut at 14.5 ms, resent 20 .. 21 ms; r1 21 .. 22; r2 22 .. 23.
    """
    tx, p, times = 8000 / 8e6, 0.002, [0.0, 0.0005, 0.005]
    sc = chain(tmp_path, times, devices=(("dev", 2.0, 8.0),), mid_gflops=0.01, faults=OUTAGES)
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 3, 0, TRACE)
    up_end = [0.0100 + tx, 0.0100 + tx + tx, 0.0100 + tx + tx + tx]
    arr = [u + p for u in up_end]
    assert rec["t_node_arrival"].tolist() == [approx(a) for a in arr]
    assert rec["t_service_start"].tolist() == [approx(a) for a in arr]
    d_end = [0.0200 + tx, 0.0200 + 2 * tx, 0.0200 + 3 * tx]
    assert rec["t_complete"].tolist() == [approx(e + p) for e in d_end]
    assert rec["latency_s"].tolist() == [approx(e + p - t) for e, t in zip(d_end, times)]
    assert rec["timeout"].tolist() == [0, 0, 0]
    assert rec["queueing_s"].tolist() == [approx(0.0)] * 3  # time lost to the outages is network time


@pytest.mark.parametrize("cancel", [False, True])
def test_outage_with_timeout_and_cancellation(tmp_path, cancel):
    """The run above with a 19 ms timeout. Without cancellation all three time out (answers at 23, 24,
    25 ms; deadlines 19, 19.5, 24 ms). With it, r0's resend (20 ms) would start at/after its deadline, so
    it leaves the down transmitter at the cut (14.5 ms); r1 would start at 20 ms >= 19.5 ms: dropped;
    r2 then starts at 20 ms and answers at 23 ms, within its deadline."""
    tx, p, times = 8000 / 8e6, 0.002, [0.0, 0.0005, 0.005]
    sc = chain(tmp_path, times, devices=(("dev", 2.0, 8.0),), mid_gflops=0.01, faults=OUTAGES, timeout_ms=19.0,
               cancel=cancel)
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 3, 0, TRACE)
    assert rec["timeout"].tolist() == ([1, 1, 0] if cancel else [1, 1, 1])
    assert not np.isnan(rec["t_service_end"]).any()  # every job was served at the edge before its deadline
    assert rec["t_complete"][:2].tolist() == [approx(0.019), approx(0.0005 + 0.019)]
    assert rec["answer"][:2].tolist() == [-1, -1]
    if cancel:
        assert rec["t_complete"][2] == approx(0.0200 + tx + p)
        assert rec["latency_s"][2] == approx(0.0200 + tx + p - 0.005)
    else:
        assert rec["t_complete"][2] == approx(0.005 + 0.019)


def test_factors_at_the_start_apply_to_the_whole_stage(tmp_path):
    """A bandwidth fault active at a transmission's start halves the whole transmission even if it ends
    during it; a slowdown that starts during a service does not change it."""
    faults = (Fault("link_bandwidth", "dev", 0.0, 0.0005, factor=0.5),
              Fault("node_slowdown", "edge", 0.0030, 1.0, factor=0.25))
    sc = chain(tmp_path, [0.0, 0.0021], devices=(("dev", 0.0, 8.0),), mid_gflops=0.01, faults=faults)
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 2, 0, TRACE)
    up0 = 0.0 + 8000 / (8e6 * 0.5)  # 2 ms at half bandwidth
    s0 = up0  # served 2 .. 3 ms (started before the slowdown)
    assert rec["t_service_start"][0] == approx(s0)
    assert rec["t_service_end"][0] == approx(s0 + 0.01 / 10.0)
    # request 1: up 2.1 .. 3.1 ms, served from 3.1 ms at a quarter speed: 4 ms
    s1 = 0.0021 + 8000 / 8e6
    assert rec["t_service_start"][1] == approx(s1)
    assert rec["t_service_end"][1] == approx(s1 + 0.01 / (10.0 * 0.25))


@pytest.mark.parametrize("cancel", [False, True])
def test_timeout_with_and_without_cancellation(tmp_path, cancel):
    """Edge jobs of 100 ms, timeout 150 ms. r0 answers at 104 ms. r1 starts at 102 ms (before its deadline
    151 ms), is served to the end and times out. r2 would start at 202 ms, after its deadline (152 ms):
    with cancellation it is dropped and leaves the server free for r3 (t = 210 ms), which then answers
    in 104 ms; without, r2 is served 202 .. 302 ms and r3 waits for it and times out."""
    sc = chain(tmp_path, [0.0, 0.001, 0.002, 0.21], timeout_ms=150.0, cancel=cancel)
    rec = run_twin(sc, Fixed(2, n_feat(sc), option=1), 4, 0, TRACE)
    tx, p, w = 8000 / 8e6, 0.001, 1.0 / 10.0
    arr = [(0.0 + tx) + p, (0.001 + tx) + p, (0.002 + tx) + p, (0.21 + tx) + p]
    s = [arr[0], arr[0] + w, arr[0] + w + w]
    e = [s[0] + w, s[1] + w, s[2] + w]
    assert rec["t_node_arrival"].tolist() == [approx(a) for a in arr]
    assert rec["t_service_start"][:2].tolist() == [approx(s[0]), approx(s[1])]
    assert rec["t_service_end"][:2].tolist() == [approx(e[0]), approx(e[1])]
    D = [t + 0.15 for t in (0.0, 0.001, 0.002, 0.21)]
    assert rec["latency_s"][0] == approx((e[0] + tx) + p)
    assert rec["timeout"].tolist() == ([0, 1, 1, 0] if cancel else [0, 1, 1, 1])
    assert rec["latency_s"][1:3].tolist() == [0.15, 0.15]
    assert rec["answer"][1:3].tolist() == [-1, -1]
    assert rec["t_complete"][1:3].tolist() == [approx(D[1]), approx(D[2])]
    # r1: queued 3 .. 102 ms, computing 102 .. 151 ms (the deadline), the rest is network
    assert rec["queueing_s"][1] == approx(s[1] - arr[1])
    assert rec["compute_s"][1] == approx(D[1] - s[1])
    assert rec["network_s"][1] == approx(0.15 - (s[1] - arr[1]) - (D[1] - s[1]))
    if cancel:
        assert math.isnan(rec["t_service_start"][2]) and math.isnan(rec["t_service_end"][2])
        assert rec["queueing_s"][2] == approx(D[2] - arr[2])  # waited in the queue until the deadline
        assert rec["compute_s"][2] == 0.0
        assert rec["t_service_start"][3] == approx(arr[3])
        assert rec["latency_s"][3] == approx(((arr[3] + w) + tx) + p - 0.21)
    else:
        assert rec["t_service_start"][2] == approx(s[2]) and rec["t_service_end"][2] == approx(e[2])
        assert rec["queueing_s"][2] == approx(D[2] - arr[2]) and rec["compute_s"][2] == 0.0
        assert rec["t_service_start"][3] == approx(e[2])
        assert rec["latency_s"][3] == 0.15
    assert rec["reward"].tolist() == [approx(c - 2.0 * lat) for c, lat in zip(rec["correct"], rec["latency_s"])]


def test_context_backlog_counts_queued_jobs_with_their_slowdown_and_cancellation(tmp_path):
    """2 servers, local jobs of 100 ms at t = 0, 1, 2, 3, 4 ms; a slowdown (x0.5) from 50 ms. At t = 3 ms
    r0 (ends 100 ms) and r1 (101 ms) are in service and r2 is queued: it will take r0's server at 100 ms
    at half speed (until 300 ms): backlog 101 - 3 ms. At t = 4 ms r3 is queued too (101 .. 301 ms):
    backlog 296 ms. With a 96 ms timeout and cancellation r2 and r3 would start after their deadlines
    and are not counted: backlog 97 ms, 96 ms."""
    for timeout_ms, cancel, expect in ((10_000.0, False, [0.0, 0.0, 0.1 - 0.002, 0.101 - 0.003, 0.3 - 0.004]),
                                       (96.0, True, [0.0, 0.0, 0.1 - 0.002, 0.1 - 0.003, 0.1 - 0.004])):
        sc = chain(tmp_path, [0.0, 0.001, 0.002, 0.003, 0.004], small_gflops=1.0, confidence=False, dev_servers=2,
                   timeout_ms=timeout_ms, cancel=cancel,
                   faults=(Fault("node_slowdown", "dev", 0.05, 10.0, factor=0.5),))
        ag = Script([0] * 5)
        run_twin(sc, ag, 5, 0, TRACE)
        xs = [e[2] for e in ag.log if e[0] == "act"]
        assert [x[0] for x in xs] == [approx(v) for v in expect]  # backlog of option 0 (the device)
        assert [x[1] for x in xs] == [0.0] * 5  # the edge is idle
        assert [x[2] for x in xs] == [1.0] * 5


@pytest.mark.parametrize("mode", ["full", "label_on_forward", "proxy"])
def test_feedback_delivered_at_completion(tmp_path, mode):
    """r0 (t = 0) goes to the edge and completes at 104 ms; r1 (10 ms) and r2 (50 ms) are served locally
    and complete at 11 and 51 ms; r3 at 200 ms. Updates: r1 before r2's decision, then r2 and r0 (in
    order of completion) before r3's decision, r3 at the end."""
    sc = chain(tmp_path, [0.0, 0.01, 0.05, 0.2], feedback=mode)
    ag = Script([1, 0, 0, 0])
    rec = run_twin(sc, ag, 4, 0, TRACE)
    kinds = [e[0] for e in ag.log]
    assert kinds == ["act", "act", "update", "act", "update", "update", "act", "update"]
    assert rec["order_delivered"].tolist() == [2, 0, 1, 3]
    assert rec["t_complete"].tolist() == [approx(0.104), approx(0.011), approx(0.051), approx(0.201)]
    ups = [e for e in ag.log if e[0] == "update"]  # r1, r2, r0, r3
    by_g = {1: ups[0], 2: ups[1], 0: ups[2], 3: ups[3]}
    for g, (_, a, r, rs) in by_g.items():
        assert a == rec["option"][g]
        if mode == "full":
            assert r == rec["reward"][g] and rs[a] == r and not np.isnan(rs).any()
        elif a == 0:  # served locally: nothing observed without a label
            assert math.isnan(r) and np.isnan(rs).all() and math.isnan(rec["feedback_r"][g])
    _, a, r, rs = by_g[0]  # forwarded and answered
    if mode == "full":
        # estimate of the local option at t = 0: an idle device, 1 ms of compute
        assert rs[0] == approx(float(TRACE_RIGHT("small", rec["sample"][0])) - 2.0 * 0.001)
    if mode == "label_on_forward":
        assert r == rec["reward"][0] and rs[1] == r
        assert rs[0] == approx(float(TRACE_RIGHT("small", rec["sample"][0])) - 2.0 * 0.001)
    if mode == "proxy":
        assert r == approx(1.0 - 2.0 * rec["latency_s"][0])
        same = TRACE_PRED("small", rec["sample"][0]) == rec["answer"][0]
        assert rs[0] == approx(float(same) - 2.0 * 0.001)
    assert rec["feedback_r"][0] == r


def TRACE_RIGHT(col, s):
    j = TRACE.model_names.index(col)
    return bool(TRACE.probs[j, s].argmax() == TRACE.labels[s])


def TRACE_PRED(col, s):
    return int(TRACE.probs[TRACE.model_names.index(col), s].argmax())


@pytest.mark.parametrize("delay, kinds", [
    (dict(delay_requests=1), ["act", "act", "act", "update", "act", "update", "update", "update"]),
    (dict(delay_s=0.1), ["act", "act", "act", "update", "update", "act", "update", "update"]),
])
def test_feedback_delays(tmp_path, delay, kinds):
    """Same run; delay_requests = 1: r1 (done at 11 ms, 2 decisions made) waits for the 2nd decision after
    it (r3); r2 and r0 complete after r2's decision and are left for the end. delay_s = 0.1: r1 and r2 are
    due at 111 and 151 ms (before r3 at 200 ms), r0 at 204 ms (after r3)."""
    sc = chain(tmp_path, [0.0, 0.01, 0.05, 0.2], feedback="bandit", **delay)
    ag = Script([1, 0, 0, 0])
    rec = run_twin(sc, ag, 4, 0, TRACE)
    assert [e[0] for e in ag.log] == kinds
    assert rec["order_delivered"].tolist() == [2, 0, 1, 3]


# ---------------------------------------------------------------------------------------------- random scenarios
class GreedyPy:
    """A deterministic Python learner: every 7th decision explores round-robin, otherwise the option of
    highest mean observed reward (untried: optimistic 1.0) minus its backlog when the context has it."""

    def __init__(self, n_actions, n_features, load_at=None):
        self.n_actions, self.n_features, self.load_at = n_actions, n_features, load_at
        self.sum = np.zeros(n_actions)
        self.cnt = np.zeros(n_actions)
        self.t = 0

    def act(self, x):
        self.t += 1
        if self.t % 7 == 0:
            return (self.t // 7) % self.n_actions
        mean = np.where(self.cnt > 0, self.sum / np.maximum(self.cnt, 1), 1.0)
        if self.load_at is not None:
            mean = mean - np.asarray(x)[self.load_at:self.load_at + self.n_actions]
        return int(np.argmax(mean))

    def update(self, x, a, r, *, rewards=None):
        rs = np.full(self.n_actions, np.nan) if rewards is None else np.asarray(rewards)
        if rewards is None:
            rs[a] = r
        ok = ~np.isnan(rs)
        self.sum[ok] += rs[ok]
        self.cnt[ok] += 1


def build_agent(spec, sc: Scenario):
    k, f = n_opt(sc), n_feat(sc)
    if spec == "py":
        return GreedyPy(k, f, 3 * sc.context.confidence if sc.context.load else None)
    return make_agent(spec, k, f, seed=11)


@st.composite
def random_runs(draw):
    n_dev = draw(st.integers(1, 5))
    tiers = draw(st.integers(1, 3))
    upper = [("edge", "edge"), ("regional", "regional"), ("cloud", "cloud")][3 - tiers:]
    two_edges = tiers >= 2 and n_dev >= 2 and draw(st.booleans())
    rate = draw(st.floats(2.0, 80.0))
    steps = draw(st.integers(30, 300))
    span = steps / (rate * n_dev)
    cols = ["mid", "big", "big"]

    def link():
        return Link(draw(st.sampled_from([0.0, draw(st.floats(0.1, 30.0))])), draw(st.floats(0.5, 200.0)),
                    cost_per_mb=draw(st.sampled_from([0.0, 0.05])))

    nodes, models = [], [ModelSpec("small", "small", draw(st.floats(0.005, 0.5)), 10,
                                   input_bytes=draw(st.integers(500, 100_000)),
                                   output_bytes=draw(st.integers(50, 2000)))]
    top_two = draw(st.booleans())
    names = []
    for i, (name, tier) in enumerate(upper):
        parent = upper[i + 1][0] if i + 1 < len(upper) else None
        mods = [f"m-{name}"]
        models.append(ModelSpec(mods[0], cols[i], draw(st.floats(0.05, 20.0)), 10,
                                input_bytes=draw(st.integers(500, 100_000)), output_bytes=draw(st.integers(50, 2000))))
        if parent is None and top_two:
            mods.append(f"m2-{name}")
            models.append(ModelSpec(mods[1], "big", draw(st.floats(0.05, 20.0)), 10))
        copies = [name, f"{name}-b"] if (i == 0 and two_edges) else [name]
        for nm in copies:
            nodes.append(Node(nm, tier, draw(st.floats(20.0, 5000.0)), servers=draw(st.integers(1, 4)),
                              models=tuple(mods), parent=parent, uplink=None if parent is None else link(),
                              cost_per_request=draw(st.sampled_from([0.0, 0.01]))))
            names.append(nm)
    bottom = [n.name for n in nodes if n.tier.value == upper[0][1]]
    devs = []
    for d in range(n_dev):
        devs.append(Node(f"dev{d}", "device", draw(st.floats(2.0, 50.0)), models=("small",),
                         parent=bottom[d % len(bottom)], uplink=link()))
    nodes = devs + nodes
    background = []
    for n in nodes:
        if draw(st.integers(0, 2)) == 0:
            background.append(Background(n.name, draw(st.floats(0.05, 0.8)), draw(st.floats(1.0, 30.0)),
                                         draw(st.sampled_from(["exponential", "deterministic"]))))
    faults = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["link_outage", "link_bandwidth", "node_slowdown"]))
        target = draw(st.sampled_from([n.name for n in nodes if kind == "node_slowdown" or n.uplink is not None]))
        start = draw(st.floats(0.0, span))
        faults.append(Fault(kind, target, start, start + draw(st.floats(0.001, max(0.002, span / 3))),
                            factor=draw(st.floats(0.1, 2.0))))
    if draw(st.booleans()):  # a train of short outages on one link: cuts transmissions in flight
        target = draw(st.sampled_from([n.name for n in nodes if n.uplink is not None]))
        t0, gap = draw(st.floats(0.0, span / 2)), draw(st.floats(0.002, 0.05))
        for i in range(draw(st.integers(1, 30))):
            start = t0 + i * gap
            faults.append(Fault("link_outage", target, start, start + draw(st.floats(0.0005, 0.03))))
    fb_mode = draw(st.sampled_from(["full", "bandit", "label_on_forward", "proxy"]))
    delay = draw(st.sampled_from(["none", "requests", "seconds"]))
    fb = FeedbackSpec(fb_mode, delay_requests=draw(st.integers(1, 6)) if delay == "requests" else 0,
                      delay_s=draw(st.floats(0.001, 0.5)) if delay == "seconds" else 0.0)
    sc = Scenario(
        name="twin-random", nodes=tuple(nodes), models=tuple(models),
        workload=Workload(origins=tuple(d.name for d in devs), rate_per_s=rate, background=tuple(background),
                          timeout_ms=draw(st.sampled_from([draw(st.floats(10.0, 400.0)), 10_000.0])),
                          cancel_on_timeout=draw(st.booleans())),
        trace=_TRACE_SPEC,
        reward=RewardSpec(w_acc=1.0, w_lat_per_s=draw(st.floats(0.0, 5.0)), w_cost=draw(st.sampled_from([0.0, 1.0])),
                          deadline_ms=draw(st.sampled_from([None, draw(st.floats(5.0, 300.0))]))),
        feedback=fb,
        context=ContextSpec(confidence=draw(st.booleans()), load=draw(st.booleans()), calibrated=draw(st.booleans())),
        faults=tuple(faults), seed=0,
    )
    agent = draw(st.sampled_from(["epsilon-greedy(epsilon=0.3)", "linucb(alpha=0.5)", "py"]))
    return sc, steps, draw(st.integers(0, 2 ** 20)), agent


def check_invariants(sc: Scenario, rec):
    n = rec["g"].shape[0]
    timeout_s = sc.workload.timeout_ms / 1e3
    t = rec["t_decision"]
    D = t + timeout_s
    to = rec["timeout"] == 1
    assert np.array_equal(rec["g"], np.arange(n))
    assert sorted(rec["order_delivered"].tolist()) == list(range(n))
    assert (rec["latency_s"][to] == timeout_s).all() and (rec["answer"][to] == -1).all()
    assert (rec["correct"][to] == 0).all()
    assert np.array_equal(rec["latency_s"][~to], rec["t_complete"][~to] - t[~to])
    assert (rec["t_complete"] <= D).all() and (rec["t_complete"][to] == D[to]).all()
    assert np.allclose(rec["network_s"] + rec["queueing_s"] + rec["compute_s"], rec["latency_s"], rtol=0, atol=1e-12)
    for k in ("network_s", "queueing_s", "compute_s"):
        assert (rec[k] >= -1e-12).all(), k
    served = ~np.isnan(rec["t_service_start"])
    reached = ~np.isnan(rec["t_node_arrival"])
    assert (reached >= served).all() and np.array_equal(served, ~np.isnan(rec["t_service_end"]))
    assert (rec["t_node_arrival"][reached] <= rec["t_complete"][reached]).all()  # recorded while open
    assert (rec["t_node_arrival"][reached] >= t[reached]).all()
    assert (rec["t_service_start"][served] >= rec["t_node_arrival"][served]).all()
    assert (rec["t_service_end"][served] > rec["t_service_start"][served]).all()
    assert reached[~to].all() and served[~to].all()
    if sc.workload.cancel_on_timeout:
        assert (rec["t_service_start"][served] < D[served]).all()
    else:
        assert np.array_equal(reached, served)
    r = sc.reward
    expect = r.w_acc * rec["correct"] - r.w_lat_per_s * rec["latency_s"] - r.w_cost * rec["cost"]
    assert np.allclose(rec["reward"], expect, rtol=0, atol=1e-12)
    if r.deadline_ms is not None:
        assert np.array_equal(rec["late"] == 1, rec["latency_s"] > r.deadline_ms / 1e3)
    if sc.feedback.mode.value in ("full", "bandit"):
        assert np.array_equal(rec["feedback_r"], rec["reward"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_runs())
def test_twin_invariants_on_random_scenarios(run):
    sc, steps, seed, spec = run
    rec = run_twin(sc, build_agent(spec, sc), steps, seed, TRACE)
    check_invariants(sc, rec)


def _fast_simulate():
    from idnbandit import sim

    if "record_requests" not in inspect.signature(sim.simulate).parameters:
        pytest.skip("idnbandit.sim.simulate has no record_requests yet (the fast event core has not landed)")
    return sim.simulate


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_runs())
def test_twin_matches_fast_simulator(run):
    simulate = _fast_simulate()
    sc, steps, seed, spec = run
    twin = run_twin(sc, build_agent(spec, sc), steps, seed, TRACE)
    fast = simulate(sc, build_agent(spec, sc), steps, seed=seed, trace=TRACE, record_requests=True).requests
    assert set(fast) >= set(RECORD_KEYS)
    for k in EXACT_KEYS:
        assert np.array_equal(np.asarray(fast[k]), twin[k]), (k, _first_diff(fast[k], twin[k]))
    for k in TIME_KEYS:
        a, b = np.asarray(fast[k], dtype=np.float64), twin[k]
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        close = np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)
        assert same_nan and close, (k, _first_diff(a, b))


def _first_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-9))
    i = int(np.argmax(bad)) if bad.any() else -1
    return None if i < 0 else dict(g=i, fast=float(a[i]), twin=float(b[i]))
