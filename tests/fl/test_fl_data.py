"""Digits split and Dirichlet label-skew partition."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from idnbandit.errors import ConfigError
from idnbandit.fl import dirichlet_partition, load_digits_images, stratified_split


def test_partition_covers_every_sample_once_and_is_seeded():
    y = np.repeat(np.arange(10), 50)
    parts = dirichlet_partition(y, 7, 0.5, seed=3)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(y)))
    assert all(len(p) >= 2 for p in parts)
    again = dirichlet_partition(y, 7, 0.5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_small_alpha_skews_labels_more_than_large_alpha():
    y = np.repeat(np.arange(10), 100)

    def mean_top_class_share(alpha):
        parts = dirichlet_partition(y, 5, alpha, seed=0)
        return np.mean([np.bincount(y[p], minlength=10).max() / len(p) for p in parts])

    assert mean_top_class_share(0.1) > 0.4  # a few classes per client
    assert mean_top_class_share(1000.0) < 0.15  # close to the uniform 0.1


def test_partition_errors():
    y = np.repeat(np.arange(3), 4)
    with pytest.raises(ConfigError, match="alpha"):
        dirichlet_partition(y, 2, 0.0)
    with pytest.raises(ConfigError, match="n_clients"):
        dirichlet_partition(y, 0, 1.0)
    with pytest.raises(ConfigError, match="shares"):
        dirichlet_partition(y, 2, 1.0, shares=[0.2, 0.2])


def test_digits_split_is_stratified_and_disjoint():
    if importlib.util.find_spec("sklearn") is None:  # its data file is read without importing it
        pytest.skip("scikit-learn is not installed")
    x, y = load_digits_images()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    s = stratified_split(x, y, seed=0)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == len(y)
    for part in (s.y_train, s.y_val, s.y_test):
        share = np.bincount(part, minlength=10) / len(part)
        np.testing.assert_allclose(share, np.bincount(y) / len(y), atol=0.01)
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(x, y, fractions=(0.5, 0.5, 0.5))
