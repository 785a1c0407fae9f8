"""Small statistics for benchmark summaries: Student-t quantiles and mean ± 95 % CI over seeds.

numpy has no Student-t quantile and scipy is not a dependency, so :func:`t_quantile` inverts the
t CDF with Newton steps; the CDF is the density integrated with composite Simpson (exact to ~1e-10
for the smooth integrand), which is plenty for confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

__all__ = ["t_quantile", "MeanCI", "mean_ci"]

_SIMPSON_INTERVALS = 4000  # even


def _t_pdf(x: np.ndarray, df: float) -> np.ndarray:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))


def _t_cdf(x: float, df: float) -> float:
    """P(T <= x) for x >= 0 (Simpson on [0, x])."""
    if x == 0.0:
        return 0.5
    grid = np.linspace(0.0, x, _SIMPSON_INTERVALS + 1)
    f = _t_pdf(grid, df)
    h = x / _SIMPSON_INTERVALS
    integral = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 0.5 + float(integral)


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Parameters
    ----------
    p
        Probability in (0, 1).
    df
        Degrees of freedom, > 0.

    Returns
    -------
    float
        ``x`` with ``P(T <= x) = p`` (absolute error below 1e-8 for df >= 1).

    Raises
    ------
    ConfigError
        If ``p`` is not in (0, 1) or ``df`` is not positive.

    Examples
    --------
    >>> round(t_quantile(0.975, 4), 4)
    2.7764
    """
    if not 0.0 < p < 1.0:
        raise ConfigError(f"p: {p!r} is not allowed; it must be in (0, 1)")
    if not df > 0:
        raise ConfigError(f"df: {df!r} is not allowed; it must be > 0")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df == 1:  # Cauchy: closed form
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    # start from the normal quantile (Acklam-free: a few Newton steps on the normal CDF)
    x = math.sqrt(2.0) * _erfinv(2 * p - 1)
    for _ in range(50):
        step = (_t_cdf(x, df) - p) / float(_t_pdf(np.array([x]), df)[0])
        x -= step
        if abs(step) < 1e-12 * max(1.0, abs(x)):
            break
    return x


def _erfinv(y: float) -> float:
    """Inverse error function by Newton steps on ``math.erf`` (|y| < 1)."""
    x = 0.0
    for _ in range(100):
        step = (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-15:
            break
    return x


class MeanCI(NamedTuple):
    """Mean of ``n`` finite values and the half-width of its two-sided 95 % Student-t interval."""

    mean: float  # NaN when n == 0
    ci95: float  # NaN when n < 2
    n: int


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence half-width of the finite entries of ``values``.

    Non-finite values (NaN, inf: e.g. an undefined normalised score) are left out and not counted.

    Parameters
    ----------
    values
        One value per seed.
    level
        Two-sided confidence level in (0, 1).

    Returns
    -------
    MeanCI
        ``half = t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation.

    Examples
    --------
    >>> m = mean_ci([1.0, 2.0, 3.0])
    >>> round(m.mean, 3), round(m.ci95, 3), m.n
    (2.0, 2.484, 3)
    """
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return MeanCI(float("nan"), float("nan"), 0)
    mean = float(a.mean())
    if n < 2:
        return MeanCI(mean, float("nan"), 1)
    sd = float(a.std(ddof=1))
    return MeanCI(mean, t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n), n)
