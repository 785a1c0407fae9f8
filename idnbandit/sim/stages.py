"""The per-stage numba kernels of the event core: transmitters, servers, faults, outcomes, context, feedback.

A request served with option ``k`` goes through *stages* (docs/simulator.md, "The event model"): up
transmissions on the links of its path, service at the option's node, down transmissions, the
response at its origin. Each stage is placed on its resource when the request *arrives* at it (the
event core calls these kernels in the global time order of arrivals), so every FIFO serves in
arrival order: a transmitter or a server pool is described by its next-free time(s) and a job that
arrives at ``tau`` starts at ``max(tau, free)`` (c servers: the one that frees first, the lowest
index on ties). Faults are looked up at the moment a stage starts: an outage postpones a
transmission that would start inside it and restarts one it interrupts; bandwidth and slowdown
factors in force at the start apply to the whole stage.

The same kernels give the *counterfactual estimate* of an option at decision time: the stages
walked from the current state as if no other job arrived later (nothing is changed).
"""

from __future__ import annotations

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

__all__ = ["OUT_FIELDS", "N_OUT", "FB_FULL", "FB_BANDIT", "FB_LABEL_ON_FORWARD", "FB_PROXY", "fifo_waits"]

# fields of an outcome row
OUT_LATENCY, OUT_NET, OUT_QUEUE, OUT_COMPUTE, OUT_COST, OUT_CORRECT, OUT_ANSWER, OUT_TIMEOUT, OUT_NODE, \
    OUT_REWARD, OUT_LATE = range(11)
OUT_FIELDS = ("latency_s", "network_s", "queueing_s", "compute_s", "cost", "correct", "answer", "timeout",
              "node", "reward", "late")
N_OUT = len(OUT_FIELDS)

FB_FULL, FB_BANDIT, FB_LABEL_ON_FORWARD, FB_PROXY = 0, 1, 2, 3
KIND_BANDWIDTH, KIND_OUTAGE, KIND_SLOWDOWN = 0, 1, 2  # compiled.FAULT_CODES


@njit(cache=True, error_model="numpy", inline="always")
def reward_of(par, correct, latency_s, cost):
    return par[P_W_ACC] * correct - par[P_W_LAT] * latency_s - par[P_W_COST] * cost


@njit(cache=True, error_model="numpy", inline="always")
def first_free(free, lo, hi):
    m = free[lo]
    for i in range(lo + 1, hi):
        if free[i] < m:
            m = free[i]
    return m


@njit(cache=True, error_model="numpy", inline="always")
def factor_at(fault_i, fault_f, kind, target, tau):
    """Product of the factors of the ``kind`` faults on ``target`` active at ``tau``."""
    f = 1.0
    for j in range(fault_i.shape[0]):
        if fault_i[j, FAULT_KIND] == kind and fault_i[j, FAULT_TARGET] == target \
                and fault_f[j, FAULT_START] <= tau and tau < fault_f[j, FAULT_END]:
            f *= fault_f[j, FAULT_FACTOR]
    return f


@njit(cache=True, error_model="numpy", inline="always")
def tx_place_(fault_i, fault_f, n_faults, link, tau, free, base_s, deadline):
    """A transmission of ``base_s`` seconds (at full bandwidth) arriving at ``tau`` on a transmitter of
    ``link`` that is free at ``free``.

    Returns ``(start, end, release)``: the (final) start and the end, and when the transmitter is
    free again. A (re)start at or after ``deadline`` is not made (cancellation; pass ``inf`` for
    none): then ``start`` and ``end`` are NaN and ``release`` is the time the job stopped using the
    transmitter (``free`` if it never started). Outages postpone a start inside them and restart a
    transmission they interrupt; the bandwidth factor at the (final) start applies.
    """
    start = tau if tau > free else free
    cut = free
    while True:
        if n_faults > 0:
            moved = True
            while moved:  # out of every outage covering the start
                moved = False
                for j in range(fault_i.shape[0]):
                    if fault_i[j, FAULT_KIND] == KIND_OUTAGE and fault_i[j, FAULT_TARGET] == link \
                            and fault_f[j, FAULT_START] <= start and start < fault_f[j, FAULT_END]:
                        start = fault_f[j, FAULT_END]
                        moved = True
        if start >= deadline:
            return np.nan, np.nan, cut
        if n_faults == 0:
            end = start + base_s
            return start, end, end
        end = start + base_s / factor_at(fault_i, fault_f, KIND_BANDWIDTH, link, start)
        nxt = np.inf
        for j in range(fault_i.shape[0]):  # the first outage that interrupts it
            if fault_i[j, FAULT_KIND] == KIND_OUTAGE and fault_i[j, FAULT_TARGET] == link:
                fs = fault_f[j, FAULT_START]
                if start < fs and fs < end and fs < nxt:
                    nxt = fs
        if nxt == np.inf:
            return start, end, end
        cut = nxt
        start = nxt


