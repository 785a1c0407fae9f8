"""The results folder of a benchmark run, written so that a kill at any moment loses nothing finished.

Layout of ``out/``::

    config.json            the plan's identity (scenarios + fingerprints, agents, seeds, steps, version)
    cells/<cell-id>.json   one file per finished cell (written to a temp file, then os.replace)
    results.csv            one row per finished cell, rebuilt atomically after each completion
    summary.json           per scenario × agent: mean, 95 % CI half-width and n over seeds
    plots/*.png            with --plots

Re-running the same configuration resumes (cells with a file are skipped); a different
configuration in the same folder is refused before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError
from .plan import FORMAT, BenchPlan, Cell

__all__ = ["ResultStore", "atomic_write_text", "to_json"]

CSV_FIELDS = [
    "cell_id", "scenario", "agent", "spec", "seed", "agent_seed", "steps",
    "mean_reward", "accuracy", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "deadline_violation_rate", "timeout_rate", "forward_rate", "mean_cost", "oracle_mean_reward",
    "regret_oracle", "regret_best_fixed", "normalised_score", "anchor_local_reward", "anchor_cloud_reward",
    "wall_time_s", "decisions_per_s",
]


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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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


class ResultStore:
    """The results folder ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike):
        self.root = Path(out)
        self.cells_dir = self.root / "cells"
        self.config_path = self.root / "config.json"
        self.csv_path = self.root / "results.csv"
        self.summary_path = self.root / "summary.json"
        self.plots_dir = self.root / "plots"

    # ------------------------------------------------------------------ checks (no writes)
    def check(self, plan: BenchPlan) -> bool:
        """Check that ``plan`` may write here; True when resuming an earlier run of the same plan.

        Raises
        ------
        ConfigError
            The folder is not a folder, is not writable, holds unrelated files, or holds a run of a
            different configuration.
        """
        root = self.root
        where = f"--out {os.fspath(root)}"
        if root.exists():
            if not root.is_dir():
                raise ConfigError(f"{where}: exists and is not a folder")
            if not os.access(root, os.W_OK | os.X_OK):
                raise ConfigError(f"{where}: the folder is not writable")
            if self.config_path.exists():
                old = self._read_config(where)
                if _comparable(old) != _comparable(plan.identity()):
                    raise ConfigError(
                        f"{where}: holds results of a different configuration ({_difference(old, plan.identity())}); "
                        "re-run the same command to resume it, or choose a new --out folder")
                if self.cells_dir.exists() and not self.cells_dir.is_dir():
                    raise ConfigError(f"{where}: {self.cells_dir} is not a folder")
                return True
            if any(root.iterdir()):
                raise ConfigError(f"{where}: the folder is not empty and holds no bench config.json; "
                                  "choose a new or empty --out folder")
            return False
        parent = root.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"{where}: cannot create it, {os.fspath(parent)} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: cannot create it, {os.fspath(parent)} is not writable")
        return False

    def _read_config(self, where: str) -> dict:
        try:
            old = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: config.json is unreadable ({exc}); choose a new --out folder") from None
        if not isinstance(old, dict) or old.get("format") != FORMAT:
            raise ConfigError(f"{where}: config.json is not an idnbandit bench configuration; choose a new --out")
        return old

    # ------------------------------------------------------------------ writes
    def open(self, plan: BenchPlan) -> dict[str, dict]:
        """Create the folder (and config.json) if needed; return the finished cells' records by id.

        Leftover temp files of a killed run are removed; cell files that do not parse or do not
        belong to ``plan`` are ignored (their cells run again).
        """
        self.check(plan)
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            atomic_write_text(self.config_path, to_json(plan.identity()))
        for tmp in self.cells_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        wanted = {c.cell_id: c for c in plan.cells}
        done: dict[str, dict] = {}
        for path in self.cells_dir.glob("*.json"):
            cid = path.name[: -len(".json")]
            cell = wanted.get(cid)
            if cell is None:
                continue
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if _matches(rec, cell):
                done[cid] = rec
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


def _matches(rec, cell: Cell) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("result"), dict)
            and all(rec.get(k) == getattr(cell, k) for k in ("cell_id", "scenario", "agent", "spec", "seed", "steps")))


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
