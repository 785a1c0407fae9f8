"""Plain dicts (as read from TOML) to :class:`Scenario` and back, with messages in TOML terms.

The conversion is driven by the dataclasses' type hints, so a field added to a dataclass (with a
default) is readable and writable from TOML without touching this module. Every error names the
file, the table and field, the bad value and what is allowed, e.g.::

    flash.toml: [[nodes]] 'edge-1'.uplink.bandwidth_mbps: -5.0 is not allowed; it must be finite and > 0
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import gc
import types
import typing
from typing import Any

from ..errors import ConfigError, close_matches
from . import model as _model
from .limits import MAX_FAULTS, MAX_MODELS, MAX_NODES, MAX_SEED, show
from .model import (
    Background,
    ContextSpec,
    Fault,
    FeedbackSpec,
    ModelSpec,
    Node,
    RewardSpec,
    Scenario,
    SyntheticTraceSpec,
    TraceSpec,
    Workload,
)
from .validate import check_option_counts

__all__ = ["scenario_from_dict", "scenario_to_dict"]

# fields of Scenario that describe where it came from, not the experiment: never read or written
_NOT_IN_FILE = ("source", "base_dir")

# how each table is named in messages
_TABLE = {
    TraceSpec: "[trace]",
    SyntheticTraceSpec: "[trace.synthetic]",
    Workload: "[workload]",
    RewardSpec: "[reward]",
    FeedbackSpec: "[feedback]",
    ContextSpec: "[context]",
}
_ARRAY = {ModelSpec: "[[models]]", Node: "[[nodes]]", Background: "[[workload.background]]", Fault: "[[faults]]"}
_KEY_OF_ITEM = {ModelSpec: "name", Node: "name", Background: "node"}


@functools.cache
def _hints(cls) -> dict[str, Any]:
    """Field name -> type, ``X | None`` given as ``X`` (cached: a scenario may have 10^5 tables)."""
    return {k: _strip_none(v) for k, v in typing.get_type_hints(cls, vars(_model)).items()}


@functools.cache
def _file_fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in _NOT_IN_FILE)


@functools.cache
def _file_field_set(cls) -> frozenset[str]:
    return frozenset(_file_fields(cls))


@functools.cache
def _required(cls) -> tuple[str, ...]:
    allowed = _file_fields(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if f.name in allowed
                 and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


@functools.cache
def _tuple_item(tp):
    """The item type of ``tuple[X, ...]``, else None."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None


def _join(loc: str, key: str) -> str:
    return f"{loc}.{key}" if loc else key


