"""Progress of a benchmark run: a Rich bar over cells and requests, or one line per cell in logs.

On a terminal, two bars (cells finished, requests simulated) update as workers report chunks; when
stderr is not a terminal (CI logs, pipes) each finished cell prints one line instead.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

from .plan import BenchPlan, Cell

__all__ = ["BenchProgress", "describe_error", "one_line_warnings"]


@contextlib.contextmanager
def one_line_warnings(*categories: type[Warning]) -> Iterator[None]:
    """Show warnings of ``categories`` as one line ``warning: <message>`` on stderr (not Python's
    two-line format with the source line) for the length of the ``with`` body; others as usual."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, categories):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def describe_error(exc: BaseException) -> str:
    """``"<type>: <message>"`` of a cell's error on one line (the worker's type name for a ``CellError``)."""
    name = getattr(exc, "type_name", None) or type(exc).__name__
    return f"{name}: {' '.join(str(exc).split())}"


class BenchProgress:
    """Context manager fed by the runner: :meth:`requests` per chunk, :meth:`finished` per cell."""

    def __init__(self, plan: BenchPlan, todo: list[Cell], resumed: int, *, quiet: bool = False, console=None):
        self.total_cells = len(plan.cells)
        self.done_cells = resumed
        self.steps = plan.steps
        self.quiet = quiet
        self._seen: dict[str, int] = {}
        self._todo = len(todo)
        self._progress = None
        self._console = console
        if not quiet:
            from rich.console import Console

            self._console = console or Console(stderr=True)

    def __enter__(self) -> BenchProgress:
        if self.quiet:
            return self
        if self._console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), console=self._console,
                                      transient=False)
            self._progress.start()
            self._cells = self._progress.add_task("cells", total=self.total_cells, completed=self.done_cells)
            self._reqs = self._progress.add_task("requests", total=self._todo * self.steps)
        elif self.done_cells:
            self._console.print(f"resuming: {self.done_cells} of {self.total_cells} cells already finished")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def requests(self, cell_id: str, done: int) -> None:
        """A worker reports ``done`` requests of ``cell_id`` simulated so far."""
        prev = self._seen.get(cell_id, 0)
        if done > prev:
            self._seen[cell_id] = done
            if self._progress is not None:
                self._progress.advance(self._reqs, done - prev)

    def finished(self, cell: Cell, record: dict) -> None:
        self.requests(cell.cell_id, cell.steps)
        self.done_cells += 1
        if self._progress is not None:
            self._progress.advance(self._cells, 1)
        elif not self.quiet:
            r = record["result"]
            self._console.print(
                f"[{self.done_cells}/{self.total_cells}] {cell.scenario} {cell.agent} seed {cell.seed}: "
                f"reward {r['mean_reward']:.4f}, {r['decisions_per_s'] / 1e3:.0f} k decisions/s",
                highlight=False, markup=False, soft_wrap=True)

    def failed(self, cell: Cell, exc: BaseException) -> None:
        self.requests(cell.cell_id, cell.steps)
        if not self.quiet:
            self._console.print(f"cell {cell.cell_id} failed: {describe_error(exc)}", highlight=False,
                                markup=False, style="red", soft_wrap=True)
