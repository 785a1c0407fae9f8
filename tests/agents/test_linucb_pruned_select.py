"""LinUCB's pruned kernel pair: exact selection pruned by bounds, reuse of A⁻¹x, the choice between
the two kernel pairs and checkpoints moving between their layouts (idnbandit/agents/_linucb_pruned.py).

The kernel scores exactly only the options whose O(d) upper bound ``θᵀx + ‖x‖·reach`` reaches the
best index so far. These tests hold the decision to full scoring (numpy), the bound's ingredients to
their definitions (radius² ≥ λmax(A⁻¹), θ = A⁻¹b) along whole runs, and the update that reuses the
decision's A⁻¹x to the one that recomputes it, bit for bit; and the pruned pair to the plain one.
"""

from __future__ import annotations

import copy
import json
import pickle
from functools import partial

import numpy as np
import pytest

from idnbandit.agents import Agent
from idnbandit.agents import LinUCB as _LinUCB
from idnbandit.agents._linucb_pruned import linucb_pruned_select as linucb_select
from idnbandit.agents._linucb_pruned import linucb_pruned_update as linucb_update
from idnbandit.errors import ConfigError

LinUCB = partial(_LinUCB, selection="pruned")

THETA, RADIUS, REACH, SCORED = 8, 9, 10, 15


def _full_scoring(state, x):
    """argmax of the LinUCB index over every option, lowest index on ties (numpy)."""
    alpha, Ainv, b = state[0][0], state[3], state[4]
    t = Ainv @ x
    q = np.maximum(t @ x, 0.0)
    return int(np.argmax(np.einsum("ki,ki->k", b, t) + alpha * np.sqrt(q)))


def _assert_same_learned_state(agent, ref):
    """A, A⁻¹, b, since, the scratch, θ, radius and reach: bit for bit."""
    for k in range(THETA + 3):
        assert np.array_equal(agent._state[k], ref._state[k]), f"state array {k} differs"


def _stream(n, k, d, seed, gap=1.0):
    rng = np.random.default_rng(seed)
    theta = gap * rng.normal(size=(k, d)) / np.sqrt(d)
    X = rng.normal(size=(n, d))
    return X, X @ theta.T + 0.3 * rng.normal(size=(n, k))


@pytest.mark.parametrize("alpha,ridge,refactor_every,gap", [
    (1.0, 1.0, 1000, 1.0), (0.3, 0.5, 7, 1.0), (0.0, 1.0, 50, 1.0), (2.0, 3.0, 1, 0.0)])
def test_pruned_select_equals_full_scoring(alpha, ridge, refactor_every, gap):
    K, D = 5, 7
    X, R = _stream(3000, K, D, seed=refactor_every, gap=gap)
    agent = LinUCB(K, D, alpha=alpha, ridge=ridge, refactor_every=refactor_every, seed=0)
    st = agent.kernels().state
    probe = np.random.default_rng(1).normal(size=(40, D))
    for i in range(X.shape[0]):
        a = agent.act(X[i])
        assert a == _full_scoring(st, X[i])
        agent.update(X[i], a, float(R[i, a]))
        if i % 500 == 499:
            for x in probe:
                assert linucb_select(st, x, np.empty(0)) == _full_scoring(st, x)
    assert linucb_select(st, np.zeros(D), np.empty(0)) == _full_scoring(st, np.zeros(D))


def test_ties_go_to_the_lowest_index_whatever_is_scored_first():
    K, D = 4, 3
    agent = LinUCB(K, D, alpha=0.5, seed=0)
    rng = np.random.default_rng(2)
    for _ in range(200):
        x = rng.normal(size=D)
        agent.update(x, 0, float(x[0]), rewards=np.array([float(x[0]), 0.0, float(x[0]), float(x[0])]))
    st = agent.kernels().state
    # options 0, 2 and 3 saw the same data: identical state, identical index
    for x in rng.normal(size=(50, D)):
        a = linucb_select(st, x, np.empty(0))
        assert a == _full_scoring(st, x)
        assert a in (0, 1)


def test_radius_bounds_the_largest_eigenvalue_and_theta_tracks_the_ridge_estimate():
    K, D = 3, 6
    X, R = _stream(5000, K, D, seed=3)
    for refactor_every in (1, 40, 10**9):
        agent = LinUCB(K, D, refactor_every=refactor_every, seed=0)
        st = agent.kernels().state
        for i in range(X.shape[0]):
            a = agent.act(X[i])
            agent.update(X[i], a, float(R[i, a]))
            if i % 50 == 0 or i > 4900:
                lam = np.linalg.eigvalsh(st[3]).max(axis=1)
                assert np.all(st[RADIUS] ** 2 >= lam)
                theta = np.einsum("kij,kj->ki", st[3], st[4])
                np.testing.assert_allclose(st[THETA], theta, rtol=1e-9, atol=1e-12)
        # the bound is refreshed (powers of two and refactorisations), so it is within a few times
        # the eigenvalue, not stuck at the prior's 1/ridge
        lam = np.linalg.eigvalsh(st[3]).max(axis=1)
        assert np.all(st[RADIUS] ** 2 < 4.0 * lam)


