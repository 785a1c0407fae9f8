"""Learning checks of the numba RL agents (fixed seeds, generous margins).

* Cascade-v0 on ``idn-4tier`` (the protocol of benchmarks/cascade_rl.py, smaller): the Q-learner
  trained online comes within 5% of the best static per-hop thresholds and recovers most of their
  gain over "always serve at the origin" (the gap between those two anchors is only ~4%, so the
  second check is the sharper one).
* The same for DQN (a smaller network and 3,000 training requests, to stay fast).
* The fused ``simulate()`` path: Q-learning on one-step episodes beats the uniformly random policy
  and tracks the best fixed option.
"""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.agents import DQN, QLearning, Random
from idnbandit.envs.cascade_baselines import PerHopThresholds, evaluate_cascade
from idnbandit.scenario import load_scenario
from idnbandit.sim import n_features, n_options, simulate

# found by best_per_hop_thresholds on eval seeds (0, 1, 2), 1000 requests each (still so on the event core,
# 2026-12-05; docs/agents_rl.md's (0.75, 1.01, 0.75) is for the benchmark's 5,000-request streams)
BEST_THRESHOLDS = (0.75, 1.01, 0.7)


@pytest.mark.slow
def test_qlearning_on_cascade_near_best_static_thresholds(script_module):
    bench = script_module("benchmarks/cascade_rl.py")
    scen = load_scenario("idn-4tier")
    seeds = (0, 1)
    agent, policy, online = bench.train("qlearning", scen, 8000, seed=0)
    q = evaluate_cascade(policy, scen, 600, seeds).mean_reward
    best = evaluate_cascade(PerHopThresholds(BEST_THRESHOLDS), scen, 600, seeds).mean_reward
    local = evaluate_cascade(PerHopThresholds((0.0, 0.0, 0.0)), scen, 600, seeds).mean_reward
    assert q >= 0.95 * best
    # measured (event core, 2026-12-05): 0.9361 vs thresholds 0.9427 and local 0.9041, 83% of the gain
    # (115% at 30k training requests)
    assert q - local >= 0.5 * (best - local)
    assert online > local - 0.03  # exploration costs, but not more than that
    assert agent.visits_.sum() > 8000


def test_qlearning_fused_path_learns():
    scen = load_scenario("idn-4tier")
    k, f = n_options(scen), n_features(scen)
    q = simulate(scen, QLearning(k, f, epsilon=0.05, visit_power=1.0, alpha=0.01, seed=0), 20000, seed=3)
    rnd = simulate(scen, Random(k, f, seed=0), 20000, seed=3)
    assert q.mean_reward > rnd.mean_reward + 0.03
    assert q.mean_reward > np.max(q.fixed_option_mean_reward) - 0.02


@pytest.mark.slow
def test_dqn_on_cascade_near_best_static_thresholds(script_module, monkeypatch):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # tiny network: intra-op threads only add overhead
    bench = script_module("benchmarks/cascade_rl.py")
    scen = load_scenario("idn-4tier")
    seeds = (0, 1)
    small = lambda kind, seed, n_obs, n_stops: DQN(  # noqa: E731  (a smaller, faster DQN than the benchmark's)
        2, n_obs, hidden=(32, 32), lr=1e-3, gamma=1.0, batch_size=32, buffer_size=5000, learning_starts=200,
        train_freq=2, target_update=100, exploration_steps=1500, seed=seed)
    monkeypatch.setattr(bench, "make_learner", small)
    _, policy, _ = bench.train("dqn", scen, 3000, seed=0)
    q = evaluate_cascade(policy, scen, 600, seeds).mean_reward
    best = evaluate_cascade(PerHopThresholds(BEST_THRESHOLDS), scen, 600, seeds).mean_reward
    local = evaluate_cascade(PerHopThresholds((0.0, 0.0, 0.0)), scen, 600, seeds).mean_reward
    assert q >= 0.95 * best
    assert q - local >= 0.5 * (best - local)  # measured (event core): 0.9445 vs thresholds 0.9427, local 0.9041
