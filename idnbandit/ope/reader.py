"""Reading decision logs: Parquet (row group by row group) and CSV (chunk by chunk), every chunk checked.

Memory is bounded by a chunk: Parquet files are read without pre-buffering, CSV with the ``csv``
module. Bad values raise :class:`~idnbandit.errors.LogError` naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import LogError, require
from .log import _CSV_PREFIX, _META_KEY, CHUNK_ROWS, DecisionLog, _concat, _empty, _kind
from .schema import LogMeta, check_chunk, columns, context_columns, sim_columns

__all__ = ["iter_log", "read_log", "log_chunks"]


def iter_log(path, *, chunk_rows: int = CHUNK_ROWS, n_options: int | None = None) -> Iterator[DecisionLog]:
    """Chunks of the log at ``path``, each checked (``LogError`` naming row and column), in order.

    Parameters
    ----------
    path
        A ``.parquet`` or ``.csv`` log.
    chunk_rows
        Rows per chunk (Parquet reads whole batches of at most this size).
    n_options
        Number of options, for a CSV without the metadata line (required then; must match otherwise).
    """
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such log file")
    kind = _kind(path)
    reader = _iter_parquet if kind == "parquet" else _iter_csv
    yield from reader(path, chunk_rows, n_options)


def log_chunks(log, chunk_rows: int = CHUNK_ROWS, n_options: int | None = None) -> Iterator[DecisionLog]:
    """Chunks of ``log``: slices of an in-memory :class:`DecisionLog`, or :func:`iter_log` of a path."""
    if isinstance(log, DecisionLog):
        for s in range(0, max(log.n_rows, 1), chunk_rows):
            yield DecisionLog(log.meta, *(None if a is None else a[s: s + chunk_rows] for a in log[1:]))
    else:
        yield from iter_log(Path(log), chunk_rows=chunk_rows, n_options=n_options)


def read_log(path, *, n_options: int | None = None) -> DecisionLog:
    """The whole log at ``path`` in memory (use :func:`iter_log` for logs larger than memory)."""
    chunks = list(iter_log(path, n_options=n_options))
    return _concat(chunks, chunks[0].meta) if len(chunks) > 1 else chunks[0]


def _meta_for(meta: LogMeta | None, names: list[str], n_options: int | None, source: str) -> LogMeta:
    if meta is None:
        d = sum(1 for c in names if c.startswith("x_"))
        if n_options is None:
            raise LogError(f"{source}: no idnbandit metadata line; pass n_options (the number of options)")
        simulated = any(c.startswith("sim_reward_") for c in names)
        meta = LogMeta(n_options=n_options, n_features=max(d, 0) or _no_context(source), simulated=simulated)
    elif n_options is not None and n_options != meta.n_options:
        raise LogError(f"{source}: n_options={n_options} given, but the log's metadata says {meta.n_options}")
    want = columns(meta)
    missing = [c for c in want if c not in names]
    if missing:
        raise LogError(f"{source}: missing column(s) {', '.join(missing[:5])}"
                       f"{' ...' if len(missing) > 5 else ''}; a log needs {', '.join(want[:3])}, x_0..., "
                       "action, propensity, observed, reward (docs/ope.md)")
    return meta


def _no_context(source: str) -> int:
    raise LogError(f"{source}: no context columns x_0, x_1, ...; a log needs at least one")


def _from_columns(meta: LogMeta, get, source: str) -> DecisionLog:
    """A DecisionLog from a column getter ``get(name, dtype) -> ndarray``."""
    x = np.column_stack([get(c, np.float64) for c in context_columns(meta.n_features)])
    sim = (np.column_stack([get(c, np.float64) for c in sim_columns(meta.n_options)])
           if meta.simulated else None)
    return DecisionLog(meta, get("request", np.int64), get("time_s", np.float64), get("origin", np.int64), x,
                       get("action", np.int64), get("propensity", np.float64), get("observed", bool),
                       get("reward", np.float64), sim)


def _iter_parquet(path: Path, chunk_rows: int, n_options: int | None) -> Iterator[DecisionLog]:
    require("pyarrow", "ope")
    pq = require("pyarrow.parquet", "ope")
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering reads ahead: memory would grow with the log
        schema = pf.schema_arrow
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError on a corrupt file
        raise LogError(f"{path}: not a readable Parquet file ({str(exc)[:100]})") from None
    raw = (schema.metadata or {}).get(_META_KEY)
    meta = LogMeta.from_json(raw.decode("utf-8", "replace"), str(path)) if raw is not None else None
    meta = _meta_for(meta, list(schema.names), n_options, str(path))
    first = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns(meta)):
            def get(name, dtype, batch=batch, first=first):
                col = batch.column(name)
                if col.null_count and name != "reward":
                    i = int(np.flatnonzero(np.asarray(col.is_null()))[0])
                    raise LogError(f"{path}: row {first + i}, column {name}: empty")
                return _cast(np.asarray(col.to_numpy(zero_copy_only=False)), name, dtype, first, str(path))
            chunk = _from_columns(meta, get, str(path))
            check_chunk(chunk, meta, first, str(path))
            first += chunk.n_rows
            yield chunk
    except LogError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt page inside the file
        raise LogError(f"{path}: unreadable Parquet data after row {first} ({str(exc)[:100]})") from None
    if first == 0:
        yield _empty(meta)


def _cast(a: np.ndarray, name: str, dtype, first: int, source: str) -> np.ndarray:
    """``a`` as ``dtype``; integers must be whole numbers, booleans 0/1/true/false."""
    if dtype is bool:
        if a.dtype == bool:
            return a
        f = np.array([float(v) if _is_number(v) else np.nan for v in a], dtype=np.float64)
        bad = ~np.isin(f, (0.0, 1.0))
        if bad.any():
            i = _first(bad)
            raise LogError(f"{source}: row {first + i}, column {name}: {a[i]!r} is not a boolean (0/1/true/false)")
        return f.astype(bool)
    try:
        f = a.astype(np.float64)
    except (TypeError, ValueError):
        i = next(i for i, v in enumerate(a) if not _is_number(v))
        raise LogError(f"{source}: row {first + i}, column {name}: {a[i]!r} is not a number") from None
    if dtype is np.int64:
        bad = ~np.isfinite(f) | (f != np.round(f)) | (np.abs(f) > 2.0**53)
        if bad.any():
            i = _first(bad)
            raise LogError(f"{source}: row {first + i}, column {name}: {a[i]!r} is not a whole number")
        return f.astype(np.int64) if a.dtype != np.int64 else a.astype(np.int64)
    return f


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


_CSV_BOOL = {"1": 1.0, "0": 0.0, "true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0}


def _iter_csv(path: Path, chunk_rows: int, n_options: int | None) -> Iterator[DecisionLog]:
    try:
        fh = open(path, encoding="utf-8", newline="")
        first_line = fh.readline()
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    with fh:
        meta = None
        if first_line.startswith(_CSV_PREFIX):
            meta = LogMeta.from_json(first_line[len(_CSV_PREFIX):], str(path))
            header_line = fh.readline()
        elif first_line.startswith("#"):
            raise LogError(f"{path}: line 1 is a comment but not an idnbandit metadata line "
                           f"('{_CSV_PREFIX}{{...}}')")
        else:
            header_line = first_line
        names = next(csv.reader(io.StringIO(header_line)), [])
        names = [n.strip() for n in names]
        meta = _meta_for(meta, names, n_options, str(path))
        index = {n: i for i, n in enumerate(names)}
        reader = csv.reader(fh)
        first = 0
        try:
            while True:
                rows = []
                for row in reader:
                    if len(row) != len(names):
                        raise LogError(f"{path}: row {first + len(rows)} has {len(row)} fields; "
                                       f"the header has {len(names)}")
                    rows.append(row)
                    if len(rows) == chunk_rows:
                        break
                if not rows:
                    break
                table = np.array(rows, dtype=object)

                def get(name, dtype, table=table, first=first):
                    col = table[:, index[name]]
                    if name == "reward":
                        col = np.where(col == "", "nan", col)
                    elif dtype is bool:
                        col = np.array([_CSV_BOOL.get(v.strip(), v) for v in col], dtype=object)
                    empty = col == ""
                    if empty.any():
                        raise LogError(f"{path}: row {first + _first(empty)}, column {name}: empty")
                    return _cast(col, name, dtype, first, str(path))
                chunk = _from_columns(meta, get, str(path))
                check_chunk(chunk, meta, first, str(path))
                first += chunk.n_rows
                yield chunk
        except UnicodeDecodeError as exc:
            raise LogError(f"{path}: not UTF-8 text after row {first} ({exc.reason})") from None
        except csv.Error as exc:
            raise LogError(f"{path}: malformed CSV after row {first} ({exc})") from None
        if first == 0:
            yield _empty(meta)
