"""Off-policy estimators of a target policy's mean reward from a decision log, with bootstrap CIs.

For row i of a log (context xᵢ, logged action aᵢ with propensity pᵢ, observed reward rᵢ), a target
policy π gives probabilities π(k | xᵢ); ρᵢ = π(aᵢ | xᵢ) / pᵢ is the importance weight and q̂ a
reward model (:mod:`.reward_model`). The estimators (Dudík, Langford & Li 2011; Swaminathan &
Joachims 2015; Wang, Agarwal & Dudík 2017; Su et al. 2020), with the names used everywhere:

=============  ========================================================  ============================
name           estimate                                                  assumes
=============  ========================================================  ============================
``dm``         mean of Σₖ π(k|xᵢ) q̂(xᵢ, k)                               q̂ correct (no overlap needed)
``ips``        mean of ρᵢ rᵢ                                             overlap, exact propensities
``snips``      Σ ρᵢ rᵢ / Σ ρᵢ                                            overlap (bias O(1/n))
``dr``         mean of Σₖ π q̂ + ρᵢ (rᵢ − q̂(xᵢ, aᵢ))                      overlap or q̂ correct
``switch-dr``  as ``dr``, the correction dropped where ρᵢ > ``tau``      trades variance for bias
``dr-clip``    as ``dr``, with min(ρᵢ, ``clip``) as the weight           trades variance for bias
=============  ========================================================  ============================

``switch-dr`` follows Open Bandit Pipeline's ``SwitchDoublyRobust`` (the log has only the logged
action's propensity, so the switch acts on ρᵢ). Confidence intervals: a Poisson bootstrap (each row
weighted by a Poisson(1) count in each of ``n_boot`` resamples; Chamandy et al. 2012), computed while
streaming (:mod:`._bootstrap`: counts from a hash of the row number, so the interval does not depend
on the chunking); percentile intervals. Rows whose reward was not
observed are refused (``missing="error"``) or dropped (``missing="drop"``, biased: docs/ope.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, LogError, UnknownNameError
from ._bootstrap import CDF, poisson_bootstrap_sums_
from .log import DecisionLog
from .reader import log_chunks
from .reward_model import RidgeRewardModel, SklearnRewardModel

__all__ = ["ESTIMATORS", "Estimate", "Policy", "evaluate", "check_probs", "deterministic_policy", "uniform_policy",
           "sim_value", "observed_rows"]

ESTIMATORS = ("dm", "ips", "snips", "dr", "switch-dr", "dr-clip")
_NEEDS_MODEL = {"dm", "dr", "switch-dr", "dr-clip"}

#: a target policy: contexts (n, d) → probabilities of every option (n, K), rows summing to 1
Policy = Callable[[np.ndarray], np.ndarray]


class Estimate(NamedTuple):
    """One estimator's estimate of one policy's mean reward per decision."""

    policy: str
    estimator: str
    value: float
    ci_low: float  # (1 - alpha) percentile bootstrap interval
    ci_high: float
    std_error: float  # bootstrap standard deviation
    n: int  # rows used
    ess: float  # effective sample size of the importance weights, (Σρ)² / Σρ²


def check_probs(probs, n: int, n_options: int, name: str) -> np.ndarray:
    """``probs`` as an (n, K) float64 array of distributions, or ``ConfigError`` naming policy ``name``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n, n_options):
        raise ConfigError(f"policy {name}: returned shape {p.shape}; expected ({n}, {n_options}) probabilities")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ConfigError(f"policy {name}: returned a negative or non-finite probability")
    s = p.sum(axis=1)
    if np.abs(s - 1.0).max() > 1e-6:
        i = int(np.argmax(np.abs(s - 1.0)))
        raise ConfigError(f"policy {name}: probabilities of row {i} sum to {float(s[i])!r}, not 1")
    return p


def deterministic_policy(choose: Callable[[np.ndarray], np.ndarray], n_options: int) -> Policy:
    """A policy from a function ``choose(x) -> (n,) option indices`` (probability 1 on the choice)."""
    def policy(x: np.ndarray) -> np.ndarray:
        a = np.asarray(choose(x))
        if a.shape != (x.shape[0],) or not np.issubdtype(a.dtype, np.integer) \
                or (a < 0).any() or (a >= n_options).any():
            raise ConfigError(f"policy: choose() must return ({x.shape[0]},) integers in [0, {n_options - 1}]")
        out = np.zeros((x.shape[0], n_options))
        out[np.arange(x.shape[0]), a] = 1.0
        return out
    return policy


def uniform_policy(n_options: int) -> Policy:
    """Every option with probability 1/K."""
    return lambda x: np.full((x.shape[0], n_options), 1.0 / n_options)


