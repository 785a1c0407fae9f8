"""HI learners' numba kernels against plain-Python reference implementations (same uniforms → same
actions), plus parameter validation, clone and save/load of the HI agents."""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest

from idnbandit.agents import HILCB, HILF, HILN, HedgeHI, HedgeHIRestart, HILCBLite, make_agent
from idnbandit.errors import ConfigError


def _loss(r, rmin, rmax):
    return min(1.0, max(0.0, (rmax - r) / (rmax - rmin)))


class _Common:
    """Reference bookkeeping shared by the references: forward-loss mean and loss scale."""

    def __init__(self, local, forward, rmin, rmax):
        self.local, self.forward, self.rmin, self.rmax = local, forward, rmin, rmax
        self.fw_sum, self.fw_n, self.R = 0.0, 0, 0.0

    def scale(self):
        return 1.0 if self.R <= 0 else max(self.R, 0.05)

    def local_loss(self, rewards):
        r = rewards[self.local]
        return math.nan if math.isnan(r) else _loss(r, self.rmin, self.rmax)

    def forward_loss(self, rewards):
        r = rewards[self.forward]
        if not math.isnan(r):
            lf = _loss(r, self.rmin, self.rmax)
            self.fw_sum += lf
            self.fw_n += 1
            self.R = max(self.R, lf)
            return lf
        return self.fw_sum / self.fw_n if self.fw_n else 0.5


def _mass(bps, L, p, eta, length_weighted):
    lmin = min(L)
    a = w_sum = 0.0
    for k, lk in enumerate(L):
        w = math.exp(-eta * (lk - lmin))
        lo, hi = bps[k], bps[k + 1]
        if length_weighted:
            w_sum += w * (hi - lo)
            a += w * (hi - lo) if hi <= p else (w * (p - lo) if lo < p else 0.0)
        else:
            w_sum += w
            a += w if hi <= p else 0.0
    return a, w_sum


class ThresholdRef(_Common):
    """HIL-F (kind 0), HIL-N (kind 1), Hedge-HI (kind 2) with Python lists."""

    def __init__(self, kind, cap=4096, eta=None, eps=None, scale=1.0, local=0, forward=1, rmin=-1.0, rmax=1.0):
        super().__init__(local, forward, rmin, rmax)
        self.kind, self.cap, self.eta, self.eps, self.c = kind, cap, eta, eps, scale
        self.bps, self.L, self.t = [0.0, 1.0], [0.0], 0

    def log_inv_gap(self, n):
        """ln(1/shortest interval of the partition), at least ln(n+1) (the papers' ln(1/λ_min), anytime)."""
        gap = min(b - a for a, b in zip(self.bps, self.bps[1:]))
        return max(math.log(n + 1), -math.log(gap))

    def sched(self, n, t):
        if self.kind == 0:
            return (self.eta if self.eta is not None else math.sqrt(8 * self.log_inv_gap(n) / t)), 0.0
        if self.kind == 1:
            lg = self.log_inv_gap(n)
            eps = self.eps if self.eps is not None else min(1.0, self.c * (lg / t) ** (1 / 3))
            return (self.eta if self.eta is not None else math.sqrt(eps * lg / t)), eps
        eps = self.eps if self.eps is not None else min(1.0, self.c * (n / t) ** (1 / 3))
        return (self.eta if self.eta is not None else math.sqrt(n * eps / t)), eps

    def accept_prob(self, p):
        eta, eps = self.sched(len(self.L), self.t + 1)
        a, w = _mass(self.bps, self.L, p, eta / self.scale(), self.kind != 2)
        return (1 - eps) * a / w

    def select(self, x, u):
        return self.local if u[0] < self.accept_prob(min(max(x[0], 0.0), 1.0)) else self.forward

    def update(self, x, a, rewards):
        p = min(max(x[0], 0.0), 1.0)
        ll = self.local_loss(rewards)
        if self.kind == 0:
            if math.isnan(ll):
                return
            acc = ll
        else:
            q = max(1 - self.accept_prob(p), 1e-6)
            acc = ll / q if (a == self.forward and not math.isnan(ll)) else 0.0
        if not math.isnan(ll):
            self.R = max(self.R, ll)
        lf = self.forward_loss(rewards)
        if p <= 0:
            j = 0
        elif p >= 1:
            j = len(self.L)
        else:
            k = bisect.bisect_right(self.bps, p) - 1
            if self.bps[k] == p:
                j = k
            elif len(self.bps) - 2 < self.cap:
                self.bps.insert(k + 1, p)
                self.L.insert(k + 1, self.L[k])
                j = k + 1
            else:
                j = k if p - self.bps[k] <= self.bps[k + 1] - p else k + 1
        self.L = [lk + (acc if k < j else lf) for k, lk in enumerate(self.L)]
        self.t += 1


