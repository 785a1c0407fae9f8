"""Frozen dataclasses describing one IDN experiment (docs/scenarios.md).

Field-level checks (signs, ranges, enum values) happen in ``__post_init__``; checks that need the
whole scenario (parent cycles, memory, options) happen in :class:`Scenario`; checks that need the
trace (columns, class counts) happen in :func:`idnbandit.scenario.load_scenario`.
Units are in the field names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..traces.limits import check_trace_size
from . import limits as _lim
from ._checks import _name, _positive
from .kinds import ArrivalProcess, FaultKind, FeedbackMode, ServiceDistribution, Tier

__all__ = [
    "Tier",
    "ArrivalProcess",
    "ServiceDistribution",
    "FeedbackMode",
    "FaultKind",
    "Link",
    "ModelSpec",
    "Node",
    "Background",
    "Workload",
    "RewardSpec",
    "FeedbackSpec",
    "ContextSpec",
    "Fault",
    "SyntheticTraceSpec",
    "TraceSpec",
    "Scenario",
]


@dataclass(frozen=True)
class Link:
    """The uplink from a node to its parent (the same figures apply up and down)."""

    propagation_ms: float
    bandwidth_mbps: float
    cost_per_mb: float = 0.0

    def __post_init__(self):
        _positive("link.propagation_ms", self.propagation_ms, allow_zero=True)
        _positive("link.bandwidth_mbps", self.bandwidth_mbps)
        _positive("link.cost_per_mb", self.cost_per_mb, allow_zero=True)


@dataclass(frozen=True)
class ModelSpec:
    """An ML model: its outputs come from column ``trace_column`` of the scenario's trace."""

    name: str
    trace_column: str
    gflops: float
    memory_mb: float
    input_bytes: int = 50_000
    output_bytes: int = 100

    def __post_init__(self):
        _name("models.name", self.name)
        w = f"models[{self.name}]"
        _name(f"{w}.trace_column", self.trace_column)
        _positive((w, "gflops"), self.gflops)
        _positive((w, "memory_mb"), self.memory_mb)
        _positive((w, "input_bytes"), self.input_bytes, integer=True, hi=_lim.MAX_BYTES)
        _positive((w, "output_bytes"), self.output_bytes, integer=True, hi=_lim.MAX_BYTES)


@dataclass(frozen=True)
class Node:
    """A compute site. ``parent is None`` marks a root (it then has no uplink)."""

    name: str
    tier: Tier
    speed_gflops: float  # GFLOP/s of one server
    servers: int = 1
    memory_mb: float = 1024.0
    models: tuple[str, ...] = ()
    parent: str | None = None
    uplink: Link | None = None
    cost_per_request: float = 0.0  # resource cost of one inference served here

    def __post_init__(self):
        _name("nodes.name", self.name)
        w = f"nodes[{self.name}]"
        object.__setattr__(self, "tier", Tier.parse(self.tier, f"{w}.tier"))
        _positive((w, "speed_gflops"), self.speed_gflops)
        _positive((w, "servers"), self.servers, integer=True, hi=_lim.MAX_SERVERS)
        _positive((w, "memory_mb"), self.memory_mb)
        _positive((w, "cost_per_request"), self.cost_per_request, allow_zero=True)
        object.__setattr__(self, "models", tuple(self.models))
        if self.parent is not None and self.uplink is None:
            raise ConfigError(f"nodes[{self.name}].uplink: missing; a node with a parent needs an uplink")
        if self.parent is None and self.uplink is not None:
            raise ConfigError(f"nodes[{self.name}].uplink: a root node (no parent) has no uplink")
        if self.parent == self.name:
            raise ConfigError(f"nodes[{self.name}].parent: a node cannot be its own parent")


@dataclass(frozen=True)
class Background:
    """Background jobs sharing a node's servers: Poisson arrivals at a given utilisation."""

    node: str
    utilisation: float  # offered load of background jobs, per server, in [0, 1)
    mean_service_ms: float = 10.0
    service: ServiceDistribution = ServiceDistribution.EXPONENTIAL

    def __post_init__(self):
        _name("workload.background.node", self.node)
        where = f"workload.background[{self.node}]"
        u = self.utilisation
        _positive(f"{where}.utilisation", u, allow_zero=True)  # a number, finite, >= 0
        if u >= 1:
            raise ConfigError(f"{where}.utilisation: {_lim.show(u)} is not allowed; it must be finite and in [0, 1)")
        _positive(f"{where}.mean_service_ms", self.mean_service_ms)
        object.__setattr__(self, "service", ServiceDistribution.parse(self.service, f"{where}.service"))


