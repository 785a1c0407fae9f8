"""Numba kernels of multi-hop delivery (see :mod:`idnbandit.sim.multihop` for the semantics).

A request climbs its path *stop* by *stop* (a stop is a node of the path that hosts a model); at
every *decision stop* the stop's learner serves it with one of the node's models or forwards it to
the next stop. These kernels build a decision stop's context, turn a route into the origin option
that serves the request (so the committed outcome, the counterfactuals and the metrics are exactly
those of :mod:`idnbandit.sim.kernels`), and compute what each deciding node observes.

Layout arrays (built by :func:`idnbandit.sim.multihop.multihop_layout`; O origins, Hs stops, D
decision nodes): ``stop_i`` (O, Hs, 5) int64 with columns ``ST_NODE`` (node index), ``ST_OPT0``
(origin option index of the node's first model), ``ST_M`` (models hosted), ``ST_DEC`` (decision
index, -1 when the stop only serves), ``ST_NEXT_DET`` (origin option served when forwarding leads
to a stop that only serves, else -1); ``dec_i`` (D, 2) int64 with ``DEC_VALID`` (valid actions:
models + 1 when the node can forward) and ``DEC_AGENT`` (learner index); ``mh_i`` (3,) int64
``[A, F, n_ident]`` (actions, context length, node-identity features).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .compiled import (
    NODE_LINK_FAULTS,
    NODE_PROP_S,
    OPT_COL,
    OPT_LINKS,
    OPT_NLINKS,
    OPT_TX,
    P_FB_MODE,
    P_TIMEOUT_S,
    P_USE_CONF,
    P_USE_LOAD,
)
from .kernels import (
    FB_BANDIT,
    FB_FULL,
    FB_LABEL_ON_FORWARD,
    OUT_ANSWER,
    OUT_COST,
    OUT_LATE,
    OUT_LATENCY,
    OUT_REWARD,
    OUT_TIMEOUT,
    advance_node_,
    link_factor,
    peek_first_free,
    reward_of,
)

__all__ = ["ST_NODE", "ST_OPT0", "ST_M", "ST_DEC", "ST_NEXT_DET", "DEC_VALID", "DEC_AGENT", "MH_A", "MH_F",
           "MH_IDENT", "advance_bg_", "arrival_at_", "backlog_at_", "stop_context_", "stop_feedback_",
           "stop_context", "stop_feedback"]

ST_NODE, ST_OPT0, ST_M, ST_DEC, ST_NEXT_DET = range(5)
DEC_VALID, DEC_AGENT = range(2)
MH_A, MH_F, MH_IDENT = range(3)


@njit(cache=True, error_model="numpy", inline="always")
def advance_bg_(node_i, bg_nodes, server_free, bg_arr, bg_svc, bg_i, t):
    """Insert every node's background jobs arriving before ``t`` (as the single-decision loop does)."""
    for b in bg_nodes:
        advance_node_(node_i, server_free, bg_arr, bg_svc, bg_i, b, t)


@njit(cache=True, error_model="numpy", inline="always")
def arrival_at_(node_f, node_i, opt_i, opt_f, fault_i, fault_f, par, link_free, o, k, t):
    """Time the input of request (origin ``o``, sent at ``t``) reaches the node of option ``k``.

    Crosses the option's uplinks with their current transmitter queues (nothing is committed);
    a link outage on the way gives ``t + timeout`` (the request cannot arrive in time).
    """
    tau = t
    for j in range(opt_i[o, k, OPT_NLINKS]):
        lk = opt_i[o, k, OPT_LINKS + j]
        f = 1.0 if node_i[lk, NODE_LINK_FAULTS] == 0 else link_factor(fault_i, fault_f, lk, tau)
        if f == 0.0:
            return t + par[P_TIMEOUT_S]
        start = tau if tau > link_free[lk, 0] else link_free[lk, 0]
        tau = start + opt_f[o, k, OPT_TX + 2 * j] / f + node_f[lk, NODE_PROP_S]
    return tau


