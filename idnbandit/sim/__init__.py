"""The IDN simulator: one exact event core (FIFO in arrival order, causal feedback), workloads, fused loop.

Public API: :func:`simulate` (whole runs, returns :class:`RunResult`), :class:`Engine` (one request
at a time, for the Gymnasium environments), :func:`compile_scenario` and the context helpers
:func:`n_options`, :func:`n_features`, :func:`context_names`. See ``docs/simulator.md``.
"""

from .compiled import Compiled, compile_scenario, context_names, n_features, n_options
from .engine import Completion, Engine, Outcome
from .multihop import SCOPES, MultiHopLayout, multihop_layout
from .result import RunResult
from .run import simulate
from .workload import RequestStream

__all__ = [
    "Compiled",
    "Completion",
    "Engine",
    "MultiHopLayout",
    "Outcome",
    "RequestStream",
    "RunResult",
    "SCOPES",
    "compile_scenario",
    "context_names",
    "multihop_layout",
    "n_features",
    "n_options",
    "simulate",
]