@dataclass(frozen=True)
class Workload:
    """How requests arrive: per-origin rates and process, plus background load per node."""

    origins: tuple[str, ...]
    rate_per_s: float = 10.0  # mean request rate at each origin
    process: ArrivalProcess = ArrivalProcess.POISSON
    burst_factor: float = 4.0  # bursty: rate in the high state / rate_per_s ...
    mean_burst_s: float = 2.0  # ... mean sojourn in the high state
    mean_calm_s: float = 8.0  # ... mean sojourn in the low state (low rate keeps the mean at rate_per_s)
    diurnal_period_s: float = 86_400.0
    diurnal_amplitude: float = 0.5  # rate(t) = rate_per_s * (1 + a sin(2 pi t / period))
    replay_file: str | None = None  # one timestamp (seconds) per line, non-decreasing
    background: tuple[Background, ...] = ()
    timeout_ms: float = 10_000.0  # a client gives up after this long (e.g. its request crossed a link in outage)
    cancel_on_timeout: bool = False  # drop a timed-out request's stages that have not started (default: servers
    # do not know the client gave up and finish the work)

    def __post_init__(self):
        object.__setattr__(self, "origins", tuple(self.origins))
        if not self.origins:
            raise ConfigError("workload.origins: empty; list at least one origin node")
        for o in self.origins:
            _name("workload.origins", o)
        object.__setattr__(self, "process", ArrivalProcess.parse(self.process, "workload.process"))
        _positive("workload.rate_per_s", self.rate_per_s)
        _positive("workload.burst_factor", self.burst_factor, hi=_lim.MAX_BURST_FACTOR)
        _positive("workload.mean_burst_s", self.mean_burst_s)
        _positive("workload.mean_calm_s", self.mean_calm_s)
        _positive("workload.diurnal_period_s", self.diurnal_period_s, lo=_lim.MIN_DIURNAL_PERIOD_S)
        _positive("workload.diurnal_amplitude", self.diurnal_amplitude, allow_zero=True, hi=1)
        if self.diurnal_amplitude > 1:
            raise ConfigError(
                f"workload.diurnal_amplitude: {self.diurnal_amplitude!r} is not allowed; it must be in [0, 1]"
            )
        if self.process is ArrivalProcess.BURSTY:
            frac = self.mean_burst_s / (self.mean_burst_s + self.mean_calm_s)
            if self.burst_factor * frac >= 1 and self.burst_factor > 1:
                raise ConfigError(
                    "workload.burst_factor: too large for the burst/calm durations "
                    f"(burst_factor * mean_burst_s / (mean_burst_s + mean_calm_s) = {self.burst_factor * frac:.3g}"
                    " must be < 1 so that the calm-state rate stays positive)"
                )
            switches = 2.0 / (self.mean_burst_s + self.mean_calm_s) / (len(self.origins) * self.rate_per_s)
            if switches > _lim.MAX_SWITCHES_PER_REQUEST:
                raise ConfigError(
                    f"workload.mean_burst_s: {self.mean_burst_s!r} is not allowed; with mean_calm_s = "
                    f"{self.mean_calm_s!r} and {len(self.origins)} origin(s) at rate_per_s = {self.rate_per_s!r} the "
                    f"bursty state switches {switches:.3g} times per request; it must be <= "
                    f"{_lim.fmt_bound(_lim.MAX_SWITCHES_PER_REQUEST)} (2 / (mean_burst_s + mean_calm_s) <= "
                    f"{_lim.fmt_bound(_lim.MAX_SWITCHES_PER_REQUEST)} x the request rate): lengthen the sojourns"
                )
            calm = (1 - self.burst_factor * frac) / (1 - frac) if frac < 1 else math.inf
            if calm > _lim.MAX_BURST_FACTOR:
                raise ConfigError(
                    f"workload.mean_calm_s: {self.mean_calm_s!r} is not allowed; with mean_burst_s = "
                    f"{self.mean_burst_s!r} and burst_factor = {self.burst_factor!r} the calm-state rate is "
                    f"{calm:.3g} x rate_per_s; it must be <= {_lim.fmt_bound(_lim.MAX_BURST_FACTOR)} x "
                    "(arrivals are thinned from the faster state): lengthen mean_calm_s or raise burst_factor"
                )
        if self.process is ArrivalProcess.REPLAY and not self.replay_file:
            raise ConfigError("workload.replay_file: missing; process = 'replay' needs a timestamp file")
        object.__setattr__(self, "background", tuple(self.background))
        _positive("workload.timeout_ms", self.timeout_ms)
        if not isinstance(self.cancel_on_timeout, bool):
            raise ConfigError(f"workload.cancel_on_timeout: {self.cancel_on_timeout!r} is not true/false")


