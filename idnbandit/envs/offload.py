"""``idnbandit/Offload-v0``: one offloading decision per request, taken at its origin."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..sim.compiled import OPT_NODE
from ..sim.core import C_DECIDE, C_DONE
from ..sim.engine import Engine
from ._common import (
    MAX_BACKLOG_S,
    LazyInfo,
    ResetNeededError,
    build_scenario,
    check_action,
    check_episode_length,
    check_keywords,
    check_reset_seed,
    completion_infos,
    engine_seed,
)
from ._kernels import (
    RES_CODE,
    RES_N,
    RES_ORIGIN,
    RES_REQUEST,
    RES_REWARD,
    RES_SAMPLE,
    offload_resume,
    offload_step,
    out_buffer,
    summarise_rows,
)
from ._render import RENDER_FPS, RENDER_MODES, Marks, RenderMixin, check_render_mode

__all__ = ["OffloadEnv", "observation_bounds", "offload_marks"]


def observation_bounds(context_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 bounds of a context with these entry names (see the env docstring)."""
    low = np.zeros(len(context_names), np.float32)
    high = np.array([MAX_BACKLOG_S if n.startswith("backlog_s") else 1.0 for n in context_names], np.float32)
    return low, high


def offload_marks(env_id: str, scenario, compiled, t: int, episode_length: int, last_action, res: np.ndarray) -> Marks:
    """What a picture of Offload-v0 marks: the option chosen for the last request sent (``res`` is the
    step's summary row, ``last_action`` None before the first step of an episode)."""
    title = f"{env_id} {scenario.name} step {t}/{episode_length}"
    if last_action is None:
        return Marks(title, ("last decision: none yet",))
    o, k = int(res[RES_ORIGIN]), int(last_action)
    node, model = scenario.options(scenario.workload.origins[o])[k]
    return Marks(title, (f"last: request {int(res[RES_REQUEST])} option {k} -> {node}/{model}",
                         f"step reward {float(res[RES_REWARD]):+.3f} ({int(res[RES_N])} requests done)"),
                 chosen=(int(compiled.opt_i[o, k, OPT_NODE]),))


