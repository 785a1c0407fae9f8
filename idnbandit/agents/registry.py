"""Agent names for the command line: ``linucb``, ``hedge-hi``, ``always-local``, ``linucb(alpha=0.5)``.

Each agent module registers its class with :func:`register`; presets (a class plus fixed
parameters, e.g. ``always-cloud``) with :func:`register_preset`. Unknown names raise
:class:`UnknownNameError` with close-match suggestions.

Where the names come from (found on the first lookup, nothing to list by hand):

* every module of the :mod:`idnbandit.agents` package is imported (``pkgutil``), so a new module
  with an ``@register`` class is found without an edit to ``agents/__init__.py``;
* on the first listing, or the first name not found, the modules named by the
  ``idnbandit.agents`` entry points are imported (:data:`ENTRY_POINT_GROUP`): the ``ens-*``
  strategies of :mod:`idnbandit.ensembles` come this way (the agents never import the packages
  above them), and so do a third-party package's agents (``[project.entry-points."idnbandit.agents"]``
  in its ``pyproject.toml``; see docs/agents.md, "How to add an agent").
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, UnknownNameError
from ._params import show

__all__ = ["register", "register_preset", "register_factory", "agent_names", "factory_names", "agent_class_by_name",
           "parse_agent_spec", "make_agent", "AgentEntry", "ENTRY_POINT_GROUP"]

#: entry-point group of the modules that register agents when imported (idnbandit.ensembles, plug-ins)
ENTRY_POINT_GROUP = "idnbandit.agents"


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
# (idnbandit.ensembles registers its ens-* strategies here, loaded through its entry point); not listed by
# agent_names() (they are not Agent classes): factory_names() lists them
_FACTORIES: dict[str, tuple[Any, str]] = {}


def register_factory(name: str, factory, description: str) -> None:
    """Make ``name`` buildable by :func:`make_agent` through ``factory`` (for non-Agent strategies)."""
    _FACTORIES[name] = (factory, description)


_loaded = {"modules": False, "entry_points": False}


def _import_agent_modules() -> None:
    """Import every module of the agents package once (each registers its agents when imported)."""
    if _loaded["modules"]:
        return
    from .. import agents as package

    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
    _loaded["modules"] = True  # only once all imported: a failing module fails every lookup, loudly


def _load_entry_points() -> None:
    """Import the modules named by the ``idnbandit.agents`` entry points, once.

    A plug-in that fails to import is reported by a warning and left out: one broken package does not
    take the other agents down.
    """
    if _loaded["entry_points"]:
        return
    _loaded["entry_points"] = True  # first: a plug-in that looks names up while importing does not recurse
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - any import failure of a third-party package
            warnings.warn(f"agent plug-in {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP!r}) "
                          f"could not be loaded and is left out: {type(e).__name__}: {e}", RuntimeWarning,
                          stacklevel=3)


def _ensure_loaded(name: str | None = None) -> None:
    """Find the agents: the package's modules always; the entry points when listing (``name`` None) or
    when ``name`` is not registered yet."""
    _import_agent_modules()
    if name is None or (name not in _REGISTRY and name not in _FACTORIES):
        _load_entry_points()


def agent_names() -> dict[str, str]:
    """Registered agent names and their one-line descriptions, sorted by name.

    The ``ens-*`` ensemble strategies (and other factories) are listed by :func:`factory_names`.

    Examples
    --------
    >>> names = agent_names()
    >>> names["linucb"]
    'LinUCB (disjoint): per-option ridge regression + upper confidence bound (Li et al. 2010)'
    >>> [n for n in names if n.startswith("hi")]
    ['hi-lcb', 'hi-lcb-lite', 'hil-f', 'hil-n']
    """
    _ensure_loaded()
    return {k: _REGISTRY[k].description for k in sorted(_REGISTRY)}


def factory_names() -> dict[str, str]:
    """Names built by a factory (the ``ens-*`` ensemble strategies, plug-ins') and their descriptions."""
    _ensure_loaded()
    return {k: _FACTORIES[k][1] for k in sorted(_FACTORIES)}


def agent_entry(name: str) -> AgentEntry:
    _ensure_loaded(name)
    if name not in _REGISTRY:
        raise UnknownNameError("agent", name, _REGISTRY)
    return _REGISTRY[name]


def agent_class_by_name(class_name: str) -> type:
    """The registered class whose Python name is ``class_name`` (used by ``Agent.load``)."""
    for load_plugins in (False, True):
        _import_agent_modules()
        if load_plugins:
            _load_entry_points()
        for e in _REGISTRY.values():
            if e.cls.__name__ == class_name:
                return e.cls
    raise UnknownNameError("agent class", class_name, {e.cls.__name__ for e in _REGISTRY.values()})


_SPEC = re.compile(r"^\s*([A-Za-z][\w\-]*)\s*(?:\((.*)\))?\s*$", re.S)
MAX_SPEC_LENGTH = 10_000  # characters; a spec is typed or written in a TOML file
_MAX_DEPTH = 16  # nesting of lists / tuples / dicts in a value
_ALLOWED = "numbers (or 10**k), strings, booleans, None, and lists, tuples or dicts (string keys) of those"


def _literal(node: ast.AST, where: str, depth: int = 0):
    """The Python value of a literal ``node``: only the kinds listed in ``_ALLOWED`` (no sets, bytes,
    complex numbers, expressions or names); duplicated dict keys are rejected."""
    if depth > _MAX_DEPTH:
        raise ConfigError(f"{where}: nested more than {_MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise ConfigError(f"{where}: {type(v).__name__} values are not allowed; use {_ALLOWED}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        v = node.operand.value
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Constant) \
            and isinstance(node.right, ast.Constant) and type(node.left.value) is int and type(node.right.value) is int:
        base, exp = node.left.value, node.right.value  # 10**12: a power of two integer literals, bounded
        if not 0 <= exp <= 4096 or exp * max(abs(base), 1).bit_length() > 4096:
            raise ConfigError(f"{where}: {base}**{exp} is not allowed; a power must stay below 2**4096")
        return base**exp
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e, f"{where}[{i}]", depth + 1) for i, e in enumerate(node.elts)]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise ConfigError(f"{where}: '**' is not allowed inside a dict")
            key = _literal(k, f"{where} key", depth + 1)
            if not isinstance(key, str):
                raise ConfigError(f"{where}: dict key {key!r} is not allowed; dict keys must be strings")
            if key in out:
                raise ConfigError(f"{where}: dict key {key!r} is given twice")
            out[key] = _literal(v, f"{where}[{key!r}]", depth + 1)
        return out
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for the message
        text = type(node).__name__
    if len(text) > 40:
        text = text[:37] + "..."
    raise ConfigError(f"{where}: {text!r} is not a literal; use {_ALLOWED}")


