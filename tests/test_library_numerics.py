"""Numerics done by a well-kept library, not by hand (issue 18): Student-t quantiles are scipy's,
the temperature fit is scipy's bounded Brent search, and both keep today's printed figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq

from idnbandit.bench.stats import mean_ci, t_quantile
from idnbandit.errors import ConfigError
from idnbandit.traces import builtin_trace_names, fit_temperature, load_builtin_trace
from idnbandit.traces.features import _LOG_FLOOR

# every bundled trace's fitted temperatures (all samples) as fitted before scipy, to 4 decimals
TEMPERATURES_4DP = {
    "digits": [0.7752, 1.1247, 0.8330, 1.3801],
    "ensemble-hetero": [0.7271, 1.8457, 0.5158, 1.1272],
    "segment": [0.7889, 0.8664, 1.0086, 1.3564],
}


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 500, 2.5, 1e6])
def test_t_quantile_is_scipys(df):
    for p in (0.6, 0.9, 0.975, 0.995, 0.025, 1e-6):
        assert t_quantile(p, df) == float(stats.t.ppf(p, df))  # bit for bit, not to 1e-8


def test_t_quantile_keeps_its_checks_and_the_printed_intervals():
    for p, df, match in ((1.0, 3, "p:"), (0.0, 3, "p:"), (float("nan"), 3, "p:"), (0.9, 0, "df:"),
                         (0.9, float("nan"), "df:")):
        with pytest.raises(ConfigError, match=match):
            t_quantile(p, df)
    assert round(t_quantile(0.975, 4), 4) == 2.7764
    m = mean_ci([1.0, 2.0, 3.0])
    assert (round(m.mean, 3), round(m.ci95, 3), m.n) == (2.0, 2.484, 3)


def _true_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The NLL minimiser in 1/T to ~1e-15: the root of the NLL's derivative (convex in 1/T)."""
    logp = np.log(np.clip(p.astype(np.float64), _LOG_FLOOR, None))

    def slope(beta):
        z = logp * beta
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return float(np.mean((e * logp).sum(axis=1) - logp[np.arange(len(y)), y]))

    return 1.0 / brentq(slope, 1 / 20, 1 / 0.05, xtol=1e-15, rtol=1e-15)


def test_fit_temperature_finds_the_minimum_to_1e_7():
    t = load_builtin_trace("digits")  # model 3: the golden-section search stopped 1.9e-6 away
    temp = fit_temperature(t.probs[3], t.labels)
    assert temp == pytest.approx(_true_temperature(t.probs[3], t.labels), rel=1e-7, abs=0)


def test_bundled_traces_keep_their_fitted_temperatures():
    assert sorted(builtin_trace_names()) == sorted(TEMPERATURES_4DP)
    for name, expected in TEMPERATURES_4DP.items():
        t = load_builtin_trace(name)
        got = [round(fit_temperature(t.probs[m], t.labels), 4) for m in range(t.n_models)]
        assert got == expected, name


def test_fit_temperature_checks_tol():
    p = np.array([[0.6, 0.4], [0.3, 0.7]])
    for tol in (0.0, -1e-3, float("nan")):
        with pytest.raises(ConfigError, match="tol"):
            fit_temperature(p, [0, 1], tol=tol)
    assert fit_temperature(p, [0, 1], tol=1e-3) == pytest.approx(fit_temperature(p, [0, 1]), abs=5e-3)