def _make_model(reward_model, meta, n_folds: int):
    if isinstance(reward_model, str):
        if reward_model != "ridge":
            raise UnknownNameError("reward model", reward_model, ["ridge"])
        return RidgeRewardModel(meta.n_options, meta.n_features, n_folds=n_folds)
    if all(hasattr(reward_model, m) for m in ("partial_fit", "finish", "predict")):
        return reward_model  # the reward-model protocol of .reward_model (fitted by streaming)
    return SklearnRewardModel(reward_model, meta.n_options, meta.n_features, n_folds=n_folds)


def observed_rows(chunk: DecisionLog, missing: str, source: str) -> np.ndarray:
    """The rows whose reward was observed; LogError on the first other row when ``missing == "error"``."""
    obs = chunk.observed
    if missing == "error" and not obs.all():
        i = int(np.flatnonzero(~obs)[0])
        raise LogError(f"{source}: row {i} (in a chunk) has no observed reward (feedback "
                       f"{chunk.meta.feedback!r}); estimators need the logged action's reward. Pass missing='drop' "
                       "to ignore such rows (biased: docs/ope.md)")
    return obs


def evaluate(log, policies: Mapping[str, Policy] | Policy, *, estimators=ESTIMATORS, reward_model="ridge",
             n_folds: int = 2, n_boot: int = 200, alpha: float = 0.05, tau: float = 10.0, clip: float = 10.0,
             missing: str = "error", seed: int = 0, chunk_rows: int = 65_536,
             n_options: int | None = None) -> list[Estimate]:
    """Estimate each policy's mean reward per decision on ``log`` with each estimator.

    Parameters
    ----------
    log
        A :class:`DecisionLog` or the path of a ``.parquet`` / ``.csv`` log (streamed chunk by chunk).
    policies
        ``{name: policy}`` or one policy; a policy maps contexts (n, d) to probabilities (n, K).
    estimators
        Names from :data:`ESTIMATORS`.
    reward_model
        ``"ridge"`` (streaming, cross-fitted), a scikit-learn regressor (held in memory), or an object
        with ``partial_fit(request, x, action, reward)``, ``finish()`` and ``predict(request, x) -> (n, K)``;
        it is fitted on the log's usable rows here (pass a fresh one).
    n_folds
        Cross-fitting folds of the reward model (1: none).
    n_boot
        Poisson-bootstrap resamples (0: no interval), at most 10,000.
    alpha
        1 − confidence level of the intervals.
    tau, clip
        Weight threshold of ``switch-dr`` and weight cap of ``dr-clip``.
    missing
        ``"error"`` (default) or ``"drop"`` for rows without an observed reward.
    seed
        Seed of the bootstrap.
    n_options
        Number of options of a CSV log without the metadata line.

    Returns
    -------
    list of Estimate
        One per (policy, estimator), policies in the given order.

    Raises
    ------
    LogError
        A bad log (naming row and column), or unobserved rewards with ``missing="error"``.
    ConfigError, UnknownNameError
        Bad arguments, an unknown estimator, or a policy that returns invalid probabilities.
    """
    if callable(policies) and not isinstance(policies, Mapping):
        policies = {"policy": policies}
    if not policies:
        raise ConfigError("policies: give at least one policy")
    estimators = tuple(estimators)
    for e in estimators:
        if e not in ESTIMATORS:
            raise UnknownNameError("estimator", e, ESTIMATORS)
    if not estimators:
        raise ConfigError(f"estimators: give at least one of {', '.join(ESTIMATORS)}")
    if missing not in ("error", "drop"):
        raise ConfigError(f"missing: {missing!r} is not allowed; it must be 'error' or 'drop'")
    for name, v, lo, hi in (("n_boot", n_boot, 0, 10_000), ("chunk_rows", chunk_rows, 1, 10**7)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ConfigError(f"{name}: {v!r} is not allowed; it must be an integer in [{lo}, {hi}]")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed: {seed!r} is not allowed; it must be an integer in [0, 2**63 - 1]")
    for name, v in (("alpha", alpha),):
        if not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ConfigError(f"{name}: {v!r} is not allowed; it must be in (0, 1)")
    for name, v in (("tau", tau), ("clip", clip)):
        if not isinstance(v, (int, float)) or not v > 0 or v != v:
            raise ConfigError(f"{name}: {v!r} is not allowed; it must be a number > 0")
    source = str(log) if not isinstance(log, DecisionLog) else "log"
    names = list(policies)

    model = None
    if _NEEDS_MODEL & set(estimators):  # pass 1: fit the reward model
        for chunk in log_chunks(log, chunk_rows, n_options):
            if model is None:
                model = _make_model(reward_model, chunk.meta, n_folds)
            use = observed_rows(chunk, missing, source)
            model.partial_fit(chunk.request[use], chunk.x[use], chunk.action[use], chunk.reward[use])
        model.finish()

    n_e, n_p = len(estimators), len(names)
    num = np.zeros((n_p, n_e))
    den = np.zeros((n_p, n_e))
    bnum = np.zeros((n_boot, n_p * n_e))
    bden = np.zeros((n_boot, n_p * n_e))
    w_sum = np.zeros(n_p)
    w_sq = np.zeros(n_p)
    n_used = n_dropped = first_row = 0
    for chunk in log_chunks(log, chunk_rows, n_options):  # pass 2: per-row contributions, accumulated
        first_row += chunk.n_rows
        use = observed_rows(chunk, missing, source)
        n_dropped += int((~use).sum())
        if not use.any():
            continue
        x, a, p, r = chunk.x[use], chunk.action[use], chunk.propensity[use], chunk.reward[use]
        n = a.shape[0]
        n_used += n
        q = model.predict(chunk.request[use], x) if model is not None else None
        c = np.zeros((n, n_p, n_e))
        w = np.ones((n, n_p, n_e))
        rows = np.arange(n)
        for j, name in enumerate(names):
            pi = check_probs(policies[name](x), n, chunk.meta.n_options, name)
            rho = pi[rows, a] / p
            w_sum[j] += rho.sum()
            w_sq[j] += (rho * rho).sum()
            dm = (pi * q).sum(axis=1) if q is not None else None
            resid = r - q[rows, a] if q is not None else None
            for e, est in enumerate(estimators):
                if est == "dm":
                    c[:, j, e] = dm
                elif est == "ips":
                    c[:, j, e] = rho * r
                elif est == "snips":
                    c[:, j, e] = rho * r
                    w[:, j, e] = rho
                elif est == "dr":
                    c[:, j, e] = dm + rho * resid
                elif est == "switch-dr":
                    c[:, j, e] = dm + np.where(rho <= tau, rho, 0.0) * resid
                else:  # dr-clip
                    c[:, j, e] = dm + np.minimum(rho, clip) * resid
        num += c.sum(axis=0)
        den += w.sum(axis=0)
        if n_boot:
            rows_used = np.flatnonzero(use) + (first_row - chunk.n_rows)  # row numbers in the log
            _add_bootstrap(rows_used, c.reshape(n, -1), w.reshape(n, -1), seed, bnum, bden)
    if n_used == 0:
        raise LogError(f"{source}: no rows with an observed reward; nothing to estimate from")
    if n_dropped:
        warnings.warn(f"{source}: {n_dropped} rows without an observed reward were dropped; the estimates are "
                      "biased towards the decisions whose reward the feedback reveals (docs/ope.md)", stacklevel=2)
    value = num / den
    out = []
    for j, name in enumerate(names):
        ess = float(w_sum[j] ** 2 / w_sq[j]) if w_sq[j] > 0 else 0.0
        for e, est in enumerate(estimators):
            if n_boot:
                with np.errstate(invalid="ignore", divide="ignore"):
                    boot = bnum[:, j * n_e + e] / bden[:, j * n_e + e]
                boot = boot[np.isfinite(boot)]
                lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2]) if boot.size else (np.nan, np.nan)
                se = float(boot.std(ddof=1)) if boot.size > 1 else float("nan")
            else:
                lo = hi = se = float("nan")
            out.append(Estimate(name, est, float(value[j, e]), float(lo), float(hi), se, n_used, ess))
    return out


