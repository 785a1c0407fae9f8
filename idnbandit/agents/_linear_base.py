"""What the linear agents share: :class:`LinearAgent` (the lean per-step ``act`` / ``update`` path and
the feedback rule) and :func:`step_ok`, the step kernels' validation.

Feedback rule of every linear agent: ``update`` learns, for every option ``k`` whose reward is
observed (``rewards[k]`` not NaN; for the action taken, ``r`` stands in when ``rewards[a]`` is NaN),
one ridge step of option ``k``'s model on ``(x, reward_k)``. With full feedback that is every option,
with bandit feedback only the action taken, and with nothing observed (all NaN) nothing.
The per-arm ridge update kernels (Sherman–Morrison with periodic refactorisation) live in
:mod:`._linalg`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ._feedback import LEARNS_FROM_OWN_REWARD
from ._linalg import all_finite
from .base import Agent, pack_state

__all__ = ["LinearAgent", "prepare_step_kernels", "step_ok"]

_EMPTY = np.empty(0, dtype=np.float64)
_F8 = _EMPTY.dtype
_FLOATS = (float, np.float64)


@njit(cache=True)
def step_ok(ibuf, x, a, r):
    """The step kernels' validation: ``x`` has ``ibuf[0]`` finite entries, ``0 <= a < ibuf[1]``, ``r`` not ±inf."""
    return x.shape[0] == ibuf[0] and all_finite(x) and 0 <= a < ibuf[1] and not math.isinf(r)


def prepare_step_kernels(step_select, step_update) -> None:
    """Compile (or load from numba's cache) the packed step kernels for their one signature, once per
    process, and then forbid further compilation, so that a call with any other argument types
    (float32 or non-contiguous contexts, strings, ...) raises ``TypeError`` at once instead of
    compiling a new specialisation: :class:`LinearAgent` then falls back to the full validation
    (which converts, e.g., a float32 context to float64 exactly as before). This is what numba itself
    does for a function jitted with explicit signatures."""
    for disp, sig in ((step_select, _SELECT_SIG), (step_update, _UPDATE_SIG)):
        if disp not in _PREPARED:
            disp.compile(sig)
            disp.disable_compile()
            _PREPARED.add(disp)


_PREPARED: set = set()


_F1 = types.Array(types.float64, 1, "C")
_I1 = types.Array(types.int64, 1, "C")
_SELECT_SIG = (_F1, _I1, _F1, _F1)
_UPDATE_SIG = (_F1, _I1, _F1, types.int64, types.float64, _F1)


class LinearAgent(Agent):
    """Shared machinery of the linear agents: a lean per-step path.

    Agents that define packed step kernels (``_step_select(fbuf, ibuf, x, u)`` and
    ``_step_update(fbuf, ibuf, x, a, r, rewards)``) keep their state in two buffers
    (:func:`~idnbandit.agents.base.pack_state`; ``_state`` holds views into them, so the fused path's
    tuple kernels and the step path share memory). A step then costs one compiled call that converts
    four arrays, whatever the size of the state. The step kernels validate inside the same call
    (shape and finiteness of ``x``; for ``update`` also the action's range and a non-infinite reward)
    and return -1 / False without touching the state when something is wrong; argument types other
    than the compiled signature raise ``TypeError`` (compilation is disabled after the first
    compile). Either way the full validation of :class:`~idnbandit.agents.base.Agent` then runs and
    raises the typed error, or converts the input and calls the tuple kernel. Both paths run the same
    kernel code, so results are identical.

    Agents without step kernels take a lighter variant: the context is checked in Python and for
    finiteness by one small compiled call.
    """

    _step_select = None  # njit (fbuf, ibuf, x, u) -> action, or -1 if x needs full validation
    _step_update = None  # njit (fbuf, ibuf, x, a, r, rewards) -> True, or False (nothing done)
    _n_matrices = 2  # (d, d) matrices per option in the state (the state-size budget, base.Agent)
    feedback_modes = LEARNS_FROM_OWN_REWARD

    def _state_size(self) -> tuple[str, int]:
        k, d = self.n_actions, self.n_features
        if not self._n_matrices:  # rules without per-option statistics (static threshold, oracle)
            return "n_actions", k
        return "n_actions, n_features", (self._n_matrices * k + 2) * d * d + 8 * k * d

    def reset(self) -> Agent:
        self._shape = (self.n_features,)
        self._no_rewards = np.full(self.n_actions, np.nan)
        super().reset()
        self._pack()
        return self

    def _pack(self) -> None:
        """Move ``_state`` into packed buffers (agents with step kernels) and cache per-step constants."""
        self._n_u = self.n_uniforms
        self._fbuf = self._ibuf = None
        if self._step_select is not None and self._step_update is not None:
            self._fbuf, self._ibuf, self._state = pack_state(self._state, (self.n_features, self.n_actions))
            prepare_step_kernels(self._step_select, self._step_update)

    def _set_state_arrays(self, arrays) -> None:
        super()._set_state_arrays(arrays)
        self._pack()

    def __setstate__(self, state: dict) -> None:
        # copy.deepcopy and pickle copy each array on its own, so ``_state`` would no longer view the
        # buffers: repack from it (both hold the same values at copy time)
        self.__dict__.update(state)
        self._pack()

    def _is_fast(self, context) -> bool:
        return (type(context) is np.ndarray and context.dtype is _F8 and context.shape == self._shape
                and context.flags.c_contiguous)

    def act(self, context) -> int:
        n_u = self._n_u
        u = self._rng.random(n_u) if n_u else _EMPTY
        fbuf = self._fbuf
        if fbuf is not None:
            try:
                a = self._step_select(fbuf, self._ibuf, context, u)
                if a >= 0:
                    return a
            except TypeError:
                pass
        elif self._is_fast(context) and all_finite(context):
            return int(self._select_kernel(self._state, context, u))
        x = self._check_context(context)
        return int(self._select_kernel(self._state, x, u))

    def update(self, context, action, reward, *, rewards=None) -> Agent:
        fbuf = self._fbuf
        if fbuf is not None and rewards is None and type(action) is int:
            try:
                if self._step_update(fbuf, self._ibuf, context, action, reward, self._no_rewards):
                    return self  # kernels never write to ``rewards``
            except TypeError:
                pass
        if fbuf is None and self._is_fast(context) and all_finite(context):
            x = context  # kernels never write to the context
        else:
            x = self._check_context(context)
        a = self._check_action(action)
        if rewards is None and type(reward) in _FLOATS and (reward - reward == 0.0 or reward != reward):
            r, rs = float(reward), self._no_rewards
        else:
            r, rs = self._check_rewards(a, reward, rewards)
        self._update_kernel(self._state, x, a, r, rs)
        return self

