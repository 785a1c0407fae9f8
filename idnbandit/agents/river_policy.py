"""RiverPolicy: run any ``river.bandit`` policy in idnbandit's loops (river 0.26 API).

river's policies choose with ``pull(arm_ids)`` (contextual ones: ``pull(arm_ids, context=dict)``)
and learn with ``update(arm_id, reward)`` (contextual: ``update(arm_id, context, reward)``); they
seed a ``random.Random`` of their own. This adapter maps our options 0..K-1 to arm ids, contexts to
``{"x0": …, "x{d-1}": …}``, and rewards to ``(r - reward_min)/(reward_max - reward_min)`` clipped
to [0, 1] (UCB-type bonuses assume rewards of that scale). NaN rewards (nothing observed) → no
update. Feedback: bandit (the chosen option's reward only).

Python-only (``has_kernels`` False). It exists so river's own implementations can be benchmarked
side by side with ours.
"""

from __future__ import annotations

import math
import random

import numpy as np

from ..errors import ConfigError, require
from .base import Agent
from .registry import register, register_preset

__all__ = ["RiverPolicy"]

# parameters river requires without a default, filled in when the user gives none
_REQUIRED_DEFAULTS = {"UCB": {"delta": 1.0}, "EpsilonGreedy": {"epsilon": 0.1}, "Exp3": {"gamma": 0.1}}
# policies whose whole state is per-arm stats.Mean + counts + one random.Random: saveable without pickle
_SAVEABLE = ("UCB", "EpsilonGreedy", "RandomPolicy")


