"""Whole-scenario checks: names, topology, placement, workload and fault references."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, close_matches

if TYPE_CHECKING:
    from .model import Scenario

__all__ = ["validate_scenario"]


def _where(s: Scenario) -> str:
    return f"{s.source}: " if s.source else ""


def _ref(s: Scenario, field: str, value: str, known: list[str], kind: str) -> None:
    if value not in known:
        hint = close_matches(value, known)
        msg = f"{_where(s)}{field}: unknown {kind} {value!r}"
        msg += f"; did you mean {hint[0]!r}?" if hint else f"; known {kind}s: {', '.join(known)}"
        raise ConfigError(msg)


def validate_scenario(s: Scenario) -> None:
    """Raise :class:`ConfigError` naming the field if ``s`` is inconsistent."""
    w = _where(s)
    node_names = [n.name for n in s.nodes]
    model_names = [m.name for m in s.models]
    if not s.nodes:
        raise ConfigError(f"{w}nodes: empty; a scenario needs at least one node")
    if not s.models:
        raise ConfigError(f"{w}models: empty; a scenario needs at least one model")
    for kind, names in (("node", node_names), ("model", model_names)):
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ConfigError(f"{w}{kind}s.name: duplicate {kind} name(s) {', '.join(map(repr, dup))}")

    by_name = {n.name: n for n in s.nodes}
    for n in s.nodes:
        if n.parent is not None:
            _ref(s, f"nodes[{n.name}].parent", n.parent, node_names, "node")
        for m in n.models:
            _ref(s, f"nodes[{n.name}].models", m, model_names, "model")
        if len(set(n.models)) != len(n.models):
            raise ConfigError(f"{w}nodes[{n.name}].models: a model is listed twice")

    # every node reaches a root without a cycle
    for n in s.nodes:
        seen = [n.name]
        cur = n.parent
        while cur is not None:
            if cur in seen:
                cycle = " -> ".join([*seen[seen.index(cur):], cur])
                raise ConfigError(f"{w}nodes[{n.name}].parent: parent cycle {cycle}; every node needs a path to a root")
            seen.append(cur)
            cur = by_name[cur].parent

    # tiers never go down towards the root
    for n in s.nodes:
        if n.parent is not None and by_name[n.parent].tier.level < n.tier.level:
            raise ConfigError(
                f"{w}nodes[{n.name}].parent: parent {n.parent!r} is tier {by_name[n.parent].tier}, "
                f"below this node's tier {n.tier}; a parent must be at the same or a higher tier"
            )

    # placement fits in memory
    specs = {m.name: m for m in s.models}
    for n in s.nodes:
        used = sum(specs[m].memory_mb for m in n.models)
        if used > n.memory_mb:
            raise ConfigError(
                f"{w}nodes[{n.name}].memory_mb: hosted models need {used:g} MB but the node has {n.memory_mb:g} MB; "
                "raise memory_mb or move a model"
            )

    # workload references and options
    for o in s.workload.origins:
        _ref(s, "workload.origins", o, node_names, "node")
        if not s.options(o):
            raise ConfigError(
                f"{w}workload.origins: origin {o!r} has no option (no model on its path to the root); "
                "place a model on it or on one of its ancestors"
            )
    if len(set(s.workload.origins)) != len(s.workload.origins):
        raise ConfigError(f"{w}workload.origins: an origin is listed twice")
    for b in s.workload.background:
        _ref(s, "workload.background.node", b.node, node_names, "node")
    for f in s.faults:
        _ref(s, "faults.target", f.target, node_names, "node")
        if f.kind.value.startswith("link") and by_name[f.target].parent is None:
            raise ConfigError(f"{w}faults.target: {f.target!r} is a root and has no uplink for a {f.kind} fault")