class OffloadEnv(RenderMixin, gym.Env):
    """Choose, for each arriving request, where it is served: locally or on a node up its path.

    Description
    -----------
    Requests arrive at devices of a simulated Inference Delivery Network (the scenario). For each
    request the agent picks one of the K options of its origin (``(node, model)`` pairs, local
    first, then up the path to the root); the simulator serves it there, with queueing, network
    and compute delays, and pays the scenario's reward (accuracy minus latency and cost).
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
    Rewards arrive when the requests' responses do (see "Rewards that arrive after later decisions"
    in ``docs/envs.md``). ``step(a)`` sends the pending request with option ``a``, then advances
    simulated time to the next request arrival, processing every event of every request in flight in
    exact time order (FIFO queues in arrival order, docs/simulator.md ("The event model")). The step's reward is
    the sum of the true rewards ``w_acc * correct - w_lat_per_s * latency_s - w_cost * cost``
    (``correct`` is 0 when late or timed out) of the requests *finalised* in that interval (response
    delivered, or the client's timeout fired): a decision's reward arrives in the step in which its
    response arrives, usually a few steps later, and a step's reward may hold 0, 1 or several requests'
    rewards. At truncation the env drains (every request in flight finishes, no new arrivals) and
    adds their rewards to the last step, so an episode's return is exactly the sum of the rewards of
    its ``episode_length`` requests.

    ``info`` keys: ``request`` (number, in the episode, of the request just sent), ``origin`` and
    ``sample`` (of that request), and ``completed``, the list of requests finalised in the step, in
    completion order, each a dict with ``request``, ``option``, ``origin``, ``sample``,
    ``decided_s`` / ``completed_s`` (simulated seconds), ``outcome`` (dict of
    :class:`~idnbandit.sim.engine.Outcome`: option, node, tier, answer, correct, timeout, late,
    latency_ms, network_ms, queueing_ms, compute_ms, cost, reward), what a learner in the scenario
    would observe per the feedback mode: ``feedback_reward`` (observed reward of the option, ``None``
    when the mode reveals nothing), ``feedback_mask`` ((K,) bool, which options' rewards were
    observed), ``feedback_rewards`` ((K,) float64, observed rewards, 0.0 where the mask is False -- no
    NaN, so that Gymnasium's determinism checks can compare infos), and ``estimates`` ((K,) the
    decision-time estimate of every option's reward, for regret accounting: the outcome each option
    would have had from the state at the decision if nothing else had arrived later). ``info`` is
    built lazily, on first use (:class:`~idnbandit.envs._common.LazyInfo`, a ``dict`` subclass), so
    steps whose ``info`` is never read do not pay for it.

    Starting State
    --------------
    Idle queues and a fresh request stream whose seed is drawn from the env's generator
    (``reset(seed=s)`` makes episodes reproducible); the first observation is the first request.

    Episode End
    -----------
    Never terminates; truncated after ``episode_length`` requests (decisions). The observation
    returned with ``truncated=True`` is that of the next arrival, as if the episode went on (that
    request is then dropped: the env drains without it). Call ``reset()`` before stepping again.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name (``"hi-two-tier"``, ``"idn-4tier"``, ...), a TOML path, or a Scenario.
    episode_length : int
        Requests per episode (default 1000).
    feedback : str, optional
        Override the scenario's feedback mode: ``"full"``, ``"bandit"``, ``"label_on_forward"``
        or ``"proxy"``; it only changes ``info['feedback_*']``.
    render_mode : str, optional
        ``"rgb_array"``: ``render()`` returns a (H, W, 3) uint8 picture of the network (nodes by
        tier, queue backlogs on a log scale from 1 ms to 10 s, the pending request's origin and path
        in white and yellow, the node of the last decision in green); ``"ansi"``: the same as text.
        Pictures are drawn only when ``render()`` is called. ``"human"`` through ``gymnasium.make``
        uses Gymnasium's ``HumanRendering`` wrapper (pygame).

    Unknown keyword arguments raise :class:`~idnbandit.envs._common.UnknownArgumentError` (a
    ``ConfigError`` and ``TypeError``) naming the keyword; ``reset(seed=-1)`` a ``ConfigError``;
    ``step()`` before ``reset()`` or after truncation :class:`~idnbandit.envs._common.ResetNeededError`
    (a ``ConfigError`` and Gymnasium's ``ResetNeeded``). Actions may be ints, numpy integers, or
    integer arrays with one element (what ``model.predict`` of Stable-Baselines3 returns).

    Version History
    ---------------
    * v0: initial version. Since the exact event core (requests FIFO in arrival order), rewards
      arrive with the responses (see Rewards) and ``info`` lists the completed requests; before, a
      step returned the request's own outcome at once. Render modes ``"rgb_array"`` and ``"ansi"``
      were added later (nothing else changed).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def __init__(self, scenario="idn-4tier", episode_length: int = 1000, feedback: str | None = None,
                 render_mode: str | None = None, **unknown):
        check_keywords("OffloadEnv", unknown, ["scenario", "episode_length", "feedback", "render_mode"])
        self.episode_length = check_episode_length(episode_length)
        self.render_mode = check_render_mode(render_mode)
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
        self._last_action = None  # for render() only
        self._ob = np.stack([np.zeros_like(low), low, high])  # observation buffer and its bounds, for the kernel
        self._obs = self._ob[0]
        # the step's summary (row 0, RES_* columns) and its first record rows, written by the kernel
        self._out = out_buffer(self.engine.driver.rs.a["rec"].shape[1])
        self._res = self._out[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=check_reset_seed(seed))
        self.engine.reset(engine_seed(self.np_random))
        self._t = 0
        self._last_action = None
        eng = self.engine
        self._serve(offload_resume(*eng.packs, self._obs, self._low, self._high, self._res, False), False)
        self._started = True
        return self._obs.copy(), {}

    def _serve(self, code: int, last: bool) -> np.ndarray:
        """Python side of a step: serve the core (refills, growth) until the step is done, refresh the
        kernel's arguments; returns a copy of the step's record rows (with those moved out of the packs)."""
        eng = self.engine
        drv = eng.driver
        moved: list[np.ndarray] = []
        while code != C_DECIDE and code != C_DONE:
            drv.serve(code)
            if drv.rs.records:  # a full record buffer was emptied into this list
                moved += drv.rs.records
                drv.rs.records.clear()
            code = offload_resume(*eng.packs, self._obs, self._low, self._high, self._res, last)
        self._kargs = (*eng.packs, self._ob, self._out)
        self._rec = drv.rs.a["rec"]
        rows = self._rec[:int(self._res[RES_N])]
        if not moved:
            return rows.copy()
        rows = np.concatenate([*moved, rows])
        summarise_rows(rows, self._res)
        return rows

    def step(self, action):
        # hot path: one fused kernel call (send, run to the next arrival, observation, reward), a lazy info dict
        if not self._started:
            raise ResetNeededError("step: call reset() before step() (also after a truncated episode)")
        if (type(action) is not int and type(action) is not np.int64) or not 0 <= action < self.n_options:
            action = check_action(action, self.n_options)
        self._last_action = action
        self._t += 1
        last = self._t >= self.episode_length
        r = offload_step(*self._kargs, action, last)
        rows = None
        if r != r:  # NaN: Python must refill or grow, or the step's record rows did not fit in the buffer
            rows = self._serve(int(self._res[RES_CODE]), last)
            r = float(self._res[RES_REWARD])
        if last:
            self._started = False
        return self._obs.copy(), r, False, last, LazyInfo(self._info, self._out.copy(), rows)

    def _info(self, out: np.ndarray, rows: np.ndarray | None) -> dict:
        res = out[0]
        if rows is None:  # the kernel's copy
            rows = out[1:1 + int(res[RES_N]), :self._rec.shape[1]]
        return {"request": int(res[RES_REQUEST]), "origin": int(res[RES_ORIGIN]), "sample": int(res[RES_SAMPLE]),
                "completed": completion_infos(self.scenario, rows, self.n_options)}

    def _render_marks(self) -> Marks:
        return offload_marks("Offload-v0", self.scenario, self.engine.compiled, self._t, self.episode_length,
                             self._last_action, self._res)
