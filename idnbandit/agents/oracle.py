"""Oracle: the clairvoyant comparator that sees every option's reward before choosing (regret only)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from ._feedback import FEEDBACK_MODES
from ._linalg import argmax_first
from ._linear_base import LinearAgent
from .registry import register

__all__ = ["Oracle"]


@njit(cache=True)
def oracle_select(state, x, u):
    """``x`` is the (n_actions,) counterfactual reward vector: its argmax, lowest index on ties."""
    return argmax_first(x)


@njit(cache=True)
def oracle_update(state, x, a, r, rewards):
    """The oracle learns nothing."""
    return None


@register("oracle", "clairvoyant: best option given every option's counterfactual reward (regret only)")
class Oracle(LinearAgent):
    """The clairvoyant oracle: picks the option with the highest realised reward.

    It exists to measure regret. Because it needs the counterfactual reward of every option, it does
    not follow the usual ``act(context)`` call: ``needs_counterfactuals = True`` tells a loop to
    pass the (n_actions,) reward vector instead of the context — to :meth:`act_oracle` on the
    step path, or as ``x`` to the ``select`` kernel on the fused path. Ties go to the lowest index;
    NaN entries never win. ``update`` accepts the usual feedback and learns nothing.

    Parameters
    ----------
    n_actions, n_features
        Sizes (``n_features`` is the length of the context ``update`` receives).
    seed
        Seed of the agent's generator (unused).

    Examples
    --------
    >>> oracle = Oracle(n_actions=3, n_features=2, seed=0)
    >>> print(oracle.act_oracle([0.1, 0.7, 0.7]))
    1
    """

    needs_counterfactuals = True
    _select_kernel = staticmethod(oracle_select)
    _update_kernel = staticmethod(oracle_update)
    propensity_kind = "deterministic"
    learns = False
    feedback_modes = FEEDBACK_MODES  # learns nothing, so every feedback mode suits it
    _n_matrices = 0

    def __init__(self, n_actions: int, n_features: int, seed=None):
        super().__init__(n_actions, n_features, seed)

    def _init_state(self) -> tuple:
        return (np.zeros(1, dtype=np.int64),)

    def _check_state(self, c) -> None:
        c.config(*c.arrays)

    def act(self, context) -> int:
        """Not available: raises :class:`ConfigError` (the oracle needs counterfactuals)."""
        raise ConfigError(
            "context: the oracle cannot act on a context; it needs the counterfactual reward of every option "
            "(needs_counterfactuals=True): call act_oracle(rewards) with the (n_actions,) reward vector"
        )

    def act_many(self, contexts) -> np.ndarray:
        """Not available: raises :class:`ConfigError` (see :meth:`act`)."""
        return np.array([self.act(contexts)])

    def act_oracle(self, rewards) -> int:
        """The best option for the (n_actions,) vector of every option's realised reward.

        Raises
        ------
        ConfigError
            If ``rewards`` has the wrong shape, contains inf, or is all NaN.
        """
        rs = np.asarray(rewards, dtype=np.float64)
        if rs.shape != (self.n_actions,):
            raise ConfigError(f"rewards: expected shape ({self.n_actions},), got {rs.shape}")
        if np.isinf(rs).any() or np.isnan(rs).all():
            raise ConfigError("rewards: must be finite (NaN marks an unknown option) with at least one known entry")
        return int(self._select_kernel(self._state, np.ascontiguousarray(rs), np.empty(0)))


