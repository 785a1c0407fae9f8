"""Fused numba step kernels of Offload-v0: one call serves the request, records it and prepares the next.

They work on an :class:`~idnbandit.sim.engine.Engine`'s packs (``CF, CI, SF, SI``, see its module
docstring), so the environment pays one cheap dispatch per step (single env) or per vector step
(all copies). When a request block or a background window runs out, a kernel stops and returns
False for that copy; Python refills (:meth:`Engine.advance`) and writes the observation with
:func:`write_obs`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..sim.kernels import N_OUT, OUT_CORRECT, OUT_COST, OUT_LATENCY, OUT_REWARD
from ..sim.packed import (
    M_ORIGIN,
    M_SAMPLE,
    SF_CF,
    SF_CF_OUT,
    SF_FB_RS,
    SF_X,
    SI_MISC,
    pack_advance_,
    pack_advance_context_,
    pack_commit_,
    pack_feedback_counterfactuals_,
    pack_view1,
    pack_view2,
)

__all__ = ["REC_FR", "REC_OUT", "record_size", "offload_step", "vec_offload_step", "write_obs"]

# info record of one step: observed reward, outcome row, observed rewards (K), counterfactuals (K), origin, sample
REC_FR, REC_OUT = 0, 1


def record_size(k: int) -> int:
    """Length of the float64 info record of a step with ``k`` options."""
    return 1 + N_OUT + 2 * k + 2


@njit(cache=True, inline="always")
def write_obs_(x, low, high, obs):
    for j in range(x.shape[0]):
        v = np.float32(x[j])
        obs[j] = low[j] if v < low[j] else (high[j] if v > high[j] else v)


@njit(cache=True)
def write_obs(x, low, high, obs):
    """``obs[:] = clip(float32(x), low, high)`` (the observation of a context)."""
    write_obs_(x, low, high, obs)


@njit(cache=True, error_model="numpy")
def offload_step(CF, CI, SF, SI, ob, rec, a):  # noqa: N803  (pack names)
    """Serve the pending request with option ``a``, fill the info record ``rec``, move to the next
    request and write its observation into ``ob[0]`` (``ob[1]``, ``ob[2]``: the bounds). Returns the
    request's (true) reward, or NaN when Python must refill first (the record is filled, ``obs`` is not)."""
    cf = pack_view1(SF, SI, SF_CF)
    mi = pack_view1(SI, SI, SI_MISC)
    k_n = cf.shape[0]
    b = REC_OUT + N_OUT
    for k in range(k_n):
        rec[b + k_n + k] = cf[k]
    rec[b + 2 * k_n] = mi[M_ORIGIN]
    rec[b + 2 * k_n + 1] = mi[M_SAMPLE]
    rec[REC_FR] = pack_commit_(CF, CI, SF, SI, a)
    cf_out = pack_view2(SF, SI, SF_CF_OUT)
    for j in range(N_OUT):
        rec[REC_OUT + j] = cf_out[k_n, j]
    fb = pack_view1(SF, SI, SF_FB_RS)
    for k in range(k_n):
        rec[b + k] = fb[k]
    if not pack_advance_(CF, CI, SF, SI):
        return np.nan
    write_obs_(pack_view1(SF, SI, SF_X), ob[1], ob[2], ob[0])
    return cf_out[k_n, OUT_REWARD]


@njit(cache=True, error_model="numpy")
def vec_offload_step(CF, CI, SF2, SI2, actions, active, obs, low, high, out):  # noqa: N803
    """Step every active copy ``i`` (its packs are the rows ``SF2[i]``, ``SI2[i]``) with ``actions[i]``.

    Copies compute only the counterfactuals their feedback mode reads (same feedback, less work).
    Writes ``out[i] = (reward, correct, latency_s, cost, observed reward, ready)``: ``ready`` is 0
    when Python must refill copy ``i`` before its observation ``obs[i]`` can be written.
    """
    for i in range(actions.shape[0]):
        if not active[i]:
            continue
        SF = SF2[i]  # noqa: N806
        SI = SI2[i]  # noqa: N806
        pack_feedback_counterfactuals_(CF, CI, SF, SI)
        fr = pack_commit_(CF, CI, SF, SI, actions[i])
        cf_out = pack_view2(SF, SI, SF_CF_OUT)
        k = cf_out.shape[0] - 1
        out[i, 0] = cf_out[k, OUT_REWARD]
        out[i, 1] = cf_out[k, OUT_CORRECT]
        out[i, 2] = cf_out[k, OUT_LATENCY]
        out[i, 3] = cf_out[k, OUT_COST]
        out[i, 4] = fr
        if pack_advance_context_(CF, CI, SF, SI):
            write_obs_(pack_view1(SF, SI, SF_X), low, high, obs[i])
            out[i, 5] = 1.0
        else:
            out[i, 5] = 0.0
