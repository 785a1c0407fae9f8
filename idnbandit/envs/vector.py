"""``idnbandit/Offload-v0`` as a :class:`gymnasium.vector.VectorEnv` whose copies all step in one kernel call.

>>> import gymnasium as gym, idnbandit
>>> envs = gym.make_vec("idnbandit/Offload-v0", num_envs=4, vectorization_mode="vector_entry_point",
...                     scenario="hi-two-tier", episode_length=50)
>>> obs, infos = envs.reset(seed=0)
>>> obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
>>> obs.shape, rewards.shape
((4, 4), (4,))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..errors import ConfigError
from ..sim.core import C_DECIDE, C_DONE
from ..sim.workload import BLOCK
from ._common import ResetNeededError, check_keywords, check_reset_seed, engine_seed
from ._kernels import (
    N_RES,
    RES_CORRECT,
    RES_COST,
    RES_FEEDBACK_N,
    RES_FEEDBACK_SUM,
    RES_LATENCY_S,
    RES_N,
    RES_REQUEST,
    RES_REWARD,
    offload_resume,
    pack_address,
    summarise_rows,
    vec_offload_step,
)
from ._render import RENDER_FPS, RENDER_MODES, Picture, render_picture
from .offload import OffloadEnv, offload_marks

__all__ = ["OffloadVectorEnv", "MAX_NUM_ENVS"]

MAX_NUM_ENVS = 4096  # copies of one vector env (each holds its own engine, ~0.2 MB and up)


class OffloadVectorEnv(VectorEnv):
    """``num_envs`` independent copies of :class:`~idnbandit.envs.offload.OffloadEnv`, stepped together.

    Copy ``i`` is exactly the single environment reset with seed ``seed + i`` (its own request
    stream, background load and queues; the same observations, rewards and truncations step for
    step, including after autoresets). One numba call sends the pending request of every copy, runs
    each to its next request arrival (draining the copies whose episode ends) and writes the batched
    observation; Python only refills request blocks and background-job blocks, grows a copy's state,
    and resets finished copies. Rewards follow the single env: a step's reward is the summed true
    reward of the copy's requests finalised during the step (see "Rewards that arrive after later
    decisions" in ``docs/envs.md``).

    Autoreset follows Gymnasium's default ``AutoresetMode.NEXT_STEP``: after a copy reports
    ``truncated``, the next ``step`` resets it (its action is ignored, its reward is 0) and returns
    the first observation of its new episode. Episodes never terminate.

    Parameters
    ----------
    num_envs : int
        Number of copies (1 to ``MAX_NUM_ENVS`` = 4096).
    scenario, episode_length, feedback
        As for :class:`~idnbandit.envs.offload.OffloadEnv`.
    render_mode : str, optional
        ``"rgb_array"`` or ``"ansi"``: ``render()`` returns a tuple with the picture of every copy
        (as Gymnasium's ``SyncVectorEnv`` does), drawn as for the single env.

    Notes
    -----
    ``infos`` (per Gymnasium's vector convention, arrays with ``_key`` masks that are False for the
    copies reset in that step) sums up each copy's requests finalised in the step: ``n_completed``
    (int), ``n_correct`` (int), ``latency_ms_sum``, ``cost_sum``, ``n_feedback`` (how many had an
    observed feedback reward) and ``feedback_reward_sum`` (their summed observed reward), and
    ``request`` (the number of the request the step sent). The per-request list of the single env's
    ``info["completed"]`` is not batched. Each copy keeps its state in its own engine (about 0.2 MB
    on ``idn-4tier``, more while many requests are in flight); the kernel reaches it through a table
    of addresses that is refreshed whenever Python re-allocates a copy's state.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def __init__(self, num_envs: int = 1, scenario="idn-4tier", episode_length: int = 1000,
                 feedback: str | None = None, render_mode: str | None = None, **unknown):
        check_keywords("OffloadVectorEnv", unknown, ["num_envs", "scenario", "episode_length", "feedback",
                                                     "render_mode"])
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
                or not 1 <= num_envs <= MAX_NUM_ENVS:
            raise ConfigError(f"num_envs: {num_envs!r} is not allowed; use an integer in [1, {MAX_NUM_ENVS}]")
        proto = OffloadEnv(scenario, episode_length=episode_length, feedback=feedback, render_mode=render_mode)
        n = self.num_envs = int(num_envs)
        self.scenario, self.episode_length, self.render_mode = proto.scenario, proto.episode_length, proto.render_mode
        self.context_names, self.n_options = proto.context_names, proto.n_options
        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._low, self._high = proto._low, proto._high
        self.engines = [proto.engine] + [proto.engine.clone() for _ in range(n - 1)]
        for e in self.engines:
            e.first_block = BLOCK  # full request blocks: fewer Python refills
        self._gens: list[np.random.Generator | None] = [None] * n
        self._obs = np.zeros((n, len(self.context_names)), np.float32)
        self._res = np.zeros((n, N_RES))
        self._codes = np.zeros(n, np.int64)
        self._addr = np.zeros((n, 4), np.int64)  # per copy: SF address, size, SI address, size
        self._t = np.zeros(n, np.int64)
        self._autoreset = np.zeros(n, bool)
        self._started = False
        self._last_actions = np.full(n, -1, np.int64)  # for render() only (-1: none yet in the episode)
        self._picture: Picture | None = None

    def _serve(self, i: int, code: int, last: bool) -> None:
        """Serve copy ``i``'s core until its step is done (as the single env does), refresh its address."""
        e = self.engines[i]
        drv = e.driver
        moved: list[np.ndarray] = []
        while code != C_DECIDE and code != C_DONE:
            drv.serve(code)
            if drv.rs.records:
                moved += drv.rs.records
                drv.rs.records.clear()
            code = offload_resume(*e.packs, self._obs[i], self._low, self._high, self._res[i], last)
        _, _, sf, si = e.packs
        pack_address(sf, si, self._addr[i])
        if moved:
            rec = drv.rs.a["rec"]
            summarise_rows(np.concatenate([*moved, rec[:int(self._res[i, RES_N])]]), self._res[i])

    def _reset_copy(self, i: int) -> None:
        e = self.engines[i]
        e.reset(engine_seed(self._gens[i]))
        self._t[i] = 0
        self._last_actions[i] = -1
        self._serve(i, offload_resume(*e.packs, self._obs[i], self._low, self._high, self._res[i], False), False)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every copy; ``seed`` as in Gymnasium (None, an int ``s`` giving ``s + i``, or a list).

        ``options`` is accepted for the API and ignored (no ``reset_mask``: copies autoreset themselves).
        """
        n = self.num_envs
        if seed is None:
            seeds = [None] * n
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [check_reset_seed(seed) + i for i in range(n)]
        else:
            if not isinstance(seed, (list, tuple, np.ndarray)):
                raise ConfigError(f"seed: {seed!r} is not allowed; use None, an integer >= 0 or a list of "
                                  f"{n} of them")
            seeds = [check_reset_seed(s) for s in seed]
            if len(seeds) != n:
                raise ConfigError(f"seed: a list of seeds needs num_envs={n} entries, got {len(seeds)}")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        for i, s in enumerate(seeds):
            if s is not None or self._gens[i] is None:
                self._gens[i] = seeding.np_random(s)[0]
            self._reset_copy(i)
        self._autoreset[:] = False
        self._started = True
        return self._obs.copy(), {}

    def step(self, actions):
        """Step every copy (NEXT_STEP autoreset); returns batched obs, rewards, terminations, truncations, infos."""
        if not self._started:
            raise ResetNeededError("step: call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer) or a.dtype == bool \
                or (a.size and (a.min() < 0 or a.max() >= self.n_options)):
            raise ConfigError(f"actions: {actions!r} is not allowed; give {self.num_envs} integers in "
                              f"[0, {self.n_options})")
        a = a.astype(np.int64, copy=False)
        resetting = self._autoreset
        active = ~resetting
        self._last_actions[active] = a[active]
        self._t[active] += 1
        last = active & (self._t >= self.episode_length)
        codes, res = self._codes, self._res
        vec_offload_step(self.engines[0].packs[0], self.engines[0].packs[1], self._addr, a, active, last, self._obs,
                         self._low, self._high, codes, res)
        for i in np.flatnonzero(active & (codes != C_DECIDE) & (codes != C_DONE)):
            self._serve(int(i), int(codes[i]), bool(last[i]))
        for i in np.flatnonzero(resetting):
            self._reset_copy(int(i))
        rewards = np.where(active, res[:, RES_REWARD], 0.0)
        self._autoreset = last
        infos = {"n_completed": res[:, RES_N].astype(np.int64), "_n_completed": active,
                 "n_correct": res[:, RES_CORRECT].astype(np.int64), "_n_correct": active,
                 "latency_ms_sum": res[:, RES_LATENCY_S] * 1e3, "_latency_ms_sum": active,
                 "cost_sum": res[:, RES_COST].copy(), "_cost_sum": active,
                 "n_feedback": res[:, RES_FEEDBACK_N].astype(np.int64), "_n_feedback": active,
                 "feedback_reward_sum": res[:, RES_FEEDBACK_SUM].copy(), "_feedback_reward_sum": active,
                 "request": res[:, RES_REQUEST].astype(np.int64), "_request": active}
        return self._obs.copy(), rewards, np.zeros(self.num_envs, bool), last.copy(), infos

    def render(self) -> tuple | None:
        """The picture of every copy (a tuple of (H, W, 3) uint8 arrays or strings), None without a render mode."""
        if self.render_mode is None:
            return None
        if self._picture is None:
            self._picture = Picture(self.scenario)
        out = []
        for i, e in enumerate(self.engines):
            last = None if self._last_actions[i] < 0 else int(self._last_actions[i])
            marks = offload_marks(f"Offload-v0 [{i}]", self.scenario, e.compiled, int(self._t[i]), self.episode_length,
                                  last, self._res[i])
            out.append(render_picture(self._picture, e, marks, self.render_mode))
        return tuple(out)
