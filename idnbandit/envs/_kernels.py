"""Fused numba step kernels of Offload-v0: one call sends the request and runs the simulator to the next one.

A step (:func:`offload_step`) sends the pending request with the chosen option (the core's
:func:`~idnbandit.sim.core.decide_`), then processes every event, in exact time order, up to the
next request arrival (:func:`~idnbandit.sim.core.run_to_decision_`), writes that request's clipped
float32 observation and sums up the requests finalised meanwhile (their per-request records, rows
``rec[:M_REC_N]`` of the state, see :mod:`idnbandit.sim.state`) into a summary row (``RES_*``
columns). On the episode's last step the pending arrival is dropped after its observation is written
and the run drains: every request in flight finishes (no new arrivals), so its reward lands in that
step. When the core needs Python (a new block of requests or background jobs, more room), the kernel
returns the core's code; the caller serves it (``Driver.serve``) and calls :func:`offload_resume`.

:func:`vec_offload_step` does the same for every copy of a vector env in one call. Each copy's state
stays in its own engine's packs (they are re-allocated when they grow); the kernel finds them through
a table of addresses and sizes (:func:`pack_address`), so nothing is copied or moved. With many
copies a vector step is bound by memory (every copy's state is touched once per step and no longer
in cache), so the kernel prefetches the next copies' state while stepping one: the header of copy
``i + 2`` and the first cache line of every state array of copy ``i + 1`` (1024 copies on
``idn-4tier``, alternating A/B rounds: 0.92x the time per copy-step on a quiet machine, 0.72-0.90x
with other jobs running; prefetching ring slots and queue positions as well did not help).
"""

from __future__ import annotations

import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ..sim.core import C_DECIDE, C_DONE, PEND_NONE, decide_, run_to_decision_
from ..sim.packed import HDR_W, NO_NRT, pack_view1, pack_view2, pack_view3
from ..sim.stages import OUT_CORRECT, OUT_COST, OUT_LATENCY, OUT_REWARD
from ..sim.state import (
    F_REC,
    F_RQ_X,
    I_MISC,
    I_RQ_I,
    M_G_NEXT,
    M_LIMIT,
    M_PEND_KIND,
    M_PEND_SLOT,
    M_REC_N,
    N_STATE,
    R_FEEDBACK_R,
    R_OUT,
    RQ_O,
    RQ_S,
)

__all__ = ["RES_REWARD", "RES_N", "RES_REQUEST", "RES_ORIGIN", "RES_SAMPLE", "RES_CORRECT", "RES_LATENCY_S",
           "RES_COST", "RES_FEEDBACK_N", "RES_FEEDBACK_SUM", "RES_CODE", "N_RES", "ROWS_KEPT", "out_buffer",
           "offload_step", "offload_resume",
           "vec_offload_step", "summarise_rows", "write_obs", "drop_pending_", "pack_address"]

# summary row of one step: summed true reward and count of the requests finalised in the step, the
# decided request (number, origin, sample), then sums over the finalised requests: correct, latency (s),
# cost, number with an observed feedback reward and their summed observed reward
(RES_REWARD, RES_N, RES_REQUEST, RES_ORIGIN, RES_SAMPLE, RES_CORRECT, RES_LATENCY_S, RES_COST, RES_FEEDBACK_N,
 RES_FEEDBACK_SUM, RES_CODE) = range(11)
N_RES = 11
ROWS_KEPT = 7  # record rows offload_step copies after the summary row (more: Python copies them)

# like the fused simulator loop (idnbandit.sim.loop), without numba's reference counting (NO_NRT): the
# core allocates nothing, and the views below are not reference-counted


def _at_intrinsic(dtype):
    """An intrinsic ``at(address, n)``: the 1-d C-contiguous array of ``n`` ``dtype`` items at ``address``
    (not reference-counted: the caller keeps the memory alive while the kernel runs)."""

    @intrinsic
    def at(typingctx, addr, n):
        ret = types.Array(dtype, 1, "C")

        def codegen(context, builder, sig, args):
            llty = context.get_data_type(dtype)
            size = context.get_constant(types.intp, context.get_abi_sizeof(llty))
            res = make_array(ret)(context, builder)
            populate_array(res, data=builder.inttoptr(args[0], llty.as_pointer()), shape=[args[1]], strides=[size],
                           itemsize=size, meminfo=None)
            return impl_ret_borrowed(context, builder, ret, res._getvalue())

        return ret(addr, n), codegen

    return at


