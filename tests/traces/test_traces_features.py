"""Confidence features, temperature scaling and ECE against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idnbandit.errors import ConfigError, TraceError
from idnbandit.traces import (
    FEATURE_NAMES,
    apply_temperature,
    calibrate_trace,
    calibration_split,
    confidence_features,
    ece,
    feature_matrix,
    fit_temperature,
    nll,
    synthetic_trace,
)


def test_features_hand_computed():
    p = np.array([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0], [0.1, 0.45, 0.45]])
    f = confidence_features(p)
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)) / math.log(3)
    np.testing.assert_allclose(f.max_prob, [0.5, 1 / 3, 1.0, 0.45])
    np.testing.assert_allclose(f.margin, [0.2, 0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(f.entropy, [h, 1.0, 0.0, -(0.1 * math.log(0.1) + 0.9 * math.log(0.45)) / math.log(3)])
    np.testing.assert_array_equal(f.predicted, [0, 0, 1, 1])  # ties -> lowest index
    assert f.predicted.dtype == np.int64 and f.max_prob.dtype == np.float64


def test_features_of_one_row_and_of_a_trace():
    f = confidence_features([0.25, 0.75])
    assert float(f.max_prob) == 0.75 and float(f.margin) == 0.5 and int(f.predicted) == 1
    t = synthetic_trace(["a", "b"], [0.6, 0.9], n_samples=300, n_classes=5, seed=0)
    g = confidence_features(t.probs)
    assert g.max_prob.shape == (2, 300)
    np.testing.assert_array_equal(g.predicted, t.predictions())
    m = feature_matrix(t.probs[1])
    assert m.shape == (300, 3) and len(FEATURE_NAMES) == 3
    np.testing.assert_allclose(m[:, 0], g.max_prob[1])
    np.testing.assert_allclose(m[:, 2], g.entropy[1])
    assert ((m >= 0) & (m <= 1)).all()


def test_features_reject_bad_input():
    with pytest.raises(TraceError, match="C >= 2"):
        confidence_features([1.0])
    with pytest.raises(TraceError, match="NaN"):
        confidence_features([[0.5, np.nan]])


def test_apply_temperature():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, rtol=1e-6)
    hot, cold = apply_temperature(p, 3.0), apply_temperature(p, 0.5)
    assert hot.dtype == np.float32
    np.testing.assert_allclose(hot.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(hot.argmax(axis=1), p.argmax(axis=1))
    assert (hot.max(axis=1) < p.max(axis=1)).all() and (cold.max(axis=1) > p.max(axis=1)).all()
    # softmax(log p / 2): for p = (0.8, 0.2) -> (sqrt .8, sqrt .2) normalised
    np.testing.assert_allclose(apply_temperature([0.8, 0.2], 2.0), [2 / 3, 1 / 3], rtol=1e-6)
    assert np.allclose(confidence_features(p, temperature=3.0).max_prob, hot.max(axis=1), rtol=1e-6)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ConfigError, match="temperature"):
            apply_temperature(p, bad)


def test_nll_hand_computed():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert nll(p, np.array([0, 1])) == pytest.approx(-(math.log(0.5) + math.log(0.1)) / 2)


@pytest.mark.parametrize("calibration, direction", [(0.5, "over"), (2.0, "under")])
def test_temperature_scaling_lowers_nll_on_held_out_samples(calibration, direction):
    t = synthetic_trace(["m"], [0.8], n_samples=20_000, seed=3, calibration=calibration)
    cal, ev = calibration_split(t.n_samples, 0.25, seed=1)
    temp = fit_temperature(t.probs[0, cal], t.labels[cal])
    if direction == "over":
        assert temp > 1.5  # generated as softmax(log p / 0.5): T = 2 undoes it
    else:
        assert temp < 0.7  # T = 0.5 undoes calibration 2
    before = nll(t.probs[0, ev], t.labels[ev])
    after = nll(apply_temperature(t.probs[0, ev], temp), t.labels[ev])
    assert after < before - 0.02
    assert ece(apply_temperature(t.probs[0, ev], temp), t.labels[ev]) < ece(t.probs[0, ev], t.labels[ev]) / 2


def test_fit_temperature_is_the_minimum_of_a_grid():
    t = synthetic_trace(["m"], [0.7], n_samples=3000, seed=5, calibration=0.7)
    p, y = t.probs[0], t.labels
    temp = fit_temperature(p, y)
    grid = np.exp(np.linspace(np.log(0.2), np.log(5), 200))
    best = grid[np.argmin([nll(apply_temperature(p, g), y) for g in grid])]
    assert temp == pytest.approx(best, rel=0.03)


def test_fit_temperature_validates():
    p = np.array([[0.6, 0.4], [0.3, 0.7]])
    with pytest.raises(ConfigError, match="bounds"):
        fit_temperature(p, [0, 1], bounds=(2.0, 1.0))
    with pytest.raises(TraceError, match="labels"):
        fit_temperature(p, [0, 2])
    with pytest.raises(TraceError, match="labels"):
        fit_temperature(p, [0])
    with pytest.raises(TraceError, match="one model"):
        fit_temperature(p[None], [0, 1])


def test_ece_hand_computed():
    # bins of width 0.5: sample conf 0.6 (correct) and 0.9 (wrong), 0.9 (correct)
    p = np.array([[0.6, 0.4], [0.9, 0.1], [0.1, 0.9]])
    y = np.array([0, 1, 1])
    # bin (0, .5]: empty; bin (.5, 1]: 3 samples, mean conf 0.8, accuracy 2/3
    assert ece(p, y, n_bins=2) == pytest.approx(abs(0.8 - 2 / 3))
    # 10 bins: |1-0.6|*1/3 + |0.5-0.9|*2/3
    assert ece(p, y, n_bins=10) == pytest.approx(0.4 / 3 + 0.4 * 2 / 3)
    # a bin edge belongs to the lower bin: conf exactly 0.5 lies in (0, 0.5]
    assert ece(np.array([[0.5, 0.5]]), np.array([0]), n_bins=2) == pytest.approx(0.5)
    both = ece(np.stack([p, p[:, ::-1]]), y, n_bins=10)
    assert both.shape == (2,) and both[0] == pytest.approx(ece(p, y, n_bins=10))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="n_bins"):
            ece(p, y, n_bins=bad)


def test_calibrate_trace_reduces_ece_on_the_evaluation_split():
    t = synthetic_trace(["a", "b"], [0.65, 0.9], n_samples=10_000, seed=2, calibration=[0.4, 1.0])
    res = calibrate_trace(t, calibration_fraction=0.3, seed=0)
    assert len(np.intersect1d(res.calibration_index, res.evaluation_index)) == 0
    assert len(res.calibration_index) + len(res.evaluation_index) == t.n_samples
    ev = res.evaluation_index
    assert ece(res.trace.probs[0, ev], t.labels[ev]) < 0.5 * ece(t.probs[0, ev], t.labels[ev])
    assert res.temperatures[0] > 2.0 and 0.8 < res.temperatures[1] < 1.25
    np.testing.assert_array_equal(res.trace.predictions(), t.predictions())
    assert res.trace.metadata["temperatures"] == pytest.approx(list(res.temperatures))
    with pytest.raises(ConfigError, match="calibration_fraction"):
        calibrate_trace(t, calibration_fraction=1.0)
