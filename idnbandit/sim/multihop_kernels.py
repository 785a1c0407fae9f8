"""Numba kernels of multi-hop delivery: the context a decision stop sees and the feedback it gets.

Layout arrays (built by :func:`idnbandit.sim.multihop.multihop_layout`): ``stop_i[o, h]`` =
``(node, first option, models, decision node or -1, option of a serve-only next stop or -1)``,
``dec_i[d]`` = ``(valid actions, learner)``, ``mh_i`` = ``(A, F, identity indicators)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .compiled import OPT_COL, P_FB_MODE, P_USE_CONF, P_USE_LOAD
from .stages import (
    FB_BANDIT,
    FB_FULL,
    FB_LABEL_ON_FORWARD,
    OUT_ANSWER,
    OUT_COST,
    OUT_LATE,
    OUT_LATENCY,
    OUT_REWARD,
    OUT_TIMEOUT,
    backlog_,
    reward_of,
)

__all__ = ["ST_NODE", "ST_OPT0", "ST_M", "ST_DEC", "ST_NEXT_DET", "DEC_VALID", "DEC_AGENT", "MH_A", "MH_F",
           "MH_IDENT"]

ST_NODE, ST_OPT0, ST_M, ST_DEC, ST_NEXT_DET = range(5)
DEC_VALID, DEC_AGENT = range(2)
MH_A, MH_F, MH_IDENT = range(3)


@njit(cache=True, error_model="numpy", inline="always")
def stop_context_(node_i, opt_i, par, feat, server_free, stop_i, dec_i, mh_i, x, o, s, tau, h):
    """Fill ``x`` with the context of decision stop ``h`` of a request (origin ``o``, sample ``s``) that
    reaches the stop's node at ``tau`` (state at ``tau``).

    Layout: ``[maxprob, margin, entropy]`` of the node's first model on the sample (if
    ``context.confidence``), then per action the backlog (s) of the node the action sends the
    request to (if ``context.load``), then ``n_ident`` node-identity indicators (decision node ``d``
    sets entry ``d - 1``), then the bias 1.0.
    """
    d = stop_i[o, h, ST_DEC]
    k0 = stop_i[o, h, ST_OPT0]
    i = 0
    if par[P_USE_CONF] > 0:
        col = opt_i[o, k0, OPT_COL]
        for j in range(3):
            x[j] = feat[col, s, j]
        i = 3
    a_n = mh_i[MH_A]
    if par[P_USE_LOAD] > 0:
        m = stop_i[o, h, ST_M]
        valid = dec_i[d, DEC_VALID]
        own = backlog_(node_i, server_free, stop_i[o, h, ST_NODE], tau)
        nxt = own
        if valid > m:
            nxt = backlog_(node_i, server_free, stop_i[o, h + 1, ST_NODE], tau)
        for a in range(a_n):
            e = a if a < valid else valid - 1
            x[i + a] = nxt if e >= m else own
        i += a_n
    for j in range(mh_i[MH_IDENT]):
        x[i + j] = 1.0 if d == j + 1 else 0.0
    x[i + mh_i[MH_IDENT]] = 1.0


@njit(cache=True, error_model="numpy", inline="always")
def stop_feedback_(par, cf, cfout, out, stop_i, dec_i, vals, rs, o, h, a, e):
    """What decision stop ``h`` observes about its action ``a`` (effective action ``e``) once the request
    is finalised (true outcome row ``out``; ``cf``/``cfout``: the origin's decision-time estimates).

    Fills ``rs`` ((A,), NaN = not observed; padding actions get the value of the action they stand
    for) and returns ``rs[a]``. ``vals`` is an (A,) work buffer.
    """
    d = stop_i[o, h, ST_DEC]
    m = stop_i[o, h, ST_M]
    k0 = stop_i[o, h, ST_OPT0]
    valid = dec_i[d, DEC_VALID]
    for j in range(vals.shape[0]):
        vals[j] = np.nan
    final = out[OUT_REWARD]
    forwarded = e >= m
    mode = int(par[P_FB_MODE])
    if mode == FB_FULL:
        for j in range(m):
            vals[j] = cf[k0 + j]
        if valid > m and stop_i[o, h, ST_NEXT_DET] >= 0:
            vals[m] = cf[stop_i[o, h, ST_NEXT_DET]]
        vals[e] = final
    elif mode == FB_BANDIT:
        vals[e] = final
    elif not forwarded:
        pass  # the node answered itself: nobody tells it the label
    elif out[OUT_TIMEOUT] > 0.0:
        vals[e] = final  # a timeout is a failure whatever the label
    elif mode == FB_LABEL_ON_FORWARD:
        vals[e] = final
        for j in range(m):
            vals[j] = cf[k0 + j]
    else:  # proxy: the answer that came back stands in for the label
        ans = out[OUT_ANSWER]
        vals[e] = reward_of(par, 0.0 if out[OUT_LATE] > 0.0 else 1.0, out[OUT_LATENCY], out[OUT_COST])
        for j in range(m):
            k = k0 + j
            ok = cfout[k, OUT_TIMEOUT] == 0.0 and cfout[k, OUT_LATE] == 0.0 and cfout[k, OUT_ANSWER] == ans
            vals[j] = reward_of(par, 1.0 if ok else 0.0, cfout[k, OUT_LATENCY], cfout[k, OUT_COST])
    for j in range(rs.shape[0]):
        rs[j] = vals[j if j < valid else valid - 1]
    return rs[a]
