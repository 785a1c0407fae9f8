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
An engine keeps all its arrays in four flat buffers, ``packs = (CF, CI, SF, SI)``: the compiled
scenario (float64 / int64, read-only, shared by :meth:`Engine.clone`) and the mutable state (queues,
background-job window, scratch, the current block of requests, the pending request). ``CI`` starts
with the header of the compiled arrays and ``SI`` with that of the state arrays (rows of
``offset, ndim, d0, d1, d2``; row indices ``CF_*``, ``CI_*``, ``SF_*``, ``SI_*``). A numba kernel
taking the four packs (few arguments: cheap to call from Python) rebuilds views with
:func:`pack_commit_` and :func:`pack_advance_`, so one call can serve a request and move on to the
next. Requests come in blocks of ``BLOCK`` and background jobs through a window per node; both hold
exactly the values of :class:`~idnbandit.sim.workload.RequestStream` and
:class:`~idnbandit.sim.workload.BackgroundSource` (same seed, same run), only buffered differently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ..errors import ConfigError
from ..scenario.model import ArrivalProcess, Scenario, Tier
from ..traces.trace import Trace
from .compiled import (
    NODE_LO,
    OPT_LOCAL,
    OPT_NODE,
    P_FB_MODE,
    P_TIMEOUT_S,
    Compiled,
    compile_scenario,
    context_names,
)
from .kernels import (
    FB_BANDIT,
    FB_FULL,
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
    bg_ready_,
    commit_,
    context_,
    new_scratch,
    new_state,
    option_outcome_,
    prepare_,
)
from .workload import _BG_BLOCK, CHUNK, BackgroundSource, RequestStream

__all__ = ["Engine", "Outcome", "resolve_inputs", "check_seed", "outcome_from_row", "BLOCK", "pack_commit_",
           "pack_advance_", "pack_advance_context_", "pack_feedback_counterfactuals_", "pack_commit", "pack_advance", "pack_view1", "pack_view2", "pack_view3"]

_TIERS = list(Tier)
BLOCK = 1024  # requests buffered at a time
BG_WINDOW = 1024  # initial background jobs buffered per node (grows when a window cannot reach the horizon)
HDR_W = 5  # header row: offset, ndim, d0, d1, d2
CF_NODE_F, CF_OPT_F, CF_FEAT, CF_FAULT_F, CF_PAR = range(5)  # header rows (in CI) of the CF arrays
CI_NODE_I, CI_OPT_I, CI_PREDC, CI_FAULT_I, CI_BG_NODES = range(5, 10)  # ... and of the CI arrays
# header rows (in SI) of the SF arrays, then of the SI arrays, in storage order (small, hot arrays first)
SF_MISC, SF_SERVER_FREE, SF_LINK_FREE, SF_BG_HORIZON, SF_X, SF_CF, SF_CF_OUT, SF_FB_RS, SF_TMP, SF_BLK_T, \
    SF_BG_ARR, SF_BG_SVC = range(12)
SI_MISC, SI_BG_I, SI_BLK_O, SI_BLK_S = range(12, 16)
M_T = 0  # SF misc: arrival time of the pending request
M_ORIGIN, M_SAMPLE, M_POS, M_LEN, M_APPLIED, M_DECISIONS = range(6)  # SI misc


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


# ---------------------------------------------------------------------- packs
def _layout(hdr: np.ndarray, row0: int, arrays: list[np.ndarray], start: int) -> int:
    """Write the header rows of ``arrays`` (packed from ``start`` on) into ``hdr[row0:]``; return the end."""
    off = start
    for i, a in enumerate(arrays):
        d = [*a.shape, 1, 1, 1][:3]
        hdr[(row0 + i) * HDR_W:(row0 + i + 1) * HDR_W] = [off, a.ndim, *d]
        off += a.size
    return off


