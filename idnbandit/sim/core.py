"""The event core: every simulated request, background job and feedback in one time-ordered loop (numba).

One function, :func:`advance_`, processes events in simulated-time order until something outside
the core is needed: a decision (a request arrives at its origin, or, in multi-hop delivery, at a
decision stop), the delivery of one learner's feedback, a new block of requests or background jobs,
or more room in a growable structure. :func:`decide_` applies the decision that was asked for and
:func:`delivered_` removes the feedback that was delivered. The fused loop
(:mod:`idnbandit.sim.loop`), the Python loop and the step engine (:mod:`idnbandit.sim.engine`, the
Gymnasium environments) all drive these three functions, so every path runs the same semantics
(docs/simulator.md, "The event model").

Events
------
A binary heap in arrays holds ``(time, key, item)``: background arrivals (one pending per
background node, ``item = -1 - slot``, ``key = KEY_BG + slot``) and the stages of network *jobs*
(``item`` = job id, ``key = request * STAGES + stage``): arrival at an up transmitter, at the
serving node, at a down transmitter, and the response reaching the client. Ties in time are broken
by the key (background first, then the earlier-decided request). Request arrivals come from the
sorted request block and client deadlines from the ring of in-flight requests (deadlines are
in decision order), so neither needs the heap. At equal times: heap events, then deadlines, then
decisions. A stage is placed on its resource when its arrival event is processed (FIFO in arrival
order, :mod:`idnbandit.sim.stages`); the next arrival of the job is held back and processed at once
when it is the earliest pending event (no heap traffic), else pushed.

Requests live in a ring indexed by request number (``g & (capacity - 1)``) until finalised
(completed or timed out); a job that outlives its request (a timed-out request without
cancellation) finds its slot re-used or final and no longer writes to it. Finalising a request
records its true outcome in the metrics, computes every decision's feedback and appends it to the
delivery FIFO, which is emptied just before later decisions (in order of completion).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core.cpu import CPUTargetOptions

from .compiled import (
    NODE_HI,
    NODE_LINK_FAULTS,
    NODE_LO,
    NODE_PROP_S,
    NODE_SPEED_FAULTS,
    OPT_COMPUTE_S,
    OPT_LINKS,
    OPT_NLINKS,
    OPT_NODE,
    OPT_TX,
    P_CANCEL,
    P_DELAY_REQUESTS,
    P_DELAY_S,
    P_TIMEOUT_S,
)
from .metrics import record_
from .multihop_kernels import DEC_AGENT, DEC_VALID, MH_A, ST_DEC, ST_M, ST_OPT0, stop_context_, stop_feedback_
from .packed import pack_view1, pack_view2, pack_view3
from .stages import N_OUT, context_, estimate_, feedback_, node_place_, outcome_row_, tx_place_
from .state import (
    ACC_ARR,
    ACC_END,
    ACC_START,
    C_FAULT_F,
    C_FEAT,
    C_NODE_F,
    C_OPT_F,
    C_PAR,
    CI_BG_NODE,
    CI_DEC_I,
    CI_FAULT_I,
    CI_MH_I,
    CI_NODE_I,
    CI_OPT_I,
    CI_PREDC,
    CI_STOP_I,
    DEC_A,
    DEC_D,
    DEC_E,
    DEC_H,
    DL_A,
    DL_AGENT,
    DL_DUE_N,
    DL_G,
    F_BG_ARR,
    F_BG_SVC,
    F_CF_SUM,
    F_CURVE_CF,
    F_CURVE_ORACLE,
    F_CURVE_REWARD,
    F_DL_DUE,
    F_DL_R,
    F_DL_RS,
    F_DL_X,
    F_FB,
    F_HEAP_T,
    F_JOB_F,
    F_LINK_FREE,
    F_MISC,
    F_OUT,
    F_REC,
    F_REQ_T,
    F_RQ_ACC,
    F_RQ_CF,
    F_RQ_CFOUT,
    F_RQ_Q,
    F_RQ_T,
    F_RQ_X,
    F_SERVER_FREE,
    F_SUMS,
    F_VALS,
    I_BG_I,
    I_CURVE_T,
    I_DL_I,
    I_DLOG,
    I_HEAP_J,
    I_HEAP_K,
    I_HIST,
    I_JOB_FREE,
    I_JOB_I,
    I_MISC,
    I_NODE_COUNTS,
    I_OPT_COUNT,
    I_REQ_O,
    I_REQ_S,
    I_RQ_DEC,
    I_RQ_I,
    I_TIER_COUNT,
    J_FORK,
    J_G,
    J_HOP,
    J_K,
    J_O,
    J_PHASE,
    J_STAGE,
    J_STOP,
    M_BG_NEED,
    M_DL_HEAD,
    M_DL_N,
    M_DL_SLOT,
    M_DLOG_N,
    M_G_NEXT,
    M_HEAD,
    M_HEAP_N,
    M_JOB_FREE_N,
    M_LIMIT,
    M_MODE,
    M_N_DELIVERED,
    M_N_FINAL,
    M_NEED,
    M_PEND_AGENT,
    M_PEND_JOB,
    M_PEND_KIND,
    M_PEND_ROW,
    M_PEND_SLOT,
    M_PTR,
    M_REC_N,
    M_REC_ON,
    M_REQ_LEN,
    M_REQ_POS,
    MODE_ENSEMBLE,
    MODE_MULTIHOP,
    NEED_DL,
    NEED_HEAP,
    NEED_JOBS,
    NEED_REC,
    NEED_RQ,
    PH_DONE,
    PH_DOWN,
    PH_NODE,
    PH_UP,
    Q_RESP,
    Q_SENT,
    R_FB,
    R_FEEDBACK_R,
    R_G,
    R_OPTION,
    R_ORIGIN,
    R_OUT,
    R_SAMPLE,
    R_T_COMPLETE,
    R_T_DECISION,
    R_T_NODE_ARRIVAL,
    R_T_SERVICE_END,
    R_T_SERVICE_START,
    RQ_G,
    RQ_K,
    RQ_ND,
    RQ_O,
    RQ_OUTSTANDING,
    RQ_S,
    RQ_STATUS,
    ST_ALIVE,
    ST_FINAL,
    ST_FREE,
    T_NOW,
    T_PEND,
)

__all__ = ["C_DECIDE", "C_DELIVER", "C_NEED_REQUESTS", "C_NEED_BG", "C_NEED_SPACE", "C_DONE", "C_NEED_UNIFORMS",
           "C_BAD_ACTION", "PEND_NONE", "PEND_ORIGIN", "PEND_STOP", "PEND_BATCH"]

# what advance_ returns (and the fused driver: C_NEED_UNIFORMS, C_BAD_ACTION)
C_DECIDE, C_DELIVER, C_NEED_REQUESTS, C_NEED_BG, C_NEED_SPACE, C_DONE, C_NEED_UNIFORMS, C_BAD_ACTION = range(8)
PEND_NONE, PEND_ORIGIN, PEND_STOP, PEND_BATCH = 0, 1, 2, 3
STAGES = 64  # stage numbers per request in event keys

# The core is compiled without numba's reference counting (NRT): it allocates nothing, and with NRT
# every array passed to an inlined helper would be incref'd and decref'd (atomic operations) at each
# of its many call sites per event. ``_nrt`` is a private numba option (numba uses it for its own hot
# helpers); without it everything is compiled as usual. ``advance_`` is one separate compiled
# function (cached on disk), called by every driver: the per-agent fused drivers stay small.
NO_NRT = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
WITH_NRT = {"_nrt": True} if hasattr(CPUTargetOptions, "_nrt") else {}
KEY_BG = -(1 << 40)


@njit(cache=True, error_model="numpy", inline="always")
def _less(t1, k1, t2, k2):
    return t1 < t2 or (t1 == t2 and k1 < k2)


@njit(cache=True, error_model="numpy", inline="always")
def heap_push_(ht, hk, hj, n, t, k, j):
    """Insert ``(t, k, j)`` into the heap of size ``n``; returns the new size (capacity checked by the caller)."""
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if _less(t, k, ht[p], hk[p]):
            ht[i] = ht[p]
            hk[i] = hk[p]
            hj[i] = hj[p]
            i = p
        else:
            break
    ht[i] = t
    hk[i] = k
    hj[i] = j
    return n + 1


@njit(cache=True, error_model="numpy", inline="always")
def heap_pop_(ht, hk, hj, n):
    """Remove the top of the heap of size ``n`` (read it first); returns the new size."""
    n -= 1
    t = ht[n]
    k = hk[n]
    j = hj[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _less(ht[c + 1], hk[c + 1], ht[c], hk[c]):
            c += 1
        if _less(ht[c], hk[c], t, k):
            ht[i] = ht[c]
            hk[i] = hk[c]
            hj[i] = hj[c]
            i = c
        else:
            break
    ht[i] = t
    hk[i] = k
    hj[i] = j
    return n


@njit(cache=True, error_model="numpy", inline="always")
def _deliverable(m, dl_due, dl_i, t):
    if m[M_DL_N] == 0:
        return False
    q = m[M_DL_HEAD]
    return dl_due[q] <= t and dl_i[q, DL_DUE_N] <= m[M_G_NEXT]


@njit(cache=True, error_model="numpy", inline="always")
def _finalise(CF, CI, SF, SI, slot, c_time, success):  # noqa: N803
    """Finalise the request in ``slot`` at ``c_time`` (its response, or its deadline when ``success`` is
    False): metrics, feedback of each of its decisions into the delivery FIFO, record; free the slot
    and every slot before it that is final."""
    opt_i, opt_f, predc, par = pack_view3(CI, CI, CI_OPT_I), pack_view3(CF, CI, C_OPT_F), \
        pack_view3(CI, CI, CI_PREDC), pack_view1(CF, CI, C_PAR)
    node_i = pack_view2(CI, CI, CI_NODE_I)
    m = pack_view1(SI, SI, I_MISC)
    rq_t, rq_i, rq_acc = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view2(SF, SI, F_RQ_ACC)
    rq_cf, rq_cfout = pack_view2(SF, SI, F_RQ_CF), pack_view3(SF, SI, F_RQ_CFOUT)
    rq_x, rq_dec = pack_view3(SF, SI, F_RQ_X), pack_view3(SI, SI, I_RQ_DEC)
    out2, fb = pack_view2(SF, SI, F_OUT), pack_view1(SF, SI, F_FB)
    dl_x, dl_r, dl_rs, dl_due, dl_i = pack_view2(SF, SI, F_DL_X), pack_view1(SF, SI, F_DL_R), \
        pack_view2(SF, SI, F_DL_RS), pack_view1(SF, SI, F_DL_DUE), pack_view2(SI, SI, I_DL_I)
    g = rq_i[slot, RQ_G]
    o = rq_i[slot, RQ_O]
    s = rq_i[slot, RQ_S]
    k = rq_i[slot, RQ_K]
    k_n = opt_i.shape[1]
    t0 = rq_t[slot]
    outcome_row_(opt_i, opt_f, predc, par, o, k, s, t0, c_time if success else np.inf, rq_acc[slot, ACC_ARR],
                 rq_acc[slot, ACC_START], rq_acc[slot, ACC_END], out2, 0)
    out = out2[0]
    cf = rq_cf[slot]
    cfout = rq_cfout[slot]
    # feedback of every decision, due after the scenario's delay
    cap = dl_r.shape[0]
    due_t = c_time + par[P_DELAY_S]
    due_n = m[M_G_NEXT] + int(par[P_DELAY_REQUESTS]) if par[P_DELAY_REQUESTS] > 0 else 0
    r_first = np.nan
    for q in range(rq_i[slot, RQ_ND]):
        if m[M_MODE] == MODE_MULTIHOP:
            stop_i, dec_i = pack_view3(CI, CI, CI_STOP_I), pack_view2(CI, CI, CI_DEC_I)
            r = stop_feedback_(par, cf, cfout, out, stop_i, dec_i, pack_view1(SF, SI, F_VALS), fb, o,
                               rq_dec[slot, q, DEC_H], rq_dec[slot, q, DEC_A], rq_dec[slot, q, DEC_E])
            agent = dec_i[rq_dec[slot, q, DEC_D], DEC_AGENT]
        else:
            r = feedback_(opt_i, par, cf, cfout, out, fb, o, rq_dec[slot, q, DEC_A])
            agent = 0
        if q == 0:
            r_first = r
        j = (m[M_DL_HEAD] + m[M_DL_N]) % cap
        for i in range(dl_x.shape[1]):
            dl_x[j, i] = rq_x[slot, q, i]
        for i in range(fb.shape[0]):
            dl_rs[j, i] = fb[i]
        dl_r[j] = r
        dl_due[j] = due_t
        dl_i[j, DL_A] = rq_dec[slot, q, DEC_A]
        dl_i[j, DL_AGENT] = agent
        dl_i[j, DL_DUE_N] = due_n
        dl_i[j, DL_G] = g
        m[M_DL_N] += 1
    m[M_N_FINAL] += 1
    record_(node_i, opt_i, pack_view1(SF, SI, F_SUMS), pack_view1(SI, SI, I_OPT_COUNT),
            pack_view1(SI, SI, I_TIER_COUNT), pack_view1(SF, SI, F_CF_SUM), pack_view1(SI, SI, I_HIST),
            pack_view1(SI, SI, I_CURVE_T), pack_view1(SF, SI, F_CURVE_REWARD), pack_view1(SF, SI, F_CURVE_ORACLE),
            pack_view2(SF, SI, F_CURVE_CF), m, M_PTR, cf, out, o, k)
    if m[M_REC_ON] == 1:
        rec = pack_view2(SF, SI, F_REC)
        n = m[M_REC_N]
        rec[n, R_G] = g
        rec[n, R_ORIGIN] = o
        rec[n, R_SAMPLE] = s
        rec[n, R_OPTION] = k
        rec[n, R_T_DECISION] = t0
        rec[n, R_T_NODE_ARRIVAL] = rq_acc[slot, ACC_ARR]
        rec[n, R_T_SERVICE_START] = rq_acc[slot, ACC_START]
        rec[n, R_T_SERVICE_END] = rq_acc[slot, ACC_END]
        rec[n, R_T_COMPLETE] = c_time
        rec[n, R_FEEDBACK_R] = r_first
        for i in range(N_OUT):
            rec[n, R_OUT + i] = out[i]
        for i in range(fb.shape[0]):  # the first decision's observed rewards (the last one's under multi-hop)
            rec[n, R_FB + i] = fb[i]
        for i in range(k_n):
            rec[n, R_FB + fb.shape[0] + i] = cf[i]
        m[M_REC_N] = n + 1
    rq_i[slot, RQ_STATUS] = ST_FINAL
    mask = rq_t.shape[0] - 1
    h = m[M_HEAD]
    while h < m[M_G_NEXT] and rq_i[h & mask, RQ_STATUS] == ST_FINAL:
        rq_i[h & mask, RQ_STATUS] = ST_FREE
        h += 1
    m[M_HEAD] = h


@njit(cache=True, error_model="numpy", inline="always")
def _free_job(job_free, m, j):
    job_free[m[M_JOB_FREE_N]] = j
    m[M_JOB_FREE_N] += 1


@njit(cache=True, error_model="numpy", inline="always")
def _new_job(job_i, job_f, job_free, m, g, o, k, t, timeout_s, stop, n_links):
    m[M_JOB_FREE_N] -= 1
    j = job_free[m[M_JOB_FREE_N]]
    job_i[j, J_G] = g
    job_i[j, J_O] = o
    job_i[j, J_K] = k
    job_i[j, J_HOP] = 0
    job_i[j, J_PHASE] = PH_UP if n_links > 0 else PH_NODE
    job_i[j, J_STAGE] = 0
    job_i[j, J_STOP] = stop
    job_i[j, J_FORK] = 0
    job_f[j, 0] = t + timeout_s
    return j


@njit(cache=True, error_model="numpy", inline="always")
def _fork_(opt_i, job_i, job_f, job_free, m, ht, hk, hj, j, hop, tau, key):
    """Ensembles: start a node job at ``tau`` for every option still to fork (``J_FORK`` bits of job
    ``j``, the batch's carrier) that is served at the node the carrier reaches after ``hop`` links."""
    mask = job_i[j, J_FORK]
    g = job_i[j, J_G]
    o = job_i[j, J_O]
    for k in range(opt_i.shape[1]):
        if (mask >> k) & 1 and opt_i[o, k, OPT_NLINKS] == hop:
            jn = _new_job(job_i, job_f, job_free, m, g, o, k, 0.0, 0.0, -1, 0)
            job_i[jn, J_HOP] = hop
            job_i[jn, J_STAGE] = job_i[j, J_STAGE]
            job_f[jn, 0] = job_f[j, 0]
            m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, key, jn)
            mask &= ~(1 << k)
    job_i[j, J_FORK] = mask


