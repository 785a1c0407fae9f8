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

Packs (for fused step kernels)
------------------------------
An engine keeps all its arrays in four flat buffers, ``packs = (CF, CI, SF, SI)``, laid out and read
by :mod:`idnbandit.sim.packed`, so one kernel call can serve a request and move on to the next.
Requests come in blocks of ``BLOCK`` and background jobs through a window per node; both hold
exactly the values of :class:`~idnbandit.sim.workload.RequestStream` and
:class:`~idnbandit.sim.workload.BackgroundSource` (same seed, same run), only buffered differently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..scenario.model import ArrivalProcess, Scenario, Tier
from ..traces.trace import Trace
from .compiled import (
    NODE_LO,
    OPT_NODE,
    Compiled,
    compile_scenario,
    context_names,
)
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
    Scratch,
    SimState,
    new_scratch,
    new_state,
)
from .packed import (
    BG_WINDOW,
    BLOCK,
    HDR_W,
    M_APPLIED,
    M_DECISIONS,
    M_LEN,
    M_ORIGIN,
    M_POS,
    M_SAMPLE,
    M_T,
    _fill,
    _layout,
    pack_advance,
    pack_commit,
)
from .workload import _BG_BLOCK, CHUNK, BackgroundSource, RequestStream

__all__ = ["Engine", "Outcome", "resolve_inputs", "check_seed", "outcome_from_row"]

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


