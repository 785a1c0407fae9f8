"""Tabular Q-learning and SARSA(λ) over a discretised (confidence × hop × load) state.

State discretisation (shared by both agents)
--------------------------------------------
The tabular state of a context ``x`` is the triple

* confidence bin: the number of ``confidence_edges`` that are ``<= x[confidence_index]``
  (``len(confidence_edges) + 1`` bins; the default edges are dense near 1, where the local model's
  top probability of a real trace lives);
* hop bin: ``round(x[hop_index] · (hop_bins − 1))`` clipped to ``[0, hop_bins)`` — Cascade-v0's
  ``hop`` entry is ``stop / (n_stops − 1)``, so ``hop_bins = n_stops`` gives one bin per stop;
  ``hop_index=None`` (default) drops the dimension;
* load bin: the number of ``load_edges`` that are ``<= x[load_index]``; ``load_index=None``
  (default) drops the dimension.

Episodes and the update protocol
--------------------------------
On the fused path (``simulate()``, Offload-v0) every decision is a one-step episode: the kernel
``update(state, x, a, r, rewards)`` is the **terminal** update ``Q(s,k) += α_k (r_k − Q(s,k))`` for every
option ``k`` whose reward is observed (the bandit special case of Q-learning; NaN = nothing observed).
Multi-step environments (Cascade-v0, Ensemble-v0) pass the next observation:
``update(x, a, r, next_context=x2, done=False)`` bootstraps from ``x2``. We extend ``update`` with
keyword arguments rather than adding a separate ``learn_step`` method, so that one loop drives
bandits and RL agents alike, ``update_many`` and the fused kernels keep their meaning (``done=True``
is the default, which *is* the bandit update), and a caller can ask ``agent.episodic`` whether the
agent uses ``next_context`` at all (base.py documents the flag).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ._params import MAX_GRID, check_integer, check_real, show
from ._tabular_kernels import (
    DEFAULT_CONFIDENCE_EDGES,
    FH,
    IH,
    q_learn_step,
    q_select,
    q_update,
    sarsa_learn_step,
    sarsa_select,
    sarsa_update,
    tabular_prob,
    tabular_state,
)
from .base import Agent
from .registry import register

__all__ = ["QLearning", "SarsaLambda", "EpisodicAgent", "DEFAULT_CONFIDENCE_EDGES"]


def _check_edges(name: str, edges) -> tuple[float, ...]:
    if not isinstance(edges, (list, tuple, np.ndarray)) or len(edges) > MAX_GRID:
        raise ConfigError(f"{name}: {show(edges)} is not allowed; give a strictly increasing list of at most "
                          f"{MAX_GRID:,} finite numbers")
    try:
        e = tuple(float(v) for v in edges)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}: {show(edges)} is not allowed; give a sorted list of finite numbers") from None
    if not all(math.isfinite(v) for v in e) or any(b <= a for a, b in zip(e, e[1:])):
        raise ConfigError(f"{name}: {show(edges)} is not allowed; give a strictly increasing list of finite numbers")
    return e


def _check_index(name: str, v, n_features: int, optional: bool) -> None:
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n_features:
        raise ConfigError(f"{name}: {v!r} is not allowed; it must be a context index in [0, {n_features})"
                          + (" or None" if optional else ""))


class EpisodicAgent(Agent):
    """An agent whose ``update`` also learns from multi-step episodes (``episodic = True``).

    ``update(context, action, reward, *, rewards=None, next_context=None, done=True)``: with
    ``done=True`` (default) the step ends the episode and the agent's fused-path update kernel runs
    (the bandit special case); with ``done=False`` ``next_context`` is required and the agent
    bootstraps from it (``rewards`` is then ignored: other options' one-step rewards do not describe
    a continuing episode).
    """

    episodic = True
    _step_kernel = None  # njit (state, x, a, r, x_next) -> None

    def update(self, context, action, reward, *, rewards=None, next_context=None, done=True) -> Agent:
        if not isinstance(done, (bool, np.bool_)):
            raise ConfigError(f"done: {done!r} is not allowed; use True (episode ended) or False")
        if done:
            if next_context is not None:
                self._check_context(next_context)
            return super().update(context, action, reward, rewards=rewards)
        if next_context is None:
            raise ConfigError("next_context: required when done=False (the observation after the action)")
        x = self._check_context(context)
        a = self._check_action(action)
        r, _ = self._check_rewards(a, reward, rewards)
        self._learn_step(x, a, r, self._check_context(next_context))
        return self

    def _learn_step(self, x, a, r, x_next) -> None:
        self._step_kernel(self._state, x, a, r, x_next)


class _Tabular(EpisodicAgent):
    n_uniforms = 2
    _prob_kernel = staticmethod(tabular_prob)
    propensity_kind = "stochastic"

    def __init__(self, n_actions: int, n_features: int, epsilon: float = 0.1, alpha: float = 0.1,
                 gamma: float = 0.99, visit_power: float = 0.0, decay: float | None = None,
                 confidence_index: int = 0, confidence_edges=DEFAULT_CONFIDENCE_EDGES,
                 hop_index: int | None = None, hop_bins: int = 4, load_index: int | None = None,
                 load_edges=(0.05, 0.2, 1.0), q_init: float = 0.0, seed=None):
        self.epsilon = epsilon
        self.alpha = alpha
        self.gamma = gamma
        self.visit_power = visit_power
        self.decay = decay
        self.confidence_index = confidence_index
        self.confidence_edges = _check_edges("confidence_edges", confidence_edges)
        self.hop_index = hop_index
        self.hop_bins = hop_bins
        self.load_index = load_index
        self.load_edges = _check_edges("load_edges", load_edges)
        self.q_init = q_init
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        check_real("epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_real("alpha", self.alpha, lo=0.0, hi=1.0, lo_open=True)
        check_real("gamma", self.gamma, lo=0.0, hi=1.0)
        check_real("visit_power", self.visit_power, lo=0.0, hi=1.0)
        check_real("decay", self.decay, lo=0.0, optional=True)
        check_real("q_init", self.q_init)
        check_integer("hop_bins", self.hop_bins, 1, MAX_GRID, why="each bin multiplies the Q table")
        _check_index("confidence_index", self.confidence_index, self.n_features, False)
        _check_index("hop_index", self.hop_index, self.n_features, True)
        _check_index("load_index", self.load_index, self.n_features, True)

    @property
    def n_states(self) -> int:
        """Number of tabular states: confidence bins × hop bins × load bins."""
        hb = self.hop_bins if self.hop_index is not None else 1
        lb = len(self.load_edges) + 1 if self.load_index is not None else 1
        return (len(self.confidence_edges) + 1) * hb * lb

    def _build_state(self, trace_cap: int = 0) -> tuple:
        decay = math.nan if self.decay is None else float(self.decay)
        lam = float(getattr(self, "lam", 0.0))
        nce, nle = len(self.confidence_edges), len(self.load_edges)
        nsa = self.n_states * self.n_actions
        fb = np.zeros(FH + nce + nle + nsa + trace_cap)
        fb[:6] = (self.epsilon, self.alpha, self.gamma, self.visit_power, decay, lam)
        fb[FH:FH + nce] = self.confidence_edges
        fb[FH + nce:FH + nce + nle] = self.load_edges
        fb[FH + nce + nle:FH + nce + nle + nsa] = float(self.q_init)
        ib = np.zeros(IH + nsa + trace_cap, dtype=np.int64)
        ib[:10] = (self.confidence_index, -1 if self.hop_index is None else self.hop_index,
                   self.hop_bins if self.hop_index is not None else 1,
                   -1 if self.load_index is None else self.load_index,
                   len(self.load_edges) + 1 if self.load_index is not None else 1, 0, nce, nle, self.n_states,
                   self.n_actions)
        return fb, ib

    def _init_state(self) -> tuple:
        return self._build_state()

    def _state_size(self) -> tuple[str, int]:
        n = self.n_states * self.n_actions
        return "confidence_edges, hop_bins, load_edges, n_actions", 4 * n + 64

    def _state_names(self) -> tuple[str, ...]:
        return ("configuration, edges, Q values, traces", "configuration, counters, visits, trace indices")

    def _check_state(self, c) -> None:
        fb, ib = c.arrays["s0"], c.arrays["s1"]
        fb0, ib0 = c.fresh["s0"], c.fresh["s1"]
        nsa = self.n_states * self.n_actions
        head_f = FH + len(self.confidence_edges) + len(self.load_edges)
        cfg_f = np.r_[0:6, FH:head_f]
        if not np.array_equal(fb[cfg_f], fb0[cfg_f], equal_nan=True):
            c.fail("s0", "configuration entries do not match the agent's parameters")
        cfg_i = np.r_[0:5, 6:10]
        if not np.array_equal(ib[cfg_i], ib0[cfg_i]):
            c.fail("s1", "configuration entries do not match the agent's parameters")
        c.finite("s0", index=slice(head_f, None))
        c.not_inf("s0", index=slice(6, 8))
        c.counts("s1", 0, index=slice(5, 6), what="the number of updates")
        c.counts("s1", 0, 1, index=slice(10, 11), what="the pending flag")
        c.counts("s1", 0, self.n_states - 1, index=slice(11, 12), what="the pending state")
        c.counts("s1", 0, self.n_actions - 1, index=slice(12, 13), what="the pending action")
        cap = ib.shape[0] - IH - nsa
        c.counts("s1", 0, cap, index=slice(13, 14), what="the number of traces")
        c.counts("s1", 0, index=slice(IH, IH + nsa), what="visit counts")
        n_tr = int(ib[13])
        c.counts("s1", 0, nsa - 1, index=slice(IH + nsa, IH + nsa + n_tr), what="trace indices")

    def state_of(self, context) -> int:
        """Tabular state index of ``context``."""
        return int(tabular_state(self._state, self._check_context(context)))

    def q_values(self, context) -> np.ndarray:
        """(n_actions,) current action values of ``context``'s state (a copy)."""
        return self.q_table_[self.state_of(context)]

    def greedy_action(self, context) -> int:
        """argmax of :meth:`q_values` (lowest index on ties), without exploring or learning."""
        return int(np.argmax(self.q_values(context)))

    @property
    def q_table_(self) -> np.ndarray:
        """(n_states, n_actions) the action-value table (a copy)."""
        o = FH + len(self.confidence_edges) + len(self.load_edges)
        nsa = self.n_states * self.n_actions
        return self._state[0][o:o + nsa].reshape(self.n_states, self.n_actions).copy()

    @property
    def visits_(self) -> np.ndarray:
        """(n_states, n_actions) update counts N(s, a) (a copy)."""
        nsa = self.n_states * self.n_actions
        return self._state[1][IH:IH + nsa].reshape(self.n_states, self.n_actions).copy()


