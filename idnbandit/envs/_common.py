"""Shared helpers of the idnbandit environments: scenario resolution, seeding, argument and action checks."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from ..errors import ConfigError, close_matches
from ..scenario.model import FeedbackMode, FeedbackSpec, Scenario

__all__ = ["MAX_BACKLOG_S", "build_scenario", "check_episode_length", "check_action", "check_reset_seed",
           "check_keywords", "engine_seed", "feedback_info", "completion_infos", "end_episode", "LazyInfo",
           "UnknownArgumentError", "ResetNeededError"]

MAX_BACKLOG_S = 10.0  # load features (queue backlogs, seconds) are clipped to this in observations


def build_scenario(scenario, feedback: str | FeedbackMode | None = None) -> Scenario:
    """Load ``scenario`` (name, path or :class:`Scenario`) and override its feedback mode.

    Raises
    ------
    ConfigError
        If ``scenario`` has the wrong type or ``feedback`` is not a feedback mode.
    """
    if isinstance(scenario, (str, bytes)) or hasattr(scenario, "__fspath__"):
        from ..scenario import load_scenario

        scenario = load_scenario(scenario)
    if not isinstance(scenario, Scenario):
        raise ConfigError(f"scenario: expected a Scenario, a built-in name or a path, got {type(scenario).__name__}")
    if feedback is not None:
        mode = FeedbackMode.parse(feedback, "feedback")
        fb = FeedbackSpec(mode=mode, delay_requests=scenario.feedback.delay_requests,
                          delay_s=scenario.feedback.delay_s)
        scenario = dataclasses.replace(scenario, feedback=fb)
    return scenario


class UnknownArgumentError(ConfigError, TypeError):
    """An environment got a keyword argument it does not take.

    A :class:`ConfigError` (the message names the keyword and suggests close names) that is also the
    ``TypeError`` Python raises for an unexpected keyword, so code that catches ``TypeError``
    (Gymnasium's ``make``, Stable-Baselines3's ``make_vec_env``) keeps working.
    """


class ResetNeededError(ConfigError, gym.error.ResetNeeded):
    """``step()`` before ``reset()``, or after the episode ended (a :class:`ConfigError` that is also
    Gymnasium's ``ResetNeeded``, the error of its ``OrderEnforcing`` wrapper)."""


def check_keywords(owner: str, unknown: dict, accepted) -> None:
    """Raise :class:`UnknownArgumentError` for the first keyword of ``unknown`` (none: do nothing).

    Examples
    --------
    >>> check_keywords("OffloadEnv", {"episode_lenght": 3}, ["scenario", "episode_length"])
    Traceback (most recent call last):
    ...
    idnbandit.envs._common.UnknownArgumentError: OffloadEnv: unknown argument 'episode_lenght'; did you mean 'episode_length'?
    """
    if not unknown:
        return
    accepted = list(accepted)
    name = sorted(unknown)[0]
    hint = close_matches(name, accepted)
    raise UnknownArgumentError(f"{owner}: unknown argument {name!r}; "
                               + (f"did you mean {hint[0]!r}?" if hint else f"accepted: {', '.join(accepted)}"))


def check_reset_seed(seed) -> int | None:
    """``seed`` of ``reset(seed=...)``: None or an integer >= 0, else :class:`ConfigError`."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: {seed!r} is not allowed; use None or an integer >= 0")
    return int(seed)


def check_episode_length(episode_length) -> int:
    """``episode_length`` as a positive int, else :class:`ConfigError`."""
    if isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
        raise ConfigError(f"episode_length: {episode_length!r} is not allowed; use an integer >= 1")
    return int(episode_length)


def check_action(action, n: int) -> int:
    """``action`` as an int in ``[0, n)`` (numpy scalars and 0-d/size-1 arrays accepted).

    Raises
    ------
    ConfigError
        If the action is not an integer in range.
    """
    a = action
    if isinstance(a, np.ndarray) and a.size == 1 and np.issubdtype(a.dtype, np.integer):
        a = a.reshape(()).item()
    if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < n:
        raise ConfigError(f"action: {action!r} is not allowed; it must be an integer in [0, {n})")
    return int(a)


def engine_seed(np_random: np.random.Generator) -> int:
    """A fresh engine seed drawn from the env's generator (so episodes differ, yet are reproducible)."""
    return int(np_random.integers(0, 2**31 - 1))


def feedback_info(reward: float, rewards: np.ndarray) -> dict:
    """The engine's feedback (NaN = not observed) as NaN-free info entries.

    Returns ``feedback_reward`` (float, or None when unobserved), ``feedback_mask`` ((K,) bool) and
    ``feedback_rewards`` ((K,) float64, 0.0 where the mask is False).
    """
    mask = ~np.isnan(rewards)
    return {"feedback_reward": None if np.isnan(reward) else float(reward), "feedback_mask": mask,
            "feedback_rewards": np.where(mask, rewards, 0.0)}


def completion_infos(scenario: Scenario, rows: np.ndarray, k: int) -> list[dict]:
    """``info`` entries of finalised requests from their record rows (:mod:`idnbandit.sim.state` layout).

    One dict per row, in completion order: ``request`` (number in the episode), ``option``,
    ``origin``, ``sample``, ``decided_s`` / ``completed_s`` (simulated times), ``outcome`` (dict of
    :class:`~idnbandit.sim.engine.Outcome`), the feedback of :func:`feedback_info` and
    ``estimates`` ((K,) decision-time estimates of every option's reward).
    """
    from ..sim.engine import completions_from_records

    return [{"request": c.request, "option": c.option, "origin": c.origin, "sample": c.sample,
             "decided_s": c.decided_s, "completed_s": c.completed_s, "outcome": c.outcome._asdict(),
             **feedback_info(c.feedback_reward, c.feedback_rewards), "estimates": c.estimates}
            for c in completions_from_records(scenario, rows, k)]


def end_episode(engine) -> np.ndarray:
    """Drain ``engine`` at the end of an episode; return the record rows of the requests finalised meanwhile.

    A pending arrival (already observed, not sent) is dropped: the episode ends before it. Every
    request in flight then finishes (no new arrivals). The engine must be reset before further use.
    """
    engine.drain(drop_pending=True)
    return engine.completed_rows()


class LazyInfo(dict):
    """A ``dict`` whose entries are built on first use: ``make(*args)`` returns them.

    Steps return these so that a caller who never reads ``info`` does not pay for it; every dict
    operation (indexing, ``in``, iteration, ``len``, ``items``, ``==``, ``copy``, ``dict(info)``,
    ``{**info}``, assignment, pickling as a plain dict) fills it first, so it behaves as the plain
    dict it stands for. Only C code that reads dict storage directly (``json.dumps``) sees it
    empty: pass ``dict(info)`` there.
    """

    __slots__ = ("_make",)

    def __init__(self, make, *args):
        self._make = (make, args)

    def _fill(self) -> LazyInfo:
        m = self._make
        if m is not None:
            self._make = None
            dict.update(self, m[0](*m[1]))
        return self

    def __eq__(self, other):
        if isinstance(other, LazyInfo):
            other._fill()
        return dict.__eq__(self._fill(), other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __reduce__(self):
        return dict, (dict.copy(self._fill()),)


def _filled(name: str):
    base = getattr(dict, name)

    def method(self, *args, **kwargs):
        return base(self._fill(), *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = base.__doc__
    return method


for _name in ("__getitem__", "__contains__", "__iter__", "__len__", "__repr__", "__reversed__", "__or__", "__ror__",
              "__ior__", "__setitem__", "__delitem__", "get", "keys", "values", "items", "copy", "pop", "popitem",
              "setdefault", "update", "clear"):
    setattr(LazyInfo, _name, _filled(_name))
del _name
