"""Policies for off-policy evaluation: an agent as a policy, and a policy as an agent.

:func:`agent_policy` turns an agent into the :data:`~idnbandit.ope.estimators.Policy` the estimators
need (contexts → probabilities of every option), from its ``probs(x)`` (stochastic agents) or its
choices (deterministic agents: probability 1 on ``act(x)``). The agent is evaluated *as it is*
(frozen): train it first, e.g. with :func:`~idnbandit.ope.replay`.

:class:`PolicyAgent` goes the other way: a policy function runs in the simulator like an agent
(``simulate(scenario, PolicyAgent(policy, K), steps)``), which is how the truth of an off-policy
estimate is measured: the target policy actually run on the same requests.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .estimators import Policy, check_probs

__all__ = ["agent_policy", "PolicyAgent"]


def agent_policy(agent, name: str | None = None) -> Policy:
    """The policy of ``agent`` in its current state (not updated while evaluated).

    Raises
    ------
    ConfigError
        The agent reports neither probabilities (``probs``) nor ``propensity_kind = "deterministic"``.
    """
    label = name or getattr(agent, "name", None) or type(agent).__name__
    kind = getattr(agent, "propensity_kind", None)
    k = getattr(agent, "n_actions", None)
    if kind == "stochastic" and callable(getattr(agent, "probs", None)):
        def policy(x: np.ndarray) -> np.ndarray:
            return np.array([agent.probs(row) for row in x]).reshape(x.shape[0], -1)
    elif kind == "deterministic":
        if k is None:
            raise ConfigError(f"policy {label}: the agent has no n_actions")

        def policy(x: np.ndarray) -> np.ndarray:
            out = np.zeros((x.shape[0], k))
            out[np.arange(x.shape[0]), [int(agent.act(row)) for row in x]] = 1.0
            return out
    else:
        from ..agents import propensity_problem

        raise ConfigError(f"policy {label}: {propensity_problem(agent) or 'it reports no probs()'}; off-policy "
                          "estimators need a 'deterministic' or 'stochastic' agent")
    return policy


class PolicyAgent:
    """Run a policy function as an agent (it does not learn): ``act`` samples from ``policy(x)``.

    Parameters
    ----------
    policy
        Contexts (n, d) → probabilities (n, K).
    n_actions
        K.
    seed
        Seed of the sampling.
    """

    name = "policy"

    def __init__(self, policy: Policy, n_actions: int, seed=None, name: str | None = None):
        if not callable(policy):
            raise ConfigError("policy: must be a callable taking contexts (n, d) and returning (n, K) probabilities")
        self.policy, self.n_actions = policy, int(n_actions)
        self.rng = np.random.default_rng(seed)
        self.propensity_kind = "stochastic"
        if name:
            self.name = name

    def probs(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return check_probs(self.policy(x[None, :]), 1, self.n_actions, self.name)[0]

    def act_with_prob(self, x) -> tuple[int, float]:
        p = self.probs(x)
        a = int(min(np.searchsorted(np.cumsum(p), self.rng.random(), side="right"), self.n_actions - 1))
        while p[a] == 0.0:  # rounding at the top of the cumulative sum
            a -= 1
        return a, float(p[a])

    def act(self, x) -> int:
        return self.act_with_prob(x)[0]

    def update(self, x, a, r, *, rewards=None):
        return self
