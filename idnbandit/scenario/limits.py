"""Bounds on every count, size and number of a scenario (docs/scenarios.md, "Limits").

Each bound keeps a mistyped value from exhausting memory or time before the first request, or from
turning a simulated time into inf/NaN, while staying far outside any IDN one would simulate:

* numbers: every positive quantity in ``[MIN_POSITIVE, MAX_MAGNITUDE]`` = [1e-9, 1e12] (so that a
  product or quotient of a few of them, e.g. a transfer time ``bytes * 8 / bandwidth``, is finite),
  every simulated time (fault windows, replay timestamps) at most ``MAX_TIME_S`` = 1e12 s;
* counts: nodes, models, servers, options, faults (arrays of these sizes are allocated);
* work per request: the background jobs, bursty state switches and thinning candidates that the
  simulator draws per request are bounded, so a tiny ``mean_service_ms`` or ``rate_per_s`` cannot
  make it loop or grow memory without bound.
"""

from __future__ import annotations

import math

from ..traces.limits import (
    MAX_TRACE_BYTES,
    MAX_TRACE_CLASSES,
    MAX_TRACE_MODELS,
    MAX_TRACE_SAMPLES,
)

__all__ = [
    "MIN_POSITIVE",
    "MAX_MAGNITUDE",
    "MAX_TIME_S",
    "MAX_NODES",
    "MAX_MODELS",
    "MAX_SERVERS",
    "MAX_TOTAL_SERVERS",
    "MAX_OPTIONS",
    "MAX_FAULTS",
    "MAX_BYTES",
    "MAX_SEED",
    "MAX_DELAY_REQUESTS",
    "MAX_BURST_FACTOR",
    "MAX_BACKGROUND_JOBS_PER_REQUEST",
    "MAX_SWITCHES_PER_REQUEST",
    "MIN_DIURNAL_PERIOD_S",
    "MAX_REPLAY_TIMESTAMPS",
    "MAX_REPLAY_BYTES",
    "MAX_SCENARIO_BYTES",
    "MAX_TRACE_BYTES",
    "MAX_TRACE_CLASSES",
    "MAX_TRACE_MODELS",
    "MAX_TRACE_SAMPLES",
    "fmt_bound",
    "show",
]

MIN_POSITIVE = 1e-9  # smallest value of a field that must be > 0
MAX_MAGNITUDE = 1e12  # largest value of any number of a scenario (rates, speeds, memory, weights, ...)
MAX_TIME_S = 1e12  # largest simulated time (fault windows, replay timestamps): ~31,700 years
MAX_NODES = 1_000_000
MAX_MODELS = 10_000
MAX_SERVERS = 1_000_000  # servers of one node
MAX_TOTAL_SERVERS = 10_000_000  # servers of all nodes (the simulator keeps one free time per server)
MAX_OPTIONS = 1_024  # options K of an origin (agents keep per-option statistics)
MAX_FAULTS = 100_000
MAX_BYTES = 10**12  # input_bytes / output_bytes of a model (1 TB)
MAX_SEED = 2**63 - 1  # seeds are int64 in the simulator and in results files
MAX_DELAY_REQUESTS = 10**12  # feedback.delay_requests (the longest run is 10^12 requests)
MAX_BURST_FACTOR = 1_000.0  # bursty arrivals are thinned from a stream burst_factor times denser
# background jobs the simulator processes per request: sum over nodes of utilisation * servers /
# mean_service, divided by the request rate O * rate_per_s
MAX_BACKGROUND_JOBS_PER_REQUEST = 1_000_000.0
# hidden-state switches of the bursty process per request: 2 / (mean_burst_s + mean_calm_s) / (O * rate)
MAX_SWITCHES_PER_REQUEST = 100.0
MIN_DIURNAL_PERIOD_S = 1e-3  # a shorter period averages out; 2 pi t / period must stay finite
MAX_REPLAY_TIMESTAMPS = 10_000_000
MAX_REPLAY_BYTES = 256 * 2**20
MAX_SCENARIO_BYTES = 256 * 2**20  # a scenario file (a 100,000-node tree is ~15 MB of TOML)


def fmt_bound(x: float) -> str:
    """``1e-09`` → ``1e-9``, ``1e+12`` → ``1e12``, ``1000000`` → ``1,000,000`` (for messages)."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e7):
        return f"{int(x):,}"
    if not math.isfinite(x):
        return str(x)
    return f"{x:g}".replace("e+", "e").replace("e-0", "e-")


def show(value) -> str:
    """``repr(value)`` for a message, an integer of hundreds of digits abbreviated (Python refuses to
    print one of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"{'-' if value < 0 else ''}<an integer of {int(value.bit_length() * math.log10(2)) + 1:,} digits>"
    return repr(value)