class RestartRef(_Common):
    def __init__(self, first_epoch, max_experts, cap, scale=1.0, local=0, forward=1, rmin=-1.0, rmax=1.0):
        super().__init__(local, forward, rmin, rmax)
        self.c, self.me, self.cap = scale, max_experts, cap
        self.seen, self.experts, self.L = [], [0.0, 1.0], [0.0]
        self.epoch_len, self.t_epoch = first_epoch, 0

    def accept_prob(self, p):
        n = len(self.L)
        eps = min(1.0, self.c * (math.log(n + 1) / self.epoch_len) ** (1 / 3))
        eta = math.sqrt(eps * math.log(n + 1) / self.epoch_len)
        a, w = _mass(self.experts, self.L, p, eta / self.scale(), False)
        return (1 - eps) * a / w

    def select(self, x, u):
        return self.local if u[0] < self.accept_prob(min(max(x[0], 0.0), 1.0)) else self.forward

    def update(self, x, a, rewards):
        p = min(max(x[0], 0.0), 1.0)
        q = max(1 - self.accept_prob(p), 1e-6)
        ll = self.local_loss(rewards)
        acc = 0.0
        if not math.isnan(ll):
            self.R = max(self.R, ll)
            acc = ll / q if a == self.forward else 0.0
        lf = self.forward_loss(rewards)
        thetas = self.experts[1:]  # expert k is θ = b_{k+1}
        self.L = [lk + (acc if th <= p else lf) for lk, th in zip(self.L, thetas)]
        if 0 < p < 1 and p not in self.seen and len(self.seen) < self.cap:
            bisect.insort(self.seen, p)
        self.t_epoch += 1
        if self.t_epoch >= self.epoch_len:
            m = len(self.seen)
            chosen = self.seen if m <= self.me else [self.seen[int(round(i * (m - 1) / (self.me - 1)))] for i in range(self.me)]
            self.experts = [0.0, *chosen, 1.0]
            self.L = [0.0] * (len(chosen) + 1)
            self.t_epoch, self.epoch_len = 0, self.epoch_len * 2


class LCBRef(_Common):
    def __init__(self, n_bins, lite, alpha=2.0, local=0, forward=1, rmin=-1.0, rmax=1.0):
        super().__init__(local, forward, rmin, rmax)
        self.nb, self.lite, self.alpha = n_bins, lite, alpha
        self.labels: dict[int, list[float]] = {}
        self.t = 0

    def _bin(self, p):
        return min(int(p * self.nb), self.nb - 1)

    def select(self, x, u):
        if self.fw_n == 0:
            return self.forward
        b = self._bin(min(max(x[0], 0.0), 1.0))
        logt = math.log(max(self.t + 1, 2))
        width = lambda n: self.scale() * math.sqrt(self.alpha * logt / (2 * n))  # noqa: E731
        if self.lite:
            ls = self.labels.get(b, [])
            ucb = sum(ls) / len(ls) + width(len(ls)) if ls else math.inf
        else:
            ucb, pooled = math.inf, []
            for k in range(b, -1, -1):
                if self.labels.get(k):
                    pooled += self.labels[k]
                    ucb = min(ucb, sum(pooled) / len(pooled) + width(len(pooled)))
        return self.local if ucb <= self.fw_sum / self.fw_n else self.forward

    def update(self, x, a, rewards):
        self.t += 1
        self.forward_loss(rewards)
        ll = self.local_loss(rewards)
        if not math.isnan(ll):
            self.R = max(self.R, ll)
            self.labels.setdefault(self._bin(min(max(x[0], 0.0), 1.0)), []).append(ll)


