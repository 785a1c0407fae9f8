"""Local worker processes of ``idnbandit bench``: a small pool that never outlives its parent.

Each worker is a ``spawn``-ed :class:`multiprocessing.Process` with one pipe to the parent: the
parent sends a cell (with its scenario the first time the worker sees it), the worker answers with
progress counts and finally the cell's record or its error. Only public multiprocessing API is used
(``Process.terminate``/``kill``/``join``, ``connection.wait``), so stopping the pool never reaches into
an executor's private state.

A worker dies with its parent, even after ``kill -9`` of the parent:

* on Linux it asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
* everywhere a watchdog thread exits the worker when its parent pid changes (re-parenting), within
  half a second, and a worker also exits when its pipe to the parent closes.

multiprocessing's resource tracker (started with the first spawned worker) then sees every writer of
its pipe gone and exits as well.

A worker that dies in the middle of a cell fails that cell only (a new worker takes the next
ones). When the workers die before any of them answers, the pool stops with a
:class:`~idnbandit.errors.ConfigError` instead of failing every cell.
"""

from __future__ import annotations

import ast
import inspect
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from ..errors import ConfigError

__all__ = ["CellError", "worker_pool", "check_main_guard", "in_spawn_bootstrap"]

WATCH_INTERVAL_S = 0.5
_PR_SET_PDEATHSIG = 1


class CellError(Exception):
    """The error of a cell run in a worker, as its type name and message.

    Parameters
    ----------
    type_name
        The name of the exception's class in the worker (shown instead of ``CellError``).
    message
        Its message.
    """

    def __init__(self, type_name: str, message: str):
        super().__init__(message)
        self.type_name = type_name

    def __reduce__(self):
        return CellError, (self.type_name, str(self))