_TABULAR_PARAMS = """
    Parameters
    ----------
    n_actions, n_features
        Number of actions and context length.
    epsilon
        Exploration probability ε in [0, 1] (ε-greedy; two uniforms per decision).
    alpha
        Step size α in (0, 1].
    gamma
        Discount γ in [0, 1] of the bootstrap (unused by one-step episodes).
    visit_power
        ``p`` in [0, 1]: step size ``max(α, N(s,a)^-p)`` (0: constant α; 1: sample means floored at α).
    decay
        ``None`` for a constant ε, or a rate ``c >= 0``: ``ε_t = ε / (1 + c·t)``, t = updates so far.
    confidence_index, confidence_edges
        Context index of the confidence feature and its bin edges (strictly increasing).
    hop_index, hop_bins
        Context index of the hop feature in [0, 1] (None: no hop dimension) and its number of bins.
    load_index, load_edges
        Context index of a load feature (None: no load dimension) and its bin edges.
    q_init
        Initial action value (optimistic values explore).
    seed
        Seed of the agent's generator."""


@register("qlearning", "tabular Q-learning over discretised confidence x hop x load states (Watkins 1992)")
class QLearning(_Tabular):
    __doc__ = """Tabular Q-learning (Watkins & Dayan 1992) with ε-greedy exploration.

    ``Q(s,a) += α (r + γ max_b Q(s',b)·[not done] − Q(s,a))`` over the states of the module docstring;
    ties go to the lowest action. Per step O(K). In the fused loop each decision is a one-step
    episode, so the update is the bandit special case ``Q(s,a) += α (r − Q(s,a))`` (every observed
    option is updated).
    """ + _TABULAR_PARAMS + """

    Examples
    --------
    >>> agent = QLearning(n_actions=2, n_features=2, epsilon=0.1, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> total = 0.0
    >>> for _ in range(2000):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     r = float(x[0] > 0.7) if a == 0 else 0.5   # serve locally iff confident
    ...     total += r
    ...     _ = agent.update(x, a, r)
    >>> print(round(total / 2000, 2))
    0.6

    References
    ----------
    C. J. C. H. Watkins, P. Dayan, "Q-learning", Machine Learning 8:279–292, 1992.
    """

    _select_kernel = staticmethod(q_select)
    _update_kernel = staticmethod(q_update)
    _step_kernel = staticmethod(q_learn_step)


