"""Whole-scenario checks: names, topology, placement, workload and fault references.

Messages use the TOML layout of a scenario file (``[[nodes]] 'edge'.parent``, ``[workload].origins``)
and start with the file name when the scenario was read from one (``Scenario.source``).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..errors import ConfigError, close_matches
from . import limits as _lim
from .model import ArrivalProcess

if TYPE_CHECKING:
    from .model import Scenario

__all__ = ["validate_scenario", "check_option_counts", "check_background_load", "background_jobs_per_s",
           "option_counts", "node_loc", "model_loc"]


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
        hint = close_matches(value, known) if len(known) <= 10_000 else []
        msg = f"{_where(s)}{field}: unknown {kind} {value!r}"
        shown = ", ".join(known[:20]) + (f", ... ({len(known):,} in all)" if len(known) > 20 else "")
        msg += f"; did you mean {hint[0]!r}?" if hint else f"; known {kind}s: {shown}"
        raise ConfigError(msg)


def _check_names(s: Scenario) -> None:
    w = _where(s)
    if not s.nodes:
        raise ConfigError(f"{w}[[nodes]]: empty; a scenario needs at least one node")
    if not s.models:
        raise ConfigError(f"{w}[[models]]: empty; a scenario needs at least one model")
    for kind, items, hi in (("nodes", s.nodes, _lim.MAX_NODES), ("models", s.models, _lim.MAX_MODELS),
                            ("faults", s.faults, _lim.MAX_FAULTS)):
        if len(items) > hi:
            raise ConfigError(f"{w}[[{kind}]]: {len(items):,} entries are not allowed; at most {hi:,}")
    for kind, names in (("node", [n.name for n in s.nodes]), ("model", [m.name for m in s.models])):
        if len(set(names)) != len(names):
            counts = Counter(names)
            dup = sorted(x for x, c in counts.items() if c > 1)
            raise ConfigError(
                f"{w}[[{kind}s]].name: duplicate {kind} name(s) {', '.join(map(repr, dup))}; names must be unique"
            )


def option_counts(s: Scenario) -> dict[str, int]:
    """Node name -> number of options K of a request arriving there (models on its path to the root).

    Computed once per scenario in O(nodes) (memoised up the tree); requires an acyclic topology
    (:func:`validate_scenario` checks it first).
    """
    k = s.__dict__.get("_option_counts")
    if k is None:
        k = _walk_tree(s)
    return k


def _walk_tree(s: Scenario) -> dict[str, int]:
    """Option counts of every node; a parent cycle raises :class:`ConfigError`. O(nodes) overall."""
    by_name = s._index()[0]
    k: dict[str, int] = {}
    for n in s.nodes:
        if n.name in k:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        cur: str | None = n.name
        while cur is not None and cur not in k:
            if cur in on_path:
                cycle = " -> ".join([*path[on_path[cur]:], cur])
                raise ConfigError(
                    f"{_where(s)}{node_loc(n.name)}.parent: parent cycle {cycle}; every node needs a path to a root "
                    "(a node without parent)"
                )
            on_path[cur] = len(path)
            path.append(cur)
            cur = by_name[cur].parent
        total = 0 if cur is None else k[cur]
        for name in reversed(path):
            total += len(by_name[name].models)
            k[name] = total
    object.__setattr__(s, "_option_counts", k)
    return k


def _check_topology(s: Scenario) -> None:
    w = _where(s)
    node_names = s._index()[0]
    model_names = s._index()[1]
    total_servers = 0
    for n in s.nodes:
        if n.parent is not None and n.parent not in node_names:
            _ref(s, f"{node_loc(n.name)}.parent", n.parent, list(node_names), "node")
        for m in n.models:
            if m not in model_names:
                _ref(s, f"{node_loc(n.name)}.models", m, list(model_names), "model")
        if len(set(n.models)) != len(n.models):
            raise ConfigError(f"{w}{node_loc(n.name)}.models: {list(n.models)} lists a model twice; list each once")
        total_servers += n.servers
    if total_servers > _lim.MAX_TOTAL_SERVERS:
        raise ConfigError(
            f"{w}[[nodes]].servers: {total_servers:,} servers in all are not allowed; at most "
            f"{_lim.MAX_TOTAL_SERVERS:,} (the simulator keeps one free time per server)"
        )

    # every node reaches a root without a cycle (and its option count is known)
    _walk_tree(s)

    # tiers never go down towards the root
    for n in s.nodes:
        if n.parent is not None and node_names[n.parent].tier.level < n.tier.level:
            raise ConfigError(
                f"{w}{node_loc(n.name)}.parent: {n.parent!r} is tier {node_names[n.parent].tier}, "
                f"below this node's tier {n.tier}; a parent must be at the same or a higher tier"
            )

    # placement fits in memory
    for n in s.nodes:
        used = sum(model_names[m].memory_mb for m in n.models)
        if used > n.memory_mb:
            raise ConfigError(
                f"{w}{node_loc(n.name)}.memory_mb: {n.memory_mb:g} is too small; the hosted models "
                f"{list(n.models)} need {used:g} MB; raise memory_mb to >= {used:g} or move a model"
            )


def background_jobs_per_s(s: Scenario) -> float:
    """Background job arrival rate summed over nodes: sum of utilisation * servers / mean service (1/s)."""
    by_name = s._index()[0]
    return sum(b.utilisation * by_name[b.node].servers / (b.mean_service_ms / 1e3) for b in s.workload.background)


def check_background_load(s: Scenario, request_rate: float, what: str) -> None:
    """Raise :class:`ConfigError` if the simulator would process more than
    ``MAX_BACKGROUND_JOBS_PER_REQUEST`` background jobs per request.

    ``request_rate`` is the mean request rate of all origins together (1/s); ``what`` says how it
    was obtained (for the message).
    """
    wl = s.workload
    if not wl.background:
        return
    jobs = background_jobs_per_s(s)
    per_request = jobs / request_rate
    if per_request > _lim.MAX_BACKGROUND_JOBS_PER_REQUEST:
        by_name = s._index()[0]
        top = max(wl.background, key=lambda b: b.utilisation * by_name[b.node].servers / b.mean_service_ms)
        raise ConfigError(
            f"{_where(s)}[workload].rate_per_s / [[workload.background]] {top.node!r}.mean_service_ms: "
            f"background jobs arrive at {jobs:.3g}/s and requests at {request_rate:.3g}/s ({what}), "
            f"{per_request:.3g} background jobs per request is not allowed; it must be <= "
            f"{_lim.fmt_bound(_lim.MAX_BACKGROUND_JOBS_PER_REQUEST)} (each job is simulated): raise mean_service_ms "
            "or rate_per_s, or lower utilisation"
        )


def _check_workload(s: Scenario) -> None:
    w = _where(s)
    node_names = s._index()[0]
    wl = s.workload
    for o in wl.origins:
        if o not in node_names:
            _ref(s, "[workload].origins", o, list(node_names), "node")
    if len(set(wl.origins)) != len(wl.origins):
        raise ConfigError(f"{w}[workload].origins: {list(wl.origins)} lists an origin twice; list each once")
    k = option_counts(s)
    for o in wl.origins:
        if not k[o]:
            raise ConfigError(
                f"{w}[workload].origins: origin {o!r} has no option (no model on its path to the root); "
                "place a model on it or on one of its ancestors"
            )
        if k[o] > _lim.MAX_OPTIONS:
            raise ConfigError(
                f"{w}[workload].origins: origin {o!r} has {k[o]:,} options (models on its path to the root); "
                f"at most {_lim.MAX_OPTIONS:,} are allowed"
            )
    for b in wl.background:
        if b.node not in node_names:
            _ref(s, f"[[workload.background]] {b.node!r}.node", b.node, list(node_names), "node")
    nodes_bg = [b.node for b in wl.background]
    if len(set(nodes_bg)) != len(nodes_bg):
        dup = sorted(x for x, c in Counter(nodes_bg).items() if c > 1)
        raise ConfigError(
            f"{w}[[workload.background]].node: {', '.join(map(repr, dup))} appears twice; "
            "give each node at most one background entry"
        )
    if wl.process is not ArrivalProcess.REPLAY:  # a replay file's rate is checked with the file
        check_background_load(s, len(wl.origins) * wl.rate_per_s, "origins x rate_per_s")


def check_option_counts(s: Scenario) -> None:
    """Raise :class:`ConfigError` unless every origin has the same number of options K.

    The simulator keeps one K per scenario (agents have a fixed action space). Scenario files are
    checked at load (:func:`idnbandit.scenario.scenario_from_dict`); a :class:`Scenario` built in
    Python is checked when the simulator compiles it.
    """
    k = option_counts(s)
    counts = {o: k[o] for o in s.workload.origins}
    if len(set(counts.values())) > 1:
        shown = list(counts.items())
        detail = ", ".join(f"{o!r}: {n}" for o, n in shown[:20]) + (", ..." if len(shown) > 20 else "")
        raise ConfigError(
            f"{_where(s)}[workload].origins: origins have different numbers of options ({detail}); the simulator "
            "needs one option count K per scenario, so every origin's path must host the same number of options"
        )


def _check_faults(s: Scenario) -> None:
    w = _where(s)
    by_name = s._index()[0]
    for i, f in enumerate(s.faults, start=1):
        if f.target not in by_name:
            _ref(s, f"[[faults]] #{i}.target", f.target, list(by_name), "node")
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
