"""SquareCB with any river regressor as the online regression oracle (Foster & Rakhlin, ICML 2020).

Reference: D. J. Foster, A. Rakhlin, "Beyond UCB: Optimal and Efficient Contextual Bandits with
Realizable Regression Oracles", ICML 2020 (Algorithm 1, inverse-gap weighting). Practical schedule
from Vowpal Wabbit's ``cb_explore_adf_squarecb.cc`` (read): γ = gamma_scale · n^gamma_exponent with
n the number of learned examples (so the first decision is uniform), μ = K, oracle updated without
importance weighting (Vowpal Wabbit's SquareCB: ``cb_explore_adf_squarecb.cc``).

Python-only (``has_kernels`` is False): the oracle is a river model.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..errors import ConfigError, require
from ._checkpoint import StateCheck, expect_array, reject_extra
from ._feedback import LEARNS_FROM_OWN_REWARD
from ._hi_common import check_positive, check_reward_range
from ._params import check_nested_params, check_real, dry_run, show
from .base import Agent
from .registry import register

__all__ = ["SquareCB"]

_DEFAULT_ORACLE = "linear_model.LinearRegression"
#: valid ranges of the default oracle's parameters (name: (lo, hi, lo_open, integer)); others: any finite number
_ORACLE_PARAM_RANGES = {"l2": (0.0, None, False, False), "l1": (0.0, None, False, False),
                        "intercept_lr": (0.0, None, False, False), "clip_gradient": (0.0, None, True, False),
                        "intercept_init": (-1e300, 1e300, False, False)}


def _resolve_oracle(oracle, oracle_params):
    """A fresh river regressor from a ``"module.Class"`` name inside river or a prototype instance."""
    river_base = require("river.base", "river")
    if isinstance(oracle, str):
        mod_name, _, cls_name = oracle.rpartition(".")
        try:
            import importlib

            cls = getattr(importlib.import_module(f"river.{mod_name}"), cls_name)
        except (ImportError, AttributeError, ValueError):
            raise ConfigError(
                f"oracle: {oracle!r} is not a river regressor; use 'module.Class' inside river, "
                f"e.g. {_DEFAULT_ORACLE!r}, or pass a river regressor instance"
            ) from None
        if oracle_params is not None and not isinstance(oracle_params, dict):
            raise ConfigError(f"oracle_params: {show(oracle_params)} is not allowed; it must be a dict or None")
        if isinstance(cls, type):
            check_nested_params("oracle_params", oracle_params, cls, _ORACLE_PARAM_RANGES)
        try:
            model = cls(**(oracle_params or {}))
        except Exception as exc:  # noqa: BLE001 - whatever river raises on a bad argument
            what = f"oracle_params: {show(oracle_params, 120)}" if oracle_params else f"oracle: {oracle!r}"
            why = (str(exc).splitlines() or [""])[0][:160]
            raise ConfigError(f"{what} is not allowed; {oracle} cannot be built with it ({type(exc).__name__}: "
                              f"{why})") from None
    else:
        if oracle_params:
            raise ConfigError("oracle_params: only allowed when oracle is given by name")
        try:
            model = oracle.clone() if hasattr(oracle, "clone") else copy.deepcopy(oracle)
        except Exception:  # noqa: BLE001 - not a river model: refused just below
            model = None
    if not isinstance(model, river_base.Regressor):
        raise ConfigError(f"oracle: {show(oracle)} is not a river regressor (river.base.Regressor)")
    return model


def _trial_oracle(model, n_features: int) -> None:
    """Learn and predict once on a throwaway copy: a bad ``oracle_params`` value fails here."""
    m = model.clone() if hasattr(model, "clone") else copy.deepcopy(model)
    x = {f"x{i}": 0.5 for i in range(min(n_features, 4))}
    for y in (0.0, 1.0):
        m.learn_one(x, y)
    p = m.predict_one(x)
    if p is not None and not math.isfinite(float(p)):
        raise ValueError(f"the trial prediction is {p}")


@register("squarecb", "SquareCB: inverse-gap weighting over a river online regressor (one per option)")
class SquareCB(Agent):
    """SquareCB — inverse-gap weighting over predicted losses of an online regressor.

    Each decision: the oracle of every option predicts its loss ŷ_a for the context; with b the
    best, p_a = 1 / (μ + γ_t (ŷ_a − ŷ_b)) for a ≠ b and p_b = 1 − Σ_{a≠b} p_a, μ = K,
    γ_t = gamma_scale · n^gamma_exponent (VW's schedule, n = examples learned so far). After the
    chosen option's reward r is observed, its oracle learns (x, loss(r)) with plain square loss.
    Losses are rewards mapped to [0, 1] by ``(reward_max − r)/(reward_max − reward_min)`` (clipped),
    so VW's gamma_scale = 10 keeps its meaning.

    Oracle: **one river regressor per option** (default ``river.linear_model.LinearRegression``,
    SGD), features named ``x0 … x{d-1}``. Feedback: bandit (the chosen option's reward; NaN → no
    update); other options' rewards are ignored.

    Saving: for the default linear oracle, :meth:`save` stores each option's weights, intercept and
    optimiser step count (npz, no pickle) and :meth:`load` restores them exactly. Any other oracle
    raises :class:`ConfigError` on save (its state is not portable without pickle).

    Parameters
    ----------
    n_actions, n_features
        Sizes.
    gamma_scale, gamma_exponent
        The greediness schedule γ = gamma_scale · n^gamma_exponent (VW defaults 10 and 0.5).
    oracle
        ``"module.Class"`` of a river regressor (resolved inside ``river``) or a river regressor
        instance used as a prototype (cloned per option; such an agent cannot be saved).
    oracle_params
        Keyword arguments for a named oracle (JSON values only, so the agent stays saveable).
    reward_min, reward_max
        Reward range of the reward → loss map.
    seed
        Seed of the agent's generator (one uniform per decision).

    Examples
    --------
    >>> agent = SquareCB(n_actions=2, n_features=2, seed=0)
    >>> for t in range(300):
    ...     x = [float(t % 2), 1.0]
    ...     a = agent.act(x)
    ...     _ = agent.update(x, a, 1.0 if a == t % 2 else 0.0)
    >>> agent.act([1.0, 1.0]), agent.act([0.0, 1.0])
    (1, 0)
    """

    n_uniforms = 1  # drawn in act() from the agent's generator (no kernels: Python only)
    feedback_modes = LEARNS_FROM_OWN_REWARD  # its oracles learn the chosen option's loss only

    def __init__(self, n_actions: int, n_features: int, gamma_scale: float = 10.0, gamma_exponent: float = 0.5,
                 oracle=_DEFAULT_ORACLE, oracle_params: dict | None = None, reward_min: float = -1.0,
                 reward_max: float = 1.0, seed=None):
        self.gamma_scale = gamma_scale
        self.gamma_exponent = gamma_exponent
        self.oracle = oracle
        self.oracle_params = oracle_params
        self.reward_min = reward_min
        self.reward_max = reward_max
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_positive("gamma_scale", self.gamma_scale, upper=1e300)
        check_real("gamma_exponent", self.gamma_exponent, lo=0.0, hi=1.0)
        if self.oracle_params is not None and not isinstance(self.oracle_params, dict):
            raise ConfigError(f"oracle_params: {show(self.oracle_params)} is not allowed; it must be a dict or None")
        check_reward_range(self.reward_min, self.reward_max)
        model = _resolve_oracle(self.oracle, self.oracle_params)
        dry_run("oracle_params" if self.oracle_params else "oracle", self.oracle_params or self.oracle,
                str(self.oracle) if isinstance(self.oracle, str) else type(self.oracle).__name__,
                lambda: _trial_oracle(model, self.n_features))

    def _state_size(self) -> tuple[str, int]:
        return "n_actions, n_features", self.n_actions * (self.n_features + 2)

    def _init_state(self) -> dict:
        return {"models": [_resolve_oracle(self.oracle, self.oracle_params) for _ in range(self.n_actions)],
                "n": 0}

    def _features(self, x: np.ndarray) -> dict:
        return {f"x{i}": float(v) for i, v in enumerate(x)}

    def probabilities(self, context) -> np.ndarray:
        """The IGW distribution (n_actions,) over options for ``context``."""
        xd = self._features(self._check_context(context))
        return self._probs(xd)

    def _probs(self, xd: dict) -> np.ndarray:
        k = self.n_actions
        yhat = np.array([float(m.predict_one(xd) or 0.0) for m in self._state["models"]])
        b = int(np.argmin(yhat))
        gamma = self.gamma_scale * self._state["n"] ** self.gamma_exponent if self._state["n"] else 0.0
        p = 1.0 / (k + gamma * (yhat - yhat[b]))
        p[b] = 0.0
        p[b] = 1.0 - p.sum()
        return p

    propensity_kind = "stochastic"

    def probs(self, context) -> np.ndarray:
        """(n_actions,) the inverse-gap-weighting distribution of the next decision."""
        return self._probs(self._features(self._check_context(context)))

    def act(self, context) -> int:
        xd = self._features(self._check_context(context))
        u = self._rng.random(1)[0]
        c = np.cumsum(self._probs(xd))
        return int(min(np.searchsorted(c, u, side="right"), self.n_actions - 1))

    def update(self, context, action, reward, *, rewards=None) -> SquareCB:
        x = self._check_context(context)
        a = self._check_action(action)
        r, _ = self._check_rewards(a, reward, rewards)
        if math.isnan(r):
            return self
        loss = min(1.0, max(0.0, (self.reward_max - r) / (self.reward_max - self.reward_min)))
        self._state["models"][a].learn_one(self._features(x), loss)
        self._state["n"] += 1
        return self

    # ------------------------------------------------------------------ save / load
    def _check_saveable(self) -> None:
        if self.oracle != _DEFAULT_ORACLE:
            raise ConfigError(
                f"oracle: saving is supported only for {_DEFAULT_ORACLE!r} (got {self.oracle!r}); "
                "river models of other kinds cannot be stored without pickle"
            )

    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_saveable()
        names = [f"x{i}" for i in range(self.n_features)]
        models = self._state["models"]
        return {
            "n": np.array([self._state["n"]], dtype=np.int64),
            "weights": np.array([[m.weights.get(f, 0.0) for f in names] for m in models], dtype=np.float64),
            "intercept": np.array([m.intercept for m in models], dtype=np.float64),
            "steps": np.array([m.optimizer.n_iterations for m in models], dtype=np.int64),
        }

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._check_saveable()
        k, d = self.n_actions, self.n_features
        want = {"n": (1,), "weights": (k, d), "intercept": (k,), "steps": (k,)}
        reject_extra(arrays, want)
        for key, shape in want.items():
            expect_array(arrays, key, shape, np.int64 if key in ("n", "steps") else np.float64)
        c = StateCheck(arrays)
        c.counts("n", 0, what="the number of updates")
        c.finite("weights", "intercept")
        c.counts("steps", 0, what="optimiser steps")
        state = self._init_state()
        for a, m in enumerate(state["models"]):
            for i in range(d):
                w = float(arrays["weights"][a, i])
                if w != 0.0:
                    m._weights[f"x{i}"] = w
            m.intercept = float(arrays["intercept"][a])
            m.optimizer.n_iterations = int(arrays["steps"][a])
        state["n"] = int(arrays["n"][0])
        self._state = state
