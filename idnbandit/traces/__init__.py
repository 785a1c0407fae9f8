"""Model-output traces: I/O, confidence features, synthetic generator, bundled real traces."""

from .trace import Trace

__all__ = ["Trace"]
