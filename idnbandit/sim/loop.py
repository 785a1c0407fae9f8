"""The drivers of the event core (:mod:`idnbandit.sim.core`): the request loop, in one place.

Two drivers, one core. Agents with numba kernels (``agent.kernels()``) run in one compiled call,
:func:`drive_fused_`, which processes events, calls the agent's ``select`` at each decision and
``update`` at each feedback delivery, and returns only when the core needs Python (a new block of
requests or background jobs, more room, new uniforms). Any other object with ``act`` / ``update``
runs in :func:`drive_python`, which calls the same core functions one step at a time. Decisions see
the same contexts and the agents the same feedback in the same order on both paths, and uniforms
are drawn from ``agent.rng`` row by row as ``act`` would draw them, so both give identical
trajectories. Multi-hop delivery (``scope``) is the same loop with decisions at every decision stop
and one learner per decision node (``per-node``) or one for all (``shared``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._kernel_cache import require_tested_numba
from .._kernel_ids import stabilise_kernel_ids
from ..errors import ConfigError
from .core import (
    C_BAD_ACTION,
    C_DECIDE,
    C_DELIVER,
    C_DONE,
    C_NEED_BG,
    C_NEED_REQUESTS,
    C_NEED_SPACE,
    C_NEED_UNIFORMS,
    advance_,
    decide_,
    delivered_,
    run_to_decision_,
)
from .heap import heap_push_
from .packed import NO_NRT, WITH_NRT, pack_view1, pack_view2, pack_view3
from .state import (
    DL_A,
    DL_AGENT,
    F_DL_R,
    F_DL_RS,
    F_DL_X,
    F_RQ_CF,
    F_RQ_P,
    F_RQ_X,
    I_DL_I,
    I_MISC,
    KEY_BG,
    M_BG_NEED,
    M_DL_SLOT,
    M_ERR,
    M_G_NEXT,
    M_HEAP_N,
    M_LIMIT,
    M_PEND_AGENT,
    M_PEND_ROW,
    M_PEND_SLOT,
    M_REC_ON,
    MODE_ENSEMBLE,
    MODE_MULTIHOP,
    MODE_SINGLE,
    RunState,
    static_packs,
)
from .workload import CHUNK, BackgroundSource, RequestBlocks

__all__ = ["Driver", "check_agent", "drive_kernels", "drive_python", "compile_fused", "advance", "decide",
           "delivered", "run_to_decision"]

# The fused driver, like the core, is compiled without numba's reference counting (NO_NRT, see
# :mod:`idnbandit.sim.packed`). The agent kernels may allocate: they are called through the
# NRT-enabled trampolines below, so that numba, which compiles a callee with its caller's NRT flag
# unless the callee sets it, compiles them with NRT.
@njit(cache=True, error_model="numpy", **WITH_NRT)
def select_(select, astate, x, u):
    return select(astate, x, u)


@njit(cache=True, error_model="numpy", **WITH_NRT)
def update_(update, astate, x, a, r, rs):
    update(astate, x, a, r, rs)


@njit(cache=True, error_model="numpy", **WITH_NRT)
def prob_(prob, astate, x, u, a):
    return prob(astate, x, u, a)


@njit(cache=True, error_model="numpy")
def certain(astate, x, u, a):
    """The propensity kernel of a deterministic policy: its choice has probability 1."""
    return 1.0


@njit(cache=True, error_model="numpy", nogil=True, **NO_NRT)  # nogil: a decision log's writer thread runs meanwhile
def drive_fused_(select, update, prob, states, CF, CI, SF, SI, ubuf, ucur, use_cf):  # noqa: N803  (pack names)
    """Run the core with kernel agents (``states[j]`` = learner ``j``'s kernel state, ``ubuf[j, ucur[j]]``
    its next uniforms) until it needs Python; returns the core's code (``C_NEED_UNIFORMS`` when a
    learner's uniforms ran out, ``C_BAD_ACTION`` with the action in ``M_ERR``). When records are on
    (decision logs), ``prob(state, x, u, a)`` gives each decision's propensity, computed before the
    agent sees anything new."""
    m = pack_view1(SI, SI, I_MISC)
    use_u = ubuf.shape[2] > 0
    rq_p = pack_view2(SF, SI, F_RQ_P)
    while True:
        code = advance_(CF, CI, SF, SI)
        if code == C_DECIDE:
            ag = m[M_PEND_AGENT]
            if use_u and ucur[ag] >= ubuf.shape[1]:
                return C_NEED_UNIFORMS
            slot = m[M_PEND_SLOT]
            if use_cf:
                x = pack_view2(SF, SI, F_RQ_CF)[slot]
            else:
                x = pack_view3(SF, SI, F_RQ_X)[slot, m[M_PEND_ROW]]
            u = ubuf[ag, ucur[ag] if use_u else 0]
            a = select_(select, states[ag], x, u)
            if m[M_REC_ON] == 1:
                rq_p[slot, m[M_PEND_ROW]] = prob_(prob, states[ag], x, u, a)
            if use_u:
                ucur[ag] += 1
            if decide_(CF, CI, SF, SI, a) < 0:
                m[M_ERR] = a
                return C_BAD_ACTION
        elif code == C_DELIVER:
            q = m[M_DL_SLOT]
            dl_i = pack_view2(SI, SI, I_DL_I)
            update_(update, states[dl_i[q, DL_AGENT]], pack_view2(SF, SI, F_DL_X)[q], dl_i[q, DL_A],
                    pack_view1(SF, SI, F_DL_R)[q], pack_view2(SF, SI, F_DL_RS)[q])
            delivered_(SF, SI)
        else:
            return code


advance = advance_  # a compiled function of its own (not inlined), callable from Python as is


@njit(cache=True, error_model="numpy")
def decide(CF, CI, SF, SI, a):  # noqa: N803
    """:func:`~idnbandit.sim.core.decide_` callable from Python."""
    return decide_(CF, CI, SF, SI, a)


@njit(cache=True, error_model="numpy")
def run_to_decision(CF, CI, SF, SI):  # noqa: N803
    """:func:`~idnbandit.sim.core.run_to_decision_` callable from Python."""
    return run_to_decision_(CF, CI, SF, SI)


@njit(cache=True, error_model="numpy")
def delivered(SF, SI):  # noqa: N803
    """:func:`~idnbandit.sim.core.delivered_` callable from Python."""
    delivered_(SF, SI)


def prob_kernel(kern):
    """The propensity kernel of an agent's kernels (``certain`` for a deterministic policy)."""
    return getattr(kern, "prob", None) or certain


