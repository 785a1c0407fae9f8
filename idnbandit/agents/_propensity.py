"""Action probabilities of an agent, for decision logs and off-policy evaluation (:mod:`idnbandit.ope`).

Each agent class says what it can report in ``propensity_kind``:

* ``"deterministic"``: the choice is a function of the agent's state and the context; it has
  probability 1 (LinUCB, HI-LCB, NeuralUCB, the fixed baselines).
* ``"stochastic"``: the choice is drawn from a distribution the agent knows exactly (ε-greedy, EXP3,
  EXP4, HIL-F/N, Hedge-HI, SquareCB, Q-learning, DQN, random); a kernel agent gives it through a
  ``prob(state, x, u, a) -> float`` kernel (``_prob_kernel``), which the fused simulator calls right
  after ``select`` with the same state, context and uniforms.
* ``"sampled"``: the choice is randomised but its probability has no closed form (Thompson
  sampling: LinTS, NeuralTS); not loggable for off-policy evaluation.
* ``None``: unknown (river's policies do not expose theirs).

:meth:`Propensities.probs` gives every option's probability in the current state without drawing
randomness or learning; :meth:`Propensities.act_with_prob` acts and returns the chosen option's
probability from the same state and uniforms as the choice.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["Propensities", "PROPENSITY_KINDS"]

PROPENSITY_KINDS = ("deterministic", "stochastic", "sampled", None)
_NO_U = np.zeros(0)


class Propensities:
    """Mixin of :class:`~idnbandit.agents.Agent`: ``probs``, ``act_with_prob`` and ``propensity_kind``."""

    propensity_kind: str | None = None
    learns: bool = True  # False for agents whose policy never changes (baselines)
    _prob_kernel = None  # numba prob(state, x, u, a) -> float of a stochastic kernel agent

    def _why_no_probs(self) -> str:
        kind = self.propensity_kind
        if kind == "sampled":
            return "its choices are sampled (Thompson sampling) and their probability has no closed form"
        return f"it does not report action probabilities (propensity_kind is {kind!r})"

    def probs(self, context) -> np.ndarray:
        """(n_actions,) probability of each option for ``context`` in the current state.

        Draws no randomness and learns nothing. Deterministic agents return a one-hot vector.

        Raises
        ------
        ConfigError
            For agents whose ``propensity_kind`` is ``"sampled"`` or None.
        """
        kind = self.propensity_kind
        x = self._check_context(context)
        if kind == "deterministic":
            out = np.zeros(self.n_actions)
            out[self._deterministic_choice(x)] = 1.0
            return out
        if kind == "stochastic" and self._prob_kernel is not None:
            u = np.zeros(self.n_uniforms)
            return np.array([self._prob_kernel(self._state, x, u, a) for a in range(self.n_actions)])
        raise ConfigError(f"{self.name}: no action probabilities: {self._why_no_probs()}")

    def _deterministic_choice(self, x: np.ndarray) -> int:
        if self._select_kernel is not None:
            return int(self._select_kernel(self._state, x, _NO_U))
        return int(self.act(x))

    def act_with_prob(self, context) -> tuple[int, float]:
        """Choose an option (as :meth:`act`, same randomness) and return it with its probability.

        Raises
        ------
        ConfigError
            For agents whose ``propensity_kind`` is ``"sampled"`` or None.
        """
        kind = self.propensity_kind
        if kind == "deterministic":
            return int(self.act(context)), 1.0
        if kind == "stochastic" and self._prob_kernel is not None and self._select_kernel is not None:
            x = self._check_context(context)
            u = self._rng.random(self.n_uniforms)
            # every option's probability before the choice (select may change state, e.g. SARSA's flush)
            p = [self._prob_kernel(self._state, x, u, k) for k in range(self.n_actions)]
            a = int(self._select_kernel(self._state, x, u))
            return a, float(p[a])
        raise ConfigError(f"{self.name}: no action probabilities: {self._why_no_probs()}")
