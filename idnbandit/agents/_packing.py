"""Packing a kernel state tuple into two buffers, for cheap step-path calls (see :mod:`.base`)."""

from __future__ import annotations

import numpy as np

__all__ = ["pack_state"]


def pack_state(state: tuple, header: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Copy a kernel state tuple into one float64 and one int64 buffer, for cheap step-path calls.

    Calling a compiled function from Python costs a conversion per array argument, so a kernel that
    unpacks a tuple of seven arrays pays seven conversions per call. Packing lets a step-path kernel
    take two buffers and rebuild the arrays inside (as views, no copies).

    Parameters
    ----------
    state
        Tuple of C-contiguous float64 / int64 numpy arrays (the kernel protocol's state).
    header
        Integers placed first in the int buffer (e.g. ``(n_features, n_actions)``).

    Returns
    -------
    fbuf : (n_float,) float64
        Every float64 array of ``state`` in order.
    ibuf : (len(header) + len(state) + n_int,) int64
        ``header``, then the offset of each state array in its own buffer (``fbuf`` or ``ibuf``), then
        every int64 array of ``state`` in order.
    views : tuple
        Arrays of the same shapes, dtypes and values as ``state``, each a view into ``fbuf`` or
        ``ibuf``; use it as the agent's state so both paths mutate the same memory.

    Raises
    ------
    TypeError
        If an entry of ``state`` is not a float64 or int64 array.
    """
    arrays = [np.asarray(a) for a in state]
    for i, a in enumerate(arrays):
        if a.dtype not in (np.float64, np.int64):
            raise TypeError(f"state[{i}]: dtype {a.dtype} cannot be packed; only float64 and int64")
    head = len(header) + len(arrays)
    n_f = sum(a.size for a in arrays if a.dtype == np.float64)
    n_i = sum(a.size for a in arrays if a.dtype == np.int64)
    fbuf = np.zeros(n_f, dtype=np.float64)
    ibuf = np.zeros(head + n_i, dtype=np.int64)
    ibuf[: len(header)] = header
    views, off_f, off_i = [], 0, head
    for i, a in enumerate(arrays):
        if a.dtype == np.float64:
            buf, off = fbuf, off_f
            off_f += a.size
        else:
            buf, off = ibuf, off_i
            off_i += a.size
        ibuf[len(header) + i] = off
        v = buf[off: off + a.size].reshape(a.shape)
        v[...] = a
        views.append(v)
    return fbuf, ibuf, tuple(views)
