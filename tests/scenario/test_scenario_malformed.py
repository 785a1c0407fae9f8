"""Malformed scenario files: each raises ConfigError naming the file and the offending field."""

from __future__ import annotations

import pytest
import tomli_w

from idnbandit.errors import ConfigError
from idnbandit.scenario import load_scenario


def _node(d, name):
    return next(n for n in d["nodes"] if n["name"] == name)


def _set(path, value):
    def mutate(d):
        cur = d
        for key in path[:-1]:
            cur = cur[key]
        cur[path[-1]] = value
    return mutate


def _node_set(node, key, value):
    def mutate(d):
        _node(d, node)[key] = value
    return mutate


def _del(*path):
    def mutate(d):
        cur = d
        for key in path[:-1]:
            cur = cur[key]
        del cur[path[-1]]
    return mutate


def _uplink(node, key, value):
    def mutate(d):
        _node(d, node)["uplink"][key] = value
    return mutate


def _add_node(**node):
    def mutate(d):
        d["nodes"].append(node)
    return mutate


def _cycle(d):
    cloud = _node(d, "cloud")
    cloud["parent"] = "phone"
    cloud["uplink"] = {"propagation_ms": 1.0, "bandwidth_mbps": 10.0}
    cloud["tier"] = "device"  # keep tiers monotone so that the cycle itself is what is reported
    _node(d, "edge")["tier"] = "device"


def _two_traces(d):
    d["trace"]["builtin"] = "digits"


def _replay_missing(d):
    d["workload"]["process"] = "replay"
    d["workload"]["replay_file"] = "no-such-arrivals.txt"


def _fault_backwards(d):
    d["faults"][0]["end_s"] = 5.0


def _synthetic_below_chance(d):
    d["trace"] = {"synthetic": {"model_names": ["small", "big"], "accuracies": [0.2, 0.9], "n_classes": 3}}


def _dup_node(d):
    d["nodes"].append(dict(_node(d, "phone")))


def _bursty(d):
    d["workload"].update(process="bursty", burst_factor=9.0, mean_burst_s=5.0, mean_calm_s=5.0)


