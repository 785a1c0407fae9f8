"""A validated benchmark plan: scenarios × agents × seeds, checked before any work starts.

:func:`make_plan` loads every scenario (built-in name or TOML path), builds every agent once per
scenario (so bad hyperparameters fail now, not in a worker an hour later) and lists the cells.
:meth:`BenchPlan.identity` is what ``config.json`` records and what a resumed run must match.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .specs import AgentSpec, agent_seed, cell_id

__all__ = ["ScenarioEntry", "Cell", "BenchPlan", "make_plan", "check_count"]

FORMAT = "idnbandit-bench"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ScenarioEntry:
    """A loaded scenario with where it came from and a fingerprint of its content."""

    name: str
    source: str  # the built-in name, or the absolute path of the TOML file
    fingerprint: str  # sha256 of the canonical scenario dict
    scenario: object  # idnbandit.scenario.Scenario
    n_options: int
    n_features: int


@dataclass(frozen=True)
class Cell:
    """One unit of work: one agent on one scenario with one seed."""

    cell_id: str
    scenario: str  # scenario name
    agent: str  # agent label
    spec: str  # canonical agent spec
    seed: int  # run seed: drives the request stream and background load
    agent_seed: int  # derived from (seed, spec)
    steps: int
    scope: str | None = None  # agent scope of simulate(): None (origin decides), "shared" or "per-node"


@dataclass(frozen=True)
class BenchPlan:
    """Everything a benchmark run needs, validated."""

    scenarios: tuple[ScenarioEntry, ...]
    agents: tuple[AgentSpec, ...]
    seeds: tuple[int, ...]
    steps: int
    curve_points: int
    scope: str | None = None  # None: one decision at the origin; "shared" / "per-node": every node decides

    @property
    def cells(self) -> list[Cell]:
        """All cells, seed-major (every scenario × agent gets seed 0 before seed 1)."""
        out = []
        for seed in self.seeds:
            for s in self.scenarios:
                for a in self.agents:
                    out.append(Cell(cell_id(s.name, a.label, seed), s.name, a.label, a.spec, seed,
                                    agent_seed(seed, a.spec), self.steps, self.scope))
        return out

    def scenario(self, name: str) -> ScenarioEntry:
        return next(s for s in self.scenarios if s.name == name)

    def identity(self) -> dict:
        """The JSON-able configuration that ``config.json`` stores (no scheduling options)."""
        from .. import __version__

        ident = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "idnbandit_version": __version__,
            "scenarios": [{"name": s.name, "source": s.source, "fingerprint": s.fingerprint} for s in self.scenarios],
            "agents": [{"label": a.label, "spec": a.spec} for a in self.agents],
            "seeds": list(self.seeds),
            "steps": self.steps,
            "curve_points": self.curve_points,
        }
        if self.scope is not None:  # absent for the default scope, so earlier results folders still resume
            ident["scope"] = self.scope
        return ident


def check_count(name: str, value, lo: int) -> int:
    """``value`` as an int >= ``lo``, or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ConfigError(f"{name}: {value!r} is not allowed; it must be an integer >= {lo}")
    return int(value)


def _fingerprint(scenario) -> str:
    from ..scenario import scenario_to_dict

    text = json.dumps(scenario_to_dict(scenario), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _load(name_or_path: str, scope: str | None = None) -> ScenarioEntry:
    from ..scenario import builtin_names, load_scenario
    from ..sim.multihop import multihop_dims

    scenario = load_scenario(name_or_path)
    source = name_or_path if name_or_path in builtin_names() and not os.path.exists(name_or_path) \
        else os.path.abspath(name_or_path)
    return ScenarioEntry(scenario.name, source, _fingerprint(scenario), scenario, *multihop_dims(scenario, scope))


def make_plan(scenarios: Sequence[str], agents: Sequence[AgentSpec], seeds: Sequence[int], steps: int,
              curve_points: int = 200, scope: str | None = None) -> BenchPlan:
    """Load and check everything a run needs; no file is written.

    Parameters
    ----------
    scenarios
        Built-in scenario names or TOML paths.
    agents
        Agent rows (labels must be distinct).
    seeds
        Run seeds (distinct, >= 0).
    steps
        Requests per cell (>= 1).
    curve_points
        Points of each cell's regret curves (>= 2).
    scope
        Agent scope passed to :func:`~idnbandit.sim.simulate`: None (default, one decision at the
        origin), ``"shared"`` or ``"per-node"`` (every node on the path decides).

    Raises
    ------
    ConfigError, UnknownNameError, TraceError
        On any bad input; the message names it and suggests close names.
    """
    from ..agents.registry import make_agent

    steps = check_count("steps", steps, 1)
    if scope is not None:
        from ..sim.multihop import check_scope

        scope = check_scope(scope)
    curve_points = check_count("curve_points", curve_points, 2)
    if not scenarios:
        raise ConfigError("--scenario: give at least one scenario name or .toml path")
    if not agents:
        raise ConfigError("--agents: give at least one agent")
    if not seeds:
        raise ConfigError("seeds: give at least one seed")
    seeds = tuple(check_count("seed", s, 0) for s in seeds)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: {list(seeds)} has duplicates; each seed may appear once")
    labels = [a.label for a in agents]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup is not None:
        raise ConfigError(f"agents: {dup!r} is listed twice; give each agent a distinct label")
    entries: list[ScenarioEntry] = []
    for name in scenarios:
        e = _load(name, scope)
        if any(x.name == e.name for x in entries):
            raise ConfigError(f"--scenario: two scenarios are named {e.name!r}; scenario names must be distinct")
        entries.append(e)
    for e in entries:
        for a in agents:
            try:
                make_agent(a.spec, e.n_options, e.n_features, seed=0)
            except ConfigError as exc:
                raise ConfigError(f"agent {a.label!r} on scenario {e.name!r}: {exc}") from None
    return BenchPlan(tuple(entries), tuple(agents), seeds, steps, curve_points, scope)
