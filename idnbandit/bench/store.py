"""The results folder of a benchmark run, written so that a kill at any moment loses nothing finished.

Layout of ``out/``::

    config.json            the plan's identity (scenarios + fingerprints, agents, seeds, steps, version)
    cells/<cell-id>.json   one file per finished cell (written to a temp file, then os.replace)
    results.csv            one row per finished cell, rebuilt atomically after each completion
    summary.json           per scenario × agent: mean, 95 % CI half-width and n over seeds
    plots/*.png            with --plots
    .idnbandit.lock        held (fcntl) by the one process running in the folder; names it

Re-running the same configuration resumes (cells with a valid file are skipped; a malformed cell
file is reported by a :class:`MalformedCellWarning` and its cell runs again); a different
configuration in the same folder is refused before anything is written. One process at a time
runs in a folder (:class:`~idnbandit.bench.lock.FolderLock`): a second one is refused with the first one's pid, host and
start time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .._io import TEMP_SUFFIX, atomic_write_text, stale_temp_files
from ..errors import ConfigError
from .lock import LOCK_FILE, FolderLock
from .plan import FORMAT, BenchPlan, Cell

__all__ = ["ResultStore", "FolderLock", "MalformedCellWarning", "atomic_write_text", "to_json", "check_out_folder",
           "record_problem", "LOCK_FILE"]

CSV_FIELDS = [
    "cell_id", "scenario", "agent", "spec", "seed", "agent_seed", "steps",
    "mean_reward", "accuracy", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "deadline_violation_rate", "timeout_rate", "forward_rate", "mean_cost", "oracle_mean_reward",
    "regret_oracle", "regret_best_fixed", "normalised_score", "anchor_local_reward", "anchor_cloud_reward",
    "wall_time_s", "decisions_per_s",
]


class MalformedCellWarning(UserWarning):
    """A cell file of a resumed results folder is unreadable or malformed; its cell runs again."""


def _clean(v):
    """JSON-safe copy: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def to_json(obj) -> str:
    """Strict JSON text of ``obj`` (NaN/inf → null), indented."""
    return json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n"


def _comparable(identity: dict) -> dict:
    d = dict(identity)
    d["scenarios"] = [{k: v for k, v in s.items() if k != "source"} for s in d.get("scenarios", [])]
    return d


def _difference(old: dict, new: dict) -> str:
    for key in ("format_version", "idnbandit_version", "scenarios", "agents", "seeds", "steps", "curve_points",
                "scope"):
        if old.get(key) != new.get(key):
            if key == "scenarios":
                a = [s.get("name") for s in old.get(key, [])]
                b = [s.get("name") for s in new.get(key, [])]
                return f"scenarios {a} there, {b} now" if a != b else "a scenario's content changed"
            if key == "agents":
                return f"agents {[x.get('spec') for x in old.get(key, [])]} there, " \
                       f"{[x.get('spec') for x in new.get(key, [])]} now"
            return f"{key} {old.get(key)!r} there, {new.get(key)!r} now"
    return "the configuration differs"


# ---------------------------------------------------------------------------------- folder checks
def _exists(path: Path, where: str) -> bool:
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a file on the way: the parent walk names it
        return False
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be inspected ({exc.strerror or exc})") from None
    return True