# (id, mutation, substring the message must contain)
CASES = [
    ("unknown-top-key", _set(("nmae",), "x"), "nmae: unknown key 'nmae'; did you mean 'name'?"),
    ("unknown-node-key", _node_set("phone", "speed_gflop", 3.0), "[[nodes]] 'phone'.speed_gflop"),
    ("unknown-uplink-key", _uplink("phone", "bandwith_mbps", 6.0), "'phone'.uplink.bandwith_mbps"),
    ("unknown-workload-key", _set(("workload", "rate_per_sec"), 5.0), "[workload].rate_per_sec"),
    ("unknown-reward-key", _set(("reward", "w_latency"), 1.0), "[reward].w_latency"),
    ("negative-bandwidth", _uplink("phone", "bandwidth_mbps", -5), "[[nodes]] 'phone'.uplink.bandwidth_mbps: -5"),
    ("zero-speed", _node_set("edge", "speed_gflops", 0), "[[nodes]] 'edge'.speed_gflops: 0"),
    ("zero-servers", _node_set("cloud", "servers", 0), "[[nodes]] 'cloud'.servers: 0"),
    ("fractional-servers", _node_set("cloud", "servers", 1.5), "[[nodes]] 'cloud'.servers: 1.5"),
    ("negative-delay", _uplink("edge", "propagation_ms", -1.0), "'edge'.uplink.propagation_ms: -1.0"),
    ("zero-rate", _set(("workload", "rate_per_s"), 0), "[workload].rate_per_s: 0"),
    ("parent-cycle", _cycle, "parent cycle"),
    ("unknown-parent", _node_set("edge", "parent", "clowd"), "[[nodes]] 'edge'.parent: unknown node 'clowd'"),
    ("memory-exceeded", _node_set("phone", "memory_mb", 1.0), "[[nodes]] 'phone'.memory_mb: 1 is too small"),
    ("trace-column", lambda d: d["models"][1].update(trace_column="bigg"), "[[models]] 'm-big'.trace_column: 'bigg'"),
    ("origin-no-option", lambda d: (d["nodes"].append({"name": "lonely", "tier": "cloud", "speed_gflops": 1.0}),
                                    d["workload"]["origins"].append("lonely")), "origin 'lonely' has no option"),
    ("different-K", lambda d: (_add_node(name="phone2", tier="device", speed_gflops=1.0, parent="cloud",
                                         uplink={"propagation_ms": 1.0, "bandwidth_mbps": 1.0})(d),
                               d["workload"]["origins"].append("phone2")), "different numbers of options"),
    ("replay-missing", _replay_missing, "[workload].replay_file: 'no-such-arrivals.txt' does not exist"),
    ("tier-type", _node_set("edge", "tier", 3), "[[nodes]] 'edge'.tier: 3"),
    ("tier-value", _node_set("edge", "tier", "egde"), "did you mean 'edge'?"),
    ("models-not-array", _node_set("phone", "models", "m-small"), "[[nodes]] 'phone'.models: 'm-small'"),
    ("feedback-mode", _set(("feedback", "mode"), "bandits"), "[feedback].mode: 'bandits'"),
    ("missing-gflops", lambda d: d["models"][0].pop("gflops"), "[[models]] 'm-small'.gflops: missing"),
    ("background-utilisation", lambda d: d["workload"]["background"][0].update(utilisation=1.2),
     "[[workload.background]] 'edge'.utilisation: 1.2"),
    ("trace-two-sources", _two_traces, "[trace]: set exactly one"),
    ("duplicate-node", _dup_node, "duplicate node name(s) 'phone'"),
    ("negative-seed", _set(("seed",), -1), "seed: -1"),
    ("unknown-hosted-model", _node_set("cloud", "models", ["m-huge"]), "[[nodes]] 'cloud'.models: unknown model 'm-huge'"),
    ("synthetic-below-chance", _synthetic_below_chance, "[trace.synthetic].accuracies: 0.2"),
    ("fault-backwards", _fault_backwards, "[[faults]] #1.end_s: 5.0"),
    ("zero-deadline", _set(("reward", "deadline_ms"), 0), "[reward].deadline_ms: 0"),
    ("tier-order", _node_set("cloud", "tier", "device"), "[[nodes]] 'edge'.parent: 'cloud' is tier device"),
    ("context-type", _set(("context", "load"), "yes"), "[context].load: 'yes'"),
    ("trace-path-missing", _set(("trace", "path"), "missing.npz"), "[trace].path: 'missing.npz' does not exist"),
    ("burst-too-large", _bursty, "[workload].burst_factor"),
    ("missing-nodes", _del("nodes"), "[[nodes]]: missing"),
    ("root-with-uplink", _node_set("cloud", "uplink", {"propagation_ms": 1.0, "bandwidth_mbps": 1.0}),
     "[[nodes]] 'cloud'.uplink"),
    ("synthetic-duplicate-names", lambda d: d.update(trace={"synthetic": {"model_names": ["small", "small"],
                                                                          "accuracies": [0.7, 0.9]}}),
     "[trace.synthetic].model_names: ['small', 'small'] lists a name twice"),
    ("fault-target", lambda d: d["faults"][0].update(target="phnoe"), "[[faults]] #1.target: unknown node 'phnoe'"),
]


def test_enough_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


@pytest.mark.parametrize("mutate, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_file_names_file_and_field(scenario_dir, base, mutate, expected):
    mutate(base)
    path = scenario_dir / "broken.toml"
    path.write_text(tomli_w.dumps(base))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_base_is_valid(scenario_dir, base):
    path = scenario_dir / "ok.toml"
    path.write_text(tomli_w.dumps(base))
    s = load_scenario(path)
    assert s.options("phone") == (("phone", "m-small"), ("cloud", "m-big"))


def test_invalid_toml_syntax(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text('name = "x"\n[[nodes]\n')
    with pytest.raises(ConfigError, match=r"syntax\.toml: not valid TOML \(.*line 2"):
        load_scenario(path)


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.toml: file not found"):
        load_scenario(tmp_path / "nowhere.toml")
