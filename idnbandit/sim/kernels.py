"""Per-request numba kernels shared by the fused loop, the Python loop and the step-level engine.

Everything here takes the :class:`~idnbandit.sim.compiled.Compiled` arrays ``c``, the mutable
:class:`SimState` ``st`` and scratch buffers; nothing allocates in the hot path.

Queues: each node has ``c`` identical FIFO servers described by their next-free times; a job
arriving at ``a`` with service ``s`` takes the server that frees first (lowest index on ties) and
starts at ``max(a, next_free)`` (Lindley's recursion for c servers). Background jobs of a node are
inserted, in time order, before a request reaches that node. Links: one FIFO transmitter per link
direction (0 = up, 1 = down); a transfer of ``b`` bits starts when the transmitter is free and takes
``b / bandwidth``, then the propagation delay.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .compiled import (
    CORRECT,
    FAULT_END,
    FAULT_FACTOR,
    FAULT_KIND,
    FAULT_START,
    FAULT_TARGET,
    NODE_HI,
    NODE_LINK_FAULTS,
    NODE_LO,
    NODE_PROP_S,
    NODE_SPEED_FAULTS,
    OPT_COL,
    OPT_COMPUTE_S,
    OPT_COST,
    OPT_LINKS,
    OPT_LOCAL,
    OPT_NLINKS,
    OPT_NODE,
    OPT_TX,
    P_DEADLINE_S,
    P_FB_MODE,
    P_TIMEOUT_S,
    P_USE_CONF,
    P_USE_LOAD,
    P_W_ACC,
    P_W_COST,
    P_W_LAT,
    PRED,
)

__all__ = ["SimState", "Scratch", "OUT_FIELDS", "new_state", "new_scratch", "fifo_waits", "prepare", "commit",
           "bg_ready"]

# fields of an outcome row (scratch.out, scratch.cf_out[k])
OUT_LATENCY, OUT_NET, OUT_QUEUE, OUT_COMPUTE, OUT_COST, OUT_CORRECT, OUT_ANSWER, OUT_TIMEOUT, OUT_NODE, \
    OUT_REWARD, OUT_LATE = range(11)
OUT_FIELDS = ("latency_s", "network_s", "queueing_s", "compute_s", "cost", "correct", "answer", "timeout",
              "node", "reward", "late")
N_OUT = len(OUT_FIELDS)

FB_FULL, FB_BANDIT, FB_LABEL_ON_FORWARD, FB_PROXY = 0, 1, 2, 3


class SimState(NamedTuple):
    """Mutable simulator state (queues and pre-drawn background jobs)."""

    server_free: np.ndarray  # (S,) float64 next-free time of every server (all nodes)
    link_free: np.ndarray  # (Nn, 2) float64 next-free time of each link's up / down transmitter
    bg_arr: np.ndarray  # (Nn, cap) float64 pre-drawn background arrival times
    bg_svc: np.ndarray  # (Nn, cap) float64 their service times
    bg_i: np.ndarray  # (Nn, 2) int64 [first job not yet inserted, jobs buffered]
    bg_horizon: np.ndarray  # (Nn,) float64 every background job before this time is buffered


class Scratch(NamedTuple):
    """Per-request work buffers."""

    x: np.ndarray  # (n_features,) context
    cf: np.ndarray  # (K,) counterfactual rewards
    cf_out: np.ndarray  # (K + 1, N_OUT) counterfactual outcomes; row K: the chosen option's true outcome
    out: np.ndarray  # (N_OUT,) view of cf_out[K]
    fb_rs: np.ndarray  # (K,) observed rewards (NaN = not observed)
    servers: np.ndarray  # (max servers,) copy of a node's servers for non-mutating peeks


def new_state(c, bg_cap: int = 16) -> SimState:
    """Idle queues, empty background buffers."""
    nn = c.node_f.shape[0]
    horizon = np.full(nn, np.inf)
    horizon[c.bg_nodes] = 0.0
    return SimState(np.zeros(int(c.node_i[-1, NODE_HI])), np.zeros((nn, 2)), np.zeros((nn, bg_cap)),
                    np.zeros((nn, bg_cap)), np.zeros((nn, 2), np.int64), horizon)


def new_scratch(c) -> Scratch:
    k = c.opt_i.shape[1]
    cf_out = np.zeros((k + 1, N_OUT))
    return Scratch(np.zeros(c.n_features), np.zeros(k), cf_out, cf_out[k],
                   np.full(k, np.nan), np.zeros(int((c.node_i[:, NODE_HI] - c.node_i[:, NODE_LO]).max())))


@njit(cache=True, error_model="numpy", inline="always")
def serve_(free, lo, hi, arrival, service):
    """FIFO c-server queue: put a job on the first-free server of ``free[lo:hi]``; return its start."""
    j = lo
    for i in range(lo + 1, hi):
        if free[i] < free[j]:
            j = i
    start = arrival if arrival > free[j] else free[j]
    free[j] = start + service
    return start


@njit(cache=True, error_model="numpy", inline="always")
def first_free(free, lo, hi):
    m = free[lo]
    for i in range(lo + 1, hi):
        if free[i] < m:
            m = free[i]
    return m


@njit(cache=True, error_model="numpy")
def fifo_waits(arrivals, services, free):
    """Waiting times of jobs (sorted ``arrivals``, ``services``) at a FIFO queue with ``len(free)``
    servers whose next-free times ``free`` are updated in place (so chunks can be chained)."""
    n = arrivals.shape[0]
    waits = np.empty(n)
    hi = free.shape[0]
    for i in range(n):
        waits[i] = serve_(free, 0, hi, arrivals[i], services[i]) - arrivals[i]
    return waits


@njit(cache=True, error_model="numpy", inline="always")
def advance_node_(node_i, server_free, bg_arr, bg_svc, bg_i, n, until):
    """Insert the background jobs of node ``n`` arriving before ``until`` into its servers."""
    p = bg_i[n, 0]
    ln = bg_i[n, 1]
    lo = node_i[n, NODE_LO]
    hi = node_i[n, NODE_HI]
    while p < ln and bg_arr[n, p] < until:
        serve_(server_free, lo, hi, bg_arr[n, p], bg_svc[n, p])
        p += 1
    bg_i[n, 0] = p


@njit(cache=True, error_model="numpy", inline="always")
def bg_ready_(bg_nodes, bg_horizon, until):
    for b in bg_nodes:
        if bg_horizon[b] < until:
            return False
    return True


@njit(cache=True, error_model="numpy")
def bg_ready(c, st, t):
    """True when every node's background jobs are buffered up to ``t + timeout``."""
    return bg_ready_(c.bg_nodes, st.bg_horizon, t + c.par[P_TIMEOUT_S])


