"""Helpers of the benchmark tests (a uniquely named module: other test folders have a conftest too)."""

from __future__ import annotations

import json
from pathlib import Path


def strip_timing(summary: dict) -> dict:
    """``summary.json`` without the wall-clock figures (the only ones that vary between runs)."""
    s = json.loads(json.dumps(summary))
    for rows in s["scenarios"].values():
        for row in rows.values():
            row.pop("timing")
    return s


def cell_results(out: Path) -> dict:
    """Cell records by id, minus wall-clock fields."""
    recs = {}
    for p in sorted((out / "cells").glob("*.json")):
        r = json.loads(p.read_text())
        r["result"].pop("wall_time_s")
        r["result"].pop("decisions_per_s")
        recs[p.name] = r
    return recs