# ------------------------------------------------------------------------------------ worker side
def die_with_parent(parent_pid: int) -> None:
    """Make the calling process exit when ``parent_pid`` (its parent) exits, however it exits."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the watchdog remains
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCH_INTERVAL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="idnbandit-parent-watchdog", daemon=True).start()


def _worker_main(conn, parent_pid: int, run: Callable, curve_points: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    scenarios: dict[str, object] = {}

    def send(msg) -> None:
        try:
            conn.send(msg)
        except OSError:  # the parent is gone
            os._exit(1)

    send(("ready", None))  # started: its bootstrap (re-import of the main script) went through

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        cell, fingerprint, scenario = task
        if scenario is not None:
            scenarios[fingerprint] = scenario
        try:
            rec = run(cell, scenarios[fingerprint], fingerprint, curve_points,
                      progress=lambda n: send(("progress", n)))
        except Exception as exc:  # a failing cell must not stop the worker
            send(("error", (type(exc).__name__, " ".join(str(exc).split()))))
        else:
            send(("done", rec))


# ------------------------------------------------------------------------------------ parent side
class _Worker:
    def __init__(self, proc, conn):
        self.proc = proc
        self.conn = conn
        self.cell = None  # the cell it runs, None when idle or retired
        self.seen: set[str] = set()  # fingerprints of the scenarios it holds
        self.answered = False  # it said "ready": it started


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def worker_pool(tasks: Sequence[tuple], jobs: int, run: Callable, curve_points: int,
                on_progress: Callable[[str, int], None]) -> Iterator[tuple]:
    """Run ``run(cell, scenario, fingerprint, curve_points, progress=...)`` for each ``(cell,
    fingerprint, scenario)`` of ``tasks`` in ``jobs`` spawned processes.

    Yields ``(cell, record, None)`` or ``(cell, None, error)`` as cells finish. Closing the generator
    (or an exception such as KeyboardInterrupt inside it) terminates the workers.
    """
    ctx = mp.get_context("spawn")  # no fork of a process with live threads (progress bar, numba)
    queue = deque(tasks)
    order = {id(t[0]): i for i, t in enumerate(tasks)}
    workers: list[_Worker] = []
    start_failures = 0

    def start() -> _Worker:
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_worker_main, args=(child_conn, os.getpid(), run, curve_points),
                           name=f"idnbandit-bench-worker-{len(workers)}", daemon=True)
        proc.start()
        child_conn.close()
        w = _Worker(proc, parent_conn)
        workers.append(w)
        return w

    def assign(w: _Worker) -> None:
        if not queue:
            w.cell = None
            try:
                w.conn.send(None)  # retire
            except OSError:
                pass
            return
        cell, fingerprint, scenario = queue.popleft()
        w.cell = cell
        try:
            w.conn.send((cell, fingerprint, None if fingerprint in w.seen else scenario))
        except OSError:  # it died: noticed by the loop through its sentinel
            return
        w.seen.add(fingerprint)

    try:
        for _ in range(jobs):
            assign(start())
        while any(w.cell is not None for w in workers):
            busy = [w for w in workers if w.cell is not None]
            mp.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.5)
            events = []
            for w in busy:
                try:
                    while w.cell is not None and w.conn.poll():
                        kind, payload = w.conn.recv()
                        w.answered = True
                        if kind == "ready":
                            continue
                        if kind == "progress":
                            on_progress(w.cell.cell_id, payload)
                            continue
                        cell = w.cell
                        events.append((cell, payload, None) if kind == "done"
                                      else (cell, None, CellError(*payload)))
                        assign(w)
                except (EOFError, OSError):
                    pass
                if w.cell is not None and not w.proc.is_alive():
                    w.proc.join()
                    if not w.answered:
                        start_failures += 1
                        if start_failures >= jobs and not any(x.answered for x in workers):
                            raise ConfigError(
                                f"--jobs: the worker processes exit as they start ({_exit_text(w.proc.exitcode)}; "
                                "their error is printed above); if the run is started from a script, call it "
                                "under `if __name__ == \"__main__\":`")
                    events.append((w.cell, None, CellError(
                        "WorkerDied", f"its worker process died ({_exit_text(w.proc.exitcode)})")))
                    w.cell = None
                    w.conn.close()
                    if queue:
                        assign(start())
            yield from sorted(events, key=lambda e: order.get(id(e[0]), 0))
    finally:
        _stop(workers)


def _stop(workers: list[_Worker]) -> None:
    """Retire idle workers, terminate busy ones, and reap them all (kill what does not exit)."""
    for w in workers:
        if w.proc.is_alive() and w.cell is not None:
            w.proc.terminate()
    deadline = time.monotonic() + 5.0
    for w in workers:
        w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(timeout=1.0)
        try:
            w.conn.close()
        except OSError:  # pragma: no cover
            pass


# ------------------------------------------------------------------------------- the __main__ guard
def in_spawn_bootstrap() -> bool:
    """True while this process is a spawned worker re-running the main script's top-level code (which
    multiprocessing runs as ``__mp_main__`` before the worker knows its parent)."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def _guarded(tree: ast.Module, lineno: int) -> bool:
    """Whether line ``lineno`` lies inside an ``if __name__ == "__main__":`` block of ``tree``."""
    body = tree.body
    while body:
        stmt = next((s for s in body if s.lineno <= lineno <= (s.end_lineno or s.lineno)), None)
        if stmt is None:
            return False
        if isinstance(stmt, ast.If) and any(isinstance(n, ast.Name) and n.id == "__name__"
                                            for n in ast.walk(stmt.test)):
            return True
        body = [s for name in ("body", "orelse", "finalbody", "handlers") for s in getattr(stmt, name, [])
                if isinstance(s, ast.stmt | ast.excepthandler)]
    return False


def check_main_guard(what: str) -> None:
    """Refuse to start worker processes from the unguarded top-level code of the main script.

    Spawned workers re-import the main script (as ``__mp_main__``) to find the functions they run;
    its top-level code then runs again in every worker, so a call there (outside ``if __name__ ==
    "__main__":``) would restart the whole run in each worker.

    Raises
    ------
    ConfigError
        Naming the script and line of the unguarded call.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if not path or (spec is not None and spec.name.split(".")[-1] == "__main__"):
        return  # interactive, -c, or a package's __main__: workers do not re-run it
    try:
        main_file = os.path.realpath(path)
    except (OSError, TypeError):  # pragma: no cover
        return
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__" \
                and os.path.realpath(frame.f_code.co_filename) == main_file:
            break
        frame = frame.f_back
    if frame is None:
        return
    lineno = frame.f_lineno
    try:
        with open(main_file, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return
    if not _guarded(tree, lineno):
        raise ConfigError(
            f"{what}: called by the top-level code of {path} (line {lineno}) outside an "
            "`if __name__ == \"__main__\":` block; worker processes re-run that code when they start, so "
            "put the call under the guard (or use jobs=1)")

