"""Speed and memory of the event core (issue 16's performance criteria), ratios measured in one run.

Sections (all on one machine, in this process unless stated):

1. **speed**: fused ``simulate()`` on ``idn-4tier`` with a fixed agent (always the edge option) and
   with LinUCB, requests per wall-clock second, median of interleaved repeats (this VM's speed
   drifts between minutes; interleaving compares the same minutes);
2. **twin**: the same 20,000 requests through the event core and through the SimPy twin
   (``tests/sim/simpy_twin.py``, the slow independent implementation of the same semantics): the
   ratio of their speeds;
3. **memory**: peak RSS of fresh subprocesses after 10^6 and 10^8 requests (growth), and after 10^6
   requests with ``timeout_ms`` = 60 s and 10^9 ms (the old loop buffered background jobs up to the
   timeout);
4. **scale**: ``shared-edge`` with its 12 phones and scaled to 10,000 phones (same total request rate,
   so the same load on the edge): time per request.

Usage::

    python benchmarks/sim_speed.py            # everything (about 5 minutes after compilation)
    python benchmarks/sim_speed.py --quick    # sections 1, 2 and 4 on fewer requests

Targets: fixed agent >= 1,000,000 requests/s and >= 100x the SimPy twin; LinUCB >= 600,000
requests/s; RSS growth < 50 MB from 1e6 to 1e8 requests and independent of timeout_ms; 10,000
devices within 2x the time per request of 12.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


def _scenario(name: str = "idn-4tier"):
    from idnbandit.scenario.io import load_scenario, resolve_trace

    sc = load_scenario(name)
    return sc, resolve_trace(sc)


def _agent(kind: str, sc):
    from idnbandit.agents import Fixed, make_agent
    from idnbandit.sim import n_features, n_options

    k, f = n_options(sc), n_features(sc)
    if kind == "fixed":
        return Fixed(k, f, option=1)
    return make_agent("linucb(alpha=0.5)", k, f, seed=0)


def _rate(sc, trace, kind: str, steps: int, seed: int = 1, **kw) -> tuple[float, object]:
    from idnbandit.sim import simulate

    t0 = time.perf_counter()
    res = simulate(sc, _agent(kind, sc), steps, seed=seed, trace=trace, **kw)
    return steps / (time.perf_counter() - t0), res


def speed(steps: int, rounds: int) -> dict[str, float]:
    sc, trace = _scenario()
    for kind in ("fixed", "linucb"):
        _rate(sc, trace, kind, 2000)  # compile / load from numba's cache
    rates: dict[str, list[float]] = {"fixed": [], "linucb": []}
    for _ in range(rounds):
        for kind in rates:
            rates[kind].append(_rate(sc, trace, kind, steps)[0])
    out = {}
    for kind, r in rates.items():
        out[kind] = statistics.median(r)
        print(f"idn-4tier  {kind:6s}  {steps:>10,d} requests  median {out[kind] / 1e6:5.2f} M requests/s "
              f"(runs: {', '.join(f'{x / 1e6:.2f}' for x in r)})")
    return out


def twin_ratio(steps: int, rounds: int) -> float:
    sys.path.insert(0, str(ROOT / "tests" / "sim"))
    from simpy_twin import run_twin

    sc, trace = _scenario()
    agent = _agent("fixed", sc)
    core = []
    for _ in range(rounds):
        core.append(_rate(sc, trace, "fixed", steps, seed=3, record_requests=False)[0])
    t0 = time.perf_counter()
    twin = run_twin(sc, agent, steps, 3, trace)
    twin_rate = steps / (time.perf_counter() - t0)
    _, res = _rate(sc, trace, "fixed", steps, seed=3, record_requests=True)
    same = bool((res.requests["reward"] == twin["reward"]).all() or abs(res.requests["reward"] - twin["reward"]).max() < 1e-9)
    ratio = statistics.median(core) / twin_rate
    print(f"twin       fixed   {steps:>10,d} requests  core {statistics.median(core) / 1e6:5.2f} M/s, SimPy twin "
          f"{twin_rate / 1e3:5.2f} k/s: ratio {ratio:,.0f}x (same per-request rewards: {same})")
    return ratio


def _memory_child(steps: int, timeout_ms: float) -> None:
    import resource

    sc, trace = _scenario()
    sc = dataclasses.replace(sc, workload=dataclasses.replace(sc.workload, timeout_ms=timeout_ms))
    rate, _ = _rate(sc, trace, "fixed", steps)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, rate)  # MB (Linux: KiB), requests/s


def _child(steps: int, timeout_ms: float = 10_000.0) -> tuple[float, float]:
    out = subprocess.run([sys.executable, __file__, "--mem-child", str(steps), "--timeout-ms", str(timeout_ms)],
                         capture_output=True, text=True, check=True)
    rss, rate = out.stdout.strip().splitlines()[-1].split()
    return float(rss), float(rate)


def memory(big: int) -> None:
    rss_small, _ = _child(1_000_000)
    rss_big, rate_big = _child(big)
    print(f"max RSS after {1_000_000:>12,d} requests: {rss_small:7.1f} MB; after {big:,d}: {rss_big:7.1f} MB "
          f"(growth {rss_big - rss_small:+.1f} MB; {rate_big / 1e6:.2f} M requests/s over the long run)")
    for tmo in (60_000.0, 1e9):
        rss, rate = _child(1_000_000, tmo)
        print(f"timeout_ms = {tmo:>10.3g}: max RSS {rss:7.1f} MB, {rate / 1e6:5.2f} M requests/s")


def scaled_shared_edge(devices: int):
    """``shared-edge`` with ``devices`` phones (copies of its first phone) at the same total rate."""
    sc, trace = _scenario("shared-edge")
    phones = [n for n in sc.nodes if n.tier.value == "device"]
    others = [n for n in sc.nodes if n.tier.value != "device"]
    proto = phones[0]
    new = tuple(dataclasses.replace(proto, name=f"phone-{i + 1}") for i in range(devices))
    total = sc.workload.rate_per_s * len(phones)
    wl = dataclasses.replace(sc.workload, origins=tuple(p.name for p in new), rate_per_s=total / devices)
    return dataclasses.replace(sc, nodes=(*new, *others), workload=wl), trace


def scale(steps: int, rounds: int) -> float:
    small, trace = _scenario("shared-edge")
    big, _ = scaled_shared_edge(10_000)
    for sc in (small, big):
        _rate(sc, trace, "fixed", 2000)
    per = {12: [], 10_000: []}
    for _ in range(rounds):
        for n, sc in ((12, small), (10_000, big)):
            per[n].append(1e9 / _rate(sc, trace, "fixed", steps)[0])
    a, b = statistics.median(per[12]), statistics.median(per[10_000])
    print(f"shared-edge fixed {steps:>9,d} requests: 12 phones {a:6.0f} ns/request, 10,000 phones {b:6.0f} "
          f"ns/request (ratio {b / a:.2f})")
    return b / a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mem-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--timeout-ms", type=float, default=10_000.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mem_child:
        _memory_child(args.mem_child, args.timeout_ms)
        return
    rounds = 2 if args.quick else args.rounds
    s = speed(200_000 if args.quick else 2_000_000, rounds)
    r = twin_ratio(5_000 if args.quick else 20_000, rounds)
    sc_ratio = scale(100_000 if args.quick else 1_000_000, rounds)
    if not args.quick:
        memory(100_000_000)
    print(f"targets: fixed {s['fixed'] / 1e6:.2f} M/s (>= 1.0), linucb {s['linucb'] / 1e6:.2f} M/s (>= 0.6), "
          f"twin ratio {r:,.0f}x (>= 100), 10,000/12 devices {sc_ratio:.2f} (<= 2)")


if __name__ == "__main__":
    main()
