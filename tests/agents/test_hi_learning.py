"""Learning tests of the HI learners on a synthetic serve-or-forward stream (issue 4).

The stream mimics ``hi-two-tier``: the local model's confidence p ~ Beta(4, 1.2) rounded to 3
decimals (real traces' max-probabilities take few distinct values), the local answer is correct
with probability ψ(p) = p (calibrated, increasing), the remote answer is taken as truth, offloading
costs beta = 0.3. Rewards as in hi-two-tier: local = correct, forward = remote correct - beta;
agents use their default reward range [-1, 1] (losses halved). Losses and regret below are in the
papers' units: ℓ = (beta + remote wrong)·1{forward} + Y·1{local} (Y = local answer wrong).

Swap the stream: a stream is four arrays (p, local loss, forward loss, expected local loss or None);
:func:`stream_from_trace` builds one from any :class:`~idnbandit.traces.Trace` (the real
``hi-two-tier`` trace once bundled). The whole loop runs compiled (``run_stream``) and takes the
agents' kernels — the fused path.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from idnbandit.agents import EXP4, HILCB, HILF, HILN, HedgeHI, HedgeHIRestart, HILCBLite

BETA = 0.3
N = 50_000
FULL, LABEL_ON_FORWARD = 0, 1


def make_stream(n: int, seed: int, decimals: int | None = 3):
    """(p, local loss, forward loss, expected local loss) of the synthetic stream."""
    rng = np.random.default_rng(seed)
    p = rng.beta(4.0, 1.2, size=n)
    if decimals is not None:
        p = np.round(p, decimals)
    y_wrong = (rng.random(n) >= p).astype(np.float64)
    return p, y_wrong, np.full(n, BETA), 1.0 - p


def stream_from_trace(trace, local: str, remote: str, n: int, seed: int, beta: float = BETA):
    """Requests drawn with replacement from a trace: (p, local loss, forward loss, None)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, trace.labels.shape[0], size=n)
    names = list(trace.model_names)
    correct = trace.correct()
    p = trace.probs[names.index(local)].max(axis=-1).astype(np.float64)[idx]
    local_loss = 1.0 - correct[names.index(local)][idx].astype(np.float64)
    forward_loss = beta + 1.0 - correct[names.index(remote)][idx].astype(np.float64)
    return p, local_loss, forward_loss, None


@njit(cache=True)
def run_stream(select, update, state, p, loss_local, loss_fwd, u, mode):
    """Compiled loop: decide, build the feedback of ``mode``, update. Returns the actions.

    Rewards are 1 - loss (local: correct; forward: remote correct - beta)."""
    n = p.shape[0]
    x = np.empty(1)
    rewards = np.empty(2)
    actions = np.empty(n, dtype=np.int64)
    for t in range(n):
        x[0] = p[t]
        a = select(state, x, u[t])
        actions[t] = a
        if mode == 0 or a == 1:
            rewards[0] = 1.0 - loss_local[t]
            rewards[1] = 1.0 - loss_fwd[t]
        else:
            rewards[0] = np.nan
            rewards[1] = np.nan
        update(state, x, a, rewards[a], rewards)
    return actions


def play(agent, stream, mode):
    p, loss_local, loss_fwd, _ = stream
    k = agent.kernels()
    u = agent.rng.random((p.shape[0], max(1, k.n_uniforms)))
    return run_stream(k.select, k.update, k.state, p, loss_local, loss_fwd, u, mode)


