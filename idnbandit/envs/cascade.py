"""``idnbandit/Cascade-v0``: a request climbs its path hop by hop; serve here or forward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..errors import ConfigError
from ..sim.compiled import NODE_BPS, NODE_PROP_S, OPT_COL, OPT_IN_BITS, OPT_LINKS, OPT_NLINKS
from ..sim.engine import Engine
from ._common import (
    MAX_BACKLOG_S,
    build_scenario,
    check_action,
    check_episode_length,
    engine_seed,
    feedback_info,
)

__all__ = ["CascadeEnv", "CASCADE_OBS_NAMES"]

CASCADE_OBS_NAMES = ("maxprob", "margin", "entropy", "hop", "backlog_s", "elapsed")


class CascadeEnv(gym.Env):
    """Optimal stopping along the path: at each node, serve the request there or forward it up.

    Description
    -----------
    Each request starts at its origin. At every node of its path that hosts a model (a *stop*) the
    agent sees that node's model confidence for the request's sample, the node's load and the delay
    spent so far, and decides to serve there or forward to the next stop. Serving commits the
    request in the simulator with the node's **first hosted model** (the first option of that node
    in ``scenario.options(origin)``); queues carry over to later requests. Looking at a node's
    confidence is free: only the serving option's latency and cost enter the reward, as in the
    scenario (this is the classic early-exit cascade setting).

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
    0 for a forward; on serving, the scenario reward of the request's true outcome
    (``w_acc * correct - w_lat_per_s * latency_s - w_cost * cost``). So an episode's return is the
    sum of the scenario rewards of its requests, exactly as in ``Offload-v0``. ``info`` after a
    serving step has ``served=True``, ``outcome`` (dict), the feedback (``feedback_reward``,
    ``feedback_mask``, ``feedback_rewards`` as in ``Offload-v0``) and ``counterfactual_rewards`` of
    the stops ((n_stops,) true rewards); after a forward, ``served=False``.

    Starting State
    --------------
    Idle queues, a fresh request stream seeded from the env's generator, the first request at its
    origin (stop 0).

    Episode End
    -----------
    Never terminates; truncated once ``episode_length`` requests have been served.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name, TOML path or Scenario (default ``"idn-4tier"``).
    episode_length : int
        Requests per episode (default 200).
    feedback : str, optional
        Override the scenario's feedback mode (changes ``info`` only).

    Version History
    ---------------
    * v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario="idn-4tier", episode_length: int = 200, feedback: str | None = None,
                 render_mode: str | None = None):
        self.episode_length = check_episode_length(episode_length)
        if render_mode is not None:
            raise ConfigError(f"render_mode: {render_mode!r} is not allowed; this env does not render (use None)")
        self.render_mode = None
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
        super().reset(seed=seed)
        self.engine.reset(engine_seed(self.np_random))
        self._t = 0
        self._hop = 0
        self._started = True
        self.engine.next_request()
        return self._obs(), {}

    def step(self, action):
        if not self._started:
            raise ConfigError("step: call reset() before step()")
        a = check_action(action, 2)
        eng = self.engine
        o = eng.origin
        stops = self._stops[o]
        if a == 1 and self._hop < len(stops) - 1:
            self._hop += 1
            return self._obs(), 0.0, False, False, {"served": False, "hop": self._hop}
        k = stops[self._hop]
        cf = eng.counterfactual_rewards()[stops]
        s = eng.sample
        out, fr, frs = eng.apply(k)
        self._t += 1
        info = {"served": True, "hop": self._hop, "outcome": out._asdict(), **feedback_info(fr, frs),
                "counterfactual_rewards": cf, "origin": o, "sample": s, "request": self._t - 1}
        truncated = self._t >= self.episode_length
        self._hop = 0
        eng.next_request()
        return self._obs(), float(out.reward), False, truncated, info
