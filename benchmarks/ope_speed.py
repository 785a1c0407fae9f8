"""Speed and memory of decision logs and off-policy estimators (issue 19's performance criteria).

1. **logging overhead**: ``simulate()`` of LinUCB on ``idn-4tier`` with and without ``log=`` (Parquet),
   interleaved repeats in one process, median requests/s; target: logging costs <= 30 %.
2. **estimators**: DR with a 200-resample bootstrap on a 10^6-row Parquet log, one core; target < 30 s.
3. **memory**: peak RSS of fresh subprocesses evaluating logs of 10^5 and 10^6 rows (DR + bootstrap):
   bounded by a chunk, not by the log's length.

Usage::

    python benchmarks/ope_speed.py            # about 2 minutes
    python benchmarks/ope_speed.py --quick    # 200,000 requests, a 2x10^5-row log
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


def logging_overhead(steps: int, repeats: int) -> dict:
    from idnbandit.agents import make_agent
    from idnbandit.scenario import load_scenario
    from idnbandit.sim import n_features, n_options, simulate

    sc = load_scenario("idn-4tier")
    k, f = n_options(sc), n_features(sc)
    tmp = Path(tempfile.mkdtemp())
    simulate(sc, make_agent("linucb", k, f, seed=0), 2000, seed=0, log=tmp / "warm.parquet")  # compile both
    plain, logged = [], []
    for i in range(repeats):
        r = simulate(sc, make_agent("linucb", k, f, seed=0), steps, seed=1)
        plain.append(r.decisions_per_s)
        path = tmp / f"l{i}.parquet"
        t = time.perf_counter()
        simulate(sc, make_agent("linucb", k, f, seed=0), steps, seed=1, log=path)
        logged.append(steps / (time.perf_counter() - t))  # wall time including the file's close
        path.unlink()
    p, q = statistics.median(plain), statistics.median(logged)
    return {"plain_per_s": p, "logged_per_s": q, "overhead": 1 - q / p}


def make_log(rows: int, path: Path) -> None:
    from idnbandit.ope import LogWriter, synthetic_log

    first, _ = synthetic_log(10, n_options=4, n_features=8, seed=0)
    with LogWriter(path, first.meta, overwrite=True) as w:
        for s in range(0, rows, 100_000):
            log, _ = synthetic_log(min(100_000, rows - s), n_options=4, n_features=8, seed=s)
            w.write(**{k: v for k, v in log._asdict().items() if k != "meta"} | {"request": log.request + s})


def _evaluate_child(path: str) -> None:
    import resource

    import numpy as np

    from idnbandit.ope import deterministic_policy, evaluate

    target = deterministic_policy(lambda x: np.argmax(x[:, :4], axis=1), 4)
    t = time.perf_counter()
    est = evaluate(path, target, estimators=["dr"], n_boot=200)
    wall = time.perf_counter() - t
    print(f"{wall:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} {est[0].n}")


def evaluate_in_child(path: Path) -> tuple[float, float, int]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall, rss, n = out.stdout.split()
    return float(wall), float(rss), int(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _evaluate_child(args.child)
        return 0
    steps, big = (200_000, 200_000) if args.quick else (1_000_000, 1_000_000)
    o = logging_overhead(steps, 3)
    print(f"1. logging: {o['plain_per_s'] / 1e6:.2f} M requests/s without, {o['logged_per_s'] / 1e6:.2f} M with "
          f"a Parquet log: overhead {100 * o['overhead']:.0f} % (target <= 30 %)")
    tmp = Path(tempfile.mkdtemp())
    small_path, big_path = tmp / "small.parquet", tmp / "big.parquet"
    make_log(big // 10, small_path)
    make_log(big, big_path)
    evaluate_in_child(small_path)  # numba cache warm-up
    w_small, rss_small, _ = evaluate_in_child(small_path)
    w_big, rss_big, n = evaluate_in_child(big_path)
    print(f"2. DR + 200-resample bootstrap on a {n:,}-row log: {w_big:.1f} s on one core (target < 30 s)")
    print(f"3. peak RSS: {rss_small:.0f} MB for {big // 10:,} rows, {rss_big:.0f} MB for {big:,} rows "
          f"(+{rss_big - rss_small:.0f} MB for 10x the rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
