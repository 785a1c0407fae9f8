"""Shared fixtures of the agent tests: how to build every registered agent, and a small feedback stream.

The conformance tests (test_conformance.py) iterate over ``agent_names()``; agents that need other
sizes or parameters than the defaults below get them from :data:`AGENT_OVERRIDES` (the per-agent
construction hook: add an entry when a new agent cannot run with the defaults).
"""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.agents import make_agent
from idnbandit.agents.registry import agent_entry, agent_names

N_ACTIONS = 3
N_FEATURES = 4

# name -> {"n_actions": ..., "n_features": ..., "params": {...}, "saveable": False} (any key optional).
# "saveable": False marks agents documented to refuse save() with a ConfigError (river policies whose
# state cannot be stored without pickle); the round-trip test then checks that refusal instead.
AGENT_OVERRIDES: dict[str, dict] = {
    "sw-linucb": {"params": {"window": 16}},
    "exp4": {"params": {"n_experts": 11}},
    "river-linucb": {"saveable": False},
    # torch agents: tiny networks, and training inside the 40-step streams (so checkpoints hold optimiser state)
    "dqn": {"params": {"hidden": (8,), "batch_size": 8, "learning_starts": 5, "target_update": 5}},
    "neural-ucb": {"params": {"hidden": (8,), "train_steps": 3, "batch_size": 8, "dense_rounds": 10}},
    "neural-ts": {"params": {"hidden": (8,), "train_steps": 3, "batch_size": 8, "dense_rounds": 10}},
}


# Test-only names for agents built with a setting that switches their implementation; the conformance
# tests run them like registered agents: name -> (registered name, constructor parameters).
VARIANTS: dict[str, tuple[str, dict]] = {
    "linucb[pruned]": ("linucb", {"selection": "pruned"}),  # the pruned kernel pair at a size "auto" keeps plain
}


def registry_name(name: str) -> str:
    """The registered name behind a test name (itself, or a :data:`VARIANTS` entry's)."""
    return VARIANTS[name][0] if name in VARIANTS else name


def saveable(name: str) -> bool:
    return AGENT_OVERRIDES.get(name, {}).get("saveable", True)


def agent_config(name: str) -> tuple[int, int, dict]:
    """(n_actions, n_features, params) used to build ``name`` in the shared tests."""
    o = AGENT_OVERRIDES.get(name, {})
    params = {**VARIANTS[name][1]} if name in VARIANTS else {}
    params.update(o.get("params", {}))
    return o.get("n_actions", N_ACTIONS), o.get("n_features", N_FEATURES), params


def build_agent(name: str, seed=0):
    """Build the registered agent ``name`` with its test configuration."""
    k, d, params = agent_config(name)
    extra = getattr(agent_entry(registry_name(name)).cls, "requires", None)  # e.g. "torch": skip when missing
    if extra:
        mod = pytest.importorskip(extra)
        if extra == "torch":
            mod.set_num_threads(1)  # tiny test networks: intra-op threads only add overhead (and contention)
    return make_agent(registry_name(name), k, d, seed=seed, **params)


def needs_counterfactuals(agent) -> bool:
    return bool(getattr(agent, "needs_counterfactuals", False))


def choose(agent, x, rewards):
    """``agent.act(x)``, or ``agent.act_oracle(rewards)`` for agents that need counterfactuals."""
    return agent.act_oracle(rewards) if needs_counterfactuals(agent) else agent.act(x)


def make_stream(n: int, n_actions: int, n_features: int, seed: int = 123):
    """Contexts in [0, 1) (x[0] plays the local confidence, the last entry is a bias of 1) and rewards in
    [-1, 1] correlated with the context, plus a feedback mask mixing full, bandit and no feedback."""
    rng = np.random.default_rng(seed)
    xs = rng.random((n, n_features))
    if n_features > 1:
        xs[:, -1] = 1.0
    w = rng.normal(size=(n_actions, n_features))
    rewards = np.clip(np.tanh(xs @ w.T) + 0.1 * rng.normal(size=(n, n_actions)), -1.0, 1.0)
    mode = rng.integers(0, 3, size=n)  # 0 full, 1 bandit, 2 nothing observed
    return xs, rewards, mode


def feedback(rewards_row: np.ndarray, a: int, mode: int) -> tuple[float, np.ndarray | None]:
    """(reward, rewards) as an update call receives them under feedback ``mode``."""
    if mode == 0:
        return float(rewards_row[a]), rewards_row.copy()
    if mode == 1:
        return float(rewards_row[a]), None
    return float("nan"), None


def play(agent, xs, rewards, mode, learn: bool = True) -> list[int]:
    """Run the agent over the stream (act, then update with the feedback); return the actions."""
    actions = []
    for i in range(xs.shape[0]):
        a = choose(agent, xs[i], rewards[i])
        actions.append(a)
        if learn:
            r, rs = feedback(rewards[i], a, mode[i])
            assert agent.update(xs[i], a, r, rewards=rs) is agent
    return actions


ALL_AGENTS = sorted(agent_names()) + sorted(VARIANTS)


@pytest.fixture(params=ALL_AGENTS)
def agent_name(request) -> str:
    return request.param


@pytest.fixture
def agent_cls(agent_name):
    return agent_entry(registry_name(agent_name)).cls