def check_agent(agent, k: int, f: int) -> None:
    """Raise :class:`ConfigError` unless ``agent`` has act/update and matching action/feature counts."""
    if not (callable(getattr(agent, "act", None)) and callable(getattr(agent, "update", None))):
        raise ConfigError(f"agent: {type(agent).__name__} has no act/update methods")
    na = getattr(agent, "n_actions", None)
    if na is not None and na != k:
        raise ConfigError(f"agent.n_actions: {na!r} does not match the {k} actions of each decision")
    nf = getattr(agent, "n_features", None)
    if nf is not None and nf != f:
        raise ConfigError(f"agent.n_features: {nf!r} does not match the context length {f}")


class Uniforms:
    """Pre-drawn uniforms of each learner, consumed row by row, so the generator ends exactly where
    ``agent.act`` would have left it (:meth:`settle` rewinds and advances by the rows used)."""

    ROWS = 4096

    def __init__(self, agents, n_unif: int):
        self.agents, self.n_unif = agents, int(n_unif)
        self.buf = np.zeros((len(agents), self.ROWS, self.n_unif))
        self.cur = np.zeros(len(agents), np.int64)
        self._saved = [None] * len(agents)
        self.draw()

    def draw(self) -> None:
        for j, a in enumerate(self.agents):
            self._saved[j] = a.rng.bit_generator.state
            self.buf[j] = a.rng.random((self.ROWS, self.n_unif))
        self.cur[:] = 0

    def settle(self) -> None:
        for j, a in enumerate(self.agents):
            a.rng.bit_generator.state = self._saved[j]
            a.rng.random((int(self.cur[j]), self.n_unif))


