"""Step-level simulator API (for the Gymnasium environments and hand-written loops).

:class:`Engine` drives the same event core as :func:`idnbandit.sim.simulate`, one decision at a
time::

    eng = Engine(scenario, seed=0)
    x = eng.next_request()              # run events up to the next arrival; its context
    cf = eng.counterfactual_rewards()   # (K,) decision-time estimate of every option
    g = eng.apply(k)                    # send it with option k (returns its request number)
    done = eng.completed()              # requests finalised since the last call (outcome + feedback)

A request's outcome is known only when its response reaches the client (or the client's timeout
fires), which is usually after later requests have arrived: :meth:`Engine.next_request` runs every
event up to the next arrival in exact time order, and the requests that completed meanwhile are
returned by :meth:`Engine.completed` (each with the feedback the scenario's mode reveals; the
scenario's extra feedback delay is applied by :func:`~idnbandit.sim.simulate` only).
:meth:`Engine.drain` lets every request in flight finish without new arrivals (end of an episode).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..scenario.model import Scenario, Tier
from ..traces.trace import Trace
from .compiled import NODE_LO, OPT_NODE, Compiled, check_seed, context_names, resolve_inputs
from .core import C_DECIDE, C_DONE, PEND_NONE, PEND_ORIGIN
from .loop import Driver, decide, run_to_decision
from .metrics import S_COUNT, S_REWARD
from .stages import (
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
)
from .state import (
    M_G_NEXT,
    M_LIMIT,
    M_PEND_KIND,
    M_PEND_SLOT,
    R_FB,
    R_FEEDBACK_R,
    R_G,
    R_OPTION,
    R_ORIGIN,
    R_OUT,
    R_SAMPLE,
    R_T_COMPLETE,
    R_T_DECISION,
    RQ_O,
    RQ_S,
    static_packs,
)
from .workload import RequestBlocks

__all__ = ["Engine", "Outcome", "Completion", "outcome_from_row", "completions_from_records", "NO_LIMIT"]

_TIERS = list(Tier)
NO_LIMIT = 1 << 62  # an engine decides requests until told to drain
KEEP_COMPLETED = 1 << 16  # completions kept for completed() (about; the oldest are dropped)


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


class Completion(NamedTuple):
    """A finalised request: its outcome and what the deciding node observed about it."""

    request: int  # request number (order of arrival)
    origin: int
    sample: int
    option: int
    decided_s: float  # simulated time of the decision
    completed_s: float  # response (or timeout) time
    outcome: Outcome
    feedback_reward: float  # observed reward of the option (NaN when the mode reveals nothing)
    feedback_rewards: np.ndarray  # (K,) observed rewards, NaN where not observed
    estimates: np.ndarray  # (K,) decision-time counterfactual estimates of every option's reward


def outcome_from_row(scenario: Scenario, option: int, row: np.ndarray) -> Outcome:
    node = scenario.nodes[int(row[OUT_NODE])]
    return Outcome(int(option), node.name, str(node.tier), int(row[OUT_ANSWER]), bool(row[OUT_CORRECT] > 0),
                   bool(row[OUT_TIMEOUT] > 0), bool(row[OUT_LATE] > 0), float(row[OUT_LATENCY] * 1e3),
                   float(row[OUT_NET] * 1e3), float(row[OUT_QUEUE] * 1e3), float(row[OUT_COMPUTE] * 1e3),
                   float(row[OUT_COST]), float(row[OUT_REWARD]))


def completions_from_records(scenario: Scenario, rec: np.ndarray, k: int) -> list[Completion]:
    """:class:`Completion` tuples of record rows (:mod:`idnbandit.sim.state` layout, ``k`` options)."""
    out = []
    for row in rec:
        opt = int(row[R_OPTION])
        out.append(Completion(int(row[R_G]), int(row[R_ORIGIN]), int(row[R_SAMPLE]), opt, float(row[R_T_DECISION]),
                              float(row[R_T_COMPLETE]), outcome_from_row(scenario, opt, row[R_OUT:]),
                              float(row[R_FEEDBACK_R]), row[R_FB:R_FB + k].copy(), row[R_FB + k:R_FB + 2 * k].copy()))
    return out


class Engine:
    """One simulated IDN, advanced decision by decision (the same event core as :func:`simulate`).

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
        self._setup(*resolve_inputs(scenario, trace), None)
        self.reset(seed)

    def _setup(self, scenario: Scenario, trace: Trace, compiled: Compiled, static) -> None:
        self.scenario, self.trace, self.compiled = scenario, trace, compiled
        self.n_options = compiled.n_options
        self.n_features = int(compiled.n_features)
        self.context_names = context_names(scenario)
        self.first_block = 64  # requests drawn at once after a reset (doubling up to BLOCK)
        if static is None:
            static = static_packs(compiled, np.zeros((1, 1, 5), np.int64), np.zeros((1, 2), np.int64),
                                  np.zeros(3, np.int64))
        self._static = static
        self._CF, self._CI = static

    def clone(self, seed: int | None = None) -> Engine:
        """A new engine on the same compiled scenario and trace (nothing recompiled), reset to ``seed``."""
        new = object.__new__(Engine)
        new._setup(self.scenario, self.trace, self.compiled, self._static)
        return new.reset(seed)

    def reset(self, seed: int | None = None) -> Engine:
        """Idle network, nothing in flight, a fresh request stream from ``seed`` (None: the scenario seed)."""
        self.seed = check_seed(seed, self.scenario.seed)
        c = self.compiled
        src = RequestBlocks(self.scenario, c.feat.shape[1], self.seed, self.first_block)
        self.driver = Driver(c, self.scenario, self.seed, 1, n_actions=self.n_options, n_features=self.n_features,
                             curve_points=1, record=True, static=self._static, requests=src.next_block,
                             limit=NO_LIMIT, delivery_log=False, keep_records=KEEP_COMPLETED)
        self._pending = False
        return self

    @property
    def packs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(CF, CI, SF, SI)``: the compiled scenario and the state (:mod:`idnbandit.sim.state`).

        SF/SI are replaced when a structure grows: fetch them again after a Python-side call.
        """
        return self.driver.packs

    # ------------------------------------------------------------------ request flow
    def run_until_decision(self) -> None:
        """Process events until the next decision is pending (refills, growth and feedback
        deliveries handled here)."""
        drv = self.driver
        while True:
            code = run_to_decision(*drv.packs)
            if code == C_DECIDE:
                self._pending = True
                return
            if code == C_DONE:  # pragma: no cover - the engine's limit is never reached while deciding
                raise RuntimeError("the engine has no request to decide")
            drv.serve(code)

    def next_request(self) -> np.ndarray:
        """Run events up to the next arrival; return its (n_features,) context (a copy).

        Raises
        ------
        ConfigError
            If the pending request was not sent with :meth:`apply`.
        """
        if self._pending:
            raise ConfigError("next_request: the current request was not served; call apply(option) first")
        self.run_until_decision()
        rs = self.driver.rs
        return rs.a["rq_x"][int(rs.imisc[M_PEND_SLOT]), 0].copy()

    def apply(self, option: int) -> int:
        """Send the pending request with ``option``; returns its request number.

        Its outcome comes later, from :meth:`completed`.
        """
        self._need_request("apply")
        k = self._check_option(option)
        g = int(self.driver.rs.imisc[M_G_NEXT])
        decide(*self.driver.packs, k)
        self._pending = False
        return g

    def completed(self) -> list[Completion]:
        """Requests finalised (response or timeout) since the last call, in completion order (about the
        last ``KEEP_COMPLETED`` = 65,536 are kept between calls)."""
        return completions_from_records(self.scenario, self.completed_rows(), self.n_options)

    def completed_rows(self) -> np.ndarray:
        """:meth:`completed` as raw record rows (:mod:`idnbandit.sim.state` layout)."""
        rs = self.driver.rs
        rs.drain_records()
        rows = np.concatenate(rs.records) if rs.records else rs.a["rec"][:0].copy()
        rs.records.clear()
        return rows

    def drain(self, drop_pending: bool = False) -> None:
        """Let every request in flight finish (no new arrivals are decided); later calls continue the stream.

        Parameters
        ----------
        drop_pending
            If a request is pending (observed with :meth:`next_request`, not sent), leave it undecided
            (e.g. the episode ends before it; it is presented again by the next :meth:`next_request`).
            Without it a pending request is a :class:`ConfigError`.
        """
        if self._pending:
            if not drop_pending:
                raise ConfigError("drain: the current request was not served; call apply(option) first "
                                  "(or drain(drop_pending=True))")
            self.driver.rs.imisc[M_PEND_KIND] = PEND_NONE
            self._pending = False
        drv = self.driver
        m = drv.rs.imisc
        m[M_LIMIT] = m[M_G_NEXT]
        try:
            while True:
                code = run_to_decision(*drv.packs)
                if code == C_DONE:
                    return
                drv.serve(code)
        finally:
            drv.rs.imisc[M_LIMIT] = NO_LIMIT

    @property
    def reward_sum(self) -> float:
        """Summed true reward of every request finalised since the reset."""
        return float(self.driver.rs.a["sums"][S_REWARD])

    @property
    def n_completed(self) -> int:
        """Requests finalised since the reset."""
        return int(self.driver.rs.a["sums"][S_COUNT])

    def _need_request(self, where: str):
        if not self._pending or self.driver.rs.imisc[M_PEND_KIND] != PEND_ORIGIN:
            raise ConfigError(f"{where}: no pending request; call next_request() first")

    def counterfactual_rewards(self) -> np.ndarray:
        """(K,) decision-time estimate of each option's reward for the pending request."""
        self._need_request("counterfactual_rewards")
        rs = self.driver.rs
        return rs.a["rq_cf"][int(rs.imisc[M_PEND_SLOT])].copy()

    def peek(self, option: int) -> Outcome:
        """The decision-time estimated :class:`Outcome` of ``option`` for the pending request."""
        self._need_request("peek")
        k = self._check_option(option)
        rs = self.driver.rs
        return outcome_from_row(self.scenario, k, rs.a["rq_cfout"][int(rs.imisc[M_PEND_SLOT]), k])

    def _check_option(self, option) -> int:
        if isinstance(option, bool) or not isinstance(option, (int, np.integer)) or not 0 <= option < self.n_options:
            raise ConfigError(f"option: {option!r} is not allowed; it must be an integer in [0, {self.n_options})")
        return int(option)

    # ------------------------------------------------------------------ the pending request
    @property
    def decisions(self) -> int:
        """Requests sent since the last reset."""
        return int(self.driver.rs.imisc[M_G_NEXT])

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet finalised."""
        return self.decisions - self.n_completed

    def _pending_row(self, where: str) -> np.ndarray:
        self._need_request(where)
        rs = self.driver.rs
        return rs.a["rq_i"][int(rs.imisc[M_PEND_SLOT])]

    @property
    def origin(self) -> int:
        """Index of the pending request's origin in ``scenario.workload.origins``."""
        return int(self._pending_row("origin")[RQ_O])

    @property
    def origin_name(self) -> str:
        return self.scenario.workload.origins[self.origin]

    @property
    def sample(self) -> int:
        """Trace sample id of the pending request."""
        return int(self._pending_row("sample")[RQ_S])

    @property
    def time_s(self) -> float:
        """Arrival time (simulated seconds) of the pending request."""
        self._need_request("time_s")
        rs = self.driver.rs
        return float(rs.a["rq_t"][int(rs.imisc[M_PEND_SLOT])])

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
        t = self.time_s
        c = self.compiled
        first = np.minimum.reduceat(self.driver.rs.a["server_free"], c.node_i[:, NODE_LO])
        return np.maximum(first - t, 0.0)

