"""Decision logs: a streaming writer and a chunked reader, for Apache Parquet and CSV.

Parquet (needs ``pyarrow``: ``pip install idnbandit[ope]``) is the format for large logs: columnar,
compressed, one row group per chunk. CSV is for logs written by hand or by another system; it has
the same columns (:mod:`.schema`) and an optional first line ``# idnbandit-decision-log {metadata}``.
Both are written to a temporary file in the target folder and renamed on :meth:`LogWriter.close`, so a
crash never leaves half a log under the final name; memory is bounded by one chunk, not the log.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from idnbandit.ope import LogMeta, LogWriter, read_log
>>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
>>> meta = LogMeta(n_options=2, n_features=1)
>>> with LogWriter(path, meta) as w:
...     w.write(request=[0, 1], time_s=[0.0, 0.5], origin=[0, 0], x=[[0.2], [0.9]], action=[1, 0],
...             propensity=[0.5, 0.5], observed=[True, True], reward=[1.0, 0.0])
>>> log = read_log(path)
>>> log.action.tolist(), log.reward.tolist()
([1, 0], [1.0, 0.0])
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._io import atomic_open
from ..errors import LogError, require
from .schema import FORMAT, LogMeta, check_chunk, columns, context_columns, sim_columns

__all__ = ["DecisionLog", "LogWriter", "write_log", "CHUNK_ROWS"]  # reading: .reader

CHUNK_ROWS = 65_536  # rows per Parquet row group / per chunk read
_META_KEY = b"idnbandit"
_CSV_PREFIX = f"# {FORMAT} "


class DecisionLog(NamedTuple):
    """A decision log (or one chunk of it) as arrays; shapes (n,), ``x`` (n, d), ``sim_rewards`` (n, K)."""

    meta: LogMeta
    request: np.ndarray  # int64
    time_s: np.ndarray  # float64
    origin: np.ndarray  # int64
    x: np.ndarray  # float64 (n, d)
    action: np.ndarray  # int64
    propensity: np.ndarray  # float64
    observed: np.ndarray  # bool
    reward: np.ndarray  # float64, NaN where not observed
    sim_rewards: np.ndarray | None  # float64 (n, K), simulation only

    @property
    def n_rows(self) -> int:
        return int(self.action.shape[0])


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise LogError(f"{path}: unknown log format {suffix!r}; use a .parquet or .csv file name")


def _as_chunk(meta: LogMeta, arrays: dict, source: str) -> DecisionLog:
    """Arrays given by a caller as a checked DecisionLog chunk (``LogError`` naming the field)."""
    need = ["request", "time_s", "origin", "x", "action", "propensity", "observed", "reward"]
    missing = [k for k in need if k not in arrays]
    if meta.simulated and "sim_rewards" not in arrays:
        missing.append("sim_rewards")
    if missing:
        raise LogError(f"{source}: write() needs {', '.join(missing)}")
    unknown = set(arrays) - set(need) - {"sim_rewards"}
    if unknown:
        raise LogError(f"{source}: write() got unknown column(s) {sorted(unknown)}")
    try:
        out = {
            "request": np.asarray(arrays["request"], dtype=np.int64).reshape(-1),
            "time_s": np.asarray(arrays["time_s"], dtype=np.float64).reshape(-1),
            "origin": np.asarray(arrays["origin"], dtype=np.int64).reshape(-1),
            "x": np.asarray(arrays["x"], dtype=np.float64),
            "action": np.asarray(arrays["action"], dtype=np.int64).reshape(-1),
            "propensity": np.asarray(arrays["propensity"], dtype=np.float64).reshape(-1),
            "observed": np.asarray(arrays["observed"], dtype=bool).reshape(-1),
            "reward": np.asarray(arrays["reward"], dtype=np.float64).reshape(-1),
        }
        sim = np.asarray(arrays["sim_rewards"], dtype=np.float64) if meta.simulated else None
    except (TypeError, ValueError, OverflowError) as exc:
        raise LogError(f"{source}: write() got a column that is not numeric ({exc})") from None
    n = out["action"].shape[0]
    if out["x"].ndim == 1 and meta.n_features == 1:
        out["x"] = out["x"].reshape(-1, 1)
    if out["x"].shape != (n, meta.n_features):
        raise LogError(f"{source}: x has shape {out['x'].shape}; expected ({n}, {meta.n_features})")
    for k, v in out.items():
        if k != "x" and v.shape[0] != n:
            raise LogError(f"{source}: column {k} has {v.shape[0]} rows; action has {n}")
    if sim is not None and sim.shape != (n, meta.n_options):
        raise LogError(f"{source}: sim_rewards has shape {sim.shape}; expected ({n}, {meta.n_options})")
    return DecisionLog(meta=meta, sim_rewards=sim, **out)


class LogWriter:
    """Write a decision log chunk by chunk (constant memory); the file appears complete on close.

    Parameters
    ----------
    path
        Target ``.parquet`` or ``.csv`` file.
    meta
        The log's metadata (:class:`~idnbandit.ope.LogMeta`).
    chunk_rows
        Rows buffered before a chunk is written (a Parquet row group).
    overwrite
        Replace an existing file at ``path`` (default: refuse with ``LogError``).
    background
        Check, encode and write chunks in a thread, so that a producer that releases the GIL (the
        fused simulator) keeps running meanwhile; at most two chunks wait (memory stays bounded). An
        error in the thread is raised by the next :meth:`write` or by :meth:`close`.

    Raises
    ------
    LogError
        ``path`` exists (without ``overwrite``), has an unknown suffix, or a written chunk breaks
        the schema (the message names row and column).
    DependencyNotInstalled
        A ``.parquet`` path without pyarrow.
    """

    def __init__(self, path, meta: LogMeta, *, chunk_rows: int = CHUNK_ROWS, overwrite: bool = False,
                 background: bool = False):
        self.path = Path(path)
        self.meta = meta
        self._kind = _kind(self.path)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
                or not 1 <= chunk_rows <= 10**7:
            raise LogError(f"chunk_rows: {chunk_rows!r} is not allowed; it must be an integer in [1, 10000000]")
        self.chunk_rows = int(chunk_rows)
        if self.path.exists() and not overwrite:
            raise LogError(f"{self.path}: exists; choose another file or pass overwrite=True")
        if not self.path.parent.is_dir():
            raise LogError(f"{self.path}: folder {self.path.parent} does not exist")
        self._pa = require("pyarrow", "ope") if self._kind == "parquet" else None
        self._buf: list[DecisionLog] = []
        self._buffered = 0
        self.rows = 0
        self._files = contextlib.ExitStack()  # the temporary file (idnbandit._io.atomic_open), renamed on close
        self._fh = self._files.enter_context(atomic_open(self.path, "wb" if self._kind == "parquet" else "w",
                                                         newline=""))
        self._sink = None
        self._closed = False
        self._queue: queue.Queue | None = None
        self._error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._background, name="idnbandit-log-writer", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ writing
    def write(self, **arrays) -> None:
        """Append rows: keyword arrays named as the schema's columns (``x`` is (n, d), ``sim_rewards`` (n, K)).

        With ``background=True`` the arrays must not be modified afterwards (they are written later)."""
        if self._closed:
            raise LogError(f"{self.path}: the writer is closed")
        if self._queue is not None:
            self._raise_background_error()
            self._queue.put(arrays)
            return
        self._write_now(arrays)

    def _background(self) -> None:
        while True:
            arrays = self._queue.get()
            if arrays is None:
                return
            if self._error is None:
                try:
                    self._write_now(arrays)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the producer's thread
                    self._error = exc

    def _raise_background_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _stop_background(self) -> None:
        if self._queue is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _write_now(self, arrays: dict) -> None:
        chunk = _as_chunk(self.meta, arrays, str(self.path))
        check_chunk(chunk, self.meta, self.rows + self._buffered, str(self.path))
        self._buf.append(chunk)
        self._buffered += chunk.n_rows
        if self._buffered >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        chunk = _concat(self._buf, self.meta)
        self._buf, self._buffered = [], 0
        if self._kind == "parquet":
            self._write_parquet(chunk)
        else:
            self._write_csv(chunk)
        self.rows += chunk.n_rows

    def _table(self, chunk: DecisionLog):
        pa = self._pa
        cols = {"request": chunk.request, "time_s": chunk.time_s, "origin": chunk.origin}
        xt = np.ascontiguousarray(chunk.x.T)  # one transpose, then contiguous columns
        cols.update({c: xt[j] for j, c in enumerate(context_columns(self.meta.n_features))})
        cols.update(action=chunk.action, propensity=chunk.propensity, observed=chunk.observed, reward=chunk.reward)
        if self.meta.simulated:
            st = np.ascontiguousarray(chunk.sim_rewards.T)
            cols.update({c: st[k] for k, c in enumerate(sim_columns(self.meta.n_options))})
        table = pa.table(cols)
        return table.replace_schema_metadata({_META_KEY: self.meta.to_json().encode()})

    def _write_parquet(self, chunk: DecisionLog) -> None:
        table = self._table(chunk)
        if self._sink is None:
            pq = require("pyarrow.parquet", "ope")
            # no dictionary encoding or column statistics: floats do not repeat, and both cost 7x the write
            self._sink = pq.ParquetWriter(self._fh, table.schema, use_dictionary=False, write_statistics=False)
        self._sink.write_table(table, row_group_size=self.chunk_rows)

    def _write_csv(self, chunk: DecisionLog) -> None:
        if self._sink is None:
            self._sink = self._fh
            self._sink.write(_CSV_PREFIX + self.meta.to_json() + "\n")
            self._sink.write(",".join(columns(self.meta)) + "\n")
        parts = [chunk.request.astype(str), _fmt(chunk.time_s), chunk.origin.astype(str)]
        parts += [_fmt(chunk.x[:, j]) for j in range(self.meta.n_features)]
        parts += [chunk.action.astype(str), _fmt(chunk.propensity), np.where(chunk.observed, "1", "0"),
                  np.where(chunk.observed, _fmt(chunk.reward), "")]
        if self.meta.simulated:
            parts += [_fmt(chunk.sim_rewards[:, k]) for k in range(self.meta.n_options)]
        if not chunk.n_rows:
            return
        rows = parts[0].astype(object)
        for p in parts[1:]:
            rows = rows + "," + p.astype(object)
        self._sink.write("\n".join(rows.tolist()) + "\n")

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Write what is buffered and move the file to its final name (atomically)."""
        if self._closed:
            return
        try:
            self._stop_background()
            self._raise_background_error()
            self._flush()
            if self._sink is None:  # an empty log still has its header / schema
                if self._kind == "csv":
                    self._write_csv(_empty(self.meta))
                else:
                    self._write_parquet(_empty(self.meta))
            if self._kind == "parquet":
                self._sink.close()  # writes the footer; the file object stays open
            self._files.close()  # fsync, then rename over the final name
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Drop the log: nothing appears under ``path``."""
        if self._closed:
            return
        self._closed = True
        if self._error is None:
            self._error = LogError(f"{self.path}: aborted")  # the thread skips what is still queued
        self._stop_background()
        if self._kind == "parquet" and self._sink is not None:
            with contextlib.suppress(Exception):  # the temporary file is removed below anyway
                self._sink.close()
        err = LogError(f"{self.path}: aborted")
        self._files.__exit__(LogError, err, None)  # atomic_open removes the temporary file

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fmt(a: np.ndarray) -> np.ndarray:
    """Shortest round-trip text of each float (``repr``), so a CSV log reads back bit for bit."""
    return np.array([repr(float(v)) for v in a], dtype=object) if a.size else np.zeros(0, dtype=object)


def _empty(meta: LogMeta) -> DecisionLog:
    z = np.zeros(0)
    zi = np.zeros(0, dtype=np.int64)
    return DecisionLog(meta, zi, z, zi, np.zeros((0, meta.n_features)), zi, z, np.zeros(0, bool), z,
                       np.zeros((0, meta.n_options)) if meta.simulated else None)


def _concat(chunks: list[DecisionLog], meta: LogMeta) -> DecisionLog:
    if len(chunks) == 1:
        return chunks[0]
    fields = {}
    for name in DecisionLog._fields[1:]:
        if name == "sim_rewards" and not meta.simulated:
            fields[name] = None
        else:
            fields[name] = np.concatenate([getattr(c, name) for c in chunks])
    return DecisionLog(meta=meta, **fields)


def write_log(path, log: DecisionLog, *, overwrite: bool = False) -> None:
    """Write a whole :class:`DecisionLog` (a convenience over :class:`LogWriter`)."""
    with LogWriter(path, log.meta, overwrite=overwrite) as w:
        w.write(**{k: getattr(log, k) for k in DecisionLog._fields[1:] if k != "sim_rewards" or log.meta.simulated})

