"""The agent protocol shared by every learner (docs/agents.md).

An agent chooses one of ``n_actions`` options for a context vector of ``n_features`` floats and
learns from feedback. One protocol, two paths:

* **step path** — :meth:`Agent.act` / :meth:`Agent.update` (and the ``*_many`` batch forms), called
  from Python by the Gymnasium environments, the simulator's Python loop or user code;
* **fused path** — :meth:`Agent.kernels` returns numba-jitted ``select`` / ``update`` functions and the
  agent's state arrays, so a compiled loop (e.g. ``idnbandit.sim.simulate``) can run millions of
  decisions per second without returning to Python.

Kernel protocol
---------------
``select(state, x, u) -> int``
    ``state`` is the agent's tuple of numpy arrays (mutated in place), ``x`` the (n_features,) float64
    context, ``u`` a (n_uniforms,) float64 array of U[0, 1) numbers drawn by the *caller* from the
    agent's own generator (``agent.rng``). Kernels never use numba's global RNG.
``update(state, x, a, r, rewards) -> None``
    ``a`` the action taken for ``x``, ``r`` its observed reward (NaN when the feedback mode revealed
    nothing), ``rewards`` a (n_actions,) float64 array with the reward of every option that was
    observed and NaN elsewhere. ``update`` is called once per decision, even when nothing was
    observed, when its feedback arrives: in a network, answers come back out of order and after
    later decisions (``idnbandit.sim`` delivers them in order of completion, after the feedback delay
    if any), so an agent must not assume that ``update`` follows its own ``select``/``act``.

A caller of the fused path draws uniforms with ``agent.rng.random((k, agent.n_uniforms))``; because
numpy's generators produce the same stream whether drawn in blocks or one row at a time, the fused
path reproduces the step path bit for bit.

Contexts are validated in the Python wrappers (shape, finiteness), never inside kernels.

Step-path speed: a compiled call from Python costs a conversion per array argument, so agents with
many state arrays may keep them packed in two buffers (:func:`pack_state`; ``_state`` then holds
views into the buffers and ``kernels()`` is unchanged) and give the step path kernels that take the
buffers (see :class:`~idnbandit.agents._linear_base.LinearAgent`).

Multi-step episodes
-------------------
Agents with ``episodic = True`` (the RL agents: ``QLearning``, ``SarsaLambda``, ``LinearQ``, ``DQN``)
also accept ``update(context, action, reward, *, rewards=None, next_context=None, done=True)``:
``done=False`` with the next observation bootstraps from it (Cascade-v0, Ensemble-v0); ``done=True``,
the default, ends the episode and is exactly the one-step (bandit) update of the kernels above.
Other agents (``episodic = False``) take every decision as a one-step episode.
By convention ``x[confidence_index]`` (default 0) is the local model's maximum class probability;
threshold-type agents read it there.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import CheckpointError, ConfigError
from ._checkpoint import StateCheck, load_agent, save_agent
from ._feedback import FEEDBACK_MODES, feedback_mismatch
from ._packing import pack_state
from ._params import MAX_FEATURES, MAX_OPTIONS, check_integer, check_state_budget, show
from ._propensity import Propensities

__all__ = ["Agent", "AgentKernels", "FEEDBACK_MODES", "check_state_array", "feedback_mismatch", "make_rng",
           "pack_state"]

def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """One Generator from ``seed`` (an int, an existing Generator, or None for fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))
                             or not 0 <= seed < 2**128):
        raise ConfigError(f"seed: {show(seed)} is not allowed; use an integer in [0, 2**128), a numpy Generator or None")
    return np.random.default_rng(seed)


def check_state_array(name: str, a, ref: np.ndarray) -> None:
    """Raise CheckpointError naming the checkpoint array ``name`` unless ``a`` has ``ref``'s shape and dtype."""
    if a is None or a.shape != ref.shape or a.dtype != ref.dtype:
        raise CheckpointError(f"state array {name}: expected {ref.dtype}{list(ref.shape)}, "
                              f"got {None if a is None else f'{a.dtype}{list(a.shape)}'}")

