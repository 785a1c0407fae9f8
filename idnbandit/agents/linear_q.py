"""Linear Q-learning: ``Q(x, a) = w_aᵀ φ(x)`` with polynomial or tile-coded features (numba).

Features ``φ`` are built from the context entries ``feature_indices`` (default: all):

* ``basis="poly"``: every monomial of total degree ``<= degree`` of those entries, the constant
  included (``C(n + degree, degree)`` features for ``n`` entries);
* ``basis="tile"``: ``n_tilings`` grids of ``tiles`` intervals per entry over [0, 1] (entries are
  clipped to [0, 1]), each offset by an asymmetric fraction of a tile (Sutton & Barto 2018, §9.5.4);
  ``n_tilings`` active binary features, plus a constant.

Semi-gradient Q-learning with a normalised step (NLMS; for tiles this is "α divided by the number
of active features", Sutton & Barto 2018, §9.5.4): ``w_a += α δ φ(x) / ‖φ(x)‖²`` with
``δ = r + γ max_b w_bᵀφ(x')·[not done] − w_aᵀφ(x)``. Multi-step use and the fused path (one-step
episodes, the bandit special case) follow :mod:`idnbandit.agents.qlearning`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit

from ..errors import ConfigError
from ._params import MAX_GRID, check_integer, check_real
from .qlearning import EpisodicAgent
from .registry import register

__all__ = ["LinearQ"]

BASES = ("poly", "tile")
MAX_TILE_DIMS = 4
MAX_DEGREE = 16  # polynomial degree: beyond it the features explode (C(n + degree, degree))
MAX_MONOMIALS = 100_000  # polynomial features (their exponents are enumerated in Python at construction)

# fcfg: epsilon, alpha, gamma, decay (NaN = none)
# icfg: basis (0 poly, 1 tile), n_tilings, tiles, t (updates so far)


@njit(cache=True)
def features_(icfg, idx, powers, offsets, x, ids, vals):
    """Active features of ``x``: fills ``ids`` / ``vals`` and returns how many are active."""
    if icfg[0] == 0:
        for j in range(powers.shape[0]):
            v = 1.0
            for i in range(idx.shape[0]):
                for _ in range(powers[j, i]):
                    v *= x[idx[i]]
            ids[j] = j
            vals[j] = v
        return powers.shape[0]
    n_til, tiles = icfg[1], icfg[2]
    side = tiles + 1
    per = side ** idx.shape[0]
    for t in range(n_til):
        flat = 0
        stride = 1
        for i in range(idx.shape[0]):
            v = x[idx[i]]
            v = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)
            c = int(math.floor(v * tiles + offsets[t, i]))
            c = side - 1 if c >= side else c
            flat += c * stride
            stride *= side
        ids[t] = t * per + flat
        vals[t] = 1.0
    ids[n_til] = n_til * per  # the constant
    vals[n_til] = 1.0
    return n_til + 1


@njit(cache=True)
def q_of(w, k, ids, vals, m):
    q = 0.0
    for j in range(m):
        q += w[k, ids[j]] * vals[j]
    return q


@njit(cache=True)
def nlms_step_(w, k, ids, vals, m, target, alpha):
    """``w_k += α (target − w_kᵀφ) φ / ‖φ‖²``."""
    norm = 0.0
    for j in range(m):
        norm += vals[j] * vals[j]
    if norm <= 0.0:
        return
    g = alpha * (target - q_of(w, k, ids, vals, m)) / norm
    for j in range(m):
        w[k, ids[j]] += g * vals[j]


@njit(cache=True)
def greedy_(w, ids, vals, m):
    best = 0
    best_q = q_of(w, 0, ids, vals, m)
    for k in range(1, w.shape[0]):
        q = q_of(w, k, ids, vals, m)
        if q > best_q:
            best_q = q
            best = k
    return best


@njit(cache=True)
def linear_q_select(state, x, u):
    """ε-greedy on ``w_aᵀφ(x)`` (lowest index on ties)."""
    fcfg, icfg, idx, powers, offsets, w, ids, vals, ids2, vals2 = state
    eps = fcfg[0]
    if fcfg[3] == fcfg[3]:
        eps = eps / (1.0 + fcfg[3] * icfg[3])
    n = w.shape[0]
    if u[0] < eps:
        a = int(u[1] * n)
        return a if a < n else n - 1
    m = features_(icfg, idx, powers, offsets, x, ids, vals)
    return greedy_(w, ids, vals, m)


@njit(cache=True)
def linear_q_prob(state, x, u, a):
    """Probability that :func:`linear_q_select` picks ``a`` (ε_t/K, plus 1 − ε_t for the greedy option)."""
    fcfg, icfg, idx, powers, offsets, w, ids, vals, ids2, vals2 = state
    eps = fcfg[0]
    if fcfg[3] == fcfg[3]:
        eps = eps / (1.0 + fcfg[3] * icfg[3])
    eps = min(eps, 1.0)
    m = features_(icfg, idx, powers, offsets, x, ids, vals)
    return eps / w.shape[0] + (1.0 - eps if a == greedy_(w, ids, vals, m) else 0.0)


@njit(cache=True)
def linear_q_update(state, x, a, r, rewards):
    """Terminal update ``w_k += α (r_k − w_kᵀφ) φ/‖φ‖²`` of every observed option (one-step episode)."""
    fcfg, icfg, idx, powers, offsets, w, ids, vals, ids2, vals2 = state
    icfg[3] += 1
    m = features_(icfg, idx, powers, offsets, x, ids, vals)
    for k in range(w.shape[0]):
        rk = rewards[k]
        if rk != rk and k == a:
            rk = r
        if rk == rk:
            nlms_step_(w, k, ids, vals, m, rk, fcfg[1])


@njit(cache=True)
def linear_q_learn_step(state, x, a, r, x_next):
    """Non-terminal step: target ``r + γ max_b w_bᵀφ(x')``."""
    fcfg, icfg, idx, powers, offsets, w, ids, vals, ids2, vals2 = state
    icfg[3] += 1
    if r != r:
        return
    m2 = features_(icfg, idx, powers, offsets, x_next, ids2, vals2)
    target = r + fcfg[2] * q_of(w, greedy_(w, ids2, vals2, m2), ids2, vals2, m2)
    m = features_(icfg, idx, powers, offsets, x, ids, vals)
    nlms_step_(w, a, ids, vals, m, target, fcfg[1])


@njit(cache=True)
def linear_q_values(state, x, out):
    fcfg, icfg, idx, powers, offsets, w, ids, vals, ids2, vals2 = state
    m = features_(icfg, idx, powers, offsets, x, ids2, vals2)
    for k in range(w.shape[0]):
        out[k] = q_of(w, k, ids2, vals2, m)


def poly_powers(n_inputs: int, degree: int) -> np.ndarray:
    """(n_monomials, n_inputs) exponents of every monomial of total degree <= ``degree``, constant first."""
    rows = [np.zeros(n_inputs, np.int64)]
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(n_inputs), deg):
            e = np.zeros(n_inputs, np.int64)
            for i in combo:
                e[i] += 1
            rows.append(e)
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_inputs)


