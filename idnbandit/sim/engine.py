"""Step-level simulator API (for the Gymnasium environments and hand-written loops).

:class:`Engine` runs the same numba kernels as the fused loop of :func:`idnbandit.sim.simulate`, one
request at a time::

    eng = Engine(scenario, seed=0)
    x = eng.next_request()              # advance to the next arrival; its context
    cf = eng.counterfactual_rewards()   # (K,) reward of every option, from the current queues
    out, r, rs = eng.apply(k)           # serve it with option k: true Outcome + observed feedback

:meth:`Engine.peek` gives the counterfactual :class:`Outcome` of any option without changing the
queues, and :meth:`Engine.options_at_hop` lists the options hosted at the h-th node of the current
request's path (0 = the origin), so a cascade environment can walk up the path hop by hop and commit
with :meth:`Engine.apply` where it stops. Feedback returned by :meth:`apply` is immediate (delays
are applied by :func:`~idnbandit.sim.simulate`'s loops only).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..scenario.model import Scenario, Tier
from ..traces.trace import Trace
from .compiled import NODE_LO, OPT_NODE, Compiled, compile_scenario, context_names
from .kernels import (
    OUT_ANSWER,
    OUT_COMPUTE,
    OUT_CORRECT,
    OUT_COST,
    OUT_LATE,
    OUT_LATENCY,
    OUT_NET,
    OUT_NODE,
    OUT_QUEUE,
    OUT_REWARD,
    OUT_TIMEOUT,
    bg_ready,
    commit,
    new_scratch,
    new_state,
    prepare,
)
from .workload import CHUNK, BackgroundSource, RequestStream

__all__ = ["Engine", "Outcome", "resolve_inputs", "check_seed"]

_TIERS = list(Tier)


class Outcome(NamedTuple):
    """What really happened to one request (true outcome, not the agent's feedback)."""

    option: int
    node: str
    tier: str
    answer: int  # -1 on timeout
    correct: bool  # False when late (deadline) or timed out
    timeout: bool
    late: bool
    latency_ms: float
    network_ms: float
    queueing_ms: float
    compute_ms: float
    cost: float
    reward: float


def check_seed(seed, default: int) -> int:
    if seed is None:
        return int(default)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative integer or None (scenario seed)")
    return int(seed)


def resolve_inputs(scenario, trace) -> tuple[Scenario, Trace, Compiled]:
    """Load ``scenario`` if it is a name or path, resolve its trace if not given, compile both."""
    if isinstance(scenario, (str, bytes)) or hasattr(scenario, "__fspath__"):
        from ..scenario import io as scenario_io  # lazily: scenario loading lives above the dataclasses

        scenario = scenario_io.load_scenario(scenario)
    if not isinstance(scenario, Scenario):
        raise ConfigError(f"scenario: expected a Scenario, a built-in name or a path, got {type(scenario).__name__}")
    if trace is None:
        from ..scenario import io as scenario_io

        trace = scenario_io.resolve_trace(scenario)
    return scenario, trace, compile_scenario(scenario, trace)


def outcome_from_row(scenario: Scenario, option: int, row: np.ndarray) -> Outcome:
    node = scenario.nodes[int(row[OUT_NODE])]
    return Outcome(int(option), node.name, str(node.tier), int(row[OUT_ANSWER]), bool(row[OUT_CORRECT] > 0),
                   bool(row[OUT_TIMEOUT] > 0), bool(row[OUT_LATE] > 0), float(row[OUT_LATENCY] * 1e3),
                   float(row[OUT_NET] * 1e3), float(row[OUT_QUEUE] * 1e3), float(row[OUT_COMPUTE] * 1e3),
                   float(row[OUT_COST]), float(row[OUT_REWARD]))


class Engine:
    """One simulated IDN, advanced request by request.

    Parameters
    ----------
    scenario
        A :class:`~idnbandit.scenario.Scenario`, or a built-in name / TOML path.
    seed
        Run seed (None: ``scenario.seed``); the request stream is the same as :func:`simulate`'s.
    trace
        Model outputs (default: the scenario's own trace).
    """

    def __init__(self, scenario, seed: int | None = None, trace: Trace | None = None):
        self.scenario, self.trace, self.compiled = resolve_inputs(scenario, trace)
        self.n_options = self.compiled.n_options
        self.n_features = int(self.compiled.n_features)
        self.context_names = context_names(self.scenario)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> Engine:
        """Idle queues and a fresh request stream from ``seed`` (None: the scenario seed)."""
        self.seed = check_seed(seed, self.scenario.seed)
        c = self.compiled
        self._stream = RequestStream(self.scenario, c.feat.shape[1], self.seed)
        self._bg = BackgroundSource(self.scenario, self.seed)
        self._st = new_state(c)
        self._sc = new_scratch(c)
        self._chunk = None
        self._pos = CHUNK
        self._cur = None  # (origin, sample, time) of the pending request
        self._applied = True
        self.decisions = 0
        return self

    # ------------------------------------------------------------------ request flow
    def next_request(self) -> np.ndarray:
        """Advance to the next arrival; return its (n_features,) context (a copy).

        Raises
        ------
        ConfigError
            If the previous request was not served with :meth:`apply`.
        """
        if not self._applied:
            raise ConfigError("next_request: the current request was not served; call apply(option) first")
        if self._pos >= CHUNK:
            self._chunk = self._stream.next_chunk()
            self._pos = 0
        t, o, s = (a[self._pos] for a in self._chunk)
        self._pos += 1
        c = self.compiled
        if not bg_ready(c, self._st, t):
            rate = max(self._bg.max_rate, 1e-12)
            self._st = self._bg.top_up(self._st, t + c.timeout_s + min(60.0, 65536 / rate))
        prepare(c, self._st, self._sc, int(o), int(s), float(t))
        self._cur = (int(o), int(s), float(t))
        self._applied = False
        return self._sc.x.copy()

    def _need_request(self, where: str):
        if self._cur is None or self._applied:
            raise ConfigError(f"{where}: no pending request; call next_request() first")

    def counterfactual_rewards(self) -> np.ndarray:
        """(K,) reward each option would get for the pending request, from the current queues."""
        self._need_request("counterfactual_rewards")
        return self._sc.cf.copy()

    def peek(self, option: int) -> Outcome:
        """The counterfactual :class:`Outcome` of ``option`` for the pending request (no state change)."""
        self._need_request("peek")
        k = self._check_option(option)
        return outcome_from_row(self.scenario, k, self._sc.cf_out[k])

    def apply(self, option: int) -> tuple[Outcome, float, np.ndarray]:
        """Serve the pending request with ``option``.

        Returns
        -------
        outcome
            The true :class:`Outcome`.
        reward
            The observed reward of ``option`` (NaN when the feedback mode reveals nothing).
        rewards
            (K,) observed rewards of every option (NaN where not observed).
        """
        self._need_request("apply")
        k = self._check_option(option)
        o, s, t = self._cur
        r = commit(self.compiled, self._st, self._sc, o, k, s, t)
        self._applied = True
        self.decisions += 1
        return outcome_from_row(self.scenario, k, self._sc.out), float(r), self._sc.fb_rs.copy()

    def _check_option(self, option) -> int:
        if isinstance(option, bool) or not isinstance(option, (int, np.integer)) or not 0 <= option < self.n_options:
            raise ConfigError(f"option: {option!r} is not allowed; it must be an integer in [0, {self.n_options})")
        return int(option)

    # ------------------------------------------------------------------ the pending request
    @property
    def origin(self) -> int:
        """Index of the pending request's origin in ``scenario.workload.origins``."""
        self._need_request("origin")
        return self._cur[0]

    @property
    def origin_name(self) -> str:
        return self.scenario.workload.origins[self.origin]

    @property
    def sample(self) -> int:
        """Trace sample id of the pending request."""
        self._need_request("sample")
        return self._cur[1]

    @property
    def time_s(self) -> float:
        """Arrival time (simulated seconds) of the pending request."""
        self._need_request("time_s")
        return self._cur[2]

    def option_names(self, origin: int | None = None) -> list[tuple[str, str]]:
        """``(node, model)`` of each option of ``origin`` (default: the pending request's)."""
        o = self.origin if origin is None else origin
        return list(self.scenario.options(self.scenario.workload.origins[o]))

    def n_hops(self, origin: int | None = None) -> int:
        """Nodes on the origin's path to its root (the origin included)."""
        o = self.origin if origin is None else origin
        return len(self.scenario.path_to_root(self.scenario.workload.origins[o]))

    def options_at_hop(self, hop: int, origin: int | None = None) -> tuple[int, ...]:
        """Option indices served at the ``hop``-th node of the path (0 = the origin); may be empty."""
        o = self.origin if origin is None else origin
        path = self.scenario.path_to_root(self.scenario.workload.origins[o])
        if not 0 <= hop < len(path):
            raise ConfigError(f"hop: {hop!r} is not allowed; the path has {len(path)} nodes")
        node = self.scenario.nodes.index(path[hop])
        return tuple(int(k) for k in np.flatnonzero(self.compiled.opt_i[o, :, OPT_NODE] == node))

    def backlog_s(self) -> np.ndarray:
        """(Nn,) seconds until the first server of each node is free, at the pending request's time."""
        self._need_request("backlog_s")
        c, st = self.compiled, self._st
        first = np.minimum.reduceat(st.server_free, c.node_i[:, NODE_LO])
        return np.maximum(first - self._cur[2], 0.0)