@njit(cache=True, error_model="numpy", inline="always")
def link_factor(fault_i, fault_f, link, tau):
    """Bandwidth multiplier of ``link`` at time ``tau`` (0 during an outage)."""
    f = 1.0
    for j in range(fault_i.shape[0]):
        if fault_i[j, FAULT_TARGET] == link and fault_f[j, FAULT_START] <= tau and tau < fault_f[j, FAULT_END]:
            if fault_i[j, FAULT_KIND] == 1:
                return 0.0
            if fault_i[j, FAULT_KIND] == 0:
                f *= fault_f[j, FAULT_FACTOR]
    return f


@njit(cache=True, error_model="numpy", inline="always")
def speed_factor(fault_i, fault_f, node, tau):
    f = 1.0
    for j in range(fault_i.shape[0]):
        if fault_i[j, FAULT_KIND] == 2 and fault_i[j, FAULT_TARGET] == node and fault_f[j, FAULT_START] <= tau \
                and tau < fault_f[j, FAULT_END]:
            f *= fault_f[j, FAULT_FACTOR]
    return f


@njit(cache=True, error_model="numpy", inline="always")
def reward_of(par, correct, latency_s, cost):
    return par[P_W_ACC] * correct - par[P_W_LAT] * latency_s - par[P_W_COST] * cost


@njit(cache=True, error_model="numpy", inline="always")
def peek_first_free(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, n, tau):
    """When a server of node ``n`` is first free for a job arriving at ``tau``, counting the background
    jobs that arrive before it; works on a copy in ``tmp``, the queues are not changed."""
    lo = node_i[n, NODE_LO]
    m = node_i[n, NODE_HI] - lo
    for i in range(m):
        tmp[i] = server_free[lo + i]
    p = bg_i[n, 0]
    while p < bg_i[n, 1] and bg_arr[n, p] < tau:
        serve_(tmp, 0, m, bg_arr[n, p], bg_svc[n, p])
        p += 1
    return first_free(tmp, 0, m)


