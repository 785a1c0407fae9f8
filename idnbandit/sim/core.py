"""The event core: every simulated request, background job and feedback in one time-ordered loop (numba).

One function, :func:`advance_`, processes events in simulated-time order until something outside the core is
needed: a decision (a request arrives at its origin, or, in multi-hop delivery, at a decision stop), the
delivery of one learner's feedback, a new block of requests or background jobs, or more room in a growable
structure. :func:`decide_` applies the decision that was asked for and :func:`delivered_` removes the feedback
that was delivered. The fused loop (:mod:`idnbandit.sim.loop`), the Python loop and the step engine
(:mod:`idnbandit.sim.engine`, the Gymnasium environments) all drive these three functions, so every path runs
the same semantics (docs/simulator.md, "The event model").

Events
------
A binary heap in arrays holds ``(time, key, item)``: background arrivals (one pending per background node,
``item = -1 - slot``, ``key = KEY_BG + slot``) and the stages of network *jobs* (``item`` = job id,
``key = request * STAGES + stage``): arrival at an up transmitter, at the serving node, at a down transmitter,
and the response reaching the client. Ties in time are broken by the key (background first, then the
earlier-decided request). Request arrivals come from the sorted request block and client deadlines from the
ring of in-flight requests (deadlines are in decision order), so neither needs the heap. At equal times: heap
events, then deadlines, then decisions. A stage is placed on its resource when its arrival event is processed
(FIFO in arrival order, :mod:`idnbandit.sim.jobs`, :mod:`idnbandit.sim.stages`); the next arrival of the job
is held back and processed at once when it is the earliest pending event (no heap traffic), else pushed.

Requests live in a ring indexed by request number until finalised (completed or timed out,
:mod:`idnbandit.sim.requests`): their feedback goes to the delivery FIFO, which is emptied just before later
decisions (in order of completion). ``advance_`` is one separately compiled (and cached) function that every
driver calls; the rest is inlined into it or into the drivers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .compiled import NODE_HI, NODE_LO, NODE_SPEED_FAULTS, OPT_NLINKS, P_TIMEOUT_S
from .heap import heap_less, heap_pop_, heap_push_
from .jobs import job_stage_, new_job_
from .multihop_kernels import DEC_AGENT, DEC_VALID, MH_A, ST_DEC, ST_M, ST_OPT0, stop_context_
from .packed import NO_NRT, pack_view1, pack_view2, pack_view3
from .requests import deliverable_, finalise_, open_request_
from .stages import context_, node_place_
from .state import (
    C_FAULT_F,
    C_FEAT,
    C_PAR,
    CI_BG_NODE,
    CI_DEC_I,
    CI_FAULT_I,
    CI_MH_I,
    CI_NODE_I,
    CI_OPT_I,
    CI_STOP_I,
    DEC_A,
    DEC_D,
    DEC_E,
    DEC_H,
    DL_G,
    F_BG_ARR,
    F_BG_SVC,
    F_DL_DUE,
    F_HEAP_T,
    F_JOB_F,
    F_MISC,
    F_REC,
    F_REQ_T,
    F_RQ_T,
    F_RQ_X,
    F_SERVER_FREE,
    I_BG_I,
    I_DL_I,
    I_DLOG,
    I_HEAP_J,
    I_HEAP_K,
    I_JOB_FREE,
    I_JOB_I,
    I_MISC,
    I_NODE_COUNTS,
    I_RQ_DEC,
    I_RQ_I,
    J_G,
    J_K,
    J_O,
    J_PHASE,
    J_STAGE,
    J_STOP,
    KEY_BG,
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
    M_NEED,
    M_PEND_AGENT,
    M_PEND_JOB,
    M_PEND_KIND,
    M_PEND_ROW,
    M_PEND_SLOT,
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
    PEND_BATCH,
    PEND_NONE,
    PEND_ORIGIN,
    PEND_STOP,
    PH_UP,
    RQ_K,
    RQ_ND,
    RQ_O,
    RQ_S,
    STAGES,
    T_NOW,
    T_PEND,
)

__all__ = ["C_DECIDE", "C_DELIVER", "C_NEED_REQUESTS", "C_NEED_BG", "C_NEED_SPACE", "C_DONE", "C_NEED_UNIFORMS",
           "C_BAD_ACTION", "PEND_NONE", "PEND_ORIGIN", "PEND_STOP", "PEND_BATCH", "advance_", "decide_",
           "delivered_", "run_to_decision_"]

# what advance_ returns (and the fused driver: C_NEED_UNIFORMS, C_BAD_ACTION)
C_DECIDE, C_DELIVER, C_NEED_REQUESTS, C_NEED_BG, C_NEED_SPACE, C_DONE, C_NEED_UNIFORMS, C_BAD_ACTION = range(8)


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
    feat, fault_f, par = pack_view3(CF, CI, C_FEAT), pack_view2(CF, CI, C_FAULT_F), pack_view1(CF, CI, C_PAR)
    node_i, opt_i, fault_i, bg_node = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), \
        pack_view2(CI, CI, CI_FAULT_I), pack_view1(CI, CI, CI_BG_NODE)
    stop_i, dec_i, mh_i = pack_view3(CI, CI, CI_STOP_I), pack_view2(CI, CI, CI_DEC_I), pack_view1(CI, CI, CI_MH_I)
    m, fm = pack_view1(SI, SI, I_MISC), pack_view1(SF, SI, F_MISC)
    server_free = pack_view1(SF, SI, F_SERVER_FREE)
    ht, hk, hj = pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K), pack_view1(SI, SI, I_HEAP_J)
    bg_arr, bg_svc, bg_i = pack_view2(SF, SI, F_BG_ARR), pack_view2(SF, SI, F_BG_SVC), pack_view2(SI, SI, I_BG_I)
    req_t = pack_view1(SF, SI, F_REQ_T)
    rq_t, rq_i, rq_x = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view3(SF, SI, F_RQ_X)
    job_i, job_f, job_free = pack_view2(SI, SI, I_JOB_I), pack_view2(SF, SI, F_JOB_F), pack_view1(SI, SI, I_JOB_FREE)
    dl_due, dl_i = pack_view1(SF, SI, F_DL_DUE), pack_view2(SI, SI, I_DL_I)
    timeout_s = par[P_TIMEOUT_S]
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
        kind = m[M_PEND_KIND]
        if kind != PEND_NONE:
            if has_hold:
                m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
                has_hold = False
            if kind == PEND_STOP and m[M_PEND_ROW] < 0:  # a stop reached: deliver what is due, then its context
                tau = fm[T_PEND]
                if deliverable_(m, dl_due, dl_i, tau):
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
        if has_hold and m[M_HEAP_N] > 0 and not heap_less(h_t, h_k, ht[0], hk[0]):
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
            nt = job_stage_(CF, CI, SF, SI, ej, tau)
            if nt >= 0.0:
                has_hold = True
                h_t, h_k, h_j = nt, job_i[ej, J_G] * STAGES + job_i[ej, J_STAGE], ej
            continue
        if head < gn and td <= tn:  # -------------------------------- the oldest client gives up
            fm[T_NOW] = td
            if ensemble:  # the strategy answers with what it has (unanswered queries: Q_RESP = inf)
                m[M_PEND_KIND] = PEND_BATCH
                m[M_PEND_SLOT] = head & mask
                fm[T_PEND] = td
                continue
            finalise_(CF, CI, SF, SI, head & mask, td, False)
            continue
        # ------------------------------------------------------------------ the next request arrives
        if has_hold:
            m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], h_t, h_k, h_j)
            has_hold = False
        if deliverable_(m, dl_due, dl_i, tn):
            m[M_DL_SLOT] = m[M_DL_HEAD]
            return C_DELIVER
        fm[T_NOW] = tn
        slot = open_request_(CF, CI, SF, SI, tn)
        o = rq_i[slot, RQ_O]
        if not multihop:  # the origin decides (single option, or an ensemble's first batch)
            context_(node_i, opt_i, par, feat, server_free, rq_x[slot, 0], o, rq_i[slot, RQ_S], tn)
            m[M_PEND_KIND] = PEND_ORIGIN
            m[M_PEND_SLOT] = slot
            m[M_PEND_ROW] = 0
            m[M_PEND_AGENT] = 0
            fm[T_PEND] = tn
            return C_DECIDE
        # multi-hop: the request enters the network toward its first stop; stops decide on arrival
        k0 = stop_i[o, 0, ST_OPT0]
        rq_i[slot, RQ_K] = k0
        jn = new_job_(job_i, job_f, job_free, m, gn, o, k0, tn, timeout_s, 0, opt_i[o, k0, OPT_NLINKS])
        m[M_G_NEXT] = gn + 1
        m[M_REQ_POS] += 1
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
        j = new_job_(job_i, job_f, job_free, m, g, o, a, tau, timeout_s, -1, opt_i[o, a, OPT_NLINKS])
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
