"""The agent protocol shared by every learner (DESIGN §2, §5, §7).

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
buffers (see :class:`~idnbandit.agents.linucb.LinearAgent`).

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
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError

__all__ = ["Agent", "AgentKernels", "check_state_array", "make_rng", "pack_state"]

_FORMAT = "idnbandit-agent"


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """One Generator from ``seed`` (an int, an existing Generator, or None for fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative integer, a numpy Generator or None")
    return np.random.default_rng(seed)


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



def check_state_array(name: str, a, ref: np.ndarray) -> None:
    """Raise ConfigError naming the checkpoint array ``name`` unless ``a`` has ``ref``'s shape and dtype."""
    if a is None or a.shape != ref.shape or a.dtype != ref.dtype:
        raise ConfigError(f"checkpoint state array {name}: expected {ref.dtype}{list(ref.shape)}, "
                          f"got {None if a is None else f'{a.dtype}{list(a.shape)}'}")

class AgentKernels(NamedTuple):
    """What :meth:`Agent.kernels` returns for the fused path."""

    select: Callable  # numba dispatcher select(state, x, u) -> int64
    update: Callable  # numba dispatcher update(state, x, a, r, rewards) -> None
    state: tuple  # tuple of numpy arrays, mutated in place by the kernels
    n_uniforms: int  # uniforms consumed by each select call


class Agent:
    """Base class of all agents.

    Subclasses set ``name`` (registry name), implement :meth:`_init_state` and either provide
    ``_select_kernel`` / ``_update_kernel`` (numba functions following the kernel protocol above) or
    override :meth:`act` / :meth:`update` in Python (agents with Python-only learners, e.g. river models).

    Constructor arguments are stored as public attributes of the same name (river's convention), so
    :meth:`get_params`, :meth:`clone` and ``repr`` come for free; learned state is private.

    Parameters
    ----------
    n_actions
        Number of options (>= 1).
    n_features
        Length of the context vector (>= 1).
    seed
        Seed of the agent's own generator.
    """

    name: str = "agent"
    description: str = ""
    episodic: bool = False  # True: update() also takes next_context= / done= (module docstring)
    n_uniforms: int = 0
    _select_kernel: Callable | None = None
    _update_kernel: Callable | None = None

    def __init__(self, n_actions: int, n_features: int, seed: int | np.random.Generator | None = None):
        for pname, v, lo in (("n_actions", n_actions, 1), ("n_features", n_features, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(f"{pname}: {v!r} is not allowed; it must be an integer >= {lo}")
        self.n_actions = int(n_actions)
        self.n_features = int(n_features)
        self.seed = seed
        self._check_params()
        self.reset()

    # ------------------------------------------------------------------ to override
    def _check_params(self) -> None:
        """Validate hyperparameters; raise ConfigError naming the parameter."""

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
        """The numba kernels and state for the fused path (DESIGN §5).

        Raises
        ------
        NotImplementedError
            For agents that only run in Python (the simulator then uses its Python loop).
        """
        if self._select_kernel is None or self._update_kernel is None:
            raise NotImplementedError(f"{type(self).__name__} has no numba kernels; use the step path")
        return AgentKernels(self._select_kernel, self._update_kernel, self._state, self.n_uniforms)

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
        if len(arrays) != len(fresh):
            raise ConfigError(f"checkpoint holds {len(arrays)} state arrays; {type(self).__name__} expects {len(fresh)}")
        state = []
        for i, ref in enumerate(fresh):
            a = arrays.get(f"s{i}")
            check_state_array(f"s{i}", a, ref)
            state.append(np.array(a, copy=True))
        self._state = tuple(state)

    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, learned state and generator state to one ``.npz`` file, atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        params = self.get_params()
        if isinstance(params.get("seed"), np.random.Generator):
            params["seed"] = None
        try:
            meta = json.dumps({
                "format": _FORMAT, "version": 1, "class": type(self).__name__, "module": type(self).__module__,
                "params": params, "rng": self._rng.bit_generator.state,
            })
        except TypeError as exc:
            raise ConfigError(f"{type(self).__name__}: parameters are not JSON-serialisable ({exc})") from None
        arrays = self._state_arrays()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            np.savez(f, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8), **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Agent:
        """Rebuild an agent written by :meth:`save` (``allow_pickle=False``).

        Called on a subclass, the checkpoint must be of that class; called on :class:`Agent`, the
        class is looked up in the agent registry.

        Raises
        ------
        ConfigError
            If the file is missing, truncated, corrupted or of another agent class.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"{path}: not a readable agent checkpoint ({type(exc).__name__}: {exc})") from None
        try:
            meta = json.loads(arrays.pop("__meta__").tobytes().decode())
            assert meta["format"] == _FORMAT
            cls_name, params, rng_state = meta["class"], meta["params"], meta["rng"]
        except Exception:
            raise ConfigError(f"{path}: not an idnbandit agent checkpoint (metadata missing or corrupted)") from None
        target = cls
        if cls is Agent or cls.__name__ != cls_name:
            from .registry import agent_class_by_name

            target = agent_class_by_name(cls_name)
            if cls is not Agent and not issubclass(target, cls):
                raise ConfigError(f"{path}: checkpoint holds a {cls_name}, not a {cls.__name__}")
        agent = target(**params)
        agent._set_state_arrays(arrays)
        try:
            agent._rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: corrupted generator state ({exc})") from None
        return agent

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
