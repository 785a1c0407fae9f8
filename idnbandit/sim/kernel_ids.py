"""Stable identities for agent kernels, so the fused loop's on-disk numba cache hits across processes.

The fused loop takes the agent's ``select`` / ``update`` dispatchers as arguments. numba keys its
on-disk cache by the argument types, and a dispatcher's type carries a random per-process UUID, so
without this every new process recompiles the loop for every agent (5-20 s each; numba issue #6264).
We give each kernel a UUID derived from its qualified name *and a hash of the source files of its
package*, so an edited kernel (or a helper it calls in the same package) never reuses a stale
compiled loop. Best effort: on any failure the kernels are simply compiled as before.
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path

__all__ = ["stabilise_kernel_ids"]


@lru_cache(maxsize=64)
def _package_source_hash(folder: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def stabilise_kernel_ids(*dispatchers) -> None:
    """Set a deterministic UUID on each numba dispatcher that has none yet (closures are skipped)."""
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