@dataclass(frozen=True)
class RewardSpec:
    """reward = w_acc * correct - w_lat_per_s * latency_s - w_cost * cost; late answers count as failed."""

    w_acc: float = 1.0
    w_lat_per_s: float = 1.0
    w_cost: float = 0.0
    deadline_ms: float | None = None

    def __post_init__(self):
        _positive("reward.w_acc", self.w_acc, allow_zero=True)
        _positive("reward.w_lat_per_s", self.w_lat_per_s, allow_zero=True)
        _positive("reward.w_cost", self.w_cost, allow_zero=True)
        if self.deadline_ms is not None:
            _positive("reward.deadline_ms", self.deadline_ms)


@dataclass(frozen=True)
class FeedbackSpec:
    mode: FeedbackMode = FeedbackMode.BANDIT
    delay_requests: int = 0  # feedback reaches the agent this many requests later ...
    delay_s: float = 0.0  # ... or this many simulated seconds later (at most one of the two)

    def __post_init__(self):
        object.__setattr__(self, "mode", FeedbackMode.parse(self.mode, "feedback.mode"))
        _positive("feedback.delay_requests", self.delay_requests, allow_zero=True, integer=True,
                  hi=_lim.MAX_DELAY_REQUESTS)
        _positive("feedback.delay_s", self.delay_s, allow_zero=True, hi=_lim.MAX_TIME_S)
        if self.delay_requests and self.delay_s:
            raise ConfigError("feedback: set at most one of delay_requests and delay_s")


@dataclass(frozen=True)
class ContextSpec:
    """Which features the agent's context holds (docs/scenarios.md)."""

    confidence: bool = True  # max prob, margin, normalised entropy of the local model
    load: bool = True  # estimated queueing backlog (s) of each option's node
    calibrated: bool = False  # temperature-scale the local model's probabilities first

    def __post_init__(self):
        for f in ("confidence", "load", "calibrated"):
            if not isinstance(getattr(self, f), bool):
                raise ConfigError(f"context.{f}: {getattr(self, f)!r} is not true/false")


@dataclass(frozen=True)
class Fault:
    """A timed fault: active for simulated times in [start_s, end_s)."""

    kind: FaultKind
    target: str  # node name (its uplink for link faults)
    start_s: float
    end_s: float
    factor: float = 0.1  # bandwidth or speed multiplier (ignored by link_outage)

    def __post_init__(self):
        object.__setattr__(self, "kind", FaultKind.parse(self.kind, "faults.kind"))
        _name("faults.target", self.target)
        _positive("faults.start_s", self.start_s, allow_zero=True, hi=_lim.MAX_TIME_S)
        _positive("faults.end_s", self.end_s, hi=_lim.MAX_TIME_S)
        if self.end_s <= self.start_s:
            raise ConfigError(f"faults[{self.target}].end_s: {self.end_s!r} must be > start_s ({self.start_s!r})")
        _positive("faults.factor", self.factor)


