"""Query-selection strategies without the simulator: stopping rules, CUCB's oracle, learning, registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from idnbandit.agents.registry import make_agent
from idnbandit.bench.specs import agents_from_cli
from idnbandit.ensembles import (
    CUCB,
    LearnedStopping,
    Sequential,
    SingleModel,
    make_strategy,
    strategy_names,
    vote_accuracy,
)
from idnbandit.ensembles.cucb import subset_accuracies
from idnbandit.errors import ConfigError, UnknownNameError


def _onehot(c, n=3, conf=0.9):
    p = np.full(n, (1 - conf) / (n - 1))
    p[c] = conf
    return p


def test_single_model_and_names():
    s = SingleModel(4, option=-1).bind(3, [0.0, 0.1, 0.1, 0.2])
    req, batch = s.begin([1.0])
    assert batch == [3]
    s.observe(req, 3, _onehot(2), 0.2)
    assert s.next_batch(req) == [] and s.vote(req).answer == 2
    assert set(strategy_names()) == {"ens-single", "ens-vote-all", "ens-seq", "ens-seq-learned", "ens-cucb"}


def test_sequential_stops_when_confident_and_escalates_otherwise():
    s = Sequential(3, threshold=0.8).bind(3, [0.3, 0.0, 0.1])  # default order: by price -> [1, 2, 0]
    req, batch = s.begin([1.0])
    assert batch == [1]
    s.observe(req, 1, _onehot(0, conf=0.9), 0.0)
    assert s.next_batch(req) == []
    req, batch = s.begin([1.0])
    s.observe(req, 1, _onehot(0, conf=0.5), 0.0)
    assert s.next_batch(req) == [2]
    s.observe(req, 2, _onehot(0, conf=0.95), 0.1)  # mean probability of class 0: (0.5 + 0.95) / 2 < 0.8
    assert s.next_batch(req) == [0]
    s.observe(req, 0, _onehot(0, conf=0.99), 0.3)
    assert s.next_batch(req) == []  # every option asked
    all_at_once = Sequential(3, threshold=0.8, escalate="all", order=[0, 1, 2]).bind(3, [0.0, 0.0, 0.0])
    req, _ = all_at_once.begin([1.0])
    all_at_once.observe(req, 0, _onehot(1, conf=0.4), 0.0)
    assert all_at_once.next_batch(req) == [1, 2]


def test_requests_in_flight_are_independent():
    s = Sequential(3, threshold=0.8, order=[0, 1, 2]).bind(3, [0.0, 0.0, 0.0])
    r1, _ = s.begin([1.0])
    r2, _ = s.begin([1.0])
    s.observe(r1, 0, _onehot(0, conf=0.95), 0.0)
    s.observe(r2, 0, _onehot(1, conf=0.4), 0.0)
    assert s.next_batch(r2) == [1] and s.next_batch(r1) == []
    assert s.vote(r1).answer == 0 and s.vote(r2).answer == 1


def _play(strategy, answer_of, price, n, label_of=lambda i: 0):
    """Run ``n`` requests through a bound strategy; answer_of(option, i) -> probs; returns queries per request."""
    counts = []
    for i in range(n):
        req, batch = strategy.begin([1.0])
        while batch:
            for k in batch:
                strategy.observe(req, k, answer_of(k, i), price[k])
            batch = strategy.next_batch(req)
        counts.append(len(req.asked))
        strategy.learn(strategy.finish(req), label_of(i))
    return np.array(counts)


def test_learned_stopping_stops_when_the_first_model_is_enough():
    s = LearnedStopping(2, order=[0, 1], exploration=0.05).bind(3, [0.0, 0.2])
    q = _play(s, lambda k, i: _onehot(0, conf=0.95), [0.0, 0.2], 300)
    assert q[:5].max() == 2  # it tries continuing at first (optimism) ...
    assert (q[-100:] == 1).mean() > 0.95  # ... then learns that the second query only costs
    assert s.q_stop[0].max() == pytest.approx(1.0)


def test_learned_stopping_continues_when_it_pays():
    # model 0 (confidence 0.6 either way) is right only on even requests, model 1 (asked second, 0.9) always
    def ans(k, i):
        return _onehot(0, conf=0.9) if k == 1 else _onehot(0 if i % 2 == 0 else 1, conf=0.6)

    s = LearnedStopping(2, order=[0, 1], exploration=0.05).bind(3, [0.0, 0.1])
    q = _play(s, ans, [0.0, 0.1], 300)
    assert (q[-100:] == 2).mean() > 0.95  # 0.5 accuracy alone vs 1.0 - 0.1 after continuing


def test_vote_accuracy_hand_examples():
    assert vote_accuracy([0.9], 10) == pytest.approx(0.9)
    assert vote_accuracy([0.8, 0.8, 0.8], 2) == pytest.approx(0.8**3 + 3 * 0.8**2 * 0.2)
    # two equal members: right when both are, a 1-1 tie counts half
    assert vote_accuracy([0.7, 0.7], 2) == pytest.approx(0.49 + 0.5 * 2 * 0.21)
    # a dominant member decides alone (its log-odds weight exceeds the other two together)
    assert vote_accuracy([0.99, 0.6, 0.6], 2) == pytest.approx(0.99)
    masks = np.array(list(itertools.product([False, True], repeat=3))[1:])
    mu = np.array([0.9, 0.7, 0.65])
    np.testing.assert_allclose(subset_accuracies(mu, masks, 10), [vote_accuracy(mu[m], 10) for m in masks])


def test_cucb_oracle_matches_brute_force_and_respects_the_budget():
    s = CUCB(3).bind(10, [0.5, 0.01, 0.02])
    mu, prices = np.array([0.9, 0.6, 0.7]), np.array([0.5, 0.01, 0.02])
    best = max((tuple(c) for r in (1, 2, 3) for c in itertools.combinations(range(3), r)),
               key=lambda c: vote_accuracy(mu[list(c)], 10) - prices[list(c)].sum())
    assert tuple(s.oracle(mu, prices)) == best
    cheap = CUCB(3, budget=0.1).bind(10, prices)
    assert sum(prices[cheap.oracle(np.array([0.9, 0.6, 0.7]), prices)]) <= 0.1
    req, first = s.begin([1.0])
    assert first == [0, 1, 2]  # initialisation: every untried member


def test_cucb_converges_to_the_worthwhile_member():
    rng = np.random.default_rng(0)
    acc, price = np.array([0.5, 0.95, 0.5]), [0.05, 0.05, 0.05]
    draws = rng.random((600, 3)) < acc

    def ans(k, i):
        return _onehot(0 if draws[i, k] else 1 + (i + k) % 2, conf=0.7)

    s = CUCB(3, scale=0.5).bind(3, price)
    _play(s, ans, price, 600)
    req, batch = s.begin([1.0])
    assert batch == [1]
    assert s.pulls[1] >= 580 and s.pulls[0] < 300 and s.pulls[2] < 300


def test_registry_and_bench_resolution():
    s = make_agent("ens-seq(threshold=0.7, order=[0, 3])", 4, 8, seed=1)
    assert isinstance(s, Sequential) and s.threshold == 0.7 and s.order == (0, 3)
    assert make_strategy("ens-cucb(budget=0.5)", 4).budget == 0.5
    assert [a.label for a in agents_from_cli("ens-vote-all, ens-seq(threshold=0.8)")] == [
        "ens-vote-all", "ens-seq(threshold=0.8)"]
    assert "ens-seq" not in __import__("idnbandit.agents.registry").agents.registry.agent_names()
    with pytest.raises(UnknownNameError, match="did you mean 'ens-seq'"):
        make_strategy("ens-sq", 4)
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        make_agent("ens-seq(treshold=0.5)", 4, 8)
    clone = s.clone()
    assert clone.get_params() == s.get_params() and clone is not s


@pytest.mark.parametrize(("spec", "field"), [
    ("ens-seq(threshold=1.5)", "threshold"),
    ("ens-seq(order=[0, 0])", "order"),
    ("ens-seq(order=[4])", "order"),
    ("ens-seq(escalate='some')", "escalate"),
    ("ens-seq-learned(bins=0)", "bins"),
    ("ens-cucb(budget=-1)", "budget"),
    ("ens-single(option=7)", "option"),
    ("ens-vote-all(aggregator='mean')", "aggregator"),
])
def test_bad_parameters_name_the_field(spec, field):
    with pytest.raises((ConfigError, UnknownNameError), match=field):
        make_strategy(spec, 4)


def test_use_before_bind_is_an_error():
    with pytest.raises(ConfigError, match="bind"):
        Sequential(2).begin([1.0])
    with pytest.raises(ConfigError, match="prices"):
        Sequential(2).bind(3, [0.1])


def test_reset_forgets_what_was_learned():
    s = CUCB(2).bind(2, [0.0, 0.1])
    _play(s, lambda k, i: _onehot(0, n=2), [0.0, 0.3], 5)  # option 1 observed dearer than nominal
    assert s.pulls.sum() > 0 and s.prices[1] != 0.1
    s.reset()
    assert s.pulls.sum() == 0 and s.prices.tolist() == [0.0, 0.1]
