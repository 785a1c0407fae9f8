"""Numba's on-disk cache for idnbandit's own kernels, invalidated by every source file they may embed.

numba stamps a cached function with its *own* source file only (numba documents the limitation: a
change in a function it calls does not invalidate it). Our compiled functions embed code from
other modules: the fused drivers of ``sim/loop.py`` link the event core of ``sim/core.py`` and
inline helpers of ``sim/state.py``, ``sim/stages.py``, ...; the environments' kernels inline the
core too. After an edit of ``core.py`` alone, numba loaded a driver compiled with the old core
(seen in development: a feedback log written past its end, lost records). This module gives every
cached function of the package a stamp made of the source files it can depend on: its own folder,
plus ``sim/`` for the simulator and the environments. Any edit there recompiles them; nothing
stale is ever loaded.

It works through numba's cache locators (``numba.core.caching.CacheImpl._locator_classes``, a
private list): three locators, tried first, take the package's functions with numba's usual
placement (``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the source, else the user's cache
directory) and the package stamp. If numba's internals change, :func:`install` returns False and
numba's own (weaker) invalidation applies.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

__all__ = ["install", "source_stamp"]

PACKAGE = Path(__file__).resolve().parent
# folders (relative to the package) whose sources a kernel of the key folder may embed, besides its own
_DEPENDS = {"envs": ("sim",), "sim": ()}


@cache
def _folder_digest(folder: str, listing: tuple) -> bytes:
    h = hashlib.sha256()
    for name, _, _ in listing:
        h.update(name.encode())
        h.update((Path(folder) / name).read_bytes())
    return h.digest()


def _listing(folder: Path) -> tuple:
    """(name, mtime_ns, size) of the folder's Python files: re-hashed only when one changes."""
    out = []
    for p in sorted(folder.glob("*.py")):
        st = p.stat()
        out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def source_stamp(py_file: str | os.PathLike) -> str:
    """The stamp of a kernel defined in ``py_file`` (a file of the package): a hash of the Python files of
    its folder and of the folders it depends on."""
    folder = Path(py_file).resolve().parent
    rel = folder.relative_to(PACKAGE).parts
    folders = [folder] + [PACKAGE / d for d in _DEPENDS.get(rel[0] if rel else "", ())]
    h = hashlib.sha256()
    for f in folders:
        h.update(_folder_digest(str(f), _listing(f)))
    return "idnbandit:" + h.hexdigest()


def _inside(py_file) -> bool:
    try:
        Path(py_file).resolve().relative_to(PACKAGE)
    except (ValueError, OSError):
        return False
    return True


def install() -> bool:
    """Put the package's locators first in numba's list (once); False if numba's internals differ."""
    try:
        from numba.core import caching

        impl = caching.CacheImpl
        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
        current = impl._locator_classes
    except (ImportError, AttributeError):  # pragma: no cover - numba's internals changed
        return False
    if any(getattr(c, "_idnbandit", False) for c in current):
        return True

    def restricted(base):
        class Locator(base):
            _idnbandit = True

            def get_source_stamp(self):
                return source_stamp(self._py_file)

            @classmethod
            def from_function(cls, py_func, py_file):
                if not _inside(py_file):
                    return None
                return super().from_function(py_func, py_file)

        Locator.__name__ = Locator.__qualname__ = f"Idnbandit{base.__name__}"
        return Locator

    impl._locator_classes = [restricted(b) for b in bases] + list(current)
    return True
