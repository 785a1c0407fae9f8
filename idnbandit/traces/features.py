"""Confidence features of model outputs, temperature scaling and calibration error.

Everything here is vectorised numpy over the last axis (the classes), so one call handles a single
row ``(C,)``, one model ``(N, C)`` or a whole trace ``(M, N, C)``. The simulator precomputes these
features once per trace column, so no per-sample kernel is needed.

Temperature scaling rescales a probability vector ``p`` as ``softmax(log(p) / T)`` (the same as
dividing the logits by ``T`` when ``p`` came from a softmax): ``T > 1`` softens over-confident
outputs, ``T < 1`` sharpens under-confident ones; the predicted class never changes.

References
----------
Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017 (temperature
scaling; expected calibration error with 15 equal-width bins).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, TraceError

__all__ = [
    "ConfidenceFeatures",
    "confidence_features",
    "feature_matrix",
    "apply_temperature",
    "fit_temperature",
    "nll",
    "ece",
    "FEATURE_NAMES",
]

#: names of the columns of :func:`feature_matrix`, in order
FEATURE_NAMES = ("max_prob", "margin", "entropy")

_LOG_FLOOR = 1e-12  # probabilities below this are treated as this in logarithms


class ConfidenceFeatures(NamedTuple):
    """Confidence features of each probability row; every field has shape ``probs.shape[:-1]``."""

    max_prob: np.ndarray
    """float64 largest class probability, in [1/C, 1]."""
    margin: np.ndarray
    """float64 largest minus second-largest probability, in [0, 1]."""
    entropy: np.ndarray
    """float64 Shannon entropy divided by ln C, in [0, 1] (0 = one-hot, 1 = uniform)."""
    predicted: np.ndarray
    """int64 predicted class (argmax; the lowest index on ties)."""


def _as_probs(probs, name: str = "probs") -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise TraceError(f"{name}: expected (..., C) probabilities with C >= 2 classes, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise TraceError(f"{name}: contains NaN or inf")
    return p


def _as_labels(labels, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if not np.issubdtype(y.dtype, np.integer):
        raise TraceError(f"labels: dtype {y.dtype} is not integer")
    if y.shape != shape[-1:]:
        raise TraceError(f"labels: expected shape {shape[-1:]} to match probs {shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise TraceError(f"labels: values must lie in [0, {n_classes}); got min {y.min()}, max {y.max()}")
    return y.astype(np.int64)


def confidence_features(probs, temperature: float = 1.0) -> ConfidenceFeatures:
    """Max probability, margin, normalised entropy and predicted class of each row of ``probs``.

    Parameters
    ----------
    probs
        (..., C) class probabilities (rows sum to 1), e.g. (N, C) for one model or (M, N, C).
    temperature
        Rescale with :func:`apply_temperature` first (1 = use ``probs`` as they are).

    Returns
    -------
    ConfidenceFeatures
        Named tuple of arrays of shape ``probs.shape[:-1]``.

    Raises
    ------
    TraceError
        If ``probs`` has fewer than 2 classes or holds NaN/inf.
    ConfigError
        If ``temperature`` is not a positive finite number.

    Examples
    --------
    >>> f = confidence_features([0.7, 0.2, 0.1])
    >>> round(float(f.max_prob), 3), round(float(f.margin), 3), int(f.predicted)
    (0.7, 0.5, 0)
    """
    p = _as_probs(probs)
    if temperature != 1.0:
        p = apply_temperature(p, temperature).astype(np.float64)
    c = p.shape[-1]
    top2 = np.partition(p, c - 2, axis=-1)[..., c - 2:]
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = np.clip(-plogp.sum(axis=-1) / np.log(c), 0.0, 1.0)
    return ConfidenceFeatures(
        max_prob=top2[..., 1],
        margin=top2[..., 1] - top2[..., 0],
        entropy=entropy,
        predicted=p.argmax(axis=-1).astype(np.int64),
    )


def feature_matrix(probs, temperature: float = 1.0) -> np.ndarray:
    """(..., 3) float64 stack of ``max_prob``, ``margin``, ``entropy`` (see :data:`FEATURE_NAMES`).

    This is the confidence part of an agent's context vector.
    """
    f = confidence_features(probs, temperature)
    return np.stack([f.max_prob, f.margin, f.entropy], axis=-1)


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ConfigError(f"temperature: {temperature!r} is not allowed; it must be a positive finite number")
    return t


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities ``softmax(log(probs) / temperature)``, float32.

    Parameters
    ----------
    probs
        (..., C) class probabilities.
    temperature
        T > 0; 1 leaves ``probs`` unchanged (up to float32 rounding).

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape as ``probs`` whose rows sum to 1.

    Raises
    ------
    ConfigError
        If ``temperature`` is not a positive finite number.
    """
    t = _check_temperature(temperature)
    p = _as_probs(probs)
    z = np.log(np.clip(p, _LOG_FLOOR, None)) / t
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    e /= e.sum(axis=-1, keepdims=True)
    return e.astype(np.float32)


