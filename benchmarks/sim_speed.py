"""Speed and memory of the fused simulate() loop (issue 3 performance criteria).

Runs a simple numba agent (Fixed = always the edge option, and Random) on the built-in ``idn-4tier``
scenario (falls back to an equivalent hand-built topology if scenario loading is unavailable) and
prints requests per wall-clock second and per CPU second of this process (the latter is the
one-core figure when other jobs share the machine), then measures peak memory growth from 10^6 to 10^7 requests in fresh
subprocesses (``resource.getrusage`` max RSS, so compile-time memory is included in both).

Usage::

    python benchmarks/sim_speed.py            # speed (1e6, 5e6 requests) + memory (1e6 vs 1e7)
    python benchmarks/sim_speed.py --quick    # 2e5 requests, no memory test

Targets: >= 1,000,000 requests/s on one core; max-RSS growth < 50 MB from 1e6 to 1e7 requests.
The numbers depend on machine load: compare runs made at the same time only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _scenario():
    from idnbandit.scenario.io import load_scenario, resolve_trace

    sc = load_scenario("idn-4tier")
    return sc, resolve_trace(sc)


def _run(agent_name: str, steps: int) -> tuple[float, float, float]:
    from idnbandit.agents import Fixed, Random
    from idnbandit.sim import n_features, n_options, simulate

    sc, trace = _scenario()
    k, f = n_options(sc), n_features(sc)
    make = (lambda: Fixed(k, f, option=1)) if agent_name == "fixed" else (lambda: Random(k, f, seed=0))
    simulate(sc, make(), 1000, trace=trace)  # compile (the fused loop is compiled once per agent kernel)
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(sc, make(), steps, trace=trace)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps / wall, steps / cpu, res.mean_reward


def _memory_child(steps: int) -> None:
    import resource

    _run("fixed", steps)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)  # MB (Linux: KiB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mem-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mem_child:
        _memory_child(args.mem_child)
        return
    sizes = [200_000] if args.quick else [1_000_000, 5_000_000]
    for agent in ("fixed", "random"):
        for n in sizes:
            rate, cpu_rate, reward = _run(agent, n)
            print(f"idn-4tier  {agent:6s}  {n:>10,d} requests  {rate / 1e6:6.2f} M requests/s wall, "
                  f"{cpu_rate / 1e6:6.2f} M per CPU-second  (mean reward {reward:.4f})")
    if args.quick:
        return
    rss = {}
    for n in (1_000_000, 10_000_000):
        out = subprocess.run([sys.executable, __file__, "--mem-child", str(n)], capture_output=True, text=True,
                             check=True)
        rss[n] = float(out.stdout.strip().splitlines()[-1])
        print(f"max RSS after {n:>10,d} requests: {rss[n]:8.1f} MB")
    print(f"growth 1e6 -> 1e7: {rss[10_000_000] - rss[1_000_000]:+.1f} MB (target < 50 MB)")


if __name__ == "__main__":
    main()
