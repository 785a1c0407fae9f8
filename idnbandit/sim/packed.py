"""Packs: many arrays in four flat buffers, so a numba kernel takes four arguments and rebuilds views.

The simulator keeps a compiled scenario and a run's state in ``packs = (CF, CI, SF, SI)``: the
compiled scenario (float64 / int64, read-only, shared by engine clones) and the mutable state
(float64 / int64). ``CI`` starts with the header of the compiled arrays and ``SI`` with that of the
state arrays (rows of ``offset, ndim, d0, d1, d2``; the row indices are constants of
:mod:`idnbandit.sim.state`). Calling a compiled function from Python costs a conversion per array
argument, and growing one array of a run only means re-packing the buffers; kernels rebuild views
with :func:`pack_view1` / :func:`pack_view2` / :func:`pack_view3` (a few instructions each).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# numba internals (idnbandit._kernel_cache.INTERNALS; numba's own extensions use them to build array
# structs): guarded so that `import idnbandit` works on any numba; on one without them the first
# simulation raises IdnBanditError naming the supported versions (_kernel_cache.require_tested_numba)
try:
    from numba.core.imputils import impl_ret_borrowed
    from numba.np.arrayobj import make_array, populate_array
except ImportError:  # pragma: no cover - numba outside the tested range
    impl_ret_borrowed = make_array = populate_array = None
try:
    from numba.core.cpu import CPUTargetOptions
except ImportError:  # pragma: no cover - numba outside the tested range
    CPUTargetOptions = None  # noqa: N816

__all__ = ["HDR_W", "NO_NRT", "WITH_NRT", "layout", "fill", "pack_view1", "pack_view2", "pack_view3"]

HDR_W = 5  # header row: offset, ndim, d0, d1, d2

# The event core and the fused drivers are compiled without numba's reference counting (NRT): they
# allocate nothing, and with NRT every array passed to an inlined helper would be incref'd and
# decref'd (atomic operations) at each of its many call sites per event. Agent kernels, which may
# allocate, are called through trampolines compiled WITH_NRT (numba compiles a callee with its
# caller's NRT flag unless the callee sets it). ``_nrt`` is a private numba option (numba uses it
# for its own hot helpers); without it everything is compiled as usual.
NO_NRT = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
WITH_NRT = {"_nrt": True} if hasattr(CPUTargetOptions, "_nrt") else {}


# ---------------------------------------------------------------------- layout
def layout(hdr: np.ndarray, row0: int, arrays: list[np.ndarray], start: int) -> int:
    """Write the header rows of ``arrays`` (packed from ``start`` on) into ``hdr[row0:]``; return the end."""
    off = start
    for i, a in enumerate(arrays):
        d = [*a.shape, 1, 1, 1][:3]
        hdr[(row0 + i) * HDR_W:(row0 + i + 1) * HDR_W] = [off, a.ndim, *d]
        off += a.size
    return off


def fill(buf: np.ndarray, hdr: np.ndarray, row0: int, arrays: list[np.ndarray]) -> list[np.ndarray]:
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
