"""Hardening of the Gymnasium environments (issue 17, class 8).

* ``render_mode="rgb_array"`` (numpy picture of the IDN) and ``"ansi"`` for Offload, Cascade, Ensemble and
  the vector env; ``check_env`` passes with them; ``gymnasium.make_vec`` (every mode) and SB3's
  ``make_vec_env`` (which passes ``render_mode="rgb_array"``) work, and PPO learns on it;
* bad constructor keywords and values, ``reset(seed=<bad>)`` raise :class:`~idnbandit.errors.ConfigError`
  naming the argument; ``step()`` after the episode ended raises (a ``ConfigError`` that is also
  Gymnasium's ``ResetNeeded``), asking for ``reset()``;
* 0-d integer arrays and numpy integers (what SB3's ``predict`` returns) are valid actions for the
  envs and for the agents.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import idnbandit  # noqa: F401  (registers the ids)
from idnbandit.envs._common import ResetNeededError, UnknownArgumentError
from idnbandit.errors import ConfigError, IdnBanditError

HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SCEN = "hi-two-tier"
ENV_IDS = ["idnbandit/Offload-v0", "idnbandit/Cascade-v0", "idnbandit/Ensemble-v0"]
ARGS = {  # accepted keywords of each constructor
    "idnbandit/Offload-v0": ["scenario", "episode_length", "feedback", "render_mode"],
    "idnbandit/Cascade-v0": ["scenario", "episode_length", "feedback", "render_mode"],
    "idnbandit/Ensemble-v0": ["scenario", "episode_length", "aggregation", "render_mode"],
}


def _make(env_id, **kw):
    return gym.make(env_id, disable_env_checker=True, **{"scenario": SCEN, **kw})


@pytest.fixture(scope="module")
def envs():
    """One env of each id (rgb_array), reused by the generated cases."""
    return {e: _make(e, render_mode="rgb_array", episode_length=3).unwrapped for e in ENV_IDS}


# --------------------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", ["rgb_array", "ansi"])
def test_check_env_passes_with_render_modes(env_id, mode):
    env = _make(env_id, render_mode=mode, episode_length=5, scenario="idn-4tier")
    assert mode in env.metadata["render_modes"] and env.render_mode == mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rgb_array_pictures_the_network_and_the_decision(env_id):
    env = _make(env_id, render_mode="rgb_array", episode_length=50, scenario="idn-4tier")
    before = env.unwrapped.render()  # before reset: the idle network
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert first.shape == before.shape and first.shape[0] >= 200 and first.shape[1] >= 400
    for a in [1, 0, 1, 1, 0, 1]:
        env.step(a)
    img = env.render()
    assert img.shape == first.shape and not np.array_equal(img, first)  # the status and the marks changed
    green = (img[..., 1] > 200) & (img[..., 0] < 120) & (img[..., 2] < 160)  # the chosen node's frame
    assert green.any() or env_id != "idnbandit/Offload-v0"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 5


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_ansi_lists_every_node(env_id):
    env = _make(env_id, render_mode="ansi", episode_length=10, scenario="idn-4tier")
    env.reset(seed=1)
    env.step(1)
    text = env.render()
    assert isinstance(text, str)
    for node in env.unwrapped.scenario.nodes:
        assert node.name in text
    assert env_id.split("/")[1] in text


def test_render_without_mode_warns_and_returns_none():
    env = _make("idnbandit/Offload-v0").unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("mode", [None, "sync", "vector_entry_point"])
def test_make_vec_renders(mode):
    v = gym.make_vec("idnbandit/Offload-v0", num_envs=3, vectorization_mode=mode, render_mode="rgb_array",
                     scenario=SCEN, episode_length=4)
    v.reset(seed=0)
    for _ in range(6):  # across an autoreset
        v.step(v.action_space.sample())
    pics = v.render()
    assert len(pics) == 3 and all(p.dtype == np.uint8 and p.ndim == 3 for p in pics)
    v.close()


def test_vector_env_ansi_and_last_actions():
    from idnbandit.envs.vector import OffloadVectorEnv

    v = OffloadVectorEnv(2, scenario=SCEN, episode_length=3, render_mode="ansi")
    v.reset(seed=0)
    v.step(np.array([0, 1]))
    texts = v.render()
    assert "option 0" in texts[0] and "option 1" in texts[1] and "[1]" in texts[1]


def test_sb3_make_vec_env_and_ppo_2048_steps():
    torch = pytest.importorskip("torch")
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from idnbandit.agents.registry import make_agent

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        venv = make_vec_env("idnbandit/Offload-v0", n_envs=4, seed=0,
                            env_kwargs={"scenario": SCEN, "episode_length": 256})
        assert venv.render_mode == "rgb_array"  # SB3 asked for it
        model = PPO("MlpPolicy", venv, n_steps=512, batch_size=512, n_epochs=1, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [16]})
        model.learn(total_timesteps=2048)
        assert model.num_timesteps == 2048
        obs = venv.reset()
        pics = venv.get_images()
        assert len(pics) == 4 and pics[0].dtype == np.uint8
        action, _ = model.predict(obs[0], deterministic=True)
        assert isinstance(action, np.ndarray) and action.shape == ()  # SB3 returns a 0-d array
        env = venv.envs[0]
        env.reset(seed=0)
        env.step(action)  # the env takes it
        agent = make_agent("linucb", env.unwrapped.n_options, env.observation_space.shape[0], seed=0)
        agent.update(obs[0].astype(np.float64), action, 0.5)  # so do the agents
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------- arguments
BAD_VALUES = {
    "episode_length": [0, -1, 2.5, "10", None, True, float("nan"), [3]],
    "feedback": ["oracle", "", 3, "FULL ", ["full"]],
    "scenario": [42, "no-such-scenario", None, 3.5, ""],
    "render_mode": ["human2", "rgb", "video", "", 1, "RGB_ARRAY", ["ansi"]],  # (gym.make wraps "*_list", "human")
    "aggregation": ["mean", "", 1, None, "Majority"],
}


@HYP
@given(data=st.data())
def test_bad_constructor_values_name_the_argument(data):
    env_id = data.draw(st.sampled_from(ENV_IDS))
    field = data.draw(st.sampled_from([f for f in BAD_VALUES if f in ARGS[env_id]]))
    value = data.draw(st.sampled_from(BAD_VALUES[field]))
    cls = load_env_creator(gym.spec(env_id).entry_point)  # the class: gym.make itself fails on render_mode=1
    with pytest.raises(IdnBanditError, match=field):  # ConfigError, UnknownNameError for scenario names
        cls(**{"scenario": SCEN, field: value})


@HYP
@given(data=st.data(), name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=15))
def test_unknown_keywords_raise_our_error_naming_them(data, name):
    env_id = data.draw(st.sampled_from(ENV_IDS))
    if name in ARGS[env_id]:
        name += "x"
    with pytest.raises(UnknownArgumentError, match=repr(name)) as exc:
        _make(env_id, **{name: 1})
    assert isinstance(exc.value, ConfigError) and isinstance(exc.value, TypeError)


@pytest.mark.parametrize(("env_id", "typo", "meant"), [("idnbandit/Offload-v0", "episode_lenght", "episode_length"),
                                                        ("idnbandit/Cascade-v0", "feedbak", "feedback"),
                                                        ("idnbandit/Ensemble-v0", "aggregaton", "aggregation")])
def test_unknown_keyword_suggests(env_id, typo, meant):
    with pytest.raises(UnknownArgumentError, match=f"did you mean {meant!r}"):
        _make(env_id, **{typo: 3})


BAD_SEEDS = st.one_of(st.integers(max_value=-1, min_value=-(10**20)), st.floats(allow_nan=True),
                      st.sampled_from(["0", "seed", True, False, [1], (), b"1", 1.0, np.float64(3)]))


@HYP
@given(env_id=st.sampled_from(ENV_IDS), seed=BAD_SEEDS)
def test_bad_reset_seeds_raise_config_error(envs, env_id, seed):
    with pytest.raises(ConfigError, match="seed"):
        envs[env_id].reset(seed=seed)


def test_reset_seed_minus_one_through_gym_make():
    for env_id in ENV_IDS:
        env = _make(env_id)
        with pytest.raises(ConfigError, match=r"seed: -1 is not allowed"):
            env.reset(seed=-1)
        env.reset(seed=np.int64(5))  # numpy integers are fine


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_after_the_episode_ended_raises(env_id):
    env = _make(env_id, episode_length=2)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, term, trunc, _ = env.step(0)
        done, steps = term or trunc, steps + 1
        assert steps < 100
    with pytest.raises(ResetNeededError, match=r"call reset\(\)") as exc:
        env.step(0)
    assert isinstance(exc.value, gym.error.ResetNeeded) and isinstance(exc.value, ConfigError)
    env.reset(seed=1)
    env.step(0)  # fine again


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_raises_reset_needed(env_id):
    with pytest.raises(ResetNeededError, match="reset"):
        _make(env_id).unwrapped.step(0)


# --------------------------------------------------------------------------------------------- actions
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_integer_like_actions_are_accepted(env_id):
    env = _make(env_id, episode_length=50)
    env.reset(seed=0)
    for a in [np.array(1), np.int64(0), np.int32(1), np.array([1]), np.array(0, np.uint8), 1]:
        env.step(a)


@HYP
@given(env_id=st.sampled_from(ENV_IDS), action=st.one_of(
    st.integers(max_value=-1, min_value=-(10**20)), st.integers(min_value=99, max_value=10**20),
    st.floats(), st.sampled_from([np.array(1.0), np.array([0, 1]), np.array([]), "1", True, None, np.array(-1),
                                  np.array(10**6), [0], np.float32(1)])))
def test_bad_actions_raise_config_error(envs, env_id, action):
    env = envs[env_id]
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="action"):
        env.step(action)


# --------------------------------------------------------------------------------------------- vector env
@HYP
@given(seed=st.one_of(BAD_SEEDS, st.lists(st.integers(-5, -1), min_size=2, max_size=2),
                      st.just([0, -1]), st.just([0, 1, 2]), st.just("01")))
def test_vector_env_bad_seeds(seed):
    from idnbandit.envs.vector import OffloadVectorEnv

    v = _VEC.setdefault("v", OffloadVectorEnv(2, scenario=SCEN, episode_length=3))
    with pytest.raises(ConfigError, match="seed"):
        v.reset(seed=seed)


_VEC: dict = {}


@pytest.mark.parametrize(("kw", "field"), [({"num_envs": 0}, "num_envs"), ({"num_envs": 10**9}, "num_envs"),
                                           ({"num_envs": 2.0}, "num_envs"), ({"num_envs": True}, "num_envs"),
                                           ({"episode_length": 0}, "episode_length"),
                                           ({"render_mode": "human"}, "render_mode"),
                                           ({"num_env": 2}, "num_env")])
def test_vector_env_bad_arguments(kw, field):
    from idnbandit.envs.vector import OffloadVectorEnv

    with pytest.raises(ConfigError, match=field):
        OffloadVectorEnv(**{"scenario": SCEN, **kw})


def test_vector_env_step_before_reset():
    from idnbandit.envs.vector import OffloadVectorEnv

    with pytest.raises(ResetNeededError, match="reset"):
        OffloadVectorEnv(2, scenario=SCEN).step(np.array([0, 0]))


# --------------------------------------------------------------------------------------------- multi-agent
def test_multiagent_bad_seed_and_keyword():
    pytest.importorskip("pettingzoo")
    from idnbandit.envs.multiagent import MultiAgentIDNEnv

    with pytest.raises(UnknownArgumentError, match="'scenery'"):
        MultiAgentIDNEnv(scenery="shared-edge")
    env = MultiAgentIDNEnv(episode_length=3)
    with pytest.raises(ConfigError, match="seed"):
        env.reset(seed=-1)
