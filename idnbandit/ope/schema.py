"""The decision-log schema (version 1): column names, metadata, and the checks every chunk passes.

A decision log is a table with one row per decision. Columns, in this order:

=====================  ========  ================================================================
column                 dtype     meaning
=====================  ========  ================================================================
``request``            int64     request id (unique in a log; the simulator's request number)
``time_s``             float64   time of the decision, in seconds (simulated or wall clock)
``origin``             int64     the node where the request arrived (the simulator's node index)
``x_0`` … ``x_{d-1}``  float64   the context the policy saw (d = ``n_features``)
``action``             int64     the option taken, in ``[0, n_options)``
``propensity``         float64   the logging policy's probability of that option, in (0, 1]
``observed``           bool      whether feedback revealed this decision's reward
``reward``             float64   the observed reward of ``action``; NaN exactly when not observed
``sim_reward_0`` …     float64   simulation only (``meta.simulated``): every option's reward, the
``sim_reward_{K-1}``             ground truth the estimators are checked against. Never present in
                                 a log from a real system.
=====================  ========  ================================================================

``observed`` is False where the feedback mode reveals nothing about a decision (``label_on_forward``
and ``proxy`` say nothing about a request served locally; a client timeout may report nothing).
Estimators need the reward of the logged action, so they refuse logs with unobserved rows unless told
to drop them, which biases them (docs/ope.md).

Metadata (a JSON object: the Parquet schema's ``idnbandit`` key, or a CSV file's first line
``# idnbandit-decision-log {...}``): ``format``, ``version``, ``n_options``, ``n_features``,
``feedback`` (the scenario's feedback mode, or ``"bandit"`` for a real system), ``simulated``,
``policy`` (the logging policy's spec, free text) and ``scenario`` (free text). A CSV written by
hand may omit the line: ``n_features`` is then the number of ``x_`` columns and ``n_options`` must be
given to the reader.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import LogError

__all__ = ["FORMAT", "VERSION", "LogMeta", "columns", "context_columns", "sim_columns", "check_chunk"]

FORMAT = "idnbandit-decision-log"
VERSION = 1
MAX_OPTIONS = 10**6
MAX_FEATURES = 10**5
FEEDBACK = ("full", "bandit", "label_on_forward", "proxy")


@dataclass(frozen=True)
class LogMeta:
    """What a log says about itself; checked at construction (``LogError`` naming the field)."""

    n_options: int
    n_features: int
    feedback: str = "bandit"
    simulated: bool = False
    policy: str = ""
    scenario: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, hi in (("n_options", MAX_OPTIONS), ("n_features", MAX_FEATURES)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
                raise LogError(f"log metadata {name}: {v!r} is not allowed; it must be an integer in [1, {hi}]")
        if self.feedback not in FEEDBACK:
            raise LogError(f"log metadata feedback: {self.feedback!r} is not allowed; it must be one of "
                           f"{', '.join(FEEDBACK)}")
        if not isinstance(self.simulated, bool):
            raise LogError(f"log metadata simulated: {self.simulated!r} is not allowed; it must be true or false")
        for name in ("policy", "scenario"):
            if not isinstance(getattr(self, name), str):
                raise LogError(f"log metadata {name}: {getattr(self, name)!r} is not allowed; it must be a string")
        if not isinstance(self.extra, dict):
            raise LogError(f"log metadata extra: {self.extra!r} is not allowed; it must be a JSON object")

    def to_json(self) -> str:
        d = {"format": FORMAT, "version": VERSION, **asdict(self)}
        try:
            return json.dumps(d, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise LogError(f"log metadata extra: not JSON-serialisable ({exc})") from None

    @classmethod
    def from_json(cls, text: str, source: str) -> LogMeta:
        """Parse metadata written by :meth:`to_json`; ``LogError`` naming ``source`` otherwise."""
        if len(text) > 1_000_000:
            raise LogError(f"{source}: log metadata of {len(text)} characters; at most 1,000,000 are allowed")
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise LogError(f"{source}: log metadata is not valid JSON ({str(exc)[:80]})") from None
        if not isinstance(d, dict):
            raise LogError(f"{source}: log metadata must be a JSON object, not {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise LogError(f"{source}: log metadata format {d.get('format')!r} is not {FORMAT!r}")
        if d.get("version") != VERSION:
            raise LogError(f"{source}: log version {d.get('version')!r} is not supported; this idnbandit "
                           f"reads version {VERSION}")
        known = {"n_options", "n_features", "feedback", "simulated", "policy", "scenario", "extra"}
        unknown = set(d) - known - {"format", "version"}
        if unknown:
            raise LogError(f"{source}: unknown log metadata field(s) {sorted(unknown)}; known: {sorted(known)}")
        if "n_options" not in d or "n_features" not in d:
            raise LogError(f"{source}: log metadata must give n_options and n_features")
        return cls(**{k: d[k] for k in known if k in d})


def context_columns(n_features: int) -> list[str]:
    return [f"x_{j}" for j in range(n_features)]


def sim_columns(n_options: int) -> list[str]:
    return [f"sim_reward_{k}" for k in range(n_options)]


def columns(meta: LogMeta) -> list[str]:
    """Every column of a log with ``meta``, in schema order."""
    cols = ["request", "time_s", "origin", *context_columns(meta.n_features), "action", "propensity",
            "observed", "reward"]
    return cols + (sim_columns(meta.n_options) if meta.simulated else [])


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_chunk(chunk, meta: LogMeta, first_row: int, source: str) -> None:
    """Raise ``LogError`` naming the row (0-based, in the whole log) and column of the first bad value.

    Checks: contexts finite; ``action`` in ``[0, n_options)``; ``propensity`` finite in (0, 1];
    ``reward`` finite where ``observed`` and NaN where not; simulated rewards finite; times finite.
    """
    def bad(col: str, mask: np.ndarray, what) -> None:
        if mask.any():
            i = _first_bad(mask)
            raise LogError(f"{source}: row {first_row + i}, column {col}: {what(i)}")

    t = chunk.time_s
    bad("time_s", ~np.isfinite(t), lambda i: f"{float(t[i])!r} is not finite")
    x_ok = np.isfinite(chunk.x)
    if not x_ok.all():
        i, j = np.argwhere(~x_ok)[0]
        raise LogError(f"{source}: row {first_row + int(i)}, column x_{int(j)}: {float(chunk.x[i, j])!r} is not finite")
    a = chunk.action
    bad("action", (a < 0) | (a >= meta.n_options),
        lambda i: f"{int(a[i])} is not an option; it must be in [0, {meta.n_options - 1}]")
    p = chunk.propensity
    bad("propensity", ~(np.isfinite(p) & (p > 0) & (p <= 1)),
        lambda i: f"{float(p[i])!r} is not allowed; a propensity must be in (0, 1]")
    r, obs = chunk.reward, chunk.observed
    bad("reward", obs & ~np.isfinite(r), lambda i: f"{float(r[i])!r}: observed is true, so the reward must be a finite number")
    bad("reward", ~obs & ~np.isnan(r), lambda i: f"{float(r[i])!r}: observed is false, so the reward must be empty (NaN)")
    if meta.simulated:
        s_ok = np.isfinite(chunk.sim_rewards)
        if not s_ok.all():
            i, k = np.argwhere(~s_ok)[0]
            raise LogError(f"{source}: row {first_row + int(i)}, column sim_reward_{int(k)}: not a finite number")
