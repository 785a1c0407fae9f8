"""Aggregators of idnbandit.ensembles against hand-computed examples; ties, immutability, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idnbandit.ensembles import (
    aggregator_names,
    confidence_vote,
    majority_vote,
    make_aggregator,
    pick_class,
)
from idnbandit.errors import ConfigError, UnknownNameError

P3 = np.array([[0.6, 0.4, 0.0], [0.1, 0.8, 0.1], [0.3, 0.7, 0.0]])


def test_names():
    assert aggregator_names() == ["bagging", "boosting", "hedge", "log-linear", "majority", "stacking", "sum-prob"]


def test_majority_hand_example():
    v = make_aggregator("majority", 3, 3).combine([0, 1, 2], P3)
    assert v.answer == 1 and v.support == pytest.approx(2 / 3)
    np.testing.assert_allclose(v.scores, [1 / 3, 2 / 3, 0.0])


def test_sum_prob_hand_example():
    v = make_aggregator("sum-prob", 3, 3).combine([0, 1, 2], P3)
    assert v.answer == 1 and v.support == pytest.approx(1.9 / 3)
    np.testing.assert_allclose(v.scores, [1.0 / 3, 1.9 / 3, 0.1 / 3])


def test_log_linear_hand_example():
    # products: class 0: .6*.1*.3 = .018, class 1: .4*.8*.7 = .224, class 2: ~0 (floored zeros)
    v = make_aggregator("log-linear", 3, 3).combine([0, 1, 2], P3)
    assert v.answer == 1 and v.support == pytest.approx(0.224 / 0.242)
    # the linear and log-linear pools disagree when one member vetoes a class
    p = np.array([[0.9, 0.1], [0.8, 0.2], [1e-6, 1 - 1e-6]])
    assert make_aggregator("sum-prob", 3, 2).combine([0, 1, 2], p).answer == 0  # 1.7 vs 1.3
    assert make_aggregator("log-linear", 3, 2).combine([0, 1, 2], p).answer == 1  # .72e-6 vs .02


def test_ties_are_deterministic_and_follow_query_order():
    p = np.array([[0.3, 0.7], [0.7, 0.3]])  # equal scores and mass: the class predicted first wins
    agg = make_aggregator("sum-prob", 2, 2)
    assert agg.combine([0, 1], p).answer == 1
    assert agg.combine([1, 0], p[::-1]).answer == 0
    flat = np.array([[0.5, 0.5], [0.5, 0.5]])  # everything equal: argmax and the first prediction are class 0
    assert agg.combine([0, 1], flat).answer == 0
    assert make_aggregator("majority", 2, 2).combine([0, 1], p).answer == 1
    assert pick_class(np.array([2.0, 2.0, 1.0]), np.array([0.5, 0.9, 0.0]), np.array([0, 1])) == 1  # mass first
    assert pick_class(np.array([1.0, 1.0]), np.array([0.5, 0.5]), np.array([], np.int64)) == 0  # then index


def test_vote_functions_on_predictions():
    preds, confs = np.array([3, 5, 5, 3]), np.array([0.9, 0.2, 0.3, 0.95])
    assert majority_vote(preds, confs) == (3, 0.5)  # 2-2 tie, larger summed confidence wins
    assert majority_vote(preds[:3], confs[:3])[0] == 5
    ans, share = confidence_vote(preds[:3], confs[:3])
    assert ans == 3 and share == pytest.approx(0.9 / 1.4)
    assert majority_vote(np.array([-1]), np.array([0.0])) == (-1, 0.0)
    assert majority_vote(np.array([2, -1, 4]), np.array([0.4, 0.9, 0.4])) == (2, 0.5)  # equal: voted first


def test_hedge_hand_example():
    agg = make_aggregator("hedge", 2, 2)
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert agg.combine([0, 1], p).support == pytest.approx(0.5)  # equal weights before any label
    agg.update([0, 1], p, 1)  # member 0 wrong, member 1 right
    eta = math.sqrt(8 * math.log(2) / 1)
    w0 = 1 / (1 + math.exp(eta))
    np.testing.assert_allclose(agg.weights, [w0, 1 - w0])
    v = agg.combine([0, 1], p)
    assert v.answer == 1 and v.support == pytest.approx(1 - w0)


def test_hedge_asleep_member_is_charged_the_ensemble_loss():
    agg = make_aggregator("hedge", 2, 2)
    agg.update([0], np.array([[0.9, 0.1]]), 1)  # only member 0 asked; it (and so the ensemble) is wrong
    np.testing.assert_allclose(agg.weights, [0.5, 0.5])


def test_boosting_hand_example():
    agg = make_aggregator("boosting", 2, 2)
    right0 = np.array([[0.9, 0.1], [0.2, 0.8]])  # member 0 says 0, member 1 says 1
    agg.update([0, 1], right0, 0)
    # lam = 1: member 0 right -> sc0 = 1, lam = 1/2; member 1 wrong -> sw1 = 1/2
    np.testing.assert_allclose(agg.weights, [math.log(0.999 / 0.001), 0.0])
    agg.update([0, 1], right0, 1)
    # lam = 1: member 0 wrong -> sw0 = 1 (eps0 = 1/2, weight 0), lam = 1; member 1 right -> sc1 = 1, eps1 = 1/3
    np.testing.assert_allclose(agg.weights, [0.0, math.log(2.0)])
    assert agg.combine([0, 1], right0).answer == 1


def test_bagging_learns_the_reliable_member_and_is_seeded():
    p = np.array([[0.9, 0.1], [0.3, 0.7]])
    a, b = make_aggregator("bagging", 2, 2, seed=3), make_aggregator("bagging", 2, 2, seed=3)
    assert a.combine([0, 1], p).support == pytest.approx(0.5)  # no weights yet: plain vote, tie
    for agg in (a, b):
        for _ in range(30):
            agg.update([0, 1], p, 1)  # member 1 always right, member 0 always wrong
    va, vb = a.combine([0, 1], p), b.combine([0, 1], p)
    assert va.answer == 1 and va.support > 0.99
    np.testing.assert_array_equal(va.scores, vb.scores)
    c = make_aggregator("bagging", 2, 2, seed=4)
    c.update([0, 1], p, 1)
    assert not np.array_equal(c._seen, a._seen)


def test_stacking_follows_sum_prob_until_warm_then_learns():
    rng = np.random.default_rng(0)
    stack = make_aggregator("stacking", 2, 3, warmup=20)
    ref = make_aggregator("sum-prob", 2, 3)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    np.testing.assert_array_equal(stack.combine([0, 1], p).scores, ref.combine([0, 1], p).scores)
    for _ in range(300):  # member 1 is always right, member 0 answers at random
        y = int(rng.integers(3))
        p0 = np.full(3, 0.1)
        p0[int(rng.integers(3))] = 0.8
        p1 = np.full(3, 0.15)
        p1[y] = 0.7
        stack.update([0, 1], np.stack([p0, p1]), y)
    assert stack.combine([0, 1], p).answer == 2  # member 1's class, although member 0 is as confident


@pytest.mark.parametrize("name", ["majority", "sum-prob", "log-linear", "hedge", "stacking", "bagging", "boosting"])
def test_inputs_never_mutated(name):
    agg = make_aggregator(name, 3, 3, seed=0)
    members, probs = [2, 0, 1], P3.copy()
    m0, p0 = list(members), probs.copy()
    for label in (0, 1, 2, 1):
        agg.combine(members, probs)
        agg.update(members, probs, label)
    assert members == m0
    np.testing.assert_array_equal(probs, p0)
    v = agg.combine(members, probs)
    assert v.scores.sum() == pytest.approx(1.0) and 0 <= v.support <= 1 and v.answer in (0, 1, 2)
    assert make_aggregator(name, 3, 3).combine([], np.zeros((0, 3))).answer == -1


def test_errors_name_the_parameter():
    with pytest.raises(UnknownNameError, match="did you mean 'hedge'"):
        make_aggregator("hedg", 2, 2)
    agg = make_aggregator("sum-prob", 3, 3)
    with pytest.raises(ConfigError, match="members"):
        agg.combine([0, 0], P3[:2])
    with pytest.raises(ConfigError, match="members"):
        agg.combine([3], P3[:1])
    with pytest.raises(ConfigError, match="probs"):
        agg.combine([0, 1], np.ones((2, 4)) / 4)
    with pytest.raises(ConfigError, match="label"):
        agg.update([0], P3[:1], 3)
    with pytest.raises(ConfigError, match="eta"):
        make_aggregator("hedge", 2, 2, eta=-1.0)
    with pytest.raises(ConfigError, match="n_replicas"):
        make_aggregator("bagging", 2, 2, n_replicas=0)
    with pytest.raises(ConfigError, match="n_classes"):
        make_aggregator("majority", 2, 1)
