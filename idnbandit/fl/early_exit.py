"""Federated training of an early-exit network whose exits are hosted at successive tiers (torch).

Reconstruction of Kaplan et al., "Federated Learning for Cooperative Inference Systems: The Case of
Early Exit Networks" (arXiv 2405.04249; see ``/docs/fl.md`` for what is taken and what is changed).

* One network, :class:`~idnbandit.fl.models.EarlyExitNet`, with exit ``e`` served by the nodes of
  tier level ``e`` (device 0 ... cloud 3). A node of level ``L`` holds blocks and exits ``0..L``
  (it can serve exit ``L`` and compute the shallower ones on the way).
* The global objective is ``sum_e lambda_e * loss_e`` with the target weights ``lambda_e`` equal to
  exit ``e``'s serving rate under the current delivery strategy (Kaplan's "Serving Rate" strategy).
* Each round every node trains the exits it holds on its local data with the loss
  ``sum_{e <= L} E * lambda_e * CE_e`` (``E`` = number of exits, so the weights average to 1), and
  the server averages each block over the nodes that hold it, weighted by local sample counts.

Changed from the paper (documented in docs/fl.md): Kaplan et al. let a node train *one* exit per
round (its last with probability 1 - p_n, else a shallower one) and apply ``lambda_e`` in the
server step; here the node trains all its exits at once with ``lambda``-weighted losses, which has
the same expected gradient direction per exit without the extra sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, require
from .aggregate import partial_fedavg
from .models import EarlyExitNet
from .train import Client, TrainConfig, get_state, local_train, set_state

torch = require("torch", "torch")

__all__ = ["exit_loss_weights", "early_exit_round"]


def exit_loss_weights(serving_rates, floor: float = 0.05) -> np.ndarray:
    """Exit loss weights ``lambda_e ∝ serving_rate_e + floor``, positive and summing to 1.

    Parameters
    ----------
    serving_rates
        (E,) fraction of requests served at each exit (need not sum to 1 exactly).
    floor
        Non-negative floor so that an exit served by no one today still learns (> 0 if any rate is 0).

    Returns
    -------
    (E,) float64

    Examples
    --------
    >>> exit_loss_weights([0.7, 0.1, 0.2, 0.0], floor=0.0).tolist()
    [0.7, 0.1, 0.2, 0.0]
    """
    s = np.asarray(serving_rates, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0 or not np.isfinite(s).all() or (s < 0).any():
        raise ConfigError(f"serving_rates: {s.tolist()} is not allowed; give finite rates >= 0, one per exit")
    if not np.isfinite(floor) or floor < 0:
        raise ConfigError(f"floor: {floor!r} is not allowed; it must be >= 0")
    w = s + floor
    if w.sum() <= 0:
        raise ConfigError("serving_rates: all zero and floor = 0; give floor > 0")
    return w / w.sum()


def _keys_of_level(net, level: int) -> list[str]:
    return [k for k in net.state_dict() if EarlyExitNet.exit_of_parameter(k) <= level]


def early_exit_round(net, clients: Sequence[Client], levels: Sequence[int], exit_weights, cfg: TrainConfig,
                     generator) -> dict[str, np.ndarray]:
    """One federated round of the early-exit network; updates ``net`` in place.

    Parameters
    ----------
    net
        The global :class:`~idnbandit.fl.models.EarlyExitNet`.
    clients
        One client per node.
    levels
        Tier level of each client's node: the deepest exit it holds.
    exit_weights
        (n_exits,) ``lambda`` from :func:`exit_loss_weights`.
    cfg
        Local recipe (``prox_mu`` is not used).
    generator
        ``torch.Generator`` for the mini-batch order.

    Returns
    -------
    dict
        The new global parameters.
    """
    lam = np.asarray(exit_weights, dtype=np.float64)
    if lam.shape != (net.n_exits,):
        raise ConfigError(f"exit_weights: expected {net.n_exits} weights, got shape {lam.shape}")
    if len(levels) != len(clients):
        raise ConfigError(f"levels: {len(levels)} levels for {len(clients)} clients")
    scale = torch.from_numpy((lam * net.n_exits).astype(np.float32))
    global_state = get_state(net)
    states, counts = [], []
    for c, level in zip(clients, levels):
        level = min(int(level), net.n_exits - 1)
        if len(c.y) == 0:
            states.append({})
            counts.append(0.0)
            continue

        def loss_fn(m, xb, yb, level=level):
            logits = m(xb, upto=level)
            total = 0.0
            for e, z in enumerate(logits):
                total = total + scale[e] * torch.nn.functional.cross_entropy(z, yb, reduction="none")
            return total

        set_state(net, global_state)
        local_train(net, c.x, c.y, cfg, generator, weights=c.w, loss_fn=loss_fn)
        full = get_state(net)
        states.append({k: full[k] for k in _keys_of_level(net, level)})
        counts.append(float(len(c.y)) if c.w is None else float(np.sum(c.w)))
    new = partial_fedavg(global_state, states, counts)
    set_state(net, new)
    return new
