"""Temperature scaling of a whole :class:`Trace`, fitted on a held-out calibration split."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from .features import apply_temperature, fit_temperature
from .limits import MAX_TRACE_SAMPLES
from .trace import Trace

__all__ = ["CalibratedTrace", "calibrate_trace", "calibration_split"]


class CalibratedTrace(NamedTuple):
    """Result of :func:`calibrate_trace`."""

    trace: Trace
    """The trace with every model's probabilities temperature-scaled (all N samples)."""
    temperatures: np.ndarray
    """(M,) float64 fitted temperature of each model."""
    calibration_index: np.ndarray
    """int64 indices of the samples the temperatures were fitted on (evaluate on the others)."""
    evaluation_index: np.ndarray
    """int64 indices of the remaining samples, in increasing order."""


def calibration_split(n_samples: int, calibration_fraction: float = 0.2,
                      seed: int | np.random.Generator | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random disjoint (calibration, evaluation) index arrays, each sorted.

    Raises
    ------
    ConfigError
        If ``n_samples`` is not in [2, 10^8], or ``calibration_fraction`` is not in (0, 1) or leaves
        either part empty.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or not 2 <= n_samples <= MAX_TRACE_SAMPLES:
        raise ConfigError(f"n_samples: {n_samples!r} is not allowed; it must be an integer in [2, {MAX_TRACE_SAMPLES:,}]")
    if not 0 < calibration_fraction < 1:
        raise ConfigError(f"calibration_fraction: {calibration_fraction!r} is not allowed; it must lie in (0, 1)")
    n_cal = int(round(calibration_fraction * n_samples))
    if not 0 < n_cal < n_samples:
        raise ConfigError(f"calibration_fraction: {calibration_fraction!r} of {n_samples} samples leaves an empty split")
    perm = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(perm[:n_cal]), np.sort(perm[n_cal:])


def calibrate_trace(trace: Trace, calibration_fraction: float = 0.2,
                    seed: int | np.random.Generator | None = 0) -> CalibratedTrace:
    """Fit one temperature per model on a random calibration split and rescale the whole trace.

    Parameters
    ----------
    trace
        The trace to calibrate.
    calibration_fraction
        Share of samples used to fit the temperatures.
    seed
        Seed of the random split.

    Returns
    -------
    CalibratedTrace
        The rescaled trace (metadata gains ``temperatures``), the temperatures and the split. Only
        metrics on ``evaluation_index`` are honest held-out figures.

    Examples
    --------
    >>> from idnbandit.traces import synthetic_trace
    >>> t = synthetic_trace(["a"], [0.8], n_samples=5000, seed=0, calibration=0.5)
    >>> round(float(calibrate_trace(t).temperatures[0]), 1)
    2.0
    """
    if not isinstance(trace, Trace):
        raise ConfigError(f"trace: expected an idnbandit Trace, got {type(trace).__name__}")
    cal, ev = calibration_split(trace.n_samples, calibration_fraction, seed)
    temps = np.array([fit_temperature(trace.probs[m, cal], trace.labels[cal]) for m in range(trace.n_models)])
    probs = np.stack([apply_temperature(trace.probs[m], t) for m, t in enumerate(temps)])
    meta = {**trace.metadata, "temperatures": [float(t) for t in temps],
            "calibration_fraction": float(calibration_fraction)}
    return CalibratedTrace(Trace(probs, trace.labels, trace.model_names, meta), temps, cal, ev)
