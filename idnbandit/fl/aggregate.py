"""Server-side aggregation: FedAvg (McMahan et al., AISTATS 2017) over numpy parameter dicts.

Parameters travel between the server and the clients as ``dict[str, np.ndarray]`` (float64 for
the arithmetic, then cast back to the model's dtype), so aggregation is plain, testable numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["fedavg", "partial_fedavg"]


def _check_weights(weights, n: int, what: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ConfigError(f"{what}: expected {n} weights (one per client), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"{what}: {w.tolist()} is not allowed; weights must be finite, >= 0 and not all 0")
    return w / w.sum()


def fedavg(states: Sequence[Mapping[str, np.ndarray]], weights) -> dict[str, np.ndarray]:
    """Weighted average of client parameters: ``w = sum_c p_c w_c`` with ``p = weights / sum(weights)``.

    Parameters
    ----------
    states
        One parameter dict per client, all with the same keys and shapes.
    weights
        (n_clients,) non-negative aggregation weights (FedAvg: local sample counts, or the sum of
        the client's importance weights in delivery-aware training).

    Returns
    -------
    dict
        The averaged parameters, each in the dtype of the first client's array.

    Raises
    ------
    ConfigError
        No client, mismatched keys or shapes, or bad weights.

    Examples
    --------
    >>> a = {"w": np.array([1.0, 2.0])}
    >>> b = {"w": np.array([3.0, 6.0])}
    >>> fedavg([a, b], [1, 3])["w"]
    array([2.5, 5. ])
    """
    if len(states) == 0:
        raise ConfigError("states: need at least one client")
    p = _check_weights(weights, len(states), "weights")
    keys = list(states[0])
    out = {}
    for k in keys:
        ref = np.asarray(states[0][k])
        acc = np.zeros(ref.shape, dtype=np.float64)
        for c, s in enumerate(states):
            if set(s) != set(keys):
                raise ConfigError(f"states[{c}]: keys {sorted(s)} differ from client 0's {sorted(keys)}")
            v = np.asarray(s[k])
            if v.shape != ref.shape:
                raise ConfigError(f"states[{c}][{k!r}]: shape {v.shape} differs from client 0's {ref.shape}")
            acc += p[c] * v.astype(np.float64)
        out[k] = acc.astype(ref.dtype)
    return out


def partial_fedavg(global_state: Mapping[str, np.ndarray], states: Sequence[Mapping[str, np.ndarray]],
                   weights, owners: Mapping[str, Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """FedAvg where each parameter is averaged only over the clients that hold (and trained) it.

    Used for the early-exit network: a device holds the first block and exit, the cloud every
    block, so block ``e`` is averaged over the nodes hosting exit ``e`` or a deeper one. A parameter
    no client holds keeps its global value.

    Parameters
    ----------
    global_state
        The current global parameters (every key).
    states
        One dict per client with the keys that client holds (a subset of ``global_state``'s).
    weights
        (n_clients,) non-negative aggregation weights.
    owners
        Optional precomputed ``key -> client indices``; by default, the clients whose dict has the key.

    Returns
    -------
    dict
        The new global parameters.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(states),) or not np.isfinite(w).all() or (w < 0).any():
        raise ConfigError(f"weights: expected {len(states)} finite non-negative weights, got {w.tolist()}")
    out = {}
    for k, g in global_state.items():
        holders = list(owners[k]) if owners is not None else [c for c, s in enumerate(states) if k in s]
        wk = w[holders] if holders else np.zeros(0)
        if len(holders) == 0 or wk.sum() <= 0:
            out[k] = np.array(g, copy=True)
            continue
        out[k] = fedavg([{k: states[c][k]} for c in holders], wk)[k]
    return out