class Driver:
    """The Python side of one run: the state, the request and background streams, refills and growth.

    Parameters
    ----------
    c, scenario
        The compiled scenario and the scenario.
    seed
        Run seed (request stream and background jobs).
    steps
        Requests to decide.
    layout
        A :class:`~idnbandit.sim.multihop.MultiHopLayout` for multi-hop delivery, else None.
    n_actions, n_features
        Of each decision.
    curve_points, record
        As for :func:`simulate`.
    static
        ``(CF, CI)`` of ``c`` when already built (engine clones share them).
    requests
        A callable giving the next block of requests ``(times, origins, samples)`` (default: the
        scenario's :class:`~idnbandit.sim.workload.RequestStream` in blocks growing to ``CHUNK``).
    limit
        Requests to decide (default ``steps``).
    ensemble
        Batches of parallel queries per request (:mod:`idnbandit.sim.ensemble_run`).
    """

    def __init__(self, c, scenario, seed: int, steps: int, *, layout=None, n_actions: int, n_features: int,
                 curve_points: int = 200, record: bool = False, static=None, requests=None,
                 limit: int | None = None, delivery_log: bool | None = None, keep_records: int | None = None,
                 ensemble: bool = False, record_rows: int = 256):
        require_tested_numba()  # a clear IdnBanditError on a numba idnbandit is not tested with
        self.c = c
        mode = MODE_MULTIHOP if layout is not None else (MODE_ENSEMBLE if ensemble else MODE_SINGLE)
        if layout is not None:
            stop_i, dec_i, mh_i, d_n, max_dec = layout.stop_i, layout.dec_i, layout.mh_i, len(layout.nodes), \
                layout.max_decisions
        else:
            stop_i, dec_i, mh_i = np.zeros((1, 1, 5), np.int64), np.zeros((1, 2), np.int64), np.zeros(3, np.int64)
            d_n, max_dec = 1, 1
        self.CF, self.CI = static if static is not None else static_packs(c, stop_i, dec_i, mh_i)
        self.rs = RunState(c, n_features=n_features, n_actions=n_actions, max_decisions=max_dec,
                           n_decision_nodes=d_n, steps=steps, curve_points=curve_points,
                           limit=steps if limit is None else limit, mode=mode, record=record,
                           delivery_log=delivery_log, keep_records=keep_records, record_rows=record_rows)
        self.propensities = False  # decision logs: the agent's propensity_kind ("deterministic" / "stochastic")
        self.next_requests = requests if requests is not None else \
            RequestBlocks(scenario, c.feat.shape[1], seed, block=CHUNK).next_block
        self.bg = BackgroundSource(scenario, seed)
        m = self.rs.imisc
        a = self.rs.a
        for b, n in enumerate(c.bg_nodes):
            arr, svc = self.bg.next_block(int(n))
            self.rs.refill_background(b, arr, svc)
            m[M_HEAP_N] = heap_push_.py_func(a["heap_t"], a["heap_k"], a["heap_j"], int(m[M_HEAP_N]), float(arr[0]),
                                             KEY_BG + b, -1 - b)

    @property
    def packs(self):
        return self.CF, self.CI, self.rs.SF, self.rs.SI

    def serve(self, code: int) -> None:
        """Do what the core asked for with ``code`` (refill or grow)."""
        rs = self.rs
        if code == C_NEED_REQUESTS:
            rs.refill_requests(*self.next_requests())
        elif code == C_NEED_BG:
            b = int(rs.imisc[M_BG_NEED])
            rs.refill_background(b, *self.bg.next_block(int(self.c.bg_nodes[b])))
        elif code == C_NEED_SPACE:
            rs.grow()
        else:  # pragma: no cover - codes are exhaustive
            raise RuntimeError(f"unexpected core code {code}")


def _report(code: int, rs: RunState, progress) -> None:
    """Call ``progress`` with the requests decided so far at each chunk of ``CHUNK`` requests."""
    g = int(rs.imisc[M_G_NEXT])
    if code == C_NEED_REQUESTS and progress is not None and g > 0 and g % CHUNK == 0:
        progress(g)