@njit(cache=True, error_model="numpy", inline="always")
def node_place_(fault_i, fault_f, n_faults, server_free, lo, hi, n, tau, base_s, deadline, commit):
    """Service of ``base_s`` seconds (at speed factor 1) for a job arriving at node ``n`` at ``tau``:
    the server of ``server_free[lo:hi]`` that frees first (lowest index on ties). Returns
    ``(start, end)``, NaN when the start would be at or after ``deadline`` (dropped). With
    ``commit`` the server's next-free time is updated."""
    j = lo
    for i in range(lo + 1, hi):
        if server_free[i] < server_free[j]:
            j = i
    start = tau if tau > server_free[j] else server_free[j]
    if start >= deadline:
        return np.nan, np.nan
    end = start + (base_s if n_faults == 0 else base_s / factor_at(fault_i, fault_f, KIND_SLOWDOWN, n, start))
    if commit:
        server_free[j] = end
    return start, end


@njit(cache=True, error_model="numpy", inline="always")
def outcome_row_(opt_i, opt_f, predc, par, o, k, s, t, resp, arr, start, end, outs, row):
    """Fill ``outs[row]`` with the outcome of request (origin ``o``, option ``k``, sample ``s``, decided
    at ``t``) whose response reaches the client at ``resp`` (inf if never); ``arr``/``start``/``end``
    are its node stage's times (inf where not reached). Returns the reward."""
    timeout_s = par[P_TIMEOUT_S]
    dl = t + timeout_s
    timeout = not resp <= dl
    latency = timeout_s if timeout else resp - t
    a_c = arr if arr < dl else dl
    s_c = start if start < dl else dl
    e_c = end if end < dl else dl
    queue = s_c - a_c
    compute = e_c - s_c
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
    outs[row, OUT_NODE] = opt_i[o, k, OPT_NODE]
    outs[row, OUT_LATE] = 1.0 if late else 0.0
    r = reward_of(par, outs[row, OUT_CORRECT], latency, cost)
    outs[row, OUT_REWARD] = r
    return r


@njit(cache=True, error_model="numpy", inline="always")
def estimate_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free, o, k, s, t,
              outs, row):
    """Counterfactual estimate of option ``k`` for request (``o``, ``s``) decided at ``t``: its stages
    walked from the current state as if nothing else arrived later (the state is not changed).
    Fills ``outs[row]``; returns the reward."""
    tau = t
    h = opt_i[o, k, OPT_NLINKS]
    for j in range(h):
        lk = opt_i[o, k, OPT_LINKS + j]
        _, e, _ = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 0],
                            opt_f[o, k, OPT_TX + 2 * j], np.inf)
        tau = e + node_f[lk, NODE_PROP_S]
    n = opt_i[o, k, OPT_NODE]
    arr = tau
    start, end = node_place_(fault_i, fault_f, node_i[n, NODE_SPEED_FAULTS], server_free, node_i[n, NODE_LO],
                             node_i[n, NODE_HI], n, arr, opt_f[o, k, OPT_COMPUTE_S], np.inf, False)
    tau = end
    for j in range(h - 1, -1, -1):
        lk = opt_i[o, k, OPT_LINKS + j]
        _, e, _ = tx_place_(fault_i, fault_f, node_i[lk, NODE_LINK_FAULTS], lk, tau, link_free[lk, 1],
                            opt_f[o, k, OPT_TX + 2 * j + 1], np.inf)
        tau = e + node_f[lk, NODE_PROP_S]
    return outcome_row_(opt_i, opt_f, predc, par, o, k, s, t, tau, arr, start, end, outs, row)