@njit(cache=True, error_model="numpy", **NO_NRT)
def advance_(CF, CI, SF, SI):  # noqa: N803  (pack names)
    """Process events in time order until the core needs its caller; returns a ``C_*`` code.

    ``C_DECIDE``: a decision is pending (``M_PEND_KIND``; its context is ``rq_x[M_PEND_SLOT,
    M_PEND_ROW]``, its estimates ``rq_cf[M_PEND_SLOT]``, its learner ``M_PEND_AGENT``): call
    :func:`decide_`. ``C_DELIVER``: the feedback in delivery slot ``M_DL_SLOT`` is due: give it to its
    learner, then call :func:`delivered_`. ``C_NEED_REQUESTS`` / ``C_NEED_BG`` (slot ``M_BG_NEED``) /
    ``C_NEED_SPACE`` (``M_NEED`` bits): refill or grow, then call again. ``C_DONE``: every one of the
    ``M_LIMIT`` requests is finalised and every feedback delivered.
    """
    node_f, opt_f, feat, fault_f, par = pack_view2(CF, CI, C_NODE_F), pack_view3(CF, CI, C_OPT_F), \
        pack_view3(CF, CI, C_FEAT), pack_view2(CF, CI, C_FAULT_F), pack_view1(CF, CI, C_PAR)
    node_i, opt_i, fault_i, bg_node = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), \
        pack_view2(CI, CI, CI_FAULT_I), pack_view1(CI, CI, CI_BG_NODE)
    predc = pack_view3(CI, CI, CI_PREDC)
    stop_i, dec_i, mh_i = pack_view3(CI, CI, CI_STOP_I), pack_view2(CI, CI, CI_DEC_I), pack_view1(CI, CI, CI_MH_I)
    m, fm = pack_view1(SI, SI, I_MISC), pack_view1(SF, SI, F_MISC)
    server_free, link_free = pack_view1(SF, SI, F_SERVER_FREE), pack_view2(SF, SI, F_LINK_FREE)
    ht, hk, hj = pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K), pack_view1(SI, SI, I_HEAP_J)
    bg_arr, bg_svc, bg_i = pack_view2(SF, SI, F_BG_ARR), pack_view2(SF, SI, F_BG_SVC), pack_view2(SI, SI, I_BG_I)
    req_t, req_o, req_s = pack_view1(SF, SI, F_REQ_T), pack_view1(SI, SI, I_REQ_O), pack_view1(SI, SI, I_REQ_S)
    rq_t, rq_i, rq_acc = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view2(SF, SI, F_RQ_ACC)
    rq_cf, rq_cfout, rq_x = pack_view2(SF, SI, F_RQ_CF), pack_view3(SF, SI, F_RQ_CFOUT), pack_view3(SF, SI, F_RQ_X)
    job_i, job_f, job_free = pack_view2(SI, SI, I_JOB_I), pack_view2(SF, SI, F_JOB_F), pack_view1(SI, SI, I_JOB_FREE)
    dl_due, dl_i = pack_view1(SF, SI, F_DL_DUE), pack_view2(SI, SI, I_DL_I)
    timeout_s = par[P_TIMEOUT_S]
    cancel = par[P_CANCEL] > 0.0
    k_n = opt_i.shape[1]
    mask = rq_t.shape[0] - 1
    multihop = m[M_MODE] == MODE_MULTIHOP
    ensemble = m[M_MODE] == MODE_ENSEMBLE
    job_room = k_n if ensemble else 1
    rec_cap = pack_view2(SF, SI, F_REC).shape[0]
    dlog_cap = pack_view1(SI, SI, I_DLOG).shape[0]
    b = m[M_BG_NEED]
    if b >= 0:  # its block was refilled: its next arrival goes back into the heap
        m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], bg_arr[b, 0], KEY_BG + b, -1 - b)
        m[M_BG_NEED] = -1
    # a held event: the next stage of the job just processed, not yet in the heap
    has_hold = False
    h_t = 0.0
    h_k = 0
    h_j = 0
    while True:
        kind = m[M_PEND_KIND]
        if kind != PEND_NONE:
            if has_hold:
                m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
                has_hold = False
            if kind == PEND_STOP and m[M_PEND_ROW] < 0:  # a stop reached: deliver what is due, then its context
                tau = fm[T_PEND]
                if _deliverable(m, dl_due, dl_i, tau):
                    m[M_DL_SLOT] = m[M_DL_HEAD]
                    return C_DELIVER
                j = m[M_PEND_JOB]
                o = job_i[j, J_O]
                slot = job_i[j, J_G] & mask
                row = rq_i[slot, RQ_ND]
                h = job_i[j, J_STOP]
                stop_context_(node_i, opt_i, par, feat, server_free, stop_i, dec_i, mh_i, rq_x[slot, row], o,
                              rq_i[slot, RQ_S], tau, h)
                m[M_PEND_SLOT] = slot
                m[M_PEND_ROW] = row
                m[M_PEND_AGENT] = dec_i[stop_i[o, h, ST_DEC], DEC_AGENT]
            return C_DECIDE
        need = 0
        if m[M_HEAP_N] + job_room + 3 > ht.shape[0]:
            need |= NEED_HEAP
        if m[M_G_NEXT] < m[M_LIMIT] and m[M_G_NEXT] - m[M_HEAD] >= rq_t.shape[0]:
            need |= NEED_RQ
        if m[M_JOB_FREE_N] < job_room:
            need |= NEED_JOBS
        if m[M_DL_N] + rq_x.shape[1] > dl_due.shape[0]:
            need |= NEED_DL
        if m[M_REC_ON] == 1 and (m[M_REC_N] >= rec_cap or (dlog_cap > 0 and m[M_DLOG_N] + rq_x.shape[1] > dlog_cap)):
            need |= NEED_REC
        if need != 0:
            if has_hold:
                m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
                has_hold = False
            m[M_NEED] = need
            return C_NEED_SPACE
        # the three sources: heap (and the held event), the oldest deadline, the next request
        head = m[M_HEAD]
        gn = m[M_G_NEXT]
        td = rq_t[head & mask] + timeout_s if head < gn else np.inf
        if gn < m[M_LIMIT]:
            if m[M_REQ_POS] >= m[M_REQ_LEN]:
                if has_hold:
                    m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
                    has_hold = False
                return C_NEED_REQUESTS
            tn = req_t[m[M_REQ_POS]]
        else:
            tn = np.inf
            if head == gn:  # every request finalised: deliver the rest, done
                if has_hold:
                    m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
                    has_hold = False
                if m[M_DL_N] > 0:
                    m[M_DL_SLOT] = m[M_DL_HEAD]
                    return C_DELIVER
                return C_DONE
        # the earliest pending event: the held one if it precedes the heap's top, else the top
        if has_hold and m[M_HEAP_N] > 0 and not _less(h_t, h_k, ht[0], hk[0]):
            m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
            has_hold = False
        if has_hold:
            et, ej = h_t, h_j
        elif m[M_HEAP_N] > 0:
            et, ej = ht[0], hj[0]
        else:
            et, ej = np.inf, 0
        if et <= td and et <= tn and et < np.inf:
            if has_hold:
                has_hold = False
            else:
                m[M_HEAP_N] = heap_pop_(ht, hk, hj, m[M_HEAP_N])
            fm[T_NOW] = et
            tau = et
            if ej < 0:  # ---------------------------------------------- a background arrival
                b = -1 - ej
                n = bg_node[b]
                p = bg_i[b, 0]
                node_place_(fault_i, fault_f, node_i[n, NODE_SPEED_FAULTS], server_free, node_i[n, NODE_LO],
                            node_i[n, NODE_HI], n, tau, bg_svc[b, p], np.inf, True)
                p += 1
                bg_i[b, 0] = p
                if p == bg_i[b, 1]:
                    m[M_BG_NEED] = b
                    return C_NEED_BG
                has_hold = True
                h_t, h_k, h_j = bg_arr[b, p], KEY_BG + b, ej
                continue
            # -------------------------------------------------------------- a stage of job ej
            j = ej
            g = job_i[j, J_G]
            o = job_i[j, J_O]
            k = job_i[j, J_K]
            hop = job_i[j, J_HOP]
            phase = job_i[j, J_PHASE]
            slot = g & mask
            alive = rq_i[slot, RQ_G] == g and rq_i[slot, RQ_STATUS] == ST_ALIVE
            cut = job_f[j, 0] if cancel else np.inf
            stage = job_i[j, J_STAGE] + 1
            job_i[j, J_STAGE] = stage
            nt = 0.0
            if phase == PH_UP:
                if ensemble and job_i[j, J_FORK] != 0:
                    _fork_(opt_i, job_i, job_f, job_free, m, ht, hk, hj, j, hop, tau, g * STAGES + stage)
                lk = opt_i[o, k, OPT_LINKS + hop]
                st, en, rel = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 0],
                                        opt_f[o, k, OPT_TX + 2 * hop], cut)
                link_free[lk, 0] = rel
                if st != st:  # dropped (cancelled)
                    _free_job(job_free, m, j)
                    continue
                nt = en + node_f[lk, NODE_PROP_S]
                hop += 1
                job_i[j, J_HOP] = hop
                if hop == opt_i[o, k, OPT_NLINKS]:
                    job_i[j, J_PHASE] = PH_NODE
            elif phase == PH_NODE:
                h = job_i[j, J_STOP]
                if multihop and h >= 0:
                    if alive and stop_i[o, h, ST_DEC] >= 0:  # a decision stop: its learner decides now
                        m[M_PEND_KIND] = PEND_STOP
                        m[M_PEND_JOB] = j
                        m[M_PEND_ROW] = -1
                        fm[T_PEND] = tau
                        job_i[j, J_STAGE] = stage - 1
                        continue
                    job_i[j, J_STOP] = -1  # serve-only stop, or nobody waits for it any more: first model
                if ensemble and job_i[j, J_FORK] != 0:
                    _fork_(opt_i, job_i, job_f, job_free, m, ht, hk, hj, j, hop, tau, g * STAGES + stage)
                n = opt_i[o, k, OPT_NODE]
                st, en = node_place_(fault_i, fault_f, node_i[n, NODE_SPEED_FAULTS], server_free, node_i[n, NODE_LO],
                                     node_i[n, NODE_HI], n, tau, opt_f[o, k, OPT_COMPUTE_S], cut, True)
                if alive:
                    rq_acc[slot, ACC_ARR] = tau
                    rq_acc[slot, ACC_START] = st if st == st else np.inf
                    rq_acc[slot, ACC_END] = en if en == en else np.inf
                if st != st:
                    _free_job(job_free, m, j)
                    continue
                nt = en
                nl = opt_i[o, k, OPT_NLINKS]
                if nl == 0:
                    job_i[j, J_PHASE] = PH_DONE
                else:
                    job_i[j, J_PHASE] = PH_DOWN
                    job_i[j, J_HOP] = nl - 1
            elif phase == PH_DOWN:
                lk = opt_i[o, k, OPT_LINKS + hop]
                st, en, rel = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 1],
                                        opt_f[o, k, OPT_TX + 2 * hop + 1], cut)
                link_free[lk, 1] = rel
                if st != st:
                    _free_job(job_free, m, j)
                    continue
                nt = en + node_f[lk, NODE_PROP_S]
                if hop == 0:
                    job_i[j, J_PHASE] = PH_DONE
                else:
                    job_i[j, J_HOP] = hop - 1
            else:  # PH_DONE: the response reaches the client
                _free_job(job_free, m, j)
                if alive and tau <= rq_t[slot] + timeout_s:
                    if not ensemble:
                        _finalise(CF, CI, SF, SI, slot, tau, True)
                        continue
                    pack_view3(SF, SI, F_RQ_Q)[slot, k, Q_RESP] = tau
                    rq_i[slot, RQ_OUTSTANDING] -= 1
                    if rq_i[slot, RQ_OUTSTANDING] == 0:  # the batch has answered: the strategy's turn
                        m[M_PEND_KIND] = PEND_BATCH
                        m[M_PEND_SLOT] = slot
                        fm[T_PEND] = tau
                continue
            has_hold = True
            h_t, h_k, h_j = nt, g * STAGES + stage, j
            continue
        if head < gn and td <= tn:  # -------------------------------- the oldest client gives up
            fm[T_NOW] = td
            if ensemble:  # the strategy answers with what it has (unanswered queries: Q_RESP = inf)
                m[M_PEND_KIND] = PEND_BATCH
                m[M_PEND_SLOT] = head & mask
                fm[T_PEND] = td
                continue
            _finalise(CF, CI, SF, SI, head & mask, td, False)
            continue
        # ------------------------------------------------------------------ the next request arrives
        if has_hold:
            m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
            has_hold = False
        if _deliverable(m, dl_due, dl_i, tn):
            m[M_DL_SLOT] = m[M_DL_HEAD]
            return C_DELIVER
        fm[T_NOW] = tn
        p = m[M_REQ_POS]
        o = req_o[p]
        s = req_s[p]
        slot = gn & mask
        rq_i[slot, RQ_G] = gn
        rq_i[slot, RQ_O] = o
        rq_i[slot, RQ_S] = s
        rq_i[slot, RQ_K] = 0
        rq_i[slot, RQ_STATUS] = ST_ALIVE
        rq_i[slot, RQ_ND] = 0
        rq_t[slot] = tn
        rq_acc[slot, ACC_ARR] = np.inf
        rq_acc[slot, ACC_START] = np.inf
        rq_acc[slot, ACC_END] = np.inf
        cf = rq_cf[slot]
        cfout = rq_cfout[slot]
        for kk in range(k_n):
            cf[kk] = estimate_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, o,
                               kk, s, tn, cfout, kk)
        if not multihop:  # the origin decides (single option, or an ensemble's first batch)
            context_(node_i, opt_i, par, feat, server_free, rq_x[slot, 0], o, s, tn)
            m[M_PEND_KIND] = PEND_ORIGIN
            m[M_PEND_SLOT] = slot
            m[M_PEND_ROW] = 0
            m[M_PEND_AGENT] = 0
            fm[T_PEND] = tn
            return C_DECIDE
        # multi-hop: the request enters the network toward its first stop; stops decide on arrival
        k0 = stop_i[o, 0, ST_OPT0]
        rq_i[slot, RQ_K] = k0
        jn = _new_job(job_i, job_f, job_free, m, gn, o, k0, tn, timeout_s, 0, opt_i[o, k0, OPT_NLINKS])
        m[M_G_NEXT] = gn + 1
        m[M_REQ_POS] = p + 1
        has_hold = True
        h_t, h_k, h_j = tn, gn * STAGES, jn


