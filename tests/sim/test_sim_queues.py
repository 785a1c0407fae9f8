"""Queue fidelity of the event core against closed forms (M/M/1, M/M/c Erlang C, M/D/1, M/D/c, links,
background load, multi-origin arrivals) and the hard cases of exact event order.

Every closed form is checked *through* :func:`simulate` (the event core): requests with
deterministic service are M/D/c customers; M/M/c queues are background jobs (exponential service)
sampled by sparse, negligible probe requests (Poisson arrivals see time averages, so a probe's
wait is the time-average virtual wait, the M/M/c waiting time). Tolerance 1 % everywhere, with
sample sizes chosen so that this is about three standard errors (waits are autocorrelated: the
standard error of a mean wait grows like 1/(1 - rho)^2); seeds are fixed, so the tests are
deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import _TRACE_SPEC, make_trace, single_node

from idnbandit.agents import Fixed
from idnbandit.scenario import Background, ContextSpec, Fault, Link, ModelSpec, Node, Scenario, Workload
from idnbandit.sim import Engine, n_features, simulate
from idnbandit.sim.stages import fifo_waits

TRACE1 = make_trace(columns=("small",), accs=(0.7,))


def erlang_c_wait(c, lam, mu):
    a = lam / mu
    rho = a / c
    s = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (s + top) / (c * mu - lam)


def _poisson_sf(k: int, mu: float) -> float:
    """P(Poisson(mu) > k), from the log-space pmf (no scipy)."""
    if mu == 0:
        return 0.0
    total, logp = 0.0, -mu
    for j in range(k + 1):
        if j:
            logp += math.log(mu) - math.log(j)
        total += math.exp(logp)
    return max(0.0, 1.0 - total)


def md_c_wait(c: int, rho: float, d: float) -> float:
    """Mean wait of M/D/c (Crommelin 1932): ``d * sum_i [P(N_i >= ic) - (c/a) P(N_i >= ic + 1)]`` with
    ``N_i ~ Poisson(i a)``, ``a = rho c``; equals Pollaczek-Khinchine ``rho d / (2 (1 - rho))`` for c = 1."""
    a = rho * c
    s, i = 0.0, 1
    while True:
        term = _poisson_sf(i * c - 1, i * a) - (c / a) * _poisson_sf(i * c, i * a)
        s += term
        if abs(term) < 1e-13 and i > 10:
            return s * d
        i += 1


def test_closed_form_helpers():
    for rho in (0.5, 0.8, 0.9):
        assert md_c_wait(1, rho, 1.0) == pytest.approx(rho / (2 * (1 - rho)), rel=1e-6)
    assert erlang_c_wait(1, 0.5, 1.0) == pytest.approx(1.0)


def test_fifo_waits_matches_reference():
    rng = np.random.default_rng(1)
    arr = np.cumsum(rng.exponential(1.0, 2000))
    svc = rng.exponential(1.5, 2000)
    free_ref = [0.0, 0.0]
    ref = []
    for a, s in zip(arr, svc):
        j = int(np.argmin(free_ref))
        start = max(a, free_ref[j])
        free_ref[j] = start + s
        ref.append(start - a)
    np.testing.assert_allclose(fifo_waits(arr, svc, np.zeros(2)), ref, rtol=0, atol=1e-12)


def _served_requests(c: int, rho: float, d: float, steps: int, seed: int) -> float:
    """Mean wait (s) of Poisson requests of deterministic service ``d`` on one node with ``c`` servers."""
    sc = single_node(servers=c, rate=rho * c / d, gflops=d, speed=1.0, utilisation=0.0)
    res = simulate(sc, Fixed(1, n_features(sc)), steps, seed=seed, trace=TRACE1)
    assert res.extra["compute_mean_ms"] == pytest.approx(d * 1e3)
    return res.extra["queueing_mean_ms"] / 1e3


@pytest.mark.parametrize("c,rho,steps", [(1, 0.5, 1_000_000), (1, 0.8, 3_000_000), (2, 0.8, 3_000_000),
                                         (4, 0.8, 3_000_000)])
def test_md_c_through_the_core(c, rho, steps):
    w = _served_requests(c, rho, 0.01, steps, seed=10 + c)
    assert abs(w / md_c_wait(c, rho, 0.01) - 1) < 0.01


def _probed_background(c: int, rho: float, jobs: int, seed: int) -> float:
    """Mean wait of negligible Poisson probes at a node whose c servers run M/M/c background jobs."""
    mean_s = 0.01
    bg_rate = rho * c / mean_s
    sc = single_node(servers=c, rate=bg_rate / 4, gflops=1e-9, speed=1.0, utilisation=rho,
                     mean_service_ms=mean_s * 1e3)
    res = simulate(sc, Fixed(1, n_features(sc)), jobs // 4, seed=seed, trace=TRACE1)
    return res.extra["queueing_mean_ms"] / 1e3


@pytest.mark.parametrize("rho,jobs", [(0.5, 2_000_000), (0.8, 12_000_000),
                                      pytest.param(0.9, 48_000_000, marks=pytest.mark.slow)])
def test_mm1_through_the_core(rho, jobs):
    mu = 100.0
    w = _probed_background(1, rho, jobs, seed=20)
    assert abs(w / (rho / (mu - rho * mu)) - 1) < 0.01


def test_mmc_erlang_c_through_the_core():
    c, mu, rho = 4, 100.0, 0.8
    w = _probed_background(c, rho, 8_000_000, seed=21)
    assert abs(w / erlang_c_wait(c, rho * c * mu, mu) - 1) < 0.01


@pytest.mark.parametrize("service", ["exponential", "deterministic"])
def test_background_queue_end_to_end(service):
    """One node, Poisson background jobs + Poisson requests of deterministic service: the mean
    queueing delay of requests is the M/G/1 (Pollaczek-Khinchine) wait of the mixed job stream."""
    lam_r, s_r = 10.0, 0.01  # requests: 10/s, 10 ms each (gflops / speed)
    rho_b, m_b = 0.5, 0.02  # background: 50 % utilisation, 20 ms mean
    sc = single_node(rate=lam_r, gflops=s_r, speed=1.0, utilisation=rho_b, mean_service_ms=m_b * 1e3,
                     service=service)
    res = simulate(sc, Fixed(1, n_features(sc)), 1_000_000, seed=5, trace=TRACE1)
    lam_b = rho_b / m_b
    es2_b = 2 * m_b**2 if service == "exponential" else m_b**2
    rho = rho_b + lam_r * s_r
    expected = (lam_b * es2_b + lam_r * s_r**2) / (2 * (1 - rho))
    assert abs(res.extra["queueing_mean_ms"] / 1e3 / expected - 1) < 0.01
    assert res.extra["compute_mean_ms"] == pytest.approx(s_r * 1e3)


def star(delays_ms, *, rho=0.8, svc_ms=10.0, bandwidth_mbps=1e7, input_bytes=1, servers=1, faults=(), timeout_ms=1e9,
         cancel=False, process="poisson", replay_file=None, rate=None) -> Scenario:
    """Devices (no model) at the given one-way delays from one shared server of ``svc_ms`` per request;
    Poisson arrivals, rate per device so that the server's load is ``rho`` (or ``rate`` per device)."""
    devs = tuple(Node(f"d{i}", "device", 1.0, parent="srv", uplink=Link(d, bandwidth_mbps))
                 for i, d in enumerate(delays_ms))
    srv = Node("srv", "edge", 100.0, servers=servers, models=("m",))
    models = (ModelSpec("m", "small", svc_ms / 1e3 * 100.0, 10, input_bytes=input_bytes, output_bytes=1),)
    if rate is None:
        rate = rho * servers / (svc_ms / 1e3) / len(delays_ms)
    return Scenario(name="star", nodes=(*devs, srv), models=models,
                    workload=Workload(origins=tuple(d.name for d in devs), rate_per_s=rate, timeout_ms=timeout_ms,
                                      cancel_on_timeout=cancel, process=process, replay_file=replay_file),
                    trace=_TRACE_SPEC, context=ContextSpec(load=True), faults=tuple(faults), seed=0)


