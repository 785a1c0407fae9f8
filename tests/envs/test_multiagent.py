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
    """Serve iff the node's max prob >= theta; returns every (agent, obs, reward, action) and the served rewards."""
    env.reset(seed=seed)
    trail, served = [], []
    for agent in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        action = None if term or trunc else int(obs[0] < theta)
        trail.append((agent, obs.copy(), reward, action))
        before = env.served
        env.step(action)
        if env.served > before:  # this action served the request (here, or at the serve-only root)
            served.append(env.infos[agent]["outcome"]["reward"])
    return trail, served


def test_same_seed_identical_rollouts_and_different_seed_differs():
    a, _ = _rollout(MultiAgentIDNEnv("idn-4tier", episode_length=120), seed=3)
    b, _ = _rollout(MultiAgentIDNEnv("idn-4tier", episode_length=120), seed=3)
    assert len(a) == len(b)
    for (ag1, o1, r1, a1), (ag2, o2, r2, a2) in zip(a, b):
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


def test_env_matches_simulate_per_node():
    env = MultiAgentIDNEnv("idn-4tier", episode_length=300)
    trail, served = _rollout(env, seed=11)
    run_seed = int(np.random.default_rng(11).integers(0, 2**31 - 1))
    lay = env.layout
    res = simulate(env.scenario, [_Threshold(lay.n_features, 0.8) for _ in lay.nodes], 300, seed=run_seed,
                   scope="per-node")
    assert len(served) == 300
    assert res.mean_reward == pytest.approx(np.mean(served), rel=1e-12)
    # forwarders are credited with the request's reward when it is served
    rewards = {}
    for agent, _, r, _ in trail:
        rewards[agent] = rewards.get(agent, 0.0) + r
    assert rewards["edge"] != 0.0


def test_env_errors():
    with pytest.raises(UnknownNameError, match="per-node"):
        MultiAgentIDNEnv("hi-two-tier", scope="pernode")
    env = MultiAgentIDNEnv("hi-two-tier", episode_length=5)
    env.reset(seed=0)
    assert env.agents == ["phone"]
    with pytest.raises(ConfigError, match="action"):
        env.step(7)