@njit(cache=True, error_model="numpy", inline="always")
def decide_(CF, CI, SF, SI, a):  # noqa: N803
    """Apply action ``a`` to the pending decision; returns 0, or -1 if ``a`` is out of range (nothing done)."""
    opt_i, par = pack_view3(CI, CI, CI_OPT_I), pack_view1(CF, CI, C_PAR)
    m, fm = pack_view1(SI, SI, I_MISC), pack_view1(SF, SI, F_MISC)
    ht, hk, hj = pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K), pack_view1(SI, SI, I_HEAP_J)
    rq_i, rq_dec = pack_view2(SI, SI, I_RQ_I), pack_view3(SI, SI, I_RQ_DEC)
    job_i, job_f, job_free = pack_view2(SI, SI, I_JOB_I), pack_view2(SF, SI, F_JOB_F), pack_view1(SI, SI, I_JOB_FREE)
    timeout_s = par[P_TIMEOUT_S]
    tau = fm[T_PEND]
    kind = m[M_PEND_KIND]
    if kind == PEND_ORIGIN:
        if a < 0 or a >= opt_i.shape[1]:
            return -1
        slot = m[M_PEND_SLOT]
        g = m[M_G_NEXT]
        o = rq_i[slot, RQ_O]
        rq_i[slot, RQ_K] = a
        rq_i[slot, RQ_ND] = 1
        rq_dec[slot, 0, DEC_H] = 0
        rq_dec[slot, 0, DEC_D] = 0
        rq_dec[slot, 0, DEC_A] = a
        rq_dec[slot, 0, DEC_E] = a
        j = _new_job(job_i, job_f, job_free, m, g, o, a, tau, timeout_s, -1, opt_i[o, a, OPT_NLINKS])
        m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, g * STAGES, j)
        m[M_G_NEXT] = g + 1
        m[M_REQ_POS] += 1
        m[M_PEND_KIND] = PEND_NONE
        return 0
    if kind != PEND_STOP:
        return -1
    stop_i, dec_i, mh_i = pack_view3(CI, CI, CI_STOP_I), pack_view2(CI, CI, CI_DEC_I), pack_view1(CI, CI, CI_MH_I)
    if a < 0 or a >= mh_i[MH_A]:
        return -1
    j = m[M_PEND_JOB]
    g = job_i[j, J_G]
    o = job_i[j, J_O]
    h = job_i[j, J_STOP]
    d = stop_i[o, h, ST_DEC]
    valid = dec_i[d, DEC_VALID]
    e = a if a < valid else valid - 1
    slot = m[M_PEND_SLOT]
    q = rq_i[slot, RQ_ND]
    rq_dec[slot, q, DEC_H] = h
    rq_dec[slot, q, DEC_D] = d
    rq_dec[slot, q, DEC_A] = a
    rq_dec[slot, q, DEC_E] = e
    rq_i[slot, RQ_ND] = q + 1
    counts = pack_view2(SI, SI, I_NODE_COUNTS)
    counts[d, 0] += 1
    k0 = stop_i[o, h, ST_OPT0]
    if e < stop_i[o, h, ST_M]:  # serve here with model e: the node arrival proceeds
        k = k0 + e
        job_i[j, J_STOP] = -1
    else:  # forward: up the node's uplink toward the next stop
        counts[d, 1] += 1
        k = stop_i[o, h + 1, ST_OPT0]
        job_i[j, J_STOP] = h + 1
        job_i[j, J_PHASE] = PH_UP
    job_i[j, J_K] = k
    rq_i[slot, RQ_K] = k
    m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, g * STAGES + job_i[j, J_STAGE], j)
    m[M_PEND_KIND] = PEND_NONE
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def delivered_(SF, SI):  # noqa: N803
    """Remove the delivered feedback (the head of the delivery FIFO)."""
    m = pack_view1(SI, SI, I_MISC)
    dl_i = pack_view2(SI, SI, I_DL_I)
    q = m[M_DL_HEAD]
    dlog = pack_view1(SI, SI, I_DLOG)
    if dlog.shape[0] > 0:
        dlog[m[M_DLOG_N]] = dl_i[q, DL_G]
        m[M_DLOG_N] += 1
    m[M_DL_HEAD] = (q + 1) % dl_i.shape[0]
    m[M_DL_N] -= 1
    m[M_N_DELIVERED] += 1


