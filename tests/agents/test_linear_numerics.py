"""Shared linear-algebra kernels against numpy, and LinUCB's numerical health over 10^7 updates."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from idnbandit.agents import LinUCB
from idnbandit.agents._linalg import (
    all_finite,
    argmax_first,
    backward_solve_,
    cholesky_,
    cholesky_downdate_,
    cholesky_update_,
    forward_solve_,
    inverse_from_cholesky_,
    quad_form,
    sherman_morrison_downdate_,
    sherman_morrison_update_,
)


def _spd(d, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(d, d))
    return m @ m.T + d * np.eye(d), rng.normal(size=d)


@pytest.mark.parametrize("d", [1, 2, 7, 16])
def test_cholesky_solves_and_inverse(d):
    A, x = _spd(d, d)
    L = np.full((d, d), 7.0)  # garbage above the diagonal must be cleared
    assert cholesky_(A, L)
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-12, atol=1e-12)
    y, z = np.empty(d), np.empty(d)
    forward_solve_(L, x, y)
    np.testing.assert_allclose(y, np.linalg.solve(L, x), rtol=1e-10, atol=1e-12)
    backward_solve_(L, x, z)
    np.testing.assert_allclose(z, np.linalg.solve(L.T, x), rtol=1e-10, atol=1e-12)
    inv = np.empty((d, d))
    inverse_from_cholesky_(L, inv, np.empty(d))
    np.testing.assert_allclose(inv, np.linalg.inv(A), rtol=1e-10, atol=1e-12)
    assert np.array_equal(inv, inv.T)
    assert quad_form(inv, x) == pytest.approx(x @ np.linalg.solve(A, x), rel=1e-10)


def test_cholesky_rejects_non_spd():
    assert not cholesky_(np.array([[1.0, 2.0], [2.0, 1.0]]), np.empty((2, 2)))


@pytest.mark.parametrize("d", [1, 5, 16])
def test_rank_one_updates_and_downdates(d):
    A, x = _spd(d, 10 + d)
    L = np.linalg.cholesky(A)
    w = np.empty(d)
    x0 = x.copy()
    cholesky_update_(L, x, w)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_allclose(L @ L.T, A + np.outer(x, x), rtol=1e-10, atol=1e-10)
    assert cholesky_downdate_(L, x, w)
    np.testing.assert_allclose(L @ L.T, A, rtol=1e-9, atol=1e-9)
    # a downdate that would leave A indefinite is refused
    assert not cholesky_downdate_(np.linalg.cholesky(np.eye(d)), np.full(d, 2.0), w)

    Ainv = np.linalg.inv(A)
    Ainv = (Ainv + Ainv.T) / 2  # exactly symmetric input -> exactly symmetric output
    assert sherman_morrison_update_(Ainv, x, w)
    np.testing.assert_allclose(Ainv, np.linalg.inv(A + np.outer(x, x)), rtol=1e-9, atol=1e-12)
    assert np.array_equal(Ainv, Ainv.T)
    assert sherman_morrison_downdate_(Ainv, x, w)
    np.testing.assert_allclose(Ainv, np.linalg.inv(A), rtol=1e-9, atol=1e-12)
    assert np.array_equal(Ainv, Ainv.T)
    eye = np.eye(d)
    before = eye.copy()
    assert not sherman_morrison_downdate_(eye, np.full(d, 2.0), w)
    np.testing.assert_array_equal(eye, before)  # refused: untouched


def test_argmax_first_and_all_finite():
    assert argmax_first(np.array([1.0, 3.0, 3.0])) == 1
    assert argmax_first(np.array([np.nan, 0.0, -1.0])) == 1
    assert argmax_first(np.array([-np.inf, -np.inf])) == 0
    assert all_finite(np.array([0.0, 1e300]))
    assert not all_finite(np.array([0.0, np.nan]))
    assert not all_finite(np.array([np.inf, 0.0]))


@njit
def _drive_updates(update, state, X, scales, n, out_err):
    """n updates of option 0 with cyclic, unevenly scaled contexts; record ||Ainv A - I||_F along the way."""
    rewards = np.full(1, np.nan)
    x = np.empty(X.shape[1])
    m = X.shape[0]
    A, Ainv = state[2], state[3]
    d = X.shape[1]
    checkpoints = out_err.shape[0]
    every = n // checkpoints
    for i in range(n):
        row = X[i % m]
        s = scales[(i // m) % scales.shape[0]]
        for j in range(d):
            x[j] = row[j] * s
        update(state, x, 0, 0.5 * x[0] - 0.25 * x[1], rewards)
        if (i + 1) % every == 0:
            err = 0.0
            for p in range(d):
                for q in range(d):
                    t = 0.0
                    for r in range(d):
                        t += Ainv[0, p, r] * A[0, r, q]
                    if p == q:
                        t -= 1.0
                    err += t * t
            out_err[(i + 1) // every - 1] = np.sqrt(err)


@pytest.mark.slow
def test_linucb_numerically_healthy_over_1e7_updates():
    d = 16
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, d)) * np.geomspace(1.0, 0.05, d)  # anisotropic: condition number ~400
    X[:, 1] += 0.9 * X[:, 0]  # correlated features
    scales = np.array([1.0, 0.5, 2.0, 0.1])
    agent = LinUCB(n_actions=1, n_features=d, alpha=1.0, ridge=1.0, refactor_every=1000, seed=0)
    kern = agent.kernels()
    errs = np.zeros(20)
    _drive_updates(kern.update, kern.state, X, scales, 10_000_000, errs)
    A, Ainv = kern.state[2][0], kern.state[3][0]
    final = np.linalg.norm(Ainv @ A - np.eye(d))
    print(f"||Ainv A - I||_F after 1e7 updates: {final:.3e}; max over checkpoints {errs.max():.3e}")
    assert final < 1e-6 and errs.max() < 1e-6
    assert np.array_equal(Ainv, Ainv.T)
    np.testing.assert_allclose(Ainv, np.linalg.inv(A), rtol=1e-6, atol=1e-15)
