"""Reward models q̂(x, a) for the direct method and doubly robust estimators, fitted by streaming.

:class:`RidgeRewardModel` fits one ridge regression per option on ``[x, 1]`` from the rows where that
option was logged and its reward observed. It needs one pass over the log and memory
O(folds · K · d²), whatever the log's length: each chunk adds to per-fold sufficient statistics
(``Σ φφᵀ``, ``Σ φ r``). With ``n_folds >= 2`` it is *cross-fitted*: the prediction for a row comes
from the model fitted on the other folds, so a row's own reward never enters its own q̂ — the
condition under which doubly robust estimators keep their guarantees with a flexible model
(Chernozhukov et al. 2018, "Double/debiased machine learning").

:class:`SklearnRewardModel` wraps any scikit-learn regressor (one clone per option and fold); it
holds the log in memory.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["RidgeRewardModel", "SklearnRewardModel", "fold_of"]


def fold_of(request: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold of each row from its request id (a splitmix64 hash, so ids in any pattern spread evenly)."""
    z = request.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_folds)).astype(np.int64)


def _check(name: str, v, lo, hi, integer: bool):
    ok = not isinstance(v, bool) and isinstance(v, (int, np.integer) if integer else (int, float, np.number))
    if not ok or not (lo <= v <= hi) or v != v:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}: {v!r} is not allowed; it must be {kind} in [{lo}, {hi}]")


class RidgeRewardModel:
    """Per-option ridge regression of the reward on ``[x, 1]``, cross-fitted over ``n_folds``.

    Parameters
    ----------
    l2
        Ridge penalty, in (0, 1e6].
    n_folds
        1 (no cross-fitting) to 20.

    Examples
    --------
    >>> import numpy as np
    >>> m = RidgeRewardModel(n_options=2, n_features=1, l2=1e-6, n_folds=1)
    >>> x = np.array([[0.0], [1.0], [0.0], [1.0]])
    >>> m.partial_fit(np.arange(4), x, np.array([0, 0, 1, 1]), np.array([1.0, 3.0, 0.0, 0.0]))
    >>> m.finish()
    >>> np.round(m.predict(np.arange(1), np.array([[0.5]])), 3).tolist()
    [[2.0, 0.0]]
    """

    def __init__(self, n_options: int, n_features: int, *, l2: float = 1.0, n_folds: int = 2):
        _check("l2", l2, 1e-12, 1e6, integer=False)
        if l2 <= 0:
            raise ConfigError(f"l2: {l2!r} is not allowed; it must be a number in (0, 1e6]")
        _check("n_folds", n_folds, 1, 20, integer=True)
        size = n_folds * n_options * (n_features + 1) ** 2
        if size > 2**27:
            raise ConfigError(f"reward model: {n_folds} folds x {n_options} options x ({n_features}+1)^2 = {size} "
                              f"numbers; at most 2**27 fit in memory; use fewer folds or a smaller context")
        self.n_options, self.n_features, self.l2, self.n_folds = n_options, n_features, float(l2), int(n_folds)
        p = n_features + 1
        self._A = np.zeros((n_folds, n_options, p, p))
        self._b = np.zeros((n_folds, n_options, p))
        self._count = np.zeros((n_folds, n_options), dtype=np.int64)
        self._theta: np.ndarray | None = None

    def partial_fit(self, request: np.ndarray, x: np.ndarray, action: np.ndarray, reward: np.ndarray) -> None:
        """Add rows (only rows with a finite reward count)."""
        keep = np.isfinite(reward)
        phi = np.column_stack([x[keep], np.ones(int(keep.sum()))])
        fold = fold_of(request[keep], self.n_folds)
        a, r = action[keep], reward[keep]
        cell = fold * self.n_options + a
        order = np.argsort(cell, kind="stable")
        cells, starts = np.unique(cell[order], return_index=True)
        bounds = list(starts[1:]) + [order.shape[0]]
        for c, s, e in zip(cells, starts, bounds):
            rows = order[s:e]
            f, k = divmod(int(c), self.n_options)
            P = phi[rows]
            self._A[f, k] += P.T @ P
            self._b[f, k] += P.T @ r[rows]
            self._count[f, k] += rows.shape[0]
        self._theta = None

    def finish(self) -> None:
        """Solve the ridge systems (one per fold and option) from the statistics gathered so far."""
        p = self.n_features + 1
        theta = np.zeros((self.n_folds, self.n_options, p))
        folds = np.arange(self.n_folds)
        for f in range(self.n_folds):
            others = folds != f if self.n_folds > 1 else folds == f  # summed, not subtracted: exact
            A, b = self._A[others].sum(axis=0), self._b[others].sum(axis=0)
            theta[f] = np.linalg.solve(A + self.l2 * np.eye(p), b[..., None])[..., 0]
        self._theta = theta

    @property
    def counts(self) -> np.ndarray:
        """(K,) rows each option's model was fitted on."""
        return self._count.sum(axis=0)

    def predict(self, request: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(n, K) predicted reward of every option for each row (from the other folds' model)."""
        if self._theta is None:
            self.finish()
        phi = np.column_stack([x, np.ones(x.shape[0])])
        fold = fold_of(request, self.n_folds)
        q = np.einsum("nj,nkj->nk", phi, self._theta[fold])
        return q


class SklearnRewardModel:
    """Any scikit-learn regressor as the reward model: one clone per option (and per fold).

    Holds the rows in memory until :meth:`finish`. ``estimator`` must implement ``fit`` and
    ``predict`` (``sklearn.base.clone`` copies it).
    """

    def __init__(self, estimator, n_options: int, n_features: int, *, n_folds: int = 2):
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
            raise ConfigError(f"reward_model: {estimator!r} has no fit/predict; pass 'ridge' or a scikit-learn "
                              "regressor")
        _check("n_folds", n_folds, 1, 20, integer=True)
        self.estimator, self.n_options, self.n_features, self.n_folds = estimator, n_options, n_features, n_folds
        self._rows: list[tuple] = []
        self._models: dict | None = None

    def partial_fit(self, request, x, action, reward) -> None:
        keep = np.isfinite(reward)
        self._rows.append((request[keep], x[keep], action[keep], reward[keep]))
        self._models = None

    def finish(self) -> None:
        from sklearn.base import clone

        req = np.concatenate([r[0] for r in self._rows]) if self._rows else np.zeros(0, np.int64)
        x = np.concatenate([r[1] for r in self._rows]) if self._rows else np.zeros((0, self.n_features))
        a = np.concatenate([r[2] for r in self._rows]) if self._rows else np.zeros(0, np.int64)
        y = np.concatenate([r[3] for r in self._rows]) if self._rows else np.zeros(0)
        fold = fold_of(req, self.n_folds)
        models = {}
        for f in range(self.n_folds):
            train = (fold != f) if self.n_folds > 1 else np.ones(fold.shape, bool)
            for k in range(self.n_options):
                rows = train & (a == k)
                if rows.sum() < 2:
                    models[f, k] = float(y[rows].mean()) if rows.any() else 0.0
                else:
                    models[f, k] = clone(self.estimator).fit(x[rows], y[rows])
        self._models = models
        self._rows = []

    def predict(self, request, x) -> np.ndarray:
        if self._models is None:
            self.finish()
        fold = fold_of(request, self.n_folds)
        q = np.zeros((x.shape[0], self.n_options))
        for f in range(self.n_folds):
            rows = fold == f
            if not rows.any():
                continue
            for k in range(self.n_options):
                m = self._models[f, k]
                q[rows, k] = m if isinstance(m, float) else m.predict(x[rows])
        return q
