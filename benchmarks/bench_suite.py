"""Time the default benchmark suite: every built-in scenario × the 6 default agents × 5 seeds × 100k requests.

Run::

    python benchmarks/bench_suite.py                 # full suite (target: < 3 minutes on 2 cores)
    python benchmarks/bench_suite.py --steps 20000   # a quicker look
    python benchmarks/bench_suite.py --jobs 1 --out /tmp/suite

It calls the same code as ``idnbandit bench --scenario all`` (local processes, all cores), into a
fresh temporary folder unless ``--out`` is given, and prints the wall time, the simulated decisions
per second of wall time (all cores together), and the median per-cell decisions/s of each agent
(one core, measured inside ``simulate``; the first cell of each agent in a process includes
loading or compiling its numba kernels). Record the figures in ``benchmarks/RESULTS.md`` with the
machine and the command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main(argv=None) -> int:
    from idnbandit.bench import agents_from_cli, make_plan, run_bench
    from idnbandit.bench.cli import DEFAULT_AGENTS
    from idnbandit.scenario import builtin_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default=",".join(builtin_names()))
    p.add_argument("--agents", default=DEFAULT_AGENTS)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--out", default=None, help="results folder (default: a fresh temporary folder)")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    plan = make_plan(a.scenarios.split(","), agents_from_cli(a.agents), list(range(a.seeds)), a.steps)
    t_plan = time.perf_counter() - t0
    out = a.out or tempfile.mkdtemp(prefix="idnbandit-suite-")
    outcome = run_bench(plan, out, jobs=a.jobs, quiet=not sys.stderr.isatty())
    wall = time.perf_counter() - t0
    if outcome.failed or outcome.interrupted:
        print(f"suite incomplete: {len(outcome.failed)} failed, interrupted={outcome.interrupted}")
        return 1
    n_cells = len(plan.cells)
    decisions = n_cells * plan.steps
    print(f"suite: {len(plan.scenarios)} scenarios x {len(plan.agents)} agents x {len(plan.seeds)} seeds x "
          f"{plan.steps} requests = {n_cells} cells, {decisions / 1e6:.1f} M decisions")
    print(f"jobs {a.jobs or os.cpu_count()}, cpus {os.cpu_count()}; wall {wall:.1f} s "
          f"(validation {t_plan:.1f} s); {decisions / wall / 1e3:.0f} k decisions/s of wall time")
    for agent in plan.agents:
        dps = [r["result"]["decisions_per_s"] for r in outcome.records.values() if r["agent"] == agent.label]
        secs = sum(r["result"]["wall_time_s"] for r in outcome.records.values() if r["agent"] == agent.label)
        print(f"  {agent.label:<24} median {statistics.median(dps) / 1e3:8.0f} k decisions/s per core, "
              f"{secs:6.1f} s of simulation in total")
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