def _fill(buf: np.ndarray, hdr: np.ndarray, row0: int, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Copy ``arrays`` into ``buf`` at their header rows; return the views."""
    views = []
    for i, a in enumerate(arrays):
        o = int(hdr[(row0 + i) * HDR_W])
        v = buf[o:o + a.size].reshape(a.shape)
        v[...] = a
        views.append(v)
    return views


def _view_intrinsic(ndim: int):
    """An intrinsic ``view(buf, offset, d0, d1, d2)``: the C-contiguous ``ndim``-d view of the 1-d ``buf``
    starting at ``offset`` (``reshape`` calls a C helper each time; this is a few instructions). The
    view is not reference-counted: use it only inside the kernel that received ``buf``."""

    @intrinsic
    def view(typingctx, buf, off, d0, d1, d2):
        ret = types.Array(buf.dtype, ndim, "C")

        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = make_array(aryty)(context, builder, args[0])
            dims = list(args[2:2 + ndim])
            strides, acc = [], ary.itemsize
            for d in reversed(dims):
                strides.insert(0, acc)
                acc = builder.mul(acc, d)
            res = make_array(ret)(context, builder)
            # no meminfo: the view is not reference-counted (views never outlive the kernel call that
            # holds the packs, and NRT atomics per view would cost more than the work on them)
            populate_array(res, data=builder.gep(ary.data, [args[1]]), shape=dims, strides=strides,
                           itemsize=ary.itemsize, meminfo=None)
            return impl_ret_borrowed(context, builder, ret, res._getvalue())

        return ret(buf, off, d0, d1, d2), codegen

    return view


_view1, _view2, _view3 = _view_intrinsic(1), _view_intrinsic(2), _view_intrinsic(3)


@njit(cache=True, inline="always")
def pack_view1(buf, hdr, i):
    """View of the 1-d array of header row ``i`` (``pack_view2``/``pack_view3``: 2-d/3-d)."""
    r = HDR_W * i
    return _view1(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, inline="always")
def pack_view2(buf, hdr, i):
    r = HDR_W * i
    return _view2(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, inline="always")
def pack_view3(buf, hdr, i):
    r = HDR_W * i
    return _view3(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, error_model="numpy")
def pack_commit_(CF, CI, SF, SI, a):  # noqa: N803  (pack names)
    """Serve the pending request with option ``a`` (see :meth:`Engine.apply`); returns the observed reward."""
    mi = pack_view1(SI, SI, SI_MISC)
    r = commit_(pack_view2(CF, CI, CF_NODE_F), pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), pack_view3(CF, CI, CF_OPT_F),
                pack_view3(CI, CI, CI_PREDC), pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), pack_view1(CF, CI, CF_PAR),
                pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_LINK_FREE), pack_view2(SF, SI, SF_BG_ARR),
                pack_view2(SF, SI, SF_BG_SVC), pack_view2(SI, SI, SI_BG_I), pack_view1(SF, SI, SF_CF), pack_view2(SF, SI, SF_CF_OUT),
                pack_view1(SF, SI, SF_FB_RS), pack_view1(SF, SI, SF_TMP), mi[M_ORIGIN], a, mi[M_SAMPLE], pack_view1(SF, SI, SF_MISC)[M_T])
    mi[M_APPLIED] = 1
    mi[M_DECISIONS] += 1
    return r


@njit(cache=True, error_model="numpy")
def _advance_(CF, CI, SF, SI, counterfactuals):  # noqa: N803
    mi = pack_view1(SI, SI, SI_MISC)
    p = mi[M_POS]
    if p >= mi[M_LEN]:
        return False
    t = pack_view1(SF, SI, SF_BLK_T)[p]
    bg_nodes = pack_view1(CI, CI, CI_BG_NODES)
    if not bg_ready_(bg_nodes, pack_view1(SF, SI, SF_BG_HORIZON), t + pack_view1(CF, CI, CF_PAR)[P_TIMEOUT_S]):
        return False
    o = pack_view1(SI, SI, SI_BLK_O)[p]
    s = pack_view1(SI, SI, SI_BLK_S)[p]
    node_i, opt_i, par = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), pack_view1(CF, CI, CF_PAR)
    server_free, bg_arr, bg_svc = pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_BG_ARR), \
        pack_view2(SF, SI, SF_BG_SVC)
    bg_i, x, feat = pack_view2(SI, SI, SI_BG_I), pack_view1(SF, SI, SF_X), pack_view3(CF, CI, CF_FEAT)
    if counterfactuals:
        prepare_(pack_view2(CF, CI, CF_NODE_F), node_i, opt_i, pack_view3(CF, CI, CF_OPT_F), pack_view3(CI, CI, CI_PREDC),
                 pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), par, feat, bg_nodes, server_free,
                 pack_view2(SF, SI, SF_LINK_FREE), bg_arr, bg_svc, bg_i, x, pack_view1(SF, SI, SF_CF),
                 pack_view2(SF, SI, SF_CF_OUT), pack_view1(SF, SI, SF_TMP), o, s, t)
    else:
        context_(node_i, opt_i, par, feat, bg_nodes, server_free, bg_arr, bg_svc, bg_i, x, o, s, t)
    mi[M_POS] = p + 1
    mi[M_ORIGIN] = o
    mi[M_SAMPLE] = s
    mi[M_APPLIED] = 0
    pack_view1(SF, SI, SF_MISC)[M_T] = t
    return True


@njit(cache=True, error_model="numpy")
def pack_advance_(CF, CI, SF, SI):  # noqa: N803
    """Move to the next request of the block, advance the background load, fill the context and the
    counterfactuals; False (nothing done) when the block is used up or the background window does
    not reach its horizon (Python refills, see :meth:`Engine.advance`)."""
    return _advance_(CF, CI, SF, SI, True)


@njit(cache=True, error_model="numpy")
def pack_advance_context_(CF, CI, SF, SI):  # noqa: N803
    """:func:`pack_advance_` without the counterfactuals (see :func:`pack_feedback_counterfactuals_`)."""
    return _advance_(CF, CI, SF, SI, False)


@njit(cache=True, error_model="numpy")
def pack_feedback_counterfactuals_(CF, CI, SF, SI):  # noqa: N803
    """Counterfactuals the feedback mode reads (all options for ``full``, the local ones for
    ``label_on_forward``/``proxy``, none for ``bandit``), from the current queues: after
    :func:`pack_advance_context_`, this makes :func:`pack_commit_` give the same feedback as after
    :func:`pack_advance_`."""
    par = pack_view1(CF, CI, CF_PAR)
    mode = int(par[P_FB_MODE])
    if mode == FB_BANDIT:
        return
    mi = pack_view1(SI, SI, SI_MISC)
    o, s, t = mi[M_ORIGIN], mi[M_SAMPLE], pack_view1(SF, SI, SF_MISC)[M_T]
    opt_i, cf = pack_view3(CI, CI, CI_OPT_I), pack_view1(SF, SI, SF_CF)
    for k in range(opt_i.shape[1]):
        if mode == FB_FULL or opt_i[o, k, OPT_LOCAL] == 1:
            cf[k] = option_outcome_(pack_view2(CF, CI, CF_NODE_F), pack_view2(CI, CI, CI_NODE_I), opt_i,
                                    pack_view3(CF, CI, CF_OPT_F), pack_view3(CI, CI, CI_PREDC),
                                    pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), par,
                                    pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_LINK_FREE),
                                    pack_view2(SF, SI, SF_BG_ARR), pack_view2(SF, SI, SF_BG_SVC),
                                    pack_view2(SI, SI, SI_BG_I), o, k, s, t, False, pack_view1(SF, SI, SF_TMP),
                                    pack_view2(SF, SI, SF_CF_OUT), k)


@njit(cache=True, error_model="numpy")
def pack_commit(CF, CI, SF, SI, a):  # noqa: N803
    """:func:`pack_commit_` callable from Python."""
    return pack_commit_(CF, CI, SF, SI, a)


@njit(cache=True, error_model="numpy")
def pack_advance(CF, CI, SF, SI):  # noqa: N803
    """:func:`pack_advance_` callable from Python."""
    return pack_advance_(CF, CI, SF, SI)


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
