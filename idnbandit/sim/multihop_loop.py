"""The request loops of multi-hop delivery: one fused numba loop, one Python loop, same kernels.

Per request: advance background load, compute the counterfactuals of the origin's options, walk
the stops (context at each decision stop, ``select`` of that stop's learner, serve or forward),
commit the option the route ended in, record the true outcome, then push one feedback entry per
decision (tagged with its learner) into the delay ring and deliver what is due, in decision order.
See :mod:`idnbandit.sim.multihop` for the semantics.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from .compiled import P_TIMEOUT_S
from .kernels import bg_ready, bg_ready_, option_outcome_, prepare
from .metrics import record_, ring_due, ring_pop_, ring_push_
from .multihop_kernels import (
    DEC_AGENT,
    DEC_VALID,
    MH_A,
    ST_DEC,
    ST_M,
    ST_OPT0,
    advance_bg_,
    stop_context,
    stop_context_,
    stop_feedback,
    stop_feedback_,
)
from .run import _NO_NRT, finish_, select_, update_

__all__ = ["run_multihop_", "flush_multihop_", "python_chunk", "python_flush"]


@njit(cache=True, error_model="numpy", **_NO_NRT)
def run_multihop_(select, update, states, c, st, sc, met, ring, ragent, work, arrs, req_t, req_o, req_s, ubuf, ucur,
                  i0, i1, g0):
    """Requests ``i0 .. i1-1`` of a chunk; returns where it stopped (``i1`` when done, earlier when
    background jobs or uniforms must be topped up, ``-1 - i`` when ``select`` returned an invalid action).

    ``states[dec_i[d, DEC_AGENT]]`` is the kernel state of decision node ``d``'s learner;
    ``ubuf[j, ucur[j]]`` the next uniforms of learner ``j``.
    """
    node_f, node_i, opt_i, opt_f, predc = c.node_f, c.node_i, c.opt_i, c.opt_f, c.predc
    fault_i, fault_f, par, feat, bg_nodes = c.fault_i, c.fault_f, c.par, c.feat, c.bg_nodes
    server_free, link_free, bg_arr, bg_svc, bg_i, bg_horizon = st
    x0, cf, cf_out, out, fb_rs, tmp = sc
    sums, opt_count, tier_count, cf_sum, hist, curve_t, curve_reward, curve_oracle, curve_cf, ptr = met
    rx, ra, rr, rrs, ridx, rt, meta = ring
    xs, decs, vals, rs, counts = work
    stop_i, dec_i, mh_i = arrs
    cap = ra.shape[0]
    k_n = opt_i.shape[1]
    a_n = mh_i[MH_A]
    timeout_s = par[P_TIMEOUT_S]
    n_rows = ubuf.shape[1]
    max_dec = xs.shape[0]
    use_u = ubuf.shape[2] > 0
    for i in range(i0, i1):
        t = req_t[i]
        if not bg_ready_(bg_nodes, bg_horizon, t + timeout_s):
            return i
        if use_u:
            for j in range(ucur.shape[0]):
                if ucur[j] + max_dec > n_rows:
                    return i
        o = req_o[i]
        s = req_s[i]
        g = g0 + i
        advance_bg_(node_i, bg_nodes, server_free, bg_arr, bg_svc, bg_i, t)
        # one call site for the K counterfactuals and the committed route (row K): halves compile time
        nd = 0
        kf = 0
        for j in range(k_n + 1):
            kk = j
            if j == k_n:
                h = 0
                while True:  # walk the stops: decide at each decision stop until one serves
                    d = stop_i[o, h, ST_DEC]
                    if d < 0:
                        kf = stop_i[o, h, ST_OPT0]
                        break
                    stop_context_(node_f, node_i, opt_i, opt_f, fault_i, fault_f, par, feat, server_free, link_free,
                                  bg_arr, bg_svc, bg_i, tmp, stop_i, dec_i, mh_i, xs[nd], o, s, t, h)
                    ag = dec_i[d, DEC_AGENT]
                    a = select_(select, states[ag], xs[nd], ubuf[ag, ucur[ag] if use_u else 0])
                    ucur[ag] += 1
                    if a < 0 or a >= a_n:
                        return -1 - i
                    valid = dec_i[d, DEC_VALID]
                    e = a if a < valid else valid - 1
                    decs[nd, 0] = h
                    decs[nd, 1] = d
                    decs[nd, 2] = a
                    decs[nd, 3] = e
                    nd += 1
                    counts[d, 0] += 1
                    if e < stop_i[o, h, ST_M]:
                        kf = stop_i[o, h, ST_OPT0] + e
                        break
                    counts[d, 1] += 1
                    h += 1
                kk = kf
            v = option_outcome_(node_f, node_i, opt_i, opt_f, predc, fault_i, fault_f, par, server_free, link_free,
                                bg_arr, bg_svc, bg_i, o, kk, s, t, j == k_n, tmp, cf_out, j)
            if j < k_n:
                cf[j] = v
        record_(node_i, opt_i, sums, opt_count, tier_count, cf_sum, hist, curve_t, curve_reward, curve_oracle,
                curve_cf, ptr, cf, cf_out, o, kf, g)
        for j in range(nd):
            r = stop_feedback_(par, cf, cf_out, stop_i, dec_i, vals, rs, o, decs[j, 0], decs[j, 2], decs[j, 3])
            if meta[1] == cap:
                q = ring_pop_(meta, cap)
                meta[2] += 1
                update_(update, states[ragent[q]], rx[q], ra[q], rr[q], rrs[q])
            ragent[(meta[0] + meta[1]) % cap] = dec_i[decs[j, 1], DEC_AGENT]
            ring_push_(rx, ra, rr, rrs, ridx, rt, meta, xs[j], decs[j, 2], r, rs, g, t)
        while ring_due(par, ridx, rt, meta, g, t):
            q = ring_pop_(meta, cap)
            update_(update, states[ragent[q]], rx[q], ra[q], rr[q], rrs[q])
    return i1


@njit(cache=True, error_model="numpy", **_NO_NRT)
def flush_multihop_(update, states, ring, ragent):
    """Deliver every pending feedback entry (end of the run)."""
    rx, ra, rr, rrs, ridx, rt, meta = ring
    while meta[1] > 0:
        q = ring_pop_(meta, ra.shape[0])
        update_(update, states[ragent[q]], rx[q], ra[q], rr[q], rrs[q])


def _deliver(agents, ring, ragent, q: int) -> None:
    agents[int(ragent[q])].update(ring.x[q].copy(), int(ring.a[q]), float(ring.r[q]), rewards=ring.rs[q].copy())


def python_chunk(agents, c, st, sc, met, ring, ragent, work, arrs, bg, req_t, req_o, req_s, n, g0, span_cap):
    """The Python loop over ``n`` requests of a chunk (agents without kernels); returns the state."""
    xs, decs, vals, rs, counts = work
    stop_i, dec_i, mh_i = arrs
    cap = ring.a.shape[0]
    a_n = int(mh_i[MH_A])
    for i in range(n):
        t = float(req_t[i])
        if not bg_ready(c, st, t):
            st = bg.top_up(st, t + c.timeout_s + min(float(req_t[n - 1]) - t, span_cap))
        o, s, g = int(req_o[i]), int(req_s[i]), g0 + i
        prepare(c, st, sc, o, s, t)  # background load to t, counterfactuals (its context is unused)
        nd, h = 0, 0
        while True:
            d = int(stop_i[o, h, ST_DEC])
            if d < 0:
                kf = int(stop_i[o, h, ST_OPT0])
                break
            stop_context(c, st, sc, stop_i, dec_i, mh_i, xs[nd], o, s, t, h)
            agent = agents[int(dec_i[d, DEC_AGENT])]
            a = agent.act(xs[nd].copy())
            if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < a_n:
                raise ConfigError(f"agent {type(agent).__name__} chose {a!r} at request {g}; actions are [0, {a_n})")
            valid = int(dec_i[d, DEC_VALID])
            e = int(a) if a < valid else valid - 1
            decs[nd] = (h, d, int(a), e)
            nd += 1
            counts[d, 0] += 1
            if e < stop_i[o, h, ST_M]:
                kf = int(stop_i[o, h, ST_OPT0]) + e
                break
            counts[d, 1] += 1
            h += 1
        finish_(c, st, sc, met, o, kf, s, t, g)
        for j in range(nd):
            r = stop_feedback(c, sc, stop_i, dec_i, vals, rs, o, int(decs[j, 0]), int(decs[j, 2]), int(decs[j, 3]))
            if ring.meta[1] == cap:
                q = ring_pop_.py_func(ring.meta, cap)
                ring.meta[2] += 1
                _deliver(agents, ring, ragent, q)
            ragent[(ring.meta[0] + ring.meta[1]) % cap] = dec_i[decs[j, 1], DEC_AGENT]
            ring_push_.py_func(*ring, xs[j], int(decs[j, 2]), float(r), rs, g, t)
        while ring_due.py_func(c.par, ring.idx, ring.t, ring.meta, g, t):
            _deliver(agents, ring, ragent, ring_pop_.py_func(ring.meta, cap))
    return st


def python_flush(agents, ring, ragent) -> None:
    """Deliver every pending feedback entry (end of a Python-loop run)."""
    while ring.meta[1] > 0:
        _deliver(agents, ring, ragent, ring_pop_.py_func(ring.meta, ring.a.shape[0]))
