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

The numba versions idnbandit is tested with are bounded in ``pyproject.toml`` and here
(:data:`NUMBA_TESTED`): the simulator compiles with a few numba internals (:data:`INTERNALS`, for
its array views) and the fused loop's cache relies on dispatcher UUIDs (:mod:`idnbandit._kernel_ids`).
``import idnbandit`` never fails on another numba; the first simulation (any
:class:`~idnbandit.sim.loop.Driver`) raises :class:`~idnbandit.errors.IdnBanditError` saying which
versions are supported (:func:`require_tested_numba`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import warnings
from functools import cache
from pathlib import Path

from .errors import IdnBanditError

__all__ = ["folder_stamp", "install", "keep_rebuilt_dispatchers", "numba_problem", "require_tested_numba",
           "source_stamp"]

PACKAGE = Path(__file__).resolve().parent

# numba minor versions this release supports, inclusive: the upper one is the newest CI tests (CI installs
# the newest numba pyproject.toml allows: keep both in step), the lower one the declared minimum
NUMBA_TESTED = ((0, 59), (0, 68))
NUMBA_RANGE = ">=0.59,<0.69"
ALLOW_UNTESTED = "IDNBANDIT_ALLOW_UNTESTED_NUMBA"  # =1: run on an untested numba anyway (with a warning)
# numba internals the simulator cannot work without (sim/packed.py's array views)
INTERNALS = (("numba.np.arrayobj", "make_array"), ("numba.np.arrayobj", "populate_array"),
             ("numba.core.imputils", "impl_ret_borrowed"))
# dispatchers numba keeps alive after rebuilding them from a cache index (numba's default: 128); see
# keep_rebuilt_dispatchers
KEEP_REBUILT = 1 << 16
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


def folder_stamp(folder: str | os.PathLike) -> str:
    """A hash of the Python files of ``folder`` (any folder), re-read only when one of them changes."""
    f = Path(folder)
    return _folder_digest(str(f), _listing(f)).hex()


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


def keep_rebuilt_dispatchers() -> None:
    """Let numba keep up to :data:`KEEP_REBUILT` rebuilt dispatchers alive (``NUMBA_FUNCTION_CACHE_SIZE``).

    Loading a cache index rebuilds the dispatchers named in its keys (the fused loop's index names the
    agent kernels of every entry, three per entry), and numba keeps rebuilt dispatchers alive only in a
    deque of its last ``NUMBA_FUNCTION_CACHE_SIZE`` (default 128). An index with more than that holds a
    key whose dispatcher has died, and saving it fails with ``ReferenceError: underlying object has
    vanished``. numba's public setting is an environment variable read when numba is imported: we set
    it (unless the user did) when numba is not imported yet. When it already is, with a smaller size,
    the deque is enlarged in place (a private numba detail; skipped silently if it changes).
    """
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_FUNCTION_CACHE_SIZE", str(KEEP_REBUILT))
        return
    try:
        import collections

        from numba.core.dispatcher import _MemoMixin

        recent = _MemoMixin._recent
        if recent.maxlen is not None and recent.maxlen < KEEP_REBUILT:
            _MemoMixin._recent = collections.deque(recent, maxlen=KEEP_REBUILT)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - numba's internals changed
        pass


def _minor(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or "x")
    except (IndexError, ValueError):
        return None


def numba_problem() -> tuple[str, bool] | None:
    """Why the installed numba is not one idnbandit supports, or None: ``(message, fatal)``; ``fatal``
    when an internal the simulator needs is missing (nothing can run), else an untested version."""
    import numba

    for mod, name in INTERNALS:
        try:
            ok = hasattr(importlib.import_module(mod), name)
        except ImportError:
            ok = False
        if not ok:
            return (f"numba: {numba.__version__} is not allowed; it must be {NUMBA_RANGE} (it has no {mod}.{name}, "
                    f"which the simulator uses): pip install 'numba{NUMBA_RANGE}'", True)
    v = _minor(numba.__version__)
    if v is None or not NUMBA_TESTED[0] <= v <= NUMBA_TESTED[1]:
        return (f"numba: {numba.__version__} is not allowed; it must be {NUMBA_RANGE} (the versions idnbandit is "
                f"tested with): pip install 'numba{NUMBA_RANGE}', or set {ALLOW_UNTESTED}=1 to try it anyway", False)
    return None


_numba_checked = False


def require_tested_numba() -> None:
    """Raise :class:`IdnBanditError` if the installed numba is outside :data:`NUMBA_TESTED` or lacks one of
    the :data:`INTERNALS` (checked once per process; with ``IDNBANDIT_ALLOW_UNTESTED_NUMBA=1`` an untested
    version only warns)."""
    global _numba_checked
    if _numba_checked:
        return
    problem = numba_problem()
    if problem is not None:
        msg, fatal = problem
        if fatal or os.environ.get(ALLOW_UNTESTED, "") not in ("1", "true", "yes"):
            raise IdnBanditError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    _numba_checked = True