@njit(cache=True, error_model="numpy", inline="always")
def run_to_decision_(CF, CI, SF, SI):  # noqa: N803
    """:func:`advance_`, dropping feedback deliveries (for callers whose learners are outside the core,
    such as the environments): returns the first other code (``C_DECIDE`` when a decision is pending)."""
    while True:
        code = advance_(CF, CI, SF, SI)
        if code != C_DELIVER:
            return code
        delivered_(SF, SI)


@njit(cache=True, error_model="numpy", inline="always")
def decide_batch_(CF, CI, SF, SI, mask):  # noqa: N803
    """Ensembles: send the pending request (first batch) or its next batch to the options in bit mask
    ``mask``, in parallel from now: local options start at once; the farthest option carries the
    input up the path and the others are forked at their nodes (one upload per link and batch).
    Returns 0, or -1 for an empty or out-of-range mask or no pending ensemble decision."""
    opt_i, par = pack_view3(CI, CI, CI_OPT_I), pack_view1(CF, CI, C_PAR)
    m, fm = pack_view1(SI, SI, I_MISC), pack_view1(SF, SI, F_MISC)
    ht, hk, hj = pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K), pack_view1(SI, SI, I_HEAP_J)
    rq_t, rq_i, rq_q = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view3(SF, SI, F_RQ_Q)
    job_i, job_f, job_free = pack_view2(SI, SI, I_JOB_I), pack_view2(SF, SI, F_JOB_F), pack_view1(SI, SI, I_JOB_FREE)
    k_n = opt_i.shape[1]
    kind = m[M_PEND_KIND]
    if (kind != PEND_ORIGIN and kind != PEND_BATCH) or mask <= 0 or mask >= (1 << k_n):
        return -1
    tau = fm[T_PEND]
    slot = m[M_PEND_SLOT]
    if kind == PEND_ORIGIN:
        g = m[M_G_NEXT]
        m[M_G_NEXT] = g + 1
        m[M_REQ_POS] += 1
    else:
        g = rq_i[slot, RQ_G]
    o = rq_i[slot, RQ_O]
    t0 = rq_t[slot]
    timeout_s = par[P_TIMEOUT_S]
    carrier = -1
    far = 0
    count = 0
    for k in range(k_n):
        if (mask >> k) & 1:
            count += 1
            rq_q[slot, k, Q_SENT] = tau
            rq_q[slot, k, Q_RESP] = np.inf
            nl = opt_i[o, k, OPT_NLINKS]
            if nl == 0:
                j = _new_job(job_i, job_f, job_free, m, g, o, k, t0, timeout_s, -1, 0)
                m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, g * STAGES, j)
            elif nl > far:
                far = nl
                carrier = k
    if carrier >= 0:
        fork = 0
        for k in range(k_n):
            if (mask >> k) & 1 and k != carrier and opt_i[o, k, OPT_NLINKS] > 0:
                fork |= 1 << k
        j = _new_job(job_i, job_f, job_free, m, g, o, carrier, t0, timeout_s, -1, far)
        job_i[j, J_FORK] = fork
        m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, g * STAGES, j)
    rq_i[slot, RQ_K] = carrier if carrier >= 0 else 0
    rq_i[slot, RQ_OUTSTANDING] = count
    m[M_PEND_KIND] = PEND_NONE
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def ens_finish_(SF, SI):  # noqa: N803
    """Ensembles: the pending request is answered (its record is kept by the caller): free its slot."""
    m = pack_view1(SI, SI, I_MISC)
    rq_t, rq_i = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I)
    rq_i[m[M_PEND_SLOT], RQ_STATUS] = ST_FINAL
    m[M_N_FINAL] += 1
    mask = rq_t.shape[0] - 1
    h = m[M_HEAD]
    while h < m[M_G_NEXT] and rq_i[h & mask, RQ_STATUS] == ST_FINAL:
        rq_i[h & mask, RQ_STATUS] = ST_FREE
        h += 1
    m[M_HEAD] = h
    m[M_PEND_KIND] = PEND_NONE
