import numpy as np

from idnbandit.sim.hindsight import best_threshold


def test_best_threshold_equals_brute_force():
    rng = np.random.default_rng(3)
    p = np.round(rng.random(500), 2)  # ties on purpose
    rs = rng.normal(size=(500, 3))
    theta, got = best_threshold(p, rs)
    candidates = np.concatenate([np.unique(p), [1.5]])
    totals = [np.where(p >= th, rs[:, 0], rs[:, -1]).sum() for th in candidates]
    assert np.isclose(got.sum(), max(totals))
    assert theta == candidates[int(np.argmax(totals))] or theta > p.max()
    assert np.array_equal(got, np.where(p >= theta, rs[:, 0], rs[:, -1]))


def test_best_threshold_extremes():
    p = np.array([0.2, 0.5, 0.9])
    always_forward = np.array([[0.0, 0.0, 1.0]] * 3)
    theta, got = best_threshold(p, always_forward)
    assert theta > 0.9 and got.tolist() == [1.0, 1.0, 1.0]
    always_local = np.array([[1.0, 0.0, 0.0]] * 3)
    theta, got = best_threshold(p, always_local)
    assert theta <= 0.2 and got.tolist() == [1.0, 1.0, 1.0]
