"""A multi-agent IDN over the simulator, with PettingZoo's AEC API: every decision node is an agent.

PettingZoo is an optional dependency (``pip install 'idnbandit[multiagent]'``); this module imports
it when loaded, and ``import idnbandit`` never loads this module.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import ConfigError, require
from ..sim.compiled import resolve_inputs
from ..sim.core import C_DECIDE, C_DELIVER, C_DONE
from ..sim.engine import outcome_from_row
from ..sim.loop import Driver, advance, decide, delivered
from ..sim.metrics import S_COUNT, S_REWARD
from ..sim.multihop import multihop_layout
from ..sim.multihop_kernels import ST_DEC
from ..sim.stages import OUT_REWARD
from ..sim.state import (
    DL_A,
    DL_G,
    J_G,
    J_O,
    J_STOP,
    M_DL_SLOT,
    M_PEND_JOB,
    M_PEND_ROW,
    M_PEND_SLOT,
    M_REC_N,
    R_G,
    R_OPTION,
    R_ORIGIN,
    R_OUT,
    R_SAMPLE,
    R_T_COMPLETE,
    R_T_DECISION,
)
from ..sim.workload import RequestBlocks
from ._common import (
    MAX_BACKLOG_S,
    build_scenario,
    check_action,
    check_episode_length,
    check_keywords,
    check_reset_seed,
    engine_seed,
    feedback_info,
)

require("pettingzoo", "multiagent")
from gymnasium import spaces  # noqa: E402
from pettingzoo import AECEnv  # noqa: E402

__all__ = ["MultiAgentIDNEnv", "env"]


class MultiAgentIDNEnv(AECEnv):
    """Every node on a request's path decides: serve with its model(s) or forward to the next node.

    Description
    -----------
    The agents are the scenario's *decision nodes* (:func:`idnbandit.sim.multihop.multihop_layout`):
    every node on a request's path that can forward or choose among its models (the phones and the
    edge in ``shared-edge``; the cloud, a root with one model, serves what reaches it). The simulator
    runs in its multi-hop mode (``simulate(..., scope=...)``, docs/simulator.md ("The event model")): requests
    arrive at their origins (the scenario's arrival process) and climb their paths; a node decides
    **when the request arrives at it** (at the origin: its arrival time; higher up: after the up
    transmissions), from the state at that time. Decisions of different requests interleave in
    simulated time, and the acting agent (``agent_selection``) is the node whose decision is the
    next one in simulated time. Serving sends the request into the node's FIFO; forwarding sends it
    up the node's uplink to the next stop, whose node decides when it gets there.

    Why AEC and not Parallel: decisions happen one at a time at asynchronous simulated times, and
    *which* node decides next is decided by the environment (where the next request or forwarded
    request arrives), not by a round-robin or by all agents at once. That is the
    Agent-Environment-Cycle model; a Parallel env would force every node to submit an action for a
    request it does not hold.

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
    A cooperative reward credited to the nodes that handled a request: once a request is finalised
    (its response reaches the client, or the client's timeout fires), every agent that decided on
    it receives the request's true reward (``w_acc * correct - w_lat_per_s * latency_s - w_cost *
    cost``) when its feedback is delivered, as in :func:`~idnbandit.sim.simulate`: just before the
    next decision at or after the completion (plus the scenario's feedback delay). That is usually
    during later steps of other agents; AEC accumulates an agent's rewards until its next turn
    (``env.last()``). ``infos[agent]["completed"]`` lists the agent's decisions whose feedback was
    delivered since its last turn, each a dict with ``request``, ``action``, ``origin``, ``sample``,
    ``arrived_s`` / ``completed_s`` (the request's arrival at its origin and its completion,
    simulated seconds), ``outcome`` (dict) and the node's own feedback under the scenario's
    feedback mode (``feedback_reward``, ``feedback_mask``, ``feedback_rewards``, NaN-free).
    ``reward_sum`` / ``n_completed`` hold the summed true reward and the number of the episode's
    requests finalised so far (each request once).

    Starting State
    --------------
    Idle queues, a fresh request stream seeded from the env's generator, the first decision pending.

    Episode End
    -----------
    Never terminates. An episode admits ``episode_length`` requests; after the last one arrived the
    simulation runs on (no new arrivals) until every one of them is finalised and every feedback
    delivered, then every agent is truncated. So the agents' rewards cover every request of the
    episode.

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
    * v0: initial version. Since the exact event core, a node decides when the request arrives at
      it (interleaved in time with other requests) and rewards arrive with the feedback deliveries;
      before, a request's route was decided and served at once, and its reward credited at once.
    """

    metadata = {"render_modes": [], "name": "idnbandit_multiagent_v0", "is_parallelizable": False}

    def __init__(self, scenario="shared-edge", episode_length: int = 200, scope: str = "per-node",
                 feedback: str | None = None, render_mode: str | None = None, **unknown):
        super().__init__()
        check_keywords("MultiAgentIDNEnv", unknown, ["scenario", "episode_length", "scope", "feedback", "render_mode"])
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
        self._drv = None
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
        seed = check_reset_seed(seed)
        if seed is not None or self._np_random is None:
            self._np_random = np.random.default_rng(seed)
        run_seed = engine_seed(self._np_random)
        c, lay = self._c, self.layout
        src = RequestBlocks(self.scenario, c.feat.shape[1], run_seed)
        self._drv = Driver(c, self.scenario, run_seed, self.episode_length, layout=lay, n_actions=lay.n_actions,
                           n_features=lay.n_features, curve_points=1, record=True, requests=src.next_block,
                           delivery_log=False)
        self._deciders: dict[int, list[int]] = {}  # request -> decision nodes that decided on it, in order
        self._finals: dict[int, np.ndarray] = {}  # request -> its record row, until its feedback is delivered
        self._pend = (-1, -1)  # (request, decision node) of the pending decision
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {"completed": []} for a in self.agents}
        for a in self.agents:
            self._obs[a][:] = 0.0
        self.decisions = 0
        self._skip_agent_selection = None
        self.agent_selection = self.agents[0]
        if not self._run():
            self._end()

    @property
    def reward_sum(self) -> float:
        """Summed true reward of the episode's requests finalised so far (each request once)."""
        return 0.0 if self._drv is None else float(self._drv.rs.a["sums"][S_REWARD])

    @property
    def n_completed(self) -> int:
        """The episode's requests finalised so far."""
        return 0 if self._drv is None else int(self._drv.rs.a["sums"][S_COUNT])

    def _run(self) -> bool:
        """Run the simulation to the next decision and select its node (True), or to the episode's end (False);
        feedback deliveries on the way credit their agents."""
        drv = self._drv
        rs = drv.rs
        while True:
            CF, CI, SF, SI = drv.packs  # noqa: N806
            code = advance(CF, CI, SF, SI)
            self._take_records()
            if code == C_DECIDE:
                m, a = rs.imisc, rs.a
                j = int(m[M_PEND_JOB])
                o, h = int(a["job_i"][j, J_O]), int(a["job_i"][j, J_STOP])
                d = int(self.layout.stop_i[o, h, ST_DEC])
                agent = self.possible_agents[d]
                x = a["rq_x"][int(m[M_PEND_SLOT]), int(m[M_PEND_ROW])]
                np.clip(x, 0.0, MAX_BACKLOG_S, out=self._obs[agent], casting="unsafe")
                self._pend = (int(a["job_i"][j, J_G]), d)
                self.agent_selection = agent
                return True
            if code == C_DELIVER:
                self._credit()
                delivered(SF, SI)
            elif code == C_DONE:
                return False
            else:
                drv.serve(code)

    def _take_records(self) -> None:
        """Keep the record rows of finalised requests that someone decided on (until their feedback is delivered)."""
        rs = self._drv.rs
        n = int(rs.imisc[M_REC_N])
        rows = [*rs.records, rs.a["rec"][:n]] if rs.records else [rs.a["rec"][:n]]
        for part in rows:
            for row in part:
                g = int(row[R_G])
                if g in self._deciders:
                    self._finals[g] = row.copy()
        rs.records.clear()
        rs.imisc[M_REC_N] = 0

    def _credit(self) -> None:
        """Give the delivered feedback (delivery slot ``M_DL_SLOT``) and the request's true reward to its node."""
        a = self._drv.rs.a
        q = int(self._drv.rs.imisc[M_DL_SLOT])
        g = int(a["dl_i"][q, DL_G])
        nodes = self._deciders[g]
        d = nodes.pop(0)  # a request's feedback is delivered in the order of its decisions
        row = self._finals[g]
        if not nodes:
            del self._deciders[g], self._finals[g]
        agent = self.possible_agents[d]
        out = outcome_from_row(self.scenario, int(row[R_OPTION]), row[R_OUT:])
        self.rewards[agent] += float(row[R_OUT + OUT_REWARD])
        self.infos[agent]["completed"].append({
            "request": g, "action": int(a["dl_i"][q, DL_A]), "origin": int(row[R_ORIGIN]),
            "sample": int(row[R_SAMPLE]), "arrived_s": float(row[R_T_DECISION]), "completed_s": float(row[R_T_COMPLETE]),
            "outcome": out._asdict(), **feedback_info(float(a["dl_r"][q]), a["dl_rs"][q].copy())})

    def _end(self) -> None:
        for a in self.agents:
            self.truncations[a] = True
        self.agent_selection = self.agents[0]

    def step(self, action) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        lay = self.layout
        a = check_action(action, lay.n_actions)
        self._cumulative_rewards[agent] = 0.0
        self.infos[agent] = {"completed": []}
        self._clear_rewards()
        g, d = self._pend
        self._deciders.setdefault(g, []).append(d)
        decide(*self._drv.packs, a)
        self.decisions += 1
        if not self._run():
            self._end()
        self._accumulate_rewards()

    def render(self):
        return None

    def close(self):
        pass


def env(**kwargs) -> MultiAgentIDNEnv:
    """Build a :class:`MultiAgentIDNEnv` (PettingZoo's ``env()`` convention)."""
    return MultiAgentIDNEnv(**kwargs)