def _add_bootstrap(rows: np.ndarray, c: np.ndarray, w: np.ndarray, seed: int, bnum, bden) -> None:
    """Poisson-bootstrap sums of the rows (numbered ``rows`` in the log); contiguous runs in one call."""
    c, w = np.ascontiguousarray(c), np.ascontiguousarray(w)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for s, e in zip(np.r_[0, breaks], np.r_[breaks, rows.shape[0]]):
        poisson_bootstrap_sums_(np.int64(rows[s]), c[s:e], w[s:e], np.uint64(seed), CDF, bnum, bden)


def sim_value(log, policy: Policy, *, chunk_rows: int = 65_536) -> float:
    """The policy's mean reward on the logged requests from a simulated log's ``sim_reward_*`` columns.

    This is the ground truth *at the logged loads*: each option's reward as the simulator estimated it
    at decision time. Running the policy in the simulator changes the loads; the difference between
    the two is the queueing-interaction bias of any OPE of a delivery policy (docs/ope.md).
    """
    total, n = 0.0, 0
    for chunk in log_chunks(log, chunk_rows):
        if not chunk.meta.simulated:
            raise LogError(f"{log if not isinstance(log, DecisionLog) else 'log'}: not a simulated log (no "
                           "sim_reward_* columns); the ground truth exists only in simulation")
        if not chunk.n_rows:
            continue
        pi = check_probs(policy(chunk.x), chunk.n_rows, chunk.meta.n_options, "policy")
        total += float((pi * chunk.sim_rewards).sum())
        n += chunk.n_rows
    if n == 0:
        raise LogError("log: empty")
    return total / n
