"""EXP3-IX / EXP4-IX kernels against plain-Python references, learning and validation checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idnbandit.agents import EXP3, EXP4, make_agent
from idnbandit.errors import ConfigError


def _loss(r, rmin=-1.0, rmax=1.0):
    return min(1.0, max(0.0, (rmax - r) / (rmax - rmin)))


def _softmax_neg(L, eta):
    m = min(L)
    w = [math.exp(-eta * (v - m)) for v in L]
    s = sum(w)
    return [v / s for v in w]


class EXP3Ref:
    def __init__(self, k, eta=None):
        self.L, self.t, self.eta, self.R = [0.0] * k, 0, eta, 0.0

    def _eta(self, t):
        k = len(self.L)
        return self.eta if self.eta is not None else math.sqrt(2 * math.log(k) / (k * t))

    def _scale(self):
        return 1.0 if self.R <= 0 else max(self.R, 0.05)

    def select(self, x, u):
        p = _softmax_neg(self.L, self._eta(self.t + 1) / self._scale())
        return int(min(np.searchsorted(np.cumsum(p), u[0], side="right"), len(p) - 1))

    def update(self, x, a, r):
        self.t += 1
        if math.isnan(r):
            return
        eta = self._eta(self.t)
        p = _softmax_neg(self.L, eta / self._scale())
        loss = _loss(r)
        self.L[a] += loss / (p[a] + eta / 2)
        self.R = max(self.R, loss)


class EXP4Ref:
    def __init__(self, n_experts, local, forward):
        self.theta = list(np.linspace(0, 1, n_experts))
        self.L, self.t, self.local, self.forward, self.R = [0.0] * n_experts, 0, local, forward, 0.0

    def _eta(self, t):
        return math.sqrt(2 * math.log(len(self.L)) / (2 * t))

    def _scale(self):
        return 1.0 if self.R <= 0 else max(self.R, 0.05)

    def p_local(self, p, eta):
        q = _softmax_neg(self.L, eta)
        return sum(qj for qj, th in zip(q, self.theta) if th <= p)

    def select(self, x, u):
        pl = self.p_local(min(max(x[0], 0), 1), self._eta(self.t + 1) / self._scale())
        return self.local if u[0] < pl else self.forward

    def update(self, x, a, r):
        self.t += 1
        if math.isnan(r) or a not in (self.local, self.forward):
            return
        eta = self._eta(self.t)
        p = min(max(x[0], 0), 1)
        pl = self.p_local(p, eta / self._scale())
        pa = pl if a == self.local else 1 - pl
        loss = _loss(r)
        est = loss / (pa + eta / 2)
        self.L = [v + (est if (th <= p) == (a == self.local) else 0.0) for v, th in zip(self.L, self.theta)]
        self.R = max(self.R, loss)


def _drive(agent, ref, n=1500, seed=0, nan_every=7):
    rng = np.random.default_rng(seed)
    u_rng = np.random.default_rng(agent.seed)
    means = np.linspace(-0.5, 0.5, agent.n_actions)
    for t in range(n):
        x = np.array([rng.random(), 1.0])
        a = agent.act(x)
        assert a == ref.select(x, u_rng.random(agent.n_uniforms)), f"step {t}"
        r = float(np.clip(means[a] + x[0] - 0.5 + 0.3 * rng.standard_normal(), -1, 1))
        if t % nan_every == 0:
            r = math.nan
        agent.update(x, a, r)
        ref.update(x, a, r)


@pytest.mark.parametrize("k, eta", [(2, None), (5, None), (4, 0.3), (1, None)])
def test_exp3_kernel_matches_reference(k, eta):
    _drive(EXP3(k, 2, eta=eta, seed=4), EXP3Ref(k, eta))


@pytest.mark.parametrize("n_actions, local, forward", [(2, 0, -1), (4, 0, -1), (3, 2, 0)])
def test_exp4_kernel_matches_reference(n_actions, local, forward):
    agent = EXP4(n_actions, 2, n_experts=21, local_action=local, forward_action=forward, seed=9)
    _drive(agent, EXP4Ref(21, local % n_actions, forward % n_actions))


def test_exp3_learns_best_arm_with_sublinear_regret():
    agent = EXP3(4, 1, seed=0)
    k = agent.kernels()
    rng = np.random.default_rng(1)
    means = np.array([0.2, 0.5, 0.8, 0.4])
    n = 40_000
    u = agent.rng.random((n, 1))
    pulls = np.empty(n, dtype=np.int64)
    x, rs = np.ones(1), np.full(4, np.nan)
    for t in range(n):
        a = k.select(k.state, x, u[t])
        pulls[t] = a
        r = 1.0 if rng.random() < means[a] else -1.0
        k.update(k.state, x, a, r, rs)
    regret = np.cumsum(means.max() - means[pulls])
    ts = np.geomspace(n // 2, n, 8).astype(int)
    slope = np.polyfit(np.log(ts), np.log(regret[ts - 1]), 1)[0]
    print(f"EXP3-IX regret {regret[-1]:.0f}, slope {slope:.2f}")
    assert np.mean(pulls[-5000:] == 2) > 0.8
    assert slope < 0.8


@pytest.mark.parametrize("spec", ["exp3", "exp4"])
def test_save_load_roundtrip(spec, tmp_path):
    agent = make_agent(spec, n_actions=3, n_features=2, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = np.array([rng.random(), 1.0])
        a = agent.act(x)
        agent.update(x, a, rng.random() - 0.5)
    loaded = type(agent).load(agent.save(tmp_path / "a.npz"))
    for _ in range(100):
        x = np.array([rng.random(), 1.0])
        a = agent.act(x)
        assert loaded.act(x) == a
        r = rng.random() - 0.5
        agent.update(x, a, r)
        loaded.update(x, a, r)


@pytest.mark.parametrize("cls, kwargs, name", [
    (EXP3, {"eta": 0.0}, "eta"),
    (EXP3, {"reward_min": "a"}, "reward_min"),
    (EXP4, {"n_experts": 1}, "n_experts"),
    (EXP4, {"forward_action": 7}, "forward_action"),
])
def test_bad_parameters(cls, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        cls(3, 2, **kwargs)
