"""The in-flight requests of the core: opening a request at its arrival, finalising it, feedback due.

Requests live in a ring indexed by request number (``g & (capacity - 1)``, :mod:`idnbandit.sim.state`)
from their arrival until they are *finalised* (response delivered, or client timeout): their
decision-time estimates, contexts, decisions and node-stage times. Finalising records the true
outcome in the metrics, computes every decision's feedback and appends it to the delivery FIFO; the
slot is freed once every older request is final too (the ring's head only moves forward).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .compiled import P_DELAY_REQUESTS, P_DELAY_S
from .metrics import record_
from .multihop_kernels import DEC_AGENT, stop_feedback_
from .packed import pack_view1, pack_view2, pack_view3
from .stages import N_OUT, estimate_, feedback_, outcome_row_
from .state import (
    ACC_ARR,
    ACC_END,
    ACC_START,
    C_FAULT_F,
    C_NODE_F,
    C_OPT_F,
    C_PAR,
    CI_DEC_I,
    CI_FAULT_I,
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
    F_CF_SUM,
    F_CURVE_CF,
    F_CURVE_ORACLE,
    F_CURVE_REWARD,
    F_DL_DUE,
    F_DL_R,
    F_DL_RS,
    F_DL_X,
    F_FB,
    F_LINK_FREE,
    F_OUT,
    F_REC,
    F_RQ_ACC,
    F_RQ_CF,
    F_RQ_CFOUT,
    F_RQ_P,
    F_RQ_T,
    F_RQ_X,
    F_SERVER_FREE,
    F_SUMS,
    F_VALS,
    I_CURVE_T,
    I_DL_I,
    I_HIST,
    I_MISC,
    I_OPT_COUNT,
    I_REQ_O,
    I_REQ_S,
    I_RQ_DEC,
    I_RQ_I,
    I_TIER_COUNT,
    M_DL_HEAD,
    M_DL_N,
    M_G_NEXT,
    M_HEAD,
    M_MODE,
    M_N_FINAL,
    M_PTR,
    M_REC_N,
    M_REC_ON,
    M_REQ_POS,
    MODE_MULTIHOP,
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
    RQ_S,
    RQ_STATUS,
    ST_ALIVE,
    ST_FINAL,
    ST_FREE,
)

__all__ = ["deliverable_", "open_request_", "finalise_", "close_slot_"]


@njit(cache=True, error_model="numpy", inline="always")
def deliverable_(m, dl_due, dl_i, t):
    """True when the oldest pending feedback is due before a decision at ``t``."""
    if m[M_DL_N] == 0:
        return False
    q = m[M_DL_HEAD]
    return dl_due[q] <= t and dl_i[q, DL_DUE_N] <= m[M_G_NEXT]


@njit(cache=True, error_model="numpy", inline="always")
def close_slot_(m, rq_t, rq_i, slot):
    """Mark the request in ``slot`` final; free it and every final slot after the ring's head."""
    rq_i[slot, RQ_STATUS] = ST_FINAL
    m[M_N_FINAL] += 1
    mask = rq_t.shape[0] - 1
    h = m[M_HEAD]
    while h < m[M_G_NEXT] and rq_i[h & mask, RQ_STATUS] == ST_FINAL:
        rq_i[h & mask, RQ_STATUS] = ST_FREE
        h += 1
    m[M_HEAD] = h


@njit(cache=True, error_model="numpy", inline="always")
def open_request_(CF, CI, SF, SI, tn):  # noqa: N803
    """The next request of the block arrives at ``tn``: its ring slot (returned) gets its origin, sample
    and time, and every option's decision-time estimate. The request is not yet counted as decided."""
    node_f, opt_f, fault_f, par = pack_view2(CF, CI, C_NODE_F), pack_view3(CF, CI, C_OPT_F), \
        pack_view2(CF, CI, C_FAULT_F), pack_view1(CF, CI, C_PAR)
    node_i, opt_i, fault_i, predc = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), \
        pack_view2(CI, CI, CI_FAULT_I), pack_view3(CI, CI, CI_PREDC)
    m = pack_view1(SI, SI, I_MISC)
    rq_t, rq_i, rq_acc = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view2(SF, SI, F_RQ_ACC)
    p = m[M_REQ_POS]
    o = pack_view1(SI, SI, I_REQ_O)[p]
    s = pack_view1(SI, SI, I_REQ_S)[p]
    gn = m[M_G_NEXT]
    slot = gn & (rq_t.shape[0] - 1)
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
    cf = pack_view2(SF, SI, F_RQ_CF)[slot]
    cfout = pack_view3(SF, SI, F_RQ_CFOUT)[slot]
    server_free, link_free = pack_view1(SF, SI, F_SERVER_FREE), pack_view2(SF, SI, F_LINK_FREE)
    for kk in range(opt_i.shape[1]):
        cf[kk] = estimate_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, o,
                           kk, s, tn, cfout, kk)
    return slot


@njit(cache=True, error_model="numpy", inline="always")
def finalise_(CF, CI, SF, SI, slot, c_time, success):  # noqa: N803
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
        c0 = R_FB + fb.shape[0] + k_n  # the first decision's context and propensity (decision logs)
        for i in range(rq_x.shape[2]):
            rec[n, c0 + i] = rq_x[slot, 0, i]
        rec[n, c0 + rq_x.shape[2]] = pack_view2(SF, SI, F_RQ_P)[slot, 0]
        m[M_REC_N] = n + 1
    close_slot_(m, rq_t, rq_i, slot)
