"""The synthetic generator: target accuracies, correlated errors, confidence coupling, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from idnbandit.errors import ConfigError
from idnbandit.scenario.model import SyntheticTraceSpec
from idnbandit.traces import confidence_features, ece, synthetic_trace, synthetic_trace_from_spec

NAMES = ("device", "edge", "regional", "cloud")
TARGETS = (0.677, 0.809, 0.881, 0.96)


@pytest.fixture(scope="module")
def big():
    return synthetic_trace(NAMES, TARGETS, n_samples=50_000, n_classes=10, seed=11)


def test_hits_target_accuracies_within_one_point(big):
    np.testing.assert_allclose(big.accuracies(), TARGETS, atol=0.01)
    assert big.probs.shape == (4, 50_000, 10) and big.probs.dtype == np.float32
    assert big.metadata["target_accuracies"] == list(TARGETS)


@pytest.mark.parametrize("n_classes, weight, targets", [(2, 0.0, (0.55, 0.93)), (7, 2.5, (0.3, 0.99))])
def test_hits_targets_for_other_settings(n_classes, weight, targets):
    t = synthetic_trace(["a", "b"], targets, n_samples=50_000, n_classes=n_classes, seed=4,
                        difficulty_weight=weight)
    np.testing.assert_allclose(t.accuracies(), targets, atol=0.01)


def test_errors_are_positively_correlated(big):
    err = (~big.correct()).astype(float)
    corr = np.corrcoef(err)
    for i, j in itertools.combinations(range(4), 2):
        assert corr[i, j] > 0.05, (i, j, corr[i, j])
    # a sample the small model gets wrong is more likely wrong for the big model too
    assert err[3][err[0] == 1].mean() > 1.5 * err[3][err[0] == 0].mean()


def test_difficulty_weight_controls_correlation():
    def mean_corr(w):
        t = synthetic_trace(["a", "b"], [0.7, 0.85], n_samples=30_000, seed=2, difficulty_weight=w)
        return np.corrcoef((~t.correct()).astype(float))[0, 1]

    c0, c1, c3 = mean_corr(0.0), mean_corr(1.0), mean_corr(3.0)
    assert abs(c0) < 0.03 < c1 < c3


def test_confidence_is_coupled_to_correctness_and_calibrated(big):
    f = confidence_features(big.probs)
    ok = big.correct()
    for m in range(4):
        assert f.max_prob[m][ok[m]].mean() > f.max_prob[m][~ok[m]].mean() + 0.1
        # the predicted class is the strict argmax
        assert (f.margin[m] > 0).all()
    assert (ece(big.probs, big.labels) < 0.015).all()


def test_calibration_knob_makes_models_overconfident():
    t = synthetic_trace(["a", "b"], [0.75, 0.75], n_samples=20_000, seed=3, calibration=[1.0, 0.5])
    f = confidence_features(t.probs)
    e = ece(t.probs, t.labels)
    assert e[1] > 0.08 > 0.015 > e[0]
    assert f.max_prob[1].mean() > t.accuracies()[1] + 0.05  # over-confident
    calibrated = synthetic_trace(["a", "b"], [0.75, 0.75], n_samples=20_000, seed=3)
    np.testing.assert_array_equal(t.predictions(), calibrated.predictions())  # argmax kept
    under = synthetic_trace(["a"], [0.75], n_samples=20_000, seed=3, calibration=2.0)
    assert confidence_features(under.probs).max_prob.mean() < under.accuracies()[0] - 0.05


def test_same_seed_same_trace_and_streams_are_per_model():
    a = synthetic_trace(["x", "y"], [0.7, 0.9], n_samples=2000, seed=5)
    b = synthetic_trace(["x", "y"], [0.7, 0.9], n_samples=2000, seed=5)
    c = synthetic_trace(["x", "y"], [0.7, 0.9], n_samples=2000, seed=6)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.probs, c.probs)
    d = synthetic_trace(["x", "y", "z"], [0.7, 0.9, 0.95], n_samples=2000, seed=5)
    np.testing.assert_array_equal(d.probs[:2], a.probs)  # appending a model leaves the others alone
    g1 = synthetic_trace(["x"], [0.7], n_samples=100, seed=np.random.default_rng(1))
    g2 = synthetic_trace(["x"], [0.7], n_samples=100, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(g1.probs, g2.probs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"accuracies": [0.05, 0.9]}, "accuracies\\[0\\]"),
        ({"accuracies": [0.7, 1.0]}, "accuracies\\[1\\]"),
        ({"accuracies": [0.7]}, "accuracies"),
        ({"model_names": ["a", "a"]}, "duplicate"),
        ({"model_names": []}, "model_names"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_classes": 1}, "n_classes"),
        ({"difficulty_weight": -1.0}, "difficulty_weight"),
        ({"calibration": 0.0}, "calibration"),
        ({"calibration": [1.0, 1.0, 1.0]}, "calibration"),
        ({"seed": -3}, "seed"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    args = {"model_names": ["a", "b"], "accuracies": [0.7, 0.9], "n_samples": 100, "n_classes": 10, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        synthetic_trace(**args)


def test_from_scenario_spec():
    spec = SyntheticTraceSpec(model_names=("s", "l"), accuracies=(0.6, 0.9), n_samples=4000, n_classes=5, seed=9)
    t = synthetic_trace_from_spec(spec)
    u = synthetic_trace(["s", "l"], [0.6, 0.9], n_samples=4000, n_classes=5, seed=9)
    np.testing.assert_array_equal(t.probs, u.probs)
    assert t.model_names == ("s", "l") and t.n_classes == 5
    bad = SyntheticTraceSpec(model_names=("s",), accuracies=(0.1,), n_samples=10, n_classes=10)
    with pytest.raises(ConfigError, match="trace.synthetic.accuracies"):
        synthetic_trace_from_spec(bad)
