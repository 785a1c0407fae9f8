"""Hardening, class 4 (issue 17): every count, size and number of a scenario is bounded, degenerate
values that would make the simulator loop or exhaust memory are refused at load, and topology
validation is linear in the number of nodes.

Every case expects a typed :mod:`idnbandit.errors` exception whose message names the field and its
allowed range, raised by ``loads_scenario`` (before any work).
"""

from __future__ import annotations

import copy
import importlib
import time

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.errors import ConfigError
from idnbandit.scenario import limits as lim
from idnbandit.scenario import loads_scenario, scenario_from_dict
from idnbandit.scenario.validate import validate_scenario
from idnbandit.traces import synthetic_trace

from .conftest import SYNTHETIC, load_dict
from .conftest import put as _put
from .conftest import synthetic_base as _base

# (path into the scenario dict, largest allowed value, text the message must contain)
INT_FIELDS = [
    (("nodes", 2, "servers"), lim.MAX_SERVERS, "[[nodes]] 'cloud'.servers", "[1, 1,000,000]"),
    (("models", 0, "input_bytes"), lim.MAX_BYTES, "[[models]] 'm-small'.input_bytes", "1,000,000,000,000]"),
    (("models", 1, "output_bytes"), lim.MAX_BYTES, "[[models]] 'm-big'.output_bytes", "1,000,000,000,000]"),
    (("trace", "synthetic", "n_samples"), lim.MAX_TRACE_SAMPLES, "[trace.synthetic].n_samples", "100,000,000]"),
    (("trace", "synthetic", "n_classes"), lim.MAX_TRACE_CLASSES, "[trace.synthetic].n_classes", "[2, 100,000]"),
    (("trace", "synthetic", "seed"), lim.MAX_SEED, "[trace.synthetic].seed", "9,223,372,036,854,775,807]"),
    (("seed",), lim.MAX_SEED, "seed", "[0, 2**63 - 1]"),
    (("feedback", "delay_requests"), lim.MAX_DELAY_REQUESTS, "[feedback].delay_requests", "1,000,000,000,000]"),
]