def best_fixed_loss(p, loss_local, loss_fwd):
    """min over thresholds θ of Σ loss_fwd·1{p<θ} + loss_local·1{p>=θ} (θ at the distinct p, or > max)."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    prefix = np.concatenate([[0.0], np.cumsum(loss_fwd[order])])
    suffix = np.concatenate([np.cumsum(loss_local[order][::-1])[::-1], [0.0]])
    ok = np.ones(ps.shape[0] + 1, dtype=bool)
    ok[1:-1] = ps[1:] > ps[:-1]  # a threshold can only sit between distinct values
    return float(np.min((prefix + suffix)[ok]))


def regret_slope(actions, stream, n_points=10):
    """Log–log slope of the cumulative regret vs the best fixed threshold, over the second half.

    With the expected local loss known (synthetic stream) the expected-loss regret (never negative,
    since ψ increasing makes the best threshold attain the pointwise minimum); otherwise the realised
    regret against the best threshold in hindsight of each prefix.
    """
    p, loss_local, loss_fwd, exp_local = stream
    ts = np.unique(np.geomspace(len(p) // 2, len(p), n_points).astype(int))
    if exp_local is not None:
        reg = np.cumsum(np.where(actions == 1, loss_fwd, exp_local) - np.minimum(loss_fwd, exp_local))
        r = reg[ts - 1]
    else:
        got = np.cumsum(np.where(actions == 1, loss_fwd, loss_local))
        r = np.array([got[t - 1] - best_fixed_loss(p[:t], loss_local[:t], loss_fwd[:t]) for t in ts])
    return float(np.polyfit(np.log(ts), np.log(np.maximum(r, 1e-9)), 1)[0]), float(r[-1])


def summary(agent, mode, seed=0, n=N, stream=None):
    stream = make_stream(n, seed) if stream is None else stream
    p, loss_local, loss_fwd, _ = stream
    actions = play(agent, stream, mode)
    loss = np.where(actions == 1, loss_fwd, loss_local)
    gap = loss.mean() - best_fixed_loss(p, loss_local, loss_fwd) / len(p)
    slope, reg = regret_slope(actions, stream)
    return gap, slope, reg


def test_stream_comparator_matches_brute_force():
    p, y, _, _ = make_stream(400, 3, decimals=2)
    fwd = BETA + (np.arange(400) % 7 == 0)
    brute = min(np.sum(np.where(p < th, fwd, y)) for th in np.concatenate([np.unique(p), [2.0]]))
    assert best_fixed_loss(p, y, fwd) == pytest.approx(brute)


# (class, feedback mode, horizon, max gap to the best fixed threshold, max log-log regret slope)
# measured (seeds 0-2, this stream, gap/slope): HIL-F 0.0004-0.0016 / 0.34-0.52; Hedge-HI
# 0.008-0.010 / 0.62-0.72 (0.006-0.007 at 100k); HIL-N 0.013-0.017 / 0.65-0.73; HI-LCB 0.010-0.012 /
# 0.39-0.56 (0.018 at 20k); HI-LCB-lite 0.009-0.011 / 0.29-0.33; Hedge-HI-Restart 0.024-0.027 /
# 0.85-0.88 (restarts from uniform weights inside the second half); EXP4-IX with bandit feedback
# 0.004-0.005 / 0.47-0.50.
CASES = [
    (HILF, FULL, 50_000, 0.01, 0.6),
    (HedgeHI, LABEL_ON_FORWARD, 50_000, 0.01, 0.77),
    (HILN, LABEL_ON_FORWARD, 50_000, 0.02, 0.77),
    (HILCB, LABEL_ON_FORWARD, 50_000, 0.02, 0.77),
    (HILCBLite, LABEL_ON_FORWARD, 50_000, 0.02, 0.77),
    (HedgeHIRestart, LABEL_ON_FORWARD, 50_000, 0.03, None),
    (EXP4, FULL, 50_000, 0.01, 0.6),  # EXP4 reads only the chosen option's reward: bandit feedback
]


@pytest.mark.slow
@pytest.mark.parametrize("cls, mode, n, gap_max, slope_max", CASES)
def test_average_loss_close_to_best_threshold(cls, mode, n, gap_max, slope_max):
    agent = cls(n_actions=2, n_features=1, seed=1)
    gap, slope, reg = summary(agent, mode, seed=1, n=n)
    print(f"{cls.__name__} n={n}: gap={gap:.4f} slope={slope:.3f} pseudo-regret={reg:.1f}")
    assert gap <= gap_max
    if slope_max is not None:
        assert slope <= slope_max
    if cls is HILF:  # the verified bound itself [V:S1]: regret <= √(n ln(1/λ_min)/2), papers' loss units
        u = np.unique(make_stream(n, 1)[0])
        bound = np.sqrt(n * np.log(1.0 / np.diff(u).min()) / 2.0)
        print(f"HILF regret {reg:.1f} vs the published bound {bound:.1f}")
        assert reg <= bound


@pytest.mark.parametrize("cls", [HILF, HILN, HedgeHI, HedgeHIRestart, HILCB, EXP4])
def test_fused_loop_equals_step_path(cls):
    stream = make_stream(1500, 4)
    p, loss_local, loss_fwd, _ = stream
    fused = play(cls(2, 1, seed=3), stream, LABEL_ON_FORWARD)
    agent = cls(2, 1, seed=3)
    for t in range(len(p)):
        a = agent.act([p[t]])
        assert a == fused[t], f"step {t}"
        rewards = [1.0 - loss_local[t], 1.0 - loss_fwd[t]] if a == 1 else [np.nan, np.nan]
        agent.update([p[t]], a, rewards[a], rewards=rewards)


# On a synthetic trace (correlated errors, calibrated, ~20k distinct float32 confidences, remote
# model wrong 3% of the time) standing in for hi-two-tier's bundled trace until it lands.
# Measured gaps (seeds 0-2): HIL-F 0.0008-0.0012, HIL-N 0.015-0.016, HI-LCB 0.006, Hedge-HI 0.014,
# HI-LCB-lite 0.005-0.006, Hedge-HI-Restart 0.036-0.037.
TRACE_CASES = [(HILF, FULL, 0.01), (HILN, LABEL_ON_FORWARD, 0.02), (HILCB, LABEL_ON_FORWARD, 0.02),
               (HedgeHI, LABEL_ON_FORWARD, 0.02)]


@pytest.mark.slow
@pytest.mark.parametrize("cls, mode, gap_max", TRACE_CASES)
def test_on_a_synthetic_trace(cls, mode, gap_max):
    from idnbandit.traces import synthetic_trace

    trace = synthetic_trace(["small", "large"], [0.80, 0.97], n_samples=20_000, n_classes=10, seed=0)
    stream = stream_from_trace(trace, "small", "large", N, seed=1)
    gap, slope, reg = summary(cls(2, 1, seed=1), mode, stream=stream)
    print(f"{cls.__name__} on trace: gap={gap:.4f} realised-regret slope={slope:.3f} regret={reg:.1f}")
    assert gap <= gap_max
