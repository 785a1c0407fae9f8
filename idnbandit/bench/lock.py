"""The lock of an output folder: one process at a time runs in a results folder.

``<folder>/.idnbandit.lock`` is held (``fcntl.flock``) by the process running in the folder and names
it (pid, host, start time, command), so that a second process is refused with those details.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from pathlib import Path

from ..errors import ConfigError

__all__ = ["FolderLock", "LOCK_FILE"]

LOCK_FILE = ".idnbandit.lock"


def _holder(fd: int) -> str:
    for _ in range(20):  # the holder writes its details just after taking the lock
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            return f"pid {int(info['pid'])} on host {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.01)
    return "its details are unknown"


class FolderLock:
    """An exclusive lock on an output folder, held by one process for the length of a run.

    ``fcntl.flock`` on ``<folder>/.idnbandit.lock`` (created if needed, never deleted; the
    lock vanishes with its process, even after ``kill -9``). The file records the holder's pid,
    host and start time, which a refused second process prints. Without ``fcntl`` (Windows) the
    lock does nothing.

    Raises
    ------
    ConfigError
        On :meth:`acquire`, when another process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, where: str | None = None, command: str = "idnbandit bench"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.where = where or f"--out {os.fspath(folder)}"
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise ConfigError(f"{self.where}: cannot create the lock file ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(f"{self.where}: the folder is in use by another {self.command} ({holder}); "
                              "wait for it to finish, or choose another --out folder") from None
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started,
                           "command": self.command}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:  # pragma: no cover
            pass
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
