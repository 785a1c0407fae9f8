"""Hyperparameter checks shared by every agent: value ranges, upper limits, and the state-size budget.

Every constructor argument of a registered agent has a documented valid range (its class docstring's
Parameters section) and is checked at construction; a bad value raises :class:`ConfigError` naming
the parameter, the value and the range. Upper limits exist where memory or time would otherwise
explode (an integer that sizes an array or a loop); they are stated here once:

=====================  ==============  ==========================================================
limit                  value           why
=====================  ==============  ==========================================================
``MAX_OPTIONS``        10**6           ``n_actions``: every agent keeps per-option arrays
``MAX_FEATURES``       10**6           ``n_features``: contexts and per-feature statistics
``MAX_STATE_NUMBERS``  2**27           numbers in an agent's learned state (1 GiB of float64): the
                                       product of sizes (``K·d²`` for LinUCB, ``window·(d+K)`` for
                                       SW-LinUCB, replay buffers, network weights, …)
``MAX_STEPS``          10**12          periods and counts of decisions (``refactor_every``,
                                       ``learning_starts``, ``first_epoch``, …): beyond any run
                                       (28 h at 10 M decisions/s); larger values overflow int64
                                       counters once doubled or summed
``MAX_GRID``           10**6           bins, breakpoints and experts: each costs O(1) per decision
                                       and memory, so 10**6 is already ~1 ms per decision
``MAX_BATCH``          10**6           mini-batch sizes and SGD steps per training call (torch agents)
``MAX_FLOAT32``        1e30            real parameters that torch agents cast to float32 (lr, ridge,
                                       ...): larger values overflow float32
=====================  ==============  ==========================================================
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

__all__ = ["MAX_OPTIONS", "MAX_FEATURES", "MAX_STATE_NUMBERS", "MAX_STEPS", "MAX_GRID", "MAX_BATCH", "MAX_FLOAT32", "show", "check_real",
           "check_integer", "check_choice", "check_bool", "check_state_budget", "check_finite_tree",
           "check_nested_params", "dry_run"]

MAX_OPTIONS = 10**6
MAX_FEATURES = 10**6
MAX_STATE_NUMBERS = 2**27
MAX_STEPS = 10**12
MAX_GRID = 10**6
MAX_BATCH = 10**6
MAX_FLOAT32 = 1e30

_REALS = (int, float, np.integer, np.floating)


def show(v, width: int = 60) -> str:
    """``repr(v)``, shortened to ``width`` characters (a 30-digit integer stays readable in a message)."""
    try:
        s = repr(v)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        s = f"<{type(v).__name__}>"
    return s if len(s) <= width else s[: width - 5] + "...>" + s[-1:]


def _is_real(v) -> bool:
    """A finite real number (bool excluded); integers too large for a float are not finite."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, _REALS):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def check_real(name: str, v, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False, optional: bool = False) -> None:
    """Raise ConfigError naming ``name`` unless ``v`` is a finite real number in the given range."""
    if v is None and optional:
        return
    ok = _is_real(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        rng = " and ".join(s for s in (lo_s, hi_s) if s)
        raise ConfigError(f"{name}: {show(v)} is not allowed; it must be a finite number" + (f" {rng}" if rng else "")
                          + (" or None" if optional else ""))


def _fmt_int(v: int) -> str:
    for base, exp in ((10, 12), (10, 9), (10, 6)):
        if v == base**exp:
            return f"10**{exp}"
    return f"{v:,}" if v >= 10**5 else str(v)


def check_integer(name: str, v, lo: int, hi: int | None = None, *, optional: bool = False, why: str = "") -> None:
    """Raise ConfigError naming ``name`` unless ``v`` is an integer in ``[lo, hi]`` (``hi`` None: no limit).

    ``why`` explains an upper limit (e.g. ``"each bin costs memory and time per decision"``).
    """
    if v is None and optional:
        return
    ok = not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer)) and v >= lo
    if ok and hi is not None and v > hi:
        raise ConfigError(f"{name}: {show(v)} is not allowed; it must be an integer in [{lo}, {_fmt_int(hi)}]"
                          + (f" ({why})" if why else "") + (" or None" if optional else ""))
    if not ok:
        rng = f">= {lo}" if hi is None else f"in [{lo}, {_fmt_int(hi)}]"
        raise ConfigError(f"{name}: {show(v)} is not allowed; it must be an integer {rng}"
                          + (" or None" if optional else ""))


