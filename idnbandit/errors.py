"""One exception hierarchy for idnbandit.

Every error raised on bad user input derives from :class:`IdnBanditError`, so callers can catch the
whole family at once. Messages name the field, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "IdnBanditError",
    "ConfigError",
    "TraceError",
    "CheckpointError",
    "LogError",
    "FeedbackMismatchWarning",
    "UnknownNameError",
    "DependencyNotInstalled",
    "close_matches",
]


class IdnBanditError(Exception):
    """Base class of every error idnbandit raises on purpose."""


class ConfigError(IdnBanditError, ValueError):
    """A scenario, an agent's hyperparameters or a call's arguments are invalid."""


class TraceError(IdnBanditError, ValueError):
    """A model-output trace is missing, truncated, corrupted or of the wrong shape."""


class CheckpointError(ConfigError):
    """An agent checkpoint is unreadable, of the wrong structure, or holds invalid values.

    A subclass of :class:`ConfigError` (so callers that caught ``ConfigError`` around
    ``Agent.load`` keep working); the message names the file, the array or metadata field, and the
    problem (e.g. ``"state array s3 (A⁻¹ of option 0): not positive definite"``).
    """


class LogError(IdnBanditError, ValueError):
    """A decision log (``idnbandit.ope``) has missing columns, bad metadata or an invalid value.

    The message names the file, the row (0-based) and the column, e.g.
    ``"log.csv: row 17, column propensity: 0.0 is not allowed; a propensity must be in (0, 1]"``.
    """


class FeedbackMismatchWarning(UserWarning):
    """An agent runs under a feedback mode it cannot learn from (e.g. LinUCB under ``label_on_forward``).

    Each agent class declares ``feedback_modes`` (see :class:`idnbandit.agents.Agent`);
    :func:`idnbandit.sim.simulate` and the benchmark plan warn when the scenario's mode is not
    among them.
    """


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Names in ``choices`` that look like ``name`` (difflib ratio >= 0.6), best first."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)


class UnknownNameError(IdnBanditError, KeyError):
    """An unknown agent, scenario, trace or option name; suggests close matches.

    Parameters
    ----------
    kind
        What was looked up, e.g. ``"agent"`` or ``"scenario"``.
    name
        The name that was not found.
    choices
        The names that exist.
    """

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind = kind
        self.name = name
        self.choices = sorted(choices)
        self.suggestions = close_matches(name, self.choices)
        msg = f"unknown {kind} {name!r}"
        if self.suggestions:
            msg += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            msg += "; known: " + ", ".join(self.choices)
        self.message = msg
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class DependencyNotInstalled(IdnBanditError, ImportError):
    """An optional dependency is missing; the message names the extra to install.

    Parameters
    ----------
    package
        The importable package that is missing (``"torch"``).
    extra
        The idnbandit extra that provides it (``"torch"`` → ``pip install 'idnbandit[torch]'``).
    """

    def __init__(self, package: str, extra: str):
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'idnbandit[{extra}]'"
        )


def require(package: str, extra: str):
    """Import ``package`` lazily, raising :class:`DependencyNotInstalled` if it is missing."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise DependencyNotInstalled(package, extra) from exc