@njit(cache=True, error_model="numpy", inline="always")
def option_outcome_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, bg_arr,
                    bg_svc, bg_i, o, k, s, t, commit, tmp, outs, row):
    """Outcome of serving request (origin ``o``, sample ``s``, decided at ``t``) with option ``k``.

    With ``commit`` the queues and transmitters are updated; without, nothing changes (a
    counterfactual from the current state). Fills ``outs[row]`` (see ``OUT_FIELDS``), returns the reward.
    """
    n = opt_i[o, k, OPT_NODE]
    h = opt_i[o, k, OPT_NLINKS]
    timeout_s = par[P_TIMEOUT_S]
    tau = t
    timeout = False
    queue = 0.0
    compute = 0.0
    for j in range(h):  # request up
        lk = opt_i[o, k, OPT_LINKS + j]
        f = 1.0 if node_i[lk, NODE_LINK_FAULTS] == 0 else link_factor(fault_i, fault_f, lk, tau)
        if f == 0.0:
            timeout = True
            break
        start = tau if tau > link_free[lk, 0] else link_free[lk, 0]
        done = start + (opt_f[o, k, OPT_TX + 2 * j] if f == 1.0 else opt_f[o, k, OPT_TX + 2 * j] / f)
        if commit:
            link_free[lk, 0] = done
        tau = done + node_f[lk, NODE_PROP_S]
    if not timeout and tau - t > timeout_s:
        timeout = True
    if not timeout:
        lo = node_i[n, NODE_LO]
        hi = node_i[n, NODE_HI]
        arrival = tau
        if commit:
            advance_node_(node_i, server_free, bg_arr, bg_svc, bg_i, n, arrival)
            start = first_free(server_free, lo, hi)
        else:
            start = peek_first_free(node_i, server_free, bg_arr, bg_svc, bg_i, tmp, n, arrival)
        start = arrival if arrival > start else start
        compute = opt_f[o, k, OPT_COMPUTE_S]
        if node_i[n, NODE_SPEED_FAULTS] > 0:
            compute = compute / speed_factor(fault_i, fault_f, n, start)
        if commit:
            serve_(server_free, lo, hi, arrival, compute)
        queue = start - arrival
        tau = start + compute
        for j in range(h - 1, -1, -1):  # response down
            lk = opt_i[o, k, OPT_LINKS + j]
            f = 1.0 if node_i[lk, NODE_LINK_FAULTS] == 0 else link_factor(fault_i, fault_f, lk, tau)
            if f == 0.0:
                timeout = True
                break
            start = tau if tau > link_free[lk, 1] else link_free[lk, 1]
            done = start + (opt_f[o, k, OPT_TX + 2 * j + 1] if f == 1.0 else opt_f[o, k, OPT_TX + 2 * j + 1] / f)
            if commit:
                link_free[lk, 1] = done
            tau = done + node_f[lk, NODE_PROP_S]
    latency = tau - t
    if timeout or latency > timeout_s:
        timeout = True
        latency = timeout_s
        queue = min(queue, latency)
        compute = min(compute, latency - queue)
    col = opt_i[o, k, OPT_COL]
    late = latency > par[P_DEADLINE_S]
    correct = (not timeout) and (not late) and predc[col, s, CORRECT] == 1
    cost = opt_f[o, k, OPT_COST]
    outs[row, OUT_LATENCY] = latency
    outs[row, OUT_QUEUE] = queue
    outs[row, OUT_COMPUTE] = compute
    outs[row, OUT_NET] = latency - queue - compute
    outs[row, OUT_COST] = cost
    outs[row, OUT_CORRECT] = 1.0 if correct else 0.0
    outs[row, OUT_ANSWER] = -1.0 if timeout else float(predc[col, s, PRED])
    outs[row, OUT_TIMEOUT] = 1.0 if timeout else 0.0
    outs[row, OUT_NODE] = n
    outs[row, OUT_LATE] = 1.0 if late else 0.0
    r = reward_of(par, outs[row, OUT_CORRECT], latency, cost)
    outs[row, OUT_REWARD] = r
    return r


@njit(cache=True, error_model="numpy", inline="always")
def prepare_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, feat, bg_nodes, server_free, link_free,
             bg_arr, bg_svc, bg_i, x, cf, cf_out, tmp, o, s, t):
    """Advance background load to ``t``; fill the context ``x`` and the counterfactuals ``cf``/``cf_out``."""
    context_(node_i, opt_i, par, feat, bg_nodes, server_free, bg_arr, bg_svc, bg_i, x, o, s, t)
    for k in range(opt_i.shape[1]):
        cf[k] = option_outcome_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free,
                                bg_arr, bg_svc, bg_i, o, k, s, t, False, tmp, cf_out, k)