def test_update_reusing_the_decisions_product_is_bit_identical_to_recomputing_it():
    K, D = 4, 16
    X, R = _stream(4000, K, D, seed=4)
    with_act = LinUCB(K, D, refactor_every=300, seed=0)
    without = LinUCB(K, D, refactor_every=300, seed=0)
    for i in range(X.shape[0]):
        a = with_act.act(X[i])
        with_act.update(X[i], a, float(R[i, a]))
        without.update(X[i], a, float(R[i, a]))  # no decision: A⁻¹x is recomputed
    _assert_same_learned_state(with_act, without)


def test_a_stale_product_is_never_reused():
    K, D = 3, 5
    X, R = _stream(600, K, D, seed=5)
    agent = LinUCB(K, D, seed=0)
    ref = LinUCB(K, D, seed=0)
    x = np.empty(D)
    for i in range(0, X.shape[0] - 1, 2):
        # two decisions, then their updates in order: the second decision's context is the one stored
        a1, a2 = agent.act(X[i]), agent.act(X[i + 1])
        agent.update(X[i], a1, float(R[i, a1]))
        agent.update(X[i + 1], a2, float(R[i + 1, a2]))
        ref.update(X[i], a1, float(R[i, a1]))
        ref.update(X[i + 1], a2, float(R[i + 1, a2]))
        # a caller reusing its context buffer: the decision saw other values than the update gets
        x[:] = X[i]
        a = agent.act(x)
        x[:] = X[i + 1]
        agent.update(x, a, 0.5)
        ref.update(X[i + 1], a, 0.5)
        # the same context twice in a row for the same option: the first update changes A⁻¹
        a = agent.act(X[i])
        agent.update(X[i], a, 0.1)
        agent.update(X[i], a, 0.2)
        ref.update(X[i], a, 0.1)
        ref.update(X[i], a, 0.2)
    _assert_same_learned_state(agent, ref)


def test_full_feedback_updates_every_option_correctly_after_a_pruned_decision():
    K, D = 4, 6
    X, R = _stream(2000, K, D, seed=6)
    agent = LinUCB(K, D, seed=0)
    ref = LinUCB(K, D, seed=0)
    for i in range(X.shape[0]):
        a = agent.act(X[i])
        agent.update(X[i], a, float(R[i, a]), rewards=R[i])
        ref.update(X[i], a, float(R[i, a]), rewards=R[i])
    _assert_same_learned_state(agent, ref)


def test_an_option_without_a_bound_is_always_scored():
    K, D = 3, 4
    agent = LinUCB(K, D, alpha=0.0, refactor_every=50, seed=0)
    st = agent.kernels().state
    rng = np.random.default_rng(7)
    for _ in range(100):
        x = rng.normal(size=D)
        agent.update(x, int(rng.integers(K)), float(x[1]))
    # a failed factorisation leaves the option without a bound (radius inf; with alpha = 0, reach NaN)
    st[2][1] = -np.eye(D)
    st[3][1] = -np.eye(D)
    linucb_update(st, np.ones(D), 1, 0.3, np.full(K, np.nan))
    assert st[RADIUS][1] == np.inf and np.isnan(st[REACH][1])
    for x in rng.normal(size=(100, D)):
        assert linucb_select(st, x, np.empty(0)) == _full_scoring(st, x)
        assert st[SCORED][1] == 1


def test_separated_options_are_decided_with_about_one_exact_score():
    K, D = 4, 16
    X, R = _stream(20000, K, D, seed=8, gap=2.0)
    agent = LinUCB(K, D, seed=0)
    st = agent.kernels().state
    scored = 0
    for i in range(X.shape[0]):
        a = agent.act(X[i])
        if i >= 10000:
            scored += int(st[SCORED].sum())
        agent.update(X[i], a, float(R[i, a]))
    assert 1.0 <= scored / 10000 < 1.3  # at least the chosen option is scored


# ---------------------------------------------------------------- the two kernel pairs side by side

@pytest.mark.parametrize("d,k,pruned", [(16, 4, True), (8, 8, True), (32, 2, True), (8, 4, False),
                                        (12, 4, False), (4, 16, False), (7, 10, False)])
def test_auto_takes_the_pruned_pair_from_d_8_and_dk_64(d, k, pruned):
    agent = _LinUCB(k, d, seed=0)
    assert agent.selection == "auto" and agent.pruned is pruned
    assert len(agent._state) == (16 if pruned else 8)
    assert _LinUCB(k, d, selection="full", seed=0).pruned is False
    assert _LinUCB(k, d, selection="pruned", seed=0).pruned is True


@pytest.mark.parametrize("bad", ["fast", "", None, 1, "Pruned"])
def test_an_unknown_selection_names_the_parameter(bad):
    with pytest.raises(ConfigError, match="selection.*'auto', 'full', 'pruned'"):
        _LinUCB(4, 16, selection=bad)


