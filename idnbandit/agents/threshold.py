"""StaticThreshold: serve locally iff the local model is confident enough, else forward."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from ._feedback import FEEDBACK_MODES
from ._linear_base import LinearAgent
from ._params import check_real
from .registry import register

__all__ = ["StaticThreshold"]


@njit(cache=True)
def threshold_select(state, x, u):
    """``local`` if ``x[confidence_index] >= theta`` else ``forward`` (``u`` unused)."""
    fcfg, icfg = state
    if x[icfg[0]] >= fcfg[0]:
        return icfg[1]
    return icfg[2]


@njit(cache=True)
def threshold_update(state, x, a, r, rewards):
    """A static rule learns nothing."""
    return None


@register("static-threshold", "serve locally iff confidence >= theta, else forward (static rule)")
class StaticThreshold(LinearAgent):
    """Serve locally iff ``x[confidence_index] >= theta``; otherwise forward.

    The classic hierarchical-inference rule with a fixed threshold θ on the local model's maximum
    class probability (by convention ``x[0]``, see :mod:`idnbandit.agents.base`). It learns nothing;
    it is the comparator class of the HI learners (HIL-F, Hedge-HI), whose regret is measured
    against the best such θ in hindsight.

    Parameters
    ----------
    n_actions, n_features
        Sizes (``n_actions >= 1``; with one option both actions are that option).
    theta
        The threshold (a finite number; confidences live in [0, 1]).
    confidence_index
        Where the confidence sits in the context (negative counts from the end).
    local_action
        The option served locally (negative counts from the end).
    forward_action
        The option forwarded to; ``-1`` is the last (farthest) option.
    seed
        Seed of the agent's generator (unused).

    Examples
    --------
    >>> agent = StaticThreshold(n_actions=3, n_features=2, theta=0.7, seed=0)
    >>> print(agent.act(np.array([0.9, 1.0])), agent.act(np.array([0.4, 1.0])))
    0 2

    References
    ----------
    V. N. Moothedath, J. P. Champati, J. Gross, "Getting the Best Out of Both Worlds: Algorithms for
    Hierarchical Inference at the Edge", IEEE TMLCN 2024 (the threshold policy class, §III).
    """

    _select_kernel = staticmethod(threshold_select)
    _update_kernel = staticmethod(threshold_update)
    propensity_kind = "deterministic"
    learns = False
    feedback_modes = FEEDBACK_MODES  # learns nothing, so every feedback mode suits it
    _n_matrices = 0

    def __init__(self, n_actions: int, n_features: int, theta: float = 0.5, confidence_index: int = 0,
                 local_action: int = 0, forward_action: int = -1, seed=None):
        self.theta = theta
        self.confidence_index = confidence_index
        self.local_action = local_action
        self.forward_action = forward_action
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("theta", self.theta)
        for pname, v, n in (("confidence_index", self.confidence_index, self.n_features),
                            ("local_action", self.local_action, self.n_actions),
                            ("forward_action", self.forward_action, self.n_actions)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -n <= v < n:
                raise ConfigError(f"{pname}: {v!r} is not allowed; it must be an integer in [-{n}, {n})")

    def _init_state(self) -> tuple:
        fcfg = np.array([self.theta], dtype=np.float64)
        icfg = np.array([self.confidence_index % self.n_features, self.local_action % self.n_actions,
                         self.forward_action % self.n_actions], dtype=np.int64)
        return fcfg, icfg

    def _check_state(self, c) -> None:
        c.config(*c.arrays)
