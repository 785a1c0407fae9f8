"""``idnbandit/Offload-v0`` as a :class:`gymnasium.vector.VectorEnv` whose copies all step in one kernel call.

>>> import gymnasium as gym, idnbandit
>>> envs = gym.make_vec("idnbandit/Offload-v0", num_envs=4, vectorization_mode="vector_entry_point",
...                     scenario="hi-two-tier", episode_length=50)
>>> obs, infos = envs.reset(seed=0)
>>> obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
>>> obs.shape, rewards.shape
((4, 5), (4,))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..errors import ConfigError
from ..sim.packed import BLOCK
from ._common import engine_seed
from ._kernels import vec_offload_step, write_obs
from .offload import OffloadEnv

__all__ = ["OffloadVectorEnv"]


class OffloadVectorEnv(VectorEnv):
    """``num_envs`` independent copies of :class:`~idnbandit.envs.offload.OffloadEnv`, stepped together.

    Copy ``i`` is exactly the single environment reset with seed ``seed + i`` (its own request
    stream, background load and queues; the same observations, rewards and truncations step for
    step, including after autoresets). One numba call serves the pending request of every copy,
    moves each to its next request and writes the batched observation; Python only refills request
    blocks and background-job windows, and resets finished copies.

    Autoreset follows Gymnasium's default ``AutoresetMode.NEXT_STEP``: after a copy reports
    ``truncated``, the next ``step`` resets it (its action is ignored, its reward is 0) and returns
    the first observation of its new episode. Episodes never terminate.

    Parameters
    ----------
    num_envs : int
        Number of copies.
    scenario, episode_length, feedback, render_mode
        As for :class:`~idnbandit.envs.offload.OffloadEnv`.

    Notes
    -----
    ``infos`` (per Gymnasium's vector convention, arrays with ``_key`` masks that are False for the
    copies reset in that step) holds the true outcome's ``correct``, ``latency_ms`` and ``cost``,
    and the feedback: ``feedback_observed`` (bool) and ``feedback_reward`` (0.0 where not observed).
    The per-option feedback and counterfactuals of the single env's ``info`` are not batched.
    Non-Poisson arrival processes keep a whole request chunk (65,536 requests) per copy in memory.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, scenario="idn-4tier", episode_length: int = 1000,
                 feedback: str | None = None, render_mode: str | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ConfigError(f"num_envs: {num_envs!r} is not allowed; use an integer >= 1")
        proto = OffloadEnv(scenario, episode_length=episode_length, feedback=feedback, render_mode=render_mode)
        n = self.num_envs = int(num_envs)
        self.scenario, self.episode_length, self.render_mode = proto.scenario, proto.episode_length, None
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
        self._out = np.zeros((n, 6))
        self._t = np.zeros(n, np.int64)
        self._autoreset = np.zeros(n, bool)
        self._sf2 = self._si2 = None
        self._place_all()
        self._started = False

    def _place_all(self) -> None:
        """(Re)allocate the (num_envs, width) state arrays and move every copy's state into its row."""
        nf = max(e.pack_sizes()[0] for e in self.engines)
        ni = max(e.pack_sizes()[1] for e in self.engines)
        self._sf2, self._si2 = np.zeros((self.num_envs, nf)), np.zeros((self.num_envs, ni), np.int64)
        for i, e in enumerate(self.engines):
            e.move_state(self._sf2[i], self._si2[i])

    def _place(self, i: int) -> None:
        """Keep copy ``i``'s state in its row (after a background window grew and the engine re-allocated)."""
        e = self.engines[i]
        if e._SF.base is self._sf2:
            return
        nf, ni = e.pack_sizes()
        if nf > self._sf2.shape[1] or ni > self._si2.shape[1]:
            self._place_all()
        else:
            e.move_state(self._sf2[i], self._si2[i])

    def _reset_copy(self, i: int) -> None:
        e = self.engines[i]
        e.reset(engine_seed(self._gens[i]))
        self._t[i] = 0
        self._advance_copy(i)

    def _advance_copy(self, i: int) -> None:
        e = self.engines[i]
        e.advance()
        write_obs(e._sc.x, self._low, self._high, self._obs[i])
        self._place(i)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every copy; ``seed`` as in Gymnasium (None, an int ``s`` giving ``s + i``, or a list).

        ``options`` is accepted for the API and ignored (no ``reset_mask``: copies autoreset themselves).
        """
        n = self.num_envs
        if seed is None:
            seeds = [None] * n
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
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
            raise ConfigError("step: call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer) or a.dtype == bool \
                or (a.size and (a.min() < 0 or a.max() >= self.n_options)):
            raise ConfigError(f"actions: {actions!r} is not allowed; give {self.num_envs} integers in "
                              f"[0, {self.n_options})")
        a = a.astype(np.int64, copy=False)
        resetting = self._autoreset
        active = ~resetting
        out = self._out
        vec_offload_step(self.engines[0]._CF, self.engines[0]._CI, self._sf2, self._si2, a, active, self._obs,
                         self._low, self._high, out)
        for i in np.flatnonzero(active & (out[:, 5] == 0.0)):
            self._advance_copy(int(i))
        for i in np.flatnonzero(resetting):
            self._reset_copy(int(i))
        rewards = np.where(active, out[:, 0], 0.0)
        self._t[active] += 1
        truncated = active & (self._t >= self.episode_length)
        self._autoreset = truncated
        fr = out[:, 4]
        seen = active & ~np.isnan(fr)
        infos = {"correct": out[:, 1] > 0, "_correct": active, "latency_ms": out[:, 2] * 1e3, "_latency_ms": active,
                 "cost": out[:, 3].copy(), "_cost": active, "feedback_observed": seen, "_feedback_observed": active,
                 "feedback_reward": np.where(seen, fr, 0.0), "_feedback_reward": active}
        return self._obs.copy(), rewards, np.zeros(self.num_envs, bool), truncated.copy(), infos
