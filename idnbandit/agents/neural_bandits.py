"""NeuralUCB (Zhou, Li, Gu, ICML 2020) and NeuralTS (Zhang, Zhou, Li, Gu, ICLR 2021), diagonal version.

One MLP ``f(x; θ)`` with ``n_actions`` outputs (the options share the hidden layers); ``g_a`` is the
gradient of output ``a`` with respect to all parameters. The design matrix ``Z`` is kept diagonal
(``U``, as in the authors' ``learner_diag.py``): ``U ← λ·1``, and after each observed reward of option
``k``, ``U ← U + g_k ⊙ g_k``. The exploration width is ``σ_a = sqrt(Σ_j λ ν g_{a,j}² / U_j)``
(the form of the authors' code, uclaml/NeuralUCB ``learner_diag.py``). NeuralUCB plays ``argmax f_a + σ_a``; NeuralTS
samples ``r̃_a ~ N(f_a, σ_a²)`` and plays the argmax. TrainNN: ``train_steps`` SGD steps
(``lr``, weight decay λ) on mini-batches of ``batch_size`` drawn from the history of observed
``(x, k, r_k)``, squared loss on output ``k``; run after every update for the first ``dense_rounds``
updates, then every ``train_every`` updates (official schedule: every round for t < 2000, then every
100; mini-batches instead of single samples are our change, for speed).

Imported lazily: building either agent imports torch (``pip install 'idnbandit[torch]'``).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CheckpointError
from ._feedback import LEARNS_FROM_OWN_REWARD
from ._params import MAX_BATCH, MAX_FLOAT32, MAX_STEPS, check_integer, check_real
from ._torch_util import (
    TorchAgentMixin,
    array_of,
    check_device,
    check_hidden,
    load_module_arrays,
    mlp_size,
    module_arrays,
)
from .base import Agent
from .registry import register

__all__ = ["NeuralUCB", "NeuralTS"]


class _NeuralBandit(TorchAgentMixin, Agent):
    sample: bool = False  # NeuralTS samples, NeuralUCB adds the width
    feedback_modes = LEARNS_FROM_OWN_REWARD  # under label_on_forward both stay on the local option
    requires = "torch"  # the optional dependency (the shared tests skip the agent without it)

    def __init__(self, n_actions: int, n_features: int, hidden=(64,), ridge: float = 1e-3, nu: float = 0.1,
                 lr: float = 1e-2, train_steps: int = 50, batch_size: int = 32, dense_rounds: int = 200,
                 train_every: int = 20, buffer_size: int = 10000, device: str = "cpu", seed=None):
        self.hidden = check_hidden(hidden)
        self.ridge = ridge
        self.nu = nu
        self.lr = lr
        self.train_steps = train_steps
        self.batch_size = batch_size
        self.dense_rounds = dense_rounds
        self.train_every = train_every
        self.buffer_size = buffer_size
        self.device = device
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("ridge", self.ridge, lo=0.0, lo_open=True, hi=MAX_FLOAT32)
        check_real("nu", self.nu, lo=0.0, hi=MAX_FLOAT32)
        check_real("lr", self.lr, lo=0.0, lo_open=True, hi=MAX_FLOAT32)
        check_integer("train_steps", self.train_steps, 0, MAX_BATCH, why="SGD steps per training call")
        check_integer("batch_size", self.batch_size, 1, MAX_BATCH, why="a mini-batch is drawn per SGD step")
        check_integer("dense_rounds", self.dense_rounds, 0, MAX_STEPS)
        check_integer("train_every", self.train_every, 1, MAX_STEPS)
        check_integer("buffer_size", self.buffer_size, 1, MAX_STEPS)
        check_device(self.device)  # imports torch: DependencyNotInstalled names the extra

    def _init_state(self) -> tuple:
        self._net = self._new_network()
        torch = self._torch
        self._params = list(self._net.parameters())
        self._opt = torch.optim.SGD(self._params, lr=self.lr, weight_decay=self.ridge)
        p = sum(q.numel() for q in self._params)
        self._U = torch.full((p,), float(self.ridge), dtype=torch.float32, device=self._dev)
        n = self.buffer_size
        self._hx = np.zeros((n, self.n_features), np.float32)
        self._ha = np.zeros(n, np.int64)
        self._hr = np.zeros(n, np.float32)
        self._ctr = np.zeros(3, np.int64)  # updates, stored, write pointer
        return ()

    def _state_size(self) -> tuple[str, int]:
        p = mlp_size(self.n_features, self.hidden, self.n_actions)
        return "hidden, buffer_size, n_features, n_actions", 3 * p + int(self.buffer_size) * (self.n_features + 2)

    def _check_torch_state(self, c) -> None:
        n = int(self.buffer_size)
        c.in_range("U", 0.0, what="diagonal design matrix entries")
        if not (c.arrays["U"] > 0).all():
            c.fail("U", "the diagonal design matrix must be positive")
        c.counts("counters", 0, index=slice(0, 1), what="the number of updates")
        c.counts("counters", 0, n, index=slice(1, 2), what="the number of stored observations")
        c.counts("counters", 0, n - 1, index=slice(2, 3), what="the write position")
        c.counts("hist_a", 0, self.n_actions - 1, what="stored actions")

    @property
    def n_params(self) -> int:
        """Number of network parameters p (the length of each gradient g_a)."""
        return int(self._U.numel())

    # ------------------------------------------------------------------ scoring
    def _grads(self, x: np.ndarray, actions) -> tuple[np.ndarray, list]:
        """Outputs f(x) (n_actions,) and the flattened gradients g_a for ``actions``."""
        torch = self._torch
        t = torch.as_tensor(x, dtype=torch.float32, device=self._dev)[None]
        out = self._net(t)[0]
        gs = []
        for a in actions:
            g = torch.autograd.grad(out[a], self._params, retain_graph=True)
            gs.append(torch.cat([v.reshape(-1) for v in g]))
        return out.detach().cpu().numpy().astype(np.float64), gs

    def scores(self, context) -> tuple[np.ndarray, np.ndarray]:
        """(means f_a, widths σ_a) of every option for ``context``, each (n_actions,)."""
        x = self._check_context(context)
        f, gs = self._grads(x, range(self.n_actions))
        scale = float(self.ridge) * float(self.nu)
        sig = np.array([math.sqrt(max(float((scale * g * g / self._U).sum()), 0.0)) for g in gs])
        return f, sig

    def act(self, context) -> int:
        f, sig = self.scores(context)
        if self.sample:
            z = self._rng.standard_normal(self.n_actions)
            return int(np.argmax(f + sig * z))
        return int(np.argmax(f + sig))

    def greedy_action(self, context) -> int:
        """argmax of the network's means, without exploring or learning."""
        return int(np.argmax(self.scores(context)[0]))

    # ------------------------------------------------------------------ learning
    def update(self, context, action, reward, *, rewards=None) -> Agent:
        x = self._check_context(context)
        a = self._check_action(action)
        r, rs = self._check_rewards(a, reward, rewards)
        seen = [(k, r if (k == a and math.isnan(rs[k])) else float(rs[k])) for k in range(self.n_actions)]
        seen = [(k, v) for k, v in seen if not math.isnan(v)]
        if seen:
            _, gs = self._grads(x, [k for k, _ in seen])
            with self._torch.no_grad():
                for g in gs:
                    self._U += g * g
            for k, v in seen:
                p = int(self._ctr[2])
                self._hx[p], self._ha[p], self._hr[p] = x, k, v
                self._ctr[2] = (p + 1) % self.buffer_size
                self._ctr[1] = min(self._ctr[1] + 1, self.buffer_size)
        self._ctr[0] += 1
        t = int(self._ctr[0])
        if seen and (t <= self.dense_rounds or t % self.train_every == 0):
            self._train()
        return self

    def _train(self) -> None:
        torch = self._torch
        n = int(self._ctr[1])
        for _ in range(self.train_steps):
            idx = self._rng.integers(0, n, size=min(self.batch_size, n))
            xb = torch.as_tensor(self._hx[idx], device=self._dev)
            ab = torch.as_tensor(self._ha[idx], device=self._dev)
            rb = torch.as_tensor(self._hr[idx], device=self._dev)
            pred = self._net(xb).gather(1, ab[:, None]).squeeze(1)
            loss = ((pred - rb) ** 2).mean()
            self._opt.zero_grad()
            loss.backward()
            self._opt.step()

    # ------------------------------------------------------------------ checkpoints (npz, no pickle)
    def _torch_state(self) -> dict[str, np.ndarray]:
        return {**module_arrays("net.", self._net), "U": self._U.detach().cpu().numpy().copy(),
                "hist_x": self._hx, "hist_a": self._ha, "hist_r": self._hr, "counters": self._ctr}

    def _load_torch_state(self, arrays) -> None:
        n, d = self.buffer_size, self.n_features
        u = array_of(arrays, "U", (self.n_params,), np.float32)
        hist = (array_of(arrays, "hist_x", (n, d), np.float32), array_of(arrays, "hist_a", (n,), np.int64),
                array_of(arrays, "hist_r", (n,), np.float32), array_of(arrays, "counters", (3,), np.int64))
        load_module_arrays("net.", self._net, arrays)
        if not np.all(u > 0):
            raise CheckpointError("state array U: the diagonal design matrix must be positive")
        self._U = self._torch.as_tensor(u, device=self._dev)
        self._hx, self._ha, self._hr, self._ctr = hist