@pytest.mark.parametrize("delays", [(0.1, 50.0), (0.1, 5.0)])
def test_two_devices_at_different_distances_share_fifo_in_arrival_order(delays):
    """The issue's case: two devices 0.1 ms and 50 ms (or 5 ms) from one 10 ms server at rho = 0.8.
    Their superposed arrivals at the server are Poisson, so the mean wait is M/D/1's 20 ms (the old
    decision-order queue gave 40.3 ms at 50 ms apart)."""
    sc = star(delays)
    res = simulate(sc, Fixed(1, n_features(sc)), 3_000_000, seed=3, trace=make_trace())
    assert abs(res.extra["queueing_mean_ms"] / 20.0 - 1) < 0.01


def test_multi_origin_equal_delays_is_md1():
    """Four origins with equal delays and bandwidth-free links: Poisson superposition, M/D/1 at the server."""
    sc = star((3.0, 3.0, 3.0, 3.0), rho=0.7)
    res = simulate(sc, Fixed(1, n_features(sc)), 2_000_000, seed=4, trace=make_trace())
    assert abs(res.extra["queueing_mean_ms"] / 1e3 / md_c_wait(1, 0.7, 0.01) - 1) < 0.01


def test_link_queue_is_md1():
    """One device on a link whose transfer takes 10 ms at rho = 0.8: the wait for the transmitter is
    M/D/1's; it counts as network time."""
    sc = star((2.0,), rate=80.0, svc_ms=1e-6, bandwidth_mbps=8 * 12_500 / 0.01 / 1e6, input_bytes=12_500)
    res = simulate(sc, Fixed(1, n_features(sc)), 3_000_000, seed=6, trace=make_trace())
    tx_up, tx_down = 0.01, 8 / (8 * 12_500 / 0.01)
    nominal = (2 * 0.002 + tx_up + tx_down) * 1e3
    wait = res.extra["network_mean_ms"] - nominal
    assert abs(wait / 1e3 / md_c_wait(1, 0.8, 0.01) - 1) < 0.01


