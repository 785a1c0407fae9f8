"""Shared machinery of the serve-or-forward (Hierarchical Inference, HI) learners.

Setting (docs/agents_hi.md): the context's ``x[confidence_index]`` is the local
model's maximum class probability ``p``; the learner only ever chooses between ``local_action``
(serve with the origin's own model) and ``forward_action`` (default ``-1``: the last, farthest
option), whatever ``n_actions`` is, so it also runs on multi-option scenarios.

Loss map
--------
The HI papers use losses in [0, 1]: offloading costs ``beta``, accepting costs ``Y`` (1 if the local
model is wrong). Our agents receive *rewards*; every HI learner maps them with

    loss = clip((reward_max - r) / (reward_max - reward_min), 0, 1)

with defaults ``reward_min = -1``, ``reward_max = 1`` (a reward ``w_acc·correct - costs`` with unit
accuracy weight lies in that range unless costs exceed 1). In the pure HI setting (``hi-two-tier``:
reward = correct - beta·forwarded, the remote answer taken as truth) the map gives
``loss = (beta·1{offload} + Y·1{accept}) / 2`` — the papers' loss up to the factor 1/2; pass
``reward_min=0, reward_max=1`` to get it exactly (a forwarded request whose remote answer is wrong
then has reward ``-beta`` and is clipped to loss 1).

Offload loss when it is not observed
------------------------------------
The papers treat the offloading cost ``beta`` as known. Here it is learned: whenever
``rewards[forward_action]`` is observed its loss is used and folded into a running mean; on rounds
where it is not observed (a request served locally under ``label_on_forward`` or ``bandit``
feedback) the running mean stands in (0.5 before any observation). This is exact when the forward
loss is a constant ``beta`` (the papers' model) and an approximation otherwise.

Loss scale
----------
Learning rates and confidence widths are tuned for losses spanning [0, 1]; a reward range with
slack (the default [-1, 1] in ``hi-two-tier`` gives losses in [0, 1/2]) would silently halve them.
The learners therefore track R̂, the largest loss observed so far (``fw[2]``, floored at 0.05), and
use η/R̂ (exponential weights) or R̂·width (confidence bounds) — exactly the papers' tuning on
losses ℓ/R̂. R̂ only grows, so learning rates stay non-increasing (anytime analyses still apply).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..errors import ConfigError
from ._feedback import LEARNS_WITHOUT_LOCAL_LABEL
from ._params import check_integer, check_real
from .base import Agent

__all__ = ["two_way_prob", "HIAgent", "loss_from_reward", "loss_scale", "observe_scale_", "check_positive", "check_optional_positive", "check_int"]


@njit(cache=True)
def loss_from_reward(r, reward_min, reward_max):
    """Affine map of a reward to a loss in [0, 1] (``reward_max`` → 0, ``reward_min`` → 1)."""
    v = (reward_max - r) / (reward_max - reward_min)
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v


@njit(cache=True)
def clip01(p):
    """The confidence clipped to [0, 1]."""
    if p < 0.0:
        return 0.0
    if p > 1.0:
        return 1.0
    return p


@njit(cache=True)
def two_way_prob(p_local, a, local, forward):
    """Probability of option ``a`` for a learner that serves ``local`` with probability ``p_local`` (the
    select kernels' ``u[0] < p_local``) and forwards to ``forward`` otherwise."""
    acc = clip01(p_local)
    if local == forward:
        return 1.0 if a == local else 0.0
    if a == local:
        return acc
    if a == forward:
        return 1.0 - acc
    return 0.0


@njit(cache=True)
def forward_loss_(fw, rewards, forward, reward_min, reward_max):
    """Forward loss of this round: observed (and folded into the running mean ``fw``) or the mean.

    ``fw`` is a (3,) float64 array ``[sum of observed forward losses, their count, loss scale]``;
    the observed loss also raises the loss scale (see :func:`observe_scale_`).
    """
    rf = rewards[forward]
    if not math.isnan(rf):
        lf = loss_from_reward(rf, reward_min, reward_max)
        fw[0] += lf
        fw[1] += 1.0
        observe_scale_(fw, lf)
        return lf
    if fw[1] > 0.0:
        return fw[0] / fw[1]
    return 0.5


@njit(cache=True)
def observe_scale_(fw, loss):
    """Raise the running maximum of observed losses ``fw[2]`` (the loss scale R̂)."""
    if loss > fw[2]:
        fw[2] = loss


@njit(cache=True)
def loss_scale(fw):
    """R̂: the largest loss observed so far, floored at 0.05 (1 before any positive loss)."""
    if fw[2] <= 0.0:
        return 1.0
    return max(fw[2], 0.05)


def check_positive(name: str, v, *, upper: float | None = None) -> float:
    """``v`` as a float > 0 (and <= ``upper``); ConfigError naming ``name`` otherwise."""
    check_real(name, v, lo=0.0, lo_open=True, hi=upper)
    return float(v)


def check_optional_positive(name: str, v, *, upper: float | None = None) -> float:
    """Like :func:`check_positive` but ``None`` (meaning: use the schedule) maps to NaN."""
    return math.nan if v is None else check_positive(name, v, upper=upper)


def check_int(name: str, v, lo: int, hi: int | None = None, why: str = "") -> int:
    """``v`` as an int in ``[lo, hi]``; ConfigError naming ``name`` otherwise."""
    check_integer(name, v, lo, hi, why=why)
    return int(v)


def check_loss_stats(c, name: str) -> None:
    """The (3+,) forward-loss statistics of the serve-or-forward learners: [sum of forward losses,
    their count, loss scale, cached values...]: no inf, sum/count/scale finite and >= 0."""
    c.not_inf(name)
    c.in_range(name, 0.0, index=slice(0, 3), what="forward-loss sum, count and loss scale")


def check_reward_range(reward_min, reward_max) -> None:
    """ConfigError unless ``reward_min < reward_max`` are finite numbers (|value| <= 1e300)."""
    check_real("reward_min", reward_min, lo=-1e300, hi=1e300)
    check_real("reward_max", reward_max, lo=-1e300, hi=1e300)
    if not reward_min < reward_max:
        raise ConfigError(f"reward_max: {reward_max!r} is not allowed; it must be greater than "
                          f"reward_min={reward_min!r}")


class HIAgent(Agent):
    """Base class of the serve-or-forward learners: the common parameters and their validation.

    Parameters
    ----------
    n_actions
        Number of options (>= 2); only ``local_action`` and ``forward_action`` are ever chosen.
    n_features
        Length of the context vector.
    confidence_index
        Position of the local model's max-probability in the context (negative counts from the end).
    local_action
        The "serve locally" option (negative counts from the end).
    forward_action
        The "forward" option; ``-1`` is the last (farthest) option.
    reward_min, reward_max
        Reward range of the affine reward → loss map (see the module docstring).
    seed
        Seed of the agent's generator.
    """

    #: a serve-or-forward learner needs the local model's label when it forwards (full, label_on_forward,
    #: proxy); under bandit feedback it never sees it (hi-lcb then forwards every request)
    feedback_modes = LEARNS_WITHOUT_LOCAL_LABEL

    def _check_hi_params(self) -> None:
        if self.n_actions < 2:
            raise ConfigError(f"n_actions: {self.n_actions} is not allowed; a serve-or-forward learner needs >= 2 options")
        for pname, v, n in (("confidence_index", self.confidence_index, self.n_features),
                            ("local_action", self.local_action, self.n_actions),
                            ("forward_action", self.forward_action, self.n_actions)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -n <= v < n:
                raise ConfigError(f"{pname}: {v!r} is not allowed; it must be an integer in [-{n}, {n})")
        if self.local_action % self.n_actions == self.forward_action % self.n_actions:
            raise ConfigError(
                f"forward_action: {self.forward_action!r} names the same option as local_action={self.local_action!r}"
            )
        check_reward_range(self.reward_min, self.reward_max)

    @property
    def _ci(self) -> int:
        return self.confidence_index % self.n_features

    @property
    def _local(self) -> int:
        return self.local_action % self.n_actions

    @property
    def _forward(self) -> int:
        return self.forward_action % self.n_actions
