"""The linear agents' packed step path: state buffers, in-kernel validation and fallbacks.

LinUCB, ε-greedy and LinTS keep their state in two buffers (``base.pack_state``) and run ``act`` /
``update`` through one compiled call each. These tests hold that path to the tuple kernels of the
fused path bit for bit, and check that every input the fast call rejects still gets the typed error
(or the conversion) of the full validation, without touching the state.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from conftest import feedback, make_stream

from idnbandit.agents import EpsilonGreedy, LinTS, LinUCB
from idnbandit.agents.base import pack_state
from idnbandit.agents.epsilon_greedy import epsilon_greedy_views
from idnbandit.agents.lints import lints_views
from idnbandit.agents.linucb import linucb_views
from idnbandit.errors import ConfigError

PACKED = [
    (LinUCB, {"alpha": 0.7, "ridge": 0.5, "refactor_every": 13}, linucb_views),
    (EpsilonGreedy, {"epsilon": 0.3, "decay": 0.01, "refactor_every": 11}, epsilon_greedy_views),
    (LinTS, {"v": 0.3, "ridge": 2.0}, lints_views),
]
IDS = [c.__name__ for c, _, _ in PACKED]
K, D = 3, 5


def test_pack_state_copies_values_and_returns_views():
    a = np.arange(6.0).reshape(2, 3)
    i = np.array([4, 5], dtype=np.int64)
    c = np.array([7.0])
    fbuf, ibuf, views = pack_state((a, i, c), header=(9, 8))
    assert list(ibuf[:2]) == [9, 8]
    assert list(ibuf[2:5]) == [0, 5, 6]  # offsets of a (fbuf), i (ibuf, after the 5 header/offset slots), c
    for v, ref in zip(views, (a, i, c)):
        assert v.shape == ref.shape and v.dtype == ref.dtype
        np.testing.assert_array_equal(v, ref)
    views[0][1, 2] = -1.0
    assert fbuf[5] == -1.0 and a[1, 2] == 5.0  # views share the buffer, the inputs are copied
    with pytest.raises(TypeError, match="state\\[1\\]"):
        pack_state((a, np.zeros(2, dtype=np.float32)))


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_compiled_views_are_the_python_views(cls, params, views):
    agent = cls(n_actions=K, n_features=D, seed=0, **params)
    got = views(agent._fbuf, agent._ibuf)
    assert len(got) == len(agent._state)
    for v, ref in zip(got, agent._state):
        assert v.shape == ref.shape and v.dtype == ref.dtype
        assert v.ctypes.data == ref.ctypes.data  # the very same memory


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_step_path_equals_tuple_kernels_bit_for_bit(cls, params, views):
    xs, rewards, mode = make_stream(400, K, D, seed=3)
    agent = cls(n_actions=K, n_features=D, seed=4, **params)
    twin = cls(n_actions=K, n_features=D, seed=4, **params)
    kern = twin.kernels()
    u_all = twin.rng.random((xs.shape[0], kern.n_uniforms))
    for i in range(xs.shape[0]):
        a = agent.act(xs[i])
        assert a == kern.select(kern.state, xs[i].copy(), u_all[i]), f"step {i}"
        r, rs = feedback(rewards[i], a, mode[i])
        agent.update(xs[i], a, r, rewards=rs)
        if rs is None:
            rs = np.full(K, np.nan)
            rs[a] = r
        kern.update(kern.state, xs[i].copy(), a, r, rs)
    for s0, s1 in zip(agent._state, kern.state):
        assert np.array_equal(s0, s1, equal_nan=True)


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_rejected_fast_calls_take_the_validating_path(cls, params, views):
    rng = np.random.default_rng(0)
    xs = rng.random((60, D))
    fast = cls(n_actions=K, n_features=D, seed=1, **params)
    other = cls(n_actions=K, n_features=D, seed=1, **params)
    wide = np.zeros((60, 2 * D))
    wide[:, ::2] = xs
    for i in range(60):
        x = xs[i]
        # the same float64 values as a list, a strided view, a read-only array, a row of a 2-D array
        variants = (x.tolist(), wide[i, ::2], np.frombuffer(x.tobytes()), x.reshape(1, D)[0])
        a = fast.act(x)
        b = other.act(variants[i % len(variants)])
        assert a == b
        r = float(i % 3 - 1)
        fast.update(x, a, r)
        r_other = (int(r), np.float64(r), np.float32(r))[i % 3]  # other reward types of the same value
        other.update(variants[(i + 1) % len(variants)], np.int64(b), r_other)
    for s0, s1 in zip(fast._state, other._state):
        np.testing.assert_array_equal(s0, s1)


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_bad_step_inputs_raise_and_leave_the_state_alone(cls, params, views):
    agent = cls(n_actions=K, n_features=D, seed=0, **params)
    x = np.linspace(0.1, 0.5, D)
    agent.update(x, 1, 0.5)
    before = agent._fbuf.copy(), agent._ibuf.copy()
    bad_x = x.copy()
    bad_x[2] = np.nan
    cases = [
        (lambda: agent.act(bad_x), "context"),
        (lambda: agent.act(np.ones(D + 1)), "context"),
        (lambda: agent.act("x"), "context"),
        (lambda: agent.update(bad_x, 0, 1.0), "context"),
        (lambda: agent.update(np.ones(D - 1), 0, 1.0), "context"),
        (lambda: agent.update(x, K, 1.0), "action"),
        (lambda: agent.update(x, -1, 1.0), "action"),
        (lambda: agent.update(x, True, 1.0), "action"),
        (lambda: agent.update(x, 0, np.inf), "reward"),
        (lambda: agent.update(x, 0, "high"), "reward"),
    ]
    for call, name in cases:
        with pytest.raises(ConfigError, match=name):
            call()
    np.testing.assert_array_equal(agent._fbuf, before[0])
    np.testing.assert_array_equal(agent._ibuf, before[1])


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_load_and_reset_keep_state_packed(cls, params, views, tmp_path):
    xs = np.random.default_rng(2).random((30, D))
    agent = cls(n_actions=K, n_features=D, seed=5, **params)
    for i in range(20):
        agent.update(xs[i], agent.act(xs[i]), float(xs[i, 0]))
    loaded = cls.load(agent.save(tmp_path / "a.npz"))
    for ag in (agent, loaded):
        got = views(ag._fbuf, ag._ibuf)
        assert all(v.ctypes.data == s.ctypes.data for v, s in zip(got, ag._state))
    for i in range(20, 30):
        a = agent.act(xs[i])
        assert a == loaded.act(xs[i])
        agent.update(xs[i], a, 0.3)
        loaded.update(xs[i], a, 0.3)
    for s0, s1 in zip(agent._state, loaded._state):
        np.testing.assert_array_equal(s0, s1)
    agent.reset()
    fresh = cls(n_actions=K, n_features=D, seed=5, **params)
    for s0, s1 in zip(agent._state, fresh._state):
        np.testing.assert_array_equal(s0, s1)
    assert all(v.ctypes.data == s.ctypes.data for v, s in zip(views(agent._fbuf, agent._ibuf), agent._state))


@pytest.mark.parametrize("cls,params,views", PACKED, ids=IDS)
def test_copies_stay_packed(cls, params, views):
    xs = np.random.default_rng(3).random((20, D))
    agent = cls(n_actions=K, n_features=D, seed=6, **params)
    for i in range(10):
        agent.update(xs[i], agent.act(xs[i]), 0.5)
    snapshot = agent._fbuf.copy()
    for twin in (copy.deepcopy(agent), pickle.loads(pickle.dumps(agent))):  # noqa: S301 - our own bytes
        assert all(v.ctypes.data == s.ctypes.data for v, s in zip(views(twin._fbuf, twin._ibuf), twin._state))
        ref = copy.deepcopy(agent)
        for i in range(10, 20):
            a = twin.act(xs[i])
            assert a == ref.act(xs[i])
            twin.update(xs[i], a, 0.2)
            ref.update(xs[i], a, 0.2)
        for s0, s1 in zip(twin._state, ref._state):
            np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(agent._fbuf, snapshot)  # the copies' learning leaves the original alone
