"""Packs: a compiled scenario and a simulator state in four flat buffers, for fused step kernels.

:class:`~idnbandit.sim.engine.Engine` keeps all its arrays in ``packs = (CF, CI, SF, SI)``: the
compiled scenario (float64 / int64, read-only, shared by ``Engine.clone``) and the mutable state
(queues, background-job window, scratch, the current block of requests, the pending request). ``CI``
starts with the header of the compiled arrays and ``SI`` with that of the state arrays (rows of
``offset, ndim, d0, d1, d2``; row indices ``CF_*``, ``CI_*``, ``SF_*``, ``SI_*``). A numba kernel
taking the four packs (few arguments: cheap to call from Python) rebuilds views with
:func:`pack_commit_` and :func:`pack_advance_`, so one call can serve a request and move on to the
next. See the Engine's module docstring for the step API built on them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from .compiled import OPT_LOCAL, P_FB_MODE, P_TIMEOUT_S
from .kernels import (
    FB_BANDIT,
    FB_FULL,
    bg_ready_,
    commit_,
    context_,
    option_outcome_,
    prepare_,
)

__all__ = ["BLOCK", "BG_WINDOW", "HDR_W", "pack_commit_", "pack_advance_", "pack_advance_context_",
           "pack_feedback_counterfactuals_", "pack_commit", "pack_advance", "pack_view1", "pack_view2",
           "pack_view3"]

BLOCK = 1024  # requests buffered at a time
BG_WINDOW = 1024  # initial background jobs buffered per node (grows when a window cannot reach the horizon)
HDR_W = 5  # header row: offset, ndim, d0, d1, d2
CF_NODE_F, CF_OPT_F, CF_FEAT, CF_FAULT_F, CF_PAR = range(5)  # header rows (in CI) of the CF arrays
CI_NODE_I, CI_OPT_I, CI_PREDC, CI_FAULT_I, CI_BG_NODES = range(5, 10)  # ... and of the CI arrays
# header rows (in SI) of the SF arrays, then of the SI arrays, in storage order (small, hot arrays first)
SF_MISC, SF_SERVER_FREE, SF_LINK_FREE, SF_BG_HORIZON, SF_X, SF_CF, SF_CF_OUT, SF_FB_RS, SF_TMP, SF_BLK_T, \
    SF_BG_ARR, SF_BG_SVC = range(12)
SI_MISC, SI_BG_I, SI_BLK_O, SI_BLK_S = range(12, 16)
M_T = 0  # SF misc: arrival time of the pending request
M_ORIGIN, M_SAMPLE, M_POS, M_LEN, M_APPLIED, M_DECISIONS = range(6)  # SI misc


# ---------------------------------------------------------------------- layout
def _layout(hdr: np.ndarray, row0: int, arrays: list[np.ndarray], start: int) -> int:
    """Write the header rows of ``arrays`` (packed from ``start`` on) into ``hdr[row0:]``; return the end."""
    off = start
    for i, a in enumerate(arrays):
        d = [*a.shape, 1, 1, 1][:3]
        hdr[(row0 + i) * HDR_W:(row0 + i + 1) * HDR_W] = [off, a.ndim, *d]
        off += a.size
    return off


def _fill(buf: np.ndarray, hdr: np.ndarray, row0: int, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Copy ``arrays`` into ``buf`` at their header rows; return the views."""
    views = []
    for i, a in enumerate(arrays):
        o = int(hdr[(row0 + i) * HDR_W])
        v = buf[o:o + a.size].reshape(a.shape)
        v[...] = a
        views.append(v)
    return views