@register("sarsa-lambda", "tabular SARSA(lambda) with replacing traces over discretised states (Sutton & Barto 12.7)")
class SarsaLambda(_Tabular):
    __doc__ = """Tabular SARSA(λ) with replacing eligibility traces (Sutton & Barto 2018, §12.7).

    ``δ = r + γ Q(s',a')·[not done] − Q(s,a)``; ``E(s,·) ← 0, E(s,a) ← 1``; ``Q += α δ E``;
    ``E ← γλE``, with traces below 1e-4 dropped (a sparse list). SARSA is on-policy: ``a'`` is the
    action actually taken at ``s'``, so after ``update(..., done=False)`` the δ is completed by the
    next :meth:`act` (call ``act(next_context)`` next, as every env loop does). In the fused loop every
    decision is a one-step episode and the update is ``Q(s,a) += α (r − Q(s,a))``.
    """ + _TABULAR_PARAMS + """
    lam
        Trace decay λ in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> agent = SarsaLambda(n_actions=2, n_features=2, epsilon=0.1, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> total = 0.0
    >>> for _ in range(2000):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     r = float(x[0] > 0.7) if a == 0 else 0.5   # serve locally iff confident
    ...     total += r
    ...     _ = agent.update(x, a, r)                   # one-step episodes (done=True)
    >>> print(round(total / 2000, 2))
    0.6

    References
    ----------
    R. S. Sutton, A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., MIT Press 2018,
    §6.4 (Sarsa) and §12.7 (Sarsa(λ)).
    """

    _select_kernel = staticmethod(sarsa_select)
    _update_kernel = staticmethod(sarsa_update)
    _step_kernel = staticmethod(sarsa_learn_step)

    def __init__(self, n_actions: int, n_features: int, epsilon: float = 0.1, alpha: float = 0.1,
                 gamma: float = 0.99, lam: float = 0.9, visit_power: float = 0.0, decay: float | None = None,
                 confidence_index: int = 0, confidence_edges=DEFAULT_CONFIDENCE_EDGES,
                 hop_index: int | None = None, hop_bins: int = 4, load_index: int | None = None,
                 load_edges=(0.05, 0.2, 1.0), q_init: float = 0.0, seed=None):
        self.lam = lam
        super().__init__(n_actions, n_features, epsilon, alpha, gamma, visit_power, decay, confidence_index,
                         confidence_edges, hop_index, hop_bins, load_index, load_edges, q_init, seed)

    def _check_params(self) -> None:
        super()._check_params()
        check_real("lam", self.lam, lo=0.0, hi=1.0)

    def _init_state(self) -> tuple:
        return self._build_state(trace_cap=self.n_states * self.n_actions + 1)
