"""Every node decides: multi-hop delivery with a ``shared`` or ``per-node`` agent scope.

``simulate(scenario, agent, steps, scope="per-node")`` (or ``scope="shared"``) runs the event core
(:mod:`idnbandit.sim.core`) with a decision at every decision stop instead of one at the origin.

Semantics
---------
A *stop* is a node of a request's path that hosts a model. A request arrives at its origin and
visits the stops in order. At a *decision stop* (a stop that can forward, or that hosts several
models) the stop's learner picks an action: ``j < M`` serves the request with the node's ``j``-th
model, ``M`` (when there is a next stop) forwards it to the next stop, whose learner decides in
turn. A stop that hosts one model and has no stop above (usually the root) serves what reaches
it. All decision nodes share one action count ``A`` (the largest ``M + 1``); on a node with fewer
valid actions the extra ones stand for its last valid action (forward when it can forward).

What a node observes (its context, when the request *arrives* at it: at the request's arrival for
the origin, after the up transmissions for a node further up; the state at that moment): its own
first model's confidence on the sample (``maxprob, margin, entropy`` if ``context.confidence``);
the backlog in seconds of the node each action sends the request to (its own servers for serve
actions, the next stop's for forward, if ``context.load``); with ``scope="shared"`` and ``D > 1``
decision nodes, ``D - 1`` node-identity indicators (dummy coding: decision node ``d >= 1`` sets entry
``d - 1``; with the bias this is the one-hot of the node identity without its redundant column, and
nothing when there is a single decision node); the bias 1.0. A decision stop reached after the
request's client gave up is not asked: it serves with its first model (nobody would learn from it),
or, with ``cancel_on_timeout``, the request is dropped there.

What a node learns from (when the request completes or times out, after the scenario's feedback
delay; in order of completion, interleaved with later decisions): only the decisions it made, each
with the reward of the *request's* true end-to-end outcome for the action it took (a forward is
credited with whatever the nodes above achieved). By ``feedback.mode``: ``full`` also reveals the
reward each of its own models would have earned (the origin's decision-time estimates), and that of
forwarding when the next stop only serves; ``bandit`` nothing more; ``label_on_forward`` nothing to
a node that served, and to a node that forwarded the label (its models' rewards too); ``proxy``
like ``label_on_forward`` with the answer that came back standing in for the label. A timeout
reveals only the failure.

Outcomes come from the same event core as the single-decision simulator: a forward continues
exactly as a route committed at the origin would, so the route ends in one option of the origin's
option list and the metrics (regret vs oracle and best fixed option) are over the origin's options.
With one decision node at the origin whose forward leads to a serve-only stop (``hi-two-tier``) the
run is bit-identical to the default loop.

Agents
------
``scope="shared"``: one learner decides at every decision node. ``scope="per-node"``: one learner
per decision node (in ``MultiHopLayout.nodes`` order): give a sequence or a ``{node: agent}`` dict,
or one agent, used at the first decision node and cloned for the others with seeds derived from
its own (``SeedSequence([seed, d])``). Agents with numba kernels run in the fused driver of
:mod:`idnbandit.sim.loop` (a tuple of per-node kernel states, one ``select`` / ``update`` pair);
others in its Python driver; both give identical trajectories.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, UnknownNameError
from .compiled import n_features
from .loop import check_agent

__all__ = ["SCOPES", "MultiHopLayout", "check_scope", "multihop_layout", "multihop_dims", "node_agents"]

SCOPES = ("shared", "per-node")


def check_scope(scope) -> str:
    """``scope`` if it is one of :data:`SCOPES`, else :class:`UnknownNameError` with suggestions.

    Examples
    --------
    >>> check_scope("per-node")
    'per-node'
    """
    if not isinstance(scope, str) or scope not in SCOPES:
        raise UnknownNameError("scope", str(scope), SCOPES)
    return scope


class MultiHopLayout(NamedTuple):
    """Decision nodes, actions and context of a scenario in multi-hop mode (arrays for the kernels)."""

    scope: str
    nodes: tuple[str, ...]  # decision nodes, in scenario.nodes order
    n_actions: int  # A
    n_features: int  # F
    max_decisions: int  # most decision stops on one path
    stop_i: np.ndarray  # (O, Hs, 5) int64 ST_* columns
    dec_i: np.ndarray  # (D, 2) int64 DEC_VALID, DEC_AGENT
    mh_i: np.ndarray  # (3,) int64 A, F, n_ident
    context_names: tuple[str, ...]

    @property
    def n_agents(self) -> int:
        return 1 if self.scope == "shared" else len(self.nodes)


def multihop_layout(scenario, scope: str) -> MultiHopLayout:
    """The :class:`MultiHopLayout` of ``scenario`` under ``scope``.

    Raises
    ------
    UnknownNameError
        If ``scope`` is not ``"shared"`` or ``"per-node"``.
    ConfigError
        If no node on any origin's path has a decision to make.
    """
    scope = check_scope(scope)
    origins = scenario.workload.origins
    names = [n.name for n in scenario.nodes]
    # stops of each origin: (node index, first option index, model count)
    stops = []
    for origin in origins:
        row, k = [], 0
        for node in scenario.path_to_root(origin):
            if node.models:
                row.append((names.index(node.name), k, len(node.models)))
                k += len(node.models)
        stops.append(row)
    deciders: set[int] = set()
    for row in stops:
        for h, (n, _, m) in enumerate(row):
            if h + 1 < len(row) or m > 1:
                deciders.add(n)
    if not deciders:
        raise ConfigError(f"scope: {scope!r} needs a node that can decide (forward or choose among models); "
                          f"no node on the paths of {', '.join(origins)} can, so use the default scope (None)")
    dec_nodes = sorted(deciders)
    d_n = len(dec_nodes)
    h_s = max(len(r) for r in stops)
    stop_i = np.full((len(origins), h_s, 5), -1, np.int64)
    valid = np.zeros(d_n, np.int64)
    for o, row in enumerate(stops):
        for h, (n, k0, m) in enumerate(row):
            d = dec_nodes.index(n) if n in deciders else -1
            nxt = -1
            if h + 1 < len(row) and row[h + 1][0] not in deciders:
                nxt = row[h + 1][1]
            stop_i[o, h] = (n, k0, m, d, nxt)
            if d >= 0:
                valid[d] = m + (h + 1 < len(row))
    a_n = int(valid.max())
    n_ident = d_n - 1 if scope == "shared" else 0
    ctx = scenario.context
    f_n = 3 * ctx.confidence + a_n * ctx.load + n_ident + 1
    agent = np.zeros(d_n, np.int64) if scope == "shared" else np.arange(d_n, dtype=np.int64)
    cnames = (["maxprob", "margin", "entropy"] if ctx.confidence else []) \
        + ([f"backlog_s[{a}]" for a in range(a_n)] if ctx.load else []) \
        + [f"node[{names[dec_nodes[d]]}]" for d in range(1, n_ident + 1)] + ["bias"]
    max_dec = int(max(sum(1 for (n, _, _) in row if n in deciders) for row in stops))
    return MultiHopLayout(scope, tuple(names[n] for n in dec_nodes), a_n, int(f_n), max_dec, stop_i,
                          np.stack([valid, agent], axis=1).astype(np.int64),
                          np.array([a_n, f_n, n_ident], np.int64), tuple(cnames))


def multihop_dims(scenario, scope: str | None) -> tuple[int, int]:
    """``(n_actions, n_features)`` an agent needs under ``scope`` (None: the single-decision loop)."""
    if scope is None:
        from .compiled import n_options

        return n_options(scenario), n_features(scenario)
    lay = multihop_layout(scenario, scope)
    return lay.n_actions, lay.n_features


def _derived_seed(seed, d: int):
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return seed.spawn(1)[0]
    return int(np.random.SeedSequence([int(seed), int(d)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def node_agents(agent, layout: MultiHopLayout) -> list:
    """The learners of ``layout``: ``[agent]`` for ``shared``; for ``per-node`` one per decision node.

    Parameters
    ----------
    agent
        One agent, a sequence of ``len(layout.nodes)`` agents, or a ``{node name: agent}`` dict.
        A single agent under ``per-node`` decides at the first decision node; the others get clones
        (``agent.get_params()`` with a seed derived from ``agent.seed`` and the node's index).

    Raises
    ------
    ConfigError
        On a wrong number of agents, unknown node names, or a single agent that cannot be cloned.
    """
    d_n = len(layout.nodes)
    if isinstance(agent, Mapping):
        missing = [n for n in layout.nodes if n not in agent]
        extra = [n for n in agent if n not in layout.nodes]
        if missing or extra:
            raise ConfigError(f"agent: the dict must have exactly the decision nodes {list(layout.nodes)} as keys "
                              f"(missing {missing}, unknown {extra})")
        agents = [agent[n] for n in layout.nodes]
    elif isinstance(agent, Sequence) and not isinstance(agent, (str, bytes)):
        agents = list(agent)
    elif layout.scope == "shared":
        agents = [agent]
    else:
        if not callable(getattr(agent, "get_params", None)):
            raise ConfigError(f"agent: {type(agent).__name__} has no get_params() to clone it per node; pass a list "
                              f"of {d_n} agents (one per decision node: {', '.join(layout.nodes)})")
        agents = [agent]
        for d in range(1, d_n):
            params = copy.deepcopy(dict(agent.get_params()))
            params["seed"] = _derived_seed(params.get("seed"), d)
            agents.append(type(agent)(**params))
    if len(agents) != layout.n_agents:
        raise ConfigError(f"agent: scope {layout.scope!r} needs {layout.n_agents} agent(s) "
                          f"({', '.join(layout.nodes)}), got {len(agents)}")
    for a in agents:
        if getattr(a, "needs_counterfactuals", False):
            raise ConfigError(f"agent: {type(a).__name__} decides from the origin's counterfactual rewards and has "
                              "no per-node form; use the default scope (None)")
        check_agent(a, layout.n_actions, layout.n_features)
    return agents
