"""Whole-scenario checks: names, topology, placement, workload and fault references.

Messages use the TOML layout of a scenario file (``[[nodes]] 'edge'.parent``, ``[workload].origins``)
and start with the file name when the scenario was read from one (``Scenario.source``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, close_matches

if TYPE_CHECKING:
    from .model import Scenario

__all__ = ["validate_scenario", "check_option_counts", "node_loc", "model_loc"]


def node_loc(name: str) -> str:
    """Location of node ``name`` in a scenario file, e.g. ``[[nodes]] 'edge'``."""
    return f"[[nodes]] {name!r}"


def model_loc(name: str) -> str:
    """Location of model ``name`` in a scenario file, e.g. ``[[models]] 'resnet18'``."""
    return f"[[models]] {name!r}"


def _where(s: Scenario) -> str:
    return f"{s.source}: " if s.source else ""


def _ref(s: Scenario, field: str, value: str, known: list[str], kind: str) -> None:
    if value not in known:
        hint = close_matches(value, known)
        msg = f"{_where(s)}{field}: unknown {kind} {value!r}"
        msg += f"; did you mean {hint[0]!r}?" if hint else f"; known {kind}s: {', '.join(known)}"
        raise ConfigError(msg)


def _check_names(s: Scenario) -> None:
    w = _where(s)
    if not s.nodes:
        raise ConfigError(f"{w}[[nodes]]: empty; a scenario needs at least one node")
    if not s.models:
        raise ConfigError(f"{w}[[models]]: empty; a scenario needs at least one model")
    for kind, names in (("node", [n.name for n in s.nodes]), ("model", [m.name for m in s.models])):
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ConfigError(
                f"{w}[[{kind}s]].name: duplicate {kind} name(s) {', '.join(map(repr, dup))}; names must be unique"
            )


def _check_topology(s: Scenario) -> None:
    w = _where(s)
    node_names = [n.name for n in s.nodes]
    model_names = [m.name for m in s.models]
    by_name = {n.name: n for n in s.nodes}
    for n in s.nodes:
        if n.parent is not None:
            _ref(s, f"{node_loc(n.name)}.parent", n.parent, node_names, "node")
        for m in n.models:
            _ref(s, f"{node_loc(n.name)}.models", m, model_names, "model")
        if len(set(n.models)) != len(n.models):
            raise ConfigError(f"{w}{node_loc(n.name)}.models: {list(n.models)} lists a model twice; list each once")

    # every node reaches a root without a cycle
    for n in s.nodes:
        seen = [n.name]
        cur = n.parent
        while cur is not None:
            if cur in seen:
                cycle = " -> ".join([*seen[seen.index(cur):], cur])
                raise ConfigError(
                    f"{w}{node_loc(n.name)}.parent: parent cycle {cycle}; every node needs a path to a root "
                    "(a node without parent)"
                )
            seen.append(cur)
            cur = by_name[cur].parent

    # tiers never go down towards the root
    for n in s.nodes:
        if n.parent is not None and by_name[n.parent].tier.level < n.tier.level:
            raise ConfigError(
                f"{w}{node_loc(n.name)}.parent: {n.parent!r} is tier {by_name[n.parent].tier}, "
                f"below this node's tier {n.tier}; a parent must be at the same or a higher tier"
            )

    # placement fits in memory
    specs = {m.name: m for m in s.models}
    for n in s.nodes:
        used = sum(specs[m].memory_mb for m in n.models)
        if used > n.memory_mb:
            raise ConfigError(
                f"{w}{node_loc(n.name)}.memory_mb: {n.memory_mb:g} is too small; the hosted models "
                f"{list(n.models)} need {used:g} MB; raise memory_mb to >= {used:g} or move a model"
            )


def _check_workload(s: Scenario) -> None:
    w = _where(s)
    node_names = [n.name for n in s.nodes]
    for o in s.workload.origins:
        _ref(s, "[workload].origins", o, node_names, "node")
    if len(set(s.workload.origins)) != len(s.workload.origins):
        raise ConfigError(f"{w}[workload].origins: {list(s.workload.origins)} lists an origin twice; list each once")
    for o in s.workload.origins:
        if not s.options(o):
            raise ConfigError(
                f"{w}[workload].origins: origin {o!r} has no option (no model on its path to the root); "
                "place a model on it or on one of its ancestors"
            )
    for b in s.workload.background:
        _ref(s, f"[[workload.background]] {b.node!r}.node", b.node, node_names, "node")
    nodes_bg = [b.node for b in s.workload.background]
    dup = sorted({x for x in nodes_bg if nodes_bg.count(x) > 1})
    if dup:
        raise ConfigError(
            f"{w}[[workload.background]].node: {', '.join(map(repr, dup))} appears twice; "
            "give each node at most one background entry"
        )


def check_option_counts(s: Scenario) -> None:
    """Raise :class:`ConfigError` unless every origin has the same number of options K.

    The simulator keeps one K per scenario (agents have a fixed action space). Scenario files are
    checked at load (:func:`idnbandit.scenario.scenario_from_dict`); a :class:`Scenario` built in
    Python is checked when the simulator compiles it.
    """
    counts = {o: len(s.options(o)) for o in s.workload.origins}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{o!r}: {k}" for o, k in counts.items())
        raise ConfigError(
            f"{_where(s)}[workload].origins: origins have different numbers of options ({detail}); the simulator "
            "needs one option count K per scenario, so every origin's path must host the same number of options"
        )


def _check_faults(s: Scenario) -> None:
    w = _where(s)
    node_names = [n.name for n in s.nodes]
    by_name = {n.name: n for n in s.nodes}
    for i, f in enumerate(s.faults, start=1):
        _ref(s, f"[[faults]] #{i}.target", f.target, node_names, "node")
        if f.kind.value.startswith("link") and by_name[f.target].parent is None:
            raise ConfigError(
                f"{w}[[faults]] #{i}.target: {f.target!r} is a root and has no uplink for a {f.kind} fault; "
                "target a node that has a parent"
            )


def validate_scenario(s: Scenario) -> None:
    """Raise :class:`ConfigError` naming the field if ``s`` is inconsistent.

    Checks unique names, references (parents, hosted models, origins, background nodes, fault
    targets), parent cycles and tier order, memory, and that every origin has the same number
    of options ``K > 0``.
    """
    _check_names(s)
    _check_topology(s)
    _check_workload(s)
    _check_faults(s)
