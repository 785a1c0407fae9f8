"""Agent specs for the benchmark: splitting ``--agents``, the TOML agents file, seeds and cell ids.

An :class:`AgentSpec` pairs a *label* (the row name in tables and files) with a canonical spec
string understood by :func:`idnbandit.agents.registry.make_agent`. On the command line the label
is the canonical spec itself (``linucb(alpha=0.5)``); in an agents file it is the TOML key::

    [agents]
    fast = "linucb(alpha=0.5)"          # a spec string
    [agents.wide]                       # or a table: name + hyperparameters
    name = "linucb"
    alpha = 2.0
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..agents._params import show
from ..agents.registry import parse_agent_spec
from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["AgentSpec", "split_specs", "canonical_spec", "agents_from_cli", "agents_from_file", "agent_seed",
           "cell_id", "safe_name"]

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


@dataclass(frozen=True)
class AgentSpec:
    """One agent row of a benchmark: ``label`` names it, ``spec`` builds it (canonical form)."""

    label: str
    spec: str

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label.strip():
            raise ConfigError(f"agent label: {self.label!r} is not allowed; it must be a non-empty string")


def split_specs(text: str) -> list[str]:
    """Split ``"linucb(alpha=0.5, ridge=1),hedge-hi"`` on the commas outside brackets and quotes.

    Raises
    ------
    ConfigError
        On unbalanced brackets or quotes, or an empty item (``"a,,b"``).

    Examples
    --------
    >>> split_specs("linucb(alpha=0.5, ridge=1), hedge-hi")
    ['linucb(alpha=0.5, ridge=1)', 'hedge-hi']
    """
    items, cur, stack, quote = [], [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack[-1] != _CLOSE[ch]:
                raise ConfigError(f"--agents {text!r}: unbalanced {ch!r}")
            stack.pop()
        elif ch == "," and not stack:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if quote or stack:
        raise ConfigError(f"--agents {text!r}: unclosed {quote or stack[-1]!r}")
    items.append("".join(cur).strip())
    for i, item in enumerate(items):
        if not item:
            raise ConfigError(f"--agents {text!r}: item {i + 1} is empty; separate agent specs with single commas")
    return items


def _spec_from_parts(name: str, params: dict[str, Any]) -> str:
    if not params:
        return name
    return f"{name}(" + ", ".join(f"{k}={params[k]!r}" for k in sorted(params)) + ")"


def canonical_spec(spec: str) -> str:
    """The spec with sorted parameters and normalised spacing (``"x( b=1,a=2 )"`` → ``"x(a=2, b=1)"``).

    Raises
    ------
    ConfigError
        If the spec is malformed.
    """
    name, params = parse_agent_spec(spec)
    return _spec_from_parts(name, params)


def _check_unique(agents: list[AgentSpec], where: str) -> list[AgentSpec]:
    seen: set[str] = set()
    for a in agents:
        if a.label in seen:
            raise ConfigError(f"{where}: agent {a.label!r} is listed twice; give each agent a distinct label")
        seen.add(a.label)
    return agents


def agents_from_cli(text: str) -> list[AgentSpec]:
    """Agent specs from ``--agents`` (label = canonical spec)."""
    out = []
    for item in split_specs(text):
        spec = canonical_spec(item)
        out.append(AgentSpec(spec, spec))
    return _check_unique(out, "--agents")


_TOML_SCALARS = (bool, int, float, str)


def _toml_value(v, where: str, depth: int = 0):
    if depth > 16:
        raise ConfigError(f"{where}: nested more than 16 levels deep")
    if isinstance(v, float) and not np.isfinite(v):
        raise ConfigError(f"{where}: {v} is not allowed; numbers must be finite")
    if isinstance(v, _TOML_SCALARS):
        return v
    if isinstance(v, list):
        return [_toml_value(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
    if isinstance(v, dict):  # an inline table: a nested parameter such as oracle_params = { l2 = 0.1 }
        return {k: _toml_value(x, f"{where}.{k}", depth + 1) for k, x in v.items()}
    raise ConfigError(f"{where}: value {show(v)} is not allowed; use numbers, strings, booleans, arrays or "
                      "inline tables of them")


def agents_from_file(path: str | os.PathLike) -> list[AgentSpec]:
    """Agent specs from a TOML file with an ``[agents]`` table (label = key).

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, has other top-level keys, or an entry is malformed.
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--agents-file {p}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"--agents-file {p}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--agents-file {p}: not valid TOML ({exc})") from None
    extra = sorted(set(data) - {"agents"})
    if extra:
        raise ConfigError(f"--agents-file {p}: unknown top-level key {extra[0]!r}; only an [agents] table is allowed")
    table = data.get("agents")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"--agents-file {p}: needs a non-empty [agents] table (label = \"spec\" or [agents.label])")
    out = []
    for label, entry in table.items():
        where = f"--agents-file {p}: agents.{label}"
        if isinstance(entry, str):
            spec = canonical_spec(entry)
        elif isinstance(entry, dict):
            name = entry.get("name")
            if not isinstance(name, str):
                raise ConfigError(f"{where}.name: missing or not a string; a table needs name = \"<agent>\"")
            params = {k: _toml_value(v, f"{where}.{k}") for k, v in entry.items() if k != "name"}
            spec = canonical_spec(_spec_from_parts(name, params))
        else:
            raise ConfigError(f"{where}: {entry!r} is not allowed; use a spec string or a table with a name")
        out.append(AgentSpec(label, spec))
    return out


def agent_seed(cell_seed: int, spec: str) -> int:
    """The agent's seed for a cell: a hash of (cell seed, canonical spec), independent of scheduling.

    Examples
    --------
    >>> agent_seed(0, "linucb") == agent_seed(0, "linucb") != agent_seed(1, "linucb")
    True
    """
    h = int.from_bytes(hashlib.sha256(canonical_spec(spec).encode()).digest()[:8], "little")
    ss = np.random.SeedSequence([int(cell_seed), h])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_name(label: str) -> str:
    """A file-name-safe form of ``label``; a short hash is appended when characters were replaced."""
    s = _UNSAFE.sub("_", label).strip("._") or "x"
    if s != label:
        s += "-" + hashlib.sha256(label.encode()).hexdigest()[:6]
    return s


def cell_id(scenario: str, agent: str, seed: int) -> str:
    """``<scenario>__<agent>__s<seed>`` with file-name-safe parts."""
    return f"{safe_name(scenario)}__{safe_name(agent)}__s{int(seed)}"