def _brief(value) -> str:
    """``repr(value)`` cut to one short line (a message may quote a 10^6-element array)."""
    text = show(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(src: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {where}: {msg}" if src else f"{where}: {msg}")


def _strip_none(tp):
    """``X | None`` -> ``X`` (TOML has no null: None is an absent key)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _convert(value, tp, where: str, src: str):
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(src, where, f"{_brief(value)} is not allowed; it must be a number")
        return value  # an int stays an int until the object is built, so messages show it as written
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(src, where, f"{_brief(value)} is not allowed; it must be an integer")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(src, where, f"{_brief(value)} is not allowed; it must be true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(src, where, f"{_brief(value)} is not allowed; it must be a string")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, str) and value in tp._value2member_map_:
            return tp._value2member_map_[value]
        allowed = ", ".join(repr(m.value) for m in tp)
        if not isinstance(value, str):
            raise _fail(src, where, f"{_brief(value)} is not allowed; use one of {allowed}")
        try:
            return tp(value)
        except ValueError:
            hint = close_matches(value, [m.value for m in tp])
            extra = f"did you mean {hint[0]!r}? " if hint else ""
            raise _fail(src, where, f"{_brief(value)} is not allowed; {extra}use one of {allowed}") from None
    item_tp = _tuple_item(tp)
    if item_tp is not None:
        if not isinstance(value, list):
            raise _fail(src, where, f"{_brief(value)} is not allowed; it must be an array")
        if dataclasses.is_dataclass(item_tp):
            return tuple(_build(item_tp, v, _item_loc(item_tp, v, i), src) for i, v in enumerate(value))
        return tuple(_convert(v, item_tp, f"{where}[{i}]", src) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, _TABLE.get(tp, where), src)
    raise TypeError(f"no TOML conversion for type {tp!r} at {where}")  # a programming error


def _item_loc(cls, data, i: int) -> str:
    key = _KEY_OF_ITEM.get(cls)
    if key and isinstance(data, dict) and isinstance(data.get(key), str):
        return f"{_ARRAY[cls]} {data[key]!r}"
    return f"{_ARRAY[cls]} #{i + 1}"


def _reword(exc: ConfigError, cls, loc: str, src: str) -> ConfigError:
    """Re-say a dataclass's own message (``link.bandwidth_mbps: ...``) in file terms."""
    head, sep, rest = str(exc).partition(": ")
    if not sep:
        return _fail(src, loc, str(exc))
    last = head.rsplit(".", 1)[-1]
    if last in _file_fields(cls):
        return _fail(src, _join(loc, last), rest)
    return _fail(src, loc or "(top level)", rest)


_TABLE_TYPES = frozenset({*_TABLE, _model.Link})  # fields whose type is a dataclass (one table)


def _build(cls, data, loc: str, src: str):
    """Check the keys and value types of table ``data`` and build dataclass ``cls`` from it."""
    if not isinstance(data, dict):
        raise _fail(src, loc, f"{_brief(data)} is not allowed; it must be a table")
    hints = _hints(cls)
    for key in data:
        if key not in _file_field_set(cls):
            allowed = _file_fields(cls)
            hint = close_matches(key, allowed)
            msg = f"unknown key {key!r}; " + (f"did you mean {hint[0]!r}? " if hint else "")
            raise _fail(src, _join(loc, key), msg + f"allowed keys: {', '.join(allowed)}")
    for name in _required(cls):
        if name not in data:
            raise _fail(src, _join(loc, name), "missing; this field is required")
    kwargs = {}
    as_float = []
    for k, v in data.items():
        tp, t = hints[k], type(v)
        if tp is t or (tp is float and t is int):  # the common cases without _convert (10^5-node scenarios)
            kwargs[k] = v
            if tp is not t:
                as_float.append(k)
        elif t is dict and tp in _TABLE_TYPES:
            kwargs[k] = _build(tp, v, _TABLE.get(tp) or (f"{loc}.{k}" if loc else k), src)
        elif t is list and _tuple_item(tp) is str and all(type(x) is str for x in v):
            kwargs[k] = tuple(v)
        else:
            kwargs[k] = _convert(v, tp, f"{loc}.{k}" if loc else k, src)
    try:
        obj = cls(**kwargs)
    except ConfigError as exc:
        raise _reword(exc, cls, loc, src) from None
    for k in as_float:  # an integer written in a float field is stored as a float (checked as written)
        object.__setattr__(obj, k, float(kwargs[k]))
    return obj


def scenario_from_dict(data: dict, *, source: str = "", base_dir: str = "") -> Scenario:
    """Build a validated :class:`Scenario` from a dict laid out like a scenario TOML file.

    Parameters
    ----------
    data
        Top-level keys ``name``, ``description``, ``seed`` and the tables ``trace``, ``models``,
        ``nodes``, ``workload``, ``reward``, ``feedback``, ``context``, ``faults``.
    source
        File name put in front of every message (and stored as ``Scenario.source``).
    base_dir
        Folder against which relative trace and replay paths resolve.

    Raises
    ------
    ConfigError
        Unknown key (with a close-match suggestion), missing or wrongly typed field, a value out of
        range, or an inconsistent scenario; the message names file, table, field and value.
    """
    with _gc_paused():
        return _scenario_from_dict(data, source, base_dir)


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while 10^5 tables become objects (each pass would walk them all)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _scenario_from_dict(data, source: str, base_dir: str) -> Scenario:
    if not isinstance(data, dict):
        raise _fail(source, "(top level)", f"{type(data).__name__} is not allowed; it must be a table")
    hints = _hints(Scenario)
    allowed = _file_fields(Scenario)
    kwargs: dict[str, Any] = {}
    for key in data:
        if key not in allowed:
            hint = close_matches(key, allowed)
            msg = f"unknown key {key!r}; " + (f"did you mean {hint[0]!r}? " if hint else "")
            raise _fail(source, key, msg + f"allowed top-level keys: {', '.join(allowed)}")
    for name, where in (("name", "name"), ("nodes", "[[nodes]]"), ("models", "[[models]]"),
                        ("workload", "[workload]"), ("trace", "[trace]")):
        if name not in data:
            raise _fail(source, where, "missing; every scenario needs it")
    for key, hi in (("nodes", MAX_NODES), ("models", MAX_MODELS), ("faults", MAX_FAULTS)):
        if isinstance(data.get(key), list) and len(data[key]) > hi:  # before building 10^7 objects
            raise _fail(source, f"[[{key}]]", f"{len(data[key]):,} entries are not allowed; at most {hi:,}")
    for key, value in data.items():
        where = f"[[{key}]]" if key in ("models", "nodes", "faults") else key  # tables name themselves
        kwargs[key] = _convert(value, hints[key], where, source)
    if not 0 <= kwargs.get("seed", 0) <= MAX_SEED:
        raise _fail(source, "seed", f"{show(kwargs['seed'])} is not allowed; it must be an integer in [0, 2**63 - 1]")
    if isinstance(kwargs["name"], str) and not kwargs["name"].strip():
        raise _fail(source, "name", f"{kwargs['name']!r} is not allowed; it must be a non-empty string")
    try:
        scenario = Scenario(**kwargs, source=source, base_dir=base_dir)
    except ConfigError as exc:
        if source and not str(exc).startswith(f"{source}: "):
            raise _reword(exc, Scenario, "", source) from None
        raise
    check_option_counts(scenario)
    return scenario


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return _table(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _table(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        if f.name in _NOT_IN_FILE:
            continue
        value = getattr(obj, f.name)
        if value is None:  # TOML has no null: None is written as an absent key
            continue
        if value == () and f.default_factory is dataclasses.MISSING and f.default == ():
            continue  # an empty optional array of tables (no faults, no background load)
        out[f.name] = _plain(value)
    return out


def scenario_to_dict(scenario: Scenario) -> dict:
    """The TOML-ready dict of ``scenario`` (enums as strings, tuples as lists, None omitted).

    ``scenario_from_dict(scenario_to_dict(s)) == s`` for every valid scenario ``s``.
    """
    return _table(scenario)