_PARAMS = """
    Parameters
    ----------
    n_actions, n_features
        Number of options and context length.
    hidden
        Hidden layer widths of f (official code: one layer of 100).
    ridge
        λ > 0: initial diagonal of U and SGD weight decay.
    nu
        ν >= 0: exploration scale (tune on a log grid, e.g. 1e-5 .. 1).
    lr
        SGD step size (> 0).
    train_steps, batch_size
        SGD steps per training call (>= 0) and mini-batch size (>= 1).
    dense_rounds, train_every
        Train after every update for the first ``dense_rounds`` updates, then every ``train_every``.
    buffer_size
        History kept for training (most recent observations).
    device
        torch device (``"cpu"`` default).
    seed
        Seed of the numpy generator (batches, NeuralTS samples) and of the torch generator (init)."""


@register("neural-ucb", "NeuralUCB (Zhou et al. 2020), diagonal approximation, torch")
class NeuralUCB(_NeuralBandit):
    __doc__ = """NeuralUCB with the diagonal approximation of the design matrix (module docstring).

    Plays ``argmax_a f(x; θ)_a + sqrt(Σ_j λ ν g_{a,j}² / U_j)``; ties go to the lowest index.
    """ + _PARAMS + """

    Examples
    --------
    >>> import numpy as np
    >>> agent = NeuralUCB(n_actions=2, n_features=2, hidden=(16,), nu=0.01, train_steps=10, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(400):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     _ = agent.update(x, a, x[0] if a == 0 else 0.5)   # serve locally iff confident
    >>> [agent.act([p, 1.0]) for p in (0.1, 0.3, 0.7, 0.9)]
    [1, 1, 0, 0]


    References
    ----------
    D. Zhou, L. Li, Q. Gu, "Neural Contextual Bandits with UCB-based Exploration", ICML 2020
    (arXiv:1911.04462), Algorithms 1–2; official code github.com/uclaml/NeuralUCB (``learner_diag.py``).
    """

    sample = False
    propensity_kind = "deterministic"