@njit(cache=True, error_model="numpy", inline="always")
def backlog_at_(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, n, tau):
    """Seconds until a server of node ``n`` is free at time ``tau`` (background jobs arriving
    before ``tau`` included); the queues are not changed."""
    w = peek_first_free(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, n, tau) - tau
    return w if w > 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def stop_context_(node_f, node_i, opt_i, opt_f, fault_i, fault_f, par, feat, server_free, link_free, bg_arr,
                  bg_svc, bg_i, tmp, stop_i, dec_i, mh_i, x, o, s, t, h):
    """Fill ``x`` with the context of decision stop ``h`` of request (``o``, ``s``, sent at ``t``).

    Layout: ``[maxprob, margin, entropy]`` of the node's first model on the sample (if
    ``context.confidence``), then per action the backlog (s) of the node the action sends the
    request to, measured when the request reaches this node (if ``context.load``), then ``n_ident``
    node-identity indicators (decision node ``d`` sets entry ``d - 1``), then the bias 1.0.
    """
    d = stop_i[o, h, ST_DEC]
    k0 = stop_i[o, h, ST_OPT0]
    tau = arrival_at_(node_f, node_i, opt_i, opt_f, fault_i, fault_f, par, link_free, o, k0, t)
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
        own = backlog_at_(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, stop_i[o, h, ST_NODE], tau)
        nxt = own
        if valid > m:
            nxt = backlog_at_(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, stop_i[o, h + 1, ST_NODE], tau)
        for a in range(a_n):
            e = a if a < valid else valid - 1
            x[i + a] = nxt if e >= m else own
        i += a_n
    for j in range(mh_i[MH_IDENT]):
        x[i + j] = 1.0 if d == j + 1 else 0.0
    x[i + mh_i[MH_IDENT]] = 1.0


@njit(cache=True, error_model="numpy", inline="always")
def stop_feedback_(par, cf, cf_out, stop_i, dec_i, vals, rs, o, h, a, e):
    """What decision stop ``h`` observes about its action ``a`` (effective action ``e``) once the
    request is served (true outcome in the last row of ``cf_out``).

    Fills ``rs`` ((A,), NaN = not observed; padding actions get the value of the action they stand
    for) and returns ``rs[a]``. ``vals`` is an (A,) work buffer.
    """
    d = stop_i[o, h, ST_DEC]
    m = stop_i[o, h, ST_M]
    k0 = stop_i[o, h, ST_OPT0]
    valid = dec_i[d, DEC_VALID]
    for j in range(vals.shape[0]):
        vals[j] = np.nan
    ch = cf_out.shape[0] - 1
    final = cf_out[ch, OUT_REWARD]
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
    elif cf_out[ch, OUT_TIMEOUT] > 0.0:
        vals[e] = final  # a timeout is a failure whatever the label
    elif mode == FB_LABEL_ON_FORWARD:
        vals[e] = final
        for j in range(m):
            vals[j] = cf[k0 + j]
    else:  # proxy: the answer that came back stands in for the label
        ans = cf_out[ch, OUT_ANSWER]
        vals[e] = reward_of(par, 0.0 if cf_out[ch, OUT_LATE] > 0.0 else 1.0, cf_out[ch, OUT_LATENCY],
                            cf_out[ch, OUT_COST])
        for j in range(m):
            k = k0 + j
            ok = cf_out[k, OUT_TIMEOUT] == 0.0 and cf_out[k, OUT_LATE] == 0.0 and cf_out[k, OUT_ANSWER] == ans
            vals[j] = reward_of(par, 1.0 if ok else 0.0, cf_out[k, OUT_LATENCY], cf_out[k, OUT_COST])
    for j in range(rs.shape[0]):
        rs[j] = vals[j if j < valid else valid - 1]
    return rs[a]


# ---------------------------------------------------------------- named-tuple wrappers (Python loop)
@njit(cache=True, error_model="numpy")
def stop_context(c, st, sc, stop_i, dec_i, mh_i, x, o, s, t, h):
    """:func:`stop_context_` on the named tuples."""
    stop_context_(c.node_f, c.node_i, c.opt_i, c.opt_f, c.fault_i, c.fault_f, c.par, c.feat, st.server_free,
                  st.link_free, st.bg_arr, st.bg_svc, st.bg_i, sc.servers, stop_i, dec_i, mh_i, x, o, s, t, h)


@njit(cache=True, error_model="numpy")
def stop_feedback(c, sc, stop_i, dec_i, vals, rs, o, h, a, e):
    """:func:`stop_feedback_` on the named tuples."""
    return stop_feedback_(c.par, sc.cf, sc.cf_out, stop_i, dec_i, vals, rs, o, h, a, e)
