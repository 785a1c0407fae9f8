"""Stable identities for agent kernels, so the fused loop's on-disk numba cache hits across processes.

The fused loop takes the agent's ``select`` / ``update`` dispatchers as arguments. numba keys its
on-disk cache by the argument types, and a dispatcher's type carries a random per-process UUID, so
without this every new process recompiles the loop for every agent (5-20 s each; numba issue #6264).
We give each kernel a UUID derived from its qualified name *and a hash of the source files of its
package*, so an edited kernel (or a helper it calls in the same package) never reuses a stale
compiled loop. Best effort: on any failure the kernels are simply compiled as before.

A second private detail of numba matters here: loading a cache index rebuilds the dispatchers named
in its keys, and numba keeps rebuilt dispatchers alive only in a deque of its last 128. An index with
more agent kernels than that (many agents, or entries left by edited kernels) then holds a key whose
dispatcher has died, and saving the index fails with ``ReferenceError: underlying object has
vanished``. :func:`_keep_rebuilt_dispatchers` enlarges that deque once.
"""

from __future__ import annotations

import collections
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

__all__ = ["stabilise_kernel_ids"]


_KEEP_REBUILT = 1 << 16


def _keep_rebuilt_dispatchers() -> None:
    """Let numba keep up to ``_KEEP_REBUILT`` rebuilt dispatchers alive (default: 128)."""
    try:
        from numba.core.dispatcher import _MemoMixin

        recent = _MemoMixin._recent
        if recent.maxlen is not None and recent.maxlen < _KEEP_REBUILT:
            _MemoMixin._recent = collections.deque(recent, maxlen=_KEEP_REBUILT)
    except Exception:  # pragma: no cover - numba internals changed
        pass


@lru_cache(maxsize=64)
def _package_source_hash(folder: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def stabilise_kernel_ids(*dispatchers) -> None:
    """Set a deterministic UUID on each numba dispatcher that has none yet (closures are skipped)."""
    _keep_rebuilt_dispatchers()
    for disp in dispatchers:
        try:
            py = getattr(disp, "py_func", None)
            if py is None or py.__closure__ is not None or getattr(disp, "_MemoMixin__uuid", "") is not None:
                continue
            module = sys.modules.get(py.__module__)
            src = getattr(module, "__file__", None)
            if not src:
                continue
            digest = _package_source_hash(str(Path(src).parent))
            disp._set_uuid(f"idnbandit-kernel:{py.__module__}.{py.__qualname__}:{digest}")
        except Exception:  # pragma: no cover - numba internals changed: fall back to recompiling
            continue
