"""Upper bounds on the size of a trace (checked before any array is allocated).

A trace holds ``M × N × C`` float32 probabilities. The bounds keep a mistyped size (``n_samples =
10**12``) or a crafted file from allocating more memory than a laptop has; they are far above the
traces the project uses (the bundled ones are 4 × 2,310 × 7; ImageNet's validation set with five
models and 1,000 classes is 1 GB).
"""

from __future__ import annotations

__all__ = [
    "MAX_TRACE_MODELS",
    "MAX_TRACE_SAMPLES",
    "MAX_TRACE_CLASSES",
    "MAX_TRACE_BYTES",
    "MAX_TRACE_JSON_BYTES",
    "MAX_TRACE_JSON_DEPTH",
    "MAX_NPZ_EXPANSION",
    "check_trace_size",
    "check_folds",
]

MAX_TRACE_MODELS = 1_024  # M: columns of a trace
MAX_TRACE_SAMPLES = 100_000_000  # N
MAX_TRACE_CLASSES = 100_000  # C (ImageNet-21k has 21,841)
MAX_TRACE_BYTES = 2**31  # M * N * C * 4 bytes of float32 probabilities (2 GiB)
MAX_TRACE_JSON_BYTES = 16 * 2**20  # the .json description beside the .npz
MAX_TRACE_JSON_DEPTH = 64  # nesting of objects and arrays in that description
# deflate cannot expand more than ~1032:1; a member that claims more is forged
MAX_NPZ_EXPANSION = 1_100


def check_trace_size(n_models: int, n_samples: int, n_classes: int, *, where: str = "") -> str | None:
    """The reason ``(n_models, n_samples, n_classes)`` exceeds a bound, else None.

    ``where`` prefixes the field names (``"trace.synthetic."``).
    """
    for name, v, hi in (("n_models", n_models, MAX_TRACE_MODELS), ("n_samples", n_samples, MAX_TRACE_SAMPLES),
                        ("n_classes", n_classes, MAX_TRACE_CLASSES)):
        if v > hi:
            return f"{where}{name}: {v!r} is not allowed; it must be <= {hi:,}"
    nbytes = 4 * n_models * n_samples * n_classes
    if nbytes > MAX_TRACE_BYTES:
        return (f"{where}n_samples: {n_models} models x {n_samples:,} samples x {n_classes:,} classes need "
                f"{nbytes / 2**30:.3g} GiB of float32 probabilities; a trace may hold at most "
                f"{MAX_TRACE_BYTES / 2**30:g} GiB (lower n_samples or n_classes)")
    return None


MAX_FOLDS = 100  # cross-validation folds of the trace builders


def check_folds(n_folds) -> None:
    """Raise :class:`ConfigError` unless ``n_folds`` is an integer in [2, ``MAX_FOLDS``]."""
    from ..errors import ConfigError

    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 2 <= n_folds <= MAX_FOLDS:
        raise ConfigError(f"n_folds: {n_folds!r} is not allowed; it must be an integer in [2, {MAX_FOLDS}]")