@register("neural-ts", "NeuralTS (Zhang et al. 2021), diagonal approximation, torch")
class NeuralTS(_NeuralBandit):
    __doc__ = """NeuralTS with the diagonal approximation of the design matrix (module docstring).

    Samples ``r̃_a ~ N(f(x; θ)_a, σ_a²)`` with ``σ_a² = Σ_j λ ν g_{a,j}² / U_j`` (one standard normal
    per option from the agent's generator) and plays the argmax.
    """ + _PARAMS + """

    Examples
    --------
    >>> import numpy as np
    >>> agent = NeuralTS(n_actions=2, n_features=2, hidden=(16,), nu=0.01, train_steps=10, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(400):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     _ = agent.update(x, a, x[0] if a == 0 else 0.5)   # serve locally iff confident
    >>> [agent.act([p, 1.0]) for p in (0.1, 0.3, 0.7, 0.9)]
    [1, 1, 0, 0]


    References
    ----------
    W. Zhang, D. Zhou, L. Li, Q. Gu, "Neural Thompson Sampling", ICLR 2021 (arXiv:2010.00827),
    Algorithm 1; official code github.com/ZeroWeight/NeuralTS (``learner_diag.py``).
    """

    sample = True
    propensity_kind = "stochastic"  # Gaussian scores: the probability of each argmax is an integral

    def probs(self, context) -> np.ndarray:
        """(n_actions,) probability that each option's sampled score N(f_a, σ_a²) is the largest."""
        from ._propensity import gaussian_argmax_probs

        f, sig = self.scores(context)
        return gaussian_argmax_probs(np.asarray(f, dtype=np.float64), np.asarray(sig, dtype=np.float64))
