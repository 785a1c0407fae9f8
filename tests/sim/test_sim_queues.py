"""Queue fidelity against closed forms (M/M/1, M/M/c Erlang C, M/D/1) and link transfer times.

Sample sizes: the standard error of a mean waiting time grows like 1/(1 - rho)^2 (waits are
strongly autocorrelated near saturation). For M/M/1 the asymptotic variance of the time-average
number in system is 2 rho (1 + rho) / (mu (1 - rho)^4); at rho = 0.9 and 10^7 jobs this gives a
relative standard error of about 0.65 %, so the 2 % tolerance is three standard errors. At rho = 0.5,
2 * 10^6 jobs give about 0.35 %. The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import make_trace, single_node

from idnbandit.agents import Fixed
from idnbandit.scenario import Link, ModelSpec, Node, Scenario, Workload
from idnbandit.sim import Engine, n_features, simulate
from idnbandit.sim.kernels import fifo_waits


def mean_wait(lam, service, n, servers=1, seed=0, chunk=1_000_000):
    """Mean FIFO wait of n Poisson(lam) arrivals; ``service(rng, m)`` draws m service times."""
    rng = np.random.default_rng(seed)
    free = np.zeros(servers)
    t0, total, done = 0.0, 0.0, 0
    while done < n:
        m = min(chunk, n - done)
        arr = t0 + np.cumsum(rng.exponential(1 / lam, m))
        t0 = arr[-1]
        total += fifo_waits(arr, service(rng, m), free).sum()
        done += m
    return total / n


def erlang_c_wait(c, lam, mu):
    a = lam / mu
    rho = a / c
    s = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (s + top) / (c * mu - lam)


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


def test_mm1_rho_05():
    lam, mu = 0.5, 1.0
    w = mean_wait(lam, lambda g, m: g.exponential(1 / mu, m), 2_000_000)
    assert abs(w / (lam / mu / (mu - lam)) - 1) < 0.02


@pytest.mark.slow
def test_mm1_rho_09():
    lam, mu = 0.9, 1.0
    w = mean_wait(lam, lambda g, m: g.exponential(1 / mu, m), 10_000_000, seed=2)
    assert abs(w / (lam / mu / (mu - lam)) - 1) < 0.02


def test_mmc_erlang_c():
    c, mu = 4, 1.0
    lam = 0.8 * c * mu
    w = mean_wait(lam, lambda g, m: g.exponential(1 / mu, m), 3_000_000, servers=c, seed=3)
    assert abs(w / erlang_c_wait(c, lam, mu) - 1) < 0.02


def test_md1_pollaczek_khinchine():
    lam, s = 0.7, 1.0
    w = mean_wait(lam, lambda g, m: np.full(m, s), 2_000_000, seed=4)
    rho = lam * s
    expected = lam * s**2 / (2 * (1 - rho))  # half of M/M/1's rho / (mu - lambda)
    assert abs(w / expected - 1) < 0.02


@pytest.mark.parametrize("service", ["exponential", "deterministic"])
def test_background_queue_end_to_end(service):
    """One node, Poisson background jobs + Poisson requests of deterministic service: the mean
    queueing delay of requests is the M/G/1 (Pollaczek-Khinchine) wait of the mixed job stream."""
    lam_r, s_r = 1.0, 0.01  # requests: 1/s, 10 ms each (gflops / speed)
    rho_b, m_b = 0.6, 0.1  # background: 60 % utilisation, 100 ms mean
    sc = single_node(rate=lam_r, gflops=s_r, speed=1.0, utilisation=rho_b, mean_service_ms=m_b * 1e3,
                     service=service)
    res = simulate(sc, Fixed(1, n_features(sc)), 200_000, seed=5, trace=make_trace(columns=("small",), accs=(0.7,)))
    lam_b = rho_b / m_b
    es2_b = 2 * m_b**2 if service == "exponential" else m_b**2
    rho = rho_b + lam_r * s_r
    expected = (lam_b * es2_b + lam_r * s_r**2) / (2 * (1 - rho))
    assert abs(res.extra["queueing_mean_ms"] / 1e3 / expected - 1) < 0.03
    assert res.extra["compute_mean_ms"] == pytest.approx(s_r * 1e3)


def test_link_transfer_exact():
    """device -> cloud, no other traffic: latency = 2 propagation + up and down transfer + compute."""
    nodes = (Node("dev", "device", 10.0, models=("a",), parent="cloud", uplink=Link(7.0, 8.0)),
             Node("cloud", "cloud", 100.0, models=("b",)))
    models = (ModelSpec("a", "small", 0.05, 10, input_bytes=10_000, output_bytes=500),
              ModelSpec("b", "big", 2.0, 10, input_bytes=10_000, output_bytes=500))
    from sim_helpers import _TRACE_SPEC

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
    applied, _, _ = eng.apply(1)
    assert applied == out  # the committed outcome is the counterfactual computed at decision time


def test_link_transmitter_fifo():
    """Two requests sent back to back on a slow link queue at its transmitter."""
    nodes = (Node("dev", "device", 10.0, models=("a",), parent="cloud", uplink=Link(0.0, 1.0)),
             Node("cloud", "cloud", 1e6, servers=8, models=("b",)))
    models = (ModelSpec("a", "small", 0.05, 10, input_bytes=125_000, output_bytes=1),
              ModelSpec("b", "big", 1e-6, 10, input_bytes=125_000, output_bytes=1))
    from sim_helpers import _TRACE_SPEC

    sc = Scenario("fifo-link", nodes, models, Workload(("dev",), rate_per_s=1000.0), _TRACE_SPEC)
    eng = Engine(sc, seed=0, trace=make_trace())
    eng.next_request()
    t1 = eng.time_s
    first, _, _ = eng.apply(1)
    eng.next_request()
    t2 = eng.time_s
    second = eng.peek(1)
    # 1 s of upload each: the second waits for the first to finish if it arrived within 1 s
    expected_up = max(t1 + 1.0, t2) + 1.0 - t2
    assert first.network_ms == pytest.approx(1e3 * (1.0 + 8 / 1e6), rel=1e-9)
    assert second.network_ms == pytest.approx(1e3 * (expected_up + 8 / 1e6), rel=1e-9)
