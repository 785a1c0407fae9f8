"""The linear agents' numba kernels against their plain numpy references (same inputs -> same actions
and state), including LinUCB's exact arm sequence on d=16, K=4 over 200k steps."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import feedback, make_stream
from numba import njit
from reference_linear import (
    RefDLinUCB,
    RefEpsilonGreedy,
    RefLinTS,
    RefLinUCB,
    RefSWLinUCB,
    ref_oracle,
    ref_static_threshold,
)

from idnbandit.agents import (
    DiscountedLinUCB,
    EpsilonGreedy,
    LinTS,
    LinUCB,
    Oracle,
    SlidingWindowLinUCB,
    StaticThreshold,
)

K, D, T = 3, 5, 300

CASES = [
    (LinUCB, RefLinUCB, {"alpha": 0.7, "ridge": 0.5, "refactor_every": 17}),
    (EpsilonGreedy, RefEpsilonGreedy, {"epsilon": 0.2, "ridge": 1.0, "decay": 0.01, "refactor_every": 50}),
    (EpsilonGreedy, RefEpsilonGreedy, {"epsilon": 0.1}),
    (LinTS, RefLinTS, {"v": 0.3, "ridge": 2.0}),
    (DiscountedLinUCB, RefDLinUCB, {"gamma": 0.95, "alpha": 0.2, "ridge": 1.0}),
    (SlidingWindowLinUCB, RefSWLinUCB, {"window": 20, "alpha": 0.5, "ridge": 1.0}),
    (SlidingWindowLinUCB, RefSWLinUCB, {"window": 25, "alpha": 0.5, "rebuild_every": 7}),
]


@pytest.mark.parametrize("cls,ref_cls,params", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_kernel_matches_numpy_reference(cls, ref_cls, params):
    xs, rewards, mode = make_stream(T, K, D, seed=5)
    agent = cls(n_actions=K, n_features=D, seed=9, **params)
    ref = ref_cls(K, D, **params)
    rng = np.random.default_rng(9)  # the agent's own stream, replayed for the reference
    for i in range(T):
        u = rng.random(agent.n_uniforms)
        a = agent.act(xs[i])
        assert a == ref.select(xs[i], u), f"step {i}"
        r, rs = feedback(rewards[i], a, mode[i])
        agent.update(xs[i], a, r, rewards=rs)
        full = np.full(K, np.nan) if rs is None else rs
        ref.learn(xs[i], a, r, full)
    state = agent._state
    if cls in (LinUCB, EpsilonGreedy):
        np.testing.assert_allclose(state[2], ref.A, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state[3], ref.Ainv, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(agent.coef_, ref.theta, rtol=1e-9, atol=1e-10)
    elif cls is LinTS:
        np.testing.assert_allclose(state[3], ref.mu(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.einsum("kij,klj->kil", state[1], state[1]), ref.B, rtol=1e-10, atol=1e-10)
    elif cls is DiscountedLinUCB:
        np.testing.assert_allclose(state[2], ref.V, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state[3], ref.Vt, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state[5], [np.linalg.solve(V, b) for V, b in zip(ref.V, ref.b)], rtol=1e-8, atol=1e-10)
    else:
        A, b = ref.stats()
        np.testing.assert_allclose(state[2], A, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(state[5], [np.linalg.solve(Ak, bk) for Ak, bk in zip(A, b)], rtol=1e-7, atol=1e-9)


def test_static_threshold_and_oracle_match_reference():
    xs, rewards, _ = make_stream(200, 4, 3, seed=6)
    st = StaticThreshold(n_actions=4, n_features=3, theta=0.4, confidence_index=1, local_action=1,
                         forward_action=-2)
    oracle = Oracle(n_actions=4, n_features=3)
    rewards[::7, 2] = np.nan
    for i in range(200):
        assert st.act(xs[i]) == ref_static_threshold(xs[i], 0.4, 1, 1, -2, 4)
        assert oracle.act_oracle(rewards[i]) == ref_oracle(rewards[i])
    assert oracle.act_oracle([1.0, 3.0, 3.0, np.nan]) == 1  # lowest index on ties, NaN never wins


def synthetic_linear_bandit(n, d=16, k=4, seed=2024):
    """Unit-norm contexts and θ_a, Bernoulli rewards of mean 0.5 + 0.5·θ_aᵀx: (X, R, means).

    The same kind of stream as benchmarks/agents_vs_peers.py (Bernoulli noise keeps the
    problem hard enough that the regret curve is still rising at 200k steps)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(k, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    means = 0.5 + 0.5 * (X @ theta.T)
    return X, (rng.random((n, k)) < means).astype(np.float64), means


@njit
def _run_fused(select, update, state, X, R, actions):
    """The whole bandit loop in one compiled call, as the simulator's fused path runs it."""
    nan = np.full(R.shape[1], np.nan)
    u = np.empty(0)
    for i in range(X.shape[0]):
        a = select(state, X[i], u)
        actions[i] = a
        update(state, X[i], a, R[i, a], nan)


@functools.lru_cache(maxsize=1)
def linucb_200k():
    """(X, R, means, actions) of LinUCB(alpha=1, ridge=1) on the d=16, K=4, 200k-step synthetic bandit."""
    n = 200_000
    X, R, means = synthetic_linear_bandit(n)
    agent = LinUCB(n_actions=4, n_features=16, alpha=1.0, ridge=1.0, refactor_every=1000, seed=0)
    kern = agent.kernels()
    actions = np.empty(n, dtype=np.int64)
    _run_fused(kern.select, kern.update, kern.state, X, R, actions)
    return X, R, means, actions


@pytest.mark.slow
def test_linucb_arm_sequence_equals_numpy_reference_200k():
    X, R, _, got = linucb_200k()
    ref = RefLinUCB(4, 16, alpha=1.0, ridge=1.0, refactor_every=1000)
    # the reference's steps written out for one observed option per step (bandit feedback), for speed
    A, Ainv, b, theta, since = ref.A, ref.Ainv, ref.b, ref.theta, ref.since
    for i in range(X.shape[0]):
        x = X[i]
        q = (Ainv @ x) @ x
        a = int(np.argmax(theta @ x + np.sqrt(np.maximum(q, 0.0))))
        assert a == got[i], f"first difference at step {i}"
        xx = np.outer(x, x)
        A[a] += xx
        b[a] += R[i, a] * x
        u = Ainv[a] @ x
        Ainv[a] -= np.outer(u, u) / (1.0 + x @ u)
        since[a] += 1
        if since[a] >= 1000:
            Ainv[a] = np.linalg.inv(A[a])
            since[a] = 0
        theta[a] = Ainv[a] @ b[a]


@pytest.mark.slow
def test_linucb_regret_is_sublinear():
    _, _, means, actions = linucb_200k()
    n = means.shape[0]
    regret = np.cumsum(means.max(axis=1) - means[np.arange(n), actions])
    t = np.unique(np.geomspace(n // 2, n, 50).astype(int))
    slope = np.polyfit(np.log(t), np.log(regret[t - 1]), 1)[0]
    print(f"LinUCB cumulative regret at 200k: {regret[-1]:.1f}; log-log slope over the second half: {slope:.3f}")
    assert slope < 0.75
    assert regret[-1] < 0.05 * n  # and small in absolute terms
