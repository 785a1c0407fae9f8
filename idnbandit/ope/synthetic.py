"""A synthetic contextual-bandit log with a known truth, for trying and testing estimators.

Contexts are uniform in [0, 1]^d; option k's mean reward is linear, ``x · w_k + b_k``; rewards add
Gaussian noise. The logging policy is ``"uniform"``, ``"softmax"`` (a temperature-1/3 softmax of the
mean rewards, mixed with 20 % uniform so every option keeps probability >= 0.2/K) or ``"egreedy"``
(the best option with probability 1 − ε + ε/K). Every option's realised reward is in
``sim_rewards``, and :func:`synthetic_log` also returns the mean-reward table, so a target policy's
true value is known exactly.

Examples
--------
>>> from idnbandit.ope import synthetic_log
>>> log, mean = synthetic_log(1000, n_options=3, n_features=2, seed=0)
>>> log.n_rows, mean.shape
(1000, (1000, 3))
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .log import DecisionLog
from .schema import LogMeta

__all__ = ["synthetic_log", "LOGGING_POLICIES"]

LOGGING_POLICIES = ("uniform", "softmax", "egreedy")


def synthetic_log(n: int, n_options: int = 3, n_features: int = 2, *, logging: str = "softmax",
                  epsilon: float = 0.1, noise: float = 0.3, seed: int = 0) -> tuple[DecisionLog, np.ndarray]:
    """``(log, mean)``: a simulated log of ``n`` decisions and the (n, K) mean reward of every option."""
    for name, v, lo, hi in (("n", n, 1, 10**8), ("n_options", n_options, 1, 1000), ("n_features", n_features, 1, 1000)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ConfigError(f"{name}: {v!r} is not allowed; it must be an integer in [{lo}, {hi}]")
    if logging not in LOGGING_POLICIES:
        raise ConfigError(f"logging: {logging!r} is not allowed; it must be one of {', '.join(LOGGING_POLICIES)}")
    if not 0 < epsilon <= 1:
        raise ConfigError(f"epsilon: {epsilon!r} is not allowed; it must be in (0, 1]")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, n_features))
    w = np.linspace(-1, 1, n_options * n_features).reshape(n_options, n_features)
    mean = x @ w.T + np.linspace(0, 0.3, n_options)
    if logging == "uniform":
        probs = np.full((n, n_options), 1 / n_options)
    elif logging == "softmax":
        z = 3 * mean
        probs = np.exp(z - z.max(axis=1, keepdims=True))
        probs = 0.2 / n_options + 0.8 * probs / probs.sum(axis=1, keepdims=True)
    else:
        probs = np.full((n, n_options), epsilon / n_options)
        probs[np.arange(n), mean.argmax(axis=1)] += 1 - epsilon
    a = np.minimum((rng.uniform(size=(n, 1)) > probs.cumsum(axis=1)).sum(axis=1), n_options - 1)
    all_r = mean + rng.normal(0, noise, (n, n_options))
    meta = LogMeta(n_options=n_options, n_features=n_features, simulated=True, policy=logging,
                   scenario="synthetic-linear")
    rows = np.arange(n)
    log = DecisionLog(meta, rows.astype(np.int64), rows * 0.01, np.zeros(n, np.int64), x, a.astype(np.int64),
                      probs[rows, a], np.ones(n, bool), all_r[rows, a], all_r)
    return log, mean
