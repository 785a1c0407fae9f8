"""Conformance checks shared by EVERY registered agent (iterates over ``agent_names()``).

update returns self; same seed -> same actions; clone -> fresh agent with equal parameters;
save/load round-trip (``Agent.load`` and ``Class.load``) -> identical future actions; inputs are not
mutated; wrong shapes, NaN contexts, out-of-range actions and bad hyperparameters -> ConfigError
naming the parameter; corrupted or truncated checkpoints -> ConfigError; the numba kernels (when an
agent has them), driven as the fused path drives them, reproduce the step path.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from conftest import (
    agent_config,
    build_agent,
    choose,
    feedback,
    make_stream,
    needs_counterfactuals,
    play,
    registry_name,
    saveable,
)

from idnbandit.agents import Agent
from idnbandit.agents.registry import agent_entry
from idnbandit.errors import ConfigError

N_STEPS = 40


def _stream(name, n=N_STEPS, seed=123):
    k, d, _ = agent_config(name)
    return make_stream(n, k, d, seed)


def test_update_returns_self_and_actions_in_range(agent_name):
    agent = build_agent(agent_name)
    xs, rs, mode = _stream(agent_name)
    actions = play(agent, xs, rs, mode)  # play() asserts update(...) is agent
    assert all(isinstance(a, int) and 0 <= a < agent.n_actions for a in actions)
    assert agent.update_many(xs[:3], actions[:3], rs[np.arange(3), actions[:3]]) is agent


def test_same_seed_same_actions(agent_name):
    xs, rs, mode = _stream(agent_name)
    a1 = play(build_agent(agent_name, seed=7), xs, rs, mode)
    a2 = play(build_agent(agent_name, seed=7), xs, rs, mode)
    assert a1 == a2


def test_clone_is_fresh_with_equal_params(agent_name):
    xs, rs, mode = _stream(agent_name)
    agent = build_agent(agent_name, seed=3)
    play(agent, xs, rs, mode)
    twin = agent.clone()
    assert type(twin) is type(agent) and twin is not agent
    assert repr(twin) == repr(agent)
    assert play(twin, xs, rs, mode) == play(build_agent(agent_name, seed=3), xs, rs, mode)


def test_reset_forgets(agent_name):
    xs, rs, mode = _stream(agent_name)
    agent = build_agent(agent_name, seed=5)
    first = play(agent, xs, rs, mode)
    agent.reset()
    assert play(agent, xs, rs, mode) == first


@pytest.mark.parametrize("loader", ["Agent.load", "Class.load"])
def test_save_load_round_trip(agent_name, loader, tmp_path):
    xs, rs, mode = _stream(agent_name, n=2 * N_STEPS)
    agent = build_agent(agent_name, seed=11)
    play(agent, xs[:N_STEPS], rs[:N_STEPS], mode[:N_STEPS])
    if not saveable(agent_name):
        with pytest.raises(ConfigError):
            agent.save(tmp_path / "ckpt.npz")
        return
    path = agent.save(tmp_path / "ckpt.npz")
    back = Agent.load(path) if loader == "Agent.load" else type(agent).load(path)
    assert type(back) is type(agent)
    assert back.get_params() == agent.get_params()
    rest = slice(N_STEPS, None)
    assert play(back, xs[rest], rs[rest], mode[rest]) == play(agent, xs[rest], rs[rest], mode[rest])


def test_inputs_not_mutated(agent_name):
    agent = build_agent(agent_name)
    xs, rs, _ = _stream(agent_name, n=10)
    for i in range(10):
        x, row = xs[i].copy(), rs[i].copy()
        x0, row0 = x.copy(), row.copy()
        a = choose(agent, x, row)
        agent.update(x, a, float(row[a]), rewards=row)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(row, row0)
    xs0, rs0 = xs.copy(), rs.copy()
    acts = np.zeros(10, dtype=np.int64)
    agent.update_many(xs, acts, rs[:, 0], all_rewards=rs)
    np.testing.assert_array_equal(xs, xs0)
    np.testing.assert_array_equal(rs, rs0)


def test_bad_inputs_raise_config_error(agent_name):
    agent = build_agent(agent_name)
    k, d = agent.n_actions, agent.n_features
    x = np.full(d, 0.5)
    good_rewards = np.zeros(k)
    if not needs_counterfactuals(agent):
        with pytest.raises(ConfigError, match="context"):
            agent.act(np.zeros(d + 1))
        with pytest.raises(ConfigError, match="context"):
            agent.act(np.full(d, np.nan))
    else:
        with pytest.raises(ConfigError, match="counterfactual"):
            agent.act(x)
        with pytest.raises(ConfigError, match="rewards"):
            agent.act_oracle(np.zeros(k + 1))
    with pytest.raises(ConfigError, match="context"):
        agent.update(np.zeros((d, 2)), 0, 0.0)
    with pytest.raises(ConfigError, match="context"):
        agent.update(np.array([np.nan] * d), 0, 0.0)
    for bad_action in (-1, k, 1.5, True):
        with pytest.raises(ConfigError, match="action"):
            agent.update(x, bad_action, 0.0)
    with pytest.raises(ConfigError, match="rewards"):
        agent.update(x, 0, 0.0, rewards=np.zeros(k + 1))
    # the failed calls changed nothing: the agent still works
    choose(agent, x, good_rewards)
    agent.update(x, 0, 0.0, rewards=good_rewards)


def _numeric_hyperparameters(cls) -> list[tuple[str, object]]:
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in ("self", "n_actions", "n_features", "seed") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = p.default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            out.append((p.name, default))
    return out


def test_bad_hyperparameters_name_the_parameter(agent_name, agent_cls):
    k, d, params = agent_config(agent_name)
    with pytest.raises(ConfigError, match="n_actions"):
        agent_cls(n_actions=0, n_features=d, **{**agent_entry(registry_name(agent_name)).params, **params})
    with pytest.raises(ConfigError, match="n_features"):
        agent_cls(n_actions=k, n_features=0, **{**agent_entry(registry_name(agent_name)).params, **params})
    base = {**agent_entry(registry_name(agent_name)).params, **params}
    for pname, _default in _numeric_hyperparameters(agent_cls):
        for bad in (math.nan, math.inf, "x"):
            with pytest.raises(ConfigError, match=pname):
                agent_cls(n_actions=k, n_features=d, **{**base, pname: bad})


def test_corrupted_or_truncated_checkpoint(agent_name, tmp_path):
    agent = build_agent(agent_name)
    xs, rs, mode = _stream(agent_name, n=5)
    play(agent, xs, rs, mode)
    if not saveable(agent_name):
        agent = build_agent("linucb")
    path = agent.save(tmp_path / "a.npz")
    blob = path.read_bytes()
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(blob[: len(blob) // 2])
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a checkpoint" * 10)
    flipped = tmp_path / "f.npz"
    flipped.write_bytes(blob.replace(b"idnbandit-agent", b"idnbandit-xxxxx"))
    for bad in (truncated, garbage, flipped, tmp_path / "missing.npz"):
        with pytest.raises(ConfigError):
            Agent.load(bad)
        with pytest.raises(ConfigError):
            type(agent).load(bad)


def test_kernel_path_reproduces_step_path(agent_name):
    agent = build_agent(agent_name, seed=21)
    if not agent.has_kernels:
        pytest.skip(f"{agent_name} runs in Python only")
    xs, rs, mode = _stream(agent_name)
    expected = play(agent.clone(), xs, rs, mode)
    kern = agent.kernels()
    u_all = agent.rng.random((xs.shape[0], kern.n_uniforms))  # drawn in one block, as the fused path does
    got = []
    for i in range(xs.shape[0]):
        x_in = rs[i].copy() if needs_counterfactuals(agent) else xs[i].copy()
        a = int(kern.select(kern.state, x_in, u_all[i]))
        got.append(a)
        r, rows = feedback(rs[i], a, mode[i])
        if rows is None:
            rows = np.full(agent.n_actions, np.nan)
            rows[a] = r
        kern.update(kern.state, xs[i].copy(), a, r, rows)
    assert got == expected
