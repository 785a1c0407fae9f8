"""Compile a :class:`~idnbandit.scenario.Scenario` and a :class:`~idnbandit.traces.Trace` into arrays.

The numba kernels of :mod:`idnbandit.sim` never see Python objects: everything they need is in one
:class:`Compiled` named tuple of numpy arrays and scalars (struct of arrays).

Indexing
--------
* nodes are numbered in ``scenario.nodes`` order; the uplink of node ``n`` is link ``n`` (a root's
  link has bandwidth 0 and is never crossed);
* origins are numbered in ``scenario.workload.origins`` order; option ``k`` of origin ``o`` is
  ``scenario.options(origin)[k]`` (local first, then up the path to the root);
* model columns are the distinct trace columns the scenario's models use, in ``scenario.models``
  order; ``feat[col, sample]`` holds the confidence features of that column on that sample.

Context layout
--------------
``x = [maxprob, margin, entropy]`` of the origin's local model (option 0's model) if
``context.confidence``, then ``[backlog_s of option 0, ..., backlog_s of option K-1]`` if
``context.load`` (seconds until the first server of the option's node is free, 0 if one is idle),
then ``[1.0]`` (bias). So ``x[0]`` is the local model's maximum class probability whenever
``context.confidence`` is on (threshold agents read it there). ``margin`` is top-1 minus top-2
probability, ``entropy`` the Shannon entropy divided by ``log(C)`` (in [0, 1]).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, TraceError
from ..scenario.model import FaultKind, FeedbackMode, Scenario
from ..traces.features import feature_matrix, fit_temperature
from ..traces.trace import Trace

__all__ = ["Compiled", "compile_scenario", "n_options", "n_features", "context_names",
           "FEEDBACK_CODES", "FAULT_CODES", "check_seed", "resolve_inputs"]

FEEDBACK_CODES = {FeedbackMode.FULL: 0, FeedbackMode.BANDIT: 1, FeedbackMode.LABEL_ON_FORWARD: 2,
                  FeedbackMode.PROXY: 3}
FAULT_CODES = {FaultKind.LINK_BANDWIDTH: 0, FaultKind.LINK_OUTAGE: 1, FaultKind.NODE_SLOWDOWN: 2}


# columns of the packed arrays
NODE_SPEED, NODE_PROP_S, NODE_BPS = range(3)  # node_f: GFLOP/s per server, uplink propagation, bit/s
NODE_TIER, NODE_LO, NODE_HI, NODE_LINK_FAULTS, NODE_SPEED_FAULTS = range(5)  # node_i: tier level, servers are
# server_free[lo:hi], number of faults on its uplink, number of slowdown faults
OPT_NODE, OPT_COL, OPT_NLINKS, OPT_LOCAL, OPT_LINKS = range(5)  # opt_i; links crossed from OPT_LINKS on
OPT_GFLOPS, OPT_IN_BITS, OPT_OUT_BITS, OPT_COST, OPT_COMPUTE_S, OPT_TX = range(6)  # opt_f; transfer times
# (s, no fault) of the j-th link crossed: up at OPT_TX + 2 j, down at OPT_TX + 2 j + 1
PRED, CORRECT = range(2)  # predc
FAULT_KIND, FAULT_TARGET = range(2)  # fault_i
FAULT_START, FAULT_END, FAULT_FACTOR = range(3)  # fault_f
P_W_ACC, P_W_LAT, P_W_COST, P_DEADLINE_S, P_TIMEOUT_S, P_FB_MODE, P_DELAY_REQUESTS, P_DELAY_S, P_USE_CONF, \
    P_USE_LOAD, P_N_FEATURES, P_CANCEL = range(12)  # par


class Compiled(NamedTuple):
    """Read-only arrays describing one scenario + trace (shapes: Nn nodes, O origins, K options,
    H max links on a path, Mc model columns, N samples, F faults).

    Hot arrays are packed (a few arrays with named columns, see the ``NODE_*``, ``OPT_*``, ... column
    constants) because numba reference-counts every array it pulls out of a tuple; kernels receive
    them as separate arguments. The uplink of node n is link n (a root's bandwidth is 0, never used).
    """

    node_f: np.ndarray  # (Nn, 3) float64 NODE_SPEED, NODE_PROP_S, NODE_BPS
    node_i: np.ndarray  # (Nn, 5) int64 NODE_TIER, NODE_LO, NODE_HI, NODE_LINK_FAULTS, NODE_SPEED_FAULTS
    node_cost: np.ndarray  # (Nn,) float64 cost of one inference served there
    origin_node: np.ndarray  # (O,) int64
    opt_i: np.ndarray  # (O, K, 4 + H) int64 OPT_NODE, OPT_COL, OPT_NLINKS, OPT_LOCAL, links (from the origin up)
    opt_f: np.ndarray  # (O, K, 5 + 2H) float64 OPT_GFLOPS, OPT_IN_BITS, OPT_OUT_BITS, OPT_COST, OPT_COMPUTE_S, transfers
    feat: np.ndarray  # (Mc, N, 3) float64 maxprob, margin, normalised entropy
    predc: np.ndarray  # (Mc, N, 2) int64 predicted class, correct (0/1)
    fault_i: np.ndarray  # (F, 2) int64 FAULT_KIND (FAULT_CODES), FAULT_TARGET node (its uplink for link faults)
    fault_f: np.ndarray  # (F, 3) float64 FAULT_START, FAULT_END (s), FAULT_FACTOR
    bg_nodes: np.ndarray  # (B,) int64 nodes with background load
    par: np.ndarray  # (12,) float64 the scalars below, for kernels (P_* indices)
    w_acc: float
    w_lat: float  # per second of latency
    w_cost: float
    deadline_s: float  # inf without a deadline
    timeout_s: float
    fb_mode: int  # FEEDBACK_CODES
    delay_requests: int
    delay_s: float
    use_conf: bool
    use_load: bool
    n_features: int
    cancel: bool

    @property
    def n_options(self) -> int:
        return int(self.opt_i.shape[1])


def n_options(scenario: Scenario) -> int:
    """K, the number of options of every origin.

    Raises
    ------
    ConfigError
        If origins have different numbers of options.
    """
    cached = scenario.__dict__.get("_n_options")
    if cached is not None:
        return cached
    counts = {o: len(scenario.options(o)) for o in scenario.workload.origins}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{o}: {k}" for o, k in counts.items())
        raise ConfigError(f"workload.origins: every origin needs the same number of options ({detail})")
    k = next(iter(counts.values()))
    object.__setattr__(scenario, "_n_options", k)  # frozen scenario: computed once (O(origins x depth))
    return k


def n_features(scenario: Scenario) -> int:
    """Length of the context vector (see the module docstring for its layout)."""
    return 3 * scenario.context.confidence + n_options(scenario) * scenario.context.load + 1


def context_names(scenario: Scenario) -> list[str]:
    """Names of the context entries, in order."""
    names = ["maxprob", "margin", "entropy"] if scenario.context.confidence else []
    if scenario.context.load:
        names += [f"backlog_s[{k}]" for k in range(n_options(scenario))]
    return [*names, "bias"]


def _check_trace(scenario: Scenario, trace: Trace) -> list[int]:
    if not isinstance(trace, Trace):
        raise TraceError(f"trace: expected an idnbandit Trace, got {type(trace).__name__}")
    cols = []
    for m in scenario.models:
        if m.trace_column not in trace.model_names:
            raise TraceError(
                f"models[{m.name}].trace_column: column {m.trace_column!r} is not in the trace "
                f"(columns: {', '.join(trace.model_names)})"
            )
        j = trace.model_names.index(m.trace_column)
        if not np.isfinite(trace.probs[j]).all():
            raise TraceError(f"trace column {m.trace_column!r}: contains NaN or inf")
        cols.append(j)
    return cols


def compile_scenario(scenario: Scenario, trace: Trace) -> Compiled:
    """Build the :class:`Compiled` arrays of ``scenario`` with model outputs from ``trace``.

    Raises
    ------
    ConfigError
        If origins have different option counts.
    TraceError
        If a model's trace column is missing or holds NaN.
    """
    k = n_options(scenario)
    trace_cols = _check_trace(scenario, trace)
    nodes = scenario.nodes
    node_idx = {n.name: i for i, n in enumerate(nodes)}
    model_idx = {m.name: i for i, m in enumerate(scenario.models)}
    # distinct trace columns, in model order
    used_cols: list[int] = []
    for j in trace_cols:
        if j not in used_cols:
            used_cols.append(j)
    model_col = [used_cols.index(j) for j in trace_cols]

    nn = len(nodes)
    servers = np.array([n.servers for n in nodes], dtype=np.int64)
    link_prop = np.zeros(nn)
    link_bps = np.zeros(nn)
    link_cost_per_mb = np.zeros(nn)
    for i, n in enumerate(nodes):
        if n.uplink is not None:
            link_prop[i] = n.uplink.propagation_ms / 1e3
            link_bps[i] = n.uplink.bandwidth_mbps * 1e6
            link_cost_per_mb[i] = n.uplink.cost_per_mb

    origins = scenario.workload.origins
    o_n = len(origins)
    h_max = max(len(scenario.path_to_root(o)) for o in origins)
    shape = (o_n, k)
    opt_node = np.zeros(shape, np.int64)
    opt_col = np.zeros(shape, np.int64)
    opt_gflops = np.zeros(shape)
    opt_in = np.zeros(shape)
    opt_out = np.zeros(shape)
    opt_cost = np.zeros(shape)
    opt_local = np.zeros(shape, bool)
    opt_links = np.full((o_n, k, max(h_max - 1, 1)), -1, np.int64)
    opt_nlinks = np.zeros(shape, np.int64)
    for o, origin in enumerate(origins):
        path = [node_idx[n.name] for n in scenario.path_to_root(origin)]
        for j, (node_name, model_name) in enumerate(scenario.options(origin)):
            n = node_idx[node_name]
            m = scenario.models[model_idx[model_name]]
            hop = path.index(n)
            links = path[:hop]
            opt_node[o, j] = n
            opt_col[o, j] = model_col[model_idx[model_name]]
            opt_gflops[o, j] = m.gflops
            opt_in[o, j] = 8.0 * m.input_bytes
            opt_out[o, j] = 8.0 * m.output_bytes
            mb = (m.input_bytes + m.output_bytes) / 1e6
            opt_cost[o, j] = nodes[n].cost_per_request + sum(link_cost_per_mb[lk] * mb for lk in links)
            opt_local[o, j] = hop == 0
            opt_links[o, j, :hop] = links
            opt_nlinks[o, j] = hop

    temp_cols = used_cols
    feats, preds, corrs = [], [], []
    for j in temp_cols:
        temp = fit_temperature(trace.probs[j], trace.labels) if scenario.context.calibrated else 1.0
        feats.append(feature_matrix(trace.probs[j], temp))
        preds.append(trace.probs[j].argmax(axis=1))
        corrs.append(preds[-1] == trace.labels)

    faults = scenario.faults
    r = scenario.reward
    fb = scenario.feedback
    if fb.mode not in FEEDBACK_CODES:
        raise ConfigError(f"feedback.mode: {fb.mode!r} is not allowed; use one of {', '.join(map(str, FEEDBACK_CODES))}")
    node_f = np.stack([[n.speed_gflops for n in nodes], link_prop, link_bps], axis=1).astype(np.float64)
    server_start = np.concatenate([[0], np.cumsum(servers)]).astype(np.int64)
    link_faults = [sum(f.target == n.name and f.kind is not FaultKind.NODE_SLOWDOWN for f in faults) for n in nodes]
    speed_faults = [sum(f.target == n.name and f.kind is FaultKind.NODE_SLOWDOWN for f in faults) for n in nodes]
    node_i = np.stack([[n.tier.level for n in nodes], server_start[:-1], server_start[1:], link_faults, speed_faults],
                      axis=1).astype(np.int64)
    opt_i = np.concatenate([np.stack([opt_node, opt_col, opt_nlinks, opt_local.astype(np.int64)], axis=2), opt_links],
                           axis=2)
    speed = np.array([n.speed_gflops for n in nodes], dtype=np.float64)
    tx = np.zeros((o_n, k, 2 * opt_links.shape[2]))
    for o in range(o_n):
        for j in range(k):
            for h in range(opt_nlinks[o, j]):
                bps = link_bps[opt_links[o, j, h]]
                tx[o, j, 2 * h] = opt_in[o, j] / bps
                tx[o, j, 2 * h + 1] = opt_out[o, j] / bps
    opt_f = np.concatenate([np.stack([opt_gflops, opt_in, opt_out, opt_cost, opt_gflops / speed[opt_node]], axis=2),
                            tx], axis=2)
    pred = np.stack(preds).astype(np.int64)
    predc = np.ascontiguousarray(np.stack([pred, np.stack(corrs).astype(np.int64)], axis=2))
    scal = dict(
        w_acc=float(r.w_acc),
        w_lat=float(r.w_lat_per_s),
        w_cost=float(r.w_cost),
        deadline_s=np.inf if r.deadline_ms is None else r.deadline_ms / 1e3,
        timeout_s=scenario.workload.timeout_ms / 1e3,
        fb_mode=FEEDBACK_CODES[fb.mode],
        delay_requests=int(fb.delay_requests),
        delay_s=float(fb.delay_s),
        use_conf=bool(scenario.context.confidence),
        use_load=bool(scenario.context.load),
        n_features=n_features(scenario),
        cancel=bool(scenario.workload.cancel_on_timeout),
    )
    return Compiled(
        node_f=np.ascontiguousarray(node_f),
        node_i=np.ascontiguousarray(node_i),
        node_cost=np.array([n.cost_per_request for n in nodes], dtype=np.float64),
        origin_node=np.array([node_idx[o] for o in origins], dtype=np.int64),
        opt_i=np.ascontiguousarray(opt_i),
        opt_f=np.ascontiguousarray(opt_f),
        feat=np.ascontiguousarray(np.stack(feats)),
        predc=predc,
        fault_i=np.array([[FAULT_CODES[f.kind], node_idx[f.target]] for f in faults], dtype=np.int64).reshape(-1, 2),
        fault_f=np.array([[f.start_s, f.end_s, f.factor] for f in faults], dtype=np.float64).reshape(-1, 3),
        bg_nodes=np.array(sorted({node_idx[b.node] for b in scenario.workload.background
                                  if b.utilisation > 0}), dtype=np.int64),
        par=np.array([float(v) for v in scal.values()], dtype=np.float64),
        **scal,
    )


def check_seed(seed, default: int) -> int:
    """``seed`` as a non-negative int (``default`` when None), else :class:`ConfigError`."""
    if seed is None:
        return int(default)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: {seed!r} is not allowed; use a non-negative integer or None (scenario seed)")
    return int(seed)


def resolve_inputs(scenario, trace) -> tuple[Scenario, Trace, Compiled]:
    """Load ``scenario`` if it is a name or path, resolve its trace if not given, compile both."""
    if isinstance(scenario, (str, bytes)) or hasattr(scenario, "__fspath__"):
        from ..scenario import io as scenario_io  # lazily: scenario loading lives above the dataclasses

        scenario = scenario_io.load_scenario(scenario)
    if not isinstance(scenario, Scenario):
        raise ConfigError(f"scenario: expected a Scenario, a built-in name or a path, got {type(scenario).__name__}")
    if trace is None:
        from ..scenario import io as scenario_io

        trace = scenario_io.resolve_trace(scenario)
    return scenario, trace, compile_scenario(scenario, trace)
