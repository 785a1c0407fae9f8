"""Benchmarks: agents × scenarios × seeds in parallel (local processes or Ray), resumable results,
mean ± 95 % CI tables and plots. The ``idnbandit bench`` command is a thin layer over this package.

Example (writes a results folder, so not a doctest)::

    from idnbandit.bench import agents_from_cli, make_plan, run_bench

    plan = make_plan(["idn-4tier"], agents_from_cli("linucb,always-local"), seeds=[0, 1], steps=5000)
    outcome = run_bench(plan, "results/", jobs=2)
    outcome.summary["scenarios"]["idn-4tier"]["linucb"]["metrics"]["mean_reward"]  # mean, ci95, n
"""

from .plan import BenchPlan, Cell, ScenarioEntry, make_plan
from .runner import BenchOutcome, run_bench, run_cell
from .specs import AgentSpec, agent_seed, agents_from_cli, agents_from_file, split_specs
from .stats import mean_ci, t_quantile
from .store import ResultStore
from .summary import normalised_score, summarize

__all__ = [
    "AgentSpec",
    "BenchOutcome",
    "BenchPlan",
    "Cell",
    "ResultStore",
    "ScenarioEntry",
    "agent_seed",
    "agents_from_cli",
    "agents_from_file",
    "make_plan",
    "mean_ci",
    "normalised_score",
    "run_bench",
    "run_cell",
    "split_specs",
    "summarize",
    "t_quantile",
]