@njit(cache=True, error_model="numpy", inline="always")
def context_(node_i, opt_i, par, feat, bg_nodes, server_free, bg_arr, bg_svc, bg_i, x, o, s, t):
    """Advance background load to ``t`` and fill the context ``x``."""
    for b in bg_nodes:
        advance_node_(node_i, server_free, bg_arr, bg_svc, bg_i, b, t)
    k_n = opt_i.shape[1]
    i = 0
    if par[P_USE_CONF] > 0:
        col = opt_i[o, 0, OPT_COL]
        for j in range(3):
            x[j] = feat[col, s, j]
        i = 3
    if par[P_USE_LOAD] > 0:
        for k in range(k_n):
            n = opt_i[o, k, OPT_NODE]
            w = first_free(server_free, node_i[n, NODE_LO], node_i[n, NODE_HI]) - t
            x[i + k] = w if w > 0.0 else 0.0
        i += k_n
    x[i] = 1.0


@njit(cache=True, error_model="numpy", inline="always")
def feedback_(opt_i, par, cf, cf_out, fb_rs, o, a):
    """What the deciding node observes about its choice ``a`` (true outcome in the last row of ``cf_out``).

    Fills ``fb_rs`` (NaN = not observed) and returns the observed reward of ``a`` (or NaN).
    """
    k_n = fb_rs.shape[0]
    for k in range(k_n):
        fb_rs[k] = np.nan
    ch = cf_out.shape[0] - 1
    mode = int(par[P_FB_MODE])
    if mode == FB_FULL:
        for k in range(k_n):
            fb_rs[k] = cf[k]
        fb_rs[a] = cf_out[ch, OUT_REWARD]
    elif mode == FB_BANDIT:
        fb_rs[a] = cf_out[ch, OUT_REWARD]
    elif opt_i[o, a, OPT_LOCAL] == 1:
        pass  # served at the origin's own node: no label, nothing observed
    elif cf_out[ch, OUT_TIMEOUT] > 0.0:
        fb_rs[a] = cf_out[ch, OUT_REWARD]  # a timeout is a failure whatever the label
    elif mode == FB_LABEL_ON_FORWARD:
        fb_rs[a] = cf_out[ch, OUT_REWARD]
        for k in range(k_n):
            if opt_i[o, k, OPT_LOCAL] == 1:
                fb_rs[k] = cf[k]
    else:  # proxy: the remote answer stands in for the label
        ans = cf_out[ch, OUT_ANSWER]
        fb_rs[a] = reward_of(par, 0.0 if cf_out[ch, OUT_LATE] > 0.0 else 1.0, cf_out[ch, OUT_LATENCY], cf_out[ch, OUT_COST])
        for k in range(k_n):
            if opt_i[o, k, OPT_LOCAL] == 1:
                ok = cf_out[k, OUT_TIMEOUT] == 0.0 and cf_out[k, OUT_LATE] == 0.0 and cf_out[k, OUT_ANSWER] == ans
                fb_rs[k] = reward_of(par, 1.0 if ok else 0.0, cf_out[k, OUT_LATENCY], cf_out[k, OUT_COST])
    return fb_rs[a]


@njit(cache=True, error_model="numpy", inline="always")
def commit_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, bg_arr, bg_svc,
            bg_i, cf, cf_out, fb_rs, tmp, o, a, s, t):
    """Serve the request with option ``a`` (queues updated); outcome in ``out``, feedback in ``fb_rs``;
    returns the observed reward."""
    option_outcome_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, bg_arr,
                    bg_svc, bg_i, o, a, s, t, True, tmp, cf_out, cf_out.shape[0] - 1)
    return feedback_(opt_i, par, cf, cf_out, fb_rs, o, a)


@njit(cache=True, error_model="numpy")
def prepare(c, st, sc, o, s, t):
    """:func:`prepare_` on the named tuples (for the Python loop and the engine)."""
    prepare_(c.node_f, c.node_i, c.opt_i, c.opt_f, c.predc, c.fault_i, c.fault_f, c.par, c.feat, c.bg_nodes,
             st.server_free, st.link_free, st.bg_arr, st.bg_svc, st.bg_i, sc.x, sc.cf, sc.cf_out, sc.servers, o, s, t)


@njit(cache=True, error_model="numpy")
def commit(c, st, sc, o, a, s, t):
    """:func:`commit_` on the named tuples (for the Python loop and the engine)."""
    return commit_(c.node_f, c.node_i, c.opt_i, c.opt_f, c.predc, c.fault_i, c.fault_f, c.par, st.server_free,
                   st.link_free, st.bg_arr, st.bg_svc, st.bg_i, sc.cf, sc.cf_out, sc.fb_rs, sc.servers,
                   o, a, s, t)