def test_link_transfer_exact():
    """device -> cloud, no other traffic: latency = 2 propagation + up and down transfer + compute."""
    nodes = (Node("dev", "device", 10.0, models=("a",), parent="cloud", uplink=Link(7.0, 8.0)),
             Node("cloud", "cloud", 100.0, models=("b",)))
    models = (ModelSpec("a", "small", 0.05, 10, input_bytes=10_000, output_bytes=500),
              ModelSpec("b", "big", 2.0, 10, input_bytes=10_000, output_bytes=500))
    sc = Scenario("link", nodes, models, Workload(("dev",), rate_per_s=0.001), _TRACE_SPEC)
    eng = Engine(sc, seed=0, trace=make_trace())
    eng.next_request()
    out = eng.peek(1)
    up = 8 * 10_000 / 8e6
    down = 8 * 500 / 8e6
    assert out.network_ms == pytest.approx((2 * 0.007 + up + down) * 1e3, rel=1e-9)
    assert out.compute_ms == pytest.approx(2.0 / 100.0 * 1e3, rel=1e-9)
    assert out.queueing_ms == 0.0
    assert out.latency_ms == pytest.approx(out.network_ms + out.compute_ms, rel=1e-9)
    g = eng.apply(1)
    eng.drain()
    (done,) = eng.completed()
    assert done.request == g
    assert done.outcome == out  # alone in the network, the realised outcome is the estimate