class _RequestBlocks:
    """:class:`RequestStream`'s requests in blocks of ``BLOCK``; Poisson streams are drawn lazily
    (numpy's exponential and bounded-integer draws and ``cumsum`` are sequential, so drawing a chunk
    in pieces gives the same values), other processes chunk by chunk."""

    def __init__(self, scenario: Scenario, n_samples: int, seed: int, first: int = 64):
        self.first = first
        w = scenario.workload
        self.lazy = w.process is ArrivalProcess.POISSON
        self.left = 0  # requests left in the current chunk
        if not self.lazy:
            self.rs = RequestStream(scenario, n_samples, seed)
            return
        # RequestStream's Poisson generators only: child i of SeedSequence(seed).spawn(5) is
        # SeedSequence(seed, spawn_key=(i,)) (children 0, 1, 2: arrivals, origins, samples)
        self.rs = self
        self._g_arr, self._g_org, self._g_smp = (np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
                                                 for i in range(3))
        self.n_origins, self.n_samples = len(w.origins), int(n_samples)
        self._lmax = w.rate_per_s * self.n_origins
        self._t = 0.0

    def next_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rs = self.rs
        if self.left == 0:
            self.left, self.i, self.acc, self.base = CHUNK, 0, 0.0, rs._t
            self.chunk = None if self.lazy else rs.next_chunk()
        # lazy blocks grow first, 2 first, ... BLOCK: short episodes draw little
        b = min(BLOCK if not self.lazy else min(BLOCK, max(self.first, 2 * self.i)), self.left)
        self.left -= b
        if not self.lazy:
            self.i += b
            return tuple(a[self.i - b:self.i] for a in self.chunk)
        self.i += b
        c = np.cumsum(np.concatenate(([self.acc], rs._g_arr.exponential(1.0 / rs._lmax, b))))[1:]
        self.acc = float(c[-1])
        t = self.base + c
        if self.left == 0:
            rs._t = float(t[-1])
        return (t, rs._g_org.integers(0, rs.n_origins, b, dtype=np.int64),
                rs._g_smp.integers(0, rs.n_samples, b, dtype=np.int64))


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
        self._setup(*resolve_inputs(scenario, trace), None)
        self.reset(seed)

    def _setup(self, scenario: Scenario, trace: Trace, compiled: Compiled, packs) -> None:
        self.scenario, self.trace, self.compiled = scenario, trace, compiled
        self.n_options = compiled.n_options
        self.n_features = int(compiled.n_features)
        self.context_names = context_names(scenario)
        self.first_block = 64  # requests drawn at once after a reset (doubling up to BLOCK; long runs: BLOCK)
        bg = BackgroundSource(scenario, scenario.seed)  # validates; rate, mean service, deterministic? per node
        self._bg_nodes = {n: v[1:] for n, v in bg.nodes.items()}
        if packs is None:
            c = compiled
            hdr = np.zeros(10 * HDR_W, np.int64)
            fa, ia = [c.node_f, c.opt_f, c.feat, c.fault_f, c.par], [c.node_i, c.opt_i, c.predc, c.fault_i, c.bg_nodes]
            cf, ci = np.zeros(_layout(hdr, 0, fa, 0)), np.zeros(_layout(hdr, 5, ia, hdr.size), np.int64)
            ci[:hdr.size] = hdr
            _fill(cf, hdr, 0, fa), _fill(ci, hdr, 5, ia)
            packs = (cf, ci)
        self._CF, self._CI = packs

    def clone(self, seed: int | None = None) -> Engine:
        """A new engine on the same compiled scenario and trace (nothing recompiled), reset to ``seed``."""
        new = object.__new__(Engine)
        new._setup(self.scenario, self.trace, self.compiled, (self._CF, self._CI))
        return new.reset(seed)

    def pack_sizes(self) -> tuple[int, int]:
        """Entries the state packs SF and SI need now."""
        hdr = np.zeros(16 * HDR_W, np.int64)
        st, sc, blk = self._st, self._sc, self._blk
        return (_layout(hdr, 0, [blk[1], *st[:2], st.bg_horizon, *sc[:3], *sc[4:], blk[0], st.bg_arr, st.bg_svc], 0),
                _layout(hdr, 12, [blk[4], st.bg_i, blk[2], blk[3]], hdr.size))

    def move_state(self, sf: np.ndarray, si: np.ndarray) -> None:
        """Keep the state in the given buffers (float64, int64; at least :meth:`pack_sizes` long), e.g.
        rows of 2-d arrays holding many engines; later resets reuse them while they are large enough.

        Raises
        ------
        ConfigError
            If a buffer is too short.
        """
        self._bind(self._st, self._sc, [a.copy() for a in self._blk], (sf, si))

    @property
    def packs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(CF, CI, SF, SI)``, the flat buffers of the compiled scenario and the state (module docstring).

        SF/SI are replaced when a background window grows: fetch them again after a Python-side call.
        """
        return self._CF, self._CI, self._SF, self._SI

    def reset(self, seed: int | None = None) -> Engine:
        """Idle queues and a fresh request stream from ``seed`` (None: the scenario seed)."""
        self.seed = check_seed(seed, self.scenario.seed)
        c = self.compiled
        self._src = _RequestBlocks(self.scenario, c.feat.shape[1], self.seed, self.first_block)
        # per background node: generator, rate, mean service, deterministic?, block arrivals, services, next
        # index; the generator of node n is BackgroundSource's, SeedSequence(seed).spawn(5)[3].spawn(Nn)[n]
        self._bgq = {n: [np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(3, n))), *v,
                         np.zeros(0), np.zeros(0), 0] for n, v in self._bg_nodes.items()}
        self._bg_last = dict.fromkeys(self._bg_nodes, 0.0)
        mi = np.zeros(6, np.int64)
        mi[M_APPLIED] = 1
        blk = [np.zeros(BLOCK), np.zeros(1), np.zeros(BLOCK, np.int64), np.zeros(BLOCK, np.int64), mi]
        self._bind(new_state(c, BG_WINDOW), new_scratch(c), blk)
        return self

    def _bind(self, st: SimState, sc: Scratch, blk: list[np.ndarray], buffers=None) -> None:
        """Copy the state into the SF/SI packs (``buffers``, else the current ones when the layout is
        unchanged, else new ones) and re-point every state array to views of them."""
        hdr = np.zeros(16 * HDR_W, np.int64)
        fa = [blk[1], st.server_free, st.link_free, st.bg_horizon, sc.x, sc.cf, sc.cf_out, sc.fb_rs, sc.servers, blk[0],
              st.bg_arr, st.bg_svc]
        ia = [blk[4], st.bg_i, blk[2], blk[3]]
        nf, ni = _layout(hdr, 0, fa, 0), _layout(hdr, 12, ia, hdr.size)
        if buffers is None:
            old = getattr(self, "_SI", None)
            if old is not None and old.shape[0] >= ni and self._SF.shape[0] >= nf \
                    and np.array_equal(old[:hdr.size], hdr):
                buffers = self._SF, self._SI
            else:
                buffers = np.zeros(nf), np.zeros(ni, np.int64)
        elif buffers[0].shape[0] < nf or buffers[1].shape[0] < ni:
            raise ConfigError(f"buffers: need at least ({nf}, {ni}) entries, got "
                              f"({buffers[0].shape[0]}, {buffers[1].shape[0]})")
        self._SF, self._SI = buffers
        self._SI[:hdr.size] = hdr
        mf, server_free, link_free, bg_horizon, x, cf, cf_out, fb_rs, tmp, blk_t, bg_arr, bg_svc = \
            _fill(self._SF, hdr, 0, fa)
        mi, bg_i, blk_o, blk_s = _fill(self._SI, hdr, 12, ia)
        self._st = SimState(server_free, link_free, bg_arr, bg_svc, bg_i, bg_horizon)
        self._sc = Scratch(x, cf, cf_out, cf_out[cf_out.shape[0] - 1], fb_rs, tmp)
        self._blk = [blk_t, mf, blk_o, blk_s, mi]
        self._mi, self._mf = mi, mf

    # ------------------------------------------------------------------ request flow
    def next_request(self) -> np.ndarray:
        """Advance to the next arrival; return its (n_features,) context (a copy).

        Raises
        ------
        ConfigError
            If the previous request was not served with :meth:`apply`.
        """
        if not self._mi[M_APPLIED]:
            raise ConfigError("next_request: the current request was not served; call apply(option) first")
        self.advance()
        return self._sc.x.copy()

    def advance(self) -> None:
        """:meth:`next_request` without the check and the copy (refills blocks and windows as needed)."""
        while not pack_advance(self._CF, self._CI, self._SF, self._SI):
            mi = self._mi
            if mi[M_POS] >= mi[M_LEN]:
                t, o, s = self._src.next_block()
                n = t.shape[0]
                self._blk[0][:n], self._blk[2][:n], self._blk[3][:n] = t, o, s
                mi[M_POS], mi[M_LEN] = 0, n
            else:
                self._top_up(float(self._blk[0][mi[M_POS]]) + self.compiled.timeout_s)

    def _top_up(self, until: float) -> None:
        """Refill the background window of every node whose horizon is before ``until`` (grow if needed)."""
        st = self._st
        cap = st.bg_arr.shape[1]
        short = False
        for n, q in self._bgq.items():
            if st.bg_horizon[n] >= until:
                continue
            p, ln = int(st.bg_i[n, 0]), int(st.bg_i[n, 1])
            pos = ln - p
            st.bg_arr[n, :pos] = st.bg_arr[n, p:ln].copy()
            st.bg_svc[n, :pos] = st.bg_svc[n, p:ln].copy()
            horizon = float(st.bg_horizon[n])
            while pos < cap:
                g, rate, mean_s, det, arr, svc, i = q
                if i == arr.shape[0]:  # a new block, drawn exactly as BackgroundSource.top_up does
                    gaps = g.exponential(1.0 / rate, _BG_BLOCK)
                    svc = np.full(_BG_BLOCK, mean_s) if det else g.exponential(mean_s, _BG_BLOCK)
                    arr = self._bg_last[n] + np.cumsum(gaps)
                    self._bg_last[n] = float(arr[-1])
                    q[4], q[5], i = arr, svc, 0
                j = min(arr.shape[0], i + cap - pos)
                st.bg_arr[n, pos:pos + j - i] = arr[i:j]
                st.bg_svc[n, pos:pos + j - i] = svc[i:j]
                pos += j - i
                horizon = float(arr[j - 1])
                q[6] = j
            st.bg_i[n, 0], st.bg_i[n, 1] = 0, pos
            st.bg_horizon[n] = horizon
            short |= horizon < until
        if short:  # the window cannot hold the jobs up to the horizon: double it
            arr2, svc2 = np.zeros((st.bg_arr.shape[0], 2 * cap)), np.zeros((st.bg_arr.shape[0], 2 * cap))
            arr2[:, :cap], svc2[:, :cap] = st.bg_arr, st.bg_svc
            self._bind(st._replace(bg_arr=arr2, bg_svc=svc2), self._sc, self._blk)
            self._top_up(until)

    def _need_request(self, where: str):
        if self._mi[M_APPLIED]:
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
        r = pack_commit(self._CF, self._CI, self._SF, self._SI, k)
        return outcome_from_row(self.scenario, k, self._sc.out), float(r), self._sc.fb_rs.copy()

    def _check_option(self, option) -> int:
        if isinstance(option, bool) or not isinstance(option, (int, np.integer)) or not 0 <= option < self.n_options:
            raise ConfigError(f"option: {option!r} is not allowed; it must be an integer in [0, {self.n_options})")
        return int(option)

    # ------------------------------------------------------------------ the pending request
    @property
    def decisions(self) -> int:
        """Requests served since the last reset."""
        return int(self._mi[M_DECISIONS])

    @property
    def origin(self) -> int:
        """Index of the pending request's origin in ``scenario.workload.origins``."""
        self._need_request("origin")
        return int(self._mi[M_ORIGIN])

    @property
    def origin_name(self) -> str:
        return self.scenario.workload.origins[self.origin]

    @property
    def sample(self) -> int:
        """Trace sample id of the pending request."""
        self._need_request("sample")
        return int(self._mi[M_SAMPLE])

    @property
    def time_s(self) -> float:
        """Arrival time (simulated seconds) of the pending request."""
        self._need_request("time_s")
        return float(self._mf[M_T])

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
        return np.maximum(first - self._mf[M_T], 0.0)
