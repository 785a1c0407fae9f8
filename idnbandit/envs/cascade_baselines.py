"""Baselines of ``idnbandit/Cascade-v0``: evaluate any policy, and the best static per-hop thresholds.

A *static per-hop threshold policy* serves a request at stop ``h`` of its path iff the current
node's top class probability (``obs[0]``, ``maxprob``) is at least ``theta_h``; the last stop (the
root) always serves. ``theta = (0, ...)`` is "always serve at the origin", ``theta_h > 1`` forwards
from stop ``h`` unconditionally.

>>> from idnbandit.envs.cascade_baselines import PerHopThresholds, evaluate_cascade
>>> ev = evaluate_cascade(PerHopThresholds((0.0, 0.0, 0.0)), scenario="idn-4tier", requests=50, seed=0)
>>> ev.serve_share[0]
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError
from .cascade import CascadeEnv

__all__ = ["CascadeEval", "PerHopThresholds", "evaluate_cascade", "best_per_hop_thresholds", "DEFAULT_GRID"]

#: thresholds tried per hop by :func:`best_per_hop_thresholds` (0 = always serve, 1.01 = always forward)
DEFAULT_GRID = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.01)


class CascadeEval(NamedTuple):
    """Figures of one policy on Cascade-v0 (all requests of all seeds pooled).

    Attributes
    ----------
    mean_reward
        Mean scenario reward per request (= episode return / requests).
    accuracy
        Share of requests answered correctly (in time).
    mean_latency_s
        Mean end-to-end latency (seconds).
    serve_share
        Share of requests served at each stop (index 0 = origin), sums to 1.
    requests
        Requests evaluated (per seed times seeds).
    seed_rewards
        Mean reward per request of each seed's episode (for confidence intervals).
    """

    mean_reward: float
    accuracy: float
    mean_latency_s: float
    serve_share: tuple[float, ...]
    requests: int
    seed_rewards: tuple[float, ...]


class PerHopThresholds:
    """Static policy: serve at stop ``h`` iff ``maxprob >= thresholds[h]``; the root always serves.

    Parameters
    ----------
    thresholds
        One threshold per non-root stop (``n_stops - 1`` values); the stop index is read from the
        observation's ``hop`` entry (``hop / (n_stops - 1)``).
    """

    def __init__(self, thresholds: Sequence[float]):
        th = tuple(float(t) for t in thresholds)
        if not th or not all(np.isfinite(t) for t in th):
            raise ConfigError(f"thresholds: {thresholds!r} is not allowed; give one finite number per non-root stop")
        self.thresholds = th
        self._th32 = np.asarray(th, np.float32)
        self._n = len(th)

    def __call__(self, obs: np.ndarray) -> int:
        h = int(round(float(obs[3]) * self._n))
        if h >= self._n:
            return 0  # the root serves
        return 0 if obs[0] >= self._th32[h] else 1

    def __repr__(self) -> str:
        return f"PerHopThresholds({self.thresholds!r})"


def _as_callable(policy) -> Callable[[np.ndarray], Any]:
    if hasattr(policy, "predict"):  # Stable-Baselines3-like: predict(obs, deterministic=True) -> (action, state)
        return lambda obs: policy.predict(obs, deterministic=True)[0]
    if callable(policy):
        return policy
    raise ConfigError(f"policy: expected a callable obs -> action or an object with .predict, got "
                      f"{type(policy).__name__}")


def _seeds(seed) -> tuple[int, ...]:
    seeds = (seed,) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else tuple(seed)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative integer or a non-empty list of them")
    return tuple(int(s) for s in seeds)


def evaluate_cascade(policy, scenario="idn-4tier", requests: int = 500, seed: int | Sequence[int] = 0,
                     **env_kwargs) -> CascadeEval:
    """Run ``policy`` on Cascade-v0: one episode of ``requests`` requests per seed.

    Parameters
    ----------
    policy
        A callable ``obs -> action`` (0 = serve, 1 = forward), or an object with
        ``predict(obs, deterministic=True) -> (action, state)`` (Stable-Baselines3 models).
    scenario
        Built-in name, TOML path or Scenario.
    requests
        Requests per seed (the episode length; queues carry over within it).
    seed
        ``reset(seed=...)`` of each episode; a list gives one episode per seed.
    **env_kwargs
        Further :class:`~idnbandit.envs.cascade.CascadeEnv` arguments (e.g. ``feedback``).

    Returns
    -------
    CascadeEval

    Raises
    ------
    ConfigError
        On a bad policy, seed, request count or env argument.
    """
    if isinstance(requests, bool) or not isinstance(requests, (int, np.integer)) or requests < 1:
        raise ConfigError(f"requests: {requests!r} is not allowed; use an integer >= 1")
    if "episode_length" in env_kwargs:
        raise ConfigError("episode_length: set by evaluate_cascade (= requests); pass requests=... instead")
    act = _as_callable(policy)
    env = CascadeEnv(scenario, episode_length=int(requests), **env_kwargs)
    n_hops = max(len(s) for s in env._stops)
    served = np.zeros(n_hops, np.int64)
    rewards, correct, latency, per_seed = 0.0, 0, 0.0, []
    for s in _seeds(seed):
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, info = env.step(act(obs))
            total += r
            if info["served"]:
                served[info["hop"]] += 1
            for c in info["completed"]:  # outcomes arrive later; the episode's last step drains the rest
                correct += c["outcome"]["correct"]
                latency += c["outcome"]["latency_ms"] / 1e3
            done = term or trunc
        rewards += total
        per_seed.append(total / requests)
    n = int(served.sum())
    return CascadeEval(float(rewards / n), float(correct / n), float(latency / n),
                       tuple(float(v) for v in served / n), n, tuple(float(v) for v in per_seed))


def best_per_hop_thresholds(scenario="idn-4tier", requests: int = 500, seed: int | Sequence[int] = (0, 1, 2),
                            grid: Sequence[float] = DEFAULT_GRID, passes: int = 3,
                            **env_kwargs) -> tuple[tuple[float, ...], CascadeEval]:
    """The best static per-hop threshold policy, by coordinate search over ``grid``.

    Starts from "always serve at the origin" (all thresholds 0), then, for up to
    ``passes`` rounds, sets each hop's threshold in turn to the grid value with the highest mean
    reward given the others (ties keep the current value), stopping early when a round changes
    nothing. Every candidate is evaluated with :func:`evaluate_cascade` on the same seeds (common
    random numbers). Coordinate search finds a coordinate-wise optimum, not necessarily the grid's
    global one.

    Parameters
    ----------
    scenario, requests, seed, **env_kwargs
        As in :func:`evaluate_cascade` (evaluate on seeds you do not report as held-out).
    grid
        Threshold values tried at every non-root stop.
    passes
        Maximum rounds of coordinate search.

    Returns
    -------
    thresholds
        One threshold per non-root stop.
    evaluation
        The :class:`CascadeEval` of those thresholds on ``seed``.

    Raises
    ------
    ConfigError
        On an empty or non-finite grid, ``passes < 1``, or origins with different numbers of stops.
    """
    values = tuple(float(v) for v in grid)
    if not values or not all(np.isfinite(v) for v in values):
        raise ConfigError(f"grid: {grid!r} is not allowed; give a non-empty list of finite thresholds")
    if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
        raise ConfigError(f"passes: {passes!r} is not allowed; use an integer >= 1")
    probe = CascadeEnv(scenario, episode_length=1, **{k: v for k, v in env_kwargs.items() if k == "feedback"})
    counts = {len(s) for s in probe._stops}
    if len(counts) != 1:
        raise ConfigError(f"scenario: origins have different numbers of stops ({sorted(counts)}); per-hop "
                          "thresholds need one path length")
    n_th = counts.pop() - 1
    scen = probe.scenario
    cache: dict[tuple[float, ...], CascadeEval] = {}

    def score(th: tuple[float, ...]) -> CascadeEval:
        if th not in cache:
            cache[th] = evaluate_cascade(PerHopThresholds(th), scen, requests, seed, **env_kwargs)
        return cache[th]

    if n_th == 0:  # a single stop: nothing to choose
        return (), evaluate_cascade(lambda obs: 0, scen, requests, seed, **env_kwargs)
    best = (0.0,) * n_th
    for _ in range(passes):
        changed = False
        for h in range(n_th):
            for v in values:
                cand = best[:h] + (v,) + best[h + 1:]
                if score(cand).mean_reward > score(best).mean_reward:
                    best, changed = cand, True
        if not changed:
            break
    return best, score(best)