def _view_intrinsic(ndim: int):
    """An intrinsic ``view(buf, offset, d0, d1, d2)``: the C-contiguous ``ndim``-d view of the 1-d ``buf``
    starting at ``offset`` (``reshape`` calls a C helper each time; this is a few instructions). The
    view is not reference-counted: use it only inside the kernel that received ``buf``."""

    @intrinsic
    def view(typingctx, buf, off, d0, d1, d2):
        ret = types.Array(buf.dtype, ndim, "C")

        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = make_array(aryty)(context, builder, args[0])
            dims = list(args[2:2 + ndim])
            strides, acc = [], ary.itemsize
            for d in reversed(dims):
                strides.insert(0, acc)
                acc = builder.mul(acc, d)
            res = make_array(ret)(context, builder)
            # no meminfo: the view is not reference-counted (views never outlive the kernel call that
            # holds the packs, and NRT atomics per view would cost more than the work on them)
            populate_array(res, data=builder.gep(ary.data, [args[1]]), shape=dims, strides=strides,
                           itemsize=ary.itemsize, meminfo=None)
            return impl_ret_borrowed(context, builder, ret, res._getvalue())

        return ret(buf, off, d0, d1, d2), codegen

    return view


_view1, _view2, _view3 = _view_intrinsic(1), _view_intrinsic(2), _view_intrinsic(3)


@njit(cache=True, inline="always")
def pack_view1(buf, hdr, i):
    """View of the 1-d array of header row ``i`` (``pack_view2``/``pack_view3``: 2-d/3-d)."""
    r = HDR_W * i
    return _view1(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, inline="always")
def pack_view2(buf, hdr, i):
    r = HDR_W * i
    return _view2(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, inline="always")
def pack_view3(buf, hdr, i):
    r = HDR_W * i
    return _view3(buf, hdr[r], hdr[r + 2], hdr[r + 3], hdr[r + 4])


@njit(cache=True, error_model="numpy")
def pack_commit_(CF, CI, SF, SI, a):  # noqa: N803  (pack names)
    """Serve the pending request with option ``a`` (see :meth:`Engine.apply`); returns the observed reward."""
    mi = pack_view1(SI, SI, SI_MISC)
    r = commit_(pack_view2(CF, CI, CF_NODE_F), pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), pack_view3(CF, CI, CF_OPT_F),
                pack_view3(CI, CI, CI_PREDC), pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), pack_view1(CF, CI, CF_PAR),
                pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_LINK_FREE), pack_view2(SF, SI, SF_BG_ARR),
                pack_view2(SF, SI, SF_BG_SVC), pack_view2(SI, SI, SI_BG_I), pack_view1(SF, SI, SF_CF), pack_view2(SF, SI, SF_CF_OUT),
                pack_view1(SF, SI, SF_FB_RS), pack_view1(SF, SI, SF_TMP), mi[M_ORIGIN], a, mi[M_SAMPLE], pack_view1(SF, SI, SF_MISC)[M_T])
    mi[M_APPLIED] = 1
    mi[M_DECISIONS] += 1
    return r


@njit(cache=True, error_model="numpy")
def _advance_(CF, CI, SF, SI, counterfactuals):  # noqa: N803
    mi = pack_view1(SI, SI, SI_MISC)
    p = mi[M_POS]
    if p >= mi[M_LEN]:
        return False
    t = pack_view1(SF, SI, SF_BLK_T)[p]
    bg_nodes = pack_view1(CI, CI, CI_BG_NODES)
    if not bg_ready_(bg_nodes, pack_view1(SF, SI, SF_BG_HORIZON), t + pack_view1(CF, CI, CF_PAR)[P_TIMEOUT_S]):
        return False
    o = pack_view1(SI, SI, SI_BLK_O)[p]
    s = pack_view1(SI, SI, SI_BLK_S)[p]
    node_i, opt_i, par = pack_view2(CI, CI, CI_NODE_I), pack_view3(CI, CI, CI_OPT_I), pack_view1(CF, CI, CF_PAR)
    server_free, bg_arr, bg_svc = pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_BG_ARR), \
        pack_view2(SF, SI, SF_BG_SVC)
    bg_i, x, feat = pack_view2(SI, SI, SI_BG_I), pack_view1(SF, SI, SF_X), pack_view3(CF, CI, CF_FEAT)
    if counterfactuals:
        prepare_(pack_view2(CF, CI, CF_NODE_F), node_i, opt_i, pack_view3(CF, CI, CF_OPT_F), pack_view3(CI, CI, CI_PREDC),
                 pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), par, feat, bg_nodes, server_free,
                 pack_view2(SF, SI, SF_LINK_FREE), bg_arr, bg_svc, bg_i, x, pack_view1(SF, SI, SF_CF),
                 pack_view2(SF, SI, SF_CF_OUT), pack_view1(SF, SI, SF_TMP), o, s, t)
    else:
        context_(node_i, opt_i, par, feat, bg_nodes, server_free, bg_arr, bg_svc, bg_i, x, o, s, t)
    mi[M_POS] = p + 1
    mi[M_ORIGIN] = o
    mi[M_SAMPLE] = s
    mi[M_APPLIED] = 0
    pack_view1(SF, SI, SF_MISC)[M_T] = t
    return True