def tile_offsets(n_tilings: int, n_inputs: int) -> np.ndarray:
    """(n_tilings, n_inputs) offsets in tiles: tiling ``t`` shifts input ``i`` by ``((2i+1)·t mod T) / T``."""
    t = np.arange(n_tilings)[:, None]
    i = np.arange(n_inputs)[None, :]
    return ((2 * i + 1) * t % n_tilings) / n_tilings


@register("linear-q", "linear Q-learning with polynomial or tile-coded features (semi-gradient, NLMS step)")
class LinearQ(EpisodicAgent):
    """Linear Q-learning with polynomial or tile-coded features and ε-greedy exploration.

    See the module docstring for the features and the update. Per step O(K·F) for F active features.

    Parameters
    ----------
    n_actions, n_features
        Number of actions and context length.
    basis
        ``"poly"`` or ``"tile"``.
    degree
        Polynomial degree (>= 1) for ``basis="poly"``.
    n_tilings, tiles
        Number of tilings (>= 1) and intervals per entry (>= 1) for ``basis="tile"``.
    feature_indices
        Context entries the features are built from (None: all; at most 4 for tiles).
    epsilon
        Exploration probability ε in [0, 1].
    alpha
        Normalised step size α in (0, 1].
    gamma
        Discount γ in [0, 1].
    decay
        ``None`` for a constant ε, or a rate ``c >= 0``: ``ε_t = ε / (1 + c·t)``.
    seed
        Seed of the agent's generator.

    Examples
    --------
    >>> agent = LinearQ(n_actions=2, n_features=2, basis="tile", n_tilings=4, tiles=8,
    ...                 feature_indices=(0,), seed=0)
    >>> rng = np.random.default_rng(0)
    >>> total = 0.0
    >>> for _ in range(3000):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     r = float(x[0] > 0.7) if a == 0 else 0.5
    ...     total += r
    ...     _ = agent.update(x, a, r)
    >>> print(round(total / 3000, 2))
    0.61

    References
    ----------
    R. S. Sutton, A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., MIT Press 2018,
    §9.5 (polynomial and tile coding), §10.1 (semi-gradient control).
    """

    n_uniforms = 2
    _prob_kernel = staticmethod(linear_q_prob)
    propensity_kind = "stochastic"
    _select_kernel = staticmethod(linear_q_select)
    _update_kernel = staticmethod(linear_q_update)
    _step_kernel = staticmethod(linear_q_learn_step)

    def __init__(self, n_actions: int, n_features: int, basis: str = "poly", degree: int = 2, n_tilings: int = 8,
                 tiles: int = 8, feature_indices=None, epsilon: float = 0.1, alpha: float = 0.1,
                 gamma: float = 0.99, decay: float | None = None, seed=None):
        self.basis = basis
        self.degree = degree
        self.n_tilings = n_tilings
        self.tiles = tiles
        self.feature_indices = tuple(feature_indices) if isinstance(feature_indices, (list, tuple, np.ndarray)) \
            else feature_indices  # anything else is refused by _check_params
        self.epsilon = epsilon
        self.alpha = alpha
        self.gamma = gamma
        self.decay = decay
        super().__init__(n_actions, n_features, seed)

    def _check_params(self) -> None:
        if self.basis not in BASES:
            raise ConfigError(f"basis: {self.basis!r} is not allowed; use one of {', '.join(BASES)}")
        check_integer("degree", self.degree, 1, MAX_DEGREE, why="the number of monomials grows as C(n + degree, degree)")
        check_integer("n_tilings", self.n_tilings, 1, MAX_GRID, why="each tiling costs memory and time per decision")
        check_integer("tiles", self.tiles, 1, MAX_GRID, why="the number of features grows as tiles^n")
        check_real("epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_real("alpha", self.alpha, lo=0.0, hi=1.0, lo_open=True)
        check_real("gamma", self.gamma, lo=0.0, hi=1.0)
        check_real("decay", self.decay, lo=0.0, optional=True)
        idx = self._indices()
        if not isinstance(idx, tuple) or not idx or len(idx) > self.n_features or any(
                isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in idx) or len(set(idx)) != len(idx) or any(
                isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_features
                for i in idx):
            raise ConfigError(f"feature_indices: {self.feature_indices!r} is not allowed; give distinct context "
                              f"indices in [0, {self.n_features}) or None")
        if self.basis == "tile" and len(idx) > MAX_TILE_DIMS:
            raise ConfigError(f"feature_indices: {len(idx)} entries for basis='tile'; tile coding grows as "
                              f"tiles^n, so choose at most {MAX_TILE_DIMS} (e.g. feature_indices=(0, 3))")
        if self.basis == "poly" and self.n_basis > MAX_MONOMIALS:
            raise ConfigError(f"degree: {self.degree} with {len(idx)} inputs gives {self.n_basis:,} polynomial features; "
                              f"at most {MAX_MONOMIALS:,} are allowed: use a smaller degree or fewer feature_indices")

    def _state_size(self) -> tuple[str, int]:
        what = "degree, feature_indices" if self.basis == "poly" else "n_tilings, tiles, feature_indices"
        return what + ", n_actions", (self.n_actions + 1) * self.n_basis + 64

    def _state_names(self) -> tuple[str, ...]:
        return ("epsilon, alpha, gamma, decay", "basis, n_tilings, tiles, updates", "feature indices",
                "monomial exponents", "tile offsets", "weights", "scratch", "scratch", "scratch", "scratch")

    def _check_state(self, c) -> None:
        c.config("s0", "s2", "s3", "s4")
        if not np.array_equal(c.arrays["s1"][:3], c.fresh["s1"][:3]):
            c.fail("s1", "does not match the agent's parameters (configuration arrays cannot change)")
        c.counts("s1", 0, index=slice(3, 4), what="the number of updates")
        c.finite("s5")

    def _indices(self) -> tuple:
        return tuple(range(self.n_features)) if self.feature_indices is None else self.feature_indices

    @property
    def n_basis(self) -> int:
        """Length of the feature vector φ."""
        n = len(self._indices())
        if self.basis == "poly":
            return math.comb(n + self.degree, self.degree)
        return self.n_tilings * (self.tiles + 1) ** n + 1

    def _init_state(self) -> tuple:
        idx = np.array(self._indices(), dtype=np.int64)
        n = idx.shape[0]
        decay = math.nan if self.decay is None else float(self.decay)
        fcfg = np.array([self.epsilon, self.alpha, self.gamma, decay], dtype=np.float64)
        icfg = np.array([BASES.index(self.basis), self.n_tilings, self.tiles, 0], dtype=np.int64)
        powers = poly_powers(n, self.degree) if self.basis == "poly" else np.zeros((1, n), np.int64)
        offsets = tile_offsets(self.n_tilings, n)
        n_active = powers.shape[0] if self.basis == "poly" else self.n_tilings + 1
        w = np.zeros((self.n_actions, self.n_basis))
        return (fcfg, icfg, idx, powers, offsets, w, np.zeros(n_active, np.int64), np.zeros(n_active),
                np.zeros(n_active, np.int64), np.zeros(n_active))

    def q_values(self, context) -> np.ndarray:
        """(n_actions,) current action values ``w_aᵀφ(context)``."""
        out = np.empty(self.n_actions)
        linear_q_values(self._state, self._check_context(context), out)
        return out

    def greedy_action(self, context) -> int:
        """argmax of :meth:`q_values` (lowest index on ties), without exploring or learning."""
        return int(np.argmax(self.q_values(context)))

    @property
    def coef_(self) -> np.ndarray:
        """(n_actions, n_basis) the weights (a copy)."""
        return self._state[5].copy()