def _probe_writable(folder: Path, where: str, creating: bool) -> None:
    """Create and remove a temporary file in ``folder``: the only test of writability that does not
    lie (``os.access`` says yes to root for /sys, read-only mounts, full disks' quotas, ...)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".idnbandit-probe-", suffix=TEMP_SUFFIX)
    except OSError as exc:
        what = f"cannot create it in {os.fspath(folder)}" if creating else "the folder is not writable"
        raise ConfigError(f"{where}: {what} ({exc.strerror or exc}); choose a writable --out folder") from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:  # pragma: no cover
        pass


def _ignorable(p: Path) -> bool:
    """Files a folder may hold and still count as empty: our lock file and temporary files."""
    return p.name == LOCK_FILE or (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))


def check_out_folder(root: Path, where: str, ours: Callable[[Path], bool], what: str) -> bool:
    """Check that output may be written into ``root``, before any work; nothing is left behind.

    ``root`` must be a writable folder (a file created in it for real, then removed), and either
    not exist, be empty (but for lock and temporary files), or hold an earlier output of the same
    command (``ours(root)`` is true). Returns True in that last case.

    Raises
    ------
    ConfigError
        One line naming ``where`` (e.g. ``"--out results"``) and the problem.
    """
    if _exists(root, where):
        if not root.is_dir():
            raise ConfigError(f"{where}: exists and is not a folder; choose a folder")
        _probe_writable(root, where, creating=False)
        if ours(root):
            return True
        try:
            foreign = [p.name for p in root.iterdir() if not _ignorable(p)]
        except OSError as exc:
            raise ConfigError(f"{where}: cannot list the folder ({exc.strerror or exc})") from None
        if foreign:
            shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ConfigError(f"{where}: the folder is not empty ({shown}) and holds no {what}; "
                              "choose a new or empty --out folder")
        return False
    parent = root.parent
    while not _exists(parent, where):
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{where}: cannot create it, {os.fspath(parent)} is not a folder")
    _probe_writable(parent, where, creating=True)
    return False


# ------------------------------------------------------------------------------------ cell records
_SCALARS = ("mean_reward", "accuracy", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
            "deadline_violation_rate", "timeout_rate", "forward_rate", "mean_cost", "oracle_mean_reward",
            "regret_oracle", "regret_best_fixed", "wall_time_s", "decisions_per_s")
_CURVES = ("curve_t", "curve_regret_oracle", "curve_regret_best_fixed")


def _is_num(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _num_list(v) -> bool:
    return isinstance(v, list) and all(map(_is_num, v))


def record_problem(rec, cell: Cell) -> str | None:
    """What is wrong with the cell record ``rec`` read back for ``cell``, or None when it is usable.

    Checks what the summary, the CSV, the report and the plots read: the cell's identity, the
    anchors and score, every scalar metric (a number, or null for NaN), the per-tier rates, the
    curves and the latency histogram.
    """
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    for k in ("cell_id", "scenario", "agent", "spec", "seed", "agent_seed", "steps"):
        want = getattr(cell, k)
        if k not in rec:
            return f"{k} is missing"
        if rec[k] != want or type(rec[k]) is not type(want):
            return f"{k} is {rec[k]!r}, not {want!r}"
    for k in ("anchor_local_reward", "anchor_cloud_reward", "normalised_score"):
        if not _is_num(rec.get(k)) or k not in rec:
            return f"{k} is {rec.get(k, 'missing')!r}, not a number"
    res = rec.get("result")
    if not isinstance(res, dict):
        return f"result is {res!r}, not an object"
    for k in _SCALARS:
        if k not in res:
            return f"result.{k} is missing"
        if not _is_num(res[k]):
            return f"result.{k} is {res[k]!r}, not a number"
    tiers = res.get("forward_rate_by_tier", {})
    if not isinstance(tiers, dict) or not all(_is_num(v) and v is not None for v in tiers.values()):
        return "result.forward_rate_by_tier is not an object of numbers"
    for k in _CURVES:
        if not _num_list(res.get(k)):
            return f"result.{k} is not a list of numbers"
    if len({len(res[k]) for k in _CURVES}) != 1:
        return "the result's curves differ in length"
    hist = res.get("latency_hist")
    if not isinstance(hist, dict) or not all(_num_list(hist.get(k)) for k in ("lower_ms", "upper_ms", "counts")) \
            or len({len(hist[k]) for k in ("lower_ms", "upper_ms", "counts")}) != 1 \
            or any(v is None for k in ("lower_ms", "upper_ms", "counts") for v in hist[k]):
        return "result.latency_hist is not {lower_ms, upper_ms, counts} lists of equal length"
    return None


# ---------------------------------------------------------------------------------------- store
class ResultStore:
    """The results folder ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike):
        self.root = Path(out)
        self.cells_dir = self.root / "cells"
        self.config_path = self.root / "config.json"
        self.csv_path = self.root / "results.csv"
        self.summary_path = self.root / "summary.json"
        self.plots_dir = self.root / "plots"
        self.problems: list[str] = []  # malformed cell files found by the last open()

    @property
    def where(self) -> str:
        return f"--out {os.fspath(self.root)}"

    def lock(self) -> FolderLock:
        """The folder's lock (a context manager; see :class:`FolderLock`)."""
        return FolderLock(self.root, self.where)

    # ------------------------------------------------------------------ checks (no writes)
    def check(self, plan: BenchPlan) -> bool:
        """Check that ``plan`` may write here; True when resuming an earlier run of the same plan.

        Writes nothing (the writability test creates a temporary file and removes it).

        Raises
        ------
        ConfigError
            The path is not a folder, is not writable, holds unrelated files, or holds a run of a
            different configuration.
        """
        where = self.where

        def ours(root: Path) -> bool:
            if not _exists(self.config_path, where):
                return False
            old = self._read_config(where)
            if _comparable(old) != _comparable(plan.identity()):
                raise ConfigError(
                    f"{where}: holds results of a different configuration ({_difference(old, plan.identity())}); "
                    "re-run the same command to resume it, or choose a new --out folder")
            if _exists(self.cells_dir, where) and not self.cells_dir.is_dir():
                raise ConfigError(f"{where}: {self.cells_dir} is not a folder; choose a new --out folder")
            return True

        return check_out_folder(self.root, where, ours, "bench config.json")

    def _read_config(self, where: str) -> dict:
        try:
            old = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{where}: config.json is unreadable ({exc}); choose a new --out folder") from None
        if not isinstance(old, dict) or old.get("format") != FORMAT:
            raise ConfigError(f"{where}: config.json is not an idnbandit bench configuration; choose a new --out")
        return old

    # ------------------------------------------------------------------ writes
    def open(self, plan: BenchPlan) -> dict[str, dict]:
        """Create the folder (and config.json) if needed; return the finished cells' records by id.

        Call it holding :meth:`lock`. Temporary files of killed writers are removed (never those of
        a live process). A cell file that does not parse or is malformed (:func:`record_problem`)
        counts as missing, so its cell runs again; each is described in :attr:`problems`.
        """
        self.check(plan)
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():  # first, so that a folder with cells/ always has its config
            atomic_write_text(self.config_path, to_json(plan.identity()))
        self.cells_dir.mkdir(exist_ok=True)
        for folder in (self.root, self.cells_dir):
            for tmp in stale_temp_files(folder):
                tmp.unlink(missing_ok=True)
        wanted = {c.cell_id: c for c in plan.cells}
        done: dict[str, dict] = {}
        self.problems = []
        for path in sorted(self.cells_dir.glob("*.json")):
            cid = path.name[: -len(".json")]
            cell = wanted.get(cid)
            if cell is None:
                continue
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as exc:
                problem = f"unreadable: {type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
            else:
                problem = record_problem(rec, cell)
            if problem is None:
                done[cid] = rec
            else:
                self.problems.append(f"{self.where}: cells/{path.name} is malformed ({problem}); "
                                     "treating the cell as missing, it runs again")
        return done

    def write_cell(self, record: dict) -> None:
        """Atomically write one finished cell."""
        atomic_write_text(self.cells_dir / f"{record['cell_id']}.json", to_json(record))

    def write_csv(self, plan: BenchPlan, records: dict[str, dict]) -> None:
        """Rebuild results.csv from the finished cells, in plan order."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in csv_rows(plan, records):
            w.writerow(row)
        atomic_write_text(self.csv_path, buf.getvalue())

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_path, to_json(summary))


def csv_rows(plan: BenchPlan, records: dict[str, dict]) -> Iterable[dict]:
    """One flat dict per finished cell, in plan order (scenario, agent, seed)."""
    order = {c.cell_id: i for i, c in enumerate(plan.cells)}
    by_key = sorted(records.values(), key=lambda r: (
        [s.name for s in plan.scenarios].index(r["scenario"]),
        [a.label for a in plan.agents].index(r["agent"]), r["seed"], order[r["cell_id"]]))
    for rec in by_key:
        row = {k: rec.get(k) for k in CSV_FIELDS}
        for k in CSV_FIELDS:
            if row[k] is None and k in rec["result"]:
                row[k] = rec["result"][k]
        yield {k: ("" if v is None else v) for k, v in row.items()}