# (path, smallest allowed value or None if zero is allowed, largest, message location)
FLOAT_FIELDS = [
    (("nodes", 0, "speed_gflops"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[[nodes]] 'phone'.speed_gflops"),
    (("nodes", 1, "memory_mb"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[[nodes]] 'edge'.memory_mb"),
    (("nodes", 2, "cost_per_request"), None, lim.MAX_MAGNITUDE, "[[nodes]] 'cloud'.cost_per_request"),
    (("nodes", 0, "uplink", "propagation_ms"), None, lim.MAX_MAGNITUDE, "[[nodes]] 'phone'.uplink.propagation_ms"),
    (("nodes", 1, "uplink", "bandwidth_mbps"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE,
     "[[nodes]] 'edge'.uplink.bandwidth_mbps"),
    (("models", 0, "gflops"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[[models]] 'm-small'.gflops"),
    (("models", 1, "memory_mb"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[[models]] 'm-big'.memory_mb"),
    (("workload", "rate_per_s"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[workload].rate_per_s"),
    (("workload", "timeout_ms"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[workload].timeout_ms"),
    (("workload", "burst_factor"), lim.MIN_POSITIVE, lim.MAX_BURST_FACTOR, "[workload].burst_factor"),
    (("workload", "diurnal_period_s"), lim.MIN_DIURNAL_PERIOD_S, lim.MAX_MAGNITUDE, "[workload].diurnal_period_s"),
    (("reward", "w_acc"), None, lim.MAX_MAGNITUDE, "[reward].w_acc"),
    (("reward", "w_cost"), None, lim.MAX_MAGNITUDE, "[reward].w_cost"),
    (("reward", "deadline_ms"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[reward].deadline_ms"),
    (("feedback", "delay_s"), None, lim.MAX_TIME_S, "[feedback].delay_s"),
    (("faults", 0, "factor"), lim.MIN_POSITIVE, lim.MAX_MAGNITUDE, "[[faults]] #1.factor"),
    (("faults", 0, "end_s"), lim.MIN_POSITIVE, lim.MAX_TIME_S, "[[faults]] #1.end_s"),
]


def _load(d: dict):
    return load_dict(d, "sizes.toml")


def _refused(d: dict, *expected: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(d)
    msg = str(info.value)
    assert msg.startswith("sizes.toml: ") and "\n" not in msg, msg
    for e in expected:
        assert e in msg, (e, msg)
    return msg


def test_base_is_valid():
    assert _load(_base()).node("cloud").servers == 4


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(INT_FIELDS), data=st.data())
def test_count_above_its_bound_names_field_and_range(field, data):
    path, hi, where, rng = field
    value = data.draw(st.one_of(st.integers(min_value=hi + 1, max_value=2**63 - 1) if hi < 2**63 - 1
                                else st.integers(min_value=2**63, max_value=2**64),
                                st.sampled_from([10**12 + 1, 2**63 - 1, 2**63, 10**30]).filter(lambda v: v > hi)))
    d = _base()
    _put(d, path, value)
    _refused(d, where, rng)


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(INT_FIELDS))
def test_count_at_its_bound_is_accepted_by_the_field(field):
    """The bound itself is allowed by the field's check (whole-scenario bounds aside)."""
    path, hi, where, _ = field
    d = _base()
    _put(d, path, hi)
    try:
        _load(d)
    except ConfigError as exc:  # only a whole-scenario bound (trace bytes, total servers) may refuse it
        assert where + ":" not in str(exc) or "GiB" in str(exc) or "in all" in str(exc), str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FLOAT_FIELDS), data=st.data())
def test_number_out_of_range_names_field_and_range(field, data):
    path, lo, hi, where = field
    too_big = st.floats(min_value=hi, max_value=1.7e308, exclude_min=True)
    bad = too_big if lo is None else st.one_of(too_big, st.floats(min_value=5e-324, max_value=lo, exclude_max=True))
    value = data.draw(bad)
    d = _base()
    if path[0] == "workload" and path[1] == "burst_factor":
        d["workload"]["process"] = "bursty"
    _put(d, path, value)
    low = "0" if lo is None else lim.fmt_bound(lo)
    _refused(d, where, f"in [{low}, {lim.fmt_bound(hi)}]")


@settings(max_examples=40, deadline=None)
@given(period=st.floats(min_value=5e-324, max_value=lim.MIN_DIURNAL_PERIOD_S, exclude_max=True))
def test_tiny_diurnal_period_is_refused(period):
    d = _base()
    d["workload"].update(process="diurnal", diurnal_period_s=period)
    _refused(d, "[workload].diurnal_period_s", "0.001")


@settings(max_examples=50, deadline=None)
@given(util=st.floats(min_value=0.01, max_value=0.99), service_ms=st.floats(min_value=1e-9, max_value=1e4),
       rate=st.floats(min_value=1e-9, max_value=1e4), servers=st.integers(1, 64))
def test_background_jobs_per_request_are_bounded(util, service_ms, rate, servers):
    """Refused iff the simulator would process more than 10^6 background jobs per request."""
    d = _base()
    d["nodes"][1]["servers"] = servers
    d["workload"]["rate_per_s"] = rate
    d["workload"]["background"] = [{"node": "edge", "utilisation": util, "mean_service_ms": service_ms}]
    per_request = util * servers / (service_ms / 1e3) / rate
    if per_request > lim.MAX_BACKGROUND_JOBS_PER_REQUEST * 1.000001:
        _refused(d, "[workload].rate_per_s", "'edge'.mean_service_ms", "<= 1,000,000")
    elif per_request < lim.MAX_BACKGROUND_JOBS_PER_REQUEST * 0.999999:
        _load(d)


@pytest.mark.parametrize("patch, expected", [
    ({"mean_service_ms": 1e-9}, "'edge'.mean_service_ms"),  # the issue's OOM example
    ({"rate_per_s": 1e-300}, "[workload].rate_per_s: 1e-300 is not allowed; it must be finite and in [1e-9, 1e12]"),
    ({"rate_per_s": 1e-6}, "background jobs per request"),
])
def test_issue_background_examples(patch, expected):
    d = _base()
    if "mean_service_ms" in patch:
        d["workload"]["background"][0].update(patch)
    else:
        d["workload"].update(patch)
    _refused(d, expected)


@settings(max_examples=40, deadline=None)
@given(burst=st.floats(min_value=1e-9, max_value=100.0), calm=st.floats(min_value=1e-9, max_value=100.0),
       rate=st.floats(min_value=0.01, max_value=1e3))
def test_bursty_state_switches_are_bounded(burst, calm, rate):
    d = _base()
    d["workload"].update(process="bursty", burst_factor=1.5, mean_burst_s=burst, mean_calm_s=calm, rate_per_s=rate,
                         background=[])
    switches = 2.0 / (burst + calm) / rate
    frac = burst / (burst + calm)
    if 1.5 * frac >= 1:
        _refused(d, "[workload].burst_factor")
    elif switches > lim.MAX_SWITCHES_PER_REQUEST * 1.000001:
        _refused(d, "[workload].mean_burst_s", "<= 100")
    elif (1 - 1.5 * frac) / (1 - frac) > lim.MAX_BURST_FACTOR:
        _refused(d, "[workload].mean_calm_s", "<= 1,000 x")
    elif switches < lim.MAX_SWITCHES_PER_REQUEST * 0.999999:
        _load(d)


def test_calm_rate_thinning_is_bounded():
    d = _base()
    d["workload"].update(process="bursty", burst_factor=0.5, mean_burst_s=1e4, mean_calm_s=1e-3, rate_per_s=1.0)
    _refused(d, "[workload].mean_calm_s", "calm-state rate", "<= 1,000 x")


def test_total_servers_and_options_are_bounded():
    d = _base()
    for n in d["nodes"]:
        n["servers"] = lim.MAX_SERVERS
    d["nodes"].extend({"name": f"x{i}", "tier": "cloud", "speed_gflops": 1.0, "servers": lim.MAX_SERVERS}
                      for i in range(8))
    _refused(d, "[[nodes]].servers", "11,000,000 servers in all", "at most 10,000,000")

    d = _base()  # a chain of 1,100 nodes each hosting a model: 1,100 options at the origin
    d["models"] = [{"name": f"m{i}", "trace_column": "small", "gflops": 1.0, "memory_mb": 1.0} for i in range(1100)]
    link = {"propagation_ms": 1.0, "bandwidth_mbps": 10.0}
    d["nodes"] = [{"name": f"n{i}", "tier": "cloud", "speed_gflops": 1.0, "models": [f"m{i}"],
                   **({"parent": f"n{i + 1}", "uplink": link} if i < 1099 else {})} for i in range(1100)]
    d["workload"] = {"origins": ["n0"]}
    d["faults"] = []
    _refused(d, "[workload].origins", "1,100 options", "at most 1,024")


@pytest.mark.parametrize("key, limit_name", [("nodes", "MAX_NODES"), ("models", "MAX_MODELS"),
                                             ("faults", "MAX_FAULTS")])
def test_array_lengths_are_bounded(monkeypatch, key, limit_name):
    """The bound is checked on the raw list, before a table becomes an object (the real bounds are 10^4..10^6)."""
    from idnbandit.scenario import parse

    d = _base()
    monkeypatch.setattr(parse, limit_name, len(d[key]) - 1)
    _refused(d, f"[[{key}]]", f"{len(d[key])} entries are not allowed; at most {len(d[key]) - 1}")


def test_synthetic_generator_refuses_huge_sizes_before_allocating():
    for kw, expected in (({"n_samples": 10**12}, "n_samples"), ({"n_classes": 10**9}, "n_classes"),
                         ({"n_samples": 10**8, "n_classes": 100}, "GiB")):
        with pytest.raises(ConfigError, match=expected):
            synthetic_trace(["a", "b"], [0.7, 0.9], **kw)
    with pytest.raises(ConfigError, match="accuracies"):
        synthetic_trace(["a"], ["abc"])


# ------------------------------------------------------------------------ O(n) topology validation
def _tree(n: int, *, chain: bool = False) -> dict:
    """A tree of n nodes (4 children per node, or a chain), a model at the root, 50 leaf origins."""
    nodes = [{"name": "n0", "tier": "cloud", "speed_gflops": 1000.0, "memory_mb": 1e6, "models": ["big"]}]
    link = {"propagation_ms": 1.0, "bandwidth_mbps": 100.0}
    for i in range(1, n):
        parent = i - 1 if chain else (i - 1) // 4
        nodes.append({"name": f"n{i}", "tier": "cloud", "speed_gflops": 10.0, "parent": f"n{parent}",
                      "uplink": dict(link)})
    return {"name": "big-tree", "trace": copy.deepcopy(SYNTHETIC),
            "models": [{"name": "big", "trace_column": "big", "gflops": 1.0, "memory_mb": 1.0}],
            "nodes": nodes, "workload": {"origins": [f"n{i}" for i in range(n - 50, n)]}}


def _timed(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def test_100k_node_tree_validates_in_linear_time():
    """Issue: 1,000 nodes took 1.6 s and 3,000 > 60 s (cubic path checks); a 100,000-node tree must load in
    < 2 s. Measured on the 2-core CI machine: scenario_from_dict 0.6-1.1 s, validate_scenario 0.15-0.25 s."""
    small_t, _ = _timed(scenario_from_dict, _tree(10_000))
    big_t, s = _timed(scenario_from_dict, _tree(100_000))
    assert len(s.nodes) == 100_000
    val_t, _ = _timed(validate_scenario, s)
    assert val_t < 2.0, val_t
    assert big_t < 2.0 or big_t < 25 * small_t, (big_t, small_t)  # linear: ~10x; quadratic would be 100x


def test_100k_node_chain_validates_in_linear_time():
    """A chain is the worst case of the old walk-to-root check (O(n^3))."""
    t, s = _timed(scenario_from_dict, _tree(100_000, chain=True))
    val_t, _ = _timed(validate_scenario, s)
    assert val_t < 2.0, val_t
    assert s.__dict__["_option_counts"]["n99999"] == 1


def test_parent_cycle_in_a_long_chain_is_found():
    d = _tree(20_000, chain=True)
    d["nodes"][0].update(parent="n19999", uplink={"propagation_ms": 1.0, "bandwidth_mbps": 1.0})
    with pytest.raises(ConfigError, match=r"\[\[nodes\]\] 'n0'\.parent: parent cycle n0 -> n19999 -> "):
        scenario_from_dict(d)


@pytest.mark.parametrize("path, where", [(("nodes", 0, "servers"), "[[nodes]] 'phone'.servers"),
                                         (("workload", "rate_per_s"), "[workload].rate_per_s"),
                                         (("seed",), "seed"), (("name",), "name")])
def test_integers_too_long_to_print(path, where):
    """Python refuses to print an int of more than 4,300 digits: the message abbreviates it."""
    d = _base()
    _put(d, path, 10**5000)
    with pytest.raises(ConfigError, match=rf"{where.replace('[', '.').replace(']', '.')}: <an integer of 5,001 digits> "
                                          "is not allowed"):
        scenario_from_dict(d, source="sizes.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads_scenario("seed = " + "1" * 5000)


@pytest.mark.parametrize("module, name, args, kwargs, expected", [
    ("idnbandit.traces", "calibration_split", (10**12,), {}, r"n_samples: .*\[2, 100,000,000\]"),
    ("idnbandit.traces.build", "build_trace", ("digits",), {"n_folds": 10**9}, r"n_folds: .*\[2, 100\]"),
    ("idnbandit.traces.build_hetero", "build_hetero_trace", (), {"n_folds": 1}, r"n_folds: .*\[2, 100\]"),
    ("idnbandit.fl.data", "dirichlet_partition", (list(range(10)) * 5, 10**12, 0.5), {}, r"n_clients: .*\[1, 50\]"),
    ("idnbandit.fl.train", "TrainConfig", (), {"local_epochs": 10**12}, r"local_epochs: .*\[1, 10,000\]"),
    ("idnbandit.fl.train", "TrainConfig", (), {"batch_size": 2**63}, r"batch_size: .*\[1, 1,000,000\]"),
])
def test_generator_and_fl_sizes_are_bounded(module, name, args, kwargs, expected):
    """Refused before any allocation or training (none of these needs torch to fail)."""
    fn = getattr(importlib.import_module(module), name)
    with pytest.raises(ConfigError, match=expected):
        fn(*args, **kwargs)


def test_100k_node_tree_file_loads_in_under_2_s(tmp_path):
    """The issue's criterion end to end: ``load_scenario`` on a 14 MB TOML file of a 100,000-node tree
    (large files are parsed by rtoml; tomllib alone takes ~3 s on them). The process's CPU time, best of
    two runs: other processes on a shared 2-core machine must not make it flaky (measured 1.3 s idle)."""

    from idnbandit.scenario import load_scenario

    path = tmp_path / "big.toml"
    path.write_bytes(tomli_w.dumps(_tree(100_000)).encode())
    times = []
    for _ in range(2):
        t = time.process_time()
        load_scenario(path)
        times.append(time.process_time() - t)
    assert min(times) < 2.0, times