@dataclass(frozen=True)
class SyntheticTraceSpec:
    """A synthetic trace with correlated errors (see :func:`idnbandit.traces.synthetic_trace`)."""

    model_names: tuple[str, ...]
    accuracies: tuple[float, ...]
    n_samples: int = 20_000
    n_classes: int = 10
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "model_names", tuple(self.model_names))
        try:
            object.__setattr__(self, "accuracies", tuple(float(a) for a in self.accuracies))
        except (TypeError, ValueError):
            raise ConfigError(f"trace.synthetic.accuracies: {self.accuracies!r} is not allowed; give one number "
                              "in (1 / n_classes, 1) per model") from None
        if len(self.model_names) != len(self.accuracies) or not self.model_names:
            raise ConfigError("trace.synthetic: model_names and accuracies must be non-empty and of equal length")
        for a in self.accuracies:
            if not 0 < a < 1:
                raise ConfigError(f"trace.synthetic.accuracies: {a!r} is not allowed; each must be in (0, 1)")
        _positive("trace.synthetic.n_samples", self.n_samples, integer=True, hi=_lim.MAX_TRACE_SAMPLES)
        _positive("trace.synthetic.n_classes", self.n_classes, integer=True, lo=2, hi=_lim.MAX_TRACE_CLASSES)
        too_big = check_trace_size(len(self.model_names), self.n_samples, self.n_classes, where="trace.synthetic.")
        if too_big:
            raise ConfigError(too_big.replace("trace.synthetic.n_models:", "trace.synthetic.model_names:", 1))
        _positive("trace.synthetic.seed", self.seed, allow_zero=True, integer=True, hi=_lim.MAX_SEED)
        for n in self.model_names:
            _name("trace.synthetic.model_names", n)
        if len(set(self.model_names)) != len(self.model_names):
            raise ConfigError(
                f"trace.synthetic.model_names: {list(self.model_names)} lists a name twice; names must be unique"
            )


@dataclass(frozen=True)
class TraceSpec:
    """Where a scenario's model outputs come from: exactly one of builtin, path, synthetic."""

    builtin: str | None = None
    path: str | None = None
    synthetic: SyntheticTraceSpec | None = None

    def __post_init__(self):
        given = [k for k in ("builtin", "path", "synthetic") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(
                f"trace: set exactly one of builtin, path, synthetic (got {', '.join(given) or 'none'})"
            )


@dataclass(frozen=True)
class Scenario:
    """A frozen, validated IDN experiment. Build with :func:`idnbandit.scenario.load_scenario`."""

    name: str
    nodes: tuple[Node, ...]
    models: tuple[ModelSpec, ...]
    workload: Workload
    trace: TraceSpec
    reward: RewardSpec = field(default_factory=RewardSpec)
    feedback: FeedbackSpec = field(default_factory=FeedbackSpec)
    context: ContextSpec = field(default_factory=ContextSpec)
    faults: tuple[Fault, ...] = ()
    description: str = ""
    seed: int = 0
    source: str = field(default="", compare=False)  # file the scenario was read from (for messages)
    base_dir: str = field(default="", compare=False)  # resolves relative trace/replay paths

    def __post_init__(self):
        _name("name", self.name)
        for f in ("nodes", "models", "faults"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= _lim.MAX_SEED:
            raise ConfigError(f"seed: {_lim.show(self.seed)} is not allowed; it must be an integer in [0, 2**63 - 1]")
        from .validate import validate_scenario

        validate_scenario(self)

    # ------------------------------------------------------------------ lookups
    def _index(self) -> tuple[dict[str, Node], dict[str, ModelSpec]]:
        """Name -> node / model (built once; a scenario may have tens of thousands of nodes)."""
        idx = self.__dict__.get("_lookup")
        if idx is None:
            idx = ({n.name: n for n in self.nodes}, {m.name: m for m in self.models})
            object.__setattr__(self, "_lookup", idx)
        return idx

    def node(self, name: str) -> Node:
        n = self._index()[0].get(name)
        if n is None:
            from ..errors import UnknownNameError

            raise UnknownNameError("node", name, [n.name for n in self.nodes])
        return n

    def model(self, name: str) -> ModelSpec:
        m = self._index()[1].get(name)
        if m is None:
            from ..errors import UnknownNameError

            raise UnknownNameError("model", name, [m.name for m in self.models])
        return m

    def path_to_root(self, node: str) -> tuple[Node, ...]:
        """Nodes from ``node`` (included) up to its root."""
        out = []
        cur: str | None = node
        while cur is not None:
            n = self.node(cur)
            out.append(n)
            cur = n.parent
        return tuple(out)

    def options(self, origin: str) -> tuple[tuple[str, str], ...]:
        """The option list of ``origin``: ``(node, model)`` pairs along its path, local first."""
        return tuple((n.name, m) for n in self.path_to_root(origin) for m in n.models)
