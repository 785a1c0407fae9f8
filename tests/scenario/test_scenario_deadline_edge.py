"""The built-in ``deadline-edge`` scenario: its reward is a cliff in the edge backlog, not linear in the context."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.scenario import load_scenario
from idnbandit.sim.engine import Engine


@pytest.fixture(scope="module")
def logged():
    """6000 requests, half of them sent to the edge at random: contexts, decision-time estimates, and
    the realised reward of the edge for the requests that went there (NaN for the others)."""
    eng = Engine("deadline-edge", seed=0)
    rng = np.random.default_rng(0)
    n = 6000
    xs, rs, edge = np.zeros((n, eng.n_features)), np.zeros((n, eng.n_options)), np.full(n, np.nan)
    done = []
    for t in range(n):
        xs[t] = eng.next_request()
        rs[t] = eng.counterfactual_rewards()
        eng.apply(int(rng.random() < 0.5))
        done += eng.completed()
    eng.drain()
    for c in done + eng.completed():
        if c.option == 1:
            edge[c.request] = c.outcome.reward
    return eng, xs, rs, edge


def test_layout():
    s = load_scenario("deadline-edge")
    assert s.options("camera") == (("camera", "small"), ("edge", "large"))
    assert s.reward.deadline_ms == 100.0 and s.reward.w_cost == 0.1
    assert s.context.confidence and s.context.load


def test_edge_reward_is_a_cliff_in_the_backlog(logged):
    eng, xs, rs, edge = logged
    assert eng.context_names == ["maxprob", "margin", "entropy", "backlog_s[0]", "backlog_s[1]", "bias"]
    sent = ~np.isnan(edge)
    b, edge = xs[sent, 4], edge[sent]
    short, long_ = b < 0.03, b > 0.09
    assert short.mean() > 0.25 and long_.mean() > 0.25  # the queue is often short and often too long
    assert edge[short].mean() > 0.75  # on time: the accurate edge model minus the 0.1 price
    assert np.allclose(edge[long_], -0.1)  # late: worth nothing, the price is still paid
    assert np.all(rs[:, 0] == rs[:, 0].astype(int))  # local answers: 0 or 1, never late


def test_best_linear_fit_misses_the_cliff(logged):
    """Fitted on realised edge rewards (measured 2026-12-05: the fit promises 0.49 too much just past
    the cliff and 0.12 too little at an idle edge)."""
    eng, xs, rs, edge = logged
    sent = ~np.isnan(edge)
    x, y = xs[sent], edge[sent]
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    pred = x @ w
    b = x[:, 4]
    over = (b > 0.08) & (b < 0.12)  # just past the cliff: the linear fit still promises a good reward
    under = b == 0  # idle edge: the linear fit undervalues it
    assert pred[over].mean() - y[over].mean() > 0.3
    assert y[under].mean() - pred[under].mean() > 0.05
