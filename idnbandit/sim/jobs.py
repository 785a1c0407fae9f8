"""Network jobs of the core: a request's journey through transmitters and servers, stage by stage.

A *job* carries one request toward one option: up transmissions, service at the option's node, down
transmissions, the response at the client (:mod:`idnbandit.sim.stages` places each stage). Jobs come
from a pool (``job_i`` / ``job_f`` rows, a free-list stack); a job outlives its request when the
client gave up without cancellation (it then no longer writes to the request's slot). Multi-hop
delivery changes a job's target option at each decision stop; an ensemble batch sends one *carrier*
job to its farthest option and forks node jobs for the batch's other options as the carrier passes
their nodes (one upload per link and batch).
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
    P_TIMEOUT_S,
)
from .heap import heap_push_
from .multihop_kernels import ST_DEC
from .packed import pack_view1, pack_view2, pack_view3
from .requests import finalise_
from .stages import node_place_, tx_place_
from .state import (
    ACC_ARR,
    ACC_END,
    ACC_START,
    C_FAULT_F,
    C_NODE_F,
    C_OPT_F,
    C_PAR,
    CI_FAULT_I,
    CI_NODE_I,
    CI_OPT_I,
    CI_STOP_I,
    F_HEAP_T,
    F_JOB_F,
    F_LINK_FREE,
    F_MISC,
    F_RQ_ACC,
    F_RQ_Q,
    F_RQ_T,
    F_SERVER_FREE,
    I_HEAP_J,
    I_HEAP_K,
    I_JOB_FREE,
    I_JOB_I,
    I_MISC,
    I_RQ_I,
    J_FORK,
    J_G,
    J_HOP,
    J_K,
    J_O,
    J_PHASE,
    J_STAGE,
    J_STOP,
    M_HEAP_N,
    M_JOB_FREE_N,
    M_MODE,
    M_PEND_JOB,
    M_PEND_KIND,
    M_PEND_ROW,
    M_PEND_SLOT,
    MODE_ENSEMBLE,
    MODE_MULTIHOP,
    PEND_BATCH,
    PEND_STOP,
    PH_DONE,
    PH_DOWN,
    PH_NODE,
    PH_UP,
    Q_RESP,
    RQ_G,
    RQ_OUTSTANDING,
    RQ_STATUS,
    ST_ALIVE,
    STAGES,
    T_PEND,
)

__all__ = ["new_job_", "free_job_", "fork_", "job_stage_"]


@njit(cache=True, error_model="numpy", inline="always")
def new_job_(job_i, job_f, job_free, m, g, o, k, t, timeout_s, stop, n_links):
    """A job of request ``g`` (origin ``o``) toward option ``k`` from the pool, at its first stage (up if
    ``n_links`` > 0, else the node); its client's deadline is ``t + timeout_s``. Returns its id."""
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
def free_job_(job_free, m, j):
    """Return job ``j`` to the pool."""
    job_free[m[M_JOB_FREE_N]] = j
    m[M_JOB_FREE_N] += 1


@njit(cache=True, error_model="numpy", inline="always")
def fork_(opt_i, job_i, job_f, job_free, m, ht, hk, hj, j, hop, tau, key):
    """Ensembles: start a node job at ``tau`` for every option still to fork (``J_FORK`` bits of job
    ``j``, the batch's carrier) that is served at the node the carrier reaches after ``hop`` links."""
    mask = job_i[j, J_FORK]
    g = job_i[j, J_G]
    o = job_i[j, J_O]
    for k in range(opt_i.shape[1]):
        if (mask >> k) & 1 and opt_i[o, k, OPT_NLINKS] == hop:
            jn = new_job_(job_i, job_f, job_free, m, g, o, k, 0.0, 0.0, -1, 0)
            job_i[jn, J_HOP] = hop
            job_i[jn, J_STAGE] = job_i[j, J_STAGE]
            job_f[jn, 0] = job_f[j, 0]
            m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, key, jn)
            mask &= ~(1 << k)
    job_i[j, J_FORK] = mask


