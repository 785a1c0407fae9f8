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

from ..errors import CheckpointError, ConfigError, require
from ._checkpoint import StateCheck, expect_array, reject_extra
from ._feedback import LEARNS_FROM_OWN_REWARD
from ._hi_common import check_reward_range
from ._params import MAX_STEPS, check_nested_params, dry_run, show
from .base import Agent
from .registry import register, register_preset

__all__ = ["RiverPolicy"]

# parameters river requires without a default, filled in when the user gives none
_REQUIRED_DEFAULTS = {"UCB": {"delta": 1.0}, "EpsilonGreedy": {"epsilon": 0.1}, "Exp3": {"gamma": 0.1}}
# policies whose whole state is per-arm stats.Mean + counts + one random.Random: saveable without pickle
_SAVEABLE = ("UCB", "EpsilonGreedy", "RandomPolicy")
#: valid ranges of river.bandit policy parameters (name: (lo, hi, lo_open, integer)); others: any finite number
_POLICY_PARAM_RANGES = {
    "delta": (0.0, None, True, False), "epsilon": (0.0, 1.0, False, False), "decay": (0.0, None, False, False),
    "gamma": (0.0, 1.0, True, False), "alpha": (0.0, None, False, False), "beta": (0.0, None, True, False),
    "smoothing": (0.0, None, False, False), "burn_in": (0, MAX_STEPS, False, True),
}


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

    feedback_modes = LEARNS_FROM_OWN_REWARD  # under label_on_forward river's policies settle on the wrong option

    def __init__(self, n_actions: int, n_features: int, policy: str = "UCB", policy_params: dict | None = None,
                 reward_min: float = -1.0, reward_max: float = 1.0, seed=None, **policy_kwargs):
        if policy_params is not None and not isinstance(policy_params, dict):
            raise ConfigError(f"policy_params: {show(policy_params)} is not allowed; it must be a dict or None")
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
        cls = self._policy_class()
        if self.policy_params is not None and not isinstance(self.policy_params, dict):
            raise ConfigError(f"policy_params: {show(self.policy_params)} is not allowed; it must be a dict or None")
        if self.policy_params and "seed" in self.policy_params:
            raise ConfigError("policy_params: 'seed' is not allowed; the agent's seed drives the policy")
        check_reward_range(self.reward_min, self.reward_max)
        check_nested_params("policy_params", self.policy_params, cls, _POLICY_PARAM_RANGES)
        bandit = require("river.bandit", "river")
        contextual = issubclass(cls, bandit.base.ContextualPolicy)
        kwargs = {**_REQUIRED_DEFAULTS.get(self.policy, {}), **(self.policy_params or {})}

        def trial():  # a throwaway policy on a few arms: a bad value fails here, not in every bench cell
            pol = cls(**kwargs, seed=0)
            arms = list(range(min(self.n_actions, 4)))
            ctx = {f"x{i}": 0.5 for i in range(min(self.n_features, 4))}
            for y in (0.0, 1.0, 0.5):
                a = pol.pull(arms, context=ctx) if contextual else pol.pull(arms)
                pol.update(a, ctx, y) if contextual else pol.update(a, y)

        dry_run("policy_params", kwargs, f"river.bandit.{self.policy}", trial)

    def _state_size(self) -> tuple[str, int]:
        bandit = require("river.bandit", "river")
        if issubclass(self._policy_class(), bandit.base.ContextualPolicy):  # (d, d) statistics per option
            return "n_actions, n_features", self.n_actions * (self.n_features + 1) ** 2
        return "n_actions", self.n_actions

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
        dtypes = {"counts": np.int64, "seen": np.bool_, "n": np.int64, "rng": np.int64}
        reject_extra(arrays, want)
        for key, shape in want.items():
            expect_array(arrays, key, shape, dtypes.get(key, np.float64))
        c = StateCheck(arrays)
        c.counts("counts", 0, what="pull counts")
        c.in_range("mean_n", 0.0, what="reward counts")
        c.in_range("mean", 0.0, 1.0, what="mean rewards (rewards are mapped to [0, 1])")
        c.counts("n", 0, what="the number of updates")
        c.counts("rng", 0, 2**32 - 1, what="Mersenne Twister words")
        c.in_range("gauss", nan_ok=True, what="the cached normal")
        counts, seen = arrays["counts"], arrays["seen"]
        if int(arrays["n"][0]) != int(counts.sum()):
            c.fail("n", f"the number of updates {int(arrays['n'][0])} is not the sum of the pull counts "
                        f"{int(counts.sum())}")
        if (counts[~seen] > 0).any():
            c.fail("seen", "an option with pulls is marked as never seen")
        if (arrays["mean_n"][seen] != counts[seen]).any():
            c.fail("mean_n", "reward counts differ from the pull counts")
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
        except (TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"state array rng: corrupted generator state ({exc})") from None
        self._state = pol


register_preset("river-ucb", RiverPolicy, "river.bandit.UCB (delta=1) through the RiverPolicy adapter", policy="UCB")
register_preset("river-epsilon-greedy", RiverPolicy, "river.bandit.EpsilonGreedy (epsilon=0.1) through RiverPolicy",
                policy="EpsilonGreedy")
register_preset("river-linucb", RiverPolicy, "river.bandit.LinUCBDisjoint (contextual) through RiverPolicy",
                policy="LinUCBDisjoint")
