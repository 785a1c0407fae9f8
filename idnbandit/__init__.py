"""idnbandit: learning cooperative inference strategies in Inference Delivery Networks.

Core dependencies only (numpy, numba, gymnasium, river); torch, ray and matplotlib are optional
extras imported lazily where used.
"""

from . import _kernel_cache
from .errors import ConfigError, DependencyNotInstalled, IdnBanditError, TraceError, UnknownNameError

_kernel_cache.keep_rebuilt_dispatchers()  # NUMBA_FUNCTION_CACHE_SIZE, before numba is imported (if it is not yet)
_kernel_cache.install()  # before any kernel is compiled: caches stamped with every source they embed

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DependencyNotInstalled",
    "IdnBanditError",
    "TraceError",
    "UnknownNameError",
    "__version__",
]
from . import envs as _envs  # noqa: E402,F401  registers gymnasium ids
