"""Small statistics for benchmark summaries: Student-t quantiles and mean ± 95 % CI over seeds.

The quantile is scipy's (``scipy.stats.t.ppf``; scipy is a core dependency), imported on first use
so that ``import idnbandit.bench`` stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

__all__ = ["t_quantile", "MeanCI", "mean_ci"]


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Parameters
    ----------
    p
        Probability in (0, 1).
    df
        Degrees of freedom, > 0 (need not be an integer).

    Returns
    -------
    float
        ``x`` with ``P(T <= x) = p``: ``scipy.stats.t.ppf(p, df)``.

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
    from scipy.stats import t  # ~0.7 s the first time: only when a summary needs an interval

    return float(t.ppf(p, df))


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