_f64_at, _i64_at = _at_intrinsic(types.float64), _at_intrinsic(types.int64)


@intrinsic
def _prefetch(typingctx, addr):
    """Hint the CPU to load the cache line at byte ``address`` (``llvm.prefetch``: read, high locality)."""

    def codegen(context, builder, sig, args):
        i8p = llvm_ir.IntType(8).as_pointer()
        i32 = llvm_ir.IntType(32)
        name = "llvm.prefetch.p0" if str(i8p) == "ptr" else "llvm.prefetch.p0i8"  # opaque / typed pointers
        fn = cgutils.get_or_insert_function(builder.module, llvm_ir.FunctionType(llvm_ir.VoidType(),
                                                                                 [i8p, i32, i32, i32]), name)
        builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(addr), codegen


_N_FLOAT_ARRAYS = I_MISC  # the state's float arrays come first in the header (sim/state.py)
_HDR_BYTES = N_STATE * HDR_W * 8


@njit(cache=True, inline="always")
def _prefetch_header_(addr, i):
    """Prefetch the header of copy ``i``'s int pack (the offsets every view of the step reads)."""
    for b in range(0, _HDR_BYTES, 64):
        _prefetch(addr[i, 2] + b)


@njit(cache=True, inline="always")
def _prefetch_arrays_(addr, i):
    """Prefetch the first cache line of every state array of copy ``i`` (its header must be cached)."""
    hdr = _i64_at(addr[i, 2], N_STATE * HDR_W)
    for r in range(N_STATE):
        base = addr[i, 0] if r < _N_FLOAT_ARRAYS else addr[i, 2]
        _prefetch(base + 8 * hdr[r * HDR_W])


def pack_address(sf: np.ndarray, si: np.ndarray, row: np.ndarray) -> None:
    """Write ``(address, size)`` of the state packs ``sf`` (float64) and ``si`` (int64) into ``row`` (4,)."""
    row[0], row[1] = sf.ctypes.data, sf.size
    row[2], row[3] = si.ctypes.data, si.size


@njit(cache=True, inline="always")
def write_obs_(x, low, high, obs):
    for j in range(x.shape[0]):
        v = np.float32(x[j])
        obs[j] = low[j] if v < low[j] else (high[j] if v > high[j] else v)


@njit(cache=True)
def write_obs(x, low, high, obs):
    """``obs[:] = clip(float32(x), low, high)`` (the observation of a context)."""
    write_obs_(x, low, high, obs)


@njit(cache=True, error_model="numpy", inline="always")
def summarise_(rec, n, res):
    """Sum the first ``n`` record rows into ``res`` (reward, count, correct, latency, cost, feedback), in row order."""
    r = 0.0
    correct = 0.0
    lat = 0.0
    cost = 0.0
    fb_n = 0.0
    fb = 0.0
    for i in range(n):
        r += rec[i, R_OUT + OUT_REWARD]
        correct += rec[i, R_OUT + OUT_CORRECT]
        lat += rec[i, R_OUT + OUT_LATENCY]
        cost += rec[i, R_OUT + OUT_COST]
        f = rec[i, R_FEEDBACK_R]
        if f == f:
            fb_n += 1.0
            fb += f
    res[RES_REWARD] = r
    res[RES_N] = n
    res[RES_CORRECT] = correct
    res[RES_LATENCY_S] = lat
    res[RES_COST] = cost
    res[RES_FEEDBACK_N] = fb_n
    res[RES_FEEDBACK_SUM] = fb


@njit(cache=True, error_model="numpy")
def summarise_rows(rec, res):
    """:func:`summarise_` of every row of ``rec`` (the Python side's rows, same sums in the same order)."""
    summarise_(rec, rec.shape[0], res)


@njit(cache=True, error_model="numpy", inline="always")
def _begin_(SF, SI, res):  # noqa: N803
    """Start a step: the records of the previous step are consumed; note the pending request."""
    m = pack_view1(SI, SI, I_MISC)
    m[M_REC_N] = 0
    slot = m[M_PEND_SLOT]
    rq_i = pack_view2(SI, SI, I_RQ_I)
    res[RES_REQUEST] = m[M_G_NEXT]
    res[RES_ORIGIN] = rq_i[slot, RQ_O]
    res[RES_SAMPLE] = rq_i[slot, RQ_S]


