"""A human-readable summary of a scenario: topology tree, option lists, model ladder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import ArrivalProcess, Node, Scenario

if TYPE_CHECKING:
    from ..traces import Trace

__all__ = ["describe_scenario"]


def _node_line(s: Scenario, n: Node) -> str:
    parts = [f"{n.name} [{n.tier}]", f"{n.speed_gflops:g} GFLOP/s x {n.servers} server{'s' if n.servers > 1 else ''}",
             f"{n.memory_mb:g} MB"]
    parts.append("models: " + (", ".join(n.models) if n.models else "-"))
    if n.cost_per_request:
        parts.append(f"cost/request {n.cost_per_request:g}")
    if n.uplink is not None:
        parts.append(f"uplink {n.uplink.propagation_ms:g} ms, {n.uplink.bandwidth_mbps:g} Mbit/s")
    return "; ".join(parts)


def _tree(s: Scenario) -> list[str]:
    children: dict[str | None, list[Node]] = {}
    for n in s.nodes:
        children.setdefault(n.parent, []).append(n)
    lines: list[str] = []

    def walk(n: Node, depth: int) -> None:
        lines.append("  " * (depth + 1) + "- " + _node_line(s, n))
        for c in children.get(n.name, []):
            walk(c, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return lines


def _workload(s: Scenario) -> list[str]:
    w = s.workload
    line = f"  {w.process} arrivals, {w.rate_per_s:g} req/s per origin at {len(w.origins)} origin(s)"
    if w.process is ArrivalProcess.BURSTY:
        line += f"; bursts x{w.burst_factor:g} lasting {w.mean_burst_s:g} s, calm {w.mean_calm_s:g} s"
    elif w.process is ArrivalProcess.DIURNAL:
        line += f"; amplitude {w.diurnal_amplitude:g}, period {w.diurnal_period_s:g} s"
    elif w.process is ArrivalProcess.REPLAY:
        line += f"; timestamps from {w.replay_file}"
    out = [line]
    for b in w.background:
        out.append(f"  background at {b.node}: utilisation {b.utilisation:g}, {b.service} service, "
                   f"mean {b.mean_service_ms:g} ms")
    r = s.reward
    rew = f"  reward = {r.w_acc:g}*correct - {r.w_lat_per_s:g}*latency_s - {r.w_cost:g}*cost"
    if r.deadline_ms is not None:
        rew += f"; deadline {r.deadline_ms:g} ms"
    out.append(rew)
    fb = f"  feedback: {s.feedback.mode}"
    if s.feedback.delay_requests:
        fb += f", delayed {s.feedback.delay_requests} requests"
    if s.feedback.delay_s:
        fb += f", delayed {s.feedback.delay_s:g} s"
    out.append(fb)
    for f in s.faults:
        out.append(f"  fault: {f.kind} at {f.target} from {f.start_s:g} s to {f.end_s:g} s (factor {f.factor:g})")
    return out


def _trace_name(s: Scenario) -> str:
    t = s.trace
    if t.builtin is not None:
        return f"built-in {t.builtin!r}"
    if t.path is not None:
        return f"file {t.path!r}"
    return f"synthetic (seed {t.synthetic.seed})"


def _ladder(s: Scenario, trace: Trace | None) -> list[str]:
    acc = dict(zip(trace.model_names, trace.accuracies())) if trace is not None else {}
    targets = {}
    if s.trace.synthetic is not None:
        targets = dict(zip(s.trace.synthetic.model_names, s.trace.synthetic.accuracies))
    width = max(len("model"), *(len(m.name) for m in s.models))
    col = max(len("trace column"), *(len(m.trace_column) for m in s.models))
    head = f"  {'model':<{width}}  {'trace column':<{col}}  {'GFLOPs':>8}  {'memory MB':>9}  accuracy"
    lines = [head]
    for m in s.models:
        a = f"{acc[m.trace_column]:.4f}" if m.trace_column in acc else "-"
        if m.trace_column in targets:
            a += f" (target {targets[m.trace_column]:.3f})"
        lines.append(f"  {m.name:<{width}}  {m.trace_column:<{col}}  {m.gflops:>8g}  {m.memory_mb:>9g}  {a}")
    return lines


def describe_scenario(scenario: Scenario, trace: Trace | None = None) -> str:
    """Text summary of ``scenario``: topology tree, options per origin, workload, model ladder.

    Parameters
    ----------
    scenario
        The scenario to describe.
    trace
        Its trace (see :func:`idnbandit.scenario.resolve_trace`); gives the accuracy of each model.
        Without it the accuracy column shows ``-``.

    Returns
    -------
    str
        Several lines, no trailing newline.
    """
    s = scenario
    out = [f"scenario {s.name!r}" + (f": {s.description}" if s.description else "")]
    if s.source:
        out.append(f"  from {s.source}, seed {s.seed}")
    out.append("topology (root first; speed per server, memory, hosted models, uplink to the parent):")
    out.extend(_tree(s))
    k = len(s.options(s.workload.origins[0]))
    out.append(f"options per origin (K = {k}; index: node/model, local first):")
    for o in s.workload.origins:
        opts = "  ".join(f"[{i}] {node}/{model}" for i, (node, model) in enumerate(s.options(o)))
        out.append(f"  {o}: {opts}")
    out.append("workload, reward, feedback:")
    out.extend(_workload(s))
    shape = f"{trace.n_samples} samples, {trace.n_classes} classes" if trace is not None else "not loaded"
    out.append(f"model ladder (trace: {_trace_name(s)}, {shape}):")
    out.extend(_ladder(s, trace))
    return "\n".join(out)
