"""``idnbandit/Cascade-v0``: a request climbs its path hop by hop; serve here or forward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..sim.compiled import NODE_BPS, NODE_PROP_S, OPT_COL, OPT_IN_BITS, OPT_LINKS, OPT_NLINKS
from ..sim.engine import Engine
from ._common import (
    MAX_BACKLOG_S,
    ResetNeededError,
    build_scenario,
    check_action,
    check_episode_length,
    check_keywords,
    check_reset_seed,
    completion_infos,
    end_episode,
    engine_seed,
)
from ._kernels import N_RES, RES_REWARD, summarise_rows
from ._render import RENDER_FPS, RENDER_MODES, Marks, RenderMixin, check_render_mode

__all__ = ["CascadeEnv", "CASCADE_OBS_NAMES"]

CASCADE_OBS_NAMES = ("maxprob", "margin", "entropy", "hop", "backlog_s", "elapsed")


class CascadeEnv(RenderMixin, gym.Env):
    """Optimal stopping along the path: at each node, serve the request there or forward it up.

    Description
    -----------
    Each request starts at its origin. At every node of its path that hosts a model (a *stop*) the
    agent sees that node's model confidence for the request's sample, the node's load and the delay
    spent so far, and decides to serve there or forward to the next stop. Serving commits the
    request in the simulator with the node's **first hosted model** (the first option of that node
    in ``scenario.options(origin)``); queues carry over to later requests. Looking at a node's
    confidence is free (it is read at the request's arrival, from the state at that time): only the
    serving option's latency and cost enter the reward, as in the scenario (this is the classic
    early-exit cascade setting).

    Action Space
    ------------
    ``Discrete(2)``: 0 = serve at the current node, 1 = forward to the next stop. At the last stop
    (the root) forwarding is impossible and action 1 **also serves** there (no mask is needed).

    Observation Space
    -----------------
    ``Box(0, 1, (6,), float32)``:

    ==============  ================================================================  ===  ===
    entry           meaning                                                           low  high
    ==============  ================================================================  ===  ===
    ``maxprob``     top class probability of the current node's model on this sample  0    1
    ``margin``      top-1 minus top-2 probability                                     0    1
    ``entropy``     entropy / log(C)                                                  0    1
    ``hop``         stop index / (number of stops - 1) (0 at the origin, 1 at root)   0    1
    ``backlog_s``   seconds until the node has a free server / 10 (clipped)           0    1
    ``elapsed``     nominal uplink delay (s) to reach the node, clipped to 1 s        0    1
    ==============  ================================================================  ===  ===

    ``elapsed`` is the transmission plus propagation time of the request's input up to the node
    with idle links (link queueing is not included).

    Rewards
    -------
    As in ``Offload-v0``, rewards arrive with the responses (see "Rewards that arrive after later
    decisions" in ``docs/envs.md``). A forward looks at the next stop without moving simulated time
    and earns 0. Serving sends the request (``Engine.apply`` with the node's first model), then
    advances simulated time to the next request arrival, processing every event of every request in
    flight in exact time order; the step's reward is the summed true reward (``w_acc * correct -
    w_lat_per_s * latency_s - w_cost * cost``) of the requests finalised (response delivered or
    timed out) in that interval, usually not including the request just served. At truncation the env
    drains (every request in flight finishes, no new arrivals) and adds their rewards to the last
    step. So an episode's return is exactly the sum of the scenario rewards of its requests, and
    equals ``Offload-v0``'s for the same choices on the same request stream.

    ``info`` of every step: ``served`` (bool), ``hop`` (after a forward: the stop the request moved
    to; after serving: the stop that served) and ``completed`` (the
    requests finalised in the step, as in ``Offload-v0``: ``request``, ``option``, ``outcome``
    (dict), ``feedback_reward``, ``feedback_mask``, ``feedback_rewards``, ``estimates``, times; empty
    after a forward). After a serving step also ``request`` (number of the request served),
    ``origin``, ``sample`` and ``estimates`` ((n_stops,) decision-time estimates of the reward of
    serving at each stop).

    Starting State
    --------------
    Idle queues, a fresh request stream seeded from the env's generator, the first request at its
    origin (stop 0).

    Episode End
    -----------
    Never terminates; truncated once ``episode_length`` requests have been served. The observation
    returned with ``truncated=True`` is that of the next arrival at its origin (that request is then
    dropped: the env drains without it). Call ``reset()`` before stepping again.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name, TOML path or Scenario (default ``"idn-4tier"``).
    episode_length : int
        Requests per episode (default 200).
    feedback : str, optional
        Override the scenario's feedback mode (changes ``info`` only).
    render_mode : str, optional
        ``"rgb_array"`` or ``"ansi"``, as for ``Offload-v0``: the network, the queues, the request's
        path with the stop where it waits for a decision (white frame) and the node that served the
        last request (green frame).

    Unknown keyword arguments, ``reset(seed=-1)`` and ``step()`` before ``reset()`` or after
    truncation raise as in ``Offload-v0``; actions may be 0-d integer arrays.

    Version History
    ---------------
    * v0: initial version. Since the exact event core, a serving step's reward is that of the
      requests finalised during it (see Rewards), not the served request's own reward. Render modes
      ``"rgb_array"`` and ``"ansi"`` were added later (nothing else changed).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def __init__(self, scenario="idn-4tier", episode_length: int = 200, feedback: str | None = None,
                 render_mode: str | None = None, **unknown):
        check_keywords("CascadeEnv", unknown, ["scenario", "episode_length", "feedback", "render_mode"])
        self.episode_length = check_episode_length(episode_length)
        self.render_mode = check_render_mode(render_mode)
        self.scenario = build_scenario(scenario, feedback)
        self.engine = eng = Engine(self.scenario)
        c = eng.compiled
        origins = self.scenario.workload.origins
        # per origin: the stops (first option of each hop hosting one), their node, elapsed uplink delay
        self._stops, self._stop_nodes, self._elapsed = [], [], []
        for o in range(len(origins)):
            stops, nodes, elapsed = [], [], []
            for h in range(eng.n_hops(o)):
                opts = eng.options_at_hop(h, o)
                if not opts:
                    continue
                k = opts[0]
                stops.append(k)
                nodes.append(self.scenario.nodes.index(self.scenario.path_to_root(origins[o])[h]))
                d = 0.0
                for j in range(int(c.opt_i[o, k, OPT_NLINKS])):
                    lk = c.opt_i[o, k, OPT_LINKS + j]
                    d += c.opt_f[o, k, OPT_IN_BITS] / c.node_f[lk, NODE_BPS] + c.node_f[lk, NODE_PROP_S]
                elapsed.append(min(d, 1.0))
            self._stops.append(stops)
            self._stop_nodes.append(nodes)
            self._elapsed.append(elapsed)
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0.0, 1.0, (len(CASCADE_OBS_NAMES),), dtype=np.float32)
        self._t = 0
        self._hop = 0
        self._started = False
        self._res = np.zeros(N_RES)
        self._last: tuple[str, int] | None = None  # for render() only: ("served" | "forward", node index)

    @property
    def n_stops(self) -> int:
        """Stops on the pending request's path."""
        return len(self._stops[self.engine.origin])

    def _obs(self) -> np.ndarray:
        eng = self.engine
        o = eng.origin
        k = self._stops[o][self._hop]
        c = eng.compiled
        f = c.feat[c.opt_i[o, k, OPT_COL], eng.sample]
        n = len(self._stops[o])
        backlog = eng.backlog_s()[self._stop_nodes[o][self._hop]]
        x = np.array([f[0], f[1], f[2], self._hop / max(n - 1, 1), min(backlog / MAX_BACKLOG_S, 1.0),
                      self._elapsed[o][self._hop]], dtype=np.float32)
        return np.clip(x, 0.0, 1.0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=check_reset_seed(seed))
        self.engine.reset(engine_seed(self.np_random))
        self._t = 0
        self._hop = 0
        self._last = None
        self._started = True
        self.engine.next_request()
        return self._obs(), {}

    def step(self, action):
        if not self._started:
            raise ResetNeededError("step: call reset() before step() (also after a truncated episode)")
        a = check_action(action, 2)
        eng = self.engine
        o = eng.origin
        stops = self._stops[o]
        if a == 1 and self._hop < len(stops) - 1:
            self._last = ("forward", self._stop_nodes[o][self._hop])
            self._hop += 1
            return self._obs(), 0.0, False, False, {"served": False, "hop": self._hop, "completed": []}
        hop = self._hop
        self._last = ("served", self._stop_nodes[o][hop])
        est = eng.counterfactual_rewards()[stops]
        s = eng.sample
        g = eng.apply(stops[hop])
        self._t += 1
        truncated = self._t >= self.episode_length
        self._hop = 0
        eng.next_request()
        obs = self._obs()
        rows = end_episode(eng) if truncated else eng.completed_rows()
        if truncated:
            self._started = False
        summarise_rows(rows, self._res)
        info = {"served": True, "hop": hop, "request": g, "origin": o, "sample": s, "estimates": est,
                "completed": completion_infos(self.scenario, rows, eng.n_options)}
        return obs, float(self._res[RES_REWARD]), False, truncated, info

    def _render_marks(self) -> Marks:
        eng, nodes = self.engine, self.scenario.nodes
        title = f"Cascade-v0 {self.scenario.name} step {self._t}/{self.episode_length}"
        lines = []
        current = -1
        if self._started:
            o = eng.origin
            current = self._stop_nodes[o][self._hop]
            lines.append(f"request at stop {self._hop + 1}/{len(self._stops[o])}: {nodes[current].name}")
        if self._last is None:
            return Marks(title, (*lines, "last action: none yet"), current)
        what, node = self._last
        text = f"last: served at {nodes[node].name}" if what == "served" else f"last: forwarded from {nodes[node].name}"
        return Marks(title, (*lines, text), current, (node,) if what == "served" else ())
