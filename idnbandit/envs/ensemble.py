"""``idnbandit/Ensemble-v0``: query the models of the path one at a time, then stop and answer."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..ensembles import confidence_vote, majority_vote, make_aggregator
from ..errors import ConfigError
from ..sim.compiled import FEEDBACK_CODES, OPT_COL, OPT_LOCAL, OPT_NODE
from ..sim.engine import Engine
from ..sim.ensemble_run import label_seen, trace_columns
from ._common import (
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
from ._render import RENDER_FPS, RENDER_MODES, Marks, RenderMixin, check_render_mode

__all__ = ["EnsembleEnv", "AGGREGATIONS", "INVALID_PENALTY", "aggregate"]

#: "majority" and "confidence" vote over (predicted class, top probability); the others are the
#: probability aggregators of :mod:`idnbandit.ensembles` (learned ones learn from each answered request)
AGGREGATIONS = ("majority", "confidence", "sum-prob", "log-linear", "hedge", "stacking", "bagging", "boosting")
INVALID_PENALTY = 0.01  # reward of querying an already-queried model (a no-op)


def aggregate(preds: np.ndarray, confs: np.ndarray, how: str) -> tuple[int, float]:
    """Answer of an ensemble from predicted classes and top probabilities, and its support share.

    Parameters
    ----------
    preds, confs
        Predicted class and top probability of each queried model, in query order (answers of
        timed-out queries have pred -1 and are ignored).
    how
        ``"majority"``: :func:`idnbandit.ensembles.majority_vote` (most votes; ties to the larger
        summed confidence, then the class voted first); ``"confidence"``:
        :func:`idnbandit.ensembles.confidence_vote` (the largest summed top probability).

    Returns
    -------
    answer, share
        The class (-1 if no valid answer) and its share of the votes (or of the summed confidence).

    Raises
    ------
    ConfigError
        If ``how`` is not ``"majority"`` or ``"confidence"``.
    """
    if how == "majority":
        return majority_vote(preds, confs)
    if how == "confidence":
        return confidence_vote(preds, confs)
    raise ConfigError(f"how: {how!r} is not allowed; use 'majority' or 'confidence' (probability aggregators "
                      f"need full probability vectors: idnbandit.ensembles.make_aggregator)")


class EnsembleEnv(RenderMixin, gym.Env):
    """Build an ensemble per request: query one more model (which?) or stop and answer.

    Description
    -----------
    For each request, the M models on its path (the origin's options, local first) can be
    queried one after the other; each query costs its option's latency and cost (its outcome in
    the simulator from the current queues). When the agent stops, the answer is the aggregate of
    the answers so far (``aggregation``: majority vote, confidence-weighted vote, or one of the
    probability aggregators of :mod:`idnbandit.ensembles`) and it earns
    ``w_acc`` if that answer is right and the summed latency of the queries meets the scenario's
    deadline. Queries run sequentially, so their latencies add up.

    This env is a *planning view*: every query is priced by its **decision-time estimate**
    (``Engine.peek``: the outcome the option would have from the state at the request's arrival if
    nothing else arrived later), and the step rewards are these estimates, known at once. The
    simulator underneath runs exactly (FIFO in arrival order, every event in time order) but serves
    each request once: when the agent stops, the **last** queried option is sent (``Engine.apply``;
    a request stopped with no query earns 0 but is still sent with option 0, as the simulator serves
    every request), and its true outcome arrives later, listed in ``info["completed"]`` of the step
    in which it is finalised (not in the reward).

    Action Space
    ------------
    ``Discrete(M + 1)``: ``j < M`` queries model j (option j of the origin); ``M`` stops. Querying
    an already-queried model is a no-op with reward ``-INVALID_PENALTY`` (0.01); once every model
    has been queried the request is answered automatically; after ``2 * (M + 1)`` steps on one
    request the agent is stopped.

    Observation Space
    -----------------
    ``Box(0, 1, (3M + 2,), float32)``: ``queried[j]`` (0/1), ``confidence[j]`` (top probability of
    model j, 0 until queried), ``agrees[j]`` (1 if model j's answer equals the current aggregate),
    then the aggregate's support share and the summed latency so far / timeout.

    Rewards
    -------
    Decision-time estimates (see Description). A query of option j:
    ``-(w_lat_per_s * latency_s + w_cost * cost)`` of its estimated outcome (a query estimated to
    time out gives no answer and costs the timeout). Stop: ``w_acc * correct`` (0 with no answer).
    Without repeated queries a request's return is ``w_acc * correct - w_lat * total latency -
    w_cost * total cost``, the scenario reward of an ensemble, as planned at the request's arrival.
    ``info`` after a stop has ``answered=True``, ``answer``, ``correct``, ``queried`` (option
    list), ``latency_ms``, ``cost`` (all estimated), ``request`` (number of the request sent) and
    ``completed`` (the requests whose single sent option was finalised meanwhile, true outcomes, as
    in ``Offload-v0``); at truncation the env drains, so every request of the episode is listed once.

    Starting State
    --------------
    Idle queues, a fresh request stream seeded from the env's generator, nothing queried.

    Episode End
    -----------
    Never terminates; truncated once ``episode_length`` requests have been answered (the observation
    then is that of the next arrival, which is dropped). Call ``reset()`` before stepping again.

    Arguments
    ---------
    scenario : str, path or Scenario
        Built-in name, TOML path or Scenario (default ``"idn-4tier"``).
    episode_length : int
        Requests per episode (default 200).
    aggregation : str
        ``"majority"`` (default), ``"confidence"``, or an :mod:`idnbandit.ensembles` aggregator over
        the queried models' probability vectors: ``"sum-prob"``, ``"log-linear"``, ``"hedge"``,
        ``"stacking"``, ``"bagging"``, ``"boosting"``. Learned aggregators start fresh at each
        ``reset`` and learn from every answered request whose label the scenario's feedback mode
        reveals (as in :func:`idnbandit.sim.simulate`); ``"bagging"`` is seeded from the env's
        generator.
    render_mode : str, optional
        ``"rgb_array"`` or ``"ansi"``, as for ``Offload-v0``: the network, the queues, the request's
        origin and path (white frame, yellow links) and the nodes of the models queried so far for
        it (green frames; those of the last answered request once it is answered).

    Unknown keyword arguments, ``reset(seed=-1)`` and ``step()`` before ``reset()`` or after
    truncation raise as in ``Offload-v0``; actions may be 0-d integer arrays.

    Version History
    ---------------
    * v0: initial version; the probability aggregators of :mod:`idnbandit.ensembles` were added
      later (same observations, rewards and trajectories for ``"majority"`` and ``"confidence"``).
      Since the exact event core, query prices are decision-time estimates (before, the simulator
      had no later arrivals to overtake a request, and the estimate was the outcome) and ``info``
      lists the completed requests. Render modes ``"rgb_array"`` and ``"ansi"`` were added later
      (nothing else changed).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def __init__(self, scenario="idn-4tier", episode_length: int = 200, aggregation: str = "majority",
                 render_mode: str | None = None, **unknown):
        check_keywords("EnsembleEnv", unknown, ["scenario", "episode_length", "aggregation", "render_mode"])
        self.episode_length = check_episode_length(episode_length)
        if not isinstance(aggregation, str) or aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation: {aggregation!r} is not allowed; use one of {', '.join(AGGREGATIONS)}")
        self.render_mode = check_render_mode(render_mode)
        self.aggregation = aggregation
        self.scenario = build_scenario(scenario)
        self.engine = Engine(self.scenario)
        self.n_models = m = self.engine.n_options
        self._cols = trace_columns(self.scenario, self.engine.trace)
        self._agg = None
        self._t = 0
        self._queried: list[int] = []
        self._last_answer: tuple[int, list[int], bool] | None = None  # for render(): origin, queried, correct
        self.action_space = spaces.Discrete(m + 1)
        self.observation_space = spaces.Box(0.0, 1.0, (3 * m + 2,), dtype=np.float32)
        self._started = False

    def _new_request(self) -> None:
        self.engine.next_request()
        m = self.n_models
        self._queried: list[int] = []
        self._preds = np.full(m, -1, np.int64)
        self._confs = np.zeros(m)
        self._latency = 0.0
        self._cost = 0.0
        self._steps = 0

    def _answers(self) -> tuple[list[int], np.ndarray]:
        """Queried models that answered (query order) and their (q, C) probability vectors."""
        eng = self.engine
        members = [j for j in self._queried if self._preds[j] >= 0]
        probs = eng.trace.probs[self._cols[eng.origin, members], eng.sample] if members else None
        return members, probs

    def _vote(self) -> tuple[int, float]:
        if self._agg is None:
            return aggregate(self._preds[self._queried], self._confs[self._queried], self.aggregation)
        members, probs = self._answers()
        if not members:
            return -1, 0.0
        v = self._agg.combine(members, probs)
        return v.answer, v.support

    def _obs(self) -> np.ndarray:
        m = self.n_models
        ans, share = self._vote()
        q = np.zeros(m)
        q[self._queried] = 1.0
        agree = (self._preds == ans) & (q > 0) & (ans >= 0)
        tail = [share, min(self._latency / self.engine.compiled.timeout_s, 1.0)]
        return np.clip(np.concatenate([q, self._confs, agree, tail]).astype(np.float32), 0.0, 1.0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=check_reset_seed(seed))
        self.engine.reset(engine_seed(self.np_random))
        self._last_answer = None
        if self.aggregation not in ("majority", "confidence"):
            agg_seed = engine_seed(self.np_random) if self.aggregation == "bagging" else None
            self._agg = make_aggregator(self.aggregation, self.n_models, self.engine.trace.n_classes, seed=agg_seed)
        self._t = 0
        self._started = True
        self._new_request()
        return self._obs(), {}

    def step(self, action):
        if not self._started:
            raise ResetNeededError("step: call reset() before step() (also after a truncated episode)")
        a = check_action(action, self.n_models + 1)
        eng, c = self.engine, self.engine.compiled
        self._steps += 1
        reward = 0.0
        info: dict[str, Any] = {"answered": False}
        if a < self.n_models:
            if a in self._queried:
                reward = -INVALID_PENALTY
            else:
                out = eng.peek(a)
                self._queried.append(a)
                col = c.opt_i[eng.origin, a, OPT_COL]
                self._preds[a] = out.answer
                self._confs[a] = c.feat[col, eng.sample, 0] if out.answer >= 0 else 0.0
                self._latency += out.latency_ms / 1e3
                self._cost += out.cost
                reward = -(c.w_lat * out.latency_ms / 1e3 + c.w_cost * out.cost)
        done = a == self.n_models or len(self._queried) == self.n_models or self._steps >= 2 * (self.n_models + 1)
        if not done:
            return self._obs(), float(reward), False, False, info
        ans, _ = self._vote()
        label = int(eng.trace.labels[eng.sample])
        correct = ans >= 0 and ans == label and self._latency <= c.deadline_s
        if self._agg is not None and self._agg.learns:
            members, probs = self._answers()
            answered = [(j, int(self._preds[j]), bool(c.opt_i[eng.origin, j, OPT_LOCAL] == 1)) for j in members]
            seen = label_seen(FEEDBACK_CODES[self.scenario.feedback.mode], label, bool(correct), answered)
            if seen is not None and members:
                self._agg.update(members, probs, seen)
        reward += c.w_acc * float(correct)
        self._last_answer = (eng.origin, list(self._queried), bool(correct))
        # the simulator serves every request once: send the last queried option (option 0, unpaid, if none)
        g = eng.apply(self._queried[-1] if self._queried else 0)
        self._t += 1
        info = {"answered": True, "answer": ans, "correct": bool(correct), "queried": list(self._queried),
                "latency_ms": self._latency * 1e3, "cost": self._cost, "request": g}
        truncated = self._t >= self.episode_length
        self._new_request()
        obs = self._obs()
        if truncated:
            rows = end_episode(eng)
            self._started = False
        else:
            rows = eng.completed_rows()
        info["completed"] = completion_infos(self.scenario, rows, eng.n_options)
        return obs, float(reward), False, truncated, info

    def _render_marks(self) -> Marks:
        c, nodes = self.engine.compiled, self.scenario.nodes
        title = f"Ensemble-v0 {self.scenario.name} step {self._t}/{self.episode_length}"
        lines, chosen = [], ()
        if self._started and self._queried:
            o = self.engine.origin
            chosen = tuple(int(c.opt_i[o, j, OPT_NODE]) for j in self._queried)
            lines.append("queried: " + " ".join(f"{j}@{nodes[n].name}" for j, n in zip(self._queried, chosen,
                                                                                      strict=True)))
        elif self._last_answer is not None:
            o, queried, correct = self._last_answer
            chosen = tuple(int(c.opt_i[o, j, OPT_NODE]) for j in queried)
            lines.append(f"last answer: {'right' if correct else 'wrong'}, queried "
                         + (" ".join(f"{j}@{nodes[n].name}" for j, n in zip(queried, chosen, strict=True))
                            or "none"))
        else:
            lines.append("no query yet")
        return Marks(title, tuple(lines), chosen=chosen)
