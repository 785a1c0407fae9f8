"""The arrays of one simulation run, packed in four buffers (``CF, CI, SF, SI``, :mod:`idnbandit.sim.packed`).

Static (``CF``/``CI``, built once per compiled scenario): the :class:`~idnbandit.sim.compiled.Compiled`
arrays and the multi-hop layout. Dynamic (``SF``/``SI``): resources (server and transmitter
next-free times), the event heap, background-job blocks, the current block of requests, the
in-flight requests (a ring indexed by request number), the network jobs (a pool), the pending
feedback (a FIFO), optional per-request records, the streaming metrics and a few scratch rows.

Kernels address arrays by the header-row constants below (``F_*`` for float64 arrays in ``SF``,
``I_*`` for int64 arrays in ``SI``; ``C_*`` / ``CI_*`` for the static ones) and scalars by the
``M_*`` (ints) / ``T_*`` (floats) indices of the two ``misc`` arrays. Memory is bounded by what is
in flight: every growable structure starts small and :meth:`RunState.grow` doubles what the core
reports full; background jobs and requests come in fixed-size blocks (:meth:`refill_requests`,
:meth:`refill_background`).
"""

from __future__ import annotations

import numpy as np

from .compiled import NODE_HI, Compiled
from .metrics import HIST_BINS, N_SUMS, curve_points_of
from .packed import HDR_W, fill, layout
from .stages import N_OUT

__all__ = ["RunState", "static_packs", "rec_width"]

# ---------------------------------------------------------------- static packs (CF / CI)
C_NODE_F, C_OPT_F, C_FEAT, C_FAULT_F, C_PAR = range(5)
CI_NODE_I, CI_OPT_I, CI_PREDC, CI_FAULT_I, CI_BG_NODE, CI_STOP_I, CI_DEC_I, CI_MH_I = range(5, 13)
N_STATIC = 13

# ---------------------------------------------------------------- state packs (SF / SI)
(F_MISC, F_SERVER_FREE, F_LINK_FREE, F_HEAP_T, F_BG_ARR, F_BG_SVC, F_REQ_T, F_RQ_T, F_RQ_CF, F_RQ_CFOUT, F_RQ_X,
 F_RQ_ACC, F_JOB_F, F_DL_X, F_DL_R, F_DL_RS, F_DL_DUE, F_REC, F_SUMS, F_CF_SUM, F_CURVE_REWARD, F_CURVE_ORACLE,
 F_CURVE_CF, F_OUT, F_FB, F_VALS, F_RQ_Q, F_RQ_P) = range(28)
(I_MISC, I_HEAP_K, I_HEAP_J, I_BG_I, I_REQ_O, I_REQ_S, I_RQ_I, I_RQ_DEC, I_JOB_I, I_JOB_FREE, I_DL_I, I_OPT_COUNT,
 I_TIER_COUNT, I_HIST, I_CURVE_T, I_NODE_COUNTS, I_DLOG) = range(28, 45)
N_STATE = 45
FLOAT_NAMES = ("misc", "server_free", "link_free", "heap_t", "bg_arr", "bg_svc", "req_t", "rq_t", "rq_cf", "rq_cfout",
               "rq_x", "rq_acc", "job_f", "dl_x", "dl_r", "dl_rs", "dl_due", "rec", "sums", "cf_sum", "curve_reward",
               "curve_oracle", "curve_cf", "out", "fb", "vals", "rq_q", "rq_p")
INT_NAMES = ("imisc", "heap_k", "heap_j", "bg_i", "req_o", "req_s", "rq_i", "rq_dec", "job_i", "job_free", "dl_i",
             "opt_count", "tier_count", "hist", "curve_t", "node_counts", "dlog")

# misc ints
(M_G_NEXT, M_LIMIT, M_HEAD, M_HEAP_N, M_REQ_POS, M_REQ_LEN, M_JOB_FREE_N, M_DL_HEAD, M_DL_N, M_REC_N, M_PEND_KIND,
 M_PEND_JOB, M_PEND_AGENT, M_PEND_SLOT, M_PEND_ROW, M_N_FINAL, M_BG_NEED, M_MODE, M_REC_ON, M_NEED, M_PTR,
 M_ERR, M_DL_SLOT, M_DLOG_N, M_N_DELIVERED) = range(25)
