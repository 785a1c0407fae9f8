"""Multi-hop delivery: agent scopes, equivalences with the single-decision loop, feedback semantics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from idnbandit.agents.registry import make_agent
from idnbandit.errors import ConfigError, UnknownNameError
from idnbandit.scenario import load_scenario, resolve_trace
from idnbandit.scenario.model import FeedbackSpec
from idnbandit.sim import Engine, simulate
from idnbandit.sim.multihop import check_scope, multihop_layout, node_agents

NOISE = ("wall_time_s", "decisions_per_s", "extra", "agent")


def _core(res) -> dict:
    return {k: v for k, v in res.to_dict().items() if k not in NOISE}


class PyAgent:
    """Hides an agent's kernels (forces the Python loop) and records what it was told."""

    def __init__(self, agent):
        self.agent = agent
        self.n_actions, self.n_features, self.name = agent.n_actions, agent.n_features, agent.name
        self.updates: list[tuple[int, float]] = []

    def act(self, x):
        return self.agent.act(x)

    def update(self, x, a, r, *, rewards=None):
        self.updates.append((int(a), float(r)))
        self.agent.update(x, a, r, rewards=rewards)
        return self


class ThresholdPy:
    """Serve iff x[0] >= theta (Python-only, deterministic)."""

    name = "threshold-py"

    def __init__(self, theta, n_features):
        self.theta, self.n_actions, self.n_features = theta, 2, n_features
        self.updates: list[tuple[int, float]] = []

    def act(self, x):
        return 0 if x[0] >= self.theta else 1

    def update(self, x, a, r, *, rewards=None):
        self.updates.append((int(a), float(r)))
        return self


@pytest.fixture(scope="module")
def four_tier():
    s = load_scenario("idn-4tier")
    return s, resolve_trace(s)


def test_layout_of_shared_edge():
    s = load_scenario("shared-edge")
    per, shared = multihop_layout(s, "per-node"), multihop_layout(s, "shared")
    assert per.nodes == tuple(f"phone-{i}" for i in range(1, 13)) + ("edge",)
    assert per.n_actions == shared.n_actions == 2
    assert per.n_features == 3 + 2 + 1 and per.n_agents == 13
    assert shared.n_features == 3 + 2 + 12 + 1 and shared.n_agents == 1
    assert shared.context_names[5:7] == ("node[phone-2]", "node[phone-3]")
    assert per.max_decisions == 2


def test_bad_scope_is_a_typed_error_with_suggestion():
    with pytest.raises(UnknownNameError, match="did you mean 'per-node'"):
        check_scope("per_node")
    agent = make_agent("linucb", 2, 4, seed=0)
    with pytest.raises(UnknownNameError, match="unknown scope 'sharde'; did you mean 'shared'"):
        simulate("hi-two-tier", agent, 10, scope="sharde")


def test_single_decision_node_scopes_identical_and_equal_to_default():
    s = load_scenario("hi-two-tier")
    lay = multihop_layout(s, "per-node")
    assert lay.nodes == ("phone",)
    runs = {}
    for scope in (None, "shared", "per-node"):
        agent = make_agent("linucb", lay.n_actions, lay.n_features, seed=5)
        runs[scope] = simulate(s, agent, 3000, seed=2, scope=scope)
    assert runs["shared"].extra["path"] == "fused"
    assert _core(runs["shared"]) == _core(runs["per-node"]) == _core(runs[None])
    assert runs["per-node"].extra["node_decision_rate"] == {"phone": 1.0}


def test_same_seed_same_result_and_fused_equals_python(four_tier):
    s, tr = four_tier
    lay = multihop_layout(s, "shared")
    a1 = make_agent("linucb", lay.n_actions, lay.n_features, seed=1)
    a2 = make_agent("linucb", lay.n_actions, lay.n_features, seed=1)
    r1 = simulate(s, a1, 4000, seed=3, trace=tr, scope="shared")
    r2 = simulate(s, a2, 4000, seed=3, trace=tr, scope="shared")
    assert r1.same_trajectory(r2)
    py = PyAgent(make_agent("linucb", lay.n_actions, lay.n_features, seed=1))
    r3 = simulate(s, py, 4000, seed=3, trace=tr, scope="shared")
    assert (r1.extra["path"], r3.extra["path"]) == ("fused", "python")
    assert _core(r1) == _core(r3)
    assert r1.extra["node_forward_rate"] == r3.extra["node_forward_rate"]
    r4 = simulate(s, make_agent("linucb", lay.n_actions, lay.n_features, seed=1), 4000, seed=4, trace=tr,
                  scope="shared")
    assert r4.mean_reward != r1.mean_reward