@njit(cache=True, error_model="numpy", inline="always")
def drop_pending_(SI):  # noqa: N803
    """Drop the pending arrival and stop deciding: the run then drains (every request in flight finishes)."""
    m = pack_view1(SI, SI, I_MISC)
    m[M_PEND_KIND] = PEND_NONE
    m[M_LIMIT] = m[M_G_NEXT]


@njit(cache=True, error_model="numpy", **NO_NRT)
def offload_resume(CF, CI, SF, SI, obs, low, high, res, last):  # noqa: N803  (pack names)
    """Run to the next arrival and write its observation into ``obs``; with ``last``, then drain.

    Returns ``C_DECIDE`` (a request is pending), ``C_DONE`` (drained, ``last``) with the summary
    of the step's records in ``res``, or another core code that Python must serve first (then call
    again with the same arguments; ``res`` is not written).
    """
    m = pack_view1(SI, SI, I_MISC)
    while True:
        code = run_to_decision_(CF, CI, SF, SI)
        if code == C_DECIDE:
            write_obs_(pack_view3(SF, SI, F_RQ_X)[m[M_PEND_SLOT], 0], low, high, obs)
            if not last:
                break
            drop_pending_(SI)
        elif code == C_DONE:
            break
        else:
            return code
    summarise_(pack_view2(SF, SI, F_REC), m[M_REC_N], res)
    return code


def out_buffer(row_width: int) -> np.ndarray:
    """The output buffer of :func:`offload_step`: the summary row, then ``ROWS_KEPT`` record rows."""
    return np.zeros((1 + ROWS_KEPT, max(N_RES, row_width)))


@njit(cache=True, error_model="numpy", **NO_NRT)
def offload_step(CF, CI, SF, SI, ob, out, a, last):  # noqa: N803
    """Send the pending request with option ``a`` and run to the next one (:func:`offload_resume`);
    ``ob[0]`` receives the observation, ``ob[1]``/``ob[2]`` are its bounds.

    Returns the step's reward, its summary in ``out[0]`` (``RES_*``) and its record rows in
    ``out[1:1 + n]``; or NaN when Python must act: serve the core code ``out[0, RES_CODE]`` (then
    :func:`offload_resume`), or, when that code is ``C_DECIDE`` / ``C_DONE``, copy the step's
    ``n > ROWS_KEPT`` rows itself (``rec[:n]``).
    """
    res = out[0]
    _begin_(SF, SI, res)
    decide_(CF, CI, SF, SI, a)
    code = offload_resume(CF, CI, SF, SI, ob[0], ob[1], ob[2], res, last)
    res[RES_CODE] = code
    if code != C_DECIDE and code != C_DONE:
        return np.nan
    n = pack_view1(SI, SI, I_MISC)[M_REC_N]
    if n > out.shape[0] - 1:
        return np.nan
    rec = pack_view2(SF, SI, F_REC)
    for i in range(n):
        for j in range(rec.shape[1]):
            out[1 + i, j] = rec[i, j]
    return res[RES_REWARD]


@njit(cache=True, error_model="numpy", **NO_NRT)
def vec_offload_step(CF, CI, addr, actions, active, last, obs, low, high, codes, res):  # noqa: N803
    """:func:`offload_step` for every active copy ``i`` (state packs at ``addr[i]``: SF address, size, SI
    address, size) with ``actions[i]`` and ``last[i]``; ``codes[i]`` receives the returned code."""
    n = actions.shape[0]
    for i in range(n):
        # memory, not arithmetic, bounds a vector step of many copies: load the next copies' state early
        if i + 2 < n:
            _prefetch_header_(addr, i + 2)
        if i + 1 < n:
            _prefetch_arrays_(addr, i + 1)
        if not active[i]:
            continue
        SF = _f64_at(addr[i, 0], addr[i, 1])  # noqa: N806
        SI = _i64_at(addr[i, 2], addr[i, 3])  # noqa: N806
        _begin_(SF, SI, res[i])
        decide_(CF, CI, SF, SI, actions[i])
        codes[i] = offload_resume(CF, CI, SF, SI, obs[i], low, high, res[i], last[i])
