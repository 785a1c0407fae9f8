"""Local training and federated rounds (FedAvg, FedProx) with per-sample importance weights (torch).

A *client* is one node of the scenario with its local data ``(x, y)`` and, in delivery-aware
training, one importance weight per sample (:func:`idnbandit.fl.routing.importance_weights`).
Every random choice (initial weights, mini-batch order) comes from a ``torch.Generator`` passed in,
so the same seed gives bit-identical weights on the same machine and thread count.

References
----------
McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017 (FedAvg). Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020
(FedProx: local loss + mu/2 ||w - w_global||^2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, require
from .aggregate import fedavg

torch = require("torch", "torch")

__all__ = ["TrainConfig", "Client", "get_state", "set_state", "local_train", "federated_round",
           "METHODS"]

#: aggregation methods of :func:`federated_round`
METHODS = ("fedavg", "fedprox")
MAX_LOCAL_EPOCHS = 10_000  # local epochs per round (a typo such as 10**12 would never finish)
MAX_BATCH_SIZE = 1_000_000  # samples per SGD step


@dataclass(frozen=True)
class TrainConfig:
    """Local optimisation recipe of every client (SGD with momentum, weighted cross-entropy).

    Attributes
    ----------
    local_epochs
        Passes over the local data per round.
    lr
        SGD learning rate.
    momentum
        SGD momentum (the optimiser state is reset every round, as clients are stateless).
    batch_size
        Mini-batch size.
    weight_decay
        L2 penalty of SGD.
    prox_mu
        FedProx proximal weight (used when ``method == "fedprox"``).
    """

    local_epochs: int = 2
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 32
    weight_decay: float = 5e-4
    prox_mu: float = 0.01

    def __post_init__(self):
        for name, hi in (("local_epochs", MAX_LOCAL_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
                raise ConfigError(f"{name}: {v!r} is not allowed; it must be an integer in [1, {hi:,}]")
        for name, lo_ok in (("lr", False), ("momentum", True), ("weight_decay", True), ("prox_mu", True)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0 or (v == 0 and not lo_ok):
                raise ConfigError(f"{name}: {v!r} is not allowed; it must be finite and "
                                  + (">= 0" if lo_ok else "> 0"))
        if self.momentum >= 1:
            raise ConfigError(f"momentum: {self.momentum!r} is not allowed; it must be in [0, 1)")


class Client(NamedTuple):
    """One node's local data: x (n, 1, 8, 8) float32, y (n,) int64, w (n,) positive weights or None."""

    name: str
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None = None


def get_state(model) -> dict[str, np.ndarray]:
    """The model's state dict as numpy arrays (copies)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def set_state(model, state: dict[str, np.ndarray], strict: bool = True) -> None:
    """Load numpy arrays into ``model`` (``strict=False``: only the keys given)."""
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=strict)


def _sgd_step_(params, bufs, cfg: TrainConfig) -> None:
    """One SGD step with momentum and weight decay, as ``torch.optim.SGD`` (dampening 0, no Nesterov).

    ``d = grad + weight_decay * p``; ``buf = d`` on the first step, else ``momentum * buf + d``;
    ``p -= lr * buf``. Written out because constructing a ``torch.optim`` optimiser imports
    ``torch._dynamo`` (seconds per process) and clients are stateless anyway. Parameters without a
    gradient (blocks a client's loss does not reach) are left untouched.
    """
    with torch.no_grad():
        for i, p in enumerate(params):
            if p.grad is None:
                continue
            d = p.grad.add(p, alpha=cfg.weight_decay) if cfg.weight_decay else p.grad
            if cfg.momentum:
                if bufs[i] is None:
                    bufs[i] = d.clone()
                else:
                    bufs[i].mul_(cfg.momentum).add_(d)
                d = bufs[i]
            p.add_(d, alpha=-cfg.lr)


def local_train(model, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, generator, *, weights=None,
                anchor: dict[str, np.ndarray] | None = None, loss_fn: Callable | None = None) -> None:
    """Train ``model`` in place on ``(x, y)`` for ``cfg.local_epochs`` epochs of SGD.

    Parameters
    ----------
    model
        A ``torch.nn.Module``.
    x, y
        Local inputs and integer labels.
    cfg
        The recipe.
    generator
        ``torch.Generator`` shuffling the mini-batches.
    weights
        Optional (n,) positive per-sample weights; they are rescaled to mean 1 on the client, and
        the loss of a batch is ``mean_i(w_i * CE_i)``.
    anchor
        FedProx: the global parameters ``w_global``; adds ``prox_mu / 2 * ||w - w_global||^2``.
    loss_fn
        ``loss_fn(model, xb, yb) -> (B,) per-sample losses``; default: cross-entropy of ``model(xb)``.
    """
    n = len(y)
    if n == 0:
        return
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    if weights is None:
        wt = torch.ones(n, dtype=torch.float32)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or not (w > 0).all():
            raise ConfigError(f"weights: expected {n} positive per-sample weights, got shape {w.shape}")
        wt = torch.from_numpy((w / w.mean()).astype(np.float32))
    params = [p for p in model.parameters() if p.requires_grad]
    bufs: list = [None] * len(params)
    prox = None
    if anchor is not None and cfg.prox_mu > 0:
        named = dict(model.named_parameters())
        prox = [(named[k], torch.from_numpy(np.ascontiguousarray(v))) for k, v in anchor.items() if k in named]
    if loss_fn is None:
        def loss_fn(m, xb, yb):
            return torch.nn.functional.cross_entropy(m(xb), yb, reduction="none")
    model.train()
    for _ in range(cfg.local_epochs):
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            loss = (loss_fn(model, xt[idx], yt[idx]) * wt[idx]).mean()
            if prox is not None:
                loss = loss + 0.5 * cfg.prox_mu * sum(((p - g) ** 2).sum() for p, g in prox)
            for p in params:
                p.grad = None
            loss.backward()
            _sgd_step_(params, bufs, cfg)
    model.eval()


def federated_round(model, clients: Sequence[Client], cfg: TrainConfig, generator, *,
                    method: str = "fedavg") -> dict[str, np.ndarray]:
    """One round of FedAvg / FedProx: broadcast, local training on every client, weighted average.

    The aggregation weight of a client is its sample count (FedAvg), or, when the clients carry
    importance weights, the sum of its weights (its share of the delivery-weighted data). The
    global ``model`` is updated in place and its new parameters are returned.

    Parameters
    ----------
    model
        The global model (a copy is trained on each client from its current parameters).
    clients
        Participating clients (all of them, every round).
    cfg
        Local recipe.
    generator
        ``torch.Generator`` for the mini-batch order (clients draw from it in list order).
    method
        ``"fedavg"`` or ``"fedprox"``.

    Returns
    -------
    dict
        The aggregated parameters (also loaded into ``model``).
    """
    if method not in METHODS:
        raise ConfigError(f"method: {method!r} is not allowed; use one of {', '.join(METHODS)}")
    clients = [c for c in clients if len(c.y) > 0]
    if not clients:
        raise ConfigError("clients: no client holds any training sample")
    global_state = get_state(model)
    anchor = global_state if method == "fedprox" else None
    states, agg = [], []
    for c in clients:
        set_state(model, global_state)
        local_train(model, c.x, c.y, cfg, generator, weights=c.w, anchor=anchor)
        states.append(get_state(model))
        agg.append(float(len(c.y)) if c.w is None else float(np.sum(c.w)))
    new = fedavg(states, agg)
    set_state(model, new)
    return new
