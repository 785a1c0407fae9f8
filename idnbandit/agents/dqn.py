"""Double DQN (torch): replay buffer, target network, ε-greedy with a linear schedule.

Imported lazily: building a :class:`DQN` imports torch (``pip install 'idnbandit[torch]'``).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ._params import MAX_BATCH, MAX_FLOAT32, MAX_STEPS, check_integer, check_real
from ._torch_util import (
    TorchAgentMixin,
    adam_arrays,
    array_of,
    check_device,
    check_hidden,
    load_adam_arrays,
    load_module_arrays,
    make_mlp,
    mlp_size,
    module_arrays,
)
from .base import Agent
from .qlearning import EpisodicAgent, _check_index
from .registry import register

__all__ = ["DQN"]


@register("dqn", "Double DQN (torch): replay buffer, target network, Huber loss, linear epsilon schedule")
class DQN(TorchAgentMixin, EpisodicAgent):
    """Deep Q-network with the Double-DQN target (van Hasselt, Guez, Silver 2016).

    ``Q(x, ·)`` is an MLP with ``n_actions`` outputs. Every ``update`` stores transitions in a replay
    buffer of ``buffer_size``; after ``learning_starts`` updates, every ``train_freq`` updates one
    Adam step is taken on a batch drawn uniformly (from the agent's numpy generator) with the Huber
    loss on ``y = r + γ (1 − done) Q(x', argmax_b Q(x', b; θ); θ⁻)`` (the online net selects, the
    target net evaluates; ``double=False`` gives vanilla ``max_b Q(x', b; θ⁻)``). The target net is
    copied from the online net every ``target_update`` gradient steps. Exploration: ε falls linearly
    from ``epsilon_start`` to ``epsilon_end`` over ``exploration_steps`` decisions.

    Optional Fourier input features (Tancik et al. 2020): with ``fourier_index=i`` the network reads
    the context followed by ``0.5 + 0.5 sin(π 2^j x_i)`` and ``0.5 + 0.5 cos(π 2^j x_i)`` for
    ``j = 0 .. fourier_octaves − 1``, so a small MLP can fit a value that changes on a fine scale of
    one entry (Cascade-v0's confidence: the best stopping rule of a real trace is not monotone in it).
    The replay buffer and checkpoints keep the raw contexts; ``fourier_index=None`` (default) feeds
    the context as is.

    ``update(x, a, r, *, rewards=None, next_context=None, done=True)`` (see
    :mod:`idnbandit.agents.qlearning`): ``done=False`` stores ``(x, a, r, x', 0)``; ``done=True`` stores
    one terminal transition per observed option (with full feedback, every option). DQN has no numba
    kernels: ``simulate()`` runs it on its Python loop, one-step episodes.

    Seeding: the networks are initialised from a ``torch.Generator`` seeded from the agent's seed,
    exploration and batches come from the agent's numpy generator; the global torch seed is never
    touched, so the same seed gives the same actions (on CPU).

    Parameters
    ----------
    n_actions, n_features
        Number of actions and context length.
    hidden
        Hidden layer widths.
    lr
        Adam learning rate (> 0).
    gamma
        Discount γ in [0, 1].
    batch_size, buffer_size
        Batch size (>= 1) and replay capacity (>= 1).
    learning_starts
        Updates before the first gradient step (>= 0).
    train_freq
        Updates between gradient steps (>= 1).
    target_update
        Gradient steps between target-network copies (>= 1).
    epsilon_start, epsilon_end, exploration_steps
        Linear ε schedule over that many decisions (``exploration_steps >= 1``).
    max_grad_norm
        Gradient-norm clip (> 0).
    double
        Double-DQN target (True) or vanilla (False).
    fourier_index
        Context index to expand into Fourier features (``None``: no expansion).
    fourier_octaves
        Number of frequencies ``π 2^j`` of that expansion (>= 1; ``2 · fourier_octaves`` inputs added).
    device
        torch device (``"cpu"`` default).
    seed
        Seed of the agent's generators.

    Examples
    --------
    >>> import numpy as np
    >>> agent = DQN(n_actions=2, n_features=2, hidden=(32,), batch_size=32, learning_starts=32,
    ...             exploration_steps=200, target_update=50, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(400):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     _ = agent.update(x, a, x[0] if a == 0 else 0.5)   # serve locally iff confident
    >>> [agent.act([p, 1.0]) for p in (0.1, 0.3, 0.7, 0.9)]
    [1, 1, 0, 0]

    References
    ----------
    V. Mnih et al., "Human-level control through deep reinforcement learning", Nature 518, 2015.
    H. van Hasselt, A. Guez, D. Silver, "Deep Reinforcement Learning with Double Q-learning", AAAI 2016
    (arXiv:1509.06461).
    M. Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional
    Domains", NeurIPS 2020 (arXiv:2006.10739).
    """

    requires = "torch"  # the optional dependency (the shared tests skip the agent without it)

    def __init__(self, n_actions: int, n_features: int, hidden=(64, 64), lr: float = 1e-3, gamma: float = 0.99,
                 batch_size: int = 64, buffer_size: int = 10000, learning_starts: int = 100, train_freq: int = 1,
                 target_update: int = 250, epsilon_start: float = 1.0, epsilon_end: float = 0.05,
                 exploration_steps: int = 2000, max_grad_norm: float = 10.0, double: bool = True,
                 device: str = "cpu", fourier_index: int | None = None, fourier_octaves: int = 6, seed=None):
        self.hidden = check_hidden(hidden)
        self.lr = lr
        self.gamma = gamma
        self.batch_size = batch_size
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.train_freq = train_freq
        self.target_update = target_update
        self.epsilon_start = epsilon_start
        self.epsilon_end = epsilon_end
        self.exploration_steps = exploration_steps
        self.max_grad_norm = max_grad_norm
        self.double = double
        self.device = device
        self.fourier_index = fourier_index
        self.fourier_octaves = fourier_octaves
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("lr", self.lr, lo=0.0, lo_open=True, hi=MAX_FLOAT32)
        check_real("gamma", self.gamma, lo=0.0, hi=1.0)
        check_integer("batch_size", self.batch_size, 1, MAX_BATCH, why="a mini-batch is drawn per gradient step")
        check_integer("buffer_size", self.buffer_size, 1, MAX_STEPS)
        check_integer("learning_starts", self.learning_starts, 0, MAX_STEPS)
        check_integer("train_freq", self.train_freq, 1, MAX_STEPS)
        check_integer("target_update", self.target_update, 1, MAX_STEPS)
        check_real("epsilon_start", self.epsilon_start, lo=0.0, hi=1.0)
        check_real("epsilon_end", self.epsilon_end, lo=0.0, hi=1.0)
        check_integer("exploration_steps", self.exploration_steps, 1, MAX_STEPS)
        check_real("max_grad_norm", self.max_grad_norm, lo=0.0, lo_open=True, hi=MAX_FLOAT32)
        if not isinstance(self.double, (bool, np.bool_)):
            raise ConfigError(f"double: {self.double!r} is not allowed; use True or False")
        _check_index("fourier_index", self.fourier_index, self.n_features, True)
        check_integer("fourier_octaves", self.fourier_octaves, 1, 30, why="2**30 is the finest frequency a float32 "
                      "context resolves")
        check_device(self.device)  # imports torch: DependencyNotInstalled names the extra

    def _state_size(self) -> tuple[str, int]:
        p = mlp_size(self.n_inputs, self.hidden, self.n_actions)
        return ("hidden, buffer_size, n_features, n_actions",
                4 * p + int(self.buffer_size) * (2 * self.n_features + 3))

    def _check_torch_state(self, c) -> None:
        n = int(self.buffer_size)
        c.counts("counters", 0, index=slice(0, 2), what="decision and update counts")
        c.counts("counters", 0, n, index=slice(2, 3), what="the number of stored transitions")
        c.counts("counters", 0, n - 1, index=slice(3, 4), what="the write position")
        c.counts("counters", 0, index=slice(4, 5), what="the number of gradient steps")
        c.counts("buf_a", 0, self.n_actions - 1, what="stored actions")
        c.in_range("buf_d", 0.0, 1.0, what="episode-end flags")
        for k in c.arrays:
            if k.endswith("_step"):
                c.in_range(k, 0.0, what="optimiser steps")
            elif k.endswith("_exp_avg_sq"):
                c.in_range(k, 0.0, what="second moments")

    @property
    def n_inputs(self) -> int:
        """Width of the network's input: the context plus the Fourier features, if any."""
        return self.n_features + (0 if self.fourier_index is None else 2 * self.fourier_octaves)

    def _another_network(self):
        return make_mlp(self._torch, self.n_inputs, self.hidden, self.n_actions, self._gen, self._dev)

    def encode(self, contexts) -> np.ndarray:
        """(n, n_inputs) float32 network inputs of (n, n_features) contexts (the identity without Fourier)."""
        x = np.asarray(contexts, np.float32)
        if self.fourier_index is None:
            return x
        z = x[:, self.fourier_index, None] * self._freq
        return np.concatenate([x, 0.5 + 0.5 * np.sin(z), 0.5 + 0.5 * np.cos(z)], axis=1, dtype=np.float32)

    def _init_state(self) -> tuple:
        self._freq = (np.pi * 2.0 ** np.arange(self.fourier_octaves)).astype(np.float32)
        self._net = self._new_network()
        self._target = self._another_network()
        torch = self._torch
        self._target.load_state_dict(self._net.state_dict())
        self._params = list(self._net.parameters())
        self._opt = torch.optim.Adam(self._params, lr=self.lr)
        n, d = self.buffer_size, self.n_features
        self._bx = np.zeros((n, d), np.float32)
        self._bx2 = np.zeros((n, d), np.float32)
        self._ba = np.zeros(n, np.int64)
        self._br = np.zeros(n, np.float32)
        self._bd = np.zeros(n, np.float32)
        # counters: decisions, updates, stored, write pointer, gradient steps
        self._ctr = np.zeros(5, np.int64)
        self._last_loss = math.nan
        return ()

    # ------------------------------------------------------------------ acting
    @property
    def epsilon_(self) -> float:
        """Current exploration probability."""
        f = min(1.0, self._ctr[0] / self.exploration_steps)
        return float(self.epsilon_start + f * (self.epsilon_end - self.epsilon_start))

    def q_values(self, context) -> np.ndarray:
        """(n_actions,) Q-values of the online network for ``context``."""
        x = self._check_context(context)
        with self._torch.no_grad():
            if self.fourier_index is not None:
                x = self.encode(x[None])[0]
            t = self._torch.as_tensor(x, dtype=self._torch.float32, device=self._dev)
            return self._net(t[None])[0].cpu().numpy().astype(np.float64)

    def greedy_action(self, context) -> int:
        """argmax of :meth:`q_values` (lowest index on ties), without exploring or learning."""
        return int(np.argmax(self.q_values(context)))

    propensity_kind = "stochastic"

    def probs(self, context) -> np.ndarray:
        """(n_actions,) ε/K for every option plus 1 − ε for the greedy one (ε of the next decision)."""
        x = self._check_context(context)
        eps = self.epsilon_
        out = np.full(self.n_actions, eps / self.n_actions)
        out[self.greedy_action(x)] += 1.0 - eps
        return out

    def act(self, context) -> int:
        x = self._check_context(context)
        u = self._rng.random(2)
        eps = self.epsilon_
        self._ctr[0] += 1
        if u[0] < eps:
            return min(int(u[1] * self.n_actions), self.n_actions - 1)
        return self.greedy_action(x)

    # ------------------------------------------------------------------ learning
    def _store(self, x, a, r, x2, done) -> None:
        p = int(self._ctr[3])
        self._bx[p], self._ba[p], self._br[p], self._bd[p] = x, a, r, float(done)
        self._bx2[p] = x if x2 is None else x2
        self._ctr[3] = (p + 1) % self.buffer_size
        self._ctr[2] = min(self._ctr[2] + 1, self.buffer_size)

    def update(self, context, action, reward, *, rewards=None, next_context=None, done=True) -> Agent:
        if not isinstance(done, (bool, np.bool_)):
            raise ConfigError(f"done: {done!r} is not allowed; use True (episode ended) or False")
        x = self._check_context(context)
        a = self._check_action(action)
        r, rs = self._check_rewards(a, reward, rewards)
        if not done and next_context is None:
            raise ConfigError("next_context: required when done=False (the observation after the action)")
        x2 = None if next_context is None else self._check_context(next_context)
        if done:
            for k in range(self.n_actions):
                rk = r if (k == a and math.isnan(rs[k])) else rs[k]
                if not math.isnan(rk):
                    self._store(x, k, rk, None, True)
        elif not math.isnan(r):
            self._store(x, a, r, x2, False)
        self._ctr[1] += 1
        if self._ctr[1] >= self.learning_starts and self._ctr[1] % self.train_freq == 0 and self._ctr[2] > 0:
            self._train_step()
        return self

    def _train_step(self) -> None:
        torch = self._torch
        idx = self._rng.integers(0, int(self._ctr[2]), size=self.batch_size)
        dev = self._dev
        xb = torch.as_tensor(self.encode(self._bx[idx]), device=dev)
        x2 = torch.as_tensor(self.encode(self._bx2[idx]), device=dev)
        ab = torch.as_tensor(self._ba[idx], device=dev)
        rb = torch.as_tensor(self._br[idx], device=dev)
        db = torch.as_tensor(self._bd[idx], device=dev)
        with torch.no_grad():
            if self.double:
                a_star = self._net(x2).argmax(dim=1, keepdim=True)
                q2 = self._target(x2).gather(1, a_star).squeeze(1)
            else:
                q2 = self._target(x2).max(dim=1).values
            y = rb + self.gamma * (1.0 - db) * q2
        q = self._net(xb).gather(1, ab[:, None]).squeeze(1)
        loss = torch.nn.functional.smooth_l1_loss(q, y)
        self._opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._params, self.max_grad_norm)
        self._opt.step()
        self._last_loss = float(loss.detach())
        self._ctr[4] += 1
        if self._ctr[4] % self.target_update == 0:
            self._target.load_state_dict(self._net.state_dict())

    # ------------------------------------------------------------------ checkpoints (npz, no pickle)
    def _torch_state(self) -> dict[str, np.ndarray]:
        return {**module_arrays("net.", self._net), **module_arrays("target.", self._target),
                **adam_arrays("adam.", self._opt, self._params), "buf_x": self._bx, "buf_x2": self._bx2,
                "buf_a": self._ba, "buf_r": self._br, "buf_d": self._bd, "counters": self._ctr}

    def _load_torch_state(self, arrays) -> None:
        n, d = self.buffer_size, self.n_features
        bufs = (array_of(arrays, "buf_x", (n, d), np.float32), array_of(arrays, "buf_x2", (n, d), np.float32),
                array_of(arrays, "buf_a", (n,), np.int64), array_of(arrays, "buf_r", (n,), np.float32),
                array_of(arrays, "buf_d", (n,), np.float32), array_of(arrays, "counters", (5,), np.int64))
        load_module_arrays("net.", self._net, arrays)
        load_module_arrays("target.", self._target, arrays)
        load_adam_arrays("adam.", self._opt, self._params, arrays)
        self._bx, self._bx2, self._ba, self._br, self._bd, self._ctr = bufs
