"""Ensemble batches in the event core (numba): sending a batch of parallel queries, closing a request.

:mod:`idnbandit.sim.ensemble_run` drives them: the core stops with ``PEND_ORIGIN`` at a request's
arrival and with ``PEND_BATCH`` when every query of its batch has answered (or its client gave up);
the strategy then sends a batch (:func:`decide_batch_`) or answers (:func:`ens_finish_`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .compiled import OPT_NLINKS, P_TIMEOUT_S
from .heap import heap_push_
from .jobs import new_job_
from .packed import pack_view1, pack_view2, pack_view3
from .requests import close_slot_
from .state import (
    C_PAR,
    CI_OPT_I,
    F_HEAP_T,
    F_JOB_F,
    F_MISC,
    F_RQ_Q,
    F_RQ_T,
    I_HEAP_J,
    I_HEAP_K,
    I_JOB_FREE,
    I_JOB_I,
    I_MISC,
    I_RQ_I,
    J_FORK,
    M_G_NEXT,
    M_HEAP_N,
    M_PEND_KIND,
    M_PEND_SLOT,
    M_REQ_POS,
    PEND_BATCH,
    PEND_NONE,
    PEND_ORIGIN,
    Q_RESP,
    Q_SENT,
    RQ_G,
    RQ_K,
    RQ_O,
    RQ_OUTSTANDING,
    STAGES,
    T_PEND,
)

__all__ = ["decide_batch_", "ens_finish_"]


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
                j = new_job_(job_i, job_f, job_free, m, g, o, k, t0, timeout_s, -1, 0)
                m[M_HEAP_N] = heap_push_(ht, hk, hj, m[M_HEAP_N], tau, g * STAGES, j)
            elif nl > far:
                far = nl
                carrier = k
    if carrier >= 0:
        fork = 0
        for k in range(k_n):
            if (mask >> k) & 1 and k != carrier and opt_i[o, k, OPT_NLINKS] > 0:
                fork |= 1 << k
        j = new_job_(job_i, job_f, job_free, m, g, o, carrier, t0, timeout_s, -1, far)
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
    close_slot_(m, pack_view1(SF, SI, F_RQ_T), pack_view2(SI, SI, I_RQ_I), m[M_PEND_SLOT])
    m[M_PEND_KIND] = PEND_NONE