@njit(cache=True, error_model="numpy", inline="always")
def job_stage_(CF, CI, SF, SI, j, tau):  # noqa: N803
    """Job ``j`` arrives at its next stage at ``tau``: place it on that resource (FIFO in arrival order).

    Returns the time of the job's following arrival (the caller schedules it, key
    ``g * STAGES + job_i[j, J_STAGE]``), or -1.0 when the job has nothing more to schedule now: it
    left the network (response delivered: the request is finalised, or its batch counted; or dropped
    by cancellation), or it waits for a decision (a multi-hop decision stop: ``M_PEND_KIND`` is set).
    """
    node_f, opt_f, fault_f, par = pack_view2(CF, CI, C_NODE_F), pack_view3(CF, CI, C_OPT_F), \
        pack_view2(CF, CI, C_FAULT_F), pack_view1(CF, CI, C_PAR)
    node_i, opt_i, fault_i = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), pack_view2(CI, CI, CI_FAULT_I)
    m, fm = pack_view1(SI, SI, I_MISC), pack_view1(SF, SI, F_MISC)
    server_free, link_free = pack_view1(SF, SI, F_SERVER_FREE), pack_view2(SF, SI, F_LINK_FREE)
    rq_t, rq_i, rq_acc = pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), pack_view2(SF, SI, F_RQ_ACC)
    job_i, job_f, job_free = pack_view2(SI, SI, I_JOB_I), pack_view2(SF, SI, F_JOB_F), pack_view1(SI, SI, I_JOB_FREE)
    ensemble = m[M_MODE] == MODE_ENSEMBLE
    g = job_i[j, J_G]
    o = job_i[j, J_O]
    k = job_i[j, J_K]
    hop = job_i[j, J_HOP]
    phase = job_i[j, J_PHASE]
    slot = g & (rq_t.shape[0] - 1)
    alive = rq_i[slot, RQ_G] == g and rq_i[slot, RQ_STATUS] == ST_ALIVE
    cut = job_f[j, 0] if par[P_CANCEL] > 0.0 else np.inf
    stage = job_i[j, J_STAGE] + 1
    job_i[j, J_STAGE] = stage
    if phase == PH_UP:
        if ensemble and job_i[j, J_FORK] != 0:
            fork_(opt_i, job_i, job_f, job_free, m, pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K),
                  pack_view1(SI, SI, I_HEAP_J), j, hop, tau, g * STAGES + stage)
        lk = opt_i[o, k, OPT_LINKS + hop]
        st, en, rel = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 0],
                                opt_f[o, k, OPT_TX + 2 * hop], cut)
        link_free[lk, 0] = rel
        if st != st:  # dropped (cancelled)
            free_job_(job_free, m, j)
            return -1.0
        hop += 1
        job_i[j, J_HOP] = hop
        if hop == opt_i[o, k, OPT_NLINKS]:
            job_i[j, J_PHASE] = PH_NODE
        return en + node_f[lk, NODE_PROP_S]
    if phase == PH_NODE:
        h = job_i[j, J_STOP]
        if m[M_MODE] == MODE_MULTIHOP and h >= 0:
            stop_i = pack_view3(CI, CI, CI_STOP_I)
            if alive and stop_i[o, h, ST_DEC] >= 0:  # a decision stop: its learner decides now
                m[M_PEND_KIND] = PEND_STOP
                m[M_PEND_JOB] = j
                m[M_PEND_ROW] = -1
                fm[T_PEND] = tau
                job_i[j, J_STAGE] = stage - 1
                return -1.0
            job_i[j, J_STOP] = -1  # serve-only stop, or nobody waits for it any more: first model
        if ensemble and job_i[j, J_FORK] != 0:
            fork_(opt_i, job_i, job_f, job_free, m, pack_view1(SF, SI, F_HEAP_T), pack_view1(SI, SI, I_HEAP_K),
                  pack_view1(SI, SI, I_HEAP_J), j, hop, tau, g * STAGES + stage)
        n = opt_i[o, k, OPT_NODE]
        st, en = node_place_(fault_i, fault_f, node_i[n, NODE_SPEED_FAULTS], server_free, node_i[n, NODE_LO],
                             node_i[n, NODE_HI], n, tau, opt_f[o, k, OPT_COMPUTE_S], cut, True)
        if alive:
            rq_acc[slot, ACC_ARR] = tau
            rq_acc[slot, ACC_START] = st if st == st else np.inf
            rq_acc[slot, ACC_END] = en if en == en else np.inf
        if st != st:
            free_job_(job_free, m, j)
            return -1.0
        nl = opt_i[o, k, OPT_NLINKS]
        if nl == 0:
            job_i[j, J_PHASE] = PH_DONE
        else:
            job_i[j, J_PHASE] = PH_DOWN
            job_i[j, J_HOP] = nl - 1
        return en
    if phase == PH_DOWN:
        lk = opt_i[o, k, OPT_LINKS + hop]
        st, en, rel = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 1],
                                opt_f[o, k, OPT_TX + 2 * hop + 1], cut)
        link_free[lk, 1] = rel
        if st != st:
            free_job_(job_free, m, j)
            return -1.0
        if hop == 0:
            job_i[j, J_PHASE] = PH_DONE
        else:
            job_i[j, J_HOP] = hop - 1
        return en + node_f[lk, NODE_PROP_S]
    # PH_DONE: the response reaches the client
    free_job_(job_free, m, j)
    if alive and tau <= rq_t[slot] + par[P_TIMEOUT_S]:
        if not ensemble:
            finalise_(CF, CI, SF, SI, slot, tau, True)
            return -1.0
        pack_view3(SF, SI, F_RQ_Q)[slot, k, Q_RESP] = tau
        rq_i[slot, RQ_OUTSTANDING] -= 1
        if rq_i[slot, RQ_OUTSTANDING] == 0:  # the batch has answered: the strategy's turn
            m[M_PEND_KIND] = PEND_BATCH
            m[M_PEND_SLOT] = slot
            fm[T_PEND] = tau
    return -1.0