N_IMISC = 25
# misc floats
T_PEND, T_NOW = range(2)
# the pending decision (M_PEND_KIND): a request at its origin, a request at a multi-hop decision stop,
# an ensemble request whose batch answered (or whose client gave up)
PEND_NONE, PEND_ORIGIN, PEND_STOP, PEND_BATCH = 0, 1, 2, 3
# event keys (ties in time): request g's stage s is g * STAGES + s; background node slot b is KEY_BG + b
STAGES = 64
KEY_BG = -(1 << 40)
N_FMISC = 4

# request ring columns (rq_i), decision rows (rq_dec), node-stage times (rq_acc)
RQ_G, RQ_O, RQ_S, RQ_K, RQ_STATUS, RQ_ND, RQ_OUTSTANDING = range(7)
N_RQ_I = 7
MODE_SINGLE, MODE_MULTIHOP, MODE_ENSEMBLE = 0, 1, 2  # M_MODE
Q_SENT, Q_RESP = range(2)  # rq_q columns (ensembles): when each option was queried and answered
DEC_H, DEC_D, DEC_A, DEC_E = range(4)
ACC_ARR, ACC_START, ACC_END = range(3)
N_ACC = 3
ST_FREE, ST_ALIVE, ST_FINAL = 0, 1, 2  # request status
# job pool columns (job_i)
J_G, J_O, J_K, J_HOP, J_PHASE, J_STAGE, J_STOP, J_FORK = range(8)
N_JOB_I = 8
PH_UP, PH_NODE, PH_DOWN, PH_DONE = range(4)
# delivery FIFO columns (dl_i)
DL_A, DL_AGENT, DL_DUE_N, DL_G = range(4)
# per-request records (rec); rows in completion order
(R_G, R_ORIGIN, R_SAMPLE, R_OPTION, R_T_DECISION, R_T_NODE_ARRIVAL, R_T_SERVICE_START, R_T_SERVICE_END, R_T_COMPLETE,
 R_FEEDBACK_R) = range(10)
R_OUT = 10  # then the N_OUT outcome fields, the observed rewards (A), the estimates (K), the first decision's
# context (F) and its propensity (1): rec_width()
RECORD_FIELDS = ("g", "origin", "sample", "option", "t_decision", "t_node_arrival", "t_service_start",
                 "t_service_end", "t_complete", "feedback_r")
R_FB = R_OUT + N_OUT


def rec_width(k: int, f: int, a: int) -> int:
    """Columns of a per-request record with ``k`` options, contexts of ``f`` and ``a`` actions."""
    return R_FB + a + k + f + 1


# what the core reports full (M_NEED bits)
NEED_HEAP, NEED_RQ, NEED_JOBS, NEED_DL, NEED_REC = 1, 2, 4, 8, 16

BG_BLOCK = 4096  # background jobs per node per block (BackgroundSource draws blocks of this size)