def _nll_of_logits(logp: np.ndarray, labels: np.ndarray, inv_t: float) -> float:
    z = logp * inv_t
    zmax = z.max(axis=-1)
    lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=-1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def nll(probs, labels) -> float:
    """Mean negative log-likelihood (nats) of ``labels`` under (N, C) ``probs``.

    Probabilities below 1e-12 count as 1e-12, so a confident mistake costs at most ~27.6 nats.
    """
    p = _as_probs(probs)
    if p.ndim != 2:
        raise TraceError(f"probs: expected (N, C) probabilities of one model, got shape {p.shape}")
    y = _as_labels(labels, p.shape[:-1], p.shape[-1])
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _LOG_FLOOR, None))))


def fit_temperature(probs, labels, *, bounds: tuple[float, float] = (0.05, 20.0), tol: float = 1e-8) -> float:
    """Temperature minimising the NLL of ``apply_temperature(probs, T)`` on (probs, labels).

    Fit this on a calibration split and apply it to the other samples. The NLL of
    ``softmax(z / T)`` is convex in ``1 / T`` (a log-sum-exp of linear functions minus a linear
    function), so scipy's bounded scalar minimiser (``scipy.optimize.minimize_scalar``, Brent's
    method) over ``1 / T`` finds the global minimum in the bounds.

    Parameters
    ----------
    probs
        (N, C) class probabilities of one model on the calibration samples.
    labels
        (N,) true labels.
    bounds
        (low, high) range of temperatures searched.
    tol
        Absolute tolerance on ``1 / T`` (scipy's ``xatol``).

    Returns
    -------
    float
        The fitted temperature (> 1 means ``probs`` were over-confident).

    Raises
    ------
    TraceError
        If ``probs`` is not (N, C) with N >= 1 or ``labels`` do not match it.
    ConfigError
        If ``bounds`` is not ``0 < low < high`` or ``tol`` is not positive.

    Examples
    --------
    >>> p = np.array([[0.99, 0.01], [0.99, 0.01], [0.01, 0.99], [0.99, 0.01]])
    >>> fit_temperature(p, np.array([0, 1, 1, 0])) > 1   # one confident mistake in four
    True
    """
    p = _as_probs(probs)
    if p.ndim != 2 or p.shape[0] < 1:
        raise TraceError(f"probs: expected (N, C) probabilities of one model with N >= 1, got shape {p.shape}")
    y = _as_labels(labels, p.shape[:-1], p.shape[-1])
    lo_t, hi_t = (float(b) for b in bounds)
    if not (0 < lo_t < hi_t and np.isfinite(hi_t)):
        raise ConfigError(f"bounds: {bounds!r} is not allowed; need 0 < low < high < inf")
    if not tol > 0:
        raise ConfigError(f"tol: {tol!r} is not allowed; it must be positive")
    logp = np.log(np.clip(p, _LOG_FLOOR, None))
    from scipy.optimize import minimize_scalar  # ~0.35 s the first time: only when a temperature is fitted

    fit = minimize_scalar(lambda beta: _nll_of_logits(logp, y, beta), bounds=(1.0 / hi_t, 1.0 / lo_t),
                          method="bounded", options={"xatol": float(tol)})  # search over beta = 1/T
    return float(1.0 / fit.x)


def ece(probs, labels, n_bins: int = 15) -> float | np.ndarray:
    """Expected calibration error of the max-probability confidence (equal-width bins).

    ``ECE = sum_b |B_b| / N * |accuracy(B_b) - mean confidence(B_b)|`` where bin ``b`` holds the
    samples whose max probability lies in ``((b-1)/n_bins, b/n_bins]``.

    Parameters
    ----------
    probs
        (N, C) probabilities of one model, or (M, N, C) of M models.
    labels
        (N,) true labels.
    n_bins
        Number of equal-width confidence bins on [0, 1].

    Returns
    -------
    float or numpy.ndarray
        The ECE in [0, 1] (a float for (N, C) input, an (M,) float64 array for (M, N, C)).

    Raises
    ------
    TraceError
        If shapes do not match or ``probs`` holds NaN/inf.
    ConfigError
        If ``n_bins`` is not a positive integer.

    Examples
    --------
    >>> round(ece(np.array([[0.8, 0.2], [0.8, 0.2]]), np.array([0, 1]), n_bins=10), 6)   # conf 0.8, acc 0.5
    0.3
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ConfigError(f"n_bins: {n_bins!r} is not allowed; it must be a positive integer")
    p = _as_probs(probs)
    if p.ndim not in (2, 3) or p.shape[-2] < 1:
        raise TraceError(f"probs: expected (N, C) or (M, N, C) probabilities with N >= 1, got shape {p.shape}")
    y = _as_labels(labels, p.shape[:-1], p.shape[-1])
    conf = p.max(axis=-1)
    correct = (p.argmax(axis=-1) == y).astype(np.float64)
    # bin index in [0, n_bins): conf in ((b)/n, (b+1)/n]  ->  ceil(conf * n) - 1
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    flat_conf = np.atleast_2d(conf)
    flat_corr = np.atleast_2d(correct)
    flat_idx = np.atleast_2d(idx)
    n = flat_conf.shape[1]
    out = np.empty(flat_conf.shape[0])
    for m in range(flat_conf.shape[0]):
        s_conf = np.bincount(flat_idx[m], weights=flat_conf[m], minlength=n_bins)
        s_corr = np.bincount(flat_idx[m], weights=flat_corr[m], minlength=n_bins)
        out[m] = np.abs(s_corr - s_conf).sum() / n  # |B|/N * |acc - conf| = |sum corr - sum conf| / N
    return float(out[0]) if p.ndim == 2 else out