def test_link_transmitter_fifo():
    """Two requests sent back to back on a slow link queue at its transmitter."""
    nodes = (Node("dev", "device", 10.0, models=("a",), parent="cloud", uplink=Link(0.0, 1.0)),
             Node("cloud", "cloud", 1e6, servers=8, models=("b",)))
    models = (ModelSpec("a", "small", 0.05, 10, input_bytes=125_000, output_bytes=1),
              ModelSpec("b", "big", 1e-6, 10, input_bytes=125_000, output_bytes=1))
    sc = Scenario("fifo-link", nodes, models, Workload(("dev",), rate_per_s=1000.0), _TRACE_SPEC)
    eng = Engine(sc, seed=0, trace=make_trace())
    eng.next_request()
    t1 = eng.time_s
    eng.apply(1)
    eng.next_request()
    t2 = eng.time_s
    second_estimate = eng.peek(1)
    eng.apply(1)
    eng.drain()
    first, second = eng.completed()
    # 1 s of upload each: the second waits for the first to finish if it arrived within 1 s
    expected_up = max(t1 + 1.0, t2) + 1.0 - t2
    assert first.outcome.network_ms == pytest.approx(1e3 * (1.0 + 8 / 1e6), rel=1e-9)
    assert second.outcome.network_ms == pytest.approx(1e3 * (expected_up + 8 / 1e6), rel=1e-9)
    assert second_estimate == second.outcome


def test_no_transmission_inside_an_outage():
    """The issue's case: a congested uplink and an outage over [2 s, 3 s). No request transmits inside
    the outage (the old simulator checked the outage when a request *reached* the link: 36 of 36
    queued requests went through, 15 starting to upload inside it); the transmissions it
    interrupts are sent again after it; the ones it postpones wait."""
    tx = 0.05  # 50 ms per upload at rho 0.9: a queue builds up
    bw = 8 * 1000 / tx / 1e6
    sc = star((1.0,), rate=0.9 / tx, svc_ms=0.01, bandwidth_mbps=bw, input_bytes=1000,
              faults=(Fault("link_outage", "d0", 2.0, 3.0),))
    res = simulate(sc, Fixed(1, n_features(sc)), 400, seed=1, trace=make_trace(), record_requests=True)
    rq = res.requests
    # the upload of each request ends at node arrival - propagation and took tx (bandwidth constant)
    end = rq["t_node_arrival"] - 0.001
    start = end - tx
    assert np.all((end <= 2.0) | (start >= 3.0))
    held = (rq["t_decision"] < 3.0) & (end > 2.0)  # in flight at 2 s, or arrived during the outage
    assert held.sum() >= 10
    assert np.all(start[held] >= 3.0)
    assert np.any((rq["t_decision"] < 2.0) & (end > 2.0))  # at least one upload was cut or postponed
    # FIFO order at the transmitter is kept across the outage
    assert np.all(np.diff(end[np.argsort(rq["t_decision"])]) > 0)


def test_outage_interrupts_and_restarts_with_cancel(tmp_path):
    """Uploads of 0.4 s, an outage over [2 s, 3 s), timeout 1 s; requests at 1.5, 1.7 and 2.5 s.
    r0 uploads 1.5-1.9. r1 waits for it, starts at 1.9 and is cut at 2.0; its restart at 3.0 is after
    its deadline 2.7: without cancellation it restarts (3.0-3.4) and times out, and r2 (arrived during
    the outage) uploads after it (3.4-3.8) and times out too, so r3 (at 3.5) uploads 3.8-4.2; with
    cancellation r1 is dropped at the outage's end, r2 uploads 3.0-3.4 and answers before 3.5, and r3
    uploads at once (3.5-3.9)."""
    tx = 0.4
    replay = tmp_path / "t.txt"
    replay.write_text("1.5\n1.7\n2.5\n3.5\n")
    runs = {}
    for cancel in (False, True):
        sc = star((1.0,), rate=1.0, svc_ms=0.01, bandwidth_mbps=8 * 1000 / tx / 1e6, input_bytes=1000,
                  faults=(Fault("link_outage", "d0", 2.0, 3.0),), timeout_ms=1000.0, cancel=cancel,
                  process="replay", replay_file=str(replay))
        runs[cancel] = simulate(sc, Fixed(1, n_features(sc)), 4, trace=make_trace(), record_requests=True).requests
    keep, drop = runs[False], runs[True]
    # stages reached after the client gave up are not part of its record (NaN)
    np.testing.assert_allclose(keep["t_node_arrival"], [1.901, np.nan, np.nan, 4.201], atol=1e-9)
    np.testing.assert_array_equal(keep["timeout"], [0, 1, 1, 0])
    np.testing.assert_allclose(drop["t_node_arrival"], [1.901, np.nan, 3.401, 3.901], atol=1e-9)
    np.testing.assert_array_equal(drop["timeout"], [0, 1, 0, 0])
    np.testing.assert_allclose(drop["t_complete"][1], 2.7)  # the client gives up at its deadline