def test_per_node_learners_see_only_their_own_decisions(four_tier):
    s, tr = four_tier
    lay = multihop_layout(s, "per-node")
    assert lay.nodes == ("phone-1", "phone-2", "phone-3", "phone-4", "edge", "regional")
    agents = [PyAgent(a) for a in node_agents(make_agent("epsilon-greedy", lay.n_actions, lay.n_features,
                                                         seed=7), lay)]
    steps = 3000
    res = simulate(s, agents, steps, seed=0, trace=tr, scope="per-node")
    dec = res.extra["node_decision_rate"]
    fwd = res.extra["node_forward_rate"]
    for agent, node in zip(agents, lay.nodes):
        assert len(agent.updates) == round(dec[node] * steps)  # one update per own decision
    phones = [f"phone-{i}" for i in range(1, 5)]
    assert sum(dec[p] for p in phones) == pytest.approx(1.0)
    assert dec["edge"] == pytest.approx(sum(dec[p] * fwd[p] for p in phones))
    assert dec["regional"] == pytest.approx(dec["edge"] * fwd["edge"])
    # the route ends in one origin option: option rates add up and match the node decisions
    rates = res.option_rates
    assert rates.sum() == pytest.approx(1.0)
    assert rates[0] == pytest.approx(1.0 - dec["edge"])
    assert rates[3] == pytest.approx(dec["regional"] * fwd["regional"])
    # per-node clones got distinct seeds: not every node behaves like the first
    assert len({round(fwd[p], 6) for p in phones}) > 1


def test_routes_match_the_step_engine(four_tier):
    """A slow reference: walk the stops with per-node thresholds, send the option with Engine.apply.
    Stops decide when the request reaches them, but a forward continues exactly as the committed
    route would, so the outcomes are the same."""
    s, tr = four_tier
    s = dataclasses.replace(s, context=dataclasses.replace(s.context, load=False))
    lay = multihop_layout(s, "per-node")
    thetas = [0.9, 0.8, 0.95, 0.7, 0.85, 0.99]
    agents = [ThresholdPy(th, lay.n_features) for th in thetas]
    steps = 1500
    res = simulate(s, agents, steps, seed=1, trace=tr, scope="per-node")
    eng = Engine(s, seed=1, trace=tr)
    c = eng.compiled
    node_theta = dict(zip(lay.nodes, thetas))
    for _ in range(steps):
        eng.next_request()
        path = [n for n in s.path_to_root(eng.origin_name) if n.models]
        k = 0
        for h, node in enumerate(path):
            if h == len(path) - 1 or c.feat[c.opt_i[eng.origin, k, 1], eng.sample, 0] >= node_theta[node.name]:
                break
            k += len(node.models)
        eng.apply(k)
    eng.drain()
    total = sum(done.outcome.reward for done in eng.completed())
    assert res.mean_reward == pytest.approx(total / steps, rel=1e-12)


@pytest.mark.parametrize("mode", ["label_on_forward", "bandit", "full"])
def test_feedback_each_node_observes(four_tier, mode):
    s, tr = four_tier
    s = dataclasses.replace(s, feedback=FeedbackSpec(mode=mode))
    lay = multihop_layout(s, "per-node")
    agents = [ThresholdPy(0.9, lay.n_features) for _ in lay.nodes]
    simulate(s, agents, 1500, seed=0, trace=tr, scope="per-node")
    served = [r for ag in agents for a, r in ag.updates if a == 0]
    forwarded = [r for ag in agents for a, r in ag.updates if a == 1]
    assert served and forwarded
    assert np.isfinite(forwarded).all()  # a forward is always credited with the request's outcome
    if mode == "label_on_forward":
        assert np.isnan(served).all()  # the node that answered never sees the label
    else:
        assert np.isfinite(served).all()


def test_agent_errors(four_tier):
    s, tr = four_tier
    lay = multihop_layout(s, "per-node")
    with pytest.raises(ConfigError, match="needs 6 agent"):
        simulate(s, [ThresholdPy(0.5, lay.n_features)] * 2, 10, trace=tr, scope="per-node")
    with pytest.raises(ConfigError, match="missing"):
        simulate(s, {"edge": ThresholdPy(0.5, lay.n_features)}, 10, trace=tr, scope="per-node")
    with pytest.raises(ConfigError, match="n_features"):
        simulate(s, make_agent("linucb", 2, 99, seed=0), 10, trace=tr, scope="per-node")
    with pytest.raises(ConfigError, match="counterfactual"):
        simulate(s, make_agent("oracle", lay.n_actions, lay.n_features, seed=0), 10, trace=tr, scope="shared")
    two = load_scenario("hi-two-tier")
    cloud_only = dataclasses.replace(two, workload=dataclasses.replace(two.workload, origins=("cloud",)))
    with pytest.raises(ConfigError, match="needs a node that can decide"):
        multihop_layout(cloud_only, "shared")


