"""The PettingZoo multi-agent IDN: API and seed checks, same-seed rollouts, agreement with simulate()."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import api_test, seed_test  # noqa: E402

from idnbandit.envs.multiagent import MultiAgentIDNEnv  # noqa: E402
from idnbandit.errors import ConfigError, UnknownNameError  # noqa: E402
from idnbandit.sim import simulate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:We recommend agents to be named")


@pytest.mark.parametrize("scope", ["per-node", "shared"])
def test_pettingzoo_api_and_seed_tests(scope):
    api_test(MultiAgentIDNEnv("shared-edge", episode_length=40, scope=scope), num_cycles=60)
    seed_test(lambda: MultiAgentIDNEnv("shared-edge", episode_length=40, scope=scope), num_cycles=60)


def _rollout(env, seed: int, theta: float = 0.8):
    """Serve iff the node's max prob >= theta; returns every (agent, obs, reward, action) and, per agent, the
    feedback entries it received."""
    env.reset(seed=seed)
    trail, got = [], {}
    for agent in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        action = None if term or trunc else int(obs[0] < theta)
        trail.append((agent, obs.copy(), reward, action))
        got.setdefault(agent, []).extend(info["completed"])
        env.step(action)
    return trail, got


def test_same_seed_identical_rollouts_and_different_seed_differs():
    a, _ = _rollout(MultiAgentIDNEnv("idn-4tier", episode_length=120), seed=3)
    b, _ = _rollout(MultiAgentIDNEnv("idn-4tier", episode_length=120), seed=3)
    assert len(a) == len(b)
    for (ag1, o1, r1, a1), (ag2, o2, r2, a2) in zip(a, b, strict=True):
        assert ag1 == ag2 and a1 == a2 and r1 == r2
        np.testing.assert_array_equal(o1, o2)
    c, _ = _rollout(MultiAgentIDNEnv("idn-4tier", episode_length=120), seed=4)
    assert [x[0] for x in a] != [x[0] for x in c]


class _Threshold:
    name = "threshold"

    def __init__(self, n_features, theta):
        self.n_actions, self.n_features, self.theta = 2, n_features, theta

    def act(self, x):
        return int(x[0] < self.theta)

    def update(self, x, a, r, *, rewards=None):
        return self


@pytest.mark.parametrize("scope", ["per-node", "shared"])
def test_env_matches_simulate_and_credits_every_decider(scope):
    n = 300
    env = MultiAgentIDNEnv("idn-4tier", episode_length=n, scope=scope)
    trail, got = _rollout(env, seed=11)
    run_seed = int(np.random.default_rng(11).integers(0, 2**31 - 1))
    lay = env.layout
    agents = [_Threshold(lay.n_features, 0.8) for _ in range(lay.n_agents)]
    res = simulate(env.scenario, agents if scope == "per-node" else agents[0], n, seed=run_seed, scope=scope,
                   record_requests=True)
    # the same decisions on the same stream: every request's true outcome is simulate()'s
    assert env.n_completed == n and env.reward_sum == pytest.approx(res.mean_reward * n, rel=1e-12)
    per_request, deciders = {}, {}
    for agent, entries in got.items():
        for c in entries:
            per_request[c["request"]] = c["outcome"]["reward"]
            deciders.setdefault(c["request"], []).append(agent)
    assert sorted(per_request) == list(range(n))
    np.testing.assert_array_equal(res.requests["reward"], [per_request[g] for g in range(n)])
    assert sum(len(v) for v in deciders.values()) == env.decisions
    # every node that decided on a request is credited with the request's reward (cooperative), so the
    # agents' returns add up to the requests' rewards counted once per deciding node
    returns = {}
    for agent, _, r, _ in trail:
        returns[agent] = returns.get(agent, 0.0) + r
    for agent in env.possible_agents:
        mine = [c["outcome"]["reward"] for c in got.get(agent, [])]
        assert returns.get(agent, 0.0) == pytest.approx(sum(mine), rel=1e-12, abs=1e-12)
    assert returns["edge"] != 0.0 and any(len(v) > 1 for v in deciders.values())  # forwarders are credited


def test_nodes_decide_when_the_request_arrives_interleaved_in_time():
    # a forwarded request is decided on again only when it reaches the next node; meanwhile other requests
    # arrive and are decided: decisions do not come request by request
    env = MultiAgentIDNEnv("idn-4tier", episode_length=150)
    env.reset(seed=1)
    order = []
    for _agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        if not (term or trunc):
            order.append(env._pend[0])
        env.step(None if term or trunc else 1)  # always forward: every request climbs to the root
    later = [g for i, g in enumerate(order) if any(h > g for h in order[:i])]
    assert later  # some request was decided on after a later request
    assert sorted(set(order)) == list(range(150))


def test_env_errors():
    with pytest.raises(UnknownNameError, match="per-node"):
        MultiAgentIDNEnv("hi-two-tier", scope="pernode")
    env = MultiAgentIDNEnv("hi-two-tier", episode_length=5)
    env.reset(seed=0)
    assert env.agents == ["phone"]
    with pytest.raises(ConfigError, match="action"):
        env.step(7)