class AgentKernels(NamedTuple):
    """What :meth:`Agent.kernels` returns for the fused path.

    Examples
    --------
    The kernels follow the protocol of the module docstring; a compiled loop calls them the same way:

    >>> import numpy as np
    >>> from idnbandit.agents import LinUCB
    >>> k = LinUCB(n_actions=3, n_features=2, seed=0).kernels()
    >>> x = np.array([0.9, 1.0])
    >>> for _ in range(50):
    ...     a = k.select(k.state, x, np.zeros(k.n_uniforms))
    ...     k.update(k.state, x, a, 1.0 if a == 2 else 0.0, np.full(3, np.nan))  # bandit feedback
    >>> k.select(k.state, x, np.zeros(k.n_uniforms))
    2
    """

    select: Callable  # numba dispatcher select(state, x, u) -> int64
    update: Callable  # numba dispatcher update(state, x, a, r, rewards) -> None
    state: tuple  # tuple of numpy arrays, mutated in place by the kernels
    n_uniforms: int  # uniforms consumed by each select call
    prob: Callable | None = None  # prob(state, x, u, a) -> float of a stochastic agent (decision logs)


class Agent(Propensities):
    """Base class of all agents.

    Subclasses set ``name`` (registry name), implement :meth:`_init_state` and either provide
    ``_select_kernel`` / ``_update_kernel`` (numba functions following the kernel protocol above) or
    override :meth:`act` / :meth:`update` in Python (agents with Python-only learners, e.g. river models).

    Constructor arguments are stored as public attributes of the same name (river's convention), so
    :meth:`get_params`, :meth:`clone` and ``repr`` come for free; learned state is private.

    Every constructor argument has a documented range, checked at construction (``ConfigError``
    naming it); sizes are bounded (:mod:`._params`: at most 10**6 options and features, and a learned
    state of at most 2**27 numbers, :meth:`_state_size`).

    ``feedback_modes`` lists the scenario feedback modes the agent can learn from (default: all);
    ``simulate()`` warns (:class:`~idnbandit.errors.FeedbackMismatchWarning`) on any other.

    Parameters
    ----------
    n_actions
        Number of options, 1 <= n_actions <= 10**6.
    n_features
        Length of the context vector, 1 <= n_features <= 10**6.
    seed
        Seed of the agent's own generator: an integer in [0, 2**128), a numpy Generator, or None.

    Examples
    --------
    A learner written in Python overrides :meth:`act` and :meth:`update` (a kernel agent gives
    ``_select_kernel`` / ``_update_kernel`` instead: docs/agents.md, "How to add an agent"):

    >>> import numpy as np
    >>> class MeanGreedy(Agent):
    ...     name = "mean-greedy"
    ...     def _init_state(self):
    ...         return np.zeros((2, self.n_actions))          # reward sums, counts
    ...     def act(self, context):
    ...         sums, counts = self._state
    ...         return int(np.argmax(np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)))
    ...     def update(self, context, action, reward, *, rewards=None):
    ...         self._state[:, action] += (reward, 1.0)
    ...         return self
    >>> agent = MeanGreedy(n_actions=3, n_features=1, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(100):
    ...     a = agent.act([0.5])
    ...     _ = agent.update([0.5], a, rng.normal([0.1, 0.5, 0.3], 0.1)[a])
    >>> agent.act([0.5]), agent
    (1, MeanGreedy(n_actions=3, n_features=1, seed=0))
    """

    name: str = "agent"
    description: str = ""
    episodic: bool = False  # True: update() also takes next_context= / done= (module docstring)
    feedback_modes: frozenset = FEEDBACK_MODES
    n_uniforms: int = 0
    _select_kernel: Callable | None = None
    _update_kernel: Callable | None = None

    def __init__(self, n_actions: int, n_features: int, seed: int | np.random.Generator | None = None):
        check_integer("n_actions", n_actions, 1, MAX_OPTIONS)
        check_integer("n_features", n_features, 1, MAX_FEATURES)
        self.n_actions = int(n_actions)
        self.n_features = int(n_features)
        self.seed = seed
        self._check_params()
        names, size = self._state_size()
        check_state_budget(names, int(size), type(self).__name__)
        self.reset()

    # ------------------------------------------------------------------ to override
    def _check_params(self) -> None:
        """Validate hyperparameters; raise ConfigError naming the parameter."""

    def _state_size(self) -> tuple[str, int]:
        """(the parameters that size the learned state, how many numbers it holds), computed from the
        parameters before anything is allocated; checked against the budget of :mod:`._params`."""
        return "n_actions", self.n_actions

    def _check_state(self, check: StateCheck) -> None:
        """Check the values of a loaded state (``check.arrays``: ``s0``, ``s1``, ... of the kernel tuple,
        ``check.fresh`` the same for a fresh agent); raise CheckpointError naming the array.

        The default (for agents defined outside idnbandit) only rejects ±inf in float arrays; every
        registered agent overrides it with its exact invariants (configuration arrays equal to what
        the parameters give, finite statistics, positive definite matrices, counters and stored
        indices inside their arrays: the numba kernels do not check bounds).
        """
        for n, a in check.arrays.items():
            if a.dtype.kind == "f":
                check.not_inf(n)

    def _init_state(self) -> tuple:
        """Fresh learned state: a tuple of numpy arrays (kernel agents) or anything (Python agents)."""
        return ()

    # ------------------------------------------------------------------ protocol
    def reset(self) -> Agent:
        """Forget everything learned and restart the generator from ``seed``."""
        self._rng = make_rng(copy.deepcopy(self.seed) if isinstance(self.seed, np.random.Generator) else self.seed)
        self._state = self._init_state()
        return self

    @property
    def rng(self) -> np.random.Generator:
        """The agent's generator (the fused path draws ``u`` from it)."""
        return self._rng

    def act(self, context) -> int:
        """Choose an option for one context (shape (n_features,))."""
        x = self._check_context(context)
        u = self._rng.random(self.n_uniforms)
        return int(self._select_kernel(self._state, x, u))

    def update(self, context, action, reward, *, rewards=None) -> Agent:
        """Learn from the feedback of one decision; returns ``self``.

        Parameters
        ----------
        context
            (n_features,) the context the decision was made on.
        action
            The option taken.
        reward
            Its observed reward, or NaN if the feedback mode revealed nothing.
        rewards
            Optional (n_actions,) rewards of every option, NaN where not observed.
        """
        x = self._check_context(context)
        a = self._check_action(action)
        r, rs = self._check_rewards(a, reward, rewards)
        self._update_kernel(self._state, x, a, r, rs)
        return self

    def act_many(self, contexts) -> np.ndarray:
        """Choose for each row of (n, n_features) ``contexts`` in turn (no learning in between)."""
        xs = self._check_contexts(contexts)
        return np.array([self.act(x) for x in xs], dtype=np.int64)

    def update_many(self, contexts, actions, rewards, *, all_rewards=None) -> Agent:
        """Apply :meth:`update` to each row in order; ``all_rewards`` is (n, n_actions) or None."""
        xs = self._check_contexts(contexts)
        actions = np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        n = xs.shape[0]
        if actions.shape != (n,) or rewards.shape != (n,):
            raise ConfigError(f"actions/rewards: expected shape ({n},) to match contexts, got {actions.shape} and {rewards.shape}")
        if all_rewards is not None:
            all_rewards = np.asarray(all_rewards, dtype=np.float64)
            if all_rewards.shape != (n, self.n_actions):
                raise ConfigError(f"all_rewards: expected shape ({n}, {self.n_actions}), got {all_rewards.shape}")
        for i in range(n):
            self.update(xs[i], actions[i], rewards[i], rewards=None if all_rewards is None else all_rewards[i])
        return self

    def kernels(self) -> AgentKernels:
        """The numba kernels and state for the fused path (docs/simulator.md).

        Raises
        ------
        NotImplementedError
            For agents that only run in Python (the simulator then uses its Python loop).
        """
        if self._select_kernel is None or self._update_kernel is None:
            raise NotImplementedError(f"{type(self).__name__} has no numba kernels; use the step path")
        prob = self._prob_kernel if self.propensity_kind == "stochastic" else None
        return AgentKernels(self._select_kernel, self._update_kernel, self._state, self.n_uniforms, prob)

    @property
    def has_kernels(self) -> bool:
        return self._select_kernel is not None and self._update_kernel is not None

    # ------------------------------------------------------------------ params, clone, repr
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (``n_actions``, ``n_features``, hyperparameters, ``seed``)."""
        return {p: getattr(self, p) for p in self._param_names()}

    def clone(self) -> Agent:
        """A fresh, untrained agent with the same parameters (and the same seed)."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ save / load (npz + JSON, no pickle)
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Learned state as named arrays (override for Python agents)."""
        return {f"s{i}": np.asarray(a) for i, a in enumerate(self._state)}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        fresh = self._init_state()
        names = {f"s{i}" for i in range(len(fresh))}
        for k in sorted(arrays):
            if k not in names:
                raise CheckpointError(f"state array {show(k)}: not part of {type(self).__name__}'s state "
                                      f"(it has {len(fresh)} arrays, s0 .. s{len(fresh) - 1})")
        state = []
        for i, ref in enumerate(fresh):
            a = arrays.get(f"s{i}")
            check_state_array(f"s{i}", a, ref)
            state.append(np.array(a, copy=True))
        self._check_state(StateCheck.of_tuple(tuple(state), fresh, self._state_names()))
        self._state = tuple(state)

    def _state_names(self) -> tuple[str, ...]:
        """What each kernel state array holds (named in checkpoint errors); override to describe them."""
        return ()

    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, learned state and generator state to one ``.npz`` file, atomically."""
        return save_agent(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Agent:
        """Rebuild an agent written by :meth:`save` (``allow_pickle=False``: nothing is unpickled).

        Called on a subclass, the checkpoint must be of that class; called on :class:`Agent`, the
        class is looked up in the agent registry. The structure and the values of the checkpoint are
        checked (see :mod:`._checkpoint`): the parameters by the constructor, the learned state by
        :meth:`_check_state` (finite, positive definite where required, indices in range, ...).

        Raises
        ------
        CheckpointError
            If the file is missing, truncated, corrupted, of another agent class, or holds invalid
            parameters or state values; the message names the file and the array or field.
        DependencyNotInstalled
            If the agent needs an optional dependency that is missing (e.g. torch).
        """
        return load_agent(cls, path, Agent)

    # ------------------------------------------------------------------ validation helpers
    def _check_context(self, context) -> np.ndarray:
        try:
            x = np.asarray(context, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"context: {type(context).__name__} is not a numeric array of {self.n_features} "
                              "floats") from None
        if x.shape != (self.n_features,):
            raise ConfigError(f"context: expected shape ({self.n_features},), got {x.shape}")
        if not np.isfinite(x).all():
            raise ConfigError("context: contains NaN or inf; contexts must be finite")
        return x.copy() if x is context else np.ascontiguousarray(x)

    def _check_contexts(self, contexts) -> np.ndarray:
        try:
            xs = np.asarray(contexts, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"contexts: {type(contexts).__name__} is not a numeric (n, {self.n_features}) "
                              "array") from None
        if xs.ndim != 2 or xs.shape[1] != self.n_features:
            raise ConfigError(f"contexts: expected shape (n, {self.n_features}), got {xs.shape}")
        if not np.isfinite(xs).all():
            raise ConfigError("contexts: contains NaN or inf; contexts must be finite")
        return xs

    def _check_action(self, action) -> int:
        if isinstance(action, np.ndarray) and action.ndim == 0 and np.issubdtype(action.dtype, np.integer):
            action = action.item()  # a 0-d integer array, as Stable-Baselines3's predict returns
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)) or not 0 <= action < self.n_actions:
            raise ConfigError(f"action: {action!r} is not allowed; it must be an integer in [0, {self.n_actions})")
        return int(action)

    def _check_rewards(self, action: int, reward, rewards) -> tuple[float, np.ndarray]:
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise ConfigError(f"reward: {reward!r} is not a number (use NaN for 'not observed')") from None
        if np.isinf(r):
            raise ConfigError("reward: inf is not allowed (use NaN for 'not observed')")
        if rewards is None:
            rs = np.full(self.n_actions, np.nan)
            rs[action] = r
        else:
            rs = np.array(rewards, dtype=np.float64)  # a copy: callers' arrays are never mutated
            if rs.shape != (self.n_actions,):
                raise ConfigError(f"rewards: expected shape ({self.n_actions},), got {rs.shape}")
            if np.isinf(rs).any():
                raise ConfigError("rewards: inf is not allowed (use NaN for 'not observed')")
        return r, rs
