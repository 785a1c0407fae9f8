"""Agent names for the command line: ``linucb``, ``hedge-hi``, ``always-local``, ``linucb(alpha=0.5)``.

Each agent module registers its class with :func:`register`; presets (a class plus fixed
parameters, e.g. ``always-cloud``) with :func:`register_preset`. Unknown names raise
:class:`UnknownNameError` with close-match suggestions.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, UnknownNameError

__all__ = ["register", "register_preset", "register_factory", "agent_names", "agent_class_by_name", "parse_agent_spec",
           "make_agent", "AgentEntry"]


@dataclass(frozen=True)
class AgentEntry:
    name: str
    cls: type
    description: str
    params: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, AgentEntry] = {}


def register(name: str, description: str):
    """Class decorator: make ``cls`` available as ``name`` on the command line."""

    def deco(cls):
        cls.name = name
        cls.description = description
        _REGISTRY[name] = AgentEntry(name, cls, description)
        return cls

    return deco


def register_preset(name: str, cls: type, description: str, **params) -> None:
    """Register ``name`` as ``cls`` with ``params`` fixed (e.g. ``always-local`` = Fixed(option=0))."""
    _REGISTRY[name] = AgentEntry(name, cls, description, dict(params))


# names built by a factory(n_actions, n_features, seed, **params) registered from a package above agents/
# (idnbandit.ensembles registers its ens-* strategies here when imported); not listed by agent_names()
_FACTORIES: dict[str, tuple[Any, str]] = {}


def register_factory(name: str, factory, description: str) -> None:
    """Make ``name`` buildable by :func:`make_agent` through ``factory`` (for non-Agent strategies)."""
    _FACTORIES[name] = (factory, description)


def _ensure_loaded() -> None:
    from .. import agents  # noqa: F401  (importing the package registers every agent module)


def agent_names() -> dict[str, str]:
    """Registered names and their one-line descriptions, sorted by name."""
    _ensure_loaded()
    return {k: _REGISTRY[k].description for k in sorted(_REGISTRY)}


def agent_entry(name: str) -> AgentEntry:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UnknownNameError("agent", name, _REGISTRY)
    return _REGISTRY[name]


def agent_class_by_name(class_name: str) -> type:
    """The registered class whose Python name is ``class_name`` (used by ``Agent.load``)."""
    _ensure_loaded()
    for e in _REGISTRY.values():
        if e.cls.__name__ == class_name:
            return e.cls
    raise UnknownNameError("agent class", class_name, {e.cls.__name__ for e in _REGISTRY.values()})


_SPEC = re.compile(r"^\s*([A-Za-z][\w\-]*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_agent_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"linucb(alpha=0.5, ridge=1)"`` → ``("linucb", {"alpha": 0.5, "ridge": 1})``.

    Values are Python literals (numbers, strings, booleans, None, tuples/lists).

    Raises
    ------
    ConfigError
        If the spec is malformed.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"agent spec {spec!r}: expected a string like 'linucb(alpha=0.5)'")
    m = _SPEC.match(spec)
    if not m:
        raise ConfigError(f"agent spec {spec!r}: expected NAME or NAME(key=value, ...), e.g. 'linucb(alpha=0.5)'")
    name, args = m.group(1), m.group(2)
    params: dict[str, Any] = {}
    if args and args.strip():
        try:
            call = ast.parse(f"f({args})", mode="eval").body
        except SyntaxError:
            raise ConfigError(f"agent spec {spec!r}: cannot parse the arguments {args!r}; use key=value pairs") from None
        if call.args:
            raise ConfigError(f"agent spec {spec!r}: positional arguments are not allowed; use key=value pairs")
        for kw in call.keywords:
            if kw.arg is None:
                raise ConfigError(f"agent spec {spec!r}: '**' is not allowed")
            try:
                params[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                raise ConfigError(
                    f"agent spec {spec!r}: value of {kw.arg!r} is not a literal (number, string, bool, None, list)"
                ) from None
    return name, params


def make_agent(spec: str, n_actions: int, n_features: int, seed=None, **extra):
    """Build an agent from a name or spec string; preset and spec parameters are merged.

    Unknown hyperparameters raise :class:`ConfigError` listing the accepted ones.
    """
    name, params = parse_agent_spec(spec)
    if name in _FACTORIES and name not in _REGISTRY:
        return _FACTORIES[name][0](n_actions, n_features, seed, **{**extra, **params})
    entry = agent_entry(name)
    merged = {**entry.params, **extra, **params}
    allowed = [p for p in entry.cls._param_names() if p not in ("n_actions", "n_features", "seed")]
    for k in merged:
        if k not in allowed:
            from ..errors import close_matches

            hint = close_matches(k, allowed)
            raise ConfigError(
                f"agent {name!r}: unknown parameter {k!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; accepted: {', '.join(allowed) or 'none'}")
            )
    return entry.cls(n_actions=n_actions, n_features=n_features, seed=seed, **merged)