@njit(cache=True, error_model="numpy")
def pack_advance_(CF, CI, SF, SI):  # noqa: N803
    """Move to the next request of the block, advance the background load, fill the context and the
    counterfactuals; False (nothing done) when the block is used up or the background window does
    not reach its horizon (Python refills, see :meth:`Engine.advance`)."""
    return _advance_(CF, CI, SF, SI, True)


@njit(cache=True, error_model="numpy")
def pack_advance_context_(CF, CI, SF, SI):  # noqa: N803
    """:func:`pack_advance_` without the counterfactuals (see :func:`pack_feedback_counterfactuals_`)."""
    return _advance_(CF, CI, SF, SI, False)


@njit(cache=True, error_model="numpy")
def pack_feedback_counterfactuals_(CF, CI, SF, SI):  # noqa: N803
    """Counterfactuals the feedback mode reads (all options for ``full``, the local ones for
    ``label_on_forward``/``proxy``, none for ``bandit``), from the current queues: after
    :func:`pack_advance_context_`, this makes :func:`pack_commit_` give the same feedback as after
    :func:`pack_advance_`."""
    par = pack_view1(CF, CI, CF_PAR)
    mode = int(par[P_FB_MODE])
    if mode == FB_BANDIT:
        return
    mi = pack_view1(SI, SI, SI_MISC)
    o, s, t = mi[M_ORIGIN], mi[M_SAMPLE], pack_view1(SF, SI, SF_MISC)[M_T]
    opt_i, cf = pack_view3(CI, CI, CI_OPT_I), pack_view1(SF, SI, SF_CF)
    for k in range(opt_i.shape[1]):
        if mode == FB_FULL or opt_i[o, k, OPT_LOCAL] == 1:
            cf[k] = option_outcome_(pack_view2(CF, CI, CF_NODE_F), pack_view2(CI, CI, CI_NODE_I), opt_i,
                                    pack_view3(CF, CI, CF_OPT_F), pack_view3(CI, CI, CI_PREDC),
                                    pack_view2(CI, CI, CI_FAULT_I), pack_view2(CF, CI, CF_FAULT_F), par,
                                    pack_view1(SF, SI, SF_SERVER_FREE), pack_view2(SF, SI, SF_LINK_FREE),
                                    pack_view2(SF, SI, SF_BG_ARR), pack_view2(SF, SI, SF_BG_SVC),
                                    pack_view2(SI, SI, SI_BG_I), o, k, s, t, False, pack_view1(SF, SI, SF_TMP),
                                    pack_view2(SF, SI, SF_CF_OUT), k)


@njit(cache=True, error_model="numpy")
def pack_commit(CF, CI, SF, SI, a):  # noqa: N803
    """:func:`pack_commit_` callable from Python."""
    return pack_commit_(CF, CI, SF, SI, a)


@njit(cache=True, error_model="numpy")
def pack_advance(CF, CI, SF, SI):  # noqa: N803
    """:func:`pack_advance_` callable from Python."""
    return pack_advance_(CF, CI, SF, SI)
