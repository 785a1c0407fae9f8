"""The numba RL kernels (QLearning, SarsaLambda, LinearQ) against plain numpy references.

Each reference is written from the textbook rule (Sutton & Barto 2018, eq. 6.8 and §12.7), not from the kernels:
dense eligibility-trace tables, features built with ``np.prod``. Streams mix one-step (terminal)
updates with full / bandit / no feedback and multi-step episodes (``done=False``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from idnbandit.agents import LinearQ, QLearning, SarsaLambda
from idnbandit.errors import ConfigError


class RefTabular:
    """Dense numpy Q-learning / SARSA(λ) over the documented discretisation."""

    def __init__(self, k, conf_edges, hop_index, hop_bins, load_index, load_edges, eps, alpha, gamma, power,
                 lam=None, q_init=0.0):
        self.k, self.ce, self.hi, self.hb, self.li, self.le = k, np.array(conf_edges), hop_index, hop_bins, \
            load_index, np.array(load_edges)
        self.eps, self.alpha, self.gamma, self.power, self.lam = eps, alpha, gamma, power, lam
        hb = hop_bins if hop_index is not None else 1
        lb = len(load_edges) + 1 if load_index is not None else 1
        self.hb_eff, self.lb = hb, lb
        n = (len(conf_edges) + 1) * hb * lb
        self.q = np.full((n, k), q_init)
        self.n = np.zeros((n, k), np.int64)
        self.e = np.zeros((n, k))
        self.pending = None

    def s(self, x):
        c = int(np.sum(self.ce <= x[0]))
        h = 0 if self.hi is None else int(np.clip(np.floor(x[self.hi] * (self.hb - 1) + 0.5), 0, self.hb - 1))
        ld = 0 if self.li is None else int(np.sum(self.le <= x[self.li]))
        return (c * self.hb_eff + h) * self.lb + ld

    def step(self, s, a):
        n = self.n[s, a]
        return max(self.alpha, n ** -self.power) if self.power > 0 and n > 0 else self.alpha

    def choose(self, x, u):
        s = self.s(x)
        a = min(int(u[1] * self.k), self.k - 1) if u[0] < self.eps else int(np.argmax(self.q[s]))
        if self.lam is not None and self.pending is not None:
            ps, pa, pr = self.pending
            self.trace(ps, pa, pr + self.gamma * self.q[s, a] - self.q[ps, pa], False)
            self.pending = None
        return a

    def trace(self, s, a, delta, terminal):
        self.e[s, :] = 0.0
        self.e[s, a] = 1.0
        self.n[s, a] += 1
        for ss, aa in zip(*np.nonzero(self.e)):
            self.q[ss, aa] += self.step(ss, aa) * delta * self.e[ss, aa]
        self.e *= self.gamma * self.lam
        self.e[self.e < 1e-4] = 0.0
        if terminal:
            self.e[:] = 0.0

    def terminal(self, x, a, r, rewards):
        s = self.s(x)
        if self.lam is not None and self.pending is not None:
            ps, pa, pr = self.pending
            self.trace(ps, pa, pr + self.gamma * self.q[s, int(np.argmax(self.q[s]))] - self.q[ps, pa], False)
            self.pending = None
        for k in range(self.k):
            rk = rewards[k] if not np.isnan(rewards[k]) or k != a else r
            if np.isnan(rk):
                continue
            if self.lam is not None and k == a:
                self.trace(s, a, rk - self.q[s, a], True)
            else:
                self.n[s, k] += 1
                self.q[s, k] += self.step(s, k) * (rk - self.q[s, k])
        self.e[:] = 0.0

    def nonterminal(self, x, a, r, x2):
        s = self.s(x)
        if self.lam is not None:
            if self.pending is not None:
                ps, pa, pr = self.pending
                self.trace(ps, pa, pr + self.gamma * self.q[s, int(np.argmax(self.q[s]))] - self.q[ps, pa], False)
            self.pending = (s, a, r)
            return
        target = r + self.gamma * self.q[self.s(x2)].max()
        self.n[s, a] += 1
        self.q[s, a] += self.step(s, a) * (target - self.q[s, a])


def _episodes(seed, n_eps=150, k=3):
    """Episodes of 1-4 steps over contexts (conf, hop, load, bias); rewards with NaNs and full rows."""
    rng = np.random.default_rng(seed)
    for _ in range(n_eps):
        length = int(rng.integers(1, 5))
        for h in range(length):
            x = np.array([rng.random(), h / 3, rng.random() * 1.5, 1.0])
            rewards = rng.normal(size=k)
            mode = int(rng.integers(0, 3))
            yield x, rewards, mode, h == length - 1


@pytest.mark.parametrize("cls,extra", [(QLearning, {}), (SarsaLambda, {"lam": 0.8})])
@pytest.mark.parametrize("power", [0.0, 1.0])
def test_tabular_kernels_match_numpy_reference(cls, extra, power):
    edges = (0.3, 0.6, 0.9)
    cfg = dict(epsilon=0.2, alpha=0.2, gamma=0.9, visit_power=power, confidence_edges=edges, hop_index=1,
               hop_bins=4, load_index=2, load_edges=(0.5, 1.0))
    agent = cls(3, 4, seed=4, **cfg, **extra)
    ref = RefTabular(3, edges, 1, 4, 2, (0.5, 1.0), 0.2, 0.2, 0.9, power, lam=extra.get("lam"))
    rng = np.random.default_rng(4)  # the agent's uniforms: same seed, same stream
    for x, rewards, mode, last in _episodes(1):
        u = rng.random(2)
        a = agent.act(x)
        assert a == ref.choose(x, u)
        if last:
            r = float(rewards[a]) if mode < 2 else float("nan")
            row = rewards if mode == 0 else None
            agent.update(x, a, r, rewards=row)
            full = rewards.copy() if mode == 0 else np.full(3, np.nan)
            ref.terminal(x, a, r, full)
        else:
            x2 = x.copy()
            x2[1] = min(x[1] + 1 / 3, 1.0)
            agent.update(x, a, float(rewards[a]), next_context=x2, done=False)
            ref.nonterminal(x, a, float(rewards[a]), x2)
        np.testing.assert_allclose(agent.q_table_, ref.q, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(agent.visits_, ref.n)
    assert agent.visits_.sum() > 100


def test_state_discretisation_documented_layout():
    agent = QLearning(2, 4, confidence_edges=(0.5, 0.9), hop_index=1, hop_bins=4, load_index=2, load_edges=(0.1,))
    assert agent.n_states == 3 * 4 * 2
    # conf 0.95 -> bin 2; hop 2/3 -> bin 2; load 0.05 -> bin 0
    assert agent.state_of([0.95, 2 / 3, 0.05, 1.0]) == (2 * 4 + 2) * 2 + 0
    assert agent.state_of([0.5, 0.0, 0.1, 1.0]) == (1 * 4 + 0) * 2 + 1  # edges are inclusive lower bounds
    assert QLearning(2, 4).n_states == 10  # defaults: confidence only


class RefLinearQ:
    def __init__(self, k, idx, basis, degree, n_tilings, tiles, eps, alpha, gamma):
        self.k, self.idx, self.basis = k, list(idx), basis
        self.degree, self.T, self.tiles = degree, n_tilings, tiles
        self.eps, self.alpha, self.gamma = eps, alpha, gamma
        n = len(self.idx)
        if basis == "poly":
            self.monos = [()]
            for d in range(1, degree + 1):
                self.monos += list(itertools.combinations_with_replacement(range(n), d))
            self.w = np.zeros((k, len(self.monos)))
        else:
            self.w = np.zeros((k, n_tilings * (tiles + 1) ** n + 1))

    def phi(self, x):
        z = x[self.idx]
        if self.basis == "poly":
            return np.array([np.prod([z[i] for i in m]) if m else 1.0 for m in self.monos])
        f = np.zeros(self.w.shape[1])
        side = self.tiles + 1
        for t in range(self.T):
            c = np.floor(np.clip(z, 0, 1) * self.tiles + ((2 * np.arange(len(z)) + 1) * t % self.T) / self.T)
            c = np.minimum(c, side - 1).astype(int)
            f[t * side ** len(z) + int(np.sum(c * side ** np.arange(len(z))))] = 1.0
        f[-1] = 1.0
        return f

    def choose(self, x, u):
        if u[0] < self.eps:
            return min(int(u[1] * self.k), self.k - 1)
        return int(np.argmax(self.w @ self.phi(x)))

    def learn(self, x, a, target):
        p = self.phi(x)
        self.w[a] += self.alpha * (target - self.w[a] @ p) * p / (p @ p)


@pytest.mark.parametrize("basis,kw", [("poly", {"degree": 3}), ("tile", {"n_tilings": 4, "tiles": 5})])
def test_linear_q_matches_numpy_reference(basis, kw):
    idx = (0, 1, 2)
    agent = LinearQ(3, 4, basis=basis, feature_indices=idx, epsilon=0.2, alpha=0.3, gamma=0.9, seed=9, **kw)
    ref = RefLinearQ(3, idx, basis, kw.get("degree", 2), kw.get("n_tilings", 8), kw.get("tiles", 8), 0.2, 0.3, 0.9)
    rng = np.random.default_rng(9)
    for x, rewards, mode, last in _episodes(2, n_eps=120):
        a = agent.act(x)
        assert a == ref.choose(x, rng.random(2))
        if last:
            r = float(rewards[a]) if mode < 2 else float("nan")
            agent.update(x, a, r, rewards=rewards if mode == 0 else None)
            for k in range(3):
                rk = rewards[k] if mode == 0 else (r if k == a else np.nan)
                if not np.isnan(rk):
                    ref.learn(x, k, rk)
        else:
            x2 = x.copy()
            x2[1] = min(x[1] + 1 / 3, 1.0)
            agent.update(x, a, float(rewards[a]), next_context=x2, done=False)
            ref.learn(x, a, float(rewards[a]) + 0.9 * np.max(ref.w @ ref.phi(x2)))
        np.testing.assert_allclose(agent.coef_, ref.w, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(agent.q_values(x), ref.w @ ref.phi(x), rtol=1e-10, atol=1e-10)


def test_episodic_update_arguments_are_checked():
    agent = QLearning(2, 3, hop_index=1)
    x = np.array([0.9, 0.0, 1.0])
    with pytest.raises(ConfigError, match="next_context"):
        agent.update(x, 0, 0.0, done=False)
    with pytest.raises(ConfigError, match="done"):
        agent.update(x, 0, 0.0, next_context=x, done="no")
    with pytest.raises(ConfigError, match="context"):
        agent.update(x, 0, 0.0, next_context=np.zeros(5), done=False)
    with pytest.raises(ConfigError, match="hop_index"):
        QLearning(2, 3, hop_index=3)
    with pytest.raises(ConfigError, match="confidence_edges"):
        QLearning(2, 3, confidence_edges=(0.9, 0.5))
    with pytest.raises(ConfigError, match="feature_indices"):
        LinearQ(2, 6, basis="tile")  # 6 entries > 4 for tiles
    with pytest.raises(ConfigError, match="basis"):
        LinearQ(2, 3, basis="fourier")
    from idnbandit.agents.base import Agent

    assert QLearning.episodic and not Agent.episodic


def test_bootstrap_propagates_value_backwards():
    """Two-step chain: forward (reward 0) then serve (reward 1): Q(hop 0, forward) learns gamma * 1."""
    agent = QLearning(2, 3, epsilon=0.0, alpha=0.5, gamma=0.9, hop_index=1, hop_bins=2)
    x0, x1 = np.array([0.1, 0.0, 1.0]), np.array([0.1, 1.0, 1.0])
    for _ in range(60):
        agent.update(x1, 0, 1.0)  # serve at hop 1
        agent.update(x0, 1, 0.0, next_context=x1, done=False)  # forward at hop 0
    assert agent.q_values(x0)[1] == pytest.approx(0.9, abs=1e-6)


@pytest.mark.parametrize("module", ["idnbandit.agents.qlearning", "idnbandit.agents.linear_q"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
