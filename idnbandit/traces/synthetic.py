"""Synthetic traces with correlated errors and confidence coupled to correctness.

The generative model (one latent difficulty per sample, shared by every model)::

    z_n  ~ N(0, 1)                         difficulty of sample n (hard for every model)
    s_mn = a_m - b z_n + e_mn,  e ~ N(0,1)  what model m "sees" of sample n
    q_mn = 1/C + (1 - 1/C) Phi(s_mn)       P(model m is right on n | s_mn): its calibrated confidence
    correct_mn = [V_mn < q_mn],  V ~ U(0,1)

``b`` is ``difficulty_weight``: 0 gives independent errors, larger values make the models fail on
the same samples. Since ``s_mn ~ N(a_m, 1 + b^2)`` and ``E[Phi(X)] = Phi(mu / sqrt(1 + sigma^2))``
for ``X ~ N(mu, sigma^2)``, the accuracy of model m is ``1/C + (1 - 1/C) Phi(a_m / sqrt(2 + b^2))``;
solving for ``a_m`` gives the offsets in closed form::

    a_m = sqrt(2 + b^2) * Phi^-1((acc_m - 1/C) / (1 - 1/C))

so targets are met up to sampling noise (sd ~0.2 percentage points on 50k samples).

The probability vector of (m, n) puts ``q_mn`` on the predicted class (the label when correct, a
uniformly drawn wrong class otherwise) and shares ``1 - q_mn`` among the other classes with
Dirichlet(1) weights (blended towards uniform where needed so the predicted class stays the strict
argmax). When the model is wrong, the true class takes the largest of those shares half of the
time (a near miss). Finally ``calibration`` c rescales the vector to ``softmax(log p / c)``:
``c = 1`` keeps the max probability calibrated, ``c < 1`` makes the model over-confident (as modern
deep networks are; temperature scaling with ``T = 1 / c`` undoes it), ``c > 1`` under-confident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .features import ece
from .limits import check_trace_size
from .trace import Trace

__all__ = ["synthetic_trace", "synthetic_trace_from_spec", "model_offsets"]

_Q_LO = 1e-3  # Phi(s) is clipped to [_Q_LO, 1 - _Q_HI] so the predicted class is a strict argmax
_Q_HI = 1e-7
_NEAR_MISS = 0.5  # probability that a wrong model's second choice is the true class


def _ndtr(x):
    from scipy.special import ndtr  # scipy is a core transitive dependency (river requires it)

    return ndtr(x)


def _ndtri(p):
    from scipy.special import ndtri

    return ndtri(p)


def model_offsets(accuracies: Sequence[float], n_classes: int, difficulty_weight: float = 2.0) -> np.ndarray:
    """(M,) offsets ``a_m`` of the generative model that give each model its target accuracy.

    Parameters
    ----------
    accuracies
        Target accuracy of each model, each in ``(1 / n_classes, 1)``.
    n_classes
        Number of classes C >= 2.
    difficulty_weight
        ``b >= 0``, the weight of the shared per-sample difficulty.

    Raises
    ------
    ConfigError
        If an accuracy is not above chance ``1 / n_classes`` or not below 1.
    """
    acc = np.asarray(accuracies, dtype=np.float64)
    chance = 1.0 / n_classes
    for i, a in enumerate(acc):
        if not (chance < a < 1):
            raise ConfigError(
                f"accuracies[{i}]: {a!r} is not allowed; with {n_classes} classes it must lie in "
                f"({chance:.4g}, 1) (above chance, below perfect)"
            )
    r = (acc - chance) / (1.0 - chance)
    return np.sqrt(2.0 + difficulty_weight**2) * _ndtri(r)


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0):
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative int, a numpy Generator or None")


def _validate(model_names, accuracies, n_samples, n_classes, difficulty_weight, calibration):
    names = tuple(model_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"model_names: {model_names!r} is not allowed; need one or more non-empty strings")
    if len(set(names)) != len(names):
        raise ConfigError(f"model_names: duplicate names in {names}")
    try:
        acc = tuple(float(a) for a in accuracies)
    except (TypeError, ValueError):
        raise ConfigError(f"accuracies: {accuracies!r} is not allowed; give one number in (1 / n_classes, 1) "
                          "per model") from None
    if len(acc) != len(names):
        raise ConfigError(f"accuracies: {len(acc)} values for {len(names)} model_names; need one per model")
    for field_name, v, low in (("n_samples", n_samples, 1), ("n_classes", n_classes, 2)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
            raise ConfigError(f"{field_name}: {v!r} is not allowed; it must be an integer >= {low}")
    too_big = check_trace_size(len(names), int(n_samples), int(n_classes))
    if too_big:  # before any array is allocated
        raise ConfigError(too_big.replace("n_models:", "model_names:", 1))
    b = float(difficulty_weight)
    if not (np.isfinite(b) and b >= 0):
        raise ConfigError(f"difficulty_weight: {difficulty_weight!r} is not allowed; it must be finite and >= 0")
    cal = np.broadcast_to(np.asarray(calibration, dtype=np.float64), (len(names),)).copy() \
        if np.ndim(calibration) == 0 or np.shape(calibration) == (len(names),) else None
    if cal is None:
        raise ConfigError(f"calibration: {calibration!r} is not allowed; give one number or one per model ({len(names)})")
    if not (np.isfinite(cal).all() and (cal > 0).all()):
        raise ConfigError(f"calibration: {calibration!r} is not allowed; each value must be positive and finite")
    return names, acc, int(n_samples), int(n_classes), b, cal


def _probability_rows(q, pred, label, correct, n_classes, rng) -> np.ndarray:
    """(N, C) float64 rows with ``q`` on ``pred`` and ``1 - q`` shared among the other classes."""
    n, c = len(q), n_classes
    p = np.zeros((n, c))
    rows = np.arange(n)
    p[rows, pred] = q
    if c == 2:
        p[rows, 1 - pred] = 1.0 - q
        return p
    w = rng.exponential(size=(n, c - 1))
    w /= w.sum(axis=1, keepdims=True)  # Dirichlet(1, ..., 1) shares of the C-1 other classes
    # slot j of a row holds class (pred + 1 + j) mod C; a wrong model's true class is slot j_label
    j_label = (label - pred - 1) % c
    near_miss = ~correct & (rng.random(n) < _NEAR_MISS)
    j_max = w.argmax(axis=1)
    nm = rows[near_miss]
    w_lab, w_max = w[nm, j_label[nm]].copy(), w[nm, j_max[nm]].copy()
    w[nm, j_label[nm]], w[nm, j_max[nm]] = w_max, w_lab
    # blend towards uniform so that every other share stays strictly below q
    u = 1.0 / (c - 1)
    cap = q * (1.0 - 1e-4) / (1.0 - q)  # largest allowed weight
    wmax = w.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(wmax > cap, (cap - u) / (wmax - u), 1.0)
    lam = np.clip(lam, 0.0, 1.0)[:, None]
    w = lam * w + (1.0 - lam) * u
    cls = (pred[:, None] + 1 + np.arange(c - 1)[None, :]) % c
    p[rows[:, None], cls] = (1.0 - q)[:, None] * w
    return p


def synthetic_trace(
    model_names: Sequence[str],
    accuracies: Sequence[float],
    n_samples: int = 20_000,
    n_classes: int = 10,
    seed: int | np.random.Generator | None = 0,
    *,
    difficulty_weight: float = 2.0,
    calibration: float | Sequence[float] = 1.0,
) -> Trace:
    """A synthetic :class:`Trace` with correlated errors, hitting target accuracies.

    See the module docstring for the generative model.

    Parameters
    ----------
    model_names
        M distinct model names (trace columns).
    accuracies
        Target accuracy of each model, each in ``(1 / n_classes, 1)``.
    n_samples
        Number of samples N.
    n_classes
        Number of classes C >= 2; labels are uniform over them.
    seed
        Seed of the generator (same seed, same trace). Model m draws from its own spawned stream,
        so appending a model leaves the outputs of the others unchanged.
    difficulty_weight
        Weight ``b >= 0`` of the per-sample difficulty shared by all models (0 = independent
        errors; larger = more correlated errors). The default 2 gives pairwise error correlations
        of about 0.15-0.4, the range measured on the bundled real traces (0.14-0.53).
    calibration
        One value or one per model: 1 = calibrated max probability, < 1 over-confident,
        > 1 under-confident (probabilities become ``softmax(log p / calibration)``).

    Returns
    -------
    Trace
        probs (M, N, C) float32, labels (N,), metadata with the generator's parameters, the
        offsets ``a_m``, and each model's achieved accuracy and ECE.

    Raises
    ------
    ConfigError
        If a parameter is out of range (the message names it).

    Examples
    --------
    >>> t = synthetic_trace(["small", "large"], [0.7, 0.9], n_samples=50_000, seed=1)
    >>> [round(float(a), 2) for a in t.accuracies()]
    [0.7, 0.9]
    """
    names, acc, n, c, b, cal = _validate(model_names, accuracies, n_samples, n_classes,
                                         difficulty_weight, calibration)
    offsets = model_offsets(acc, c, b)
    streams = [np.random.default_rng(s) for s in _seed_sequence(seed).spawn(len(names) + 1)]
    labels = streams[0].integers(0, c, size=n)
    z = streams[0].standard_normal(n)
    probs = np.empty((len(names), n, c), dtype=np.float32)
    for m, rng in enumerate(streams[1:]):
        s = offsets[m] - b * z + rng.standard_normal(n)
        q = 1.0 / c + (1.0 - 1.0 / c) * np.clip(_ndtr(s), _Q_LO, 1.0 - _Q_HI)
        correct = rng.random(n) < q
        pred = np.where(correct, labels, (labels + rng.integers(1, c, size=n)) % c)
        p = _probability_rows(q, pred, labels, correct, c, rng)
        if cal[m] != 1.0:
            logp = np.log(np.clip(p, 1e-30, None)) / cal[m]
            logp -= logp.max(axis=1, keepdims=True)
            p = np.exp(logp)
        p /= p.sum(axis=1, keepdims=True)
        probs[m] = p
    meta = {
        "source": "synthetic",
        "generator": "idnbandit.traces.synthetic_trace",
        "seed": None if seed is None or isinstance(seed, np.random.Generator) else int(seed),
        "n_classes": c,
        "difficulty_weight": b,
        "calibration": [float(x) for x in cal],
        "target_accuracies": list(acc),
        "offsets": [float(x) for x in offsets],
    }
    trace = Trace(probs, labels, names, meta)
    trace.metadata["accuracies"] = [float(x) for x in trace.accuracies()]
    trace.metadata["ece"] = [float(x) for x in ece(trace.probs, trace.labels)]
    return trace


def synthetic_trace_from_spec(spec) -> Trace:
    """The trace described by a scenario's ``[trace.synthetic]`` table.

    Parameters
    ----------
    spec
        A :class:`idnbandit.scenario.model.SyntheticTraceSpec` (model_names, accuracies,
        n_samples, n_classes, seed); difficulty and calibration take their defaults.

    Raises
    ------
    ConfigError
        If the spec's values are out of range; the message names ``trace.synthetic.<field>``.
    """
    try:
        return synthetic_trace(spec.model_names, spec.accuracies, spec.n_samples, spec.n_classes, spec.seed)
    except ConfigError as exc:
        raise ConfigError(f"trace.synthetic.{exc}") from None
