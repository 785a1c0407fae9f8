"""A multi-agent IDN over the simulator, with PettingZoo's AEC API: every decision node is an agent.

PettingZoo is an optional dependency (``pip install 'idnbandit[multiagent]'``); this module imports
it when loaded, and ``import idnbandit`` never loads this module.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import ConfigError, require
from ..sim.kernels import bg_ready, commit, new_scratch, new_state, prepare
from ..sim.multihop import multihop_layout
from ..sim.multihop_kernels import DEC_VALID, ST_DEC, ST_M, ST_OPT0, stop_context, stop_feedback
from ..sim.workload import CHUNK, BackgroundSource, RequestStream
from ._common import (
    MAX_BACKLOG_S,
    build_scenario,
    check_action,
    check_episode_length,
    engine_seed,
    feedback_info,
)

require("pettingzoo", "multiagent")
from gymnasium import spaces  # noqa: E402
from pettingzoo import AECEnv  # noqa: E402

from ..sim.engine import outcome_from_row, resolve_inputs  # noqa: E402

__all__ = ["MultiAgentIDNEnv", "env"]


class MultiAgentIDNEnv(AECEnv):
    """Every node on a request's path decides: serve with its model(s) or forward to the next node.

    Description
    -----------
    The agents are the scenario's *decision nodes* (:func:`idnbandit.sim.multihop.multihop_layout`):
    every node on a request's path that can forward or choose among its models (the phones and the
    edge in ``shared-edge``; the cloud, a root with one model, serves what reaches it). Requests
    arrive one at a time (the scenario's arrival process); a request starts at its origin and the
    node that holds it is the acting agent (``agent_selection``). Serving commits the request in
    the simulator (queues carry over to later requests); forwarding hands it to the next decision
    node, which acts next.

    Why AEC and not Parallel: requests are asynchronous and each is held by exactly one node at a
    time, so exactly one agent acts at each step and *which* agent acts is decided by the
    environment (where the next request arrives, where it was forwarded), not by a round-robin
    or by all agents at once. That is the Agent-Environment-Cycle model; a Parallel env would force
    every node to submit an action for a request it does not hold.

    Action Space
    ------------
    ``Discrete(A)`` for every agent: ``j < M`` serves with the node's ``j``-th model, ``M`` forwards
    (A = the largest ``M + 1``; on nodes with fewer valid actions the extra ones stand for the last
    valid action, see :mod:`idnbandit.sim.multihop`).

    Observation Space
    -----------------
    ``Box(0, 10, (F,), float32)``: the multi-hop context of :mod:`idnbandit.sim.multihop` at the time
    the request reaches the node: the node's model confidence (``maxprob``, ``margin``,
    ``entropy``), the backlog (s, clipped to 10) of the node each action leads to (if the scenario's
    ``context.load``), with ``scope="shared"`` the node-identity indicators (for parameter-sharing
    learners), and the bias 1.0. ``observation_names`` lists the entries.

    Rewards
    -------
    When a request is served, every agent that decided on it receives the request's true reward
    (``w_acc * correct - w_lat_per_s * latency_s - w_cost * cost``): a cooperative reward credited
    to the nodes that handled the request. Forwarding earns nothing at that step; the forwarder's
    reward arrives when the request is served (AEC accumulates it until the agent's next turn).
    ``infos[agent]`` of the deciding agents after a serve has ``outcome`` (dict), ``origin``,
    ``sample``, ``request`` and the node's own feedback under the scenario's feedback mode
    (``feedback_reward``, ``feedback_mask``, ``feedback_rewards``).

    Starting State
    --------------
    Idle queues, a fresh request stream seeded from the env's generator, the first request that
    needs a decision at its first decision node.

    Episode End
    -----------
    Never terminates; every agent is truncated once ``episode_length`` requests have been served.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name, TOML path or Scenario (default ``"shared-edge"``).
    episode_length : int
        Requests per episode (default 200).
    scope : str
        ``"per-node"`` (default; no identity features) or ``"shared"`` (identity features, for a
        learner shared by all agents).
    feedback : str, optional
        Override the scenario's feedback mode (changes ``infos`` only).

    Version History
    ---------------
    * v0: initial version.
    """

    metadata = {"render_modes": [], "name": "idnbandit_multiagent_v0", "is_parallelizable": False}

    def __init__(self, scenario="shared-edge", episode_length: int = 200, scope: str = "per-node",
                 feedback: str | None = None, render_mode: str | None = None):
        super().__init__()
        if render_mode is not None:
            raise ConfigError(f"render_mode: {render_mode!r} is not allowed; this env does not render (use None)")
        self.render_mode = None
        self.episode_length = check_episode_length(episode_length)
        self.scenario, self._trace, self._c = resolve_inputs(build_scenario(scenario, feedback), None)
        self.layout = lay = multihop_layout(self.scenario, scope)
        self.scope = lay.scope
        self.possible_agents = list(lay.nodes)
        self.observation_names = lay.context_names
        self._obs_space = spaces.Box(0.0, MAX_BACKLOG_S, (lay.n_features,), dtype=np.float32)
        self._act_space = spaces.Discrete(lay.n_actions)
        self._np_random = None
        self._obs = {a: np.zeros(lay.n_features, np.float32) for a in self.possible_agents}
        self.agents = []

    @functools.cache  # noqa: B019 - one space object per agent, as PettingZoo expects
    def observation_space(self, agent):
        return self._obs_space

    @functools.cache  # noqa: B019
    def action_space(self, agent):
        return self._act_space

    def observe(self, agent):
        return self._obs[agent].copy()

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None or self._np_random is None:
            self._np_random = np.random.default_rng(seed)
        run_seed = engine_seed(self._np_random)
        c = self._c
        self._stream = RequestStream(self.scenario, c.feat.shape[1], run_seed)
        self._bg = BackgroundSource(self.scenario, run_seed)
        self._st, self._sc = new_state(c), new_scratch(c)
        self._chunk, self._pos = None, CHUNK
        lay = self.layout
        self._x = np.zeros(lay.n_features)
        self._vals, self._rs = np.zeros(lay.n_actions), np.zeros(lay.n_actions)
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        for a in self.agents:
            self._obs[a][:] = 0.0
        self.served = 0
        self._skip_agent_selection = None
        self._next_request()

    def _next_request(self) -> None:
        """Advance to the next request that needs a decision (serving the others) and select its node."""
        c = self._c
        while True:
            if self._pos >= CHUNK:
                self._chunk, self._pos = self._stream.next_chunk(), 0
            t, o, s = (a[self._pos] for a in self._chunk)
            self._pos += 1
            t, o, s = float(t), int(o), int(s)
            if not bg_ready(c, self._st, t):
                rate = max(self._bg.max_rate, 1e-12)
                self._st = self._bg.top_up(self._st, t + c.timeout_s + min(60.0, 65536 / rate))
            prepare(c, self._st, self._sc, o, s, t)
            self._req, self._h, self._decs = (o, s, t), 0, []
            if self._arrive():
                return
            if self.served >= self.episode_length:
                return

    def _arrive(self) -> bool:
        """The request reached stop ``_h``: select its decision node (True) or serve it there (False)."""
        o, s, t = self._req
        stop_i = self.layout.stop_i
        d = int(stop_i[o, self._h, ST_DEC])
        if d < 0:
            self._serve(int(stop_i[o, self._h, ST_OPT0]))
            return False
        lay = self.layout
        stop_context(self._c, self._st, self._sc, stop_i, lay.dec_i, lay.mh_i, self._x, o, s, t, self._h)
        agent = self.possible_agents[d]
        self._obs[agent][:] = np.clip(self._x, 0.0, MAX_BACKLOG_S)
        self.agent_selection = agent
        return True

    def _serve(self, k: int) -> None:
        o, s, t = self._req
        lay = self.layout
        commit(self._c, self._st, self._sc, o, k, s, t)
        outcome = outcome_from_row(self.scenario, k, self._sc.out)
        for h, d, a, e in self._decs:
            r_obs = stop_feedback(self._c, self._sc, lay.stop_i, lay.dec_i, self._vals, self._rs, o, h, a, e)
            agent = self.possible_agents[d]
            self.rewards[agent] += float(outcome.reward)
            self.infos[agent] = {"outcome": outcome._asdict(), "origin": o, "sample": s, "request": self.served,
                                 **feedback_info(r_obs, self._rs.copy())}
        self.served += 1
        if self.served >= self.episode_length:
            for a in self.agents:
                self.truncations[a] = True

    def step(self, action) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        lay = self.layout
        a = check_action(action, lay.n_actions)
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        o = self._req[0]
        d = self.possible_agents.index(agent)
        valid = int(lay.dec_i[d, DEC_VALID])
        e = a if a < valid else valid - 1
        self._decs.append((self._h, d, a, e))
        m = int(lay.stop_i[o, self._h, ST_M])
        if e < m:
            self._serve(int(lay.stop_i[o, self._h, ST_OPT0]) + e)
            if self.served < self.episode_length:
                self._next_request()
        else:
            self._h += 1
            if not self._arrive() and self.served < self.episode_length:
                self._next_request()
        if self.served >= self.episode_length:
            self.agent_selection = self.agents[0]
        self._accumulate_rewards()

    def render(self):
        return None

    def close(self):
        pass


def env(**kwargs) -> MultiAgentIDNEnv:
    """Build a :class:`MultiAgentIDNEnv` (PettingZoo's ``env()`` convention)."""
    return MultiAgentIDNEnv(**kwargs)
