"""The built-in ``deadline-edge`` scenario: its reward is a cliff in the edge backlog, not linear in the context."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.scenario import load_scenario
from idnbandit.sim.engine import Engine


@pytest.fixture(scope="module")
def logged():
    """3000 requests under random offloading: scaled contexts and counterfactual rewards."""
    eng = Engine("deadline-edge", seed=0)
    rng = np.random.default_rng(0)
    xs, rs = np.zeros((3000, eng.n_features)), np.zeros((3000, eng.n_options))
    for t in range(3000):
        xs[t] = eng.next_request()
        rs[t] = eng.counterfactual_rewards()
        eng.apply(int(rng.random() < 0.3))
    return eng, xs, rs


def test_layout():
    s = load_scenario("deadline-edge")
    assert s.options("camera") == (("camera", "small"), ("edge", "large"))
    assert s.reward.deadline_ms == 100.0 and s.reward.w_cost == 0.1
    assert s.context.confidence and s.context.load


def test_edge_reward_is_a_cliff_in_the_backlog(logged):
    eng, xs, rs = logged
    assert eng.context_names == ["maxprob", "margin", "entropy", "backlog_s[0]", "backlog_s[1]", "bias"]
    b, edge = xs[:, 4], rs[:, 1]
    short, long_ = b < 0.03, b > 0.09
    assert short.mean() > 0.25 and long_.mean() > 0.25  # the queue is often short and often too long
    assert edge[short].mean() > 0.75  # on time: the accurate edge model minus the 0.1 price
    assert np.allclose(edge[long_], -0.1)  # late: worth nothing, the price is still paid
    assert np.all(rs[:, 0] == rs[:, 0].astype(int))  # local answers: 0 or 1, never late


def test_best_linear_fit_misses_the_cliff(logged):
    eng, xs, rs = logged
    w = np.linalg.lstsq(xs, rs[:, 1], rcond=None)[0]
    pred = xs @ w
    b = xs[:, 4]
    over = (b > 0.08) & (b < 0.12)  # just past the cliff: the linear fit still promises a good reward
    under = b == 0  # idle edge: the linear fit undervalues it
    assert pred[over].mean() - rs[over, 1].mean() > 0.3
    assert rs[under, 1].mean() - pred[under].mean() > 0.05