@pytest.mark.parametrize("k,d,refactor_every", [(4, 16, 1000), (3, 5, 9), (6, 12, 1)])
def test_pruned_and_full_make_the_same_decisions_and_learn_the_same_state(k, d, refactor_every):
    X, R = _stream(3000, k, d, seed=9 + d)
    mode = np.random.default_rng(d).integers(0, 3, size=X.shape[0])  # full, bandit, no feedback
    pruned = _LinUCB(k, d, refactor_every=refactor_every, selection="pruned", seed=0)
    full = _LinUCB(k, d, refactor_every=refactor_every, selection="full", seed=0)
    for i in range(X.shape[0]):
        a = pruned.act(X[i])
        assert a == full.act(X[i])
        r = float(R[i, a]) if mode[i] < 2 else float("nan")
        rewards = R[i] if mode[i] == 0 else None
        pruned.update(X[i], a, r, rewards=rewards)
        full.update(X[i], a, r, rewards=rewards)
    for i in range(6):  # fcfg, icfg, A, A⁻¹, b, since (6 and 7 are scratch)
        assert np.array_equal(pruned._state[i], full._state[i]), f"state array {i} differs"
    np.testing.assert_array_equal(pruned.coef_, full.coef_)


def _rewrite_params(path, out, **changes):
    """A copy of the checkpoint ``path`` with its constructor parameters changed (None: removed)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    for name, value in changes.items():
        if value is None:
            meta["params"].pop(name)
        else:
            meta["params"][name] = value
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("written,read", [("full", "pruned"), ("pruned", "full")])
def test_a_checkpoint_of_the_other_pair_continues_exactly(tmp_path, written, read):
    K, D = 4, 16
    X, R = _stream(1200, K, D, seed=10)
    agent = _LinUCB(K, D, refactor_every=100, selection=written, seed=0)
    twin = _LinUCB(K, D, refactor_every=100, selection=read, seed=0)
    for i in range(600):
        a = agent.act(X[i])
        assert twin.act(X[i]) == a
        agent.update(X[i], a, float(R[i, a]))
        twin.update(X[i], a, float(R[i, a]))
    # the layout of ``written`` under the parameters of ``read`` (as a checkpoint of a version without
    # the pruned pair, or whose "auto" chose otherwise, would be loaded)
    path = _rewrite_params(agent.save(tmp_path / "a.npz"), tmp_path / "b.npz", selection=read)
    resumed = Agent.load(path)
    assert resumed.selection == read and len(resumed._state) == len(twin._state)
    for i in range(600, X.shape[0]):
        a = resumed.act(X[i])
        assert a == twin.act(X[i])
        resumed.update(X[i], a, float(R[i, a]))
        twin.update(X[i], a, float(R[i, a]))
    for i in range(6):  # fcfg, icfg, A, A⁻¹, b, since (6 and 7 are scratch)
        assert np.array_equal(resumed._state[i], twin._state[i]), f"state array {i} differs"


def test_checkpoints_written_before_the_selection_parameter_load_with_auto(tmp_path):
    K, D = 4, 16
    X, R = _stream(400, K, D, seed=11)
    old = _LinUCB(K, D, selection="full", seed=0)  # the only pair before the choice existed
    for i in range(200):
        a = old.act(X[i])
        old.update(X[i], a, float(R[i, a]))
    path = _rewrite_params(old.save(tmp_path / "a.npz"), tmp_path / "old.npz", selection=None)
    resumed = _LinUCB.load(path)
    assert resumed.selection == "auto" and resumed.pruned and len(resumed._state) == 16
    for i in range(200, X.shape[0]):
        a = resumed.act(X[i])
        assert a == old.act(X[i])
        resumed.update(X[i], a, float(R[i, a]))
        old.update(X[i], a, float(R[i, a]))


def test_a_checkpoint_with_a_wrong_array_names_it(tmp_path):
    agent = _LinUCB(4, 16, selection="full", seed=0)
    path = agent.save(tmp_path / "a.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    arrays["s3"] = arrays["s3"][:, :3]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ConfigError, match="s3"):
        _LinUCB.load(bad)  # selection "full": the plain layout's check
    with pytest.raises(ConfigError, match="s3"):
        Agent.load(_rewrite_params(bad, tmp_path / "bad2.npz", selection="pruned"))  # the upgrade's check


def test_copies_keep_the_pair():
    agent = _LinUCB(4, 16, seed=0)
    x = np.linspace(-1.0, 1.0, 16)
    agent.update(x, 2, 1.0)
    for twin in (copy.deepcopy(agent), pickle.loads(pickle.dumps(agent))):
        assert twin.pruned and twin.kernels().select is agent.kernels().select
        assert twin.act(x) == agent.act(x)
        twin.update(x, 1, 0.5)  # the twin's packed buffers are its own
        assert not np.array_equal(twin._state[3][1], agent._state[3][1])
    fresh = agent.clone()
    assert fresh.pruned and fresh.kernels().select is agent.kernels().select
    assert len(fresh._state) == 16 and np.array_equal(fresh._state[2][2], np.eye(16))  # unlearned
