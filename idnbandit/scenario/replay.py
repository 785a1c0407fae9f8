"""The one reader of replay files (``process = "replay"``), used by ``load_scenario`` and the simulator.

Grammar (docs/scenarios.md, "Replay files"):

* UTF-8 text (a byte-order mark at the start is ignored); lines end in ``\\n``, ``\\r\\n`` or ``\\r``;
* ``#`` starts a comment that runs to the end of the line (a whole line or after a number);
* blank lines (after removing the comment) are ignored;
* every other line holds exactly one number, the arrival time in seconds as Python's ``float``
  reads it (``12``, ``0.5``, ``1e-3``), finite, in ``[0, MAX_TIME_S]`` = [0, 1e12] and not smaller
  than the one before;
* at least one and at most ``MAX_REPLAY_TIMESTAMPS`` = 10^7 timestamps, at most
  ``MAX_REPLAY_BYTES`` = 256 MiB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .limits import MAX_REPLAY_BYTES, MAX_REPLAY_TIMESTAMPS, MAX_TIME_S, fmt_bound

__all__ = ["read_replay_file", "replay_request_rate"]

_WHERE = "[workload].replay_file"


def read_replay_file(path: str | os.PathLike, *, shown: str | None = None) -> np.ndarray:
    """Timestamps (seconds, float64, non-decreasing) of a replay file, checked line by line.

    Parameters
    ----------
    path
        The file.
    shown
        How messages name the file (default: ``path`` as given), e.g. as written in the scenario.

    Raises
    ------
    ConfigError
        ``[workload].replay_file: '<file>' line <n>: ...`` for a line that is not UTF-8, not one
        number, not finite, negative, above 1e12 or smaller than the one before; also a missing,
        unreadable, empty or too large file.
    """
    path = Path(path)
    name = str(path) if shown is None else shown
    try:
        size = path.stat().st_size
        if size > MAX_REPLAY_BYTES:
            raise ConfigError(f"{_WHERE}: {name!r} is {size:,} bytes; a replay file may hold at most "
                              f"{MAX_REPLAY_BYTES:,} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{_WHERE}: cannot read {name!r} ({exc.strerror or exc})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out: list[float] = []
    last = 0.0
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{_WHERE}: {name!r} line {lineno}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not "
                "UTF-8; a replay file must be UTF-8 text with one timestamp in seconds per line"
            ) from None
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            t = float(text)
        except ValueError:
            t = math.nan
        if not (0.0 <= t <= MAX_TIME_S) or t < last:
            after = f" and >= the previous timestamp {last!r}" if out else ""
            raise ConfigError(
                f"{_WHERE}: {name!r} line {lineno}: {text!r} is not allowed; each line must hold one finite "
                f"timestamp in seconds in [0, {fmt_bound(MAX_TIME_S)}]{after} (timestamps are non-decreasing; "
                "'#' starts a comment)"
            )
        if len(out) == MAX_REPLAY_TIMESTAMPS:
            raise ConfigError(f"{_WHERE}: {name!r} line {lineno}: more than {MAX_REPLAY_TIMESTAMPS:,} timestamps "
                              "are not allowed")
        out.append(t)
        last = t
    if not out:
        raise ConfigError(f"{_WHERE}: {name!r} holds no timestamp; it needs at least one")
    return np.array(out, dtype=np.float64)


def replay_request_rate(times: np.ndarray, fallback_rate: float) -> tuple[float, float]:
    """``(period, rate)`` of a replayed stream: the file repeats every ``period`` seconds (its span
    plus one mean gap, or ``1 / fallback_rate`` when the span is 0), so requests arrive at
    ``len(times) / period`` per second on average."""
    n = times.shape[0]
    span = float(times[-1] - times[0])
    period = span + (span / (n - 1) if n > 1 and span > 0 else 1.0 / fallback_rate)
    return period, n / period
