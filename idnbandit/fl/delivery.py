"""The simulation side of federated training: the trained scenario, the delivery policy, routing.

These helpers run the simulator on the models that :mod:`idnbandit.fl` trains; fl/ sits above
``sim/`` in the layers (imports point down: bench -> fl -> sim -> scenario -> traces -> agents):

* :func:`fl_scenario`: the base scenario with one model per node, reading its outputs from a trace
  of the trained models (column = node name); compute, memory, links and workload unchanged.
* :func:`learn_policy`: a fresh delivery agent learned online with :func:`~idnbandit.sim.simulate`.
* :func:`estimate_routing_sim`: run that (frozen) policy request by request on an
  :class:`~idnbandit.sim.Engine` and count which tier serves each key (confidence bin of the origin's
  model, or true class): the rates behind delivery-aware importance weights and exit serving rates.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..scenario import Scenario, Tier, scenario_from_dict, scenario_to_dict
from ..traces import Trace
from .routing import RoutingTable, confidence_keys, estimate_routing

__all__ = ["TIER_NAMES", "fl_scenario", "node_levels", "learn_policy", "estimate_routing_sim"]

#: routing targets: the tier levels, device (0) to cloud (3)
TIER_NAMES = tuple(str(t) for t in Tier)


def node_levels(scenario: Scenario) -> dict[str, int]:
    """Tier level of every node; every node must host exactly one model.

    Raises
    ------
    ConfigError
        If a node hosts no model or several (the FL command trains one model per node).
    """
    out = {}
    for n in scenario.nodes:
        if len(n.models) != 1:
            raise ConfigError(f"nodes[{n.name}].models: {list(n.models)}; federated training needs exactly one "
                              "model per node (its trained network replaces that model's trace column)")
        out[n.name] = n.tier.level
    return out


def fl_scenario(base: Scenario, trace_path: str, *, name: str, description: str = "",
                base_dir: str = "") -> Scenario:
    """``base`` rewired to a trace of trained per-node models.

    Each node's model becomes ``"<model>@<node>"`` (same GFLOPs, memory and bytes as in ``base``)
    reading trace column ``<node>``; the trace is ``[trace] path = trace_path``.

    Parameters
    ----------
    base
        The scenario training ran on.
    trace_path
        Path of the trace ``.npz``, relative to ``base_dir`` (the folder the scenario is written to).
    name, description
        Of the new scenario.
    base_dir
        Folder that relative paths are resolved against.

    Returns
    -------
    Scenario
        Validated, without the data check (the trace may not be written yet).
    """
    node_levels(base)
    data = scenario_to_dict(base)
    specs = {m["name"]: m for m in data["models"]}
    models = []
    for nd in data["nodes"]:
        spec = dict(specs[nd["models"][0]])
        spec["name"] = f"{spec['name']}@{nd['name']}"
        spec["trace_column"] = nd["name"]
        models.append(spec)
        nd["models"] = [spec["name"]]
    data["models"] = models
    data["trace"] = {"path": trace_path}
    data["name"] = name
    data["description"] = description or f"{base.name} with federated-trained node models"
    return scenario_from_dict(data, source=f"<{name}>", base_dir=base_dir)


def learn_policy(scenario: Scenario, trace: Trace, spec: str, steps: int, seed: int):
    """A fresh delivery agent ``spec`` learned online for ``steps`` requests.

    Returns
    -------
    agent
        The agent after learning (its state holds the learned policy).
    result
        The :class:`~idnbandit.sim.RunResult` of the learning run.
    """
    from ..agents.registry import make_agent
    from ..sim import n_features, n_options, simulate

    agent = make_agent(spec, n_options(scenario), n_features(scenario), seed=seed)
    result = simulate(scenario, agent, steps, seed, trace=trace, curve_points=2)
    return agent, result


def estimate_routing_sim(scenario: Scenario, trace: Trace, agent, steps: int, seed: int, *,
                         kind: str = "confidence", n_bins: int = 10, prior: float = 1.0) -> RoutingTable:
    """Routing rates ``P(tier | key)`` of ``agent`` (acting, not learning) over ``steps`` requests.

    Parameters
    ----------
    scenario, trace
        A scenario from :func:`fl_scenario` (trace column of a node = its name) and its trace.
    agent
        The delivery policy; only ``act`` is called.
    steps
        Simulated requests.
    seed
        Run seed of the request stream.
    kind
        ``"confidence"``: key = bin of the origin model's max probability; ``"class"``: true label.
    n_bins
        Confidence bins.
    prior
        Smoothing pseudo-count.

    Returns
    -------
    RoutingTable
        Targets :data:`TIER_NAMES`.
    """
    from ..sim import Engine

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"routing_steps: {steps!r} is not allowed; it must be a positive integer")
    eng = Engine(scenario, seed=seed, trace=trace)
    origin_col = {n.name: trace.column(n.name) for n in scenario.nodes if n.name in trace.model_names}
    maxp = trace.probs.max(axis=2)
    keys = np.empty(steps, dtype=np.int64)
    served = np.full(steps, -1, dtype=np.int64)

    def count(done) -> None:  # the serving tier of each finalised request, by request number
        for c in done:
            served[c.request] = TIER_NAMES.index(c.outcome.tier)

    for i in range(steps):
        x = eng.next_request()
        s = eng.sample
        if kind == "class":
            keys[i] = trace.labels[s]
        else:
            keys[i] = confidence_keys(maxp[origin_col[eng.origin_name], s:s + 1], n_bins)[0]
        eng.apply(int(agent.act(x)))
        count(eng.completed())
    eng.drain()  # the requests still in flight finish
    count(eng.completed())
    n_keys = trace.n_classes if kind == "class" else n_bins
    return estimate_routing(keys, served, TIER_NAMES, n_keys, kind=kind, prior=prior)