def drive_python(drv: Driver, agents: list, use_cf: bool, progress, steps: int) -> None:
    """Run the core with Python agents (``act`` / ``update``, or ``act_oracle`` with ``use_cf``)."""
    rs = drv.rs
    acts = [getattr(a, "act_oracle", a.act) if use_cf else a.act for a in agents]
    logging = drv.propensities if rs.imisc[M_REC_ON] else False
    n_act = rs.dims[3]
    while True:
        CF, CI, SF, SI = drv.packs  # noqa: N806
        code = advance(CF, CI, SF, SI)
        if code == C_DECIDE:
            m, a = rs.imisc, rs.a
            ag = int(m[M_PEND_AGENT])
            slot = int(m[M_PEND_SLOT])
            x = a["rq_cf"][slot].copy() if use_cf else a["rq_x"][slot, int(m[M_PEND_ROW])].copy()
            if logging == "stochastic":  # decision logs: the propensity of the choice, from the same call
                act, p = agents[ag].act_with_prob(x)
            else:
                act, p = acts[ag](x), 1.0
            if logging:
                a["rq_p"][slot, int(m[M_PEND_ROW])] = p
            if isinstance(act, bool) or not isinstance(act, (int, np.integer)) or not 0 <= act < n_act:
                raise ConfigError(f"agent {type(agents[ag]).__name__} chose {act!r} at request {int(m[M_G_NEXT])}; "
                                  f"actions are [0, {n_act})")
            decide(CF, CI, SF, SI, int(act))
        elif code == C_DELIVER:
            a = rs.a
            q = int(rs.imisc[M_DL_SLOT])
            agents[int(a["dl_i"][q, DL_AGENT])].update(a["dl_x"][q].copy(), int(a["dl_i"][q, DL_A]),
                                                     float(a["dl_r"][q]), rewards=a["dl_rs"][q].copy())
            delivered(SF, SI)
        elif code == C_DONE:
            return
        else:
            _report(code, rs, progress)
            drv.serve(code)


def drive_kernels(drv: Driver, agents: list, kerns: list, use_cf: bool, progress, names: list[str]) -> None:
    """Run the core with kernel agents in :func:`drive_fused_` (one compiled call between refills)."""
    prob = prob_kernel(kerns[0])
    stabilise_kernel_ids(kerns[0].select, kerns[0].update, prob)
    states = tuple(kk.state for kk in kerns)
    unif = Uniforms(agents, int(kerns[0].n_uniforms))
    rs = drv.rs
    try:
        while True:
            CF, CI, SF, SI = drv.packs  # noqa: N806
            code = drive_fused_(kerns[0].select, kerns[0].update, prob, states, CF, CI, SF, SI, unif.buf, unif.cur,
                                use_cf)
            if code == C_DONE:
                return
            if code == C_NEED_UNIFORMS:
                unif.settle()
                unif.draw()
            elif code == C_BAD_ACTION:
                m = rs.imisc
                raise ConfigError(f"agent {names[int(m[M_PEND_AGENT])]!r} chose an action ({int(m[M_ERR])}) "
                                  f"outside [0, {rs.dims[3]}) at request {int(m[M_G_NEXT])}")
            else:
                _report(code, rs, progress)
                drv.serve(code)
    finally:
        unif.settle()


def compile_fused(kern, n_agents: int, use_cf: bool, drv: Driver) -> None:
    """Compile (or load from numba's cache) the fused driver for this agent's kernels, before a clock starts."""
    stabilise_kernel_ids(kern.select, kern.update, prob_kernel(kern))
    CF, CI, SF, SI = drv.packs  # noqa: N806
    sig_states = tuple(kern.state for _ in range(n_agents))
    # a dry call: limit 0 makes the core return at once (nothing to decide, nothing in flight)
    m = drv.rs.imisc
    limit = int(m[M_LIMIT])
    m[M_LIMIT] = 0
    try:
        drive_fused_(kern.select, kern.update, prob_kernel(kern), sig_states, CF, CI, SF, SI,
                     np.zeros((n_agents, 1, int(kern.n_uniforms))), np.zeros(n_agents, np.int64), use_cf)
    finally:
        m[M_LIMIT] = limit
