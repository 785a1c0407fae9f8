"""simulate(): common random numbers, determinism, fused == Python loop, causal feedback, faults, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_helpers import make_trace, three_tier

from idnbandit.agents import Fixed, Random
from idnbandit.errors import ConfigError, TraceError
from idnbandit.scenario import Background, Fault, FeedbackSpec, Node, Scenario, Workload
from idnbandit.sim import Engine, RequestStream, n_features, n_options, simulate

BG = (Background("edge", 0.5, 20.0),)


class PyAgent:
    """Drives a kernel agent through act/update only (forces the Python loop) and logs updates."""

    needs_counterfactuals = False

    def __init__(self, agent):
        self.agent = agent
        self.name = agent.name
        self.n_actions = agent.n_actions
        self.n_features = agent.n_features
        self.log = []

        self.contexts = []
        self.acts_before_update = []  # decisions made when each update arrived

    def act(self, x):
        self.contexts.append(np.array(x))
        return self.agent.act(x)

    def update(self, x, a, r, *, rewards=None):
        self.log.append((a, r, None if rewards is None else np.array(rewards)))
        self.acts_before_update.append(len(self.contexts))
        self.agent.update(x, a, r, rewards=rewards)
        return self


def same(a, b):
    da, db = a.to_dict(), b.to_dict()
    for k in ("wall_time_s", "decisions_per_s", "extra"):
        da.pop(k), db.pop(k)
    ea, eb = dict(a.extra), dict(b.extra)
    ea.pop("path"), eb.pop("path")
    return da == db and ea == eb


@pytest.fixture(scope="module")
def trace():
    return make_trace()


def test_common_random_numbers():
    sc = three_tier(background=BG)
    a, b = RequestStream(sc, 500, 7), RequestStream(sc, 500, 7)
    for _ in range(2):
        for x, y in zip(a.next_chunk(), b.next_chunk()):
            np.testing.assert_array_equal(x, y)
    c = RequestStream(sc, 500, 8).next_chunk()
    assert not np.array_equal(c[0], RequestStream(sc, 500, 7).next_chunk()[0])


def test_two_agents_see_the_same_requests(trace):
    """Counterfactuals of option 0 (local, served by no one else) agree between two agents."""
    sc = three_tier()
    f = n_features(sc)
    e1, e2 = Engine(sc, 4, trace), Engine(sc, 4, trace)
    for _ in range(300):
        e1.next_request(), e2.next_request()
        assert (e1.origin, e1.sample, e1.time_s) == (e2.origin, e2.sample, e2.time_s)
        e1.apply(0), e2.apply(2)
    assert f == 3 + n_options(sc) + 1


def test_repeat_is_bit_identical_and_seeds_differ(trace):
    sc = three_tier(background=BG)
    f = n_features(sc)
    r1 = simulate(sc, Fixed(3, f, option=1), 5000, seed=1, trace=trace)
    r2 = simulate(sc, Fixed(3, f, option=1), 5000, seed=1, trace=trace)
    r3 = simulate(sc, Fixed(3, f, option=1), 5000, seed=2, trace=trace)
    assert r1.same_trajectory(r2)
    assert not r1.same_trajectory(r3)
    assert r1.option_rates[1] == 1.0 and r1.forward_rate == 1.0
    assert r1.forward_rate_by_tier["edge"] == 1.0
    assert r1.regret_oracle >= 0
    assert r1.curve_t[-1] == 5000 and r1.curve_regret_oracle[-1] == pytest.approx(r1.regret_oracle)
    assert r1.latency_p50_ms <= r1.latency_p95_ms <= r1.latency_p99_ms


@pytest.mark.parametrize("mode,delay", [("bandit", {}), ("full", {"delay_requests": 5}),
                                        ("label_on_forward", {"delay_s": 0.5}), ("proxy", {})])
def test_fused_equals_python_loop(trace, mode, delay):
    sc = three_tier(background=BG, feedback=mode, **delay)
    f = n_features(sc)
    for make in (lambda: Random(3, f, seed=11), lambda: Fixed(3, f, option=2)):
        fused = simulate(sc, make(), 3000, seed=9, trace=trace)
        py_agent = PyAgent(make())
        python = simulate(sc, py_agent, 3000, seed=9, trace=trace)
        assert fused.extra["path"] == "fused" and python.extra["path"] == "python"
        assert same(fused, python)
        assert len(py_agent.log) == 3000  # update exactly once per decision (delayed ones flushed)


def test_python_agent_matches_engine(trace):
    """The Python loop and the step engine run the same core: same outcomes; quantiles within 1 %."""
    sc = three_tier(background=BG, deadline_ms=60.0)
    f = n_features(sc)
    res = simulate(sc, PyAgent(Random(3, f, seed=3)), 4000, seed=5, trace=trace)
    eng = Engine(sc, 5, trace)
    agent = Random(3, f, seed=3)
    done = []
    for _ in range(4000):
        x = eng.next_request()
        eng.apply(agent.act(x))
        done += eng.completed()
    eng.drain()
    done += eng.completed()
    assert sorted(c.request for c in done) == list(range(4000))
    lat = [c.outcome.latency_ms for c in done]
    assert res.mean_reward == pytest.approx(np.mean([c.outcome.reward for c in done]), rel=1e-9)
    assert res.accuracy == pytest.approx(np.mean([c.outcome.correct for c in done]))
    for q, got in ((50, res.latency_p50_ms), (95, res.latency_p95_ms), (99, res.latency_p99_ms)):
        assert abs(got / np.percentile(lat, q, method="inverted_cdf") - 1) < 0.01
    assert res.deadline_violation_rate == pytest.approx(np.mean(np.array(lat) > 60.0))


def _first(mode, option, trace, **kw):
    """The feedback of the first request of a lightly loaded three-tier IDN sent with ``option``."""
    eng = Engine(three_tier(feedback=mode, **kw), 0, trace)
    eng.next_request()
    cf = eng.counterfactual_rewards()
    g = eng.apply(option)
    eng.drain()
    (c,) = [c for c in eng.completed() if c.request == g]
    return cf, c.outcome, c.feedback_reward, c.feedback_rewards


def test_feedback_modes(trace):
    cf, out, r, rs = _first("full", 1, trace)
    assert r == out.reward and rs[1] == out.reward and rs[0] == cf[0] and rs[2] == cf[2]
    cf, out, r, rs = _first("bandit", 1, trace)
    assert r == out.reward and np.isnan(rs[[0, 2]]).all()
    _, _, r, rs = _first("label_on_forward", 0, trace)
    assert np.isnan(r) and np.isnan(rs).all()
    cf, out, r, rs = _first("label_on_forward", 2, trace)
    assert r == out.reward and rs[0] == cf[0] and np.isnan(rs[1])
    _, _, r, rs = _first("proxy", 0, trace)
    assert np.isnan(r) and np.isnan(rs).all()
    cf, out, r, rs = _first("proxy", 2, trace)
    assert not np.isnan(rs[0]) and np.isnan(rs[1])
    assert out.reward == cf[2]  # alone in the network: the realised outcome is the estimate


@pytest.mark.parametrize("delay", [{}, {"delay_s": 0.05}, {"delay_requests": 3}])
def test_feedback_arrives_when_the_response_does(trace, delay):
    """Causal feedback: a decision's update reaches the learner just before the first decision made at
    or after its completion time (+ delay_s), or d decisions later; in order of completion."""
    sc = three_tier(background=BG, rate=100.0, feedback="full", **delay)
    agent = PyAgent(Random(3, n_features(sc), seed=4))
    res = simulate(sc, agent, 3000, seed=2, trace=trace, record_requests=True)
    rq = res.requests
    t_dec = np.sort(rq["t_decision"])
    due = rq["t_complete"] + delay.get("delay_s", 0.0)
    before = np.searchsorted(t_dec, due, side="left") + delay.get("delay_requests", 0)
    expected = np.minimum(before, 3000)  # the rest is delivered after the last decision
    order = np.argsort(rq["order_delivered"])
    np.testing.assert_array_equal(np.array(agent.acts_before_update), expected[order])
    assert np.all(np.diff(rq["t_complete"][order]) >= 0)  # delivered in order of completion
    assert (rq["t_complete"] > np.roll(t_dec, -1)[rq["g"]]).mean() > 0.3  # many complete after later decisions


def test_context_sees_the_state_at_its_own_time(trace):
    """The edge backlog in a request's context counts exactly the jobs that reached the edge before
    its decision (requests of both devices and background jobs), not later-arriving ones."""
    sc = three_tier(rate=40.0)
    agent = PyAgent(Fixed(3, n_features(sc), option=1))
    rq = simulate(sc, agent, 2000, seed=8, trace=trace, record_requests=True).requests
    xs = np.array(agent.contexts)
    backlog_edge = xs[:, 3 + 1]
    arr, end = rq["t_node_arrival"], rq["t_service_end"]
    for g in range(50, 2000, 37):
        t = rq["t_decision"][g]
        here = arr < t  # jobs that had reached the edge (2 servers) by t
        ends = np.sort(end[here])[::-1]
        busy = ends[:2] if ends.size >= 2 else np.r_[ends, [0.0]]
        # first of the 2 servers to be free: the smaller of the two latest ends (FIFO: servers
        # are handed out in arrival order, so the two busiest are the two latest ends)
        expected = max(0.0, min(busy) - t)
        assert backlog_edge[g] == pytest.approx(expected, abs=1e-12)
    assert np.any((arr > np.roll(rq["t_decision"], -1)) & (backlog_edge > 0))  # the case is exercised


def test_delayed_feedback_order(trace):
    sc = three_tier(feedback="bandit", delay_requests=10)
    agent = PyAgent(Random(3, n_features(sc), seed=0))
    simulate(sc, agent, 200, trace=trace)
    assert len(agent.log) == 200


def test_faults(trace):
    outage = Fault("link_outage", "edge", 0.0, 1e9)
    sc = three_tier(faults=(outage,))
    f = n_features(sc)
    cloud = simulate(sc, Fixed(3, f, option=2), 2000, trace=trace)
    assert cloud.timeout_rate == 1.0 and cloud.accuracy == 0.0
    assert cloud.latency_mean_ms == pytest.approx(10_000.0)
    edge = simulate(sc, Fixed(3, f, option=1), 2000, trace=trace)
    assert edge.timeout_rate == 0.0
    fast = simulate(three_tier(rate=5.0), Fixed(3, f, option=1), 2000, trace=trace)
    slow = simulate(three_tier(rate=5.0, faults=(Fault("node_slowdown", "edge", 0.0, 1e9, factor=0.5),)),
                    Fixed(3, f, option=1), 2000, trace=trace)
    assert slow.timeout_rate == 0.0
    assert slow.extra["compute_mean_ms"] == pytest.approx(2 * fast.extra["compute_mean_ms"])
    assert slow.latency_mean_ms > fast.latency_mean_ms
    narrow = simulate(three_tier(rate=5.0, faults=(Fault("link_bandwidth", "dev0", 0.0, 1e9, factor=0.5),
                                         Fault("link_bandwidth", "dev1", 0.0, 1e9, factor=0.5))),
                      Fixed(3, f, option=1), 2000, trace=trace)
    assert narrow.extra["network_mean_ms"] > fast.extra["network_mean_ms"]


def test_bad_inputs(trace):
    sc = three_tier()
    f = n_features(sc)
    for steps in (0, -3, 1.5, True, "10"):
        with pytest.raises(ConfigError, match="steps"):
            simulate(sc, Fixed(3, f), steps, trace=trace)
    with pytest.raises(ConfigError, match="n_actions"):
        simulate(sc, Fixed(4, f), 10, trace=trace)
    with pytest.raises(ConfigError, match="n_features"):
        simulate(sc, Fixed(3, f + 1), 10, trace=trace)
    with pytest.raises(ConfigError, match="seed"):
        simulate(sc, Fixed(3, f), 10, seed=-1, trace=trace)
    with pytest.raises(TraceError, match="mid"):
        simulate(sc, Fixed(3, f), 10, trace=make_trace(columns=("small", "midd", "big")))
    bad = make_trace()
    probs = np.array(bad.probs)
    probs[1, 3, 0] = np.nan
    object.__setattr__(bad, "probs", probs)  # bypass Trace's own check
    with pytest.raises(TraceError, match="NaN"):
        simulate(sc, Fixed(3, f), 10, trace=bad)
    with pytest.raises(ConfigError, match="progress"):
        simulate(sc, Fixed(3, f), 10, trace=trace, progress=3)
    with pytest.raises(ConfigError, match="curve_points"):
        simulate(sc, Fixed(3, f), 10, trace=trace, curve_points=0)
    with pytest.raises(ConfigError, match="feedback.mode"):
        FeedbackSpec("psychic")
    weird = dataclasses.replace(sc)
    object.__setattr__(weird.feedback, "mode", "psychic")
    with pytest.raises(ConfigError, match="feedback.mode"):
        simulate(weird, Fixed(3, f), 10, trace=trace)


def test_unequal_option_counts(trace):
    sc = three_tier()
    extra = Node("dev2", "device", 20.0, parent="edge", uplink=sc.nodes[0].uplink)
    with pytest.raises(ConfigError, match="number of options"):  # Scenario or the simulator rejects it
        bad = Scenario("uneven", (*sc.nodes, extra), sc.models, Workload(("dev0", "dev2")), sc.trace)
        simulate(bad, Fixed(3, 7), 10, trace=trace)


def test_replay_file_errors_and_times(tmp_path, trace):
    p = tmp_path / "ts.txt"
    p.write_text("0.5\n1.0\nabc\n")
    sc = three_tier(process="replay", replay_file=str(p))
    with pytest.raises(ConfigError, match=r"ts.txt.*line 3"):
        simulate(sc, Fixed(3, n_features(sc)), 10, trace=trace)
    p.write_text("0.5\n1.0\n2.0\n")
    t, _, _ = RequestStream(sc, 500, 0).next_chunk()
    period = 1.5 + 0.75  # span of the file plus one mean gap
    np.testing.assert_allclose(t[:7], [0.5, 1.0, 2.0, 0.5 + period, 1.0 + period, 2.0 + period, 0.5 + 2 * period])


@pytest.mark.parametrize("process", ["poisson", "bursty", "diurnal"])
def test_arrival_rates(process):
    kw = {"diurnal_period_s": 100.0} if process == "diurnal" else {}
    if process == "bursty":
        kw = {"burst_factor": 3.0}
    sc = three_tier(process=process, rate=10.0, **kw)
    s = RequestStream(sc, 500, 3)
    ts = np.concatenate([s.next_chunk()[0] for _ in range(8)])
    assert np.all(np.diff(ts) >= 0)
    assert len(ts) / ts[-1] == pytest.approx(20.0, rel=0.05)
    if process == "bursty":  # burstier than Poisson: index of dispersion of counts per second > 1
        counts = np.bincount(ts.astype(np.int64))
        assert counts.var() / counts.mean() > 2.0


def test_engine_api(trace):
    eng = Engine(three_tier(), 0, trace)
    with pytest.raises(ConfigError, match="next_request"):
        eng.apply(0)
    x = eng.next_request()
    assert x.shape == (eng.n_features,) and x[-1] == 1.0 and 0 < x[0] <= 1
    assert eng.options_at_hop(0) == (0,) and eng.options_at_hop(2) == (2,)
    assert eng.n_hops() == 3
    with pytest.raises(ConfigError, match="apply"):
        eng.next_request()
    with pytest.raises(ConfigError, match="option"):
        eng.apply(3)
    peek = [eng.peek(k) for k in range(3)]
    assert [p.reward for p in peek] == list(eng.counterfactual_rewards())
    assert eng.apply(1) == 0
    eng.reset(0)
    assert np.array_equal(eng.next_request(), x)


def test_oracle_has_zero_regret_python_loop(trace):
    """An agent with needs_counterfactuals gets the counterfactual rewards in place of the context."""
    from idnbandit.agents.oracle import Oracle

    sc = three_tier(background=BG)
    oracle = Oracle(3, n_features(sc))
    seen = []

    class Wrapped(PyAgent):
        needs_counterfactuals = True

        def act_oracle(self, rewards):
            seen.append(np.array(rewards))
            return self.agent.act_oracle(rewards)

    res = simulate(sc, Wrapped(oracle), 3000, seed=2, trace=trace)
    assert len(seen) == 3000 and seen[0].shape == (3,)
    # it picks the best decision-time estimate; the regret against the estimates is only their error
    assert res.extra["chosen_estimate_mean_reward"] == pytest.approx(res.oracle_mean_reward, rel=1e-12)
    assert res.regret_oracle == pytest.approx(3000 * (res.oracle_mean_reward - res.mean_reward), rel=1e-9)
    assert abs(res.regret_oracle) / 3000 < 0.01
    assert res.regret_best_fixed <= 0


def test_progress_and_curves(trace):
    sc = three_tier()
    done = []
    res = simulate(sc, Fixed(3, n_features(sc), option=2), 70_000, trace=trace, progress=done.append, curve_points=7)
    assert done == [65_536, 70_000]
    assert res.curve_t.tolist() == [10_000 * i for i in range(1, 8)]
    assert np.all(np.diff(res.curve_regret_oracle) >= -1e-9)  # the oracle is never worse than a choice
    assert res.latency_hist_counts.sum() == 70_000
    assert len(res.latency_hist_edges_ms) == len(res.latency_hist_counts) + 1


def test_growing_the_request_ring_keeps_a_pending_decision(trace):
    """The ring of in-flight requests doubles (re-indexed by request number) while a decision is
    pending: the pending request keeps its context and estimates."""
    from idnbandit.sim.state import M_NEED, M_PEND_SLOT, NEED_RQ

    eng = Engine(three_tier(rate=200.0), 0, trace)
    for _ in range(100):  # some requests in flight
        eng.next_request()
        eng.apply(2)
    x = eng.next_request()
    cf, slot = eng.counterfactual_rewards(), int(eng.driver.rs.imisc[M_PEND_SLOT])
    cap = eng.driver.rs.a["rq_t"].shape[0]
    eng.driver.rs.imisc[M_NEED] = NEED_RQ
    eng.driver.rs.grow()
    assert eng.driver.rs.a["rq_t"].shape[0] == 2 * cap
    assert int(eng.driver.rs.imisc[M_PEND_SLOT]) == (100 & (2 * cap - 1)) and slot == 100 & (cap - 1)
    np.testing.assert_array_equal(eng.counterfactual_rewards(), cf)
    np.testing.assert_array_equal(eng.driver.rs.a["rq_x"][int(eng.driver.rs.imisc[M_PEND_SLOT]), 0], x)
    assert eng.apply(1) == 100
    eng.drain()
    assert eng.n_completed == 101
