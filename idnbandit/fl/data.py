"""Federated data: the bundled digits images, a stratified train/val/test split, Dirichlet label skew.

numpy only (scikit-learn is needed for :func:`load_digits_images`, which reads the 8x8 digits that
scikit-learn ships, offline).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, require

__all__ = ["Split", "load_digits_images", "stratified_split", "dirichlet_partition", "make_rng"]


class Split(NamedTuple):
    """A dataset split into the parts used by federated training.

    ``x_*`` are (N, 1, 8, 8) float32 images in [0, 1]; ``y_*`` (N,) int64 labels. ``train`` is shared
    out among the nodes, ``val`` is where the delivery strategy is learned and routing rates are
    estimated, ``test`` is what the final trace (and every end-to-end figure) is recorded on.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def make_rng(seed) -> np.random.Generator:
    """A numpy Generator from ``seed`` (int >= 0, a Generator, or None)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative integer, a Generator or None")
    return np.random.default_rng(seed)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (1797 grey 8x8 images, 10 classes), read offline.

    The CSV file that ``sklearn.datasets.load_digits`` reads is parsed directly (same values, without
    importing scikit-learn); ``load_digits`` itself is the fallback.

    Returns
    -------
    x : (1797, 1, 8, 8) float32 in [0, 1]
    y : (1797,) int64

    Raises
    ------
    DependencyNotInstalled
        If scikit-learn is missing (``pip install 'idnbandit[fl]'``).
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it (seconds)
    path = None if spec is None or spec.origin is None else Path(spec.origin).parent / "datasets/data/digits.csv.gz"
    if path is None or not path.is_file():
        datasets = require("sklearn.datasets", "fl")  # raises DependencyNotInstalled without scikit-learn
        d = datasets.load_digits()
        data, target = np.asarray(d.data), np.asarray(d.target)
    else:  # the file load_digits reads: 64 pixel values (0-16) and the label per line
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
        data, target = raw[:, :-1], raw[:, -1]
    x = (np.asarray(data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return np.ascontiguousarray(x), np.asarray(target, dtype=np.int64)


def stratified_split(x: np.ndarray, y: np.ndarray, fractions=(0.6, 0.2, 0.2), seed=0) -> Split:
    """Split ``(x, y)`` into train / val / test with the class proportions kept in each part.

    Parameters
    ----------
    x
        (N, ...) inputs.
    y
        (N,) integer labels.
    fractions
        Three positive shares (train, val, test) summing to 1.
    seed
        Seed of the shuffle.

    Returns
    -------
    Split

    Notes
    -----
    Not ``sklearn.model_selection.train_test_split(stratify=)``: for the same seed that draws other
    samples (a ``RandomState`` instead of this numpy ``Generator``, which ``seed`` may also be), so every
    ``idnbandit fl`` result, trace and figure recorded with a seed would change.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f <= 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise ConfigError(f"fractions: {tuple(fractions)!r} is not allowed; give three positive shares summing to 1")
    y = np.asarray(y)
    if len(x) != len(y):
        raise ConfigError(f"x, y: {len(x)} inputs but {len(y)} labels")
    rng = make_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_tr = int(round(f[0] * len(idx)))
        n_va = int(round(f[1] * len(idx)))
        for i, chunk in enumerate((idx[:n_tr], idx[n_tr:n_tr + n_va], idx[n_tr + n_va:])):
            parts[i].append(chunk)
    out = []
    for chunks in parts:
        idx = np.sort(np.concatenate(chunks))
        out += [np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])]
    return Split(*out)


def dirichlet_partition(labels: np.ndarray, n_clients: int, alpha: float, seed=0, *,
                        min_size: int = 2, shares=None) -> list[np.ndarray]:
    """Label-skewed non-IID partition: for each class, client shares are drawn from Dirichlet(alpha).

    Every sample is given to exactly one client. Small ``alpha`` (e.g. 0.1) gives each client a
    few classes; large ``alpha`` (e.g. 100) an almost IID split. ``shares`` (per client, summing to
    1) scales the expected data of each client, as in Kaplan et al.'s "data shares by layer".

    Parameters
    ----------
    labels
        (N,) integer labels.
    n_clients
        Number of clients (>= 1).
    alpha
        Dirichlet concentration (> 0).
    seed
        Seed of the draw.
    min_size
        Redraw (up to 100 times) until each client holds at least this many samples.
    shares
        Optional (n_clients,) expected data shares (default equal).

    Returns
    -------
    list of (n_c,) int64 sorted index arrays, one per client.

    Raises
    ------
    ConfigError
        Bad ``n_clients``, ``alpha`` or ``shares``, or no partition meets ``min_size``.
    """
    labels = np.asarray(labels)
    if (isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer))
            or not 1 <= n_clients <= max(len(labels), 1)):  # before any per-client array is allocated
        raise ConfigError(f"n_clients: {n_clients!r} is not allowed; it must be an integer in [1, {len(labels):,}] "
                          "(at most one client per sample)")
    if not np.isfinite(alpha) or alpha <= 0:
        raise ConfigError(f"alpha: {alpha!r} is not allowed; the Dirichlet concentration must be > 0")
    if shares is None:
        base = np.full(n_clients, 1.0 / n_clients)
    else:
        base = np.asarray(shares, dtype=np.float64)
        if base.shape != (n_clients,) or (base <= 0).any() or abs(base.sum() - 1) > 1e-6:
            raise ConfigError(f"shares: {shares!r} is not allowed; give {n_clients} positive shares summing to 1")
    if min_size * n_clients > len(labels):
        raise ConfigError(f"min_size: {min_size} samples for each of {n_clients} clients needs more than "
                          f"{len(labels)} samples; lower min_size or use fewer clients")
    rng = make_rng(seed)
    classes = np.unique(labels)
    for _ in range(100):
        owner = np.empty(len(labels), dtype=np.int64)
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(alpha * n_clients * base)
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
            for k, part in enumerate(np.split(idx, cuts)):
                owner[part] = k
        counts = np.bincount(owner, minlength=n_clients)
        if counts.min() >= min_size:
            return [np.flatnonzero(owner == k).astype(np.int64) for k in range(n_clients)]
    raise ConfigError(f"alpha: no Dirichlet({alpha}) partition in 100 draws gave every client >= {min_size} "
                      "samples; raise alpha or lower min_size")
