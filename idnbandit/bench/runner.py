"""Run the cells of a :class:`~idnbandit.bench.plan.BenchPlan`: in-process, local processes or Ray.

Every backend yields ``(cell, record, error)`` as cells finish; :func:`run_bench` writes each record
atomically, rebuilds ``results.csv`` and finally ``summary.json``. A cell's numbers depend only on
the cell (scenario, agent spec, seed → derived agent seed, steps), never on the backend, the number
of workers or the order of completion.

Ctrl-C (or SIGTERM) stops the run: workers are terminated, finished cells stay on disk, and the
summary of what finished is written; re-running the same command resumes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from ..errors import ConfigError, require
from .plan import BenchPlan, Cell
from .progress import BenchProgress
from .store import ResultStore
from .summary import make_record, summarize

__all__ = ["run_cell", "run_bench", "BenchOutcome", "BACKENDS"]

BACKENDS = ("process", "ray")

_TRACES: dict[tuple[str, str], object] = {}  # per-process cache: (scenario name, fingerprint) -> Trace
_QUEUE = None  # progress queue of a worker process


def _trace_of(scenario, key: tuple[str, str]):
    from ..scenario import resolve_trace

    if key not in _TRACES:
        if len(_TRACES) >= 8:
            _TRACES.clear()
        _TRACES[key] = resolve_trace(scenario)
    return _TRACES[key]


def run_cell(cell: Cell, scenario, fingerprint: str, curve_points: int,
             progress: Callable[[int], None] | None = None) -> dict:
    """Run one cell and return its JSON record (see :func:`~idnbandit.bench.summary.make_record`).

    Parameters
    ----------
    cell
        What to run.
    scenario
        The loaded :class:`~idnbandit.scenario.Scenario` named ``cell.scenario``.
    fingerprint
        The scenario's fingerprint (keys the per-process trace cache).
    curve_points
        Points of the regret curves.
    progress
        Called with the number of requests done after each chunk.
    """
    from ..agents.registry import make_agent
    from ..sim import simulate
    from ..sim.multihop import multihop_dims

    agent = make_agent(cell.spec, *multihop_dims(scenario, cell.scope), seed=cell.agent_seed)
    trace = _trace_of(scenario, (cell.scenario, fingerprint))
    result = simulate(scenario, agent, cell.steps, seed=cell.seed, trace=trace, progress=progress,
                      curve_points=curve_points, **({} if cell.scope is None else {"scope": cell.scope}))
    return make_record(cell, result)


# ---------------------------------------------------------------------------------------- backends
Event = tuple[Cell, "dict | None", "BaseException | None"]


def _inline(plan: BenchPlan, todo: Sequence[Cell], progress: BenchProgress) -> Iterator[Event]:
    for cell in todo:
        entry = plan.scenario(cell.scenario)
        try:
            rec = run_cell(cell, entry.scenario, entry.fingerprint, plan.curve_points,
                           progress=lambda n, cid=cell.cell_id: progress.requests(cid, n))
        except Exception as exc:  # a failing cell must not stop the others
            yield cell, None, exc
        else:
            yield cell, rec, None


def _init_worker(queue) -> None:
    global _QUEUE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    _QUEUE = queue


def _worker_run(cell: Cell, scenario, fingerprint: str, curve_points: int) -> dict:
    q = _QUEUE

    def report(n: int) -> None:
        if q is not None:
            try:
                q.put_nowait((cell.cell_id, n))
            except Exception:  # progress is best effort
                pass

    return run_cell(cell, scenario, fingerprint, curve_points, progress=report)


def _drain(queue, progress: BenchProgress) -> None:
    while True:
        try:
            cid, n = queue.get_nowait()
        except Exception:
            return
        progress.requests(cid, n)


def _processes(plan: BenchPlan, todo: Sequence[Cell], progress: BenchProgress, jobs: int) -> Iterator[Event]:
    ctx = mp.get_context("spawn")  # no fork of a process with live threads (progress bar, numba)
    queue = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(queue,))
    try:
        futures = {}
        for cell in todo:
            e = plan.scenario(cell.scenario)
            futures[pool.submit(_worker_run, cell, e.scenario, e.fingerprint, plan.curve_points)] = cell
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, progress)
            for fut in sorted(done, key=lambda f: todo.index(futures[f])):
                exc = fut.exception()
                yield futures[fut], (None if exc else fut.result()), exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for p in procs:  # a no-op for workers that already exited
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        queue.close()
        queue.cancel_join_thread()


def _ray_run(cell: Cell, scenario, fingerprint: str, curve_points: int) -> dict:
    return run_cell(cell, scenario, fingerprint, curve_points)


def _ray(plan: BenchPlan, todo: Sequence[Cell], progress: BenchProgress, address: str | None) -> Iterator[Event]:
    ray = require("ray", "ray")
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_run)
        scen = {e.name: ray.put(e.scenario) for e in plan.scenarios}
        refs = {remote.remote(c, scen[c.scenario], plan.scenario(c.scenario).fingerprint, plan.curve_points): c
                for c in todo}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in ready:
                    try:
                        rec = ray.get(ref)
                    except Exception as exc:
                        yield refs[ref], None, getattr(exc, "cause", None) or exc
                    else:
                        yield refs[ref], rec, None
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------------------- driver
@dataclass
class BenchOutcome:
    """What :func:`run_bench` did."""

    plan: BenchPlan
    store: ResultStore
    records: dict[str, dict]  # finished cells (resumed + new) by cell id
    summary: dict
    resumed: int  # cells found finished on disk at the start
    ran: int  # cells finished by this call
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    interrupted: bool = False
    wall_time_s: float = 0.0


def _on_sigterm(signum, frame):  # pragma: no cover - exercised by the subprocess tests
    raise KeyboardInterrupt


def run_bench(plan: BenchPlan, out: str | os.PathLike, *, backend: str = "process", jobs: int | None = None,
              address: str | None = None, quiet: bool = False, console=None) -> BenchOutcome:
    """Run every unfinished cell of ``plan``, writing results into ``out`` as they finish.

    Parameters
    ----------
    plan
        A validated plan (:func:`~idnbandit.bench.plan.make_plan`).
    out
        Results folder (created; an earlier run of the same plan there is resumed).
    backend
        ``"process"`` (local processes; in-process when ``jobs == 1``) or ``"ray"``.
    jobs
        Worker processes for the process backend (default: all cores).
    address
        Ray cluster address (``ray.init(address=...)``); None starts or joins a local instance.
    quiet
        No progress output.
    console
        A ``rich.console.Console`` for progress (default: stderr).

    Raises
    ------
    ConfigError
        A bad backend or jobs, or an ``out`` folder that cannot hold this plan.
    DependencyNotInstalled
        ``backend="ray"`` without ray installed.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: {backend!r} is not allowed; choose one of {', '.join(BACKENDS)}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs: {jobs!r} is not allowed; it must be an integer >= 1")
    if backend == "ray":
        require("ray", "ray")
    store = ResultStore(out)
    store.check(plan)
    records = store.open(plan)
    resumed = len(records)
    todo = [c for c in plan.cells if c.cell_id not in records]
    store.write_csv(plan, records)
    outcome = BenchOutcome(plan, store, records, {}, resumed, 0)
    t0 = time.perf_counter()
    old_term = signal.getsignal(signal.SIGTERM)
    main_thread = _is_main_thread()
    if main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    progress = BenchProgress(plan, todo, resumed, quiet=quiet, console=console)
    events = None
    try:
        with progress:
            if backend == "ray":
                events = _ray(plan, todo, progress, address)
            elif jobs == 1 or len(todo) <= 1:
                events = _inline(plan, todo, progress)
            else:
                events = _processes(plan, todo, progress, min(jobs, len(todo)))
            for cell, rec, exc in events:
                if exc is not None:
                    outcome.failed.append((cell, f"{type(exc).__name__}: {exc}"))
                    progress.failed(cell, exc)
                    continue
                store.write_cell(rec)
                records[cell.cell_id] = rec
                outcome.ran += 1
                store.write_csv(plan, records)
                progress.finished(cell, rec)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        if events is not None:
            events.close()
        if main_thread:
            signal.signal(signal.SIGTERM, old_term)
    outcome.summary = summarize(plan, records)
    store.write_csv(plan, records)
    store.write_summary(outcome.summary)
    outcome.wall_time_s = time.perf_counter() - t0
    return outcome


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
