"""Baselines: uniform random, a fixed option, a static confidence threshold, and the oracle."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from .base import Agent
from .registry import register, register_preset

__all__ = ["Random", "Fixed"]


@njit(cache=True)
def _random_select(state, x, u):
    n_actions = state[0].shape[0]
    a = int(u[0] * n_actions)
    return min(a, n_actions - 1)


@njit(cache=True)
def _random_prob(state, x, u, a):
    return 1.0 / state[0].shape[0]


@njit(cache=True)
def _fixed_select(state, x, u):
    return state[0][0]


@njit(cache=True)
def _noop_update(state, x, a, r, rewards):
    return None


@register("random", "uniformly random option (lower anchor)")
class Random(Agent):
    """Pick an option uniformly at random.

    Examples
    --------
    >>> agent = Random(n_actions=3, n_features=2, seed=0)
    >>> [agent.act([0.5, 1.0]) for _ in range(5)]
    [1, 0, 0, 0, 2]
    """

    n_uniforms = 1
    _select_kernel = staticmethod(_random_select)
    _update_kernel = staticmethod(_noop_update)
    _prob_kernel = staticmethod(_random_prob)
    propensity_kind = "stochastic"
    learns = False

    def _init_state(self):
        return (np.zeros(self.n_actions, dtype=np.int64),)

    def _check_state(self, c) -> None:
        c.config(*c.arrays)


@register("fixed", "always the same option (fixed(option=k); negative k counts from the end)")
class Fixed(Agent):
    """Always choose ``option`` (negative values count from the end: -1 is the last, farthest option).

    Examples
    --------
    >>> Fixed(n_actions=4, n_features=2, option=-1).act([0.9, 1.0])
    3
    """

    _select_kernel = staticmethod(_fixed_select)
    _update_kernel = staticmethod(_noop_update)
    propensity_kind = "deterministic"
    learns = False

    def __init__(self, n_actions: int, n_features: int, option: int = 0, seed=None):
        self.option = option
        super().__init__(n_actions, n_features, seed)

    def _check_params(self):
        o = self.option
        if isinstance(o, bool) or not isinstance(o, (int, np.integer)) or not -self.n_actions <= o < self.n_actions:
            raise ConfigError(f"option: {o!r} is not allowed; it must be an integer in [-{self.n_actions}, {self.n_actions})")

    def _init_state(self):
        return (np.array([self.option % self.n_actions], dtype=np.int64),)

    def _check_state(self, c) -> None:
        c.config(*c.arrays)


register_preset("always-local", Fixed, "serve every request with the origin's own model (option 0)", option=0)
register_preset("always-cloud", Fixed, "forward every request to the farthest option (the cloud's model)", option=-1)
