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

__all__ = ["ScenarioEntry", "Cell", "BenchPlan", "make_plan", "check_count", "MAX_SEEDS", "MAX_SEED", "MAX_STEPS",
           "MAX_CURVE_POINTS"]

FORMAT = "idnbandit-bench"
FORMAT_VERSION = 1

# upper bounds of a plan, checked before any work: beyond them a run is a typo, not an experiment
MAX_SEEDS = 10_000  # seeds per plan
MAX_SEED = 2**63 - 1  # a seed value (fits the int64 columns of results.csv readers)
MAX_STEPS = 10**12  # requests per cell
MAX_CURVE_POINTS = 10**6  # points of each cell's regret curves


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
    log: str | None = None  # path of the cell's decision log (bench --log), or None


@dataclass(frozen=True)
class BenchPlan:
    """Everything a benchmark run needs, validated."""

    scenarios: tuple[ScenarioEntry, ...]
    agents: tuple[AgentSpec, ...]
    seeds: tuple[int, ...]
    steps: int
    curve_points: int
    scope: str | None = None  # None: one decision at the origin; "shared" / "per-node": every node decides
    log_dir: str | None = None  # bench --log: each cell writes <log_dir>/<cell id>.parquet (not in identity())

    @property
    def cells(self) -> list[Cell]:
        """All cells, seed-major (every scenario × agent gets seed 0 before seed 1)."""
        out = []
        for seed in self.seeds:
            for s in self.scenarios:
                for a in self.agents:
                    cid = cell_id(s.name, a.label, seed)
                    log = None if self.log_dir is None else os.path.join(self.log_dir, f"{cid}.parquet")
                    out.append(Cell(cid, s.name, a.label, a.spec, seed, agent_seed(seed, a.spec), self.steps,
                                    self.scope, log))
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


def check_count(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (no upper bound when ``hi`` is None), or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo \
            or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{name}: {value!r} is not allowed; it must be an integer {allowed}")
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
              curve_points: int = 200, scope: str | None = None, strict: bool = False,
              log_dir: str | None = None) -> BenchPlan:
    """Load and check everything a run needs; no file is written.

    Parameters
    ----------
    scenarios
        Built-in scenario names or TOML paths.
    agents
        Agent rows (labels must be distinct).
    seeds
        Run seeds (distinct, in [0, 2^63 - 1], at most ``MAX_SEEDS`` = 10,000 of them).
    steps
        Requests per cell, in [1, ``MAX_STEPS`` = 10^12].
    curve_points
        Points of each cell's regret curves, in [2, ``MAX_CURVE_POINTS`` = 10^6].
    scope
        Agent scope passed to :func:`~idnbandit.sim.simulate`: None (default, one decision at the
        origin), ``"shared"`` or ``"per-node"`` (every node on the path decides).
    strict
        Refuse (ConfigError) an agent that cannot learn from a scenario's feedback mode (its
        ``feedback_modes``, e.g. LinUCB under ``label_on_forward``); by default one
        :class:`~idnbandit.errors.FeedbackMismatchWarning` lists every such pair, once per plan (the
        cells then run without repeating it).
    log_dir
        Write a decision log per cell there (``<cell id>.parquet``, :mod:`idnbandit.ope`); needs pyarrow,
        one decision per request (no ``scope``) and agents that report propensities.

    Raises
    ------
    ConfigError, UnknownNameError, TraceError
        On any bad input; the message names it and suggests close names.
    """
    from ..agents.registry import make_agent

    steps = check_count("steps", steps, 1, MAX_STEPS)
    if log_dir is not None:
        from ..errors import require

        require("pyarrow", "ope")
        if scope is not None:
            raise ConfigError("--log: decision logs record one decision per request; drop --scope or --log")
    if scope is not None:
        from ..sim.multihop import check_scope

        scope = check_scope(scope)
    curve_points = check_count("curve_points", curve_points, 2, MAX_CURVE_POINTS)
    if not scenarios:
        raise ConfigError("--scenario: give at least one scenario name or .toml path")
    if not agents:
        raise ConfigError("--agents: give at least one agent")
    if not seeds:
        raise ConfigError("seeds: give at least one seed")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"seeds: {len(seeds)} seeds are too many; at most {MAX_SEEDS} are allowed")
    seeds = tuple(check_count("seed", s, 0, MAX_SEED) for s in seeds)
    if len(set(seeds)) != len(seeds):
        seen: set[int] = set()
        dup = next(s for s in seeds if s in seen or seen.add(s))
        raise ConfigError(f"seeds: {dup} is given more than once (duplicates); each seed may appear once")
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
    from ..agents import feedback_mismatch, propensity_problem

    mismatched = []
    for e in entries:
        for a in agents:
            try:
                agent = make_agent(a.spec, e.n_options, e.n_features, seed=0)
            except ConfigError as exc:
                raise ConfigError(f"agent {a.label!r} on scenario {e.name!r}: {exc}") from None
            why = propensity_problem(agent) if log_dir is not None else None
            if why:
                raise ConfigError(f"--log: agent {a.label!r} cannot report the probability of its decisions ({why}); "
                                  "decision logs need it; drop --log or the agent (docs/ope.md lists the agents "
                                  "that can be logged)")
            mode = e.scenario.feedback.mode
            msg = feedback_mismatch(agent, mode)
            if msg and strict:
                raise ConfigError(f"{msg} (label {a.label!r}, scenario {e.name!r}); --strict refuses it: drop the "
                                  "agent or the scenario, or run without --strict")
            if msg:
                mismatched.append(f"{a.label} on {e.name} ({getattr(mode, 'value', mode)})")
    if mismatched:
        import warnings

        from ..errors import FeedbackMismatchWarning

        warnings.warn(f"agents that cannot learn from their scenario's feedback (they run, but as fixed rules): "
                      f"{'; '.join(mismatched)}; see `idnbandit agents` and docs/agents.md (feedback modes); "
                      "--strict refuses such runs", FeedbackMismatchWarning, stacklevel=2)
    return BenchPlan(tuple(entries), tuple(agents), seeds, steps, curve_points, scope,
                     None if log_dir is None else os.fspath(log_dir))
