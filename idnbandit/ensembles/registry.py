"""Names of the ensemble strategies for the command line (``--agents ens-seq(threshold=0.8)``).

The names are added to the agent registry (:func:`idnbandit.agents.registry.register_factory`) when
this module is imported. The registry imports it by itself, through the ``idnbandit.agents`` entry
point declared in ``pyproject.toml``, on its first listing or first unknown name: so
``make_agent("ens-cucb", ...)`` works without importing :mod:`idnbandit.ensembles` first, and the
agents package never imports this one. :func:`~idnbandit.sim.simulate` recognises the strategies by
``is_ensemble_strategy`` and runs its multi-query loop.
"""

from __future__ import annotations

from ..agents.registry import parse_agent_spec, register_factory
from ..errors import ConfigError, UnknownNameError, close_matches
from .cucb import CUCB
from .selection import LearnedStopping, QueryAll, Sequential, SingleModel
from .strategy import Strategy

__all__ = ["STRATEGIES", "strategy_names", "make_strategy"]

#: strategy name -> (class, one-line description)
STRATEGIES: dict[str, tuple[type, str]] = {
    "ens-single": (SingleModel, "query one model (option=k) through the ensemble loop"),
    "ens-vote-all": (QueryAll, "query every model in parallel, answer with the aggregator"),
    "ens-seq": (Sequential, "query models in order until the aggregate's support >= threshold"),
    "ens-seq-learned": (LearnedStopping, "query models in order; stopping rule learned online (Monte-Carlo)"),
    "ens-cucb": (CUCB, "subset of models chosen by CUCB (combinatorial semi-bandit, per-model prices)"),
}


def strategy_names() -> dict[str, str]:
    """Strategy names and their descriptions, sorted."""
    return {k: STRATEGIES[k][1] for k in sorted(STRATEGIES)}


def _build(name: str):
    cls = STRATEGIES[name][0]

    def factory(n_actions: int, n_features: int, seed=None, **params) -> Strategy:
        allowed = [p for p in cls._param_names() if p not in ("n_actions", "n_features", "seed")]
        for k in params:
            if k not in allowed:
                hint = close_matches(k, allowed)
                raise ConfigError(f"strategy {name!r}: unknown parameter {k!r}"
                                  + (f"; did you mean {hint[0]!r}?" if hint else f"; accepted: {', '.join(allowed)}"))
        return cls(n_actions=n_actions, n_features=n_features, seed=seed, **params)

    return factory


def make_strategy(spec: str, n_actions: int, n_features: int = 1, seed=None) -> Strategy:
    """Build a strategy from a spec string such as ``"ens-seq(threshold=0.8, order=[0, 3])"``.

    Raises
    ------
    UnknownNameError
        If the name is not a strategy (close names are suggested).
    ConfigError
        On a malformed spec or a bad parameter.

    Examples
    --------
    >>> from idnbandit.sim import simulate
    >>> s = make_strategy("ens-seq(threshold=0.9, order=[0, 3])", 4)  # phone first, the cloud if unsure
    >>> r = simulate("ensemble-hetero", s, 500, seed=0)
    >>> round(r.accuracy, 3), r.extra["queries_per_request"]
    (0.932, 1.656)
    """
    name, params = parse_agent_spec(spec)
    if name not in STRATEGIES:
        raise UnknownNameError("ensemble strategy", name, STRATEGIES)
    return _build(name)(n_actions, n_features, seed, **params)


for _name, (_cls, _desc) in STRATEGIES.items():  # on import: the registry's entry point names this module
    register_factory(_name, _build(_name), _desc)