class RecordingThreshold(ThresholdPy):
    """ThresholdPy that keeps every context it decided on."""

    def __init__(self, theta, n_features):
        super().__init__(theta, n_features)
        self.contexts: list[np.ndarray] = []

    def act(self, x):
        self.contexts.append(np.array(x))
        return super().act(x)


def test_load_context_matches_engine_reference(four_tier):
    """Phone stop: the same entries as the origin context. Edge stop: its own backlog is measured when
    the request reaches the edge, from the jobs that reached it before (no background here, so the
    served requests' records give the reference)."""
    s, tr = four_tier
    s = dataclasses.replace(s, workload=dataclasses.replace(s.workload, background=()))
    lay = multihop_layout(s, "per-node")
    phones = [RecordingThreshold(0.9, lay.n_features) for _ in range(4)]
    edge = RecordingThreshold(0.8, lay.n_features)  # serves what its model is sure of, forwards the rest
    regional = RecordingThreshold(0.0, lay.n_features)  # the regional node always serves
    steps = 1500
    res = simulate(s, [*phones, edge, regional], steps, seed=5, trace=tr, scope="per-node", record_requests=True)
    rq = res.requests
    eng = Engine(s, seed=5, trace=tr)  # the same routes, committed at the origins
    seen = [0] * 4
    for g in range(steps):
        x = eng.next_request()
        o = eng.origin
        xp = phones[o].contexts[seen[o]]
        seen[o] += 1
        np.testing.assert_allclose(xp, [*x[:3], x[3], x[4], 1.0], rtol=0, atol=1e-12)
        eng.apply(int(rq["option"][g]))
    at_edge = rq["option"] == 1
    arr, end = rq["t_node_arrival"][at_edge], rq["t_service_end"][at_edge]
    order = np.argsort(arr)
    arr, end = arr[order], end[order]
    served_ctx = [x for x in edge.contexts if x[0] >= 0.8]
    assert len(served_ctx) == arr.size > 50
    for i in range(arr.size):
        expected = max(0.0, end[:i].max() - arr[i]) if i else 0.0  # one server: the last job's end
        assert served_ctx[i][3] == pytest.approx(expected, abs=1e-12)


def test_many_deliveries_before_one_stop_decision_are_logged_safely():
    """The edge decides (the device hosts no model); an outage of its uplink holds ~1000 forwarded
    requests; when it ends they all answer within milliseconds, while requests are still on the 50 ms
    link to the edge: the edge's next decision has ~1000 feedback deliveries due first, more than the
    delivery log's initial room. The core must grow it first (it once wrote past its end)."""
    from idnbandit.agents import Fixed
    from idnbandit.scenario import ContextSpec, Fault, Link, ModelSpec, Node, Scenario, Workload
    from idnbandit.scenario.model import SyntheticTraceSpec, TraceSpec

    nodes = (Node("dev", "device", 10.0, parent="edge", uplink=Link(50.0, 1e6)),
             Node("edge", "edge", 1e6, servers=64, models=("a",), parent="cloud", uplink=Link(1.0, 1e6)),
             Node("cloud", "cloud", 1e6, servers=64, models=("b",)))
    models = (ModelSpec("a", "small", 0.01, 10, input_bytes=100, output_bytes=10),
              ModelSpec("b", "big", 0.01, 10, input_bytes=100, output_bytes=10))
    sc = Scenario("burst", nodes, models, Workload(("dev",), rate_per_s=100.0, timeout_ms=60_000.0),
                  TraceSpec(synthetic=SyntheticTraceSpec(("small", "big"), (0.6, 0.9))),
                  context=ContextSpec(load=True), faults=(Fault("link_outage", "edge", 1.0, 11.0),))
    lay = multihop_layout(sc, "per-node")
    assert lay.nodes == ("edge",)
    res = simulate(sc, Fixed(lay.n_actions, lay.n_features, option=1), 1500, seed=0, scope="per-node",
                   record_requests=True)
    rq = res.requests
    assert np.sort(rq["order_delivered"]).tolist() == list(range(1500))
    released = (rq["t_decision"] > 1.0) & (rq["t_decision"] < 10.9)
    assert released.sum() > 900 and np.ptp(rq["t_complete"][released]) < 0.05
