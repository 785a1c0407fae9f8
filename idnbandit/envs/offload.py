"""``idnbandit/Offload-v0``: one offloading decision per request, taken at its origin."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..sim.engine import Engine, outcome_from_row
from ..sim.kernels import N_OUT, OUT_REWARD
from ._common import (
    MAX_BACKLOG_S,
    LazyInfo,
    build_scenario,
    check_action,
    check_episode_length,
    engine_seed,
    feedback_info,
)
from ._kernels import REC_FR, REC_OUT, offload_step, record_size, write_obs

__all__ = ["OffloadEnv", "observation_bounds"]


def observation_bounds(context_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 bounds of a context with these entry names (see the env docstring)."""
    low = np.zeros(len(context_names), np.float32)
    high = np.array([MAX_BACKLOG_S if n.startswith("backlog_s") else 1.0 for n in context_names], np.float32)
    return low, high


class OffloadEnv(gym.Env):
    """Choose, for each arriving request, where it is served: locally or on a node up its path.

    Description
    -----------
    Requests arrive at devices of a simulated Inference Delivery Network (the scenario). For each
    request the agent picks one of the K options of its origin (``(node, model)`` pairs, local
    first, then up the path to the root); the simulator serves it there, with queueing, network
    and compute delays, and pays the scenario's reward (accuracy minus latency and cost, DESIGN §2).
    This is the contextual-bandit problem of the library as a Gymnasium environment; queues carry
    over between requests, so decisions affect later latencies.

    Action Space
    ------------
    ``Discrete(K)``: option index (0 = serve at the origin with its local model). K is the same for
    every origin of a scenario (``hi-two-tier``: 2, ``idn-4tier``: 4).

    Observation Space
    -----------------
    ``Box(low, high, (F,), float32)``, the simulator's context of the request:

    ===================  ===============================================  =========  =========
    entry                meaning                                          low        high
    ===================  ===============================================  =========  =========
    ``maxprob``          top class probability of the local model         0          1
    ``margin``           top-1 minus top-2 probability                    0          1
    ``entropy``          entropy / log(C)                                 0          1
    ``backlog_s[k]``     seconds until option k's node has a free server  0          10 (clip)
    ``bias``             constant 1                                       0          1
    ===================  ===============================================  =========  =========

    The confidence entries are present when ``scenario.context.confidence`` is on, the backlogs
    (one per option) when ``scenario.context.load`` is on; ``env.unwrapped.context_names`` lists them.
    Backlogs are clipped to ``MAX_BACKLOG_S`` = 10 s.

    Rewards
    -------
    The scenario reward of the request's true outcome:
    ``w_acc * correct - w_lat_per_s * latency_s - w_cost * cost`` (``correct`` is 0 when late or
    timed out). ``info`` also holds what a learner in the scenario would observe instead, per the
    feedback mode, so bandit learners can train on the feedback rather than on the true reward.

    ``info`` keys: ``outcome`` (dict of :class:`~idnbandit.sim.engine.Outcome`: option, node, tier,
    answer, correct, timeout, late, latency_ms, network_ms, queueing_ms, compute_ms, cost, reward),
    ``feedback_reward`` (observed reward of the action, ``None`` when the mode reveals nothing),
    ``feedback_mask`` ((K,) bool, which options' rewards were observed), ``feedback_rewards``
    ((K,) float64, observed rewards, 0.0 where the mask is False -- no NaN, so that Gymnasium's
    determinism checks can compare infos), ``counterfactual_rewards``
    ((K,) true reward of every option, for regret accounting only), ``origin`` and ``sample``
    (of the request that was served), ``request`` (index in the episode). ``info`` is built lazily,
    on first use (:class:`~idnbandit.envs._common.LazyInfo`, a ``dict`` subclass), so steps whose
    ``info`` is never read do not pay for it.

    Starting State
    --------------
    Idle queues and a fresh request stream whose seed is drawn from the env's generator
    (``reset(seed=s)`` makes episodes reproducible); the first observation is the first request.

    Episode End
    -----------
    Never terminates; truncated after ``episode_length`` requests.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name (``"hi-two-tier"``, ``"idn-4tier"``, ...), a TOML path, or a Scenario.
    episode_length : int
        Requests per episode (default 1000).
    feedback : str, optional
        Override the scenario's feedback mode: ``"full"``, ``"bandit"``, ``"label_on_forward"``
        or ``"proxy"``; it only changes ``info['feedback_*']``.

    Version History
    ---------------
    * v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario="idn-4tier", episode_length: int = 1000, feedback: str | None = None,
                 render_mode: str | None = None):
        self.episode_length = check_episode_length(episode_length)
        if render_mode is not None:
            from ..errors import ConfigError

            raise ConfigError(f"render_mode: {render_mode!r} is not allowed; this env does not render (use None)")
        self.render_mode = None
        self.scenario = build_scenario(scenario, feedback)
        self.engine = Engine(self.scenario)
        self.n_options = self.engine.n_options
        self.context_names = list(self.engine.context_names)
        self.action_space = spaces.Discrete(self.n_options)
        low, high = observation_bounds(self.context_names)
        self._low, self._high = low, high
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._t = 0
        self._started = False
        self._ob = np.stack([np.zeros_like(low), low, high])  # observation buffer and its bounds, for the kernel
        self._obs = self._ob[0]
        self._rec = np.zeros(record_size(self.n_options))
        self._reward_at = REC_OUT + OUT_REWARD

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        eng = self.engine
        eng.reset(engine_seed(self.np_random))
        self._t = 0
        self._started = True
        self._refill()
        return self._obs.copy(), {}

    def _refill(self) -> None:
        """Python side of a step: next request after a refill, its observation, the kernel's arguments."""
        eng = self.engine
        eng.advance()
        write_obs(eng._sc.x, self._low, self._high, self._obs)
        self._kargs = (*eng.packs, self._ob, self._rec)

    def step(self, action):
        # hot path: one fused kernel call (serve, record, next request, observation), a lazy info dict
        if not self._started:
            from ..errors import ConfigError

            raise ConfigError("step: call reset() before step()")
        if (type(action) is not int and type(action) is not np.int64) or not 0 <= action < self.n_options:
            action = check_action(action, self.n_options)
        r = offload_step(*self._kargs, action)
        if r != r:  # NaN: the request block or a background window ran out
            self._refill()
            r = float(self._rec[self._reward_at])
        self._t += 1
        return (self._obs.copy(), r, False, self._t >= self.episode_length,
                LazyInfo(self._info, self._rec.copy(), int(action), self._t - 1))

    def _info(self, rec: np.ndarray, action: int, request: int) -> dict:
        k = self.n_options
        b = REC_OUT + N_OUT
        out = outcome_from_row(self.scenario, action, rec[REC_OUT:b])
        return {"outcome": out._asdict(), **feedback_info(float(rec[REC_FR]), rec[b:b + k]),
                "counterfactual_rewards": rec[b + k:b + 2 * k], "origin": int(rec[b + 2 * k]),
                "sample": int(rec[b + 2 * k + 1]), "request": request}
