"""LinUCB's flat fused-path kernels against the composed ridge helpers, bit for bit.

``linucb_update`` is written without calls or array views (numba then keeps no atomic reference
counting in it, see linucb.py) and factorises in a (d, d) scratch of the state instead of allocating.
Its arithmetic must stay exactly that of :func:`ridge_stats_update_` (``matvec_`` +
``sherman_morrison_update_`` + ``refactor_arm_`` = ``cholesky_`` + ``inverse_from_cholesky_``): these
tests drive both on the same inputs, through refactorisations, a failed Sherman–Morrison step and a
failed Cholesky factorisation, and require identical arrays. Checkpoints written before the scratch
joined the state (seven arrays) must still load and continue identically.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from idnbandit.agents import LinUCB
from idnbandit.agents._linalg import observed_reward, ridge_stats_update_
from idnbandit.agents.linucb import linucb_select, linucb_update

K, D = 3, 6


@njit
def _composed_update(A, Ainv, b, since, refactor_every, work, x, a, r, rewards):
    """The previous linucb_update: one ridge_stats_update_ call per observed option."""
    for k in range(b.shape[0]):
        rk = observed_reward(k, a, r, rewards)
        if rk == rk:
            ridge_stats_update_(A, Ainv, b, since, k, x, rk, refactor_every, work)


def _stream(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) * np.geomspace(1.0, 0.1, D)
    R = rng.normal(size=(n, K))
    R[rng.random((n, K)) < 0.4] = np.nan  # partial feedback: some options unobserved
    actions = rng.integers(0, K, size=n)
    r = R[np.arange(n), actions].copy()
    r[rng.random(n) < 0.2] = np.nan  # sometimes the action's own reward is missing too
    return X, R, actions, r


def _assert_same(agent_state, A, Ainv, b, since):
    for got, want, name in zip(agent_state[2:6], (A, Ainv, b, since), ("A", "Ainv", "b", "since")):
        assert np.array_equal(got, want), f"{name} differs from the composed helpers"


@pytest.mark.parametrize("refactor_every", [1, 4, 1000])
def test_flat_update_equals_composed_helpers_bit_for_bit(refactor_every):
    X, R, actions, r = _stream(600, refactor_every)
    agent = LinUCB(K, D, alpha=0.5, ridge=0.7, refactor_every=refactor_every, seed=0)
    st = agent.kernels().state
    A, Ainv, b, since = (np.array(a, copy=True) for a in st[2:6])
    work = np.zeros(D)
    for i in range(X.shape[0]):
        linucb_update(st, X[i], int(actions[i]), r[i], R[i])
        _composed_update(A, Ainv, b, since, refactor_every, work, X[i], int(actions[i]), r[i], R[i])
    _assert_same(st, A, Ainv, b, since)
    assert since.max() < refactor_every


def test_failed_sherman_morrison_and_failed_cholesky_match_composed_helpers():
    agent = LinUCB(K, D, refactor_every=50, seed=0)
    st = agent.kernels().state
    x = np.linspace(-1.0, 1.0, D)
    # option 1: a corrupted inverse makes 1 + xᵀA⁻¹x negative -> immediate refactorisation from A
    st[3][1] = -np.eye(D)
    # option 2: both corrupted -> the refactorisation's Cholesky fails on A, and A⁻¹ stays as it was
    st[2][2] = -np.eye(D)
    st[3][2] = -np.eye(D)
    A, Ainv, b, since = (np.array(a, copy=True) for a in st[2:6])
    rewards = np.array([0.5, 1.0, -1.0])
    linucb_update(st, x, 0, 0.5, rewards)
    _composed_update(A, Ainv, b, since, 50, np.zeros(D), x, 0, 0.5, rewards)
    _assert_same(st, A, Ainv, b, since)
    np.testing.assert_allclose(st[3][1] @ st[2][1], np.eye(D), atol=1e-12)  # option 1 was refactorised
    assert np.array_equal(st[3][2], -np.eye(D))
    assert since[1] == 0 and since[2] == 0 and since[0] == 1


def test_select_scores_match_numpy():
    rng = np.random.default_rng(3)
    agent = LinUCB(K, D, alpha=0.8, seed=0)
    X = rng.normal(size=(200, D))
    for i in range(X.shape[0]):
        agent.update(X[i], int(i % K), float(rng.normal()))
    st = agent.kernels().state
    for x in rng.normal(size=(50, D)):
        p = np.einsum("kij,kj->ki", st[3], st[4]) @ x + 0.8 * np.sqrt(np.einsum("i,kij,j->k", x, st[3], x))
        assert linucb_select(st, x, np.empty(0)) == int(np.argmax(p))


def test_seven_array_checkpoints_still_load_and_continue_identically(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, D))
    agent = LinUCB(K, D, refactor_every=7, seed=0)
    for x in X[:150]:
        agent.update(x, agent.act(x), float(x[0]))
    path = agent.save(tmp_path / "new.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert "s7" in arrays and arrays["s7"].shape == (D, D)
    del arrays["s7"]  # the layout before the Cholesky scratch was added
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    resumed = LinUCB.load(old)
    assert len(resumed._state) == 8 and resumed._state[7].shape == (D, D)
    for x in X[150:]:
        a, b = agent.act(x), resumed.act(x)
        assert a == b
        agent.update(x, a, float(x[1]))
        resumed.update(x, b, float(x[1]))
    for got, want in zip(resumed._state[:7], agent._state[:7]):
        assert np.array_equal(got, want)
