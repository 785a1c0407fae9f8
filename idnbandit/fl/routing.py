"""Routing rates of a delivery strategy and the importance weights they induce (numpy only).

Delivery-aware training weights each training sample, for the model hosted at target ``t``, by the
probability that the current delivery strategy routes *such* a sample to ``t``. "Such" is a key
the training side can compute without the strategy: the confidence bin of the device model's
answer (hard inputs have low confidence and are forwarded), or the true class.

The rates are estimated from a simulation with the current policy (``idnbandit.fl.loop``):
every simulated request contributes its key and the target that served it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["RoutingTable", "confidence_keys", "estimate_routing", "importance_weights", "KEY_KINDS"]

KEY_KINDS = ("confidence", "class")


def confidence_keys(max_prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index in ``[0, n_bins)`` of each max class probability (equal-width bins on [0, 1]).

    Examples
    --------
    >>> confidence_keys(np.array([0.05, 0.5, 0.99, 1.0]), 4).tolist()
    [0, 2, 3, 3]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins: {n_bins!r} is not allowed; it must be a positive integer")
    p = np.asarray(max_prob, dtype=np.float64)
    return np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)


@dataclass(frozen=True)
class RoutingTable:
    """Smoothed rates ``P(served by target t | key k)`` of one delivery strategy.

    Attributes
    ----------
    targets
        Target names (e.g. the tier levels ``device``, ``edge``, ...), one per row.
    kind
        ``"confidence"`` (keys are confidence bins of the device model) or ``"class"`` (true label).
    rates
        (T, K) float64; each column sums to 1 and every entry is > 0 (add-``prior`` smoothing).
    counts
        (T, K) int64 raw counts of simulated requests.
    """

    targets: tuple[str, ...]
    kind: str
    rates: np.ndarray
    counts: np.ndarray

    def __post_init__(self):
        if self.kind not in KEY_KINDS:
            raise ConfigError(f"kind: {self.kind!r} is not allowed; use one of {', '.join(KEY_KINDS)}")
        if self.rates.shape != (len(self.targets), self.counts.shape[1]):
            raise ConfigError(f"rates: shape {self.rates.shape} does not match {len(self.targets)} targets")

    @property
    def n_keys(self) -> int:
        return self.rates.shape[1]

    def serving_rates(self) -> np.ndarray:
        """(T,) fraction of all simulated requests served by each target."""
        tot = self.counts.sum()
        return self.counts.sum(axis=1) / tot if tot else np.full(len(self.targets), 1 / len(self.targets))

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"targets": list(self.targets), "kind": self.kind, "rates": self.rates.tolist(),
                "counts": self.counts.tolist(), "serving_rates": self.serving_rates().tolist()}


def estimate_routing(keys: np.ndarray, served_by: np.ndarray, targets, n_keys: int, kind: str = "confidence",
                     prior: float = 1.0) -> RoutingTable:
    """Rates ``P(target | key)`` from simulated requests, with add-``prior`` smoothing.

    ``rates[t, k] = (count[t, k] + prior / T) / (count[k] + prior)``: positive everywhere, each
    column sums to 1, and a key never seen falls back to the uniform ``1 / T``.

    Parameters
    ----------
    keys
        (R,) int key of each simulated request, in ``[0, n_keys)``.
    served_by
        (R,) int index of the target that served it, in ``[0, len(targets))``.
    targets
        Target names.
    n_keys
        Number of keys (confidence bins or classes).
    kind
        What a key is (see :data:`KEY_KINDS`).
    prior
        Pseudo-count (> 0) spread uniformly over the targets.

    Returns
    -------
    RoutingTable
    """
    targets = tuple(str(t) for t in targets)
    keys = np.asarray(keys, dtype=np.int64)
    served_by = np.asarray(served_by, dtype=np.int64)
    if keys.shape != served_by.shape or keys.ndim != 1:
        raise ConfigError(f"keys, served_by: shapes {keys.shape} and {served_by.shape} must be equal and 1-D")
    if not prior > 0:
        raise ConfigError(f"prior: {prior!r} is not allowed; it must be > 0")
    t = len(targets)
    if len(keys) and (keys.min() < 0 or keys.max() >= n_keys or served_by.min() < 0 or served_by.max() >= t):
        raise ConfigError(f"keys / served_by: values out of range [0, {n_keys}) / [0, {t})")
    counts = np.zeros((t, n_keys), dtype=np.int64)
    np.add.at(counts, (served_by, keys), 1)
    rates = (counts + prior / t) / (counts.sum(axis=0, keepdims=True) + prior)
    return RoutingTable(targets, kind, rates, counts)


def importance_weights(keys: np.ndarray, rate_of_key: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Importance weights of training samples for one target, positive and summing to 1.

    ``w_i ∝ rate_of_key[keys[i]] + floor``: the probability that a sample like ``i`` is served by
    the target, plus a floor so that no sample is dropped entirely (a sample the strategy never
    routes to the target today may be routed there once the model improves).

    Parameters
    ----------
    keys
        (N,) int key of each training sample.
    rate_of_key
        (K,) routing rate of each key to this target (a row of :attr:`RoutingTable.rates`).
    floor
        Non-negative floor added to every rate.

    Returns
    -------
    (N,) float64, all > 0, summing to 1.

    Examples
    --------
    >>> importance_weights(np.array([0, 1, 1]), np.array([0.5, 0.0]), floor=0.25).round(3).tolist()
    [0.6, 0.2, 0.2]
    """
    rate = np.asarray(rate_of_key, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.int64)
    if not np.isfinite(floor) or floor < 0:
        raise ConfigError(f"floor: {floor!r} is not allowed; it must be >= 0")
    if (rate < 0).any() or not np.isfinite(rate).all():
        raise ConfigError("rate_of_key: rates must be finite and >= 0")
    if len(keys) == 0:
        raise ConfigError("keys: need at least one training sample")
    w = rate[keys] + floor
    if not (w > 0).all():
        raise ConfigError("rate_of_key: some samples get weight 0; use floor > 0 or smoothed rates")
    return w / w.sum()
