"""Hindsight baselines: the best static confidence threshold on a recorded request stream.

The best fixed *option* in hindsight comes with every :class:`~idnbandit.sim.RunResult`; the best
static *threshold* (serve locally iff the local max probability ≥ θ, else forward) needs the
per-request confidences and counterfactual rewards, which :func:`counterfactual_stream` records.
Counterfactual rewards depend on the queue state, so they are the decision-time estimates
(docs/simulator.md) recorded while sending every request with ``option`` (exact for scenarios
whose reward does not depend on queueing, such as ``hi-two-tier``).
"""

from __future__ import annotations

import numpy as np

from .engine import Engine

__all__ = ["counterfactual_stream", "best_threshold"]


def counterfactual_stream(scenario, steps: int, seed: int | None = None, *, option: int = 0,
                          trace=None) -> tuple[np.ndarray, np.ndarray]:
    """Local max probability (steps,) and counterfactual estimates (steps, K) of each request.

    The requests are the ones ``simulate(scenario, agent, steps, seed)`` sees (common random numbers).
    """
    eng = Engine(scenario, seed=seed, trace=trace)
    p = np.empty(steps)
    rs = None
    for t in range(steps):
        p[t] = eng.next_request()[0]
        cf = eng.counterfactual_rewards()
        if rs is None:
            rs = np.empty((steps, cf.shape[0]))
        rs[t] = cf
        eng.apply(option)
    return p, rs


def best_threshold(p: np.ndarray, rewards: np.ndarray, *, local: int = 0, forward: int = -1
                   ) -> tuple[float, np.ndarray]:
    """Best θ in hindsight for "serve with ``local`` iff p ≥ θ, else ``forward``", and its rewards.

    Returns
    -------
    theta, per_request_rewards
        The smallest maximiser θ over all observed confidences (and 0, and just above 1), and the
        (steps,) rewards that threshold obtains.
    """
    p = np.asarray(p, dtype=np.float64)
    r_local, r_fwd = rewards[:, local], rewards[:, forward]
    order = np.argsort(p, kind="stable")
    ps = p[order]
    # total(θ) = Σ_{p<θ} r_fwd + Σ_{p≥θ} r_local; evaluate at θ = each distinct p and above the max
    gain = np.concatenate([[0.0], np.cumsum(r_fwd[order] - r_local[order])])  # forward the i lowest
    candidates = np.searchsorted(ps, np.unique(ps), side="left")
    cut = np.concatenate([candidates, [len(ps)]])
    best_i = int(cut[np.argmax(gain[cut])])
    theta = float(ps[best_i]) if best_i < len(ps) else float(np.nextafter(ps[-1], np.inf))
    return theta, np.where(p >= theta, r_local, r_fwd)