def drive(agent, ref, mode, n=1200, seed=0, local=0, forward=2, n_actions=3):
    """Run agent (step path) and reference side by side on the same stream and uniforms."""
    rng = np.random.default_rng(seed)
    u_rng = np.random.default_rng(agent.seed)
    p_all = np.where(rng.random(n) < 0.5, np.round(rng.random(n), 2), rng.beta(3, 1, n))
    p_all[::97] = 1.0
    p_all[::89] = 0.0
    wrong = rng.random(n) >= p_all
    remote_wrong = rng.random(n) < 0.1
    for t in range(n):
        x = np.array([p_all[t], 0.5])
        a = agent.act(x)
        b = ref.select(x, u_rng.random(agent.n_uniforms))
        assert a == b, f"step {t}: kernel chose {a}, reference {b}"
        rewards = np.full(n_actions, np.nan)
        if mode == "full" or (mode == "label_on_forward" and a == forward):
            rewards[local] = 1.0 - wrong[t]
            rewards[forward] = (0.0 if remote_wrong[t] else 1.0) - 0.3
        elif mode == "bandit":
            rewards[a] = 1.0 - wrong[t] if a == local else (0.0 if remote_wrong[t] else 1.0) - 0.3
        agent.update(x, a, rewards[a], rewards=rewards)
        ref.update(x, a, rewards)
    return agent


MODES = ["full", "label_on_forward", "bandit"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cap", [4096, 12])
def test_hilf_kernel_matches_reference(mode, cap):
    agent = HILF(3, 2, max_breakpoints=cap, seed=5)
    ref = ThresholdRef(0, cap=cap, forward=2)
    drive(agent, ref, mode)
    bp, w = agent.thresholds()
    np.testing.assert_allclose(bp, ref.bps)
    assert len(w) == len(ref.L)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, kind, kwargs", [(HILN, 1, {}), (HILN, 1, {"epsilon": 0.2, "eta": 0.5}),
                                               (HedgeHI, 2, {}), (HedgeHI, 2, {"explore_scale": 1.0})])