def test_cancel_on_timeout_frees_the_server(tmp_path):
    """10 ms server, 15 ms timeout, requests at 0, 1, 2 and 21 ms (links instantaneous). r0 is served
    0-10 ms; r1 starts at 10 ms (before its 16 ms deadline), finishes late and times out either way.
    r2 would start at 20 ms, after its deadline (17 ms): without cancellation it is served anyway
    (20-30 ms) and r3 waits for it (30-40 ms, timeout); with cancellation it is skipped and r3 is
    served at once (21-31 ms) and answers in time."""
    replay = tmp_path / "t.txt"
    replay.write_text("0.0\n0.001\n0.002\n0.021\n")
    runs = {}
    for cancel in (False, True):
        sc = star((0.0,), rate=1.0, svc_ms=10.0, bandwidth_mbps=1e9, timeout_ms=15.0, cancel=cancel,
                  process="replay", replay_file=str(replay))
        runs[cancel] = simulate(sc, Fixed(1, n_features(sc)), 4, trace=make_trace(), record_requests=True).requests
    keep, drop = runs[False], runs[True]
    # a request that reached its node before giving up keeps its node times (even if they lie after)
    np.testing.assert_allclose(keep["t_service_start"], [0.0, 0.010, 0.020, 0.030], atol=1e-6)
    np.testing.assert_array_equal(keep["timeout"], [0, 1, 1, 1])
    np.testing.assert_allclose(drop["t_service_start"], [0.0, 0.010, np.nan, 0.021], atol=1e-6)
    np.testing.assert_array_equal(drop["timeout"], [0, 1, 1, 0])
    # overload (rho 1.5): without cancellation the backlog grows and nearly everything times out
    kw = dict(rho=1.5, timeout_ms=100.0)
    over_keep = simulate(star((1.0,), **kw), Fixed(1, 5), 20_000, seed=3, trace=make_trace())
    over_drop = simulate(star((1.0,), cancel=True, **kw), Fixed(1, 5), 20_000, seed=3, trace=make_trace())
    assert over_keep.timeout_rate > 0.95
    assert over_drop.timeout_rate < over_keep.timeout_rate - 0.1
    assert over_drop.latency_p50_ms < over_keep.latency_p50_ms + 1e-9


def test_memory_and_time_do_not_grow_with_the_timeout():
    """The issue's case: memory and time grew with timeout_ms x background rate. The state holds
    what is in flight only."""
    def run(timeout_ms):
        sc = single_node(rate=5.0, gflops=0.01, speed=1.0, utilisation=0.5, mean_service_ms=20.0)
        sc = Scenario(sc.name, sc.nodes, sc.models, Workload(("solo",), rate_per_s=5.0,
                                                             background=(Background("solo", 0.5, 20.0),),
                                                             timeout_ms=timeout_ms), sc.trace,
                      context=sc.context)
        from idnbandit.sim.loop import Driver, drive_python

        res = simulate(sc, Fixed(1, 5), 50_000, seed=1, trace=TRACE1)
        from idnbandit.sim.compiled import compile_scenario

        drv = Driver(compile_scenario(sc, TRACE1), sc, 1, 50_000, n_actions=1, n_features=5)
        drive_python(drv, [Fixed(1, 5)], False, None, 50_000)
        return res, drv.rs.SF.size + drv.rs.SI.size

    short, size_short = run(60e3)
    long, size_long = run(1e12)
    assert short.same_trajectory(long)
    assert size_long == size_short
    assert size_long < 300_000  # one block of 65,536 requests, one of 4,096 background jobs, small rings