def parse_agent_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"linucb(alpha=0.5, ridge=1)"`` → ``("linucb", {"alpha": 0.5, "ridge": 1})``.

    Values are literals only: numbers (also a power of two integers such as ``10**6``), strings,
    booleans, None, and lists, tuples or dicts (with string keys) of those — never other
    expressions, names or calls; nothing is evaluated. A key may
    appear once. Specs are at most ``MAX_SPEC_LENGTH`` (10,000) characters.

    Raises
    ------
    ConfigError
        If the spec is malformed, too long, repeats a key or holds a value that is not a literal.

    Examples
    --------
    >>> parse_agent_spec("linucb(alpha=0.5, ridge=1)")
    ('linucb', {'alpha': 0.5, 'ridge': 1})
    >>> parse_agent_spec("dqn(hidden=[32, 32], lr=1e-3)")
    ('dqn', {'hidden': [32, 32], 'lr': 0.001})
    """
    if not isinstance(spec, str):
        raise ConfigError(f"agent spec {show(spec, 80)}: expected a string like 'linucb(alpha=0.5)'")
    if len(spec) > MAX_SPEC_LENGTH:
        raise ConfigError(f"agent spec of {len(spec):,} characters: at most {MAX_SPEC_LENGTH:,} are allowed")
    m = _SPEC.match(spec)
    if not m:
        raise ConfigError(f"agent spec {show(spec, 80)}: expected NAME or NAME(key=value, ...), e.g. 'linucb(alpha=0.5)'")
    name, args = m.group(1), m.group(2)
    params: dict[str, Any] = {}
    if args and args.strip():
        try:
            call = ast.parse(f"f({args})", mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            raise ConfigError(f"agent spec {show(spec, 80)}: cannot parse the arguments {show(args, 60)}; use key=value pairs "
                              "with literal values") from None
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.func.id != "f":
            raise ConfigError(f"agent spec {show(spec, 80)}: cannot parse the arguments {show(args, 60)}; use key=value pairs")
        if call.args:
            raise ConfigError(f"agent spec {show(spec, 80)}: positional arguments are not allowed; use key=value pairs")
        for kw in call.keywords:
            if kw.arg is None:
                raise ConfigError(f"agent spec {show(spec, 80)}: '**' is not allowed")
            if kw.arg in params:
                raise ConfigError(f"agent spec {show(spec, 80)}: parameter {kw.arg!r} is given twice")
            params[kw.arg] = _literal(kw.value, f"agent spec {show(spec, 80)}: value of {kw.arg!r}")
    return name, params


def make_agent(spec: str, n_actions: int, n_features: int, seed=None, **extra):
    """Build an agent from a name or spec string; preset and spec parameters are merged.

    Unknown hyperparameters raise :class:`ConfigError` listing the accepted ones.

    Examples
    --------
    >>> import numpy as np
    >>> agent = make_agent("epsilon-greedy(epsilon=0.05)", n_actions=2, n_features=2, seed=0)
    >>> agent.epsilon
    0.05
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(500):
    ...     x = np.array([rng.random(), 1.0])
    ...     a = agent.act(x)
    ...     _ = agent.update(x, a, x[0] if a == 0 else 0.5)   # serve locally iff confident
    >>> [agent.act([p, 1.0]) for p in (0.1, 0.9)]
    [1, 0]
    """
    name, params = parse_agent_spec(spec)
    twice = sorted(set(params) & set(extra))
    if twice:
        raise ConfigError(f"agent spec {show(spec, 80)}: parameter {twice[0]!r} is also given as a keyword argument; "
                          "give it once")
    _ensure_loaded(name)
    if name in _FACTORIES and name not in _REGISTRY:
        return _FACTORIES[name][0](n_actions, n_features, seed, **{**extra, **params})
    if name not in _REGISTRY:
        raise UnknownNameError("agent", name, {**_REGISTRY, **_FACTORIES})
    entry = _REGISTRY[name]
    merged = {**entry.params, **extra, **params}
    allowed = [p for p in entry.cls._param_names() if p not in ("n_actions", "n_features", "seed")]
    for k in merged:
        if k in ("n_actions", "n_features", "seed"):
            raise ConfigError(f"agent {name!r}: parameter {k!r} is set by the caller (the scenario or the "
                              "benchmark), not in the spec")
        if k not in allowed:
            from ..errors import close_matches

            hint = close_matches(k, allowed)
            raise ConfigError(
                f"agent {name!r}: unknown parameter {k!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; accepted: {', '.join(allowed) or 'none'}")
            )
    return entry.cls(n_actions=n_actions, n_features=n_features, seed=seed, **merged)