def test_label_efficient_kernels_match_reference(mode, cls, kind, kwargs):
    agent = cls(3, 2, max_breakpoints=30, seed=7, **kwargs)
    scale = kwargs.get("explore_scale", agent.explore_scale)
    ref = ThresholdRef(kind, cap=30, eta=kwargs.get("eta"), eps=kwargs.get("epsilon"), scale=scale, forward=2)
    drive(agent, ref, mode)
    np.testing.assert_allclose(agent._state[3][: len(ref.L)], ref.L, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_hedge_restart_kernel_matches_reference(mode):
    agent = HedgeHIRestart(3, 2, first_epoch=16, max_experts=8, max_breakpoints=40, seed=3)
    ref = RestartRef(16, 8, 40, scale=agent.explore_scale, forward=2)
    drive(agent, ref, mode)
    assert agent.n_experts == len(ref.L)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, lite, nb", [(HILCB, False, 50), (HILCBLite, True, 7)])
def test_lcb_kernels_match_reference(mode, cls, lite, nb):
    agent = cls(3, 2, n_bins=nb)
    drive(agent, LCBRef(nb, lite, forward=2), mode)


def test_custom_action_and_confidence_positions():
    agent = HILN(4, 3, confidence_index=-1, local_action=2, forward_action=0, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(300):
        x = np.array([0.0, 5.0, rng.random()])
        a = agent.act(x)
        assert a in (2, 0)
        rewards = np.full(4, np.nan)
        if a == 0:
            rewards[[0, 2]] = [0.7, float(rng.random() < x[2])]
        agent.update(x, a, rewards[a], rewards=rewards)


@pytest.mark.parametrize("spec", ["hil-f", "hil-n", "hedge-hi", "hedge-hi-restart", "hi-lcb", "hi-lcb-lite"])
def test_registry_clone_and_save_roundtrip(spec, tmp_path):
    agent = make_agent(spec, n_actions=3, n_features=2, seed=11)
    rng = np.random.default_rng(1)
    xs = np.column_stack([rng.random(400), np.ones(400)])
    for x in xs[:300]:
        a = agent.act(x)
        agent.update(x, a, 0.7 if a == 2 else float(rng.random() < x[0]), rewards=[float(rng.random() < x[0]), np.nan, 0.7])
    clone = agent.clone()
    assert clone.get_params() == agent.get_params() and clone is not agent
    loaded = type(agent).load(agent.save(tmp_path / spec))
    for x in xs[300:]:
        a = agent.act(x)
        assert loaded.act(x) == a
        agent.update(x, a, 0.5, rewards=[0.5, np.nan, 0.7])
        loaded.update(x, a, 0.5, rewards=[0.5, np.nan, 0.7])


@pytest.mark.parametrize("cls, kwargs, name", [
    (HILF, {"eta": -1.0}, "eta"),
    (HILF, {"max_breakpoints": 0}, "max_breakpoints"),
    (HILN, {"epsilon": 1.5}, "epsilon"),
    (HILN, {"explore_scale": 0}, "explore_scale"),
    (HedgeHI, {"forward_action": 0}, "forward_action"),
    (HedgeHIRestart, {"first_epoch": 0}, "first_epoch"),
    (HedgeHIRestart, {"max_experts": 1}, "max_experts"),
    (HILCB, {"alpha": float("nan")}, "alpha"),
    (HILCBLite, {"n_bins": 0}, "n_bins"),
    (HILCB, {"confidence_index": 5}, "confidence_index"),
    (HILF, {"reward_min": 1.0, "reward_max": 1.0}, "reward_max"),
    (HILF, {"local_action": 3}, "local_action"),
])
def test_bad_parameters_raise_config_error_naming_them(cls, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        cls(3, 2, **kwargs)


def test_single_option_is_rejected():
    with pytest.raises(ConfigError, match="n_actions"):
        HILF(1, 1)


@pytest.mark.parametrize("cls, kwargs, n", [(HILF, {}, 4000), (HILN, {}, 4000), (HedgeHI, {}, 4000),
                                           (HedgeHIRestart, {"first_epoch": 1000}, 6990)])  # end of an epoch
def test_thresholds_concentrate_near_the_best_threshold(cls, kwargs, n):
    # forward loss (1 - 0.4)/2 = 0.3, local loss Y/2 with P(Y) = 1 - p: accept iff p >= 0.4
    agent = cls(2, 1, seed=0, **kwargs)
    rng = np.random.default_rng(0)
    for _ in range(n):
        x = [round(rng.random(), 2)]
        a = agent.act(x)
        agent.update(x, a, np.nan, rewards=[float(rng.random() < x[0]), 0.4])
    bp, w = agent.thresholds()
    assert np.all(np.diff(bp) > 0) and bp[0] == 0.0 and bp[-1] == 1.0
    assert w.sum() == pytest.approx(1.0)
    near = (bp[1:] >= 0.3) & (bp[:-1] <= 0.5)
    assert w[near].sum() > 0.4  # a uniform weighting would put about 0.2 there


@pytest.mark.parametrize("make", [
    lambda: (HILN(2, 1, max_breakpoints=25, seed=2), ThresholdRef(1, cap=25, scale=0.5)),
    lambda: (HedgeHI(2, 1, seed=2), ThresholdRef(2, cap=256, scale=HedgeHI(2, 1).explore_scale)),
    lambda: (HedgeHIRestart(2, 1, first_epoch=10, max_experts=6, seed=2), RestartRef(10, 6, 4096)),
])
def test_delayed_feedback_matches_reference(make):
    """Feedback arriving 3 decisions late: the kernels recompute q with the weights at update time."""
    agent, ref = make()
    rng = np.random.default_rng(5)
    u_rng = np.random.default_rng(2)
    pending = []
    for t in range(900):
        x = np.array([round(rng.random(), 2)])
        a = agent.act(x)
        assert a == ref.select(x, u_rng.random(1)), f"step {t}"
        rewards = np.array([float(rng.random() < x[0]), 0.4]) if a == 1 else np.full(2, np.nan)
        pending.append((x, a, rewards))
        if len(pending) > 3:
            x0, a0, r0 = pending.pop(0)
            agent.update(x0, a0, r0[a0], rewards=r0)
            ref.update(x0, a0, r0)
