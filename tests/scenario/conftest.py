"""Shared fixtures: a small valid scenario (as a TOML-ready dict) and a trace file it points at."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from idnbandit.traces import Trace


def small_trace(seed: int = 0, n: int = 200, c: int = 3) -> Trace:
    """Two models ('small' worse than 'big') on an n-sample, c-class task."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    probs = np.empty((2, n, c), dtype=np.float32)
    for m, acc in enumerate((0.7, 0.9)):
        right = rng.random(n) < acc
        pred = np.where(right, labels, (labels + 1 + rng.integers(0, c - 1, size=n)) % c)
        p = rng.dirichlet(np.ones(c), size=n) * 0.4
        p[np.arange(n), pred] += 0.6
        probs[m] = p / p.sum(axis=1, keepdims=True)
    return Trace(probs, labels, ("small", "big"), {"dataset": "test"})


BASE = {
    "name": "tiny",
    "description": "a phone and an edge box under a cloud",
    "seed": 3,
    "trace": {"path": "outputs.npz"},
    "models": [
        {"name": "m-small", "trace_column": "small", "gflops": 0.057, "memory_mb": 9.8},
        {"name": "m-big", "trace_column": "big", "gflops": 17.6, "memory_mb": 330.3},
    ],
    "nodes": [
        {"name": "phone", "tier": "device", "speed_gflops": 17.1, "memory_mb": 512.0, "models": ["m-small"],
         "parent": "edge", "uplink": {"propagation_ms": 15.0, "bandwidth_mbps": 6.0}},
        {"name": "edge", "tier": "edge", "speed_gflops": 260.0, "servers": 2, "memory_mb": 8192.0,
         "parent": "cloud", "uplink": {"propagation_ms": 4.0, "bandwidth_mbps": 1000.0}},
        {"name": "cloud", "tier": "cloud", "speed_gflops": 5370.0, "servers": 4, "memory_mb": 24576.0,
         "models": ["m-big"], "cost_per_request": 1.0},
    ],
    "workload": {
        "origins": ["phone"],
        "rate_per_s": 10.0,
        "background": [{"node": "edge", "utilisation": 0.3, "mean_service_ms": 10.0}],
    },
    "reward": {"w_acc": 1.0, "w_lat_per_s": 1.0, "w_cost": 0.05, "deadline_ms": 500.0},
    "feedback": {"mode": "bandit"},
    "context": {"confidence": True, "load": True},
    "faults": [{"kind": "link_bandwidth", "target": "phone", "start_s": 10.0, "end_s": 20.0, "factor": 0.5}],
}


#: a trace section that generates its trace, so that a scenario dict needs no file
SYNTHETIC = {"synthetic": {"model_names": ["small", "big"], "accuracies": [0.7, 0.9], "n_classes": 3,
                           "n_samples": 500, "seed": 1}}


def synthetic_base() -> dict:
    """A fresh copy of :data:`BASE` whose trace is :data:`SYNTHETIC` (loads without files)."""
    d = copy.deepcopy(BASE)
    d["trace"] = copy.deepcopy(SYNTHETIC)
    return d


def put(d: dict, path: tuple, value) -> None:
    """Set the entry at ``path`` (keys and list indices) of a nested scenario dict."""
    for key in path[:-1]:
        d = d[key]
    d[path[-1]] = value


def load_dict(d: dict, source: str):
    """The scenario of dict ``d``, through its TOML text (as a file would be read)."""
    import tomli_w

    from idnbandit.scenario import loads_scenario

    return loads_scenario(tomli_w.dumps(d), source=source)


@pytest.fixture
def base() -> dict:
    """A fresh deep copy of the valid base scenario (its trace is ``outputs.npz`` beside the file)."""
    return copy.deepcopy(BASE)


@pytest.fixture
def scenario_dir(tmp_path):
    """A folder holding ``outputs.npz`` (+ .json), the trace of :data:`BASE`."""
    small_trace().save(tmp_path / "outputs.npz")
    return tmp_path