@register("river", "any river.bandit policy: river(policy='UCB', policy_params={'delta': 1.0})")
class RiverPolicy(Agent):
    """Adapter running a ``river.bandit`` policy (``UCB``, ``EpsilonGreedy``, ``LinUCBDisjoint``, …).

    Parameters
    ----------
    n_actions, n_features
        Sizes.
    policy
        Class name in ``river.bandit`` (e.g. ``"UCB"``, ``"EpsilonGreedy"``, ``"LinUCBDisjoint"``,
        ``"ThompsonSampling"``, ``"Exp3"``, ``"BayesUCB"``, ``"RandomPolicy"``).
    policy_params
        Keyword arguments of the policy (JSON values). River's required ones get defaults when
        missing: UCB delta=1, EpsilonGreedy epsilon=0.1, Exp3 gamma=0.1. ``seed`` is not allowed:
        the policy's seed is drawn from this agent's generator.
    reward_min, reward_max
        Reward range mapped to [0, 1] before river sees it.
    seed
        Seed of the agent's generator.
    **policy_kwargs
        Merged into ``policy_params`` (so ``RiverPolicy(policy="UCB", delta=2)`` works in Python;
        on the command line use ``river(policy_params={'delta': 2})``).

    Notes
    -----
    :meth:`save` / :meth:`load` are supported for ``UCB``, ``EpsilonGreedy`` and ``RandomPolicy``
    with the default ``stats.Mean`` reward object (per-arm counts and means plus the policy's
    ``random.Random`` state); other policies raise :class:`ConfigError` naming ``policy``.

    Examples
    --------
    >>> agent = RiverPolicy(n_actions=3, n_features=1, policy="UCB", seed=0)
    >>> for _ in range(200):
    ...     a = agent.act([0.0])
    ...     _ = agent.update([0.0], a, 1.0 if a == 1 else 0.0)
    >>> agent.act([0.0])
    1
    """

    def __init__(self, n_actions: int, n_features: int, policy: str = "UCB", policy_params: dict | None = None,
                 reward_min: float = -1.0, reward_max: float = 1.0, seed=None, **policy_kwargs):
        params = dict(policy_params or {})
        params.update(policy_kwargs)
        self.policy = policy
        self.policy_params = params or None
        self.reward_min = reward_min
        self.reward_max = reward_max
        super().__init__(n_actions, n_features, seed)

    @classmethod
    def _param_names(cls) -> list[str]:
        return ["n_actions", "n_features", "policy", "policy_params", "reward_min", "reward_max", "seed"]

    def _policy_class(self):
        bandit = require("river.bandit", "river")
        cls = getattr(bandit, self.policy, None) if isinstance(self.policy, str) else None
        if cls is None or not isinstance(cls, type) or not issubclass(cls, bandit.base.Policy):
            names = sorted(n for n in dir(bandit) if isinstance(getattr(bandit, n), type)
                           and issubclass(getattr(bandit, n), bandit.base.Policy))
            raise ConfigError(f"policy: {self.policy!r} is not a river.bandit policy; choose one of {', '.join(names)}")
        return cls

    def _check_params(self) -> None:
        self._policy_class()
        if self.policy_params is not None and not isinstance(self.policy_params, dict):
            raise ConfigError(f"policy_params: {self.policy_params!r} must be a dict or None")
        if self.policy_params and "seed" in self.policy_params:
            raise ConfigError("policy_params: 'seed' is not allowed; the agent's seed drives the policy")
        for pname, v in (("reward_min", self.reward_min), ("reward_max", self.reward_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ConfigError(f"{pname}: {v!r} is not allowed; it must be a finite number")
        if not self.reward_min < self.reward_max:
            raise ConfigError(f"reward_max: {self.reward_max!r} must be greater than reward_min={self.reward_min!r}")

    def _init_state(self):
        cls = self._policy_class()
        bandit = require("river.bandit", "river")
        kwargs = {**_REQUIRED_DEFAULTS.get(self.policy, {}), **(self.policy_params or {})}
        try:
            pol = cls(**kwargs, seed=int(self._rng.integers(2**31 - 1)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"policy_params: {self.policy_params!r} rejected by river.bandit.{self.policy} ({exc})") from None
        self._contextual = isinstance(pol, bandit.base.ContextualPolicy)
        return pol

    def _features(self, x: np.ndarray) -> dict:
        return {f"x{i}": float(v) for i, v in enumerate(x)}

    def act(self, context) -> int:
        x = self._check_context(context)
        arms = list(range(self.n_actions))
        if self._contextual:
            return int(self._state.pull(arms, context=self._features(x)))
        return int(self._state.pull(arms))

    def update(self, context, action, reward, *, rewards=None) -> RiverPolicy:
        x = self._check_context(context)
        a = self._check_action(action)
        r, _ = self._check_rewards(a, reward, rewards)
        if math.isnan(r):
            return self
        y = min(1.0, max(0.0, (r - self.reward_min) / (self.reward_max - self.reward_min)))
        if self._contextual:
            self._state.update(a, self._features(x), y)
        else:
            self._state.update(a, y)
        return self

    # ------------------------------------------------------------------ save / load
    def _check_saveable(self) -> None:
        from river import stats

        if self.policy not in _SAVEABLE or type(self._state.reward_obj) is not stats.Mean:
            raise ConfigError(
                f"policy: saving is supported for {', '.join(_SAVEABLE)} with the default stats.Mean reward "
                f"object, not {self.policy!r}; its river state cannot be stored without pickle"
            )

    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_saveable()
        pol = self._state
        k = self.n_actions
        version, internal, gauss = pol._rng.getstate()
        return {
            "counts": np.array([pol._counts[a] for a in range(k)], dtype=np.int64),
            "seen": np.array([a in pol._rewards for a in range(k)], dtype=np.bool_),
            "mean_n": np.array([pol._rewards[a].n if a in pol._rewards else 0.0 for a in range(k)]),
            "mean": np.array([pol._rewards[a].get() if a in pol._rewards else 0.0 for a in range(k)]),
            "n": np.array([pol._n], dtype=np.int64),
            "rng": np.array([version, *internal], dtype=np.int64),
            "gauss": np.array([np.nan if gauss is None else gauss]),
        }

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._check_saveable()
        k = self.n_actions
        want = {"counts": (k,), "seen": (k,), "mean_n": (k,), "mean": (k,), "n": (1,), "rng": (626,), "gauss": (1,)}
        for key, shape in want.items():
            if key not in arrays or arrays[key].shape != shape:
                got = None if key not in arrays else arrays[key].shape
                raise ConfigError(f"checkpoint state array {key}: expected shape {shape}, got {got}")
        pol = self._init_state()
        for a in range(k):
            if arrays["counts"][a]:
                pol._counts[a] = int(arrays["counts"][a])
            if arrays["seen"][a]:
                m = pol._rewards[a]
                m.n = float(arrays["mean_n"][a])
                m._mean = float(arrays["mean"][a])
        pol._n = int(arrays["n"][0])
        g = float(arrays["gauss"][0])
        rng = [int(v) for v in arrays["rng"]]
        state = (rng[0], tuple(rng[1:]), None if math.isnan(g) else g)
        try:
            pol._rng = random.Random()
            pol._rng.setstate(state)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"checkpoint state array rng: corrupted ({exc})") from None
        self._state = pol


register_preset("river-ucb", RiverPolicy, "river.bandit.UCB (delta=1) through the RiverPolicy adapter", policy="UCB")
register_preset("river-epsilon-greedy", RiverPolicy, "river.bandit.EpsilonGreedy (epsilon=0.1) through RiverPolicy",
                policy="EpsilonGreedy")
register_preset("river-linucb", RiverPolicy, "river.bandit.LinUCBDisjoint (contextual) through RiverPolicy",
                policy="LinUCBDisjoint")
