"""Field checks shared by the scenario's dataclasses: positive numbers in a range, non-empty names."""

from __future__ import annotations

import math

from ..errors import ConfigError
from . import limits as _lim


def _positive(where: str | tuple[str, str], value, *, allow_zero: bool = False, integer: bool = False,
              hi=None, lo=None) -> None:
    """``value`` a finite number (an integer if ``integer``) in ``[lo, hi]``, else :class:`ConfigError`.

    Defaults: ``lo`` = 0 if ``allow_zero`` else 1 (integers) or ``MIN_POSITIVE`` (numbers); ``hi`` =
    ``MAX_MAGNITUDE``. The message gives the range (``it must be finite and in [1e-9, 1e12]``).
    """
    t = type(value)
    if t is int or (t is float and not integer):  # fast path: in range (NaN and inf fail the comparison)
        low = lo if lo is not None else (0 if allow_zero else (1 if integer else _lim.MIN_POSITIVE))
        if low <= value <= (_lim.MAX_MAGNITUDE if hi is None else hi):
            return
    if isinstance(where, tuple):  # (prefix, field): joined only for a message
        where = ".".join(where)
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: {_lim.show(value)} is not {kind}")
    if lo is None:
        lo = 0 if allow_zero else (1 if integer else _lim.MIN_POSITIVE)
    if hi is None:
        hi = _lim.MAX_MAGNITUDE
    if not (value >= lo and value <= hi) or (not integer and not math.isfinite(value)):
        if integer:
            rng = f"an integer in [{_lim.fmt_bound(lo)}, {_lim.fmt_bound(hi)}]"
        else:
            rng = f"finite and in [{_lim.fmt_bound(lo)}, {_lim.fmt_bound(hi)}]"
        raise ConfigError(f"{where}: {_lim.show(value)} is not allowed; it must be {rng}")


def _name(where: str, value) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {value!r} is not a non-empty string")
