"""Small scenarios and traces built directly from the dataclasses (no TOML, no built-ins)."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.scenario import (
    Background,
    ContextSpec,
    FeedbackSpec,
    Link,
    ModelSpec,
    Node,
    RewardSpec,
    Scenario,
    SyntheticTraceSpec,
    TraceSpec,
    Workload,
)
from idnbandit.traces import Trace

_TRACE_SPEC = TraceSpec(synthetic=SyntheticTraceSpec(("small", "mid", "big"), (0.6, 0.75, 0.9)))


def make_trace(n: int = 500, c: int = 5, seed: int = 0, columns=("small", "mid", "big"),
               accs=(0.6, 0.75, 0.9)) -> Trace:
    """A trace whose models are right with the given probabilities (shared difficulty)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    difficulty = rng.random(n)
    probs = np.empty((len(columns), n, c), np.float32)
    for m, acc in enumerate(accs):
        right = difficulty < acc
        wrong = (labels + 1 + rng.integers(0, c - 1, n)) % c
        pred = np.where(right, labels, wrong)
        logits = rng.normal(0, 1, (n, c))
        logits[np.arange(n), pred] += 2.0 + 2.0 * rng.random(n)
        p = np.exp(logits)
        probs[m] = p / p.sum(axis=1, keepdims=True)
    return Trace(probs, labels, tuple(columns))


def three_tier(*, origins=("dev0", "dev1"), rate=50.0, feedback="bandit", delay_requests=0, delay_s=0.0,
               background=(), faults=(), deadline_ms=None, load=True, process="poisson", **wl) -> Scenario:
    """device (small) -> edge (mid) -> cloud (big); one device per origin."""
    devs = [Node(d, "device", 20.0, models=("small",), parent="edge",
                 uplink=Link(5.0, 20.0, cost_per_mb=0.01)) for d in origins]
    nodes = (*devs,
             Node("edge", "edge", 200.0, servers=2, models=("mid",), parent="cloud",
                  uplink=Link(20.0, 100.0, cost_per_mb=0.02), cost_per_request=0.001),
             Node("cloud", "cloud", 2000.0, servers=4, memory_mb=4096, models=("big",), cost_per_request=0.01))
    models = (ModelSpec("small", "small", 0.06, 10, input_bytes=20_000),
              ModelSpec("mid", "mid", 1.8, 50, input_bytes=20_000),
              ModelSpec("big", "big", 17.6, 400, input_bytes=20_000))
    return Scenario(
        name="three-tier", nodes=nodes, models=models,
        workload=Workload(origins=tuple(origins), rate_per_s=rate, background=tuple(background), process=process,
                          **wl),
        trace=_TRACE_SPEC, reward=RewardSpec(w_acc=1.0, w_lat_per_s=2.0, w_cost=1.0, deadline_ms=deadline_ms),
        feedback=FeedbackSpec(feedback, delay_requests=delay_requests, delay_s=delay_s),
        context=ContextSpec(load=load), faults=tuple(faults), seed=3,
    )


def single_node(*, servers=1, rate=1.0, gflops=0.001, speed=1.0, utilisation=0.5, mean_service_ms=100.0,
                service="exponential") -> Scenario:
    """One device node with background load; requests are tiny (``gflops / speed`` seconds)."""
    node = Node("solo", "device", speed, servers=servers, models=("small",))
    return Scenario(
        name="single", nodes=(node,), models=(ModelSpec("small", "small", gflops, 10),),
        workload=Workload(origins=("solo",), rate_per_s=rate,
                          background=(Background("solo", utilisation, mean_service_ms, service),) if utilisation else (),
                          timeout_ms=1e9),
        trace=_TRACE_SPEC, context=ContextSpec(load=True),
    )


@pytest.fixture(scope="session")
def trace():
    return make_trace()