def check_choice(name: str, v, choices) -> None:
    """Raise ConfigError naming ``name`` unless ``v`` is one of the strings ``choices``."""
    if not isinstance(v, str) or v not in choices:
        raise ConfigError(f"{name}: {show(v)} is not allowed; it must be one of " + ", ".join(repr(c) for c in choices))


def check_bool(name: str, v) -> None:
    """Raise ConfigError naming ``name`` unless ``v`` is True or False."""
    if not isinstance(v, (bool, np.bool_)):
        raise ConfigError(f"{name}: {show(v)} is not allowed; use True or False")


def check_state_budget(names: str, n_numbers: int, agent: str) -> None:
    """Raise ConfigError naming ``names`` if ``agent``'s state would hold more than ``MAX_STATE_NUMBERS``.

    ``names`` lists the parameters that size the state (e.g. ``"n_actions, n_features"``).
    """
    if n_numbers > MAX_STATE_NUMBERS:
        raise ConfigError(
            f"{names}: these sizes give {agent} a state of {n_numbers:,} numbers ({n_numbers * 8 / 2**30:,.1f} GiB); "
            f"the limit is {MAX_STATE_NUMBERS:,} (1 GiB): use smaller sizes")


def check_finite_tree(name: str, v, depth: int = 0) -> None:
    """Raise ConfigError naming ``name`` if a number inside nested dicts/lists/tuples ``v`` is NaN, inf or
    too large for a float, or if the nesting is deeper than 16 levels."""
    if depth > 16:
        raise ConfigError(f"{name}: nested more than 16 levels deep")
    if isinstance(v, dict):
        for k, x in v.items():
            check_finite_tree(f"{name}[{k!r}]", x, depth + 1)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            check_finite_tree(f"{name}[{i}]", x, depth + 1)
    elif isinstance(v, _REALS) and not isinstance(v, (bool, np.bool_)) and not _is_real(v):
        raise ConfigError(f"{name}: {show(v)} is not allowed; numbers must be finite")


def check_nested_params(name: str, params, cls, ranges: dict) -> None:
    """Check a dict of keyword arguments for ``cls`` (``oracle_params``, ``policy_params``) at construction.

    Keys must be strings accepted by ``cls.__init__`` (``seed`` excluded); numbers finite, and inside
    ``ranges`` (``key: (lo, hi, lo_open, integer)``) where listed. Raises ConfigError naming
    ``name[key]``.
    """
    import inspect

    if not params:
        return
    try:
        sig = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        sig = {}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
    allowed = [p for p in sig if p not in ("self", "seed") and sig[p].kind is not inspect.Parameter.VAR_KEYWORD
               and sig[p].kind is not inspect.Parameter.VAR_POSITIONAL]
    for k, v in params.items():
        if not isinstance(k, str):
            raise ConfigError(f"{name}: key {show(k)} is not allowed; keys must be parameter names (strings)")
        if k not in allowed and not accepts_any:
            from ..errors import close_matches

            hint = close_matches(k, allowed)
            raise ConfigError(f"{name}[{k!r}]: not a parameter of {cls.__name__}; "
                              + (f"did you mean {hint[0]!r}?" if hint else f"accepted: {', '.join(allowed)}"))
        check_finite_tree(f"{name}[{k!r}]", v)
        if k in ranges and v is not None:
            lo, hi, lo_open, integer = ranges[k]
            if integer:
                check_integer(f"{name}[{k!r}]", v, lo, hi)
            else:
                check_real(f"{name}[{k!r}]", v, lo=lo, hi=hi, lo_open=lo_open)


def dry_run(name: str, params, what: str, trial) -> None:
    """Run ``trial()`` (build a throwaway object from ``params`` and use it once); any exception becomes a
    ConfigError naming ``name``, so a bad nested value fails at construction, not in every later call."""
    try:
        trial()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the third-party object raises
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{name}: {show(params, 120)} is not allowed; {what} rejects it "
                          f"({type(exc).__name__}: {msg[:160]})") from None