def static_packs(c: Compiled, stop_i: np.ndarray, dec_i: np.ndarray, mh_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(CF, CI)``: the compiled scenario and the multi-hop layout arrays (dummies for one decision)."""
    hdr = np.zeros(N_STATIC * HDR_W, np.int64)
    fa = [c.node_f, c.opt_f, c.feat, c.fault_f, c.par]
    ia = [c.node_i, c.opt_i, c.predc, c.fault_i, c.bg_nodes, stop_i, dec_i, mh_i]
    nf = layout(hdr, 0, fa, 0)
    ni = layout(hdr, len(fa), ia, hdr.size)
    cf, ci = np.zeros(max(nf, 1)), np.zeros(ni, np.int64)
    ci[:hdr.size] = hdr
    fill(cf, hdr, 0, fa)
    fill(ci, hdr, len(fa), ia)
    return cf, ci


class RunState:
    """The mutable arrays of one run, packed in ``SF`` / ``SI``; ``self.a`` maps names to views.

    Parameters
    ----------
    c
        The compiled scenario.
    n_features, n_actions, max_decisions, n_decision_nodes
        Context length, actions per decision, decisions per request (1 without multi-hop) and
        decision nodes (rows of ``node_counts``).
    steps, curve_points
        Curve sampling (by finalised requests).
    limit
        Requests to decide (``M_LIMIT``); the core stops deciding after that many.
    mode
        ``MODE_SINGLE`` (one decision at the origin), ``MODE_MULTIHOP`` (every node on the path decides,
        :mod:`idnbandit.sim.multihop`) or ``MODE_ENSEMBLE`` (batches of parallel queries,
        :mod:`idnbandit.sim.ensemble_run`).
    record
        Keep a per-request record of every finalised request (drained by :meth:`drain_records`).
    delivery_log
        Log the request number of every feedback delivery (default: ``record``).
    keep_records
        Keep at most about this many drained records (None: all).
    request_block
        Requests buffered at a time.
    record_rows
        Records buffered in the packs before they are drained (a decision log drains to its writer).
    """

    def __init__(self, c: Compiled, *, n_features: int, n_actions: int, max_decisions: int = 1,
                 n_decision_nodes: int = 1, steps: int = 1, curve_points: int = 1, limit: int = 1,
                 mode: int = MODE_SINGLE, record: bool = False, delivery_log: bool | None = None,
                 request_block: int = 1024, keep_records: int | None = None, record_rows: int = 256):
        k = c.n_options
        nn = c.node_f.shape[0]
        nbg = c.bg_nodes.shape[0]
        ct = curve_points_of(max(int(steps), 1), curve_points)
        p = ct.shape[0]
        d, f, a = int(max_decisions), int(n_features), int(n_actions)
        cap = 64
        self.dims = (k, d, f, a)
        arrays = {
            "misc": np.zeros(N_FMISC), "server_free": np.zeros(int(c.node_i[-1, NODE_HI])),
            "link_free": np.zeros((nn, 2)), "heap_t": np.zeros(cap), "bg_arr": np.zeros((nbg, BG_BLOCK)),
            "bg_svc": np.zeros((nbg, BG_BLOCK)), "req_t": np.zeros(request_block), "rq_t": np.zeros(cap),
            "rq_cf": np.zeros((cap, k)), "rq_cfout": np.zeros((cap, k, N_OUT)), "rq_x": np.zeros((cap, d, f)),
            "rq_acc": np.zeros((cap, N_ACC)), "job_f": np.zeros((cap, 1)), "dl_x": np.zeros((cap, f)),
            "dl_r": np.zeros(cap), "dl_rs": np.zeros((cap, a)), "dl_due": np.zeros(cap),
            "rec": np.zeros((int(record_rows) if record else 0, rec_width(k, f, a))), "sums": np.zeros(N_SUMS), "cf_sum": np.zeros(k),
            "curve_reward": np.zeros(p), "curve_oracle": np.zeros(p), "curve_cf": np.zeros((p, k)),
            "out": np.zeros((1, N_OUT)), "fb": np.zeros(a), "vals": np.zeros(max(a, k)),
            "rq_q": np.zeros((cap if mode == MODE_ENSEMBLE else 0, k, 2)), "rq_p": np.ones((cap, d)),
            "imisc": np.zeros(N_IMISC, np.int64), "heap_k": np.zeros(cap, np.int64),
            "heap_j": np.zeros(cap, np.int64), "bg_i": np.zeros((nbg, 2), np.int64),
            "req_o": np.zeros(request_block, np.int64), "req_s": np.zeros(request_block, np.int64),
            "rq_i": np.zeros((cap, N_RQ_I), np.int64), "rq_dec": np.zeros((cap, d, 4), np.int64),
            "job_i": np.zeros((cap, N_JOB_I), np.int64), "job_free": np.arange(cap - 1, -1, -1, dtype=np.int64),
            "dl_i": np.zeros((cap, 4), np.int64), "opt_count": np.zeros(k, np.int64),
            "tier_count": np.zeros(4, np.int64), "hist": np.zeros(HIST_BINS, np.int64), "curve_t": ct,
            "node_counts": np.zeros((max(int(n_decision_nodes), 1), 2), np.int64),
            "dlog": np.zeros(256 * d if (record if delivery_log is None else delivery_log) else 0, np.int64),
        }
        m = arrays["imisc"]
        m[M_LIMIT] = int(limit)
        m[M_JOB_FREE_N] = cap
        m[M_MODE] = int(mode)
        m[M_REC_ON] = int(bool(record))
        m[M_BG_NEED] = -1
        self.records: list[np.ndarray] = []
        self.keep_records = keep_records  # None: all; else at most about this many rows are kept (oldest dropped)
        self.sink = None  # a callable taking each drained block of records instead of keeping them (decision logs)
        self.delivered: list[np.ndarray] = []  # request number of each delivered feedback, in delivery order
        self._pack(arrays)

    # ------------------------------------------------------------------ packing
    def _pack(self, arrays: dict[str, np.ndarray]) -> None:
        hdr = np.zeros(N_STATE * HDR_W, np.int64)
        fa = [arrays[n] for n in FLOAT_NAMES]
        ia = [arrays[n] for n in INT_NAMES]
        nf = layout(hdr, 0, fa, 0)
        ni = layout(hdr, len(fa), ia, hdr.size)
        self.SF, self.SI = np.zeros(nf), np.zeros(ni, np.int64)
        self.SI[:hdr.size] = hdr
        views = fill(self.SF, hdr, 0, fa) + fill(self.SI, hdr, len(fa), ia)
        self.a = dict(zip(FLOAT_NAMES + INT_NAMES, views))
        self.imisc, self.fmisc = self.a["imisc"], self.a["misc"]

    @property
    def packs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.SF, self.SI

    # ------------------------------------------------------------------ refills
    def refill_requests(self, t: np.ndarray, o: np.ndarray, s: np.ndarray) -> None:
        """Give the core the next block of requests (at most the block size)."""
        n = t.shape[0]
        if n > self.a["req_t"].shape[0]:
            arrays = dict(self.a)
            arrays["req_t"], arrays["req_o"], arrays["req_s"] = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
            self._pack(arrays)
        self.a["req_t"][:n], self.a["req_o"][:n], self.a["req_s"][:n] = t, o, s
        self.imisc[M_REQ_POS], self.imisc[M_REQ_LEN] = 0, n

    def refill_background(self, b: int, arr: np.ndarray, svc: np.ndarray) -> None:
        """Give background slot ``b`` its next block of jobs (arrival times, service seconds)."""
        n = arr.shape[0]
        self.a["bg_arr"][b, :n], self.a["bg_svc"][b, :n] = arr, svc
        self.a["bg_i"][b] = (0, n)

    # ------------------------------------------------------------------ growth
    def grow(self) -> None:
        """Double every structure the core reported full (``M_NEED``), keeping its contents."""
        need = int(self.imisc[M_NEED])
        if need & NEED_REC:
            self.drain_records()
        if not need & (NEED_HEAP | NEED_RQ | NEED_JOBS | NEED_DL):
            self.imisc[M_NEED] = 0
            return
        a = {n: v.copy() for n, v in self.a.items()}
        m = a["imisc"]
        if need & NEED_HEAP:
            cap = a["heap_t"].shape[0]
            for n in ("heap_t", "heap_k", "heap_j"):
                a[n] = np.concatenate([a[n], np.zeros(cap, a[n].dtype)])
        if need & NEED_RQ:
            cap = a["rq_t"].shape[0]
            new = 2 * cap
            # the live requests, and the one at G_NEXT (its slot may hold a pending origin decision)
            live = range(int(m[M_HEAD]), int(m[M_G_NEXT]) + 1)
            pending_g = int(a["rq_i"][int(m[M_PEND_SLOT]), RQ_G]) if m[M_PEND_KIND] != PEND_NONE else -1
            for n in ("rq_t", "rq_cf", "rq_cfout", "rq_x", "rq_acc", "rq_i", "rq_dec", "rq_q", "rq_p"):
                old = a[n]
                if old.shape[0] == 0:
                    continue
                arr = np.zeros((new, *old.shape[1:]), old.dtype)
                for g in live:
                    arr[g & (new - 1)] = old[g & (cap - 1)]
                a[n] = arr
            if pending_g >= 0:  # the pending decision's slot moves with its request
                m[M_PEND_SLOT] = pending_g & (new - 1)
        if need & NEED_JOBS:
            cap = a["job_f"].shape[0]
            a["job_f"] = np.concatenate([a["job_f"], np.zeros((cap, 1))])
            a["job_i"] = np.concatenate([a["job_i"], np.zeros((cap, N_JOB_I), np.int64)])
            free = np.zeros(2 * cap, np.int64)
            nfree = int(m[M_JOB_FREE_N])
            free[:nfree] = a["job_free"][:nfree]
            free[nfree:nfree + cap] = np.arange(2 * cap - 1, cap - 1, -1)
            a["job_free"] = free
            m[M_JOB_FREE_N] = nfree + cap
        if need & NEED_DL:
            cap = a["dl_r"].shape[0]
            idx = (int(m[M_DL_HEAD]) + np.arange(int(m[M_DL_N]))) % cap
            for n in ("dl_x", "dl_r", "dl_rs", "dl_due", "dl_i"):
                old = a[n]
                arr = np.zeros((2 * cap, *old.shape[1:]), old.dtype)
                arr[:idx.size] = old[idx]
                a[n] = arr
            m[M_DL_HEAD] = 0
        m[M_NEED] = 0
        self._pack(a)

    def drain_records(self) -> None:
        """Move the per-request records (and the delivery log) written so far out of the packs."""
        n = int(self.imisc[M_REC_N])
        if n and self.sink is not None:
            block = self.a["rec"][:n].copy()
            self.imisc[M_REC_N] = 0
            self.sink(block)
        elif n:
            self.records.append(self.a["rec"][:n].copy())
            self.imisc[M_REC_N] = 0
            if self.keep_records is not None:
                while len(self.records) > 1 and sum(r.shape[0] for r in self.records[1:]) >= self.keep_records:
                    self.records.pop(0)
        n = int(self.imisc[M_DLOG_N])
        if n:
            self.delivered.append(self.a["dlog"][:n].copy())
            self.imisc[M_DLOG_N] = 0

    def request_records(self) -> dict[str, np.ndarray]:
        """Every record so far as named columns, sorted by request number (see :data:`RECORD_FIELDS`)."""
        from .stages import OUT_FIELDS

        self.drain_records()
        k, _, f, a_n = self.dims
        rec = np.concatenate(self.records) if self.records else np.zeros((0, rec_width(k, f, a_n)))
        rec = rec[np.argsort(rec[:, R_G], kind="stable")]
        out = {}
        rec = rec.copy()
        rec[np.isinf(rec)] = np.nan  # stages not reached before the request was finalised
        for i, name in enumerate(RECORD_FIELDS + OUT_FIELDS):
            col = rec[:, i]
            out[name] = col.astype(np.int64) if name in ("g", "origin", "sample", "option", "node") else col
        out["feedback_rewards"] = rec[:, R_FB:R_FB + a_n]
        out["estimates"] = rec[:, R_FB + a_n:R_FB + a_n + k]
        out["context"] = rec[:, R_FB + a_n + k:R_FB + a_n + k + f]
        out["propensity"] = rec[:, R_FB + a_n + k + f]
        # position of each request's (first) feedback delivery; -1 if not delivered
        log = np.concatenate(self.delivered) if self.delivered else np.zeros(0, np.int64)
        order = np.full(out["g"].shape[0], -1, np.int64)
        pos = {int(g): i for i, g in enumerate(out["g"])}
        seen: set[int] = set()
        for g in log.tolist():
            if g not in seen and g in pos:
                seen.add(g)
                order[pos[g]] = len(seen) - 1
        out["order_delivered"] = order
        return out
