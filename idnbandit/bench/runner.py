"""Run the cells of a :class:`~idnbandit.bench.plan.BenchPlan`: in-process, local processes or Ray.

Every backend yields ``(cell, record, error)`` as cells finish; :func:`run_bench` writes each record
atomically, rebuilds ``results.csv`` and finally ``summary.json``. A cell's numbers depend only on
the cell (scenario, agent spec, seed → derived agent seed, steps), never on the backend, the number
of workers or the order of completion.

One process at a time runs in a results folder (:class:`~idnbandit.bench.lock.FolderLock`).
Ctrl-C (or SIGTERM) stops the run: workers are terminated, finished cells stay on disk, and the
summary of what finished is written; re-running the same command resumes. Ctrl-C works even when
the process started with SIGINT ignored (a background job of a script). Worker processes die with
their parent, even when it is killed with ``kill -9`` (:mod:`._workers`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError, FeedbackMismatchWarning, require
from ._workers import CellError, check_main_guard, in_spawn_bootstrap, worker_pool
from .plan import BenchPlan, Cell
from .progress import BenchProgress, describe_error
from .store import MalformedCellWarning, ResultStore
from .summary import make_record, summarize

__all__ = ["run_cell", "run_bench", "BenchOutcome", "BACKENDS", "CellError", "RAY_CONNECT_TIMEOUT_S"]

BACKENDS = ("process", "ray")
RAY_CONNECT_TIMEOUT_S = 10.0  # TCP check of --address before ray.init

_TRACES: dict[tuple[str, str], object] = {}  # per-process cache: (scenario name, fingerprint) -> Trace


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
    with warnings.catch_warnings():  # make_plan warned once for the whole run, not once per cell
        warnings.simplefilter("ignore", FeedbackMismatchWarning)
        extra = {} if cell.scope is None else {"scope": cell.scope}
        if cell.log is not None:  # bench --log; a cell recomputed after a crash replaces its own log
            os.makedirs(os.path.dirname(cell.log), exist_ok=True)
            extra.update(log=cell.log, overwrite_log=True)
        result = simulate(scenario, agent, cell.steps, seed=cell.seed, trace=trace, progress=progress,
                          curve_points=curve_points, **extra)
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


def _processes(plan: BenchPlan, todo: Sequence[Cell], progress: BenchProgress, jobs: int) -> Iterator[Event]:
    tasks = [(c, plan.scenario(c.scenario).fingerprint, plan.scenario(c.scenario).scenario) for c in todo]
    yield from worker_pool(tasks, jobs, run_cell, plan.curve_points, progress.requests)


def _ray_run(cell: Cell, scenario, fingerprint: str, curve_points: int) -> dict:
    return run_cell(cell, scenario, fingerprint, curve_points)


def _probe_address(address: str, timeout: float) -> None:
    """Fail fast (ConfigError) when ``address`` names no reachable host:port (``ray.init`` would retry
    for minutes, printing warnings)."""
    a, default_port = address, 6379
    if a.startswith("ray://"):
        a, default_port = a[len("ray://"):], 10001
    elif "://" in a:
        return  # another scheme: ray.init knows it
    host, sep, port = a.rpartition(":")
    if not sep or "]" in port:
        host, port = a, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address: {address!r} is not allowed; it must be host:port of a Ray head node, "
                          "ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(f"--address: {address} is not reachable ({why}, {timeout:g} s timeout); "
                          "start the Ray cluster or give the address of its head node") from None


def connect_ray(address: str | None, timeout: float = RAY_CONNECT_TIMEOUT_S):
    """Join (or start, without ``address``) Ray before anything is written; returns ``(ray, started)``.

    Raises
    ------
    ConfigError
        The address is malformed or unreachable, or ``ray.init`` fails (e.g. the cluster's
        authentication mode differs): one line, no Ray traceback.
    DependencyNotInstalled
        Without ray.
    """
    ray = require("ray", "ray")
    if ray.is_initialized():
        return ray, False
    joining = address not in (None, "local")
    if joining and address != "auto":
        _probe_address(address, timeout)
    # joining: Ray's own connect loop retries once a second, 20 times by default, and its C++ core prints
    # a warning per attempt: bound the loop and hold the warnings back (not when starting a local Ray,
    # whose daemons would inherit the held-back stderr)
    budget = {"RAY_gcs_server_port_wait_time_s": str(max(1, round(timeout)))} if joining else {}
    try:
        with _environ(budget), (_quiet_stderr() if joining else contextlib.nullcontext([])) as said:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - any Ray failure becomes one line
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        what = f"--address {address}: Ray could not connect" if address else "--backend ray: Ray could not start"
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001 - best effort after a failed init
            pass
        raise ConfigError(f"{what} ({type(exc).__name__}: {first[:300]})") from None
    if any(said):
        sys.stderr.write("".join(said))
    return ray, True


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are not set yet, for the ``with`` body."""
    added = [k for k in values if k not in os.environ]
    for k in added:
        os.environ[k] = values[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Hold back what is written to file descriptor 2 during the ``with`` body (Ray's C++ core prints a
    warning per connection attempt); the yielded list receives it afterwards, for the caller to
    print on success or drop on failure."""
    said: list[str] = []
    fd = 2  # where Ray's C++ core writes, whatever sys.stderr is
    try:
        os.fstat(fd)
    except OSError:  # no file descriptor 2: nothing to hold back
        yield said
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            said.append(tmp.read().decode("utf-8", "replace"))


def _ray(plan: BenchPlan, todo: Sequence[Cell], progress: BenchProgress, ray) -> Iterator[Event]:
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


def _check_jobs(jobs) -> int:
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs: {jobs!r} is not allowed; it must be an integer >= 1")
    return jobs


def run_bench(plan: BenchPlan, out: str | os.PathLike, *, backend: str = "process", jobs: int | None = None,
              address: str | None = None, quiet: bool = False, console=None) -> BenchOutcome:
    """Run every unfinished cell of ``plan``, writing results into ``out`` as they finish.

    Parameters
    ----------
    plan
        A validated plan (:func:`~idnbandit.bench.plan.make_plan`).
    out
        Results folder (created; an earlier run of the same plan there is resumed). It is locked for
        the length of the call: a second run on the same folder is refused.
    backend
        ``"process"`` (local processes; in-process when ``jobs == 1``) or ``"ray"``.
    jobs
        Worker processes for the process backend (default: all cores).
    address
        Ray cluster address (``ray.init(address=...)``); None starts or joins a local instance.
        Ray is joined before anything is written.
    quiet
        No progress output.
    console
        A ``rich.console.Console`` for progress (default: stderr).

    Raises
    ------
    ConfigError
        A bad backend or jobs; an ``out`` folder that cannot hold this plan or that another run
        holds (the message names its pid, host and start time); an unreachable Ray cluster; a
        call from the top-level code of a script without an ``if __name__ == "__main__":`` guard
        (worker processes re-run that code when they start).
    DependencyNotInstalled
        ``backend="ray"`` without ray installed.

    Warns
    -----
    MalformedCellWarning
        For each malformed cell file of a resumed folder (its cell runs again).
    """
    if in_spawn_bootstrap():
        raise ConfigError("run_bench: called while a worker process starts, by the main script's top-level code "
                          "that the worker re-runs; call run_bench under `if __name__ == \"__main__\":`")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: {backend!r} is not allowed; choose one of {', '.join(BACKENDS)}")
    jobs = _check_jobs(jobs)
    store = ResultStore(out)
    store.check(plan)
    if backend == "process" and jobs > 1 and len(plan.cells) > 1:
        check_main_guard("run_bench")
    ray, started = connect_ray(address) if backend == "ray" else (None, False)
    try:
        with store.lock():
            return _run_locked(plan, store, backend, jobs, ray, quiet, console)
    finally:
        if started:
            ray.shutdown()


def _run_locked(plan, store, backend, jobs, ray, quiet, console) -> BenchOutcome:
    records = store.open(plan)
    for msg in store.problems:
        warnings.warn(msg, MalformedCellWarning, stacklevel=3)
    resumed = len(records)
    todo = [c for c in plan.cells if c.cell_id not in records]
    store.write_csv(plan, records)
    outcome = BenchOutcome(plan, store, records, {}, resumed, 0)
    t0 = time.perf_counter()
    main_thread = _is_main_thread()
    if main_thread:
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        old_int = signal.getsignal(signal.SIGINT)
        if not callable(old_int):  # SIG_IGN inherited (a background job of a script) or SIG_DFL: Ctrl-C must stop
            signal.signal(signal.SIGINT, signal.default_int_handler)
    progress = BenchProgress(plan, todo, resumed, quiet=quiet, console=console)
    events = None
    try:
        with progress:
            if backend == "ray":
                events = _ray(plan, todo, progress, ray)
            elif jobs == 1 or len(todo) <= 1:
                events = _inline(plan, todo, progress)
            else:
                events = _processes(plan, todo, progress, min(jobs, len(todo)))
            for cell, rec, exc in events:
                if exc is not None:
                    outcome.failed.append((cell, describe_error(exc)))
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
            signal.signal(signal.SIGTERM, signal.SIG_DFL if old_term is None else old_term)
            signal.signal(signal.SIGINT, signal.SIG_DFL if old_int is None else old_int)
    outcome.summary = summarize(plan, records)
    store.write_csv(plan, records)
    store.write_summary(outcome.summary)
    outcome.wall_time_s = time.perf_counter() - t0
    return outcome


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
