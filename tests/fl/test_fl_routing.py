"""Routing rates and importance weights: positive, normalised, and following the routing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idnbandit.errors import ConfigError
from idnbandit.fl import confidence_keys, estimate_routing, importance_weights


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 200), st.floats(1e-4, 1.0))
def test_importance_weights_positive_and_normalised(seed, n_keys, n, floor):
    rng = np.random.default_rng(seed)
    rates = rng.random(n_keys) * (rng.random(n_keys) < 0.5)  # many exact zeros
    keys = rng.integers(0, n_keys, n)
    w = importance_weights(keys, rates, floor)
    assert w.shape == (n,)
    assert (w > 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # a sample whose key is routed more often never weighs less
    order = np.argsort(rates[keys], kind="stable")
    assert (np.diff(w[order]) >= -1e-15).all()


def test_importance_weights_hand_computed_and_errors():
    w = importance_weights(np.array([0, 1, 1, 2]), np.array([0.6, 0.1, 0.0]), floor=0.1)
    np.testing.assert_allclose(w, np.array([0.7, 0.2, 0.2, 0.1]) / 1.2)
    with pytest.raises(ConfigError, match="floor"):
        importance_weights(np.array([0]), np.array([0.5]), floor=-1)
    with pytest.raises(ConfigError, match="weight 0"):
        importance_weights(np.array([0]), np.array([0.0]), floor=0.0)


def test_estimate_routing_rates_are_smoothed_conditionals():
    keys = np.array([0, 0, 0, 1, 1, 1, 1])
    served = np.array([0, 0, 1, 1, 1, 1, 1])
    rt = estimate_routing(keys, served, ["device", "cloud"], n_keys=3, prior=1.0)
    # key 0: (2 + 0.5) / 4, (1 + 0.5) / 4 ; key 1: 0.5 / 5, 4.5 / 5 ; key 2 unseen: uniform
    np.testing.assert_allclose(rt.rates, [[0.625, 0.1, 0.5], [0.375, 0.9, 0.5]])
    np.testing.assert_allclose(rt.rates.sum(axis=0), 1.0)
    np.testing.assert_allclose(rt.serving_rates(), [2 / 7, 5 / 7])
    assert rt.to_dict()["counts"] == [[2, 0, 0], [1, 4, 0]]
    with pytest.raises(ConfigError, match="out of range"):
        estimate_routing(np.array([3]), np.array([0]), ["a"], n_keys=3)


def test_confidence_keys_and_exit_weights():
    pytest.importorskip("torch")
    from idnbandit.fl import exit_loss_weights

    assert confidence_keys(np.array([0.0, 0.099, 0.1, 0.55, 1.0]), 10).tolist() == [0, 0, 1, 5, 9]
    lam = exit_loss_weights([0.9, 0.1, 0.0, 0.0], floor=0.05)
    assert (lam > 0).all() and lam.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(lam, np.array([0.95, 0.15, 0.05, 0.05]) / 1.2)
    with pytest.raises(ConfigError, match="serving_rates"):
        exit_loss_weights([-0.1, 1.0])
