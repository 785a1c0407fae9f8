"""Atomic file writes: the one helper every writer of idnbandit uses.

A file is written to a temporary file in the same folder, flushed to disk (``fsync``) and renamed
over the final name (``os.replace``), so a reader, or a crash at any moment, only ever sees the old
file or the whole new one. The temporary file is created like :func:`open` creates a file (mode
``0o666`` minus the process umask, default ACLs of the folder apply); when the final file already
exists, its permission bits are kept, as ``open(path, "w")`` would keep them.

Temporary names are ``.<name>.<host>-<pid>.<random>.tmp``: :func:`stale_temp_files` tells the
leftovers of a killed writer (a process of this host that no longer runs) from the files another
live process is writing, so that cleaning a shared folder never deletes someone else's work.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = atomic_write_text(p, "hello\\n")
>>> p.read_text()
'hello\\n'
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_text", "atomic_write_bytes", "stale_temp_files", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"
_HOST = (socket.gethostname() or "localhost").split(".")[0].replace("-", "_")[:32] or "localhost"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _create_temp(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = _temp_name(path)
        try:
            return os.open(tmp, flags, 0o666), tmp  # the kernel applies the umask, as for open()
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    raise FileExistsError(f"{path}: cannot create a temporary file next to it")  # pragma: no cover


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path``.

    Parameters
    ----------
    path
        The final file. Its folder must exist.
    mode
        ``"wb"`` (binary) or ``"w"`` (text).
    encoding, newline
        Of a text file (default UTF-8).

    If the ``with`` body raises, the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: {mode!r} is not allowed; it must be 'w' or 'wb'")
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        try:
            keep = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            keep = None
        if keep is not None:
            os.chmod(tmp, keep)
        if mode == "wb":
            fh = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        fd = -1  # owned by fh now
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (newlines written as given); returns ``path``."""
    with atomic_open(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
    return Path(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:  # pragma: no cover
        return True
    return True


def stale_temp_files(folder: str | os.PathLike) -> Iterable[Path]:
    """Temporary files in ``folder`` left by killed writers of this host (safe to delete).

    A temporary file of a process that still runs, or of another host (whose processes this one
    cannot see), is never listed; nor is one of this process.
    """
    for p in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        parts = p.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or "-" not in parts[1]:
            continue  # not ours: leave it
        host, _, pid = parts[1].rpartition("-")
        if host != _HOST or not pid.isdigit():
            continue
        if not _alive(int(pid)):
            yield p