@njit(cache=True, error_model="numpy", inline="always")
def backlog_(node_i, server_free, n, t):
    """Seconds until a server of node ``n`` is free at ``t`` (0 if one is idle)."""
    w = first_free(server_free, node_i[n, NODE_LO], node_i[n, NODE_HI]) - t
    return w if w > 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def context_(node_i, opt_i, par, feat, server_free, x, o, s, t):
    """The origin's context: local confidence features, each option's node backlog at ``t``, bias."""
    k_n = opt_i.shape[1]
    i = 0
    if par[P_USE_CONF] > 0:
        col = opt_i[o, 0, OPT_COL]
        for j in range(3):
            x[j] = feat[col, s, j]
        i = 3
    if par[P_USE_LOAD] > 0:
        for k in range(k_n):
            x[i + k] = backlog_(node_i, server_free, opt_i[o, k, OPT_NODE], t)
        i += k_n
    x[i] = 1.0


@njit(cache=True, error_model="numpy", inline="always")
def feedback_(opt_i, par, cf, cfout, out, fb_rs, o, a):
    """What the deciding node observes about its choice ``a``: true outcome ``out`` (a row), the
    decision-time estimates ``cf`` / ``cfout`` of every option. Fills ``fb_rs`` (NaN = not
    observed); returns the observed reward of ``a`` (or NaN)."""
    k_n = fb_rs.shape[0]
    for k in range(k_n):
        fb_rs[k] = np.nan
    mode = int(par[P_FB_MODE])
    if mode == FB_FULL:
        for k in range(k_n):
            fb_rs[k] = cf[k]
        fb_rs[a] = out[OUT_REWARD]
    elif mode == FB_BANDIT:
        fb_rs[a] = out[OUT_REWARD]
    elif opt_i[o, a, OPT_LOCAL] == 1:
        pass  # served at the origin's own node: no label, nothing observed
    elif out[OUT_TIMEOUT] > 0.0:
        fb_rs[a] = out[OUT_REWARD]  # a timeout is a failure whatever the label
    elif mode == FB_LABEL_ON_FORWARD:
        fb_rs[a] = out[OUT_REWARD]
        for k in range(k_n):
            if opt_i[o, k, OPT_LOCAL] == 1:
                fb_rs[k] = cf[k]
    else:  # proxy: the remote answer stands in for the label
        ans = out[OUT_ANSWER]
        fb_rs[a] = reward_of(par, 0.0 if out[OUT_LATE] > 0.0 else 1.0, out[OUT_LATENCY], out[OUT_COST])
        for k in range(k_n):
            if opt_i[o, k, OPT_LOCAL] == 1:
                ok = cfout[k, OUT_TIMEOUT] == 0.0 and cfout[k, OUT_LATE] == 0.0 and cfout[k, OUT_ANSWER] == ans
                fb_rs[k] = reward_of(par, 1.0 if ok else 0.0, cfout[k, OUT_LATENCY], cfout[k, OUT_COST])
    return fb_rs[a]


@njit(cache=True, error_model="numpy")
def fifo_waits(arrivals, services, free):
    """Waiting times of jobs (sorted ``arrivals``, ``services``) at a FIFO queue with ``len(free)``
    servers whose next-free times ``free`` are updated in place (so chunks can be chained)."""
    n = arrivals.shape[0]
    waits = np.empty(n)
    hi = free.shape[0]
    no_i = np.zeros((0, 2), np.int64)
    no_f = np.zeros((0, 3))
    for i in range(n):
        start, _ = node_place_(no_i, no_f, 0, free, 0, hi, 0, arrivals[i], services[i], np.inf, True)
        waits[i] = start - arrivals[i]
    return waits
